/**
 * The per-file actors of a shared lock space (API.md "One lock space across machines"): the same
 * decisions as a node alone (src/core/ LockTable), on a cached copy of the file's records, and
 * every change committed to the store (src/store/) as one atomic step before any answer leaves.
 *
 * One decision, in the file's actor (its requests run one at a time, in arrival order):
 * 1. The file's records at version v (none at first: version 0; then what its steps and stale
 *    replies said) are its state: a LockTable holding that one file, with every node's granted
 *    locks and waiting requests in queue order.
 * 2. The call runs on it. Answers it produces (its own, the waiters it ends, hook notices) are
 *    kept aside, not sent.
 * 3. What changed becomes a Step on base v: records removed and put, wait-for edges (checked for a
 *    cycle when a POSIX waiter gains a blocker), and one event per waiter of another node that the
 *    step ends (granted or failed): that node's inbox receives it in the same atomic step.
 * 4. 'ok': the kept answers leave. 'stale' (another node changed the file first): the changes it
 *    missed are applied to the records, the table is rebuilt, and the call runs again from 1.
 *    'deadlock': the call runs again with that owner's cycle known (EDEADLK; a waiter put back after
 *    an engine loss whose edges were checked whole ends with it, see recheck). 'dead': the records
 *    of the sessions named are left out of the rebuilt table, so the next step removes them and
 *    wakes who they blocked. 'grace': decided again with the wake-up pass held (a release goes
 *    through, its waiters wait for the period's end); a request whose own decision grants waits
 *    outside the mailbox until then (Parked). 'fenced', 'reset',
 *    'late' or still unreachable at requestTimeoutMs: nothing was decided (the step carries that
 *    deadline, and the engine refuses it as 'late' past it); a lock request gets its family's
 *    generic code, anything else is retried until the deadline and then kept as owed, to run first
 *    in the file's next step.
 *
 * A waiter of this node whose record another node grants or fails is answered from the event in
 * this node's inbox (onEvents), never by polling. Owners, handles and processes are qualified with
 * the node (core/records.ts qualify), so nodes never mistake each other's owners.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENOLCK, ERROR_LOCK_VIOLATION, F_GETLK, F_UNLCK } from '../core/codes.js';
import type { WaitForGraph } from '../core/deadlock.js';
import { conflicts, type Lock, type LockOrigin, type LockRequest, type Waiter } from '../core/file-locks.js';
import { LockTable, cancelResult, closedWith, type CancelReason, type Family, type RestoredWaiter, type TableHooks } from '../core/lock-table.js';
import { decodeRecord, encodeLock, lockOf, nodeOf, qualify, windowsHandleOf } from '../core/records.js';
import { cancellable, replyOf, type Call, type PosixReply } from '../core/requests.js';
import type { Change, CommitReply, EdgeInput, InboxEvent, NotifyInput, ReassertReply, RecordInput, Step, StoreRecord } from '../store/types.js';
import type { ReplyTarget, Result } from './reply-target.js';

/** The store as a file's actors reach it: a worker's own connection (direct-link.ts), or a test's in-process engine. */
export interface StoreLink {
  commit(step: Step): Promise<CommitReply>;
  /** Per pair, whether `from` already waits for `to` through every node's wait-for edges. */
  reaches(pairs: readonly (readonly [string, string])[]): Promise<boolean[]>;
  reassert(file: string, records: readonly RecordInput[], edges?: readonly EdgeInput[]): Promise<ReassertReply>;
}

/** What a host needs to know to run a shared lock space. */
export interface SharedConfig {
  node: string;
  policy: 'default' | 'fifo';
  requestTimeoutMs: number;
  /**
   * [until, epoch, offset] as the caller's side keeps them (shared-space.ts): this node may act on session
   * `epoch` until `until` (ms, performance.timeOrigin + performance.now(), which every thread of
   * the process reads alike). Past it the node is fenced. A worker acts on the session it was
   * last told of (`epoch`, then SharedFiles.adopt); while the lease names another, the new
   * session's message is on its way, and decisions wait for it. Then the engine's clock minus
   * that one, at least (NaN: not known yet), for steps' deadlines (Step.deadline).
   */
  lease: SharedArrayBuffer;
  /** The session this worker starts on. */
  epoch: number;
}

/** An event of this node's inbox, as the caller's side forwards it: waiter `requestId` ended with `result`. */
export interface WaiterEnded {
  readonly requestId: string;
  readonly result: number;
}

/**
 * A node's inbox events as each file's actor takes them: per file, the waiters another node's step
 * ended ('end' events, the result in their data).
 */
export function endedByFile(events: readonly InboxEvent[]): Map<string, WaiterEnded[]> {
  const byFile = new Map<string, WaiterEnded[]>();
  for (const e of events) {
    if (e.kind !== 'end') continue;
    const result = Number(e.data);
    if (!Number.isInteger(result)) continue;
    let list = byFile.get(e.file);
    if (list === undefined) byFile.set(e.file, (list = []));
    list.push({ requestId: e.requestId, result });
  }
  return byFile;
}

/** Marks the events of other nodes' records: hooks are this node's application's, for its own requests. */
const REMOTE = Symbol('remote');

/** What one decision produced, delivered only once its step committed. */
interface Outcome {
  answers: (() => void)[];
  notify: NotifyInput[];
  /** This node's waiters the decision ends, by record id, with their results (also in `answers`). */
  ends: { rid: string; result: number }[];
}

function emptyOutcome(): Outcome {
  return { answers: [], notify: [], ends: [] };
}

/** The wait-for graph of a decision: cycles are the engine's to find; a refused step names them. */
class StepGraph implements WaitForGraph {
  /**
   * Waits the engine found to close a cycle, as owner and blockers (the decision runs again with
   * them): only the waiter on the cycle fails, not another waiter of its owner.
   */
  readonly cyclic = new Set<string>();
  static key(owner: string, blockers: Iterable<string>): string {
    return `${owner}\n${[...blockers].sort().join('\n')}`;
  }
  /**
   * 'fifo': "from\nto" for each pair of this file's POSIX owners where `from` already waits for
   * `to` through any node's edges, asked of the engine before the decision (SharedFile.askReach).
   */
  readonly reach = new Set<string>();
  closesCycle(owner: string, blockers: Iterable<string>, hardOnly?: boolean): boolean {
    if (hardOnly === true) return this.cyclic.size > 0 && this.cyclic.has(StepGraph.key(owner, blockers));
    // The table's 'fifo' escape: would `owner` queueing behind these owners' waiters close a cycle?
    for (const b of blockers) if (this.reach.has(`${b}\n${owner}`)) return true;
    return false;
  }
  setEdges(): void {}
  removeEdges(): void {}
}

function sameKeys(a: readonly string[], b: readonly string[] | undefined): boolean {
  if (b === undefined) return a.length === 0;
  if (a.length !== b.length) return false;
  const set = new Set(b);
  for (const x of a) if (!set.has(x)) return false;
  return true;
}

/** An edge's targets as `owner\nsession` keys: the same owners under other sessions are other edges. */
function targetKeys(owners: Iterable<string>, sessions: EdgeInput['sessions']): string[] {
  const out: string[] = [];
  for (const o of owners) {
    const ss = sessions?.[o];
    if (ss === undefined || ss.length === 0) out.push(`${o}\n`);
    else for (const x of ss) out.push(`${o}\n${x}`);
  }
  return out;
}

/** What a step given up on decided for other requests, with what shows it applied (SharedFile.lostAnswers). */
interface Lost {
  readonly answers: (() => void)[];
  /** The waiters of this node it ended: settled by what became of their records (SharedFile.settleEnds). */
  readonly ends: readonly LostEnd[];
  /**
   * The record ids it minted (newId: no other step puts them): a whole record set (the log no
   * longer reaching back) that has one says it applied. One that has none proves nothing: its
   * records may have gone since, and a step that only removes leaves no trace of its own.
   */
  readonly fresh: readonly string[];
}

/**
 * A waiter of this node that a step given up on ended: its record, its owner's bytes, and the
 * ids of the owner's locks when the step was decided (what a grant by another node would add to).
 */
interface LostEnd {
  readonly rid: string;
  readonly result: number;
  readonly owner: string;
  readonly start: bigint;
  readonly end: bigint;
  readonly before: ReadonlySet<string>;
}

/** A record put by a step, with the lock or waiter of the decided table it stands for. */
type Fresh = { readonly id: string; readonly lock: Lock; readonly waiter?: undefined } | { readonly id: string; readonly waiter: Waiter; readonly lock?: undefined };

interface Diffed {
  readonly step: Step;
  readonly fresh: readonly Fresh[];
  readonly edges: readonly EdgeInput[];
}

/**
 * What a decision runs on the table; `owner`: the POSIX owner a lock request is made for ('fifo');
 * `free`: whether a read's answer says the bytes are free (see decide); `undone`: a lock request,
 * whose step is undone if it applied after the request was answered as failed (Unsure); `park`:
 * a request that waits out a grace period outside the mailbox (Parked) when its own decision
 * grants bytes.
 */
type Run = ((t: LockTable) => unknown) & { owner?: string; free?: (res: unknown) => boolean; undone?: boolean; park?: boolean };

/**
 * What decide() returns for a request (Run.park) whose own decision grants bytes while the engine
 * is in a grace period: nothing was decided; the request waits `ms` outside the file's mailbox
 * (SharedFiles.run), where its timeout, signal or handle's close can still end it, then runs again.
 */
export class Parked {
  constructor(readonly ms: number) {}
}

/**
 * A lock request's step given up on with no reply (the request was answered as failed): it may
 * have applied before its deadline (a reply lost with its connection). If this node's records it
 * put show up in a stale reply, it did: the next step removes them and puts back this node's
 * locks it removed (a POSIX lock merged with its owner's others), as if it never ran.
 */
interface Unsure {
  /** This node's records the step put (or, its waiter granted elsewhere, that grant put). */
  put: readonly string[];
  /** This node's locks of the current session the step (or that grant) removed, and their origins. */
  removed: readonly StoreRecord[];
  readonly origins: ReadonlyMap<string, LockOrigin>;
  /** performance.now() from which the engine refuses the step ('late'): a step sent after it settles the entry. */
  readonly sendBy: number;
  /**
   * The step changed other requests too (woke a waiter, told another node, carried owed
   * releases), or a later step of this node changed its waiter's owner's locks: not undone,
   * reported.
   */
  tangled: boolean;
  applied: boolean;
  /**
   * The step queued a waiter: its owner and bytes, and that owner's locks here when it was sent.
   * Another node may grant the waiter before this node learns the step applied: the owner's
   * locks over those bytes that are not among these then came from that grant (only this node's
   * steps and grants of its waiters give its owners locks), and are undone like the step's own.
   */
  readonly waiter?: { readonly req: LockRequest; readonly before: readonly StoreRecord[] };
}

class SharedFile {
  private version = 0;
  private records: StoreRecord[] = [];
  /** Whether the table was built once: a file starts from the empty state (see decide). */
  private built = false;
  private table!: LockTable;
  private readonly graph = new StepGraph();
  private readonly lockIds = new Map<Lock, string>();
  private readonly waiterIds = new Map<Waiter, string>();
  /** Another node's owner -> the session its records belong to (a grant to its waiter keeps it). */
  private readonly epochOf = new Map<string, number>();
  /** Another node's origins as rebuilt here (pid 0), with the pid its records carry. */
  private remotePid = new WeakMap<LockOrigin, number>();
  /** Origins of this node's records: with the caller's contexts, which records do not carry. */
  private readonly origins = new Map<string, LockOrigin>();
  /** Per waiter record, the edges the store has: [hard, soft], as targetKeys. */
  private readonly edgesSent = new Map<string, readonly [readonly string[], readonly string[]]>();
  /**
   * Owner -> the sessions (`node|epoch`) of its records in the table: an edge names them with its
   * targets, so the engine's cycle walk skips a target once they have all ended (a dead session's
   * lock nobody reaped yet, whose owner may wait again under a new session of its node).
   */
  private readonly sessionsOf = new Map<string, string[]>();
  /**
   * Waiter records whose edges in the store may not be edgesSent's: the table they were computed
   * on differed from the records (records left out, locks put back by an undo), or this node put
   * them back after the engine lost its data, computed on the file as it was. The next step
   * writes them whole. A stale edge would outlive the lock it names: once that owner waited for
   * the waiter's owner (its node back under a new session, the same name), the engine's walk
   * would find a cycle that is not there, an EDEADLK no kernel would give.
   */
  private readonly resend = new Set<string>();
  /**
   * This node's waiters put back after the engine lost its data: the edges this node had for them
   * may be stale (its copy of the file may have missed a lock that blocks them), so they go back
   * without edges (none stale, no EDEADLK for a cycle that is not there), and until the grace
   * period ends (reassertedUntil) each step writes them whole and checks them whole: a lock put
   * back later may close a cycle through them that no request's check saw.
   */
  private readonly recheck = new Set<string>();
  private reassertedUntil = 0;
  /**
   * This node put locks back after the engine lost its data. Another node's waiter queued in the
   * grace period before they were back has engine edges without them, and its node, learning of
   * them later, takes its edges for written: a cycle through both would go unchecked. So until a
   * step sent after the grace period applied, every POSIX waiter of the file has its edges written
   * and checked whole (recheck), and the pass at the period's end comes for this file too.
   */
  private heldPutBack = false;
  /** Sessions the engine called dead: their records are left out (and so removed by the next step). */
  private readonly dead = new Set<string>();
  /** Releases that could not commit before their deadline (answered anyway): they run first in the next step. */
  private owed: Run[] = [];
  /** Lock requests' steps with no reply, answered as failed (by step id): undone if they applied. Settled by a step sent after their deadline. */
  private readonly unsure = new Map<string, Unsure>();
  /**
   * Steps given up on with no reply, by id: what they decided for other requests (waiters they
   * granted or ended, hooks). If one shows up applied in a stale reply, that was decided: it is
   * delivered then (else such a waiter, its record changed, would wait for ever). Any later step
   * that commits settles them all: decided on the version they were sent on or a later one, it
   * would have been stale had one applied unseen, and none can apply after it.
   */
  private readonly lostAnswers = new Map<string, Lost>();
  private out: Outcome = emptyOutcome();
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** The last build left records out (dead sessions, orphaned waiters): the next step removes them and wakes who they blocked. */
  private leftOut = false;
  /**
   * A step committed while the wake-up pass was held (a grace period, see decide): the next
   * decision that may grant runs the pass first, so whoever fits is granted in queue order.
   */
  private wakeOwed = false;
  /** Counts replacements of the cache under a decision (a new session): a step decided before one is never sent, its reply never applied. */
  private gen = 0;
  /** This node's records being put back after the engine lost its data: decisions wait for it. */
  private reasserting: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly space: SharedFiles,
  ) {}

  /** Runs `f` after every earlier step of this file: the actor's mailbox. */
  enqueue<T>(f: () => Promise<T>): Promise<T> {
    this.queued++;
    const r = this.tail.then(f);
    this.tail = r.then(
      () => this.queued--,
      () => this.queued--,
    );
    return r;
  }

  /** Nothing queued, nothing held: the actor can go. */
  get idle(): boolean {
    return this.queued === 0 && this.records.length === 0 && !this.owing;
  }

  /** This node's records in the cache that still stand: its granted locks, and its waiters that still wait here. */
  ownRecords(): StoreRecord[] {
    const me = this.space.config.node;
    return this.records.filter((r) => r.node === me && (r.state === 'held' || this.space.waits.has(r.id)));
  }

  /**
   * The engine lost its data while this node's session was live (SharedFiles.adopt): this node's
   * records go back in the grace period, under the new session, at once and outside the mailbox
   * (a decision in the mailbox may be waiting out that very grace period). They are taken from the
   * cache now, and the cache becomes just them, at version 0, which the engine has only while
   * the file holds nothing: once they are back, the next step is stale and learns every node's
   * records. Decisions wait until the engine answered (decide). A waiter put
   * back is looked at again when the grace period ends: its blockers may not come back.
   */
  beginReassert(graceEndsAt: number): void {
    const epoch = this.space.epoch;
    const mine = this.ownRecords().filter((r) => !this.undoing(r.id));
    this.unsure.clear();
    // Waiters go back without edges (recheck).
    const edges: EdgeInput[] = [];
    this.records = mine.map((r) => ({ ...r, epoch }));
    this.version = 0;
    this.reassertedUntil = graceEndsAt;
    this.heldPutBack = false;
    for (const r of mine) {
      if (r.state !== 'waiting') continue;
      this.resend.add(r.id);
      this.recheck.add(r.id);
    }
    const gen = ++this.gen;
    this.refresh();
    if (mine.length === 0) return;
    const p = this.putBack(mine, edges, gen, graceEndsAt)
      .catch((e: unknown) => this.space.report(e))
      .finally(() => {
      if (this.reasserting === p) this.reasserting = undefined;
    });
    this.reasserting = p;
  }

  private async putBack(mine: readonly StoreRecord[], edges: readonly EdgeInput[], gen: number, graceEndsAt: number): Promise<void> {
    const records = mine.map((r) => (r.state === 'held' ? { id: r.id, state: r.state, data: r.data } : { id: r.id, state: r.state, data: r.data, requestId: r.requestId }));
    let reply: ReassertReply;
    for (;;) {
      try {
        reply = await this.space.link.reassert(this.path, records, edges);
      } catch (e) {
        this.space.report(e);
        reply = { ok: false, reason: 'unreachable', error: String(e) };
      }
      // No answer: sent again (a record put again replaces itself) while the grace period lasts.
      if (reply.ok || reply.reason !== 'unreachable' || gen !== this.gen || performance.now() >= graceEndsAt) break;
      await sleep(50);
    }
    // A newer session replaced the cache again: its own re-assertion carries these records.
    if (gen !== this.gen) return;
    if (reply.ok) {
      if (mine.some((r) => r.state === 'held')) this.heldPutBack = true;
      this.space.wakeAt(this.path, graceEndsAt);
      return;
    }
    // The engine lost its data again, or a newer session's message is on its way (the lease
    // names it): that session puts them back, or counts them lost.
    if (reply.reason === 'reset' || (reply.reason === 'fenced' && this.space.awaitingSession())) return;
    // Too late, fenced meanwhile, or no answer: lost.
    const ids = new Set(mine.map((r) => r.id));
    this.records = this.records.filter((r) => !ids.has(r.id));
    this.refresh();
    this.space.lose(this, mine);
  }

  /** This node's session was lost: what it held is gone (SharedFiles.adopt tells the handles); the cache leaves it out from now on. */
  sessionLost(): void {
    this.gen++;
    this.refresh();
  }

  /** No session will come (the node was displaced): the cache and the owed releases go, and the actor with them. */
  forget(): void {
    this.gen++;
    this.records = [];
    this.owed = [];
    this.unsure.clear();
    this.lostAnswers.clear();
    this.version = 0;
    this.built = false;
  }

  /**
   * Another node's step granted this node's waiter `rid` (the inbox). The grant stands in the
   * cache at once, as the waiter's record turned into the lock, outside the mailbox: a session
   * message handled before the mailbox gets to it then puts it back as held (beginReassert). The
   * table follows at the mailbox's turn (refresh); a decision in flight has a stale base and is
   * decided again. True when it changed the cache.
   */
  grantedRemotely(rid: string, result: number): boolean {
    const i = this.records.findIndex((r) => r.id === rid && r.state === 'waiting');
    if (i < 0 || result !== 0) return false;
    const r = this.records[i]!;
    const { req } = this.decode(r);
    this.records[i] = { ...r, state: 'held', data: encodeLock(lockOf(req), undefined, req.origin.pid) };
    return true;
  }

  /** Whether `rid`, granted remotely, is a POSIX lock whose owner holds others here: it may have merged with them, so the file is read again. */
  mayHaveMerged(rid: string): boolean {
    const r = this.records.find((x) => x.id === rid && x.state === 'held');
    if (r === undefined) return false;
    const { req } = this.decode(r);
    if (req.kind !== 'posix') return false;
    return this.records.some((x) => x.id !== rid && x.state === 'held' && this.decode(x).req.owner === req.owner);
  }

  /** Whether `rid` is a waiter that a step given up on with no reply may have queued (Unsure). */
  unsureWaiter(rid: string): boolean {
    for (const u of this.unsure.values()) if (u.waiter !== undefined && u.put.includes(rid)) return true;
    return false;
  }

  /** Reads the file's records now (a decision that changes nothing: one round trip). */
  reread(): Promise<unknown> {
    return this.decide(
      () => undefined,
      () => undefined,
      false,
    );
  }

  /**
   * Looks again at this file's waiters (after a grace period): who fits now is granted. With
   * waiters whose edges are still to be checked whole (recheck, heldPutBack), a pass that could
   * not be written is owed like a release, so it is tried again.
   */
  wake(): Promise<unknown> {
    return this.decide(
      (t) => t.dropRecords(this.path, [], []),
      () => undefined,
      this.recheck.size > 0 || this.heldPutBack,
    );
  }

  /** The decoded owner keys of records (checkIo's lost handles). */
  decode(r: StoreRecord) {
    return decodeRecord(r.data, this.path);
  }

  // ---- the cached state ------------------------------------------------------------------------


  /** Rebuilds the table from the cached records (after the sessions they belong to changed). */
  refresh(): void {
    if (this.built) this.build();
  }

  private apply(changes: readonly Change[]): void {
    const byId = new Map(this.records.map((r) => [r.id, r]));
    for (const c of changes) {
      for (const id of c.removed) byId.delete(id);
      for (const r of c.put) byId.set(r.id, r);
    }
    this.records = [...byId.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The table of this file's records (a decision's starting point). */
  private build(): void {
    const me = this.space.config.node;
    this.table = new LockTable({ policy: this.space.config.policy, graph: this.graph, hooks: this.space.tableHooks(() => this.out) });
    this.lockIds.clear();
    this.waiterIds.clear();
    this.epochOf.clear();
    this.sessionsOf.clear();
    const locks: Lock[] = [];
    const waiters: RestoredWaiter[] = [];
    const waiterRecords: StoreRecord[] = [];
    this.leftOut = false;
    for (const r of this.records) {
      // A dead session's records, and this node's from a session it lost, hold nothing any more;
      // nor does what a lock request answered as failed put (Unsure).
      if (this.dead.has(`${r.node}|${r.epoch}`) || (r.node === me && r.epoch < this.space.epoch) || (this.unsure.size > 0 && this.undoing(r.id))) {
        this.leftOut = true;
        continue;
      }
      const d = decodeRecord(r.data, this.path);
      let req = d.req;
      this.addSession(req.owner, `${r.node}|${r.epoch}`);
      if (r.node === me) {
        const o = this.origins.get(r.id);
        if (o !== undefined) req = { ...req, origin: o };
      } else {
        this.epochOf.set(req.owner, r.epoch);
        // F_GETLK about another node's holder reports lockPid 0 (API.md): its pid means nothing
        // here. Its record keeps the real one.
        const origin = { ...req.origin, pid: 0, event: { ...req.origin.event, [REMOTE]: true } };
        this.remotePid.set(origin, req.origin.pid);
        req = { ...req, origin };
      }
      if (r.state === 'held') {
        const l = lockOf(req);
        this.lockIds.set(l, r.id);
        locks.push(l);
        continue;
      }
      const hostId = r.node === me ? this.space.waits.get(r.id) : undefined;
      // This node's waiter that no request here stands for (its worker died): left out, so removed.
      if (r.node === me && hostId === undefined) {
        this.leftOut = true;
        continue;
      }
      waiters.push({ req, since: d.since, settle: this.settleOf(r), requestId: hostId });
      waiterRecords.push(r);
    }
    // This node's locks a lock request answered as failed removed go back, as new records (the
    // next step puts them), unless the owner holds them already (that step's reply was lost too).
    let putBack = false;
    for (const u of this.unsure.values()) {
      if (!u.applied) continue;
      for (const r of u.removed) {
        const req = decodeRecord(r.data, this.path).req;
        if (r.epoch !== this.space.epoch || this.coveredBefore(req, (id) => this.undoing(id))) continue;
        const o = u.origins.get(r.id);
        locks.push(lockOf(o === undefined ? req : { ...req, origin: o }));
        putBack = true;
      }
    }
    const ws = this.table.restoreFile(this.path, locks, waiters);
    // The engine holds the edges of every waiter as the node that last changed the file computed
    // them on this same state (the core decides alike everywhere): only changes are sent. Unless
    // this table is not that state: then they are sent whole (resend).
    this.edgesSent.clear();
    const waiting = new Set<string>();
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      const id = waiterRecords[i]!.id;
      this.waiterIds.set(w, id);
      if (w.req.kind !== 'posix') continue;
      waiting.add(id);
      if (this.leftOut || putBack) this.resend.add(id);
      if (this.heldPutBack) {
        this.resend.add(id);
        this.recheck.add(id);
      }
      if (w.blockers.size === 0 && w.queuedBehind.size === 0) continue;
      const sessions = this.targetSessions(w);
      this.edgesSent.set(id, [targetKeys(w.blockers, sessions), targetKeys(w.queuedBehind, sessions)]);
    }
    for (const id of this.resend) if (!waiting.has(id)) this.resend.delete(id);
    for (const id of this.recheck) if (!waiting.has(id)) this.recheck.delete(id);
  }

  /** How a waiter of the records ends: this node's answers its request, another node's gets an event. */
  private settleOf(r: StoreRecord): (result: number) => void {
    if (r.node !== this.space.config.node) {
      return (result) => this.out.notify.push({ node: r.node, epoch: r.epoch, requestId: r.requestId, kind: 'end', data: String(result) });
    }
    return (result) => {
      this.out.answers.push(() => this.space.endWait(r.id, result));
      this.out.ends.push({ rid: r.id, result });
    };
  }

  // ---- one decision ------------------------------------------------------------------------------

  /**
   * Decides `run` on the current state and commits it (see the file comment). Resolves with what
   * `run` returned once the step committed, or with `failed()` when it could not: then a `mustRun`
   * call (a release of any kind) is owed to the file's next step.
   */
  async decide(run: Run, failed: () => unknown, mustRun: boolean): Promise<unknown> {
    const deadline = performance.now() + this.space.config.requestTimeoutMs;
    // Whether the cache was read from the engine during this call: a decision that changes nothing
    // (a refusal, F_GETLK, checkIo) may then answer at once; otherwise the cache may be stale (any
    // node may have changed the file since), so an empty step checks its version first.
    let fresh = false;
    // The engine refused the step in a grace period: decided again with the wake-up pass held
    // (releases go through, their waiters wait for the pass at the grace period's end).
    let hold = false;
    // Waiters the engine just found on a cycle when their edges were checked whole (recheck):
    // ended with EDEADLK in the next iteration, and only there (a later reply may say otherwise).
    let deadlocked: string[] = [];
    for (;;) {
      // A new session: its message first (the connection's session changes with it), then this
      // file's re-assertion, if the engine lost its data.
      if (this.space.awaitingSession() && !(await this.space.nextSession(this.space.epoch, deadline))) return this.giveUp(run, failed, mustRun);
      while (this.reasserting !== undefined) await this.reasserting;
      const gen = this.gen;
      if (!this.built) {
        // Nothing cached: decided as if the file held nothing (version 0), which is true of most
        // files a lock starts on; if it is not, the commit says so with every record, and the
        // call is decided again. An uncontended lock costs one round trip, never a load first.
        this.built = true;
        this.build();
      }
      this.out = emptyOutcome();
      this.table.wakeups = !hold;
      const owed = this.owed;
      if (this.space.config.policy === 'fifo') await this.askReach(run.owner);
      // Records left out of the table, or a pass held in a grace period: whoever they blocked may
      // fit now (the wake-up pass).
      if (this.leftOut || this.wakeOwed) await this.table.dropRecords(this.path, [], []);
      for (const o of owed) await o(this.table);
      for (const id of deadlocked) {
        const w = this.waiterOf(id);
        if (w !== undefined) await this.table.cancel({ waiter: w, path: this.path }, 'deadlock');
      }
      deadlocked = [];
      const res = await run(this.table);
      const d = this.diff();
      // A read that found the bytes free is checked against a grace period too: records not put
      // back yet could make it untrue (as NFS refuses LOCKT in its grace period), also when the
      // step carries other changes (owed releases, edges written whole, records left out).
      const free = run.free?.(res) === true;
      if (d === undefined && fresh && !free) {
        if (!hold) this.wakeOwed = false;
        this.deliver();
        return res;
      }
      // Decided on a cache a new session replaced meanwhile (the awaits above): decided again.
      if (gen !== this.gen || this.reasserting !== undefined) {
        fresh = false;
        this.build();
        continue;
      }
      // Until when the step is sent again after no reply, and then given up on: the request's
      // deadline, or, when a wait that outlasts it (a grace period) came first, requestTimeoutMs
      // from now. It goes with the step, and the engine refuses the step past it ('late'): a step
      // held up on its way never applies after its request was answered as failed (giveUp).
      const now = performance.now();
      const sendBy = now < deadline ? deadline : now + this.space.config.requestTimeoutMs;
      const step: Step = { ...(d?.step ?? { file: this.path, base: this.version }), grants: (d?.step.grants ?? false) || free, deadline: performance.timeOrigin + sendBy };
      const epoch = this.space.epoch;
      let reply: CommitReply;
      /** The id the step was sent again with, after a reply that never came. */
      let resent: string | undefined;
      try {
        reply = await this.space.link.commit(step);
        while (!reply.ok && reply.reason === 'unreachable' && performance.now() < sendBy && gen === this.gen) {
          // The same step again, by id: if the first one applied, the stale reply lists it.
          await sleep(20);
          // Never sent under a session that replaced the cache meanwhile.
          if (gen !== this.gen) break;
          resent = reply.step;
          reply = await this.space.link.commit({ ...step, id: resent });
        }
      } catch (e) {
        // A malformed step: a bug of ours, never a reply. Nothing was applied; trying again would
        // only repeat it.
        this.space.report(e);
        return this.giveUp(run, failed, mustRun);
      }
      // The reply is about the engine as it was before a new session replaced the cache (the
      // step went out under the old one): nothing of it stands; decided again.
      if (gen !== this.gen) {
        fresh = false;
        this.build();
        continue;
      }
      // A send got no reply, and no later reply says whether it applied (the engine checks its
      // session before the version): the step may stand, though this decision moves on (Unsure).
      // Likewise a resend whose stale reply is the whole record set (the log no longer reaching
      // back) that holds no record the step minted: that proves nothing (a step that only removes
      // leaves no trace, and what it put may have gone since), so what it decided is kept too.
      const whole = !reply.ok && reply.reason === 'stale' ? reply.records : undefined;
      // The whole record set holds a record the step minted (newId: no other step puts it).
      const mintedSeen = whole !== undefined && d?.fresh.some((x) => whole.some((r) => r.id === x.id)) === true;
      const unknown = resent !== undefined && whole !== undefined && !mintedSeen;
      const unsure = reply.ok ? undefined : reply.reason === 'unreachable' ? reply.step : reply.reason === 'fenced' || reply.reason === 'reset' || unknown ? resent : undefined;
      if (unsure !== undefined && d !== undefined && run.undone === true) this.remember(unsure, d, sendBy, owed.length > 0);
      // Whatever this decision does next (gives up, or decides again), the step may stand.
      if (unsure !== undefined && d !== undefined) this.keepLost(unsure, d, run);
      if (reply.ok) {
        if (d !== undefined) this.committed(d, reply.version, now);
        // Decided on the records as the engine had them after the grace period: every waiter's
        // edges were written whole then (heldPutBack).
        if (now >= this.reassertedUntil) this.heldPutBack = false;
        this.wakeOwed = hold;
        // A step given up on before this one was sent, and past its deadline then, either applied
        // before this one (and was in the state this one was decided on: undone there) or never
        // will.
        for (const [id, u] of this.unsure) if (u.sendBy <= now) this.unsure.delete(id);
        const dropped = [...this.lostAnswers.values()];
        this.lostAnswers.clear();
        const out = this.done(owed, res);
        this.settleEnds(dropped);
        return out;
      }
      switch (reply.reason) {
        case 'stale': {
          if (reply.records !== undefined) this.records = [...reply.records];
          else this.apply(reply.missed ?? []);
          this.version = reply.version;
          this.noticeApplied(reply.missed);
          this.deliverLost(reply.missed);
          fresh = true;
          // Another node's step may have broken the cycle: the engine checks again.
          this.graph.cyclic.clear();
          // It applied after all (its first reply was lost): the missed changes name it, or, when the
          // log no longer reaches back, the whole record set holds a record it minted. Otherwise it
          // would be decided again on a state that has its own records (a Windows request then
          // waits behind, or is refused by, its own lock).
          const appliedAfterAll = resent !== undefined && (reply.missed?.some((c) => c.step === resent) === true || mintedSeen);
          if (d !== undefined && appliedAfterAll) {
            this.adopt(d);
            this.edgesWritten(d, now);
            this.wakeOwed = hold;
            this.build();
            return this.done(owed, res);
          }
          break;
        }
        case 'deadlock': {
          const e = d?.edges.find((x) => x.waiter === reply.waiter);
          if (e === undefined) throw new Error(`the engine named waiter ${reply.waiter}, which the step did not check`);
          // A waiter checked whole (recheck) did not grow in this decision: the table would not
          // end it, so it is ended as deadlocked in the next.
          if (this.recheck.has(reply.waiter)) deadlocked = [reply.waiter];
          else this.graph.cyclic.add(StepGraph.key(e.owner, e.hard));
          break;
        }
        case 'dead':
          for (const s of reply.sessions) this.dead.add(`${s.node}|${s.epoch}`);
          break;
        case 'grace': {
          // Grants wait for the grace period's end; nothing else does. First decided again with
          // the wake-up pass held: a release, a cancel or a reaping then goes through at once,
          // and a file's pass comes again when the period ends (wakeAt). A request whose own
          // decision grants waits outside the mailbox (Parked), so the requests behind it and
          // its own timeout, signal or close are not held up.
          const ms = Math.max(1, reply.retryInMs);
          if (!hold) {
            hold = true;
            this.space.wakeAt(this.path, performance.now() + ms);
          } else if (run.park === true) {
            this.build();
            this.out = emptyOutcome();
            return new Parked(ms);
          } else {
            // Nothing of this node's grants without a request (a bug if it ever does): waited out.
            await sleep(ms);
          }
          break;
        }
        case 'unreachable':
        case 'late':
          return this.giveUp(run, failed, mustRun);
        case 'reset':
          // The engine lost its data: the caller's side opens the next session; decided again under it.
          if (!(await this.space.nextSession(epoch, sendBy))) return this.giveUp(run, failed, mustRun);
          break;
        case 'fenced':
          // A new session whose message is on its way (the lease names it): decided again under it.
          if (this.space.awaitingSession()) break;
          // Fenced here because a renewal is late, not because the session was lost: decided
          // again once the renewal came.
          if (this.space.late() && (await this.space.renewed(sendBy))) break;
          if (!mustRun || performance.now() >= sendBy) return this.giveUp(run, failed, mustRun);
          await sleep(20);
          break;
      }
      this.build();
    }
  }

  /**
   * 'fifo' lets a request pass earlier waiters when queueing behind them would close a cycle
   * (SEMANTICS-POSIX.md §6). Whether one owner already waits for another is a question about every
   * node's edges: asked of the engine in one round trip, for every pair of this file's POSIX
   * owners (its waiters', and the request's), before the decision. Nothing to ask without a waiter.
   */
  private async askReach(requester: string | undefined): Promise<void> {
    this.graph.reach.clear();
    const owners = new Set<string>();
    for (const w of this.table.fileLocks(this.path)?.waiters ?? []) if (w.req.kind === 'posix') owners.add(w.req.owner);
    if (owners.size === 0) return;
    if (requester !== undefined) owners.add(requester);
    if (owners.size < 2) return;
    const list = [...owners].slice(0, 64);
    const pairs: [string, string][] = [];
    for (const a of list) for (const b of list) if (a !== b) pairs.push([a, b]);
    try {
      const r = await this.space.link.reaches(pairs);
      pairs.forEach(([a, b], i) => {
        if (r[i] === true) this.graph.reach.add(`${a}\n${b}`);
      });
    } catch (e) {
      // Without the answer the request queues in arrival order; the engine's checks stay exact.
      this.space.report(e);
    }
  }

  private done(owed: Run[], res: unknown): unknown {
    if (owed.length > 0) this.owed = this.owed.slice(owed.length);
    this.graph.cyclic.clear();
    this.deliver();
    return res;
  }

  /**
   * Nothing was decided in time: the decision is dropped; a release is owed to the file's next
   * step, which comes by itself a while later if no request brings it (retryOwed): the locks it
   * frees may be what another node's waiter waits for.
   */
  private giveUp(run: Run, failed: () => unknown, mustRun: boolean): unknown {
    this.build();
    this.out = emptyOutcome();
    if (mustRun) this.owed.push(run);
    // Also a step that may have applied after all: the next step finds out, and undoes it.
    if (this.owing) this.space.retryOwed(this.path);
    return failed();
  }

  /** A lock request's step `id` got no reply and the request is answered as failed: what undoes it, if it applied (Unsure). */
  private remember(id: string, d: Diffed, sendBy: number, owed: boolean): void {
    const me = this.space.config.node;
    const put = d.fresh.filter((x) => x.waiter !== undefined || nodeOf(x.lock.owner) === me).map((x) => x.id);
    if (put.length === 0) return;
    const gone = new Set(d.step.remove);
    // Not what the step removed only because an earlier unsure step's puts are being undone: that
    // lock never stood, and undoing this step must not put it back.
    const removed = this.records.filter((r) => gone.has(r.id) && r.node === me && r.state === 'held' && r.epoch === this.space.epoch && !this.undoing(r.id));
    const tangled = owed || (d.step.notify?.length ?? 0) > 0 || this.records.some((r) => gone.has(r.id) && r.state === 'waiting') || put.length !== d.fresh.length;
    const w = d.fresh.find((x) => x.waiter !== undefined)?.waiter;
    const waiter = w === undefined ? undefined : { req: w.req, before: this.ownerLocks(w.req.owner).filter((r) => !gone.has(r.id)) };
    // The owner waits here already: a grant of that waiter in the same step as this one's (and
    // merged with it) could not be told apart from this one's.
    const sibling = w !== undefined && this.records.some((r) => r.node === me && r.state === 'waiting' && this.decode(r).req.owner === w.req.owner);
    const origins = new Map<string, LockOrigin>();
    for (const r of [...removed, ...(waiter?.before ?? [])]) {
      const o = this.origins.get(r.id);
      if (o !== undefined) origins.set(r.id, o);
    }
    this.unsure.set(id, { put, removed, origins, sendBy, tangled: tangled || sibling, applied: false, waiter });
  }

  /** This node's locks of `owner` in the cache, under the current session. */
  private ownerLocks(owner: string): StoreRecord[] {
    const me = this.space.config.node;
    return this.records.filter((r) => r.node === me && r.state === 'held' && r.epoch === this.space.epoch && this.decode(r).req.owner === owner);
  }

  /**
   * An unsure step's waiter that another node granted before this node learned the step applied:
   * the owner's locks over (or next to, merged with) the waiter's bytes that it did not hold when
   * the step was sent, and the ones it held then that are gone (the grant replaced them).
   */
  private grantedAway(u: Unsure): { put: string[]; removed: StoreRecord[] } | undefined {
    if (u.waiter === undefined) return undefined;
    const { req, before } = u.waiter;
    const had = new Set(before.map((r) => r.id));
    const now = this.ownerLocks(req.owner);
    const put = now
      .filter((r) => {
        if (had.has(r.id)) return false;
        const l = this.decode(r).req;
        return l.start <= req.end + 1n && l.end + 1n >= req.start;
      })
      .map((r) => r.id);
    if (put.length === 0) return undefined;
    const ids = new Set(now.map((r) => r.id));
    return { put, removed: before.filter((r) => !ids.has(r.id)) };
  }

  /**
   * After a stale reply: whether a step given up on applied after all (its records are in the
   * file, or the missed changes name it). Undone when it changed nothing but its owner's locks and
   * they can all go back; otherwise (it woke or told others, another owner was granted bytes it
   * freed, or its waiter was granted elsewhere) it stays, and the fault says so.
   */
  private noticeApplied(missed: readonly Change[] | undefined): void {
    if (this.unsure.size === 0) return;
    const ids = new Set(this.records.map((r) => r.id));
    for (const [id, u] of this.unsure) {
      if (u.applied) continue;
      const present = u.put.some((x) => ids.has(x));
      // Its waiter, granted by another node: what the grant gave is undone instead.
      const granted = present ? undefined : this.grantedAway(u);
      if (granted !== undefined) {
        u.put = granted.put;
        u.removed = [...u.removed, ...granted.removed.filter((r) => !u.removed.some((x) => x.id === r.id))];
      }
      if (!present && granted === undefined && !(missed?.some((c) => c.step === id) ?? false)) continue;
      const undo = (present || granted !== undefined) && !u.tangled && u.removed.every((r) => this.restorable(r, u));
      const what = `a lock request's step on ${this.path} that got no reply from the engine (the request was answered as failed) had applied after all${granted === undefined ? '' : ', and another node granted its waiter'}`;
      if (!undo) {
        this.unsure.delete(id);
        this.space.report(new Error(`${what}; it could not be undone (it changed other requests too, or its bytes went on to others): its owner may hold them until it closes the file`));
        continue;
      }
      u.applied = true;
      this.space.report(new Error(`${what}; undone`));
    }
  }

  /**
   * Step `id` got no reply: what it decided for other requests is kept (lostAnswers), and a step
   * comes by itself to find out whether it applied (retryOwed). Not for a lock request's own
   * step that is undone if it applied (Unsure, not tangled): nothing of it stands then.
   */
  private keepLost(id: string, d: Diffed, run: Run): void {
    if (this.out.answers.length === 0 || (run.undone === true && this.unsure.get(id)?.tangled === false)) return;
    const ends: LostEnd[] = [];
    for (const e of this.out.ends) {
      const r = this.records.find((x) => x.id === e.rid);
      if (r === undefined) continue;
      const { req } = this.decode(r);
      const before = new Set(this.records.filter((x) => x.node === r.node && x.epoch === r.epoch && x.state === 'held' && this.decode(x).req.owner === req.owner).map((x) => x.id));
      ends.push({ rid: e.rid, result: e.result, owner: req.owner, start: req.start, end: req.end, before });
    }
    this.lostAnswers.set(id, { answers: this.out.answers, ends, fresh: d.fresh.map((x) => x.id) });
    this.space.retryOwed(this.path);
  }

  /**
   * Steps given up on that a stale reply shows applied (its missed changes name them, or the
   * whole record set has a record they minted): what they decided for other requests is
   * delivered now.
   */
  private deliverLost(missed: readonly Change[] | undefined): void {
    if (this.lostAnswers.size === 0) return;
    const ids = missed === undefined ? new Set(this.records.map((r) => r.id)) : undefined;
    for (const [id, l] of [...this.lostAnswers]) {
      const applied = ids === undefined ? missed!.some((c) => c.step === id) : l.fresh.some((x) => ids.has(x));
      if (!applied) continue;
      this.lostAnswers.delete(id);
      for (const a of l.answers) a();
    }
  }

  /**
   * Steps given up on whose fate no reply told (a step that only removes records leaves no trace
   * in a whole record set), once a later step committed: none can apply any more, and the records
   * are the engine's after them. A waiter they ended with a failure (a timeout's or a signal's
   * cancel, a close), still waiting here, whose record is gone, and whose owner holds no new lock
   * over any of its bytes (another node's grant, maybe split since by the owner's own later
   * requests: its inbox event answers it) ended: it is answered
   * with the failure the last of them decided for it (an earlier one that ended it too was decided
   * on a cache where it still waited, so it cannot have applied). A grant is never inferred from
   * a record's absence: another node may have failed that waiter (EDEADLK), its event on the way.
   */
  private settleEnds(dropped: readonly Lost[]): void {
    const last = new Map<string, LostEnd>();
    for (const l of dropped) for (const e of l.ends) last.set(e.rid, e);
    for (const e of last.values()) {
      if (e.result === 0 || !this.space.waits.has(e.rid) || this.records.some((r) => r.id === e.rid)) continue;
      const granted = this.records.some((r) => {
        if (r.state !== 'held' || e.before.has(r.id)) return false;
        const { req } = this.decode(r);
        return req.owner === e.owner && req.start <= e.end && req.end >= e.start;
      });
      if (!granted) this.space.endWait(e.rid, e.result);
    }
  }

  /** Whether `r`, an owner's lock the step replaced, can go back: no other owner holds conflicting bytes now. */
  private restorable(r: StoreRecord, u: Unsure): boolean {
    const req = decodeRecord(r.data, this.path).req;
    return !this.records.some((x) => x.state === 'held' && !u.put.includes(x.id) && conflicts(req, decodeRecord(x.data, this.path).req));
  }

  /** Whether the record is one a step given up on put (left out of the table: the next step removes it). */
  private undoing(id: string): boolean {
    for (const u of this.unsure.values()) if (u.applied && u.put.includes(id)) return true;
    return false;
  }

  /** Whether releases are owed to this file's next step, or a step given up on may have applied (Unsure, lostAnswers): each needs a step. */
  get owing(): boolean {
    return this.owed.length > 0 || this.unsure.size > 0 || this.lostAnswers.size > 0;
  }

  private deliver(): void {
    const { answers } = this.out;
    this.out = emptyOutcome();
    for (const a of answers) a();
  }

  /** What the decision changed, as a step on the cached version; undefined when nothing did. */
  private diff(): Diffed | undefined {
    const me = this.space.config.node;
    const f = this.table.fileLocks(this.path);
    const keep = new Set<string>();
    const put: RecordInput[] = [];
    const fresh: Fresh[] = [];
    for (const l of f?.granted() ?? []) {
      const known = this.lockIds.get(l);
      if (known !== undefined) {
        keep.add(known);
        continue;
      }
      const id = this.space.newId();
      fresh.push({ id, lock: l });
      const node = nodeOf(l.owner);
      const data = encodeLock(l, undefined, this.remotePid.get(l.origin));
      put.push(node === me ? { id, state: 'held', data } : { id, state: 'held', data, node, epoch: this.epochOf.get(l.owner)! });
    }
    const edges: EdgeInput[] = [];
    for (const w of f?.waiters ?? []) {
      let id = this.waiterIds.get(w);
      if (id === undefined) {
        // A new waiter is always this node's: requests come from here.
        id = this.space.newId();
        fresh.push({ id, waiter: w });
        put.push({ id, state: 'waiting', data: encodeLock(w.req, w.since), requestId: id });
      } else {
        keep.add(id);
      }
      if (w.req.kind !== 'posix') continue;
      const sent = this.edgesSent.get(id);
      const sessions = this.targetSessions(w);
      const hardKeys = targetKeys(w.blockers, sessions);
      if (!this.resend.has(id) && sameKeys(hardKeys, sent?.[0]) && sameKeys(targetKeys(w.queuedBehind, sessions), sent?.[1])) continue;
      const hard = [...w.blockers];
      // Checked when it waits on something new: an owner, or an owner's lock under a new session.
      const grown = this.recheck.has(id) ? hard.length > 0 : hardKeys.some((k) => !(sent?.[0] ?? []).includes(k));
      edges.push({ waiter: id, owner: w.req.owner, hard, soft: [...w.queuedBehind], sessions, check: grown });
    }
    const remove: string[] = [];
    for (const r of this.records) if (!keep.has(r.id)) remove.push(r.id);
    const notify = this.out.notify;
    if (put.length === 0 && remove.length === 0 && edges.length === 0 && notify.length === 0) return undefined;
    // The engine checks an edge against the step's edge changes before it: unchecked ones (edges
    // written whole among them) go first, so no check walks an edge this step replaces.
    edges.sort((a, b) => Number(a.check === true) - Number(b.check === true));
    // Only a grant of bytes nobody held is refused in a grace period; a split or downgrade is not one.
    const grants = fresh.some((x) => x.lock !== undefined && !this.coveredBefore(x.lock));
    return { step: { file: this.path, base: this.version, remove, put, grants, notify, edges }, fresh, edges };
  }

  private addSession(owner: string, session: string): void {
    const ss = this.sessionsOf.get(owner);
    if (ss === undefined) this.sessionsOf.set(owner, [session]);
    else if (!ss.includes(session)) ss.push(session);
  }

  /**
   * The sessions of the owners `w` waits on (EdgeInput.sessions): of their records here, or, for an
   * owner the decision granted its first lock, the session its record will have.
   */
  private targetSessions(w: Waiter): Record<string, readonly string[]> {
    const out: Record<string, readonly string[]> = {};
    const me = this.space.config.node;
    for (const set of [w.blockers, w.queuedBehind]) {
      for (const o of set) {
        let ss: readonly string[] | undefined = this.sessionsOf.get(o);
        if (ss === undefined) {
          const node = nodeOf(o);
          const e = node === me ? this.space.epoch : this.epochOf.get(o);
          ss = e === undefined ? undefined : [`${node}|${e}`];
        }
        if (ss !== undefined) out[o] = ss;
      }
    }
    return out;
  }

  /** Whether the owner held a lock of this mode over all of `l` before the decision (a split, a downgrade). */
  private coveredBefore(l: Lock | LockRequest, skip?: (id: string) => boolean): boolean {
    for (const r of this.records) {
      if (r.state !== 'held' || skip?.(r.id) === true) continue;
      const d = decodeRecord(r.data, this.path).req;
      if (d.owner === l.owner && d.start <= l.start && d.end >= l.end && (d.write || !l.write)) return true;
    }
    return false;
  }

  /** The step applied at `version`: the cache is the decided state. */
  private committed(d: Diffed, version: number, sentAt: number): void {
    const me = this.space.config.node;
    const removed = new Set(d.step.remove);
    // A later step that changed the locks of an unsure waiter's owner: what a grant of that waiter
    // gave can no longer be told apart from what the owner asked for since.
    for (const u of this.unsure.values()) {
      if (u.waiter === undefined || u.applied) continue;
      const o = u.waiter.req.owner;
      if (d.fresh.some((x) => (x.lock ?? x.waiter.req).owner === o) || this.records.some((r) => removed.has(r.id) && r.state === 'held' && this.decode(r).req.owner === o)) u.tangled = true;
    }
    const next = this.records.filter((r) => !removed.has(r.id));
    let seq = next.length === 0 ? 0 : next[next.length - 1]!.seq;
    const putById = new Map((d.step.put ?? []).map((p) => [p.id, p]));
    for (const id of removed) {
      this.origins.delete(id);
      this.edgesSent.delete(id);
      this.resend.delete(id);
      this.recheck.delete(id);
    }
    for (const x of d.fresh) {
      const p = putById.get(x.id)!;
      next.push({ id: x.id, node: p.node ?? me, epoch: p.epoch ?? this.space.epoch, state: p.state, requestId: p.requestId ?? '', data: p.data, seq: ++seq });
      this.addSession((x.lock ?? x.waiter.req).owner, `${p.node ?? me}|${p.epoch ?? this.space.epoch}`);
      if (x.lock !== undefined) this.lockIds.set(x.lock, x.id);
      else this.waiterIds.set(x.waiter, x.id);
    }
    this.adopt(d);
    for (const e of d.edges) this.edgesSent.set(e.waiter, [targetKeys(e.hard, e.sessions), targetKeys(e.soft ?? [], e.sessions)]);
    this.edgesWritten(d, sentAt);
    this.records = next;
    this.version = version;
  }

  /**
   * The step's edges are in the engine: no longer to be written whole, except a waiter put back
   * after an engine loss while the grace period may still run (judged by when the step was sent:
   * one committed just before the period's end may be answered after it).
   */
  private edgesWritten(d: Diffed, sentAt: number): void {
    const graceOver = sentAt >= this.reassertedUntil;
    for (const e of d.edges) {
      if (this.recheck.has(e.waiter) && !graceOver) continue;
      this.resend.delete(e.waiter);
      this.recheck.delete(e.waiter);
    }
  }

  /** The table's waiter of record `id`, if it waits. */
  private waiterOf(id: string): Waiter | undefined {
    for (const [w, x] of this.waiterIds) if (x === id) return w;
    return undefined;
  }

  /** This node's records the step put: their origins, and its new waiter's request. */
  private adopt(d: Diffed): void {
    const me = this.space.config.node;
    for (const x of d.fresh) {
      if (x.waiter !== undefined) {
        this.origins.set(x.id, x.waiter.req.origin);
        if (x.waiter.requestId !== undefined) this.space.queued(x.waiter.requestId, x.id);
      } else if (nodeOf(x.lock.owner) === me) {
        this.origins.set(x.id, x.lock.origin);
      }
    }
  }

  // ---- what the actor runs ---------------------------------------------------------------------

  /** Request `hostId`: its result, or a Pending once it waits (committed). */
  request(hostId: number, call: Call, done: (res: unknown) => void): Promise<unknown> {
    const read = call.op === 'checkIo' || (call.op === 'lock' && call.cmd === F_GETLK);
    const run: Run = (t) => {
      t.requestId = hostId;
      // Its answer, when the request waits and a later step of this table ends it, leaves only
      // once that step committed, like every other answer.
      return t.run(call, (v) => {
        this.out.answers.push(() => done(v));
        const rid = this.space.ridOf(hostId);
        if (rid !== undefined) this.out.ends.push({ rid, result: typeof v === 'object' && v !== null ? (v as PosixReply).result : (v as number) });
      });
    };
    if (call.op === 'lock' && call.req.kind === 'posix' && !read) run.owner = call.req.owner;
    if ((call.op === 'lock' || call.op === 'lockFile') && !read && cancellable(call)) run.undone = true;
    if (call.op === 'checkIo') run.free = (res) => res === 0;
    else if (read) run.free = (res) => (res as PosixReply).lockType === F_UNLCK;
    // What can grant: a lock request, or a read that found the bytes free.
    run.park = read || cancellable(call);
    return this.decide(
      run,
      () => 'failed',
      !cancellable(call) && !read,
    );
  }

  /** Ends this node's waiter `rid` for `reason` (its answer leaves once committed); false if it no longer waits. */
  cancel(rid: string, reason: CancelReason): Promise<unknown> {
    return this.decide(
      (t) => {
        const w = this.waiterOf(rid);
        return w === undefined ? false : t.cancel({ waiter: w, path: this.path }, reason);
      },
      () => false,
      true,
    );
  }

  /** Removes the records of dead sessions (the reaper's work) and wakes who they blocked. */
  reap(sessions: readonly { node: string; epoch: number }[]): Promise<unknown> {
    for (const s of sessions) this.dead.add(`${s.node}|${s.epoch}`);
    this.refresh();
    return this.reread();
  }


  /** stop(): every waiter of this node ends ('stop'), every lock of this node goes. */
  stopAll(): Promise<unknown> {
    return this.decide(
      (t) => {
        for (const [w, id] of [...this.waiterIds]) if (this.space.waits.has(id)) void t.cancel({ waiter: w, path: this.path }, 'stop');
        const mine = [...this.lockIds.keys()].filter((l) => nodeOf(l.owner) === this.space.config.node);
        return t.dropRecords(this.path, mine, []);
      },
      () => undefined,
      false,
    );
  }
}

/** Every shared file of one worker, and this node's requests on them. */
export class SharedFiles {
  private readonly files = new Map<string, SharedFile>();
  /** This node's waiting requests: record id -> host request id. */
  readonly waits = new Map<string, number>();
  /** Requests received and not answered: host id -> what answers them. */
  private readonly requests = new Map<number, PendingRequest>();
  /** Handles whose locks went with a lost session: I/O through them fails until they close (path|handle key). */
  private readonly lostHandles = new Set<string>();
  /** This node's session, as this worker was last told (adopt). */
  epoch: number;
  private readonly lease: Float64Array;
  /** Decisions waiting for the next session's message (nextSession). */
  private sessionWaiters: (() => void)[] = [];
  private counter = 0;
  private stopping = false;
  /** Per file with owed releases: the timer of their next try, and how many tries they had (retryOwed). */
  private readonly owedRetries = new Map<string, { timer: NodeJS.Timeout | undefined; tries: number }>();

  constructor(
    readonly link: StoreLink,
    readonly config: SharedConfig,
    private readonly hooks: TableHooks,
    private readonly fault: (message: string) => void,
    /** Open files of a mount whose POSIX or flock locks went with a lost session (their I/O must fail). */
    private readonly lostFiles: (fileHandles: number[]) => void = () => {},
    /** The tag of this host's record ids: the node and a random part, unique in the lock space. */
    private readonly idPrefix = `${config.node}.${randomUUID().slice(0, 8)}.`,
  ) {
    this.lease = new Float64Array(config.lease);
    this.epoch = config.epoch;
  }

  /** A record id unique in the lock space: the node, this actor host's random tag, a counter. */
  newId(): string {
    return this.idPrefix + (++this.counter).toString(36);
  }

  report(e: unknown): void {
    this.fault(`shared lock space: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** The hooks of one decision: no hook hears of another node's locks; notices leave with the answers. */
  tableHooks(out: () => Outcome): TableHooks {
    const { approve, released } = this.hooks;
    return {
      approve: approve === undefined ? undefined : (family: Family, event) => ((event as Record<symbol, unknown>)[REMOTE] === true ? 0 : approve(family, event)),
      released:
        released === undefined
          ? undefined
          : (family: Family, event) => {
              if ((event as Record<symbol, unknown>)[REMOTE] !== true) out().answers.push(() => released(family, event));
            },
    };
  }

  private file(path: string): SharedFile {
    let f = this.files.get(path);
    if (f === undefined) {
      f = new SharedFile(path, this);
      this.files.set(path, f);
    }
    return f;
  }

  private sweep(f: SharedFile): void {
    if (f.idle && this.files.get(f.path) === f) this.files.delete(f.path);
  }

  /** Runs a request of this node; its answer goes to `target` once its step committed. */
  run(hostId: number, raw: Call, target: ReplyTarget): void {
    const call = qualify(raw, this.config.node);
    if (this.stopping) {
      target.answer(hostId, raw.path, cancellable(call) ? (call.op === 'lock' ? replyOf(call.base, cancelResult('stop', false)) : cancelResult('stop', true)) : generic(call), -1, false, false);
      return;
    }
    const r: PendingRequest = { call, target, since: Date.now(), rid: undefined, cancelled: undefined, parked: false, seq: ++this.arrivals };
    this.requests.set(hostId, r);
    // No session (it was lost, the next one is not open yet): nothing is answered from what it
    // held, and nothing new is granted. Releases go on (the store refuses them until a session is
    // back, and they are owed to the file's next step). A renewal that is only late fences the
    // node too, but the session may well live: the request is decided, and waits for the renewal
    // up to requestTimeoutMs (decide, 'fenced').
    if (this.sessionGone() && (cancellable(call) || call.op === 'checkIo' || call.op === 'lock')) {
      this.finish(hostId, call.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION, false);
      return;
    }
    if (call.op === 'checkIo' && this.lostHandles.has(`${call.path}|${windowsHandleOf(call.owner)}@${this.config.node}`)) {
      this.finish(hostId, ERROR_LOCK_VIOLATION, false);
      return;
    }
    if (call.op === 'closeHandle' || call.op === 'release') this.lostHandles.delete(`${call.path}|${call.handleKey}`);
    this.attempt(hostId, r);
  }

  /** Runs request `hostId` in its file's mailbox; again after a grace period it waited out (Parked). */
  private attempt(hostId: number, r: PendingRequest): void {
    const { call, target } = r;
    const f = this.file(call.path);
    void f
      .enqueue(async () => {
        // Ended by its signal or timeout while it waited in the mailbox: a lock request never runs.
        if (r.cancelled !== undefined && cancellable(call)) return this.finish(hostId, cancelResult(r.cancelled, call.op === 'lockFile'), false);
        // A close ends the requests through its handle that wait out a grace period, as it ends
        // the waiters through it (core closedWith), in the mailbox's order.
        if (call.op === 'closeHandle' || call.op === 'release') this.endParked(call);
        const res = await f.request(hostId, call, (v) => this.endRequest(hostId, typeof v === 'object' && v !== null ? (v as PosixReply).result : (v as number)));
        if (res instanceof Parked) {
          if (!this.requests.has(hostId)) return;
          // Its timeout or signal came while it was decided.
          if (r.cancelled !== undefined) return this.finish(hostId, cancelResult(r.cancelled, call.op === 'lockFile' || call.op === 'checkIo'), true);
          this.park(hostId, r, res.ms);
          return;
        }
        if (res === 'failed') return this.finish(hostId, call.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION, false);
        if (typeof res === 'object' && res !== null && 'waiter' in res) {
          if (!this.requests.has(hostId)) return;
          target.queued(hostId, call.path, false);
          if (r.cancelled !== undefined && r.rid !== undefined) await f.cancel(r.rid, r.cancelled);
          return;
        }
        if (!this.requests.has(hostId)) return;
        this.requests.delete(hostId);
        target.answer(hostId, call.path, res as Result, -1, false, call.op === 'lock' && call.cmd === F_GETLK);
      })
      .catch((e: unknown) => {
        this.report(e);
        if (this.requests.has(hostId)) {
          this.requests.delete(hostId);
          target.answer(hostId, call.path, generic(call), -1, false, false);
        }
      })
      .finally(() => this.sweep(f));
  }

  /** Requests received so far: their order of arrival (PendingRequest.seq). */
  private arrivals = 0;
  /**
   * Requests waiting out a grace period (Parked), per file: in order of arrival, and the timer that
   * runs them all again, in that order, once the period ends (they queue as they came).
   */
  private readonly parked = new Map<string, { ids: number[]; at: number; timer: NodeJS.Timeout | undefined }>();

  private park(hostId: number, r: PendingRequest, ms: number): void {
    const path = r.call.path;
    let p = this.parked.get(path);
    if (p === undefined) this.parked.set(path, (p = { ids: [], at: 0, timer: undefined }));
    let i = p.ids.length;
    while (i > 0 && (this.requests.get(p.ids[i - 1]!)?.seq ?? 0) > r.seq) i--;
    p.ids.splice(i, 0, hostId);
    r.parked = true;
    // A few ms past the engine's count: a request run again before the period ended would be
    // refused again and queue behind those after it.
    const at = performance.now() + ms + 5;
    if (p.timer !== undefined && at <= p.at) return;
    clearTimeout(p.timer);
    p.at = at;
    const q = p;
    p.timer = setTimeout(() => {
      if (this.parked.get(path) === q) this.parked.delete(path);
      // stop() answers them: run again now, one could commit a grant nobody is told of.
      if (this.stopping) return;
      for (const id of q.ids) {
        const x = this.requests.get(id);
        if (x === undefined || !x.parked) continue;
        x.parked = false;
        this.attempt(id, x);
      }
    }, at - performance.now());
  }

  /** Ends the parked requests that close `c` of their handle ends, with the code it ends a waiter with. */
  private endParked(c: Call): void {
    for (const hostId of [...(this.parked.get(c.path)?.ids ?? [])]) {
      const r = this.requests.get(hostId);
      const req = r === undefined || !('req' in r.call) ? undefined : r.call.req;
      const code = req === undefined ? undefined : closedWith(c, req);
      if (code === undefined) continue;
      this.unpark(hostId, r!);
      this.finish(hostId, code, true);
    }
  }

  private unpark(hostId: number, r: PendingRequest): void {
    if (!r.parked) return;
    r.parked = false;
    const p = this.parked.get(r.call.path);
    if (p === undefined) return;
    p.ids = p.ids.filter((x) => x !== hostId);
    if (p.ids.length > 0) return;
    clearTimeout(p.timer);
    this.parked.delete(r.call.path);
  }

  /** The waiter of request `hostId` is in the store as record `rid`. */
  queued(hostId: number, rid: string): void {
    const r = this.requests.get(hostId);
    if (r === undefined) return;
    r.rid = rid;
    this.waits.set(rid, hostId);
  }

  /** The record id of request `hostId`'s waiter, once its step committed. */
  ridOf(hostId: number): string | undefined {
    return this.requests.get(hostId)?.rid;
  }

  /** This node's waiter `rid` ended with `code` (decided here or by another node). */
  endWait(rid: string, code: number): void {
    const hostId = this.waits.get(rid);
    this.waits.delete(rid);
    if (hostId !== undefined) this.endRequest(hostId, code);
  }

  private endRequest(hostId: number, code: number): void {
    this.finish(hostId, code, true);
  }

  private finish(hostId: number, code: number, waited: boolean): void {
    const r = this.requests.get(hostId);
    if (r === undefined) return;
    this.requests.delete(hostId);
    if (r.rid !== undefined) this.waits.delete(r.rid);
    const c = r.call;
    const res: Result = c.op === 'lock' ? replyOf(c.base, code) : c.op === 'lockFile' || c.op === 'checkIo' || c.op === 'unlockFile' ? code : undefined;
    r.target.answer(hostId, c.path, res, waited ? Date.now() - r.since : -1, false, false);
  }

  /** Ends request `hostId` for `reason` if it still waits (or as soon as it would). */
  cancel(hostId: number, reason: CancelReason): void {
    const r = this.requests.get(hostId);
    if (r === undefined || r.cancelled !== undefined) return;
    r.cancelled = reason;
    // Waiting out a grace period: ended now, like a waiter (a read too: it waits as well).
    if (r.parked) {
      this.unpark(hostId, r);
      this.finish(hostId, cancelResult(reason, r.call.op === 'lockFile' || r.call.op === 'checkIo'), true);
      return;
    }
    if (r.rid === undefined) return;
    const f = this.file(r.call.path);
    const rid = r.rid;
    void this.inMailbox(f, () => f.cancel(rid, reason));
  }

  /** Runs `job` in `f`'s mailbox; a failure is reported, and the actor goes once it is idle. */
  private inMailbox(f: SharedFile, job: () => Promise<unknown>): Promise<void> {
    return f
      .enqueue(job)
      .then(
        () => undefined,
        (e: unknown) => this.report(e),
      )
      .finally(() => this.sweep(f));
  }

  /** Events of this node's inbox for `path`: waiters another node granted or failed. */
  ended(path: string, events: readonly WaiterEnded[]): void {
    const f = this.file(path);
    const granted = events.filter((e) => f.grantedRemotely(e.requestId, e.result)).map((e) => e.requestId);
    void this.inMailbox(f, async () => {
      if (granted.length > 0) f.refresh();
      // A waiter this node never learned it queued (its step's reply was lost, Unsure): its grant is undone now.
      const reread = granted.some((rid) => f.mayHaveMerged(rid)) || events.some((e) => f.unsureWaiter(e.requestId));
      for (const e of events) this.endWait(e.requestId, e.result);
      if (reread) await f.reread();
    });
  }

  /** The reaper's work on `path`: remove dead sessions' records and wake who they blocked. */
  reap(path: string, sessions: readonly { node: string; epoch: number }[]): Promise<void> {
    const f = this.file(path);
    return this.inMailbox(f, () => f.reap(sessions));
  }

  /** Past the lease: the node must not act on what its session held (see SharedConfig.lease). */
  private fenced(): boolean {
    return performance.timeOrigin + performance.now() >= this.lease[0]!;
  }

  /** Fenced only because the session's renewal is late: the session may well live. */
  late(): boolean {
    return this.fenced() && !this.sessionGone() && !this.awaitingSession();
  }

  /** No session at all: the last one was lost and the next is not open (the lease is -Infinity). */
  sessionGone(): boolean {
    return this.lease[0] === Number.NEGATIVE_INFINITY;
  }

  /**
   * Resolves true once the lease is renewed past now, or names a new session; false when the
   * session is gone meanwhile, or at `deadline` (performance.now()). The lease is shared memory
   * that no message announces, so it is read every 10 ms, and only while a renewal is late.
   */
  async renewed(deadline: number): Promise<boolean> {
    for (;;) {
      if (this.awaitingSession() || !this.fenced()) return true;
      if (this.sessionGone()) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await sleep(Math.min(10, left));
    }
  }

  /** The lease names a session this worker was not told of yet: its message is on its way. */
  awaitingSession(): boolean {
    const e = this.lease[1]!;
    return e !== 0 && e !== this.epoch;
  }

  /** Resolves true once this worker acts on a session other than `from`, false at `deadline` (performance.now()). */
  nextSession(from: number, deadline: number): Promise<boolean> {
    if (this.epoch !== from) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.sessionWaiters = this.sessionWaiters.filter((x) => x !== w);
        resolve(false);
      }, Math.max(0, deadline - performance.now()));
      this.sessionWaiters.push(w);
    });
  }

  /**
   * This node acts on session `epoch` from now on (the caller's 'session' message; the
   * connection's session changed with it). `carried` is the previous one when the engine lost its
   * data while it was live: nothing it held was given to anyone, and each file puts its records
   * back at once, for `graceMs` more. Otherwise the previous session was lost, and this node's
   * locks with it (checkIo 33 through their handles until they close); its waiters end with the
   * family's generic code.
   */
  adopt(epoch: number, carried: number, graceMs: number): void {
    if (epoch === this.epoch) return;
    const old = this.epoch;
    this.epoch = epoch;
    if (carried !== 0 && carried === old) {
      const graceEndsAt = performance.now() + graceMs;
      for (const f of this.files.values()) f.beginReassert(graceEndsAt);
      // A release owed while the engine was away is put back with the rest (the cache still has
      // its locks): it is tried again right after the re-assertion, not after the backoff its
      // failed tries grew to (up to 5 s of a lock its owner was told is gone).
      for (const [path, o] of [...this.owedRetries]) {
        clearTimeout(o.timer);
        this.owedRetries.delete(path);
        this.retryOwed(path);
      }
    } else {
      for (const f of this.files.values()) {
        this.lose(f, f.ownRecords());
        f.sessionLost();
      }
      for (const [rid, hostId] of [...this.waits]) {
        const c = this.requests.get(hostId)?.call;
        this.endWait(rid, c?.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION);
      }
      // Session 0: none will come (displaced). Nothing cached stays, nothing owed is retried.
      if (epoch === 0) {
        this.dropOwedRetries();
        for (const f of [...this.files.values()]) {
          f.forget();
          this.sweep(f);
        }
      }
    }
    const waiting = this.sessionWaiters;
    this.sessionWaiters = [];
    for (const w of waiting) w();
  }

  /**
   * Releases owed to `path` (their steps could not be written in time), and lock requests' steps
   * that may have applied though no reply came (Unsure), are settled in a step of their own:
   * after 100 ms, then twice as long each time up to 5 s, while they are owed.
   */
  retryOwed(path: string): void {
    const o = this.owedRetries.get(path) ?? { timer: undefined, tries: 0 };
    if (this.stopping || this.epoch === 0 || o.timer !== undefined) return;
    const delay = Math.min(5000, 100 * 2 ** Math.min(o.tries++, 6));
    o.timer = setTimeout(() => {
      o.timer = undefined;
      const f = this.files.get(path);
      if (f === undefined || !f.owing) {
        this.owedRetries.delete(path);
        return;
      }
      // Still owing after the step (it gave up, or was sent before an unsure step's deadline):
      // the next try (a give-up has scheduled it already).
      void this.inMailbox(f, () => f.reread()).then(() => {
        if (!f.owing) this.owedRetries.delete(path);
        else this.retryOwed(path);
      });
    }, delay);
    o.timer.unref?.();
    this.owedRetries.set(path, o);
  }

  /** Stops every owed release's next try (stop(), or no session will come). */
  private dropOwedRetries(): void {
    for (const o of this.owedRetries.values()) clearTimeout(o.timer);
    this.owedRetries.clear();
  }

  /** Looks again at `path`'s waiters at `at` (performance.now()): the end of a grace period. */
  wakeAt(path: string, at: number): void {
    // One pass per file at a time: a pass that comes too early (in the grace period still) is
    // refused, and held, and asks for the next one.
    // A later end (a second loss in the period) moves the pending pass to it.
    const pending = this.wakeTimers.get(path);
    if (pending !== undefined && pending.at >= at) return;
    clearTimeout(pending?.timer);
    const timer = setTimeout(() => {
      this.wakeTimers.delete(path);
      const f = this.file(path);
      void this.inMailbox(f, () => f.wake());
    }, Math.max(0, at - performance.now()) + 1);
    timer.unref?.();
    this.wakeTimers.set(path, { timer, at });
  }

  /** The pending pass of each file (wakeAt), and when it runs. */
  private readonly wakeTimers = new Map<string, { timer: NodeJS.Timeout; at: number }>();

  /**
   * Records of this node that went with a lost session: held ones make their handles fail (checkIo
   * 33, EIO through a mount) until they close; waiting ones end with the family's generic code.
   */
  lose(f: SharedFile, records: readonly StoreRecord[]): void {
    const handles = new Set<number>();
    for (const r of records) {
      if (r.state === 'waiting') {
        const c = this.requests.get(this.waits.get(r.id) ?? 0)?.call;
        this.endWait(r.id, c?.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION);
        continue;
      }
      const { origin, kind } = f.decode(r).req;
      this.lostHandles.add(`${f.path}|${origin.handleKey}`);
      if (kind !== 'windows' && typeof origin.event.fileHandle === 'number') handles.add(origin.event.fileHandle);
    }
    if (handles.size > 0) this.lostFiles([...handles]);
  }

  /** stop(): this node's waiters end ('stop') and its locks go, file by file. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.dropOwedRetries();
    for (const t of this.wakeTimers.values()) clearTimeout(t.timer);
    this.wakeTimers.clear();
    const all = [...this.files.values()].map((f) => f.enqueue(() => f.stopAll()).catch((e: unknown) => this.report(e)));
    await Promise.all(all);
    for (const [hostId, r] of [...this.requests]) {
      this.unpark(hostId, r);
      const c = r.call;
      const code = cancelResult('stop', c.op === 'lockFile');
      this.requests.delete(hostId);
      r.target.answer(hostId, c.path, c.op === 'lock' ? replyOf(c.base, code) : c.op === 'lockFile' ? code : undefined, -1, false, false);
    }
  }

  counts(): { files: number; waiters: number; busy: number } {
    let busy = 0;
    for (const f of this.files.values()) if (!f.idle) busy++;
    return { files: this.files.size, waiters: this.waits.size, busy };
  }
}

interface PendingRequest {
  readonly call: Call;
  readonly target: ReplyTarget;
  readonly since: number;
  rid: string | undefined;
  cancelled: CancelReason | undefined;
  /** Waiting out a grace period (Parked): run again, in order of arrival, once it ends. */
  parked: boolean;
  /** Its order of arrival among this worker's requests. */
  readonly seq: number;
}

/** A request's answer when nothing could be decided: its family's generic code. */
function generic(call: Call): Result {
  return call.op === 'lock' ? ({ ...replyOf(call.base, -ENOLCK) } as PosixReply) : call.op === 'lockFile' || call.op === 'checkIo' || call.op === 'unlockFile' ? ERROR_LOCK_VIOLATION : undefined;
}
