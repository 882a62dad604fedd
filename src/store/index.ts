/**
 * # The store: one lock space across nodes, on an engine that decides nothing
 *
 * A per-file actor decides every lock with src/core/ on its cached copy of the file's records
 * (version v) and commits the outcome as one Step. The store makes that step atomic and tells
 * the actor what it missed when its copy was stale. It never decides a lock: the only checks it
 * makes are session liveness, versions, record ownership, the grace period and the wait-for cycle
 * walk. Two engines, one semantics: `memory` (MemoryEngine: a node alone, and the reference model
 * of the property test) and `redis` (RedisEngine: the scripts in ./lua.ts, one EVALSHA per step).
 *
 * ## Words
 * - record: a granted lock ('held') or a blocked request ('waiting') of one file. Opaque `data`
 *   (the core's), plus what the engine needs: id (unique in the file), node, epoch (the node's
 *   session it belongs to), requestId (waiters), seq (file order, engine-assigned).
 * - version: a file's number; it changes with every step. Versions come from one counter per
 *   namespace (`clock`, seeded from the engine's time in µs when an incarnation starts), so a
 *   version is never reused, even after a file's keys are deleted (a file with no records has
 *   version 0 and no keys): a cached copy can never be mistaken for a newer state of the same number.
 * - fence: a grant's number for hook events (Step.fence), per file. A step that grants applies
 *   only if its lowest number is above the file's last (m:<file> f, or its tombstone t:<file> once
 *   the file has no record) and its highest not past max(engine µs, last) + FENCE_SLACK_US, else
 *   'fence' (the last, the time). Nodes propose max(1 + the last their cache knows, the engine's
 *   time in µs from below): numbers grow with every grant on a file across nodes, across its
 *   version 0 while the tombstone lives (past it, the time is above), and across a loss of the
 *   data (every grant then waits out a grace period longer than FENCE_SLACK_US).
 * - session: (node, epoch). epoch comes from the same counter. A session is alive while its key
 *   holds its epoch; once dead it never comes back (renewal refuses, epochs never repeat).
 * - incarnation: a random id the engine's data is created with. Missing or different = the engine
 *   lost its data (restart without persistence, failover to an empty replica).
 * - run: the engine's server process (redis-server's run_id) and data set (its replication ID,
 *   which a full sync as a replica and a promotion change) the data was written under. Another
 *   run's data may be older than what nodes were told had committed (a restart from a snapshot or
 *   an AOF missing the last writes, a failover to a lagging replica): it is dropped before any step
 *   applies to it (lua.ts RUN), which makes a rollback a loss (the next OPEN starts an incarnation).
 *
 * ## Key layout (Redis; P = `{ns}:`, one hash tag: every script touches one Cluster slot)
 * | key                    | type   | holds                                                              |
 * |------------------------|--------|--------------------------------------------------------------------|
 * | P inc                  | string | the incarnation id (KEYS[1] of every script)                       |
 * | P clock                | string | the counter of versions and epochs                                 |
 * | P run                  | string | `<run_id> <master_replid>` of the server the data was written under |
 * | P policy               | string | the policy the namespace's nodes decide with (Engine.policy)        |
 * | P grace                | string | exists (PX graceMs) while the incarnation's grace period runs      |
 * | P ttlmax               | string | the longest sessionTtlMs a session of the incarnation opened with  |
 * | P s:<node>             | string | the node's live session epoch, PX sessionTtlMs (engine clock)      |
 * | P own:<node>           | string | `<instance>/<sessionTtlMs>` of the live session's opener, PX TTL    |
 * | P at:<node>            | string | `{"host","mountpoint","machine"}` (machine: a keyed hash of its    |
 * |                        |        | machine ID, boot ID and mount namespace, src/machine.ts; absent    |
 * |                        |        | without a machine or boot ID, or from an earlier version): where   |
 * |                        |        | the live session's mount serves, PX TTL (with                      |
 * |                        |        | own:<node>); none for a node that is no mount (nor where the       |
 * |                        |        | user's ACL refuses it: no session depends on it)                   |
 * | P sessions             | zset   | "node\|epoch" → deadline ms (0: ended); until dead and empty       |
 * | P sf:<node>\|<epoch>   | set    | files where that session has records (the reaper's index)          |
 * | P rp:<node>\|<epoch>   | hash   | file → [id, record, ...]: that session's locks steps removed while |
 * |                        |        | it was dead (reaped), PX REAPED_KEEP_MS from the last one          |
 * | P files                | set    | files that have records, i.e. a version (listings)                 |
 * | P r:<file>             | hash   | record id → `seq\|h or w\|node\|epoch\|requestId\|data`            |
 * | P m:<file>             | hash   | v (version), q (last seq), c:<node>\|<epoch> (records per session) |
 * |                        |        | a:<node> (the node's last step applied here: a lost reply's answer) |
 * |                        |        | f (the file's last fence, Step.fence)                              |
 * | P l:<file>             | list   | the last LOG_MAX changes: `base\|version\|[step,node,removed,puts]`|
 * |                        |        | (and the file's last fence after it, as text, when it has one)     |
 * | P t:<file>             | string | a file with no record left: its last fence, PX max(FENCE_KEEP_MS,   |
 * |                        |        | 10 x ttlmax) (a tombstone: the next grant on it is above)          |
 * | P e:<file>             | hash   | waiter id → its owner (which edges to drop with the record)        |
 * | P w:<owner>            | hash   | "file\nwaiter" → `node\|epoch\|[hard, soft, sessions]`: edges     |
 * | P in:<node>            | stream | the node's inbox: f v n e r k d = file, version, from, epoch, request, kind, data |
 * Node names and namespaces are restricted ([A-Za-z0-9._-], namespace also ':') so keys and the
 * `|`-separated fields read back without escaping; file names and ids are free (they end keys).
 * Scripts build key names from the prefix instead of declaring each in KEYS: on Redis Cluster
 * that is accepted because every key is in the slot of KEYS[1] (the hash tag); a proxy that
 * routes by declared keys only would need them declared.
 *
 * ## One commit (the COMMIT script; MemoryEngine.commitSync takes the same decisions in order)
 * 1. `inc` is the caller's incarnation, else 'reset'.
 * 2. `s:<node>` holds the caller's epoch, else 'fenced'.
 * 3. the file's version is `base`, else 'stale' with the changes since base from `l:<file>` (when
 *    an entry's base is the caller's), or the whole record set (the log no longer reaches back).
 * 4. the step fits the state (removed ids exist; a put of an existing id keeps its node and epoch;
 *    edges name waiters): else an error, the caller's bug.
 * 5. every put record's session is alive, else 'dead' with those sessions: a record of a dead
 *    session can be removed, never written, so nothing is granted to a dead node, ever.
 * 6. `grants` and the grace key exists: 'grace'.
 * 7. each checked edge, in the step's order: a DFS over the hard edges of live sessions (with this
 *    step's own edge changes so far laid over, and no edges for the waiters checked after it,
 *    as LockTable.refreshEdges) from its targets; reaching its owner = 'deadlock' (EDEADLK, exact). A
 *    target counts while one of the sessions the edge names for it lives (EdgeInput.sessions).
 *    A cycle found is walked again without the stored edges of late sessions (not renewed for
 *    lateAfterMs of their TTL: their node may have answered those waiters, cut off): none left =
 *    'overdue' with the ms until the earliest of them expires; the request waits and asks again.
 * 8. apply: removes (each decrements its session's count in m:<file>; at 0 the file leaves
 *    sf:<session>, and a dead session with no file left leaves `sessions`), puts (a new record
 *    increments its session's count, and the first one adds the file to sf:<session> in the same
 *    script: the reaper's index exists before the grant it must undo), edges (a waiter's edges go
 *    with it when it is removed or granted), version = INCR clock, the log entry; a file left
 *    without records loses its keys. A held record of a dead session the step removes (the
 *    reaper's work) is added to rp:<session> (Engine.sessionFiles gives it after the index: a
 *    worker that replaces one that died learns what its predecessor lost even once reaped).
 *    Then one XADD per notified waiter on another node whose session is alive, and per mark
 *    the step leaves in its own node's inbox (INBOX_MARK: it comes after every event earlier
 *    steps sent there; a step with only marks writes nothing else). All or nothing: a script
 *    either returns before its first write or runs to its end.
 *
 * ## Sessions and fencing (NodeStore, ./node-store.ts)
 * - Opening sets `s:<node>` to a new epoch with PX sessionTtlMs (a previous session of the same
 *   node dies at once), registers it in `sessions`, and empties the node's inbox behind a marker
 *   the reader starts after. Renewal (every renewEveryMs, default TTL/4) resets the PX only while
 *   the key still holds the epoch; it also trims the inbox up to what was read.
 * - The node is fenced from fenceAfterMs (default 3/4 TTL) after the newest *confirmed* renewal
 *   was *sent*, on its monotonic clock. The engine received that renewal after it was sent, so
 *   its key lives until at least sent + TTL (engine clock); fenceAfter < TTL leaves the margin for
 *   clock rate differences and for the time between a check and the act it guards. Invariant: a
 *   node that is not fenced holds a session the engine still has; everything it holds is its own.
 *   A fenced node commits nothing (refused locally), and the engine refuses it too (step 2).
 * - A later confirmed renewal of the same session unfences ('unfenced': nothing was lost: a live
 *   session's records are never reaped). A renewal or commit that finds the session gone opens a
 *   new one ('lost': every record of the old epoch counts as lost for good).
 * - The reaper (reap(), any node, any number at once) lists dead sessions with, per file, that
 *   session's records and the file's version. It changes nothing but its own bookkeeping: the
 *   caller decides the removal and the wake-ups with the core and commits them as a normal step
 *   (stale for all but one of concurrent reapers, who then see the records gone: idempotent).
 *   When to run it costs nothing extra: each renewal's reply says whether some registered
 *   session is past its deadline or ended (onReapDue). A dead session leaves `sessions` with its
 *   last record, so the hint stops once its records are gone.
 * - Invariants: (1) a session, once dead, never lives again; (2) no step writes a record of a
 *   session that is not alive (step 5), so a reaped record is never granted to again; (3) a file
 *   is in sf:<session> exactly while that session has a record in it, and that entry is written
 *   in the step that writes the record; (4) every wait-for edge belongs to a waiting record that
 *   exists, and a dead session's edges are ignored by the cycle walk, as is a target whose named
 *   sessions are all dead; (5) a node that is not fenced has a live session.
 *
 * ## Inbox
 * `in:<node>`, read with XREAD BLOCK 0 on a dedicated connection from the last id; after a
 * dropped connection the client sends the same XREAD again, so events written meanwhile arrive.
 * Read entries are trimmed by the next renewal (XTRIM MINID), never by length: an event is never
 * dropped while its node's session lives. A new session restarts the reader from its marker.
 * Events carry the target session's epoch; the reader drops other epochs' events. No polling:
 * a blocked waiter costs no engine command beyond the session renewal.
 *
 * ## Engine loss and grace
 * A rollback is a loss: OPEN and RENEW compare `run` with the server's run_id and replication ID
 * (INFO, in the script: a full sync as a replica replaces a process's data and keeps its run_id),
 * and every other script is sent by EVALSHA only, after a run check (RUN_CHECK) on a connection
 * that has had none answered since its last close or its last READONLY/LOADING/MASTERDOWN reply,
 * and again when the engine does not know the script (Redis 7 neither keeps scripts across a
 * restart nor replicates them; each namespace's scripts are its own, as the cache is the
 * server's), so the first script of any node on a new server process follows a check. A mismatch drops every key the namespace's indexes
 * name (files, their waiters' owners' edges, registered sessions, the counters, `inc`): what is
 * left is what dead sessions no index names any more (own:, rp: expire; in: is emptied at OPEN).
 * Where the user may not run INFO or read `run` (an ACL), there is no check.
 * The first OPEN that finds no `inc` creates the incarnation and `grace` (PX graceMs, default
 * TTL): until it expires no step with `grants` is accepted, only releases, waiters and
 * re-assertions. A node learns of the loss from a renewal or commit ('reset'), opens a session in
 * the new incarnation and, if it was not fenced at that moment, emits 'reset': the actors then
 * re-assert (reassert(): no version check, grace only) what they held. A node that was fenced
 * re-asserts nothing ('lost'). The engine cannot tell a first start from a loss, so a brand-new
 * namespace also starts with a grace period (graceMs; 0 is only safe where no node can hold
 * anything the engine forgot: a node alone, tests). Versions and epochs restart from the engine's
 * time, so they keep growing across the loss. A node that reopens after a loss asks for a grace
 * period of at least the longest TTL its renewals last reported (`ttlmax`): a node with a longer
 * TTL than the first to reopen may stay unfenced that long, holding what it has not put back.
 *
 * ## Failures
 * Every call has a reply within requestTimeoutMs: a command whose connection closes fails at once
 * ('unreachable'; the step may have applied: its id shows in the next stale reply, and a version
 * check never applies a step twice); openStore() rejects with an Error naming the URL (password
 * hidden); a malformed option is a TypeError naming it. A step that contradicts the state at the
 * version it names (absent record removed, owner changed, edges of a non-waiter) is a
 * ProgrammingError: the caller's bug, never a reply.
 *
 * ## What the actors must do (integration)
 * - Decide on the cached state at version v; commit with base v. On 'stale': apply `missed` (or
 *   replace with `records`), decide again. On 'unreachable': the step may have applied; the next
 *   stale reply shows its step id if it did.
 * - On 'dead': treat those sessions' records as gone (decide their removal with the core).
 * - On onReapDue (any node; concurrent reapers are harmless): reap(), then for each file decide
 *   the dead records' removal and the wake-ups with the core and commit them.
 * - Put notifications for every waiter on another node that the step grants or fails; act on
 *   this node's inbox events by refreshing the file and answering the named request.
 * - On 'fenced': answer nothing from cached state (checkIo and new requests fail with the family's
 *   generic code) until 'unfenced'; on 'lost': the old epoch's locks are lost (checkIo 33, EIO
 *   through the mount); on 'reset': re-assert within graceMs; on 'grace-ended': run the wake-up
 *   pass of files whose grants were refused with 'grace'.
 * - Qualify POSIX owners with the node in edge owner keys; send `check: true` where LockTable
 *   calls closesCycle on an added edge, and use closesCycle() for LockTable.waitsFor's question.
 */
import { channel } from 'node:diagnostics_channel';
import { MemoryEngine } from './memory.js';
import { NodeStore } from './node-store.js';
import { resolveOptions, resolveTuning, defaultNode, type Tuning } from './options.js';
import { RedisEngine } from './redis.js';
import type { StoreOptions } from '../types.js';
import type { SessionServes, StoreHooks } from './types.js';

export type * from './types.js';
export { MemoryEngine, LOG_MAX, ProgrammingError, type EngineSnapshot } from './memory.js';
export { RedisEngine } from './redis.js';
export { NodeStore } from './node-store.js';
export { resolveOptions, showUrl, type Tuning } from './options.js';

/**
 * The diagnostics channel openStore publishes a NodeWait on when it finds this node's name held
 * by a live session, once, before it waits for that session to expire (a restart after a crash):
 * a command says so at once (src/mount-cli.ts) instead of staying silent for up to a TTL.
 */
export const NODE_WAIT_CHANNEL = 'locksmith:store:node-wait';
export interface NodeWait {
  node: string;
  /** The engine's URL, its password hidden. */
  url: string;
  namespace: string;
  /** How long the open waits at most before it refuses the name as another live process's. */
  upToMs: number;
}
const nodeWait = channel(NODE_WAIT_CHANNEL);

/**
 * A Redis-backed store for this node: connects, opens the session and starts reading the inbox.
 * Rejects within requestTimeoutMs with an Error naming the URL when the engine cannot be reached
 * or the URL is malformed (a TypeError names a malformed option). A node name whose session is
 * live is waited for (a restart after a crash: up to sessionTtlMs and one renewal), then refused
 * with an Error saying the name is in use (NodeStore.start).
 */
export async function openStore(options: string | StoreOptions, hooks: StoreHooks = {}, tuning: Partial<Tuning> = {}): Promise<NodeStore> {
  const o = resolveOptions(options, tuning);
  const started = performance.now();
  const engine = await RedisEngine.connect(o);
  const risk = await engine.evictionRisk();
  if (risk !== undefined) process.emitWarning(risk, 'LocksmithEngineWarning');
  // NodeStore.start tries the name again until the live session is gone: the first 'taken' is told.
  const open = engine.open.bind(engine);
  let told = false;
  engine.open = async (...args: Parameters<typeof open>) => {
    const r = await open(...args);
    if ('taken' in r && !told) {
      told = true;
      const w: NodeWait = { node: o.node, url: o.shownUrl, namespace: o.namespace, upToMs: o.sessionTtlMs + o.renewEveryMs };
      nodeWait.publish(w);
    }
    return r;
  };
  const opening = NodeStore.start(engine, o, hooks, 'redis', true);
  // Each engine call fails by itself within requestTimeoutMs; this bound only backs them up, so it
  // must outlast the longest open that is going well: waiting out a crashed predecessor's session.
  const bound = o.requestTimeoutMs + o.sessionTtlMs + o.renewEveryMs;
  const left = Math.max(1, bound - (performance.now() - started));
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  try {
    return await Promise.race([
      opening,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          late = true;
          reject(new Error(`locksmith store: ${o.shownUrl} did not open a session within ${Math.round(bound)} ms`));
        }, left);
      }),
    ]);
  } catch (e) {
    const closed = opening.then(
      (s) => s.close(),
      () => engine.shutdown(),
    );
    // An open that failed (a name in use, a refused script) has its connections closed before
    // the rejection: nothing of it is left behind. One still running past the bound is closed
    // whenever it ends.
    if (!late) await closed.catch(() => {});
    else void closed.catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An in-process store: a node alone (the default: its own engine, sessions that do not expire
 * while the process lives, no grace period), or a logical node over a shared MemoryEngine.
 */
export async function memoryStore(
  hooks: StoreHooks = {},
  o: { engine?: MemoryEngine; node?: string; sessionTtlMs?: number; serves?: SessionServes } & Partial<Tuning> = {},
): Promise<NodeStore> {
  const alone = o.engine === undefined;
  const sessionTtlMs = o.sessionTtlMs ?? 2 ** 31 - 1;
  const t = resolveTuning(sessionTtlMs, { graceMs: alone ? 0 : undefined, ...o });
  return NodeStore.start(o.engine ?? new MemoryEngine(), { node: o.node ?? defaultNode(), sessionTtlMs, ...t, ...(o.serves === undefined ? {} : { serves: o.serves }) }, hooks, 'memory', alone);
}
