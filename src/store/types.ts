/**
 * The store's vocabulary: what a per-file actor commits, what it gets back, and the engine
 * interface both engines (memory, redis) implement. The design note is in ./index.ts.
 */

/** A granted lock ('held') or a blocked request ('waiting') of one file, opaque to the store. */
export interface StoreRecord {
  /** Unique in its file. LockStore.newId() makes ids unique in the whole lock space. */
  readonly id: string;
  /** The node the lock or request belongs to. */
  readonly node: string;
  /** The session of `node` it belongs to; a record outlives no session (see the design note). */
  readonly epoch: number;
  readonly state: 'held' | 'waiting';
  /** Waiters: the request id on its node, what that node's inbox events name. '' for held locks. */
  readonly requestId: string;
  /** The core's serialized record. */
  readonly data: string;
  /** Position in the file (engine-assigned; ascending = file order). 0 in a record not yet stored. */
  readonly seq: number;
}

/** A record to put. `epoch` may be left out for this node's own records: the store stamps its session. */
export interface RecordInput {
  readonly id: string;
  readonly state: 'held' | 'waiting';
  readonly data: string;
  /** Default: this node. */
  readonly node?: string;
  /** Required for another node's record (copy it from that node's records); default: this session. */
  readonly epoch?: number;
  /** Required for a waiter; must be empty or absent for a held lock. */
  readonly requestId?: string;
}

/**
 * One event for a waiter on another node, appended to that node's inbox in the same step. One to
 * the committing node itself is left out, unless it is a mark (kind INBOX_MARK): that one goes to
 * its own inbox, after every event that steps applied before this one sent it there (a step with
 * nothing else changes nothing in the file).
 */
export interface NotifyInput {
  readonly node: string;
  /** The session of the waiter's record (a mark's: the committing session): a dead session is never notified. */
  readonly epoch: number;
  readonly requestId: string;
  /** Opaque to the store ('granted', 'failed', ...). */
  readonly kind: string;
  readonly data?: string;
}

/**
 * The wait-for edges of one waiting request of a classic POSIX owner (the core's
 * WaitForGraph.setEdges): `hard` owners hold granted locks it conflicts with, `soft` owners have
 * earlier waiters it queues behind ('fifo'). Both empty: the waiter's edges are removed.
 */
export interface EdgeInput {
  /** A record id of this file that is a waiter once the step applies. */
  readonly waiter: string;
  /** Its owner key, unique in the lock space (qualify it with the node). */
  readonly owner: string;
  readonly hard: readonly string[];
  readonly soft?: readonly string[];
  /**
   * Per target owner (of `hard` or `soft`), the sessions (`node|epoch`) of its records the waiter
   * waits on. A target counts in the cycle walk only while one of them lives: an owner's lock of
   * a dead session that nobody has reaped yet closes no cycle, even once the same owner (its node
   * back under a new session) waits again. A target named here by no session always counts.
   */
  readonly sessions?: Readonly<Record<string, readonly string[]>>;
  /** Refuse the whole step (reason 'deadlock') when `hard` closes a cycle of hard edges. */
  readonly check?: boolean;
}

/** The kind of a notification a node sends its own inbox (NotifyInput): a mark the node waits for. */
export const INBOX_MARK = 'mark';

/** One atomic step on one file, decided by the core on the file's state at version `base`. */
export interface Step {
  readonly file: string;
  /** The version the decision was made on (0: the file had no records). */
  readonly base: number;
  /** Record ids to remove (applied before the puts: a removed id put again goes to the end). */
  readonly remove?: readonly string[];
  /** Records to add (at the end) or replace (in place; owner and session never change). */
  readonly put?: readonly RecordInput[];
  /**
   * True when the step grants bytes that were not held before (a new lock, an upgrade, a woken
   * waiter). Default: any put is 'held'. Set false for a split or downgrade of held bytes, which
   * a grace period allows. Grants are refused during a grace period. On an empty step, true says
   * that an answer found bytes free (F_GETLK, checkIo), which records not yet put back in a grace
   * period could make untrue: refused during it too.
   */
  readonly grants?: boolean;
  readonly notify?: readonly NotifyInput[];
  readonly edges?: readonly EdgeInput[];
  /**
   * The step's id, given only when sending again a step whose reply was 'unreachable' (that
   * reply's `step`): if the first one applied, the stale reply lists a change with this id.
   */
  readonly id?: string;
  /**
   * When the request the step decides is answered anyway if no reply came (ms on
   * performance.timeOrigin + performance.now()). The engine refuses the step ('late') once its own
   * clock is past that moment, so a step held up on its way (the engine paused, a slow network)
   * never applies after its request was answered as failed. None: applies whenever it arrives.
   */
  readonly deadline?: number;
  /**
   * The fence numbers the step's grants hold, lowest and highest (hook events' `fence`;
   * consecutive when several). The engine keeps each file's last fence (FileState.fence, kept
   * FENCE_KEEP_MS after the file is left with no record) and applies the step only if the lowest
   * is above it and the highest not past max(its time in µs, that last) + FENCE_SLACK_US; else
   * 'fence' with the last and its time, and the caller decides again with numbers above. Only
   * this file's grants move it: other files' steps never refuse this one.
   */
  readonly fence?: readonly [number, number];
}

/** A step as the engines take it: every field resolved and checked at the boundary. */
export interface EngineStep {
  readonly file: string;
  readonly base: number;
  /** An id of this step, kept in the change log, so that a caller whose reply was lost recognises it. */
  readonly step: string;
  readonly grants: boolean;
  readonly remove: readonly string[];
  readonly put: readonly StoreRecord[];
  readonly notify: readonly Required<NotifyInput>[];
  readonly edges: readonly Required<EdgeInput>[];
  /** The engine's clock (ms) from which the step is refused as 'late' (Step.deadline); none: never. */
  readonly until?: number;
  readonly fence?: readonly [number, number];
}

/** One applied step of a file, from its change log. */
export interface Change {
  /** The version it applied on, and the one it made. */
  readonly base: number;
  readonly version: number;
  readonly step: string;
  /** The committing node. */
  readonly node: string;
  readonly removed: readonly string[];
  /** With their final `seq`. */
  readonly put: readonly StoreRecord[];
  /** The file's last fence after it (Step.fence), if one was given while it had records. */
  readonly fence?: number;
}

export interface FileState {
  /** 0 when the file has no records (its keys are gone: versions never repeat, see the note). */
  readonly version: number;
  /** In file order (ascending seq). */
  readonly records: readonly StoreRecord[];
  /** The last fence a step gave on the file (Step.fence), also kept a while after it had no records; none: none known. */
  readonly fence?: number;
}

export interface SessionId {
  readonly node: string;
  readonly epoch: number;
}

/**
 * The reply to a commit. Only 'ok' changed anything.
 * - stale: the file is not at `base`. `missed` are the changes since `base` in order, or (when the
 *   bounded log no longer reaches back) `records` is the whole current set, with `last`, the id
 *   of the caller's last step that applied to the file since it last held nothing (none if no
 *   step did). Apply, decide again.
 * - fenced: this node's session is not alive (the node fenced itself, or the engine says so).
 * - dead: a put names a session that is not alive; those sessions' records may only be removed.
 * - grace: the engine is in a grace period after losing its data; no grant until it ends.
 * - deadlock: `waiter`'s hard edges would close a cycle: the core answers EDEADLK.
 * - overdue: they would, but only through wait-for edges of sessions that are late (not renewed
 *   for longer than lateAfterMs of their TTL): their node may be cut off and have answered those
 *   waiters already (their removal owed to its next step). Nothing applied; decided again in
 *   `retryInMs` (the earliest expiry among those sessions, on the engine's clock), when each has
 *   renewed (its edges trusted again) or expired (its edges gone).
 * - reset: the engine lost its data; the store is opening a new session (see SessionEvent).
 * - unreachable: no reply within requestTimeoutMs. The step may have applied: `step` then appears
 *   among the missed changes of the next stale reply (a version check never applies it twice).
 */
export type CommitReply =
  | { readonly ok: true; readonly version: number; readonly step: string }
  | { readonly ok: false; readonly reason: 'stale'; readonly version: number; readonly missed?: readonly Change[]; readonly records?: readonly StoreRecord[]; readonly last?: string; readonly fence?: number }
  | { readonly ok: false; readonly reason: 'fenced' }
  | { readonly ok: false; readonly reason: 'dead'; readonly sessions: readonly SessionId[] }
  /** Step.fence was not above the file's last fence (`last`, 0: none) or too far past the engine's time (`nowUs`): decide again with numbers above. */
  | { readonly ok: false; readonly reason: 'fence'; readonly last: number; readonly nowUs: number }
  | { readonly ok: false; readonly reason: 'grace'; readonly retryInMs: number }
  | { readonly ok: false; readonly reason: 'deadlock'; readonly waiter: string; readonly owner: string }
  | { readonly ok: false; readonly reason: 'overdue'; readonly waiter: string; readonly owner: string; readonly retryInMs: number }
  | { readonly ok: false; readonly reason: 'reset' }
  /** Arrived past its deadline (Step.deadline): not applied. */
  | { readonly ok: false; readonly reason: 'late' }
  | { readonly ok: false; readonly reason: 'unreachable'; readonly step: string; readonly error: string };

/** The reply to a re-assertion. 'late': the grace period is over, what was not re-asserted is lost. */
export type ReassertReply =
  | { readonly ok: true; readonly version: number }
  | { readonly ok: false; readonly reason: 'late' | 'fenced' | 'reset' }
  | { readonly ok: false; readonly reason: 'unreachable'; readonly error: string };

/** What a reaper found of one dead session: per file, that session's records and the file's version. */
export interface DeadSession extends SessionId {
  readonly files: readonly { readonly file: string; readonly version: number; readonly records: readonly StoreRecord[] }[];
}

export interface ReapReply {
  readonly dead: readonly DeadSession[];
  /** The limit cut the list: call again after committing these. */
  readonly more: boolean;
}

/** An event of this node's inbox. */
export interface InboxEvent {
  /** The stream id (resumable position). */
  readonly id: string;
  readonly file: string;
  /** The file's version after the step that sent it. */
  readonly version: number;
  /** The node whose step sent it. */
  readonly from: string;
  readonly epoch: number;
  readonly requestId: string;
  readonly kind: string;
  readonly data: string;
}

/**
 * Session changes, as they happen:
 * - fenced: no renewal confirmed within the fence window; commits are refused until 'unfenced'
 *   or 'lost'. Answers from cached state must stop.
 * - unfenced: a renewal confirmed the same session: nothing was lost.
 * - lost: the engine no longer has session `lost`: every record of that epoch counts as lost
 *   (checkIo 33); `epoch` is the new session (0 while none could be opened yet).
 * - reset: the engine lost its data while this node was live: re-assert every record held under
 *   `lost` with LockStore.reassert within `graceMs`; `epoch` is the new session.
 * - grace-ended: grants are possible again (a waiter pass may now grant).
 */
export type SessionEvent =
  | { readonly kind: 'fenced'; readonly epoch: number }
  | { readonly kind: 'unfenced'; readonly epoch: number }
  | { readonly kind: 'lost'; readonly lost: number; readonly epoch: number }
  | { readonly kind: 'reset'; readonly lost: number; readonly epoch: number; readonly graceMs: number }
  | { readonly kind: 'grace-ended'; readonly epoch: number }
  /** Session `epoch` outlived its TTL with no renewal confirmed (the engine unreachable): lost; a new one is sought ('lost' once open). */
  | { readonly kind: 'expired'; readonly epoch: number }
  /** Another process opened a session under this node's name: this one has none from now on. */
  | { readonly kind: 'displaced'; readonly lost: number; readonly epoch: 0 };

export interface StoreHooks {
  /** Inbox events for this node's current session, in stream order. */
  onEvents?: (events: readonly InboxEvent[]) => void;
  onSession?: (e: SessionEvent) => void;
  /**
   * A renewal found a session past its deadline (or ended) that still has records: run reap()
   * and commit what it returns. Told by the renewal itself: no extra engine command.
   */
  onReapDue?: () => void;
  /** An error the store could not attribute to a call (inbox read, renewal); informational. */
  onError?: (err: Error) => void;
  /**
   * The fence moved: this node may act on session `epoch` until `until` (the node's clock,
   * performance.now() of the thread that opened the store); -Infinity while it has no session.
   * Called at the open, at every confirmed renewal and when the session is lost; a new session's
   * 'lost' or 'reset' event (onSession) follows its first call. `offset`: the engine's clock
   * minus the node's, at least (from the newest reply that carried the engine's time; NaN before
   * one): what Step.deadline becomes on the engine's clock.
   */
  onLease?: (until: number, epoch: number, offset: number) => void;
}

/** The engine's side of stats(): round trips, retries after a concurrent change, session state. */
export interface StoreStats {
  /** Engine calls made by this node (commits, loads, renewals, re-assertions, reaps, queries). */
  roundTrips: number;
  commits: number;
  /** Commits refused as stale (another node changed the file first): retries after a concurrent change. */
  stale: number;
  /** Commits refused before reaching the engine because the node was fenced. */
  fencedLocally: number;
  /** Commits refused in a grace period (a grant, or a read that found bytes free), tried again when it ended. */
  graceWaits: number;
  /** Commits refused 'fence' (Step.fence not above the file's last: a cached copy that did not know it, as after the file had no record). */
  fenceRefusals: number;
  renewals: number;
  failedRenewals: number;
  /** Sessions opened (1 + replacements after a loss or reset). */
  sessions: number;
}

/**
 * The 'fifo' escape's facts for one decision on a file (LockStore.fileReach; SharedFile.askReach):
 * what the engine knows of the wait-for graph beyond the file, and the file's own edges as the
 * step that last set them wrote them.
 */
export interface FileReach {
  /** Per pair asked, whether `from` already waits for `to` through the other files' edges (hard or soft) of live sessions. */
  readonly reach: readonly boolean[];
  /** The file's waiters with stored edges, by record id: the owners each waits for. */
  readonly edges: ReadonlyMap<string, StoredEdges>;
}

/** One waiter's edges as a step stored them: owners it waits on (hard) and queues behind ('fifo', soft). */
export interface StoredEdges {
  readonly hard: readonly string[];
  readonly soft: readonly string[];
}

/** What the per-file actors stand on. Every lock rule stays in src/core/: the store never decides. */
export interface LockStore {
  readonly kind: 'memory' | 'redis';
  readonly node: string;
  /** This node's session: its epoch (0 while none is open), whether it is fenced, in grace. */
  session(): { readonly epoch: number; readonly fenced: boolean; readonly grace: boolean; readonly incarnation: string };
  stats(): StoreStats;
  /** A record or step id unique in the lock space: node, session and a counter. */
  newId(): string;
  /** The file's state (one round trip, atomic). */
  load(file: string): Promise<FileState>;
  /** One atomic step (see CommitReply). Throws only for a malformed step (TypeError) or one that contradicts the state at a matching version (Error). */
  commit(step: Step): Promise<CommitReply>;
  /** After a 'reset' event: puts this node's records back (no version check), during the grace period only. */
  reassert(file: string, records: readonly RecordInput[], edges?: readonly EdgeInput[]): Promise<ReassertReply>;
  /** Dead sessions and their records (idempotent; any node may run it; several may at once). */
  reap(limit?: number): Promise<ReapReply>;
  /** Whether `owner` waiting on `targets` would close a cycle (read-only; LockTable.waitsFor's question). */
  closesCycle(owner: string, targets: readonly string[], hardOnly: boolean): Promise<boolean>;
  /** Per pair, whether `from` already waits for `to` through the wait-for edges (read-only, one round trip). */
  reaches(pairs: readonly (readonly [string, string])[], hardOnly: boolean): Promise<boolean[]>;
  /** The 'fifo' escape's facts for a decision on `file` (read-only, one round trip). */
  fileReach(file: string, pairs: readonly (readonly [string, string])[]): Promise<FileReach>;
  /** Files that have records. */
  files(): Promise<string[]>;
  /** Ends the session (its remaining records become the reaper's) and the connections. */
  close(): Promise<void>;
}

// ---- the engine level, under the per-node session logic ------------------------------------------

export interface SessionRef extends SessionId {
  readonly incarnation: string;
}

export interface Opened extends SessionRef {
  /** The inbox position to read after. */
  readonly inboxFrom: string;
  /** Remaining grace period (0: none). */
  readonly graceMs: number;
  /** This call created the incarnation (first start, or after the engine lost its data). */
  readonly created: boolean;
  /** The engine's clock (ms) when it opened the session. */
  readonly now: number;
  /** The longest sessionTtlMs a session of this incarnation was opened with (this one's included). */
  readonly ttlMaxMs: number;
}

/** A page of Engine.sessionFiles. */
export interface SessionFilesPage {
  readonly files: readonly { readonly file: string; readonly records: readonly StoreRecord[] }[];
  /** '0': this was the last page. */
  readonly cursor: string;
}

/**
 * Where a mount serves, recorded with its session when it opens one (Engine.open) and listed with
 * it (Engine.sessions): what names a node's mount once its server is gone (killed, crashed) or on
 * another machine. A node that is no mount (a program using the API) records nothing.
 */
export interface SessionServes {
  /** The machine's host name (os.hostname()). */
  readonly host: string;
  /**
   * The machine's identity, which tells apart machines that share a host name: 16 hex digits of a
   * keyed hash of its machine ID, the kernel's boot ID and the mount namespace (src/machine.ts;
   * never the IDs themselves, which machine-id(5) says are confidential). Absent when neither a
   * machine ID nor a boot ID can be read, and in a record written by a version before it: then
   * machines are told apart by host name alone.
   */
  readonly machine?: string;
  /** The mountpoint, an absolute path on that machine. */
  readonly mountpoint: string;
}

/** One session of the engine's registry (Engine.sessions). */
export interface SessionDeadline extends SessionId {
  /**
   * When the session expires unless renewed, on the engine's clock (ms): its last renewal (or its
   * open) plus its node's sessionTtlMs. 0 for a session that was ended or replaced by a newer one
   * of its node. A session past it is dead: its records are the reaper's.
   */
  readonly deadline: number;
  /** The sessionTtlMs it was opened with, when the engine still has it (a live session's). */
  readonly ttlMs?: number;
  /** Where its node's mount serves, when it recorded it and the engine still has it (a live session's, as ttlMs). */
  readonly serves?: SessionServes;
}

/** The engine's session registry as it is at one moment (Engine.sessions). */
export interface SessionsRead {
  /** The engine's clock (ms) at the read. */
  readonly now: number;
  /** Opened.ttlMaxMs: the longest sessionTtlMs a session of the incarnation opened with (0: none yet). */
  readonly ttlMaxMs: number;
  /** Every registered session: the live ones, and dead ones until the reaper has removed their records. */
  readonly sessions: readonly SessionDeadline[];
}

/** Another instance holds the node name's live session (two processes given one name). */
export interface Taken {
  readonly taken: true;
}

export type Renewed =
  /** `reap`: some registered session is past its deadline or ended: reap() has work. */
  | {
      readonly kind: 'ok';
      readonly graceMs: number;
      readonly reap: boolean;
      /** The engine's clock (ms) at the renewal. */
      readonly now: number;
      /** Opened.ttlMaxMs, as of this renewal. */
      readonly ttlMaxMs: number;
    }
  | { readonly kind: 'expired' }
  | { readonly kind: 'reset' };

export interface InboxReader {
  /** The entries after `after`, waiting for at least one; [] when interrupted (restart, reconnect). */
  read(after: string): Promise<InboxEvent[]>;
  /** Interrupts a pending read and starts over on a fresh connection (after a new session). */
  restart(): void;
  close(): void;
}

/** The atomic operations, with sessions explicit: MemoryEngine (the model) and RedisEngine. */
export interface Engine {
  /** For messages: the redacted URL, or 'memory'. */
  readonly name: string;
  /**
   * A new session for `node`, opened by `instance` (one per NodeStore). A node name whose session
   * is live under another instance (another process, or one that died less than a TTL ago) is
   * not taken: 'taken'. `serves`: where the node's mount serves, kept with the session while it
   * lives (sessions()); without it, the node's earlier record of it is dropped.
   */
  open(node: string, ttlMs: number, graceMs: number, instance?: string, serves?: SessionServes): Promise<Opened | Taken>;
  /**
   * Records the policy ('default', 'fifo') the namespace's nodes decide with, for session `s`:
   * refused (the recorded policy and a node whose session lives under it) when another live node
   * recorded another one; replaced when none does (every node restarted with a new policy).
   * Undefined when recorded, or when the engine is not the session's (a loss: the next open
   * records it again).
   */
  policy(s: SessionRef, policy: string): Promise<{ policy: string; node: string } | undefined>;
  renew(s: SessionRef, ttlMs: number, inboxAck: string): Promise<Renewed>;
  endSession(s: SessionRef): Promise<void>;
  commit(s: SessionRef, step: EngineStep): Promise<CommitReply>;
  reassert(s: SessionRef, file: string, step: string, records: readonly StoreRecord[], edges: readonly Required<EdgeInput>[]): Promise<ReassertReply>;
  load(file: string): Promise<FileState>;
  reap(limit: number): Promise<ReapReply>;
  closesCycle(owner: string, targets: readonly string[], hardOnly: boolean): Promise<boolean>;
  reaches(pairs: readonly (readonly [string, string])[], hardOnly: boolean): Promise<boolean[]>;
  fileReach(file: string, pairs: readonly (readonly [string, string])[]): Promise<FileReach>;
  files(): Promise<string[]>;
  /**
   * One page of the files where session `s` has records (its index, sf:<node>|<epoch>), each with
   * that session's records: from `cursor` ('0' for the first page), about `limit` files, and the
   * cursor of the next page ('0' after the last). After the index, in the same pages: the locks
   * of `s` that steps removed while it was dead (reaped), per file, kept REAPED_KEEP_MS (the
   * engine's rp:<session>). A file may come twice (Redis SSCAN; reaped between two pages). 'reset'
   * when the engine is not of `s`'s incarnation (it lost its data: nothing of `s` is left).
   * Read-only; any session, live or not.
   */
  sessionFiles(s: SessionRef, cursor: string, limit: number): Promise<SessionFilesPage | 'reset'>;
  inbox(node: string): InboxReader;
  /**
   * The session registry with the engine's clock, read-only: what tells a listing that a node's
   * session is no longer renewed (its server killed, paused, cut off) and when its locks go. The
   * registry and the clock are read at one moment (Redis: one MULTI), the live sessions' TTLs
   * just after (a second round trip, when any is live). The deadline is the engine's own
   * (registry and session key agree on it).
   */
  sessions(): Promise<SessionsRead>;
  shutdown(): Promise<void>;
}
