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
 *    an engine loss whose edges were checked whole ends with it, see recheck). 'overdue' (the
 *    cycle runs only through edges of late sessions): decided again with that waiter's edges
 *    written unchecked, its check put off until those sessions renewed or expired (deferred).
 *    'dead': the records of the sessions named are left out of the rebuilt table, so the next
 *    step removes them and wakes who they blocked. 'grace': decided again with the wake-up pass held (a release goes
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
import { setTimeout as sleep } from 'node:timers/promises';
import { F_GETLK, F_UNLCK } from '../core/codes.js';
import { LocalWaitForGraph, reaches, type WaitForGraph } from '../core/deadlock.js';
import { conflicts, type FileLocks, type Lock, type LockOrigin, type LockRequest, type Waiter } from '../core/file-locks.js';
import { LockTable, closedWith, without, type CancelReason, type RestoredWaiter, type TableHooks } from '../core/lock-table.js';
import { type DecodedRecord, DecodedRecords, decodeRecord, encodeLock, lockOf, nodeOf } from '../core/records.js';
import { cancellable, type Call, type PosixReply } from '../core/requests.js';
import { posixUnlockEvent } from '../core/views.js';
import { ProgrammingError } from '../store/memory.js';
import { INBOX_MARK, type Change, type CommitReply, type EdgeInput, type FileReach, type InboxEvent, type NotifyInput, type ReassertReply, type RecordInput, type Step, type StoreRecord } from '../store/types.js';

/** The store as a file's actors reach it: a worker's own connection (direct-link.ts), or a test's in-process engine. */
export interface StoreLink {
  commit(step: Step): Promise<CommitReply>;
  /** The 'fifo' escape's facts for a decision on `file`: the reach through the other files' edges, the file's own as stored. */
  fileReach(file: string, pairs: readonly (readonly [string, string])[]): Promise<FileReach>;
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
  /**
   * No record of this node is in any file this worker serves: it is the first worker of its
   * destination since the node's session opened (a replacement may find its predecessor's locks).
   * Then every file is known from the start to hold nothing of this node (nothingOfMine).
   */
  blank?: boolean;
}

/** An event of this node's inbox, as the caller's side forwards it: waiter `requestId` ended with `result`. */
export interface WaiterEnded {
  readonly requestId: string;
  readonly result: number;
  /**
   * A mark one of this node's steps left in its own inbox (SharedFile.settleEnds), `requestId`
   * its name: every event before it in the inbox came before it here (result 0, meaningless).
   */
  readonly mark?: true;
  /**
   * The session the event was sent to (its waiter's record's): one this node no longer acts on
   * (the engine lost its data since, or the session was lost) says nothing of the engine's
   * records now (SharedFiles.ended). Absent: taken as the current one.
   */
  readonly epoch?: number;
}

/**
 * A node's inbox events as each file's actor takes them: per file, in inbox order, the waiters
 * another node's step ended ('end' events, the result in their data), and the marks of its own
 * steps.
 */
export function endedByFile(events: readonly InboxEvent[]): Map<string, WaiterEnded[]> {
  const byFile = new Map<string, WaiterEnded[]>();
  for (const e of events) {
    const mark = e.kind === INBOX_MARK;
    if (e.kind !== 'end' && !mark) continue;
    const result = mark ? 0 : Number(e.data);
    if (!Number.isInteger(result)) continue;
    let list = byFile.get(e.file);
    if (list === undefined) byFile.set(e.file, (list = []));
    list.push(mark ? { requestId: e.requestId, result, mark } : { requestId: e.requestId, result, epoch: e.epoch });
  }
  return byFile;
}

/**
 * What a file's actor needs of its worker's side of the shared space (SharedFiles in
 * shared-files.ts): the engine, the session, this node's waiting requests, and where to report.
 */
export interface FileSpace {
  readonly link: StoreLink;
  readonly config: SharedConfig;
  /** The session this worker acts on. */
  readonly epoch: number;
  /** This node's waiting requests: record id -> host request id. */
  readonly waits: ReadonlyMap<string, number>;
  /**
   * Whether this node's approval hook judges a grant of its waiter by another node's step before
   * its caller is told (SharedFile.confirmRemote): a node with hooks. Without, such a grant is
   * answered as it came, and nothing is kept for it.
   */
  readonly confirmsGrants?: boolean;
  /**
   * Waiter request `hostId`'s grant by another node's step is to be judged (confirmRemote): its
   * owner's locks here just before the grant, kept by the caller's side with the request until it
   * is answered, for a replacement worker if this one dies first (SharedFile.rejudge).
   */
  judging?(hostId: number, before: readonly LockRequest[]): void;
  /**
   * Calls `cb` when the worker stops (SharedFiles.stop), at once if it has: a judgment still
   * waiting for its hook then goes as a veto, so that the grant's release runs before the node's
   * stop steps, not after a hook that may never answer. Returns what forgets `cb` (the hook
   * answered): a listener per judgment, not a reaction on a promise that settles only at stop,
   * which would keep every judgment's closures (and its actor) for the worker's life.
   */
  onStop?(cb: () => void): () => void;
  /** A record id unique in the lock space. */
  newId(): string;
  /** The engine's time in µs from below, for a grant's fence number (Step.fence); what a 'fence' refusal told of it. */
  fenceTime(): number;
  fenceRefused(nowUs: number): void;
  report(e: unknown): void;
  /** The hooks of one decision (`out`: where its notices go). */
  tableHooks(out: () => Outcome): TableHooks;
  /** Request `hostId`'s waiter is in the store as record `rid`. */
  queued(hostId: number, rid: string): void;
  ridOf(hostId: number): string | undefined;
  /** This node's waiter `rid` ended with `code`. */
  endWait(rid: string, code: number): void;
  /**
   * Once mark `mark` of this node's inbox (a step of `path` left it) came, the waiters `ends` that
   * still wait end with their results: no event before the mark ended them (SharedFile.settleEnds).
   */
  afterMark(mark: string, path: string, ends: readonly LostEnd[]): void;
  /** Whether a new session's message is on its way; nextSession waits for it (false: not by `deadline`). */
  awaitingSession(): boolean;
  nextSession(from: number, deadline: number): Promise<boolean>;
  /** Whether the node is fenced only because a renewal is late; renewed waits for it. */
  late(): boolean;
  /** Whether the node has no session at all (the last one lost, the next not open). */
  sessionGone(): boolean;
  renewed(deadline: number): Promise<boolean>;
  /** Until when the node may act on its session (the lease; renewals move it on). */
  leaseUntil(): number;
  /** A step to come by itself for the file's owed releases and unsure steps. */
  retryOwed(path: string): void;
  /**
   * Release `hostId`, owed (answered before its step was written), is owed no longer: written by
   * a step, settled, or dropped (SharedFile.setOwed). Its caller may forget it (SharedFiles.written).
   */
  written(hostId: number): void;
  /** Ms until the requests parked on `path` that arrived before request `hostId` run again; undefined if none. */
  parkedAhead(path: string, hostId: number): number | undefined;
  /** The file's wake-up pass at `at` (a grace period's end). */
  wakeAt(path: string, at: number): void;
  /** The file's wake-up pass at `at`, also when one is due later, for checks put off (SharedFile.deferred). */
  checkAt(path: string, at: number): void;
  /**
   * 'fifo': a request queued on `path` with edges that may close a cycle through a soft edge on
   * another file: the wake-up passes of the files where POSIX requests wait (LockTable.settleOthers).
   */
  settleOthers(path: string): void;
  /** This node's records of `f` that went with a lost session. */
  lose(f: SharedFile, records: readonly StoreRecord[]): void;
}

/** Marks the events of other nodes' records: hooks are this node's application's, for its own requests. */
export const REMOTE = Symbol('remote');

/** What one decision produced, delivered only once its step committed. */
export interface Outcome {
  answers: (() => void)[];
  notify: NotifyInput[];
  /** This node's waiters the decision ends, by record id, with their results (also in `answers`). */
  ends: { rid: string; result: number }[];
  /** Each Windows lock whose release the application is told of (onUnlockFile), with that notice (also in `answers`). */
  released: { event: Readonly<Record<string, unknown>>; answer: () => void }[];
}

function emptyOutcome(): Outcome {
  return { answers: [], notify: [], ends: [], released: [] };
}

/**
 * Whether `req`'s bytes are all held by `held`'s locks of its owner and kind, in its mode or a
 * stronger one (the union of them may cover it where no single one does).
 */
function coveredBy(req: LockRequest, held: readonly LockRequest[]): boolean {
  const spans = held.filter((x) => x.owner === req.owner && x.kind === req.kind && (x.write || !req.write)).sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  let next = req.start;
  for (const x of spans) {
    if (x.start > next) break;
    if (x.end >= next) next = x.end + 1n;
    if (next > req.end) return true;
  }
  return false;
}

/** The wait-for graph of a decision: cycles are the engine's to find; a refused step names them. */
class StepGraph implements WaitForGraph {
  /**
   * Waits the engine found to close a cycle, as owner and blockers (the decision runs again with
   * them): only the waiter on the cycle fails, not another waiter of its owner. Good for the
   * decision that was told (cleared as each starts): by the next, another node may have broken it.
   */
  readonly cyclic = new Set<string>();
  static key(owner: string, blockers: Iterable<string>): string {
    return `${owner}\n${[...blockers].sort().join('\n')}`;
  }
  /**
   * 'fifo': for each of this file's POSIX owners, the ones of them it already waits for through
   * any node's edges on the other files, asked of the engine before the decision
   * (SharedFile.askReach). This file's own edges change as the decision settles it: they are
   * `own`'s, as the table sets them.
   */
  readonly reach = new Map<string, string[]>();
  /** The edges of this file's waiters in the table (cleared with each new table, SharedFile.build). */
  readonly own = new LocalWaitForGraph();
  closesCycle(owner: string, blockers: Iterable<string>, hardOnly?: boolean): boolean {
    if (hardOnly === true) return this.cyclic.size > 0 && this.cyclic.has(StepGraph.key(owner, blockers));
    // The table's 'fifo' escape: would `owner` queueing behind these owners' waiters close a cycle?
    // A path from one to `owner` alternates this file's live edges and reaches through the others.
    return reaches(owner, blockers, (o) => this.edgesOf(o), false);
  }
  private *edgesOf(o: string): Iterable<{ readonly hard: Iterable<string>; readonly soft: Iterable<string> }> {
    yield* this.own.waitsOf(o);
    const r = this.reach.get(o);
    if (r !== undefined) yield { hard: r, soft: [] };
  }
  setEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>, queuedBehind?: ReadonlySet<string>): void {
    this.own.setEdges(waiter, owner, blockers, queuedBehind);
  }
  removeEdges(waiter: unknown, owner: string): void {
    this.own.removeEdges(waiter, owner);
  }
}

function sameKeys(a: readonly string[], b: readonly string[] | undefined): boolean {
  if (b === undefined) return a.length === 0;
  if (a.length !== b.length) return false;
  // Most waiters wait on an owner or two: no set for those (each step compares every waiter's).
  if (b.length <= 8) {
    for (const x of a) if (!b.includes(x)) return false;
    return true;
  }
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
  /**
   * This node's Windows locks of the session `epoch` it removed, each with its onUnlockFile notice
   * (in `answers` too). Only this node's steps remove them while that session lives: one absent
   * from a whole record set was released by a step of this node given up on, so its notice is
   * due though nothing shows which step that was (SharedFile.deliverLost).
   */
  readonly released: readonly { readonly id: string; readonly answer: () => void }[];
  readonly epoch: number;
  /**
   * This node's locks it put that hold bytes of grants (grantOrigin, or carried), with their
   * origins and those bytes: if it applied, they keep their marks as a committed step's would
   * (adopt, adoptLost). Only while a grant is marked in the file.
   */
  readonly marked?: readonly Marked[];
}

/** A record a step put for a lock of this node holding bytes of grants: its origin, and those bytes (Lost.marked, Unsure.marks). */
interface Marked {
  readonly id: string;
  readonly origin: LockOrigin;
  readonly marks: readonly GrantBytes[];
}

/** A waiter of this node (its record) that a step given up on ended, and the result it decided. */
export interface LostEnd {
  readonly rid: string;
  readonly result: number;
}

/**
 * A record put by a step, with the lock or waiter of the decided table it stands for; `marks`: the
 * bytes of grants of this node's waiters it holds that its lock's origin does not say (SharedFile.carried).
 */
type Fresh = { readonly id: string; readonly lock: Lock; readonly waiter?: undefined; readonly marks?: readonly GrantPart[] } | { readonly id: string; readonly waiter: Waiter; readonly lock?: undefined };

interface Diffed {
  readonly step: Step;
  readonly fresh: readonly Fresh[];
  readonly edges: readonly EdgeInput[];
  /** The decision's new waiter, its edges written unchecked: its check is put off (deferred). */
  readonly deferNew?: string;
  /** 'fifo': a waiter's new blockers closed a cycle through another file's queueing (LockTable.softCycles). */
  readonly softCycle?: boolean;
}

/** Whether `step` removes or puts record `id`. */
function touches(step: Step, id: string): boolean {
  return (step.remove?.includes(id) ?? false) || (step.put?.some((p) => p.id === id) ?? false);
}

/** In a decision's unchecked set (SharedFile.diff): its new waiter, whatever id it is minted. */
const NEW_WAITER = '';

/**
 * What a decision runs on the table; `owner`: the POSIX owner a lock request is made for ('fifo');
 * `free`: whether a read's answer says the bytes are free (see decide); `undone`: a lock request,
 * whose step is undone if it applied after the request was answered as failed (Unsure); `park`:
 * a request that waits out a grace period outside the mailbox (Parked) when its own decision
 * grants bytes; `ahead`: how long (ms) until this node's requests on the file that arrived before
 * it and wait out a grace period run again, if any do.
 */
type Run = ((t: LockTable) => unknown) & {
  owner?: string;
  free?: (res: unknown) => boolean;
  undone?: boolean;
  park?: boolean;
  ahead?: () => number | undefined;
  /** A release: the records of the locks it removed when last decided (appliedBefore). */
  targets?: readonly string[];
  /** The ids of the steps that carried it and got no reply that settled their fate (shownApplied). */
  sent?: string[];
  /** A later reply named one of those steps as applied: it is not run again (appliedBefore). */
  applied?: boolean;
  /**
   * Settled by the re-assertion while its decision was in flight (settleOwed): its answer on the
   * records put back. The decision answers with it and runs nothing more.
   */
  settled?: { readonly res: unknown };
  /** A byte-range unlock (a POSIX, OFD or flock unlock, an UnlockFileEx), a flush or an unlockAll: a release that ends no waiter. */
  unlock?: boolean;
  /** A POSIX or OFD lock request (not an unlock): the bytes its owner is told it holds if granted (SharedFile.carried). */
  asks?: LockRequest;
  /**
   * An unlock's: the locks another node's steps granted this node's waiters while it was owed or
   * in flight (grantedRemotely), by the waiters' ids (their records' while the cache stands them
   * in). Its answer came before their grants were told: it leaves their bytes alone wherever it
   * runs (spareOf), and the settlement at an engine reset keeps their stand-ins out of its reach
   * (settleOwed).
   */
  spared?: Map<string, LockRequest>;
  /**
   * A cancel's (SharedFile.cancel): called when one of its steps got no reply or was refused by
   * the node's fence. Its request may then be answered at once, the waiter's removal owed
   * (SharedFile.cancelAnswered).
   */
  early?: () => void;
  /**
   * The owed try's (SharedFile.owedTry): whether another job waits behind it in the mailbox. Its
   * tries then stop, as at its deadline (what is owed stays owed, and a request's step carries it),
   * so the request does not wait out the owed step's tries before its own deadline.
   */
  yields?: () => boolean;
  /** A release's request, or the one whose vetoed grant it undoes (undoGrant): its host id, told when it is owed no longer (setOwed, FileSpace.written). */
  hostId?: number;
};

/** How long a waiter whose check was put off for late sessions (SharedFile.deferred) waits at most before it is checked again. */
export const OVERDUE_RECHECK_MS = 1000;

/**
 * What decide() returns for a request (Run.park) whose own decision grants bytes while the engine
 * is in a grace period: nothing was decided; the request waits `ms` outside the file's mailbox
 * (SharedFiles.run), where its timeout, signal or handle's close can still end it, then runs again.
 */
export class Parked {
  constructor(
    readonly ms: number,
    /** Not refused by the engine: it waits behind this node's earlier requests that were (Run.ahead). */
    readonly behind = false,
  ) {}
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
  /** The locks of this node the step itself put, as records (what an engine reset may keep: meetOfUnknown). */
  readonly putHeld: readonly StoreRecord[];
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
  /**
   * The bytes of grants (grantOf) the locks of `removed` held, and those of `waiter.before` (a
   * grant of the waiter elsewhere adds those it replaced to `removed`: grantedAway), by record id:
   * an undo puts them back with their marks (build), though the records, and so grantOf's entries,
   * are gone by then. Only while a grant is marked in the file.
   */
  readonly marks?: ReadonlyMap<string, readonly GrantBytes[]>;
  /**
   * The locks of this node the step put that hold bytes of grants (as Lost.marked): if it applied
   * and cannot be undone, what it put stays, and keeps their marks (adoptLost). Only while a grant
   * is marked in the file.
   */
  readonly marked?: readonly Marked[];
  /**
   * A waiter whose cancel (timeout, signal, interrupt) was answered before the step removing it
   * could commit (cancelAnswered): its record surely stands in the engine, and its removal is
   * owed; a grant of it by another node is undone like an unsure waiter's, with no fault (its
   * caller was told it was cancelled).
   */
  readonly cancel?: true;
}

/**
 * A lock another node's step granted a waiter of this node (SharedFile.grantOf): the waiter's
 * record id and request, and whether its request was told granted (its inbox event read while it
 * still waited here: the caller is told that event's result, SharedFiles.ended and endThrough).
 */
interface Grant {
  readonly rid: string;
  readonly req: LockRequest;
  told: boolean;
}

/** Bytes [start, end]. */
interface Bytes {
  readonly start: bigint;
  readonly end: bigint;
}

/**
 * Bytes of a record of this node (SharedFile.grantOf) that another node's step granted waiter
 * `rid`. A POSIX record may hold bytes of several grants and bytes its owner held before (the core
 * merges an owner's locks of one mode that overlap or touch); a Windows record is one grant, whole.
 */
interface GrantPart extends Bytes {
  readonly rid: string;
}

/** A GrantPart of a lock of the table (SharedFile.grantOrigin), with its grant. */
interface GrantBytes extends Bytes {
  readonly g: Grant;
}

/**
 * How bytes of a release notice are told (SharedFile.untold): at once; never (grants the caller
 * was never told, and never will be); or, when the notice leaves, if one of these grants was told
 * by then (grants of the requests the close deciding now ends).
 */
type Fate = 'told' | 'never' | readonly Grant[];

function sameFate(a: Fate, b: Fate): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.length && a.every((g) => b.includes(g));
}

/** Whether two lists of a lock's grants' bytes are the same. */
function sameMarks(a: readonly GrantBytes[], b: readonly GrantBytes[]): boolean {
  return a.length === b.length && a.every((m, i) => m.g === b[i]!.g && m.start === b[i]!.start && m.end === b[i]!.end);
}

/** Whether two sets of ids are the same. */
function sameIds(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

/** The record id a lock an undo put back has in SharedFile.markedLocks until a step puts it: none. */
const PUT_BACK = '';

export class SharedFile {
  private version = 0;
  private records: StoreRecord[] = [];
  /** Whether the table was built once: a file starts from the empty state (see decide). */
  private built = false;
  private table!: LockTable;
  private readonly graph = new StepGraph();
  /**
   * The table's locks that have a record, by lock: its record id. Also, until a sweep (committed),
   * locks that committed steps replaced or removed, which the table no longer holds.
   */
  private readonly lockIds = new Map<Lock, string>();
  /**
   * The locks of the table that hold bytes of grants (their origins are in grantOrigin), by record
   * id: what a decision's merges may carry (carried). Unlike lockIds, a lock a committed step
   * removed is no longer here.
   */
  private readonly markedLocks = new Map<Lock, string>();
  private readonly waiterIds = new Map<Waiter, string>();
  /** Another node's owner -> the session its records belong to (a grant to its waiter keeps it). */
  private readonly epochOf = new Map<string, number>();
  /** Another node's origins as rebuilt here (pid 0), with the pid its records carry. */
  private remotePid = new WeakMap<LockOrigin, number>();
  /** The records decoded once per version (decode, build): what they hold is never changed here. */
  private readonly decoded: DecodedRecords;
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
   * 'fifo': waiter records whose soft edges in the store may not be the ones build() computed.
   * They leave out an earlier waiter whose owner already waits for theirs through other files,
   * so they change when such a cycle forms or ends elsewhere, and the engine holds them as the
   * last step that settled this file computed them, maybe before that. The model recomputes them
   * only when the file settles: so does this node, which compares them with nothing and writes
   * them whole in the first decision that settles the file (refreshEdges ran after askReach,
   * diff's `settled`), and until then leaves them as they are.
   */
  private readonly softUnknown = new Set<string>();
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
   * This node's POSIX waiters whose check found a cycle only through edges of late sessions
   * ('overdue'): a new waiter, one whose blockers grew with another request's grant, or one checked
   * whole (recheck). The decision went through with their edges written unchecked (the request
   * queues in its place; an F_SETLK, a release never waits for a third party's doubt), and from
   * `deferredDue` on each step writes them whole and checks them (a wake-up pass comes then,
   * SharedFiles.checkAt, on its own timer: a grace period's may be due much later): EDEADLK once
   * the late node renewed with the cycle still there, nothing once its edges went, put off again
   * while it is still late. A check that passed, or a waiter that ended, leaves the set.
   */
  private readonly deferred = new Set<string>();
  private deferredDue = 0;
  /** The waiters of `deferred` whose last check was 'overdue': a cycle found next is checked once more (decide). */
  private readonly doubted = new Set<string>();
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
  /**
   * The step of this file's decision out to the engine (sent, or sent again after no reply) until
   * its reply came: a cancel answered outside the mailbox meanwhile (cancelAnswered, `now`) is not
   * one of a waiter the step changes.
   */
  private sending: Step | undefined;
  /**
   * A cancel answered outside the mailbox (cancelAnswered, `now`) while a decision was in hand left
   * its waiter in the table, which that decision may have changed: the next one builds it again
   * first.
   */
  private rebuild = false;
  /** Decisions in hand (decide): one may change any waiter until its step is out (sending). */
  private inDecision = 0;
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
  /**
   * Records of Lost.released whose notice went out: several steps given up on may have released
   * the same record (an owed unlock runs again in each), and only one of them can have applied.
   */
  private readonly releaseTold = new Set<string>();
  /**
   * This node's held records that hold bytes of a lock another node's step granted one of its
   * waiters (grantedRemotely, or learned from a stale reply: markGrants), by record id: those
   * bytes, each with the waiter's record id (all of the record, or, for a POSIX record that step
   * merged with its owner's other locks, part of it). What this node's step leaves of one keeps
   * its origin (grantOrigin), and so its marks.
   */
  private readonly grantOf = new Map<string, readonly GrantPart[]>();
  /** The grants of grantOf, by waiter record id: whether the caller was told its request granted. */
  private readonly grants = new Map<string, Grant>();
  /** The origins the table's locks of grantOf have (build), with their grants' bytes: a release notice finds them here (untold). */
  private grantOrigin = new WeakMap<LockOrigin, readonly GrantBytes[]>();
  /** The close (closeHandle, release) whose run is deciding now: the waiters it ends (closedWith) are never told granted (untold). */
  private closing: Call | undefined;
  /** Records of locks another node granted to waiters here, under the waiters' ids until the engine's records replace them (standIn). */
  private readonly standIns = new Set<string>();
  /**
   * The records an engine reset's settlement of the owed releases left of this node's locks (a
   * split's remaining part, a new record), by the id of the lock they are what is left of
   * (settleOwed): meetOfUnknown judges them as that lock.
   */
  private readonly remnants = new Map<string, string>();
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
  /**
   * The release (a `mustRun` decision) whose step went out and whose decision has not ended: at an
   * engine reset its fate is as unknown as an owed one's (it may have applied, its reply still on
   * its way), and it is settled with them (beginReassert).
   */
  private flying: Run | undefined;

  constructor(
    readonly path: string,
    private readonly space: FileSpace,
    /**
     * Whether the cache's records of this node are the engine's (nothingOfMine): true once a reply
     * gave the engine's records, or from the start when an actor before this one on the file knew
     * it held nothing of this node (SharedFiles.noneOfMine).
     */
    private ownExact = false,
  ) {
    this.decoded = new DecodedRecords(path);
  }

  /**
   * Whether this node has nothing in the file, in the engine too: no record of this node in the
   * cache, the cache's records of this node exact, no step of unknown fate, nothing owed. Every
   * record of this node comes from a step of this node, or from another node's grant of a waiter
   * this node put; so until this node's next step, none appears. A release then releases nothing,
   * and is answered without the engine (decide): a close of a file no lock was taken on costs no
   * round trip, and does not wait for an unreachable engine.
   */
  get nothingOfMine(): boolean {
    const me = this.space.config.node;
    return this.ownExact && !this.owing && !this.records.some((r) => r.node === me);
  }

  /**
   * Whether a release that changes nothing on the cache changes nothing in the engine either, so
   * that it is answered without it: the cache's records of this node are the engine's (ownExact,
   * nothing owed or of unknown fate) and none of them waits. A lock of this node changes in the
   * engine only by its own steps, or by another node's grant of a waiter of its owner; so whatever
   * other owners of this node hold, a close of an owner that holds nothing here releases nothing
   * (a daemon holds its lock while other processes open and close the file). Not while the node
   * has no session, when every request gets the family's generic code until a new one opens
   * (API.md, fencing).
   */
  private get releaseHere(): boolean {
    const me = this.space.config.node;
    return this.ownExact && !this.owing && !this.records.some((r) => r.node === me && r.state === 'waiting') && !this.space.sessionGone();
  }

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

  /**
   * Whether the actor can go though its cache still holds other nodes' records (SharedFiles.sweep,
   * which also looks at what this node keeps of the file outside the actor): nothing queued or
   * decided, no record of this node in the cache (held or waiting, of any session), nothing owed
   * or of unknown fate, no grant of another node's step to judge, no put-back, pass or check
   * still due. What is left is a copy of other nodes' records as of this node's last step: only their
   * steps change them (a release there does not reach this cache), so kept it would keep the actor
   * for good. The next actor of the file starts empty at version 0: its first step, stale, learns
   * the engine's records, as a node that never saw the file does.
   */
  get foreignOnly(): boolean {
    const me = this.space.config.node;
    return (
      this.queued === 0 &&
      this.inDecision === 0 &&
      this.sending === undefined &&
      this.flying === undefined &&
      this.reasserting === undefined &&
      !this.owing &&
      !this.wakeOwed &&
      !this.heldPutBack &&
      this.recheck.size === 0 &&
      this.deferred.size === 0 &&
      // A grant of a waiter of this node still to judge (confirmRemote).
      ![...this.preGrant.keys()].some((rid) => this.space.waits.has(rid)) &&
      // What grantOf, grants, standIns and remnants keep is of this node's records: none is left.
      !this.records.some((r) => r.node === me)
    );
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
   * back is looked at again when the grace period ends: its blockers may not come back. An undo
   * still to commit (Unsure) is done by the re-assertion itself where it only narrows or weakens
   * what the owner held (pendingUndos): the records it removes stay out, the locks it puts back go
   * back. The releases owed (answered, their steps of unknown fate) are settled by it too, before
   * anything goes back (settleOwed): what they release never returns. `carried`: the session the
   * engine lost.
   */
  beginReassert(graceEndsAt: number, carried: number): void {
    const epoch = this.space.epoch;
    // Shown applied already (appliedBefore: judged on the cache and the Unsure entries as they are
    // now): the cache lacks what they released, and their notices were told.
    const owed = this.owed.filter((o) => !this.appliedBefore(o));
    // The release in flight, whose step may have applied with its reply still on its way: settled
    // last (its step carried the owed ones first); its decision then answers from that (Run.settled).
    if (this.flying !== undefined && !this.appliedBefore(this.flying)) owed.push(this.flying);
    const { stay, back } = this.pendingUndos(carried);
    // Judged once the owed releases are settled (meetOfUnknown).
    const unknown = [...this.unsure.values()].filter((u) => !u.applied);
    // Only the lost session's: the cache may still have records of an earlier one that was lost
    // (its handles told so, sessionLost) if no step on the file came since.
    const kept = this.ownRecords().filter((r) => r.epoch === carried && (stay.has(r.id) || !this.undoing(r.id)));
    this.unsure.clear();
    // Put back under their ids, stand-ins too: the engine will hold them so (or they are lost).
    this.standIns.clear();
    // Waiters go back without edges (recheck).
    const edges: EdgeInput[] = [];
    this.records = kept.map((r) => ({ ...r, epoch }));
    // Then the locks the undos put back, as new records (as build() adds them to the table, and
    // the next step puts them), unless their owner holds them already.
    for (const { r, origin, marks } of back) {
      if (this.coveredBefore(this.decode(r).req)) continue;
      const x = { ...r, id: this.space.newId(), epoch, seq: (this.records.at(-1)?.seq ?? 0) + 1 };
      if (origin !== undefined) this.origins.set(x.id, origin);
      // With the bytes of grants it held (Unsure.marks), as the undo's step would have put it.
      if (marks !== undefined) {
        for (const m of marks) if (!this.grants.has(m.g.rid)) this.grants.set(m.g.rid, m.g);
        this.grantOf.set(
          x.id,
          marks.map(({ g, start, end }) => ({ rid: g.rid, start, end })),
        );
      }
      this.records.push(x);
    }
    // Grants the owed unlocks spared, stood in for now: no step decided since they came applied.
    const stoodIn = new Set(owed.flatMap((o) => [...this.sparedIn(o, this.records)]));
    this.remnants.clear();
    const told = this.settleOwed(owed);
    const meet = this.meetOfUnknown(unknown, carried, stoodIn);
    this.remnants.clear();
    this.records = this.records.filter((r) => !meet.drop.has(r.id));
    for (const r of meet.add) if (!this.records.some((x) => x.id === r.id)) this.records.push({ ...r, epoch, seq: (this.records.at(-1)?.seq ?? 0) + 1 });
    const mine = [...this.records];
    this.version = 0;
    this.reassertedUntil = graceEndsAt;
    this.ownExact = true;
    this.heldPutBack = false;
    for (const r of mine) {
      if (r.state !== 'waiting') continue;
      this.resend.add(r.id);
      this.recheck.add(r.id);
    }
    const gen = ++this.gen;
    this.refresh();
    for (const a of told) {
      try {
        a();
      } catch (e) {
        this.space.report(e);
      }
    }
    if (mine.length === 0) return;
    const p = this.putBack(mine, edges, gen, graceEndsAt)
      .catch((e: unknown) => this.space.report(e))
      .finally(() => {
      if (this.reasserting === p) this.reasserting = undefined;
    });
    this.reasserting = p;
  }

  /**
   * The undos still to commit (Unsure entries found applied), which the re-assertion settles:
   * the engine lost the records they would remove (left out of it, as of the table: undoing),
   * and the owner's locks of the carried session they would put back (build) go back with the
   * node's records, else nothing would. One that would put back bytes its owner no longer held
   * in the engine (heldAlready: a downgrade's write lock; a node's copy may not know who took
   * them since, and they put theirs back too) is not undone, as noticeApplied decides for one
   * that cannot be: what its step put stays (`stay`), and the fault says so. Locks of another
   * session went with it.
   */
  private pendingUndos(carried: number): { stay: Set<string>; back: { r: StoreRecord; origin: LockOrigin | undefined; marks: readonly GrantBytes[] | undefined }[] } {
    const stay = new Set<string>();
    const back: { r: StoreRecord; origin: LockOrigin | undefined; marks: readonly GrantBytes[] | undefined }[] = [];
    for (const u of this.unsure.values()) {
      if (!u.applied) continue;
      const removed = u.removed.filter((r) => r.epoch === carried);
      // Put back in the grace period, a lock must be one the engine held: the cache may not know
      // what other nodes took since (bytes the step freed), and they put theirs back too. So an
      // undo goes back only where it only narrows or weakens what the owner held there.
      if (!removed.every((r) => this.heldAlready(r, carried))) {
        for (const id of u.put) stay.add(id);
        this.keepMarks(u);
        this.space.report(this.cannotUndo('it would put back bytes its owner no longer held, which others may hold since', '', ' when the engine lost its data'));
        continue;
      }
      for (const r of removed) if (!back.some((x) => x.r.id === r.id)) back.push({ r, origin: u.origins.get(r.id), marks: u.marks?.get(r.id) });
    }
    return { stay, back };
  }

  /**
   * Whether the owner of `r` holds all of its bytes, in its mode or a stronger one, in this node's
   * records of session `epoch` (the engine's, as the cache has them): put back, `r` grants nothing new.
   */
  private heldAlready(r: StoreRecord, epoch: number): boolean {
    const me = this.space.config.node;
    return coveredBy(this.decode(r).req, this.records.filter((x) => x.node === me && x.epoch === epoch && x.state === 'held').map((x) => this.decode(x).req));
  }

  /**
   * Lock requests of this node whose step got no reply and whose fate is still unknown when the
   * engine loses its data (Unsure, not found applied): the engine held either the cache's locks
   * (it did not apply) or what the step left (it did). Put back, a lock must be one the engine
   * held either way: other nodes may have taken bytes the step freed, and put theirs back too.
   * A step that only strengthened (each lock it removed is covered by what it put) needs nothing:
   * the cache's locks are held either way. One that only weakened (each lock it put is covered by
   * what it removed: a downgrade) goes back as it left them; any other, neither. Either way its
   * owner may now hold less than it was told, and the fault says so. Judged after the owed
   * releases are settled (settleOwed, on the records about to go back): those the step carried
   * ran in it before the request, and ran there too, so the locks they removed are gone; their
   * owners were told their locks were released, hold what they were told, and nothing of theirs
   * is judged or reported here (the fault named them as told more than they hold). What the
   * request itself replaced, still there, is.
   */
  private meetOfUnknown(unknown: readonly Unsure[], carried: number, stoodIn: ReadonlySet<string>): { drop: Set<string>; add: StoreRecord[] } {
    const drop = new Set<string>();
    const add: StoreRecord[] = [];
    for (const u of unknown) {
      // It took a lock the cache stood in for, granted by another node's step that had applied
      // (its inbox event came): decided on a version before that grant, it was stale, never applied.
      if (u.removed.some((r) => stoodIn.has(r.id))) continue;
      // What is left of them: the records themselves, or what a settled release left of them
      // (remnants): a step that replaced a lock with one its owner may hold less of (a downgrade)
      // may have applied, and what the release left of that lock is no more held either way.
      const ids = new Set(u.removed.filter((r) => r.epoch === carried).map((r) => r.id));
      const removed = this.records.filter((x) => ids.has(x.id) || ids.has(this.remnants.get(x.id) ?? ''));
      if (removed.length === 0) continue;
      const putReqs = u.putHeld.map((r) => this.decode(r).req);
      // Owner by owner: a step may carry an owed release of another owner's locks too.
      const owners = new Map<string, StoreRecord[]>();
      for (const r of removed) {
        const o = this.decode(r).req.owner;
        owners.set(o, [...(owners.get(o) ?? []), r]);
      }
      for (const [owner, rs] of owners) {
        const removedReqs = rs.map((r) => this.decode(r).req);
        if (removedReqs.every((r) => coveredBy(r, putReqs))) continue;
        for (const r of rs) drop.add(r.id);
        const puts = u.putHeld.filter((r) => this.decode(r).req.owner === owner);
        const weakened = puts.every((r) => coveredBy(this.decode(r).req, removedReqs));
        if (weakened) {
          add.push(...puts);
          for (const r of puts) {
            const o = u.origins.get(r.id);
            if (o !== undefined) this.origins.set(r.id, o);
          }
        }
        this.space.report(new Error(`a lock request's step on ${this.path} that got no reply from the engine (the request was answered as failed) may have applied when the engine lost its data: its owner keeps only what it holds either way (${weakened ? 'what the step left' : 'none of the locks it replaced'}), and may hold less than it was told until it closes the file`));
      }
    }
    return { drop, add };
  }

  /**
   * The releases owed when the engine lost its data (answered to their callers, their steps of
   * unknown fate: applied with the reply lost, or never), settled by the re-assertion: the engine
   * held either the cache's locks (a step did not apply: the release runs next) or what the
   * release left (it did), and since a release only removes, what it leaves is held either way.
   * So they run here, in order, on the table of the records about to go back (this.records: this
   * node's alone, which is all a release of this node's owners and handles looks at), and only
   * what they leave goes back: a lock they release is never put back over bytes another node may
   * have taken once they were free (and put back too). The split a partial POSIX unlock leaves
   * goes back as a new record; a Windows unlock takes its one exact lock; a close its handle's
   * locks and waiters (an owed one ended their requests when it was answered, SharedFiles.endThrough; one in
   * flight ends them now, as its step would have), and a lock another node granted one of them:
   * no close spares it (its request was told granted before the close was answered, or ended
   * with the close: a grant nobody holds, whose release is told to nobody: untold). They are not
   * owed any more, and their notices
   * (release hooks, ended waiters) are told once, by the caller (beginReassert), from this run:
   * none from the lost session's steps (lostAnswers) can be told
   * after this, as no reply can show one applied (the engine's log and last steps start again,
   * the records going back are the cache's, which show none, and deliverLost skips an earlier
   * session's Windows records). A lock another node's step granted to a waiter here after an
   * unlock was answered (or, in flight, decided) is out of that unlock's reach (Run.spared): its
   * owner was told it holds it, and the kernel's order is the unlock, then the grant. Exact while
   * the cache still has that grant as its stand-in (the held record under the waiter's id,
   * grantedRemotely): the engine's grant removed the waiter's record, so no reply of the engine
   * since the grant came (each replaces or changes the cache's records); and a step applies only
   * on the version it was decided on, so every step of this node that carried the unlock was
   * decided before the grant and applied before it, or never. The engine held the grant's bytes
   * either way, for that owner, and they go back. Once a reply replaced the stand-in (the grant's
   * records under that step's ids), the release still leaves the grant alone (spareOf), as every
   * step that carried it since did. Should a release still take a spared grant (one spareOf could
   * not match), a fault says so (tookGrant).
   *
   * Synchronously, here rather than in the mailbox or the re-assertion's promise: the wake-up
   * pass is held (no grant while the records are not all back; the pass at the grace period's
   * end comes), so no approval hook is asked, the only hook that may answer later, and each
   * release decides at once. Nothing then runs between the build and the result: a decision in
   * flight (across its own await) finds the table rebuilt and its cache replaced (gen), and
   * decides again. A release that returns a Promise all the same (a bug) is not settled: the
   * owed releases then run in the next step, as before, and the fault says so. Returns the
   * notices to tell, or none.
   */
  private settleOwed(owed: readonly Run[]): (() => void)[] {
    if (owed.length === 0) {
      this.setOwed([]);
      return [];
    }
    const me = this.space.config.node;
    const epoch = this.space.epoch;
    const outside = this.out;
    const before = this.records;
    this.out = emptyOutcome();
    // Cycles and reach found before the loss (for a decision of the old session) mean nothing here.
    this.graph.cyclic.clear();
    this.graph.reach.clear();
    try {
      const results: unknown[] = [];
      const gone = new Set<string>();
      let all = this.records;
      let lostGrant = false;
      // In turns, each on a table of the records a run of them can reach: those of its spared
      // locks are left out of it (and so kept by its step), and put with the records again after.
      for (let i = 0; i < owed.length; ) {
        const hide = this.sparedIn(owed[i]!, all);
        // One whose spared lock is no longer stood in for runs alone: what its turn took is its.
        const alone = (o: Run) => [...(o.spared?.keys() ?? [])].some((id) => !all.some((r) => r.id === id && r.state === 'held'));
        let j = i + 1;
        while (j < owed.length && !alone(owed[i]!) && !alone(owed[j]!) && sameIds(this.sparedIn(owed[j]!, all), hide)) j++;
        const turn = owed.slice(i, j);
        i = j;
        this.records = all.filter((r) => !hide.has(r.id));
        this.build();
        this.table.wakeups = false;
        for (const o of turn) {
          this.hiding = hide;
          let res: unknown;
          try {
            res = o(this.table);
          } finally {
            this.hiding = new Set();
          }
          if (res instanceof Promise) {
            res.catch((e: unknown) => this.space.report(e));
            this.space.report(new Error(`a release owed on ${this.path} did not decide at once when the engine lost its data (the wake-up pass held): it runs again in the next step`));
            this.records = before;
            return [];
          }
          results.push(res);
        }
        const d = this.diff();
        if (d === undefined) continue;
        const removed = new Set(d.step.remove);
        const puts = new Map((d.step.put ?? []).map((p) => [p.id, p]));
        const next = all.filter((r) => !removed.has(r.id));
        for (const id of removed) gone.add(id);
        let seq = all.reduce((m, r) => Math.max(m, r.seq), 0);
        // What a release leaves that no record holds yet: a split's remaining part.
        for (const x of d.fresh) {
          const p = puts.get(x.id);
          if (x.lock === undefined || p === undefined) continue;
          this.origins.set(x.id, x.lock.origin);
          const rec: StoreRecord = { id: x.id, node: me, epoch, state: 'held', requestId: '', data: p.data, seq: ++seq };
          next.push(rec);
          // The lock it is what is left of (of the same owner, covering it), for meetOfUnknown.
          const req = this.decode(rec).req;
          const from = all.find((r) => removed.has(r.id) && r.node === me && r.state === 'held' && coveredBy(req, [this.decode(r).req]));
          if (from !== undefined) this.remnants.set(x.id, this.remnants.get(from.id) ?? from.id);
        }
        // A spared grant no longer stood in for (a reply's records replaced it) was in reach: its
        // owner was told it holds it, and may hold less now (the kernel's rule: at least a fault).
        if (!lostGrant && turn.some((o) => this.tookGrant(o, all, next))) {
          lostGrant = true;
          this.space.report(new Error(`a release owed on ${this.path} when the engine lost its data took a lock another node granted its owner after the release was answered (its steps got no reply), and its owner may hold less than it was told until it closes the file`));
        }
        all = next;
      }
      this.records = all;
      for (const id of gone) this.origins.delete(id);
      for (let i = 0; i < owed.length; i++) owed[i]!.settled = { res: results[i] };
      this.setOwed([]);
      return this.out.answers;
    } finally {
      this.out = outside;
    }
  }

  /**
   * The locks a POSIX, OFD or flock unlock, a flush, a Windows unlockFile or unlockAll `call` (run as `run`)
   * leaves to its owner (or handle): those another node granted after it (Run.spared), or
   * undefined when there are none. The kernel's order is the release, then the grant: run later,
   * the release must not take the granted bytes back. Exact: a step that carried the release
   * applied before the grant (and no later step runs it again: appliedBefore, shownApplied) or was
   * decided after this node learned of the grant (the engine refuses a step decided on an older
   * version). Not the grants whose records settleOwed keeps out of the table (`hiding`): out of
   * reach already.
   */
  private spareOf(run: Run, call: Call): LockRequest[] | undefined {
    if (run.spared === undefined) return undefined;
    const mine = (g: LockRequest): boolean => {
      if (call.op === 'lock') return call.lockType === F_UNLCK && g.owner === call.req.owner;
      if (call.op === 'flush') return g.owner === call.owner;
      if (call.op === 'unlockFile') return g.kind === 'windows' && g.owner === call.owner;
      return call.op === 'unlockAll' && g.kind === 'windows' && g.origin.handleKey === call.handleKey && g.origin.processKey === call.processKey;
    };
    const spare = [...run.spared].filter(([id, g]) => mine(g) && !this.hiding.has(id)).map(([, g]) => g);
    return spare.length === 0 ? undefined : spare;
  }

  /** The records of spared grants settleOwed keeps out of the table while an owed release runs (spareOf). */
  private hiding: ReadonlySet<string> = new Set();

  /** The records of `records` that stand for locks spared by `run` (Run.spared): held, under a waiter's id. */
  private sparedIn(run: Run, records: readonly StoreRecord[]): Set<string> {
    const ids = new Set<string>();
    if (run.spared === undefined) return ids;
    for (const r of records) if (r.state === 'held' && run.spared.has(r.id)) ids.add(r.id);
    return ids;
  }

  /**
   * Whether a lock spared by `run` (Run.spared) that no record stands in for any more in `before`
   * was held whole by its owner there (this node's records) and is not in `after`.
   */
  private tookGrant(run: Run, before: readonly StoreRecord[], after: readonly StoreRecord[]): boolean {
    if (run.spared === undefined) return false;
    const me = this.space.config.node;
    const reqs = (rs: readonly StoreRecord[]) => rs.filter((r) => r.node === me && r.state === 'held').map((r) => this.decode(r).req);
    const was = reqs(before);
    const is = reqs(after);
    for (const [id, req] of run.spared) {
      if (before.some((r) => r.id === id && r.state === 'held')) continue;
      if (coveredBy(req, was) && !coveredBy(req, is)) return true;
    }
    return false;
  }

  private async putBack(mine: readonly StoreRecord[], edges: readonly EdgeInput[], gen: number, graceEndsAt: number): Promise<void> {
    const records = mine.map((r) => (r.state === 'held' ? { id: r.id, state: r.state, data: r.data } : { id: r.id, state: r.state, data: r.data, requestId: r.requestId }));
    let reply: ReassertReply;
    for (;;) {
      // A newer session replaced the cache while this one waited to send again: its own
      // re-assertion carries these records (not this one, under a session it is not for).
      if (gen !== this.gen) return;
      const leaseAt = this.space.leaseUntil();
      try {
        reply = await this.space.link.reassert(this.path, records, edges);
      } catch (e) {
        this.space.report(e);
        reply = { ok: false, reason: 'unreachable', error: String(e) };
      }
      if (reply.ok || gen !== this.gen || performance.now() >= graceEndsAt) break;
      // No answer: sent again (a record put again replaces itself) while the grace period lasts.
      if (reply.reason === 'unreachable') {
        await sleep(50);
        continue;
      }
      // Refused by the node's own fence, a renewal late (not a lost session): sent again once it
      // came, as a decision is (decide, 'fenced').
      if (reply.reason === 'fenced' && !this.space.awaitingSession() && (this.space.late() ? await this.space.renewed(graceEndsAt) : this.space.leaseUntil() > leaseAt)) continue;
      break;
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
    // Too late, fenced meanwhile, or no answer: lost. A try whose reply was lost may have put them
    // back all the same: the engine may hold them under this session, so a release asks it again.
    const ids = new Set(mine.map((r) => r.id));
    this.records = this.records.filter((r) => !ids.has(r.id));
    this.ownExact = false;
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
    this.setOwed([]);
    this.unsure.clear();
    this.lostAnswers.clear();
    this.releaseTold.clear();
    this.standIns.clear();
    this.grantOf.clear();
    this.grants.clear();
    this.preGrant.clear();
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
    // Read while the request still waits here: it is told this result (SharedFiles.ended), its
    // lock granted, whether this grant stands in the cache already or came from a stale reply.
    const waits = this.space.waits.has(rid);
    const known = this.grants.get(rid);
    if (known !== undefined && result === 0 && waits) known.told = true;
    const i = this.records.findIndex((r) => r.id === rid && r.state === 'waiting');
    if (i < 0 || result !== 0) return false;
    // A waiter whose cancel was answered: not stood in; the file is read again (unsureWaiter) and
    // what the grant gave is undone (noticeApplied).
    if (this.cancelledWaiter(rid)) return false;
    const r = this.records[i]!;
    const { req } = this.decode(r);
    this.keepPreGrant(rid, req, this.records);
    this.records[i] = { ...r, state: 'held', data: encodeLock(lockOf(req), undefined, req.origin.pid) };
    this.grantOf.set(rid, [{ rid, start: req.start, end: req.end }]);
    this.grants.set(rid, { rid, req, told: waits });
    this.spare(rid, req);
    // Only Windows locks are evidence (appliedBefore, releasedBy): only theirs are kept.
    if (req.kind === 'windows') this.standIns.add(rid);
    return true;
  }

  /**
   * Waiter `rid`'s lock `req`, granted by another node's step after the unlocks owed or in flight
   * were answered (or, in flight, decided): out of their reach (Run.spared), in the next step
   * (spareOf) and when an engine reset settles them (settleOwed).
   */
  private spare(rid: string, req: LockRequest): void {
    for (const o of [...this.owed, this.flying]) if (o?.unlock === true) (o.spared ??= new Map()).set(rid, req);
  }

  /**
   * Whether record `id` stands in the cache for a lock another node's step granted (grantedRemotely):
   * the engine's record of that lock has an id of that step's, and this one's absence from a
   * reply proves nothing of this node's steps (appliedBefore, deliverLost).
   */
  private standIn(id: string): boolean {
    if (this.standIns.size === 0) return false;
    for (const x of this.standIns) if (!this.records.some((r) => r.id === x)) this.standIns.delete(x);
    return this.standIns.has(id);
  }

  /**
   * This node's waiters granted by another node's step whose grant this node's approval hook is
   * still to judge (confirmRemote), by record id: the waiter's request, and its owner's locks
   * here just before the grant entered the cache (grantedRemotely, apply, replace). A POSIX/OFD
   * grant merges with them (fs/locks.c) and a flock grant replaces its owner's: a veto puts the
   * owner's bytes of the request back as they were (restoreOwner). Kept only on a node that
   * confirms grants (FileSpace.confirmsGrants): others pay nothing.
   */
  private readonly preGrant = new Map<string, { readonly req: LockRequest; readonly before: readonly LockRequest[] }>();

  /** Keeps waiter `rid`'s request and its owner's locks among `records` (the cache just before its grant), once. */
  private keepPreGrant(rid: string, req: LockRequest, records: Iterable<StoreRecord>): void {
    if (this.space.confirmsGrants !== true || this.preGrant.has(rid) || !this.space.waits.has(rid)) return;
    const me = this.space.config.node;
    const before: LockRequest[] = [];
    for (const x of records) {
      if (x.node !== me || x.state !== 'held' || x.id === rid) continue;
      const d = this.decode(x).req;
      if (d.owner !== req.owner) continue;
      const o = this.origins.get(x.id);
      before.push(o === undefined ? d : { ...d, origin: o });
    }
    const o = this.origins.get(rid);
    this.preGrant.set(rid, { req: o === undefined ? req : { ...req, origin: o }, before });
    // Told to the caller's side at once, kept with the request until it is answered: if this
    // worker dies before, its replacement judges the grant again from it (rejudge).
    this.space.judging?.(this.space.waits.get(rid)!, before);
  }

  /** Forgets what keepPreGrant kept of waiter `rid` (its event handled without a confirmation). */
  dropPreGrant(rid: string): void {
    this.preGrant.delete(rid);
  }

  /**
   * This node's waiter `rid`, granted by another node's step (grantedRemotely, or a stale reply's
   * changes), asked of this node's approval hook before its caller is told (API.md: asked before
   * it is granted), once, after the file is read again: `approve` is shown the request's event
   * with a fence above every fence the file had. Approved: one step grants the request's bytes
   * again with that fence (the engine checks it as any grant's, Step.fence; a refusal asks again
   * with a higher one). Vetoed, or its request ended meanwhile (`waits` false: SharedFiles.cancel
   * answers it at once; the hook is not asked if it ended before): the owner gets back exactly what
   * it held of those bytes before the grant (restoreOwner: a vetoed upgrade keeps its read lock,
   * an adjacent or overlapping lock its earlier bytes), the bytes beyond go, and whoever they
   * held up is woken, in one step (owed if the engine does not answer); the hook's code is the
   * result. No other owner's lock changes. The grant not found here (released meanwhile):
   * answered granted, as the event said. Only for nodes with hooks: others answer the grant as it came.
   * The release of a grant not kept is request `hostId`'s: owed under it until written (owes), so
   * that its caller keeps the request for a replacement of this worker, which releases the grant.
   */
  async confirmRemote(rid: string, hostId: number, family: 'windows' | 'posix', event: Readonly<Record<string, unknown>>, approve: TableHooks['approve'], generic: number, waits: () => boolean): Promise<number> {
    const kept = this.preGrant.get(rid) ?? (this.grants.has(rid) ? { req: this.grants.get(rid)!.req, before: undefined } : undefined);
    this.preGrant.delete(rid);
    if (kept === undefined) return waits() ? 0 : generic;
    return this.judge(kept.req, kept.before, family, event, approve, generic, waits, hostId);
  }

  /**
   * Request `hostId`'s lock `req`, asked again of this replacement worker after its predecessor
   * died while judging another node's grant of it (confirmRemote; the caller's side kept `before`,
   * its owner's locks here just before the grant: SharedFiles.rejudge). The grant still held (the
   * engine's records, read again): judged again as on the first worker, the first verdict dropped
   * (API.md), also when that worker had already written its approval's fenced step (a veto now
   * puts back `before`, an approval fences the lock again). Not held (a veto's step was written,
   * or the owner released the bytes): undefined, and the request runs as any request asked again.
   * The records not read (the engine did not answer): whether the grant is held is not known (a
   * replacement's cache holds nothing yet), so it is not judged on them: `generic`, and the grant,
   * if the engine still holds it, goes as a veto's, owed to the file's next step until written
   * (owes(hostId): the caller keeps the request for a replacement until then).
   */
  async rejudge(hostId: number, req: LockRequest, before: readonly LockRequest[], family: 'windows' | 'posix', approve: TableHooks['approve'], generic: number, waits: () => boolean, came?: number): Promise<number | undefined> {
    if (!(await this.reread(came))) {
      await this.undoGrant(req, before, hostId, came);
      return generic;
    }
    const f = this.built ? this.table.fileLocks(this.path) : undefined;
    if (f === undefined || !this.holdsGrant(f, req, before) || !this.heldBy(req, hostId)) return undefined;
    const code = await this.judge(req, before, family, req.origin.event, approve, generic, waits, hostId);
    // Told granted now: the grant's bytes, marked as a grant of a waiter this worker does not know
    // (its record id, from the inbox event or the records read), are the caller's from here on, and
    // their release is told (untold, fate).
    if (code === 0 && waits()) {
      for (const g of this.grants.values()) {
        const x = g.req;
        if (x.kind === req.kind && x.owner === req.owner && x.start === req.start && x.end === req.end && x.write === req.write) g.told = true;
      }
    }
    return code;
  }

  /**
   * Whether this node's session holds a record of request `hostId`'s grant: a Windows lock names its
   * request (LockOrigin.request); a POSIX/OFD/flock grant's bytes are its owner's (holdsGrant), its
   * record not told apart from the owner's others.
   */
  private heldBy(req: LockRequest, hostId: number): boolean {
    if (req.kind !== 'windows') return true;
    const me = this.space.config.node;
    return this.records.some((r) => r.node === me && r.epoch === this.space.epoch && r.state === 'held' && this.decode(r).req.origin.request === hostId);
  }

  /** The judgment of confirmRemote: `req`'s grant asked of the approval hook, fenced if approved, else the owner's `before` put back. */
  private async judge(req: LockRequest, before: readonly LockRequest[] | undefined, family: 'windows' | 'posix', event: Readonly<Record<string, unknown>>, approve: TableHooks['approve'], generic: number, waits: () => boolean, hostId?: number): Promise<number> {
    let code = generic;
    // The cache stands the grant in on the version before it (unmerged): read first, so that the
    // hook is asked once, on the engine's state, not again after a step refused as stale.
    await this.reread();
    const run: Run = (t) => {
      const f = t.fileLocks(this.path);
      // The grant gone from the cache before its turn (the owner's own unlock of those bytes,
      // queued before the grant's event, removed it): its caller is still told only what the
      // hook says (API.md: asked before the grant), and nothing is put again or undone.
      const held = f !== undefined && this.holdsGrant(f, req, before);
      // Ended before its hook was asked: not asked; the grant goes as a veto's.
      if (!waits()) {
        code = generic;
        return undefined;
      }
      const fence = this.giveFence();
      let verdict: number | Promise<number>;
      try {
        verdict = approve === undefined ? 0 : approve(family, { ...event, fence });
      } catch {
        verdict = generic;
      }
      // stop() answered the request already (995 / -EINTR): the hook's verdict is not waited for.
      if (verdict instanceof Promise && this.space.onStop !== undefined) {
        const hook = verdict;
        const space = this.space;
        verdict = new Promise<number>((resolve, reject) => {
          const off = space.onStop!(() => resolve(generic));
          hook.then(
            (v) => {
              off();
              resolve(v);
            },
            (e: unknown) => {
              off();
              reject(e);
            },
          );
        });
      }
      const then = (v: number): undefined => {
        // Its request ended while the hook ran (a timeout, an abort, stop): it stays ended, and
        // the lock goes as a veto's (a node alone: core grantWaiter).
        code = !waits() ? generic : Number.isInteger(v) ? v : generic;
        if (code !== 0 || !held) return undefined;
        this.regrant(f, req, before, fence);
        return undefined;
      };
      return verdict instanceof Promise ? verdict.then(then, () => then(generic)) : then(verdict);
    };
    // The fenced step not written (the engine away until the deadline, or no reply): the lock
    // stands without the fence its approval was shown, so it is refused as a grant the engine did
    // not answer is (the generic code) and released below (owed).
    let lost = false;
    const since = performance.now();
    await this.decide(
      run,
      () => {
        lost = true;
        return undefined;
      },
      false,
    );
    if (lost && code === 0) code = generic;
    if (code === 0 && waits()) return code;
    const f = this.built ? this.table.fileLocks(this.path) : undefined;
    if (f === undefined || !this.holdsGrant(f, req, before)) return code;
    // The engine gave the judgment's step no reply until its deadline: the release is owed at once
    // (its deadline is the judgment's), not tried for another requestTimeoutMs before the answer.
    await this.undoGrant(req, before, hostId, lost ? since : undefined);
    return code;
  }

  /**
   * A grant of `req` vetoed (or not judged): its owner's bytes of the request as they were before
   * it (`before`), as one release decision on the engine's records, owed when the engine does not
   * answer (as release `hostId`'s, when given: owes); its wake-up pass grants who fits now.
   */
  private async undoGrant(req: LockRequest, before: readonly LockRequest[] | undefined, hostId: number | undefined, came?: number): Promise<void> {
    const drop: Run = (t) => {
      const fl = t.fileLocks(this.path);
      if (fl === undefined || !this.holdsGrant(fl, req, before)) return undefined;
      this.restoreOwner(fl, req, before);
      return t.dropRecords(this.path, [], []);
    };
    if (hostId !== undefined) drop.hostId = hostId;
    await this.decide(drop, () => undefined, true, came);
  }

  /** The Windows lock of the table that is `req`'s grant: its range, mode and handle, not one of `before` (what the owner held before it). */
  private windowsGrant(f: FileLocks, req: LockRequest, before: readonly LockRequest[] | undefined): Lock | undefined {
    const like = (l: LockRequest): boolean => l.kind === 'windows' && l.owner === req.owner && l.start === req.start && l.end === req.end && l.write === req.write && l.origin.handleKey === req.origin.handleKey;
    const all = f.granted().filter(like);
    // Identical locks the owner held before stay its own: the grant is the last one granted.
    const same = before?.filter(like).length ?? 0;
    return all.length > same ? all.reduce((x, y) => (y.seq > x.seq ? y : x)) : undefined;
  }

  /** Whether the table still holds `req`'s grant: its owner holds its bytes in its mode (a Windows lock: one more than before). */
  private holdsGrant(f: FileLocks, req: LockRequest, before: readonly LockRequest[] | undefined): boolean {
    if (req.kind === 'windows') return this.windowsGrant(f, req, before) !== undefined;
    if (req.kind === 'flock') {
      const l = f.flockOf(req.owner);
      return l !== undefined && l.write === req.write;
    }
    return coveredBy(req, f.ownedBy(req.owner));
  }

  /** The approved grant of `req`, put again with its fence (a POSIX/OFD one over the owner's bytes of it, merging as a grant does). */
  private regrant(f: FileLocks, req: LockRequest, before: readonly LockRequest[] | undefined, fence: number): void {
    if (req.kind === 'windows') {
      const l = this.windowsGrant(f, req, before)!;
      f.removeLock(l);
      f.grant({ kind: l.kind, write: l.write, owner: l.owner, start: l.start, end: l.end, origin: l.origin, fence });
      return;
    }
    if (req.kind === 'flock') {
      const l = f.flockOf(req.owner)!;
      f.grant({ ...req, origin: l.origin, fence });
      return;
    }
    // Only the bytes its owner holds in the request's mode: a later grant of the same owner in
    // the same step (judged after it) may hold some of them in the other mode (a write over
    // part of a read), and granting the request again whole would undo that one.
    const { start: s, end: e } = req;
    const same = f.ownedBy(req.owner).filter((l) => l.write === req.write && l.end >= s && l.start <= e);
    for (const l of same) f.grant({ ...req, start: l.start > s ? l.start : s, end: l.end < e ? l.end : e, fence });
  }

  /**
   * A vetoed grant of `req` undone: its owner holds the bytes of `req` as it did before the grant
   * (`before`), and every other byte as now; a lock of `before` whose bytes are all back is put
   * back whole, with its origin and fence. Without `before` (not kept), the bytes of `req` go.
   */
  private restoreOwner(f: FileLocks, req: LockRequest, before: readonly LockRequest[] | undefined): void {
    if (req.kind === 'windows') {
      f.removeLock(this.windowsGrant(f, req, before)!);
      return;
    }
    if (req.kind === 'flock') {
      f.removeLock(f.flockOf(req.owner)!);
      const b = before?.find((x) => x.kind === 'flock');
      if (b !== undefined) f.restoreLock(lockOf(b));
      return;
    }
    const { start: s, end: e } = req;
    // `kept`: the fence of a lock kept whole (a later grant of the same step, approved since), which a lock put back over it keeps.
    type Piece = { start: bigint; end: bigint; write: boolean; origin: LockOrigin; fence: number | undefined; kept?: number | undefined };
    const pieces: Piece[] = [];
    // The owner's locks over or beside the request's bytes: what lies outside them stays. A lock
    // in the other mode than the request's over its bytes is a later grant of the same owner in
    // the same step (its own judgment to come; the request's grant left none): it stays whole.
    const kept: (readonly [bigint, bigint])[] = [];
    for (const l of f.ownedBy(req.owner)) {
      if (l.end < s - 1n || l.start > e + 1n) continue;
      f.removeLock(l);
      if (l.write !== req.write) {
        pieces.push({ start: l.start, end: l.end, write: l.write, origin: l.origin, fence: l.fence, kept: l.fence });
        kept.push([l.start, l.end]);
        continue;
      }
      if (l.start < s) pieces.push({ start: l.start, end: s - 1n, write: l.write, origin: l.origin, fence: l.fence });
      if (l.end > e) pieces.push({ start: e + 1n, end: l.end, write: l.write, origin: l.origin, fence: l.fence });
    }
    // What the owner held of the request's bytes before the grant, but for those kept above.
    for (const b of before ?? []) {
      if (b.end < s || b.start > e) continue;
      for (const [start, end] of without(b.start > s ? b.start : s, b.end < e ? b.end : e, kept.map(([x, y]) => ({ start: x, end: y })))) {
        pieces.push({ start, end, write: b.write, origin: b.origin, fence: b.fence });
      }
    }
    pieces.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
    // Canonical again (fs/locks.c): a mode's pieces that touch are one lock.
    const merged: Piece[] = [];
    for (const p of pieces) {
      const last = merged.findLast((m) => m.write === p.write);
      if (last !== undefined && p.start <= last.end + 1n) {
        if (p.end > last.end) last.end = p.end;
        if (p.fence !== undefined && (last.fence === undefined || p.fence > last.fence)) last.fence = p.fence;
        if (p.kept !== undefined && (last.kept === undefined || p.kept > last.kept)) last.kept = p.kept;
        continue;
      }
      merged.push({ ...p });
    }
    for (const m of merged) {
      const was = before?.find((b) => b.start === m.start && b.end === m.end && b.write === m.write);
      const origin = was?.origin ?? m.origin;
      const fence = was === undefined ? m.fence : m.kept !== undefined && (was.fence === undefined || m.kept > was.fence) ? m.kept : was.fence;
      f.restoreLock(lockOf({ kind: req.kind, write: m.write, owner: req.owner, start: m.start, end: m.end, origin, ...(fence === undefined ? {} : { fence }) }));
    }
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

  /**
   * Reads the file's records now (a decision that changes nothing: one round trip); false when the
   * engine did not answer by the deadline (requestTimeoutMs from `came`, or from now).
   */
  async reread(came?: number): Promise<boolean> {
    let read = true;
    await this.decide(
      () => undefined,
      () => {
        read = false;
        return undefined;
      },
      false,
      came,
    );
    return read;
  }

  /**
   * The step that comes by itself for what the file owes (SharedFiles.runOwed): reread's, whose
   * tries after no reply stop once another job is queued behind it (Run.yields).
   */
  owedTry(): Promise<unknown> {
    const run: Run = () => undefined;
    run.yields = () => this.queued > 1;
    return this.decide(run, () => undefined, false);
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
      this.recheck.size > 0 || this.heldPutBack || this.deferred.size > 0,
    );
  }

  /** Whether a POSIX request waits on this file, in its cached table (settleOthers). */
  posixWaits(): boolean {
    for (const w of this.table.fileLocks(this.path)?.waiters ?? []) if (w.req.kind === 'posix') return true;
    return false;
  }

  /** The pass for the checks put off (SharedFiles.checkAt): with none left (ended, or checked by another step), none. */
  checkPass(): Promise<unknown> {
    return this.deferred.size === 0 ? Promise.resolve(undefined) : this.wake();
  }

  /** What record `r` says (checkIo's lost handles, and the readers here): decoded once per version, never to be changed. */
  decode(r: StoreRecord): DecodedRecord {
    const d = this.decoded.get(r.id, r.data).d;
    // Swept here too: a node alone keeps its table across its steps (no build), whose readers
    // decode each record they read (a check of the size until the stale ones could be half).
    this.decoded.sweep(this.records);
    return d;
  }

  // ---- the cached state ------------------------------------------------------------------------


  /** Rebuilds the table from the cached records (after the sessions they belong to changed). */
  refresh(): void {
    if (this.built) this.build();
  }

  private apply(changes: readonly Change[]): void {
    const byId = new Map(this.records.map((r) => [r.id, r]));
    const me = this.space.config.node;
    for (const c of changes) {
      // Another node's step removed waiters of this node's session and put their owners' locks
      // over their bytes: it granted them, though their events may not be read yet. After the
      // unlocks owed or in flight, as in grantedRemotely.
      if (c.node !== me) {
        const gone = c.removed.flatMap((id) => byId.get(id) ?? []);
        const granted = this.grantedIn(gone, c.put);
        for (const r of granted) {
          const { req } = this.decode(r);
          this.spare(r.id, req);
          if (this.space.confirmsGrants === true) this.keepPreGrant(r.id, req, byId.values());
        }
        this.markGrants(granted, gone, c.put);
      }
      // The origins of records gone go with them (a waiter another node granted, a lock its grant
      // merged): nothing looks them up again.
      for (const id of c.removed) {
        byId.delete(id);
        this.origins.delete(id);
      }
      for (const r of c.put) {
        // A waiter of this node that the cache holds granted (grantedRemotely: the grant, read
        // from the inbox, was a later step than this one, which these changes reach after it):
        // kept granted. Turned back into a waiter, the step that granted it would look like a
        // grant after the unlocks in flight, and they would spare it (after an engine reset, the
        // re-assertion that put the waiter back is among these changes).
        const had = byId.get(r.id);
        if (had?.state === 'held' && r.state === 'waiting' && r.node === me && this.grants.has(r.id)) continue;
        byId.set(r.id, r);
      }
      // A step of this node given up on, shown applied here: the locks it put that hold bytes of
      // grants are marked before a later change is read (Lost.marked), so that another node's
      // step merging one of them with a grant keeps those bytes (markGrants: not told).
      const marked = c.node === me && this.lostAnswers.size > 0 ? this.lostAnswers.get(c.step)?.marked : undefined;
      if (marked !== undefined) this.adoptLost(marked, (id) => byId.has(id));
    }
    this.records = [...byId.values()].sort((a, b) => a.seq - b.seq);
  }

  /**
   * The engine's whole record set replaces the cache (a stale reply, the log no longer reaching
   * back): a waiter of this node's session it lacks, whose owner holds its bytes in records new
   * here, was granted, as in apply (a step of this node that gave them carried the releases owed
   * first, and the reply shows it applied: shownApplied).
   */
  private replace(records: readonly StoreRecord[]): void {
    const known = new Set(this.records.map((r) => r.id));
    const now = new Set(records.map((r) => r.id));
    const fresh = records.filter((r) => !known.has(r.id));
    const gone = this.records.filter((x) => !now.has(x.id));
    const granted = this.grantedIn(gone, fresh);
    for (const r of granted) {
      const { req } = this.decode(r);
      this.spare(r.id, req);
      if (this.space.confirmsGrants === true) this.keepPreGrant(r.id, req, this.records);
    }
    this.markGrants(granted, gone, fresh);
    for (const r of gone) this.origins.delete(r.id);
    this.records = [...records];
  }

  /**
   * The records of `gone` (no longer in the engine) that are waiters of this node's session whose
   * owner holds their bytes, in their mode or a stronger one, in `put` (records the steps that
   * removed them put): grants. Not a waiter another node's step failed (EDEADLK, its edges' check
   * closing a cycle), which gives its owner nothing. One step may grant an owner two waiters, the
   * second a read inside the first's write: the owner's lock then reads those bytes (a POSIX
   * owner's locks convert), so a write waiter counts as granted where it is read in `put` only
   * over bytes of a read waiter of the same owner that `gone` has and `put` grants.
   */
  private grantedIn(gone: readonly StoreRecord[], put: readonly StoreRecord[]): StoreRecord[] {
    const me = this.space.config.node;
    // Not a waiter whose cancel was answered (cancelAnswered): its grant is undone, never told,
    // so no owed unlock spares it (spareOf) and nothing marks it as a grant, as grantedRemotely.
    const waiters = gone
      .filter((r) => r.node === me && r.state === 'waiting' && r.epoch === this.space.epoch && !this.cancelledWaiter(r.id))
      .map((r) => ({ r, req: this.decode(r).req }));
    if (waiters.length === 0) return [];
    const held = put.filter((x) => x.node === me && x.state === 'held').map((x) => this.decode(x).req);
    const reads = waiters.filter((w) => !w.req.write && coveredBy(w.req, held)).map((w) => w.req);
    // The owner's read bytes in `put` that a granted read waiter of its covers, counted as write.
    const converted: LockRequest[] = [];
    for (const g of reads) {
      for (const x of held) {
        if (x.write || x.owner !== g.owner || x.kind !== g.kind || x.end < g.start || x.start > g.end) continue;
        converted.push({ ...x, write: true, start: x.start > g.start ? x.start : g.start, end: x.end < g.end ? x.end : g.end });
      }
    }
    const all = [...held, ...converted];
    return waiters.filter((w) => coveredBy(w.req, all)).map((w) => w.r);
  }

  /**
   * Marks the bytes of the records of `put` that stand for grants (grantOf): this node's locks,
   * each where it holds bytes of a waiter of its owner that `granted` has, in its mode (for a
   * Windows lock: that waiter's very range, through its handle), or bytes of a lock of grantOf
   * that `gone` has (a stand-in, or a record marked before, that the engine's records replace).
   * Not the bytes its owner held in `gone` outside any grant: a lock the grant replaced, or (a
   * POSIX owner's locks of one mode that overlap or touch merge: fs/locks.c) merged with, was
   * told to its owner, and its release is told. One step may grant an owner two waiters, a read
   * inside a write through another handle: the read's bytes are the read waiter's grant, read in
   * the owner's lock after it, not the write's. Another, two waiters side by side through two
   * handles, merged into one lock through the second's handle: each holds its own bytes of it.
   */
  private markGrants(granted: readonly StoreRecord[], gone: readonly StoreRecord[], put: readonly StoreRecord[]): void {
    const me = this.space.config.node;
    // The grants `put` may hold bytes of: each with the request it stands for and its bytes.
    const from: { rid: string; req: LockRequest; start: bigint; end: bigint }[] = granted.map((r) => {
      const { req } = this.decode(r);
      return { rid: r.id, req, start: req.start, end: req.end };
    });
    // What the owners held in `gone` outside those grants: told.
    const before: LockRequest[] = [];
    for (const r of gone) {
      if (r.node !== me || r.state !== 'held') continue;
      const { req } = this.decode(r);
      const parts = this.grantOf.get(r.id)?.filter((p) => this.grants.has(p.rid)) ?? [];
      for (const p of parts) from.push({ rid: p.rid, req, start: p.start > req.start ? p.start : req.start, end: p.end < req.end ? p.end : req.end });
      for (const [start, end] of parts.length === 0 ? [[req.start, req.end] as const] : without(req.start, req.end, parts)) before.push({ ...req, start, end });
    }
    if (from.length === 0) return;
    for (const x of put) {
      if (x.node !== me || x.state !== 'held') continue;
      const xr = this.decode(x).req;
      const held = before.filter((b) => b.owner === xr.owner && b.kind === xr.kind && b.start <= xr.end && xr.start <= b.end);
      const parts: GrantPart[] = [];
      for (const g of from) {
        const { req } = g;
        if (req.owner !== xr.owner || req.kind !== xr.kind || req.write !== xr.write) continue;
        if (xr.kind === 'windows') {
          // Its very waiter: the lock has the granted request's range and handle.
          if (req.origin.handleKey !== xr.origin.handleKey || g.start !== xr.start || g.end !== xr.end || held.length > 0) continue;
          parts.push({ rid: g.rid, start: xr.start, end: xr.end });
          break;
        }
        if (g.end < xr.start || g.start > xr.end) continue;
        const start = g.start > xr.start ? g.start : xr.start;
        const end = g.end < xr.end ? g.end : xr.end;
        for (const [s, e] of without(start, end, held)) parts.push({ rid: g.rid, start: s, end: e });
      }
      if (parts.length === 0) continue;
      this.grantOf.set(x.id, parts);
      for (const p of parts) {
        if (this.grants.has(p.rid)) continue;
        const g = from.find((f) => f.rid === p.rid)!;
        this.grants.set(p.rid, { rid: p.rid, req: g.req, told: false });
      }
    }
  }

  /**
   * How the release notice of `lock` (the hooks' released: `tell` tells it for bytes [start, end]
   * of it) is told, by its bytes: those of a grant of a waiter of this node (grantOrigin) whose
   * request was not told granted, and never will be (it was answered otherwise: ended with a
   * close, SharedFiles.endThrough) are never told: the caller never held them. Where the close
   * deciding now ends a grant's request: told with the grant, when its notice leaves (the step
   * committed), if the grant's event was read before (endThrough then tells the request that
   * event's result, granted: Grant.told). The rest is told: bytes its owner was told it holds (its
   * own, or a grant told), and a grant whose request still waits here (told granted later, from
   * its event). A byte of several grants (two waiters of one owner, granted in one step, merged)
   * is told if one of them is. One notice per run of bytes told alike; the whole lock's own notice
   * (`whole`) when all of it is.
   */
  private untold(lock: Lock, whole: () => void, tell: (start: bigint, end: bigint) => void): void {
    const marks = this.grantOrigin.get(lock.origin);
    if (marks === undefined) {
      whole();
      return;
    }
    // A Windows lock is one grant's, whole.
    if (lock.kind === 'windows') {
      this.noticeAs(this.fate([marks[0]!.g]), whole);
      return;
    }
    // Where a grant's bytes begin or end inside the lock.
    const cuts = new Set<bigint>([lock.start, lock.end + 1n]);
    for (const m of marks) {
      if (m.start > lock.start && m.start <= lock.end) cuts.add(m.start);
      if (m.end >= lock.start && m.end < lock.end) cuts.add(m.end + 1n);
    }
    const at = [...cuts].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    // Runs of bytes told alike. Every grant's bytes that begin or end inside the lock are cut there,
    // so a grant's bytes that meet a run cover it: those of the grants met so far (in order of
    // their start) that do not end before it.
    const over = marks.filter((m) => m.start <= lock.end && lock.start <= m.end).sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
    const covering = new Set<GrantBytes>();
    let k = 0;
    const runs: { start: bigint; end: bigint; how: Fate }[] = [];
    for (let i = 0; i + 1 < at.length; i++) {
      const start = at[i]!;
      const end = at[i + 1]! - 1n;
      while (k < over.length && over[k]!.start <= start) covering.add(over[k++]!);
      for (const m of covering) if (m.end < start) covering.delete(m);
      const how = this.fate([...covering].map((m) => m.g));
      const last = runs.at(-1);
      if (last !== undefined && sameFate(last.how, how)) last.end = end;
      else runs.push({ start, end, how });
    }
    const notice = (i: number, j: number): void => (i === 0 && j === runs.length - 1 ? whole() : tell(runs[i]!.start, runs[j]!.end));
    if (runs.every((r) => typeof r.how === 'string')) {
      for (let i = 0; i < runs.length; i++) if (runs[i]!.how === 'told') notice(i, i);
      return;
    }
    // Bytes of grants of requests the close deciding now ends: told if one of them was told by the
    // time the notice leaves, which is when the runs told are known. One notice per run of bytes
    // told, made then (madeBy), not for every span of runs that might be one: a close that ends
    // many waiters whose grants sit in one merged lock would make a number of them quadratic in
    // its runs.
    this.out.answers.push(() => {
      let i = -1;
      for (let j = 0; j <= runs.length; j++) {
        const how = runs[j]?.how;
        if (how === 'told' || (how !== undefined && how !== 'never' && how.some((g) => g.told))) {
          if (i < 0) i = j;
          continue;
        }
        const from = i;
        if (from >= 0) for (const a of this.madeBy(() => notice(from, j - 1))) a();
        i = -1;
      }
    });
  }

  /**
   * The answers `make` gives through the hooks (which put them in this.out), taken aside and
   * returned: a notice made as it leaves, after its decision, whatever decision runs then (untold).
   */
  private madeBy(make: () => void): (() => void)[] {
    const out = this.out;
    this.out = emptyOutcome();
    try {
      make();
      return this.out.answers;
    } finally {
      this.out = out;
    }
  }

  /** How bytes of the grants `gs` (none: bytes their owner was told it holds) are told (untold). */
  private fate(gs: readonly Grant[]): Fate {
    let later: Grant[] | undefined;
    let never = gs.length > 0;
    for (const g of gs) {
      if (g.told) return 'told';
      if (!this.space.waits.has(g.rid)) continue;
      never = false;
      // Its request still waits, and no close ends it now: it is told granted (its event).
      if (this.closing === undefined || closedWith(this.closing, g.req) === undefined) return 'told';
      (later ??= []).push(g);
    }
    return never ? 'never' : (later ?? 'told');
  }

  /** Tells a notice (`notice`) as untold judged it (`how`): at once, never, or when it leaves, if one of the grants was told by then. */
  private noticeAs(how: Fate, notice: () => void): void {
    if (how === 'never') return;
    const n = this.out.answers.length;
    notice();
    if (how === 'told') return;
    const grants = how;
    for (let i = n; i < this.out.answers.length; i++) {
      const tell = this.out.answers[i]!;
      this.out.answers[i] = () => {
        if (grants.some((g) => g.told)) tell();
      };
    }
  }

  /**
   * The grants' bytes of a record of this node whose lock is `req` (build): its marks (grantOf),
   * else those of its origin (`known`: what a step of this node left of a grant's lock), over its
   * bytes, of grants still known; undefined if none.
   */
  private grantMarks(parts: readonly GrantPart[] | undefined, known: readonly GrantBytes[] | undefined, req: LockRequest): GrantBytes[] | undefined {
    const all = parts ?? known?.map(({ g, start, end }) => ({ rid: g.rid, start, end }));
    if (all === undefined) return undefined;
    const out: GrantBytes[] = [];
    for (const { rid, start, end } of all) {
      const g = this.grants.get(rid);
      if (g !== undefined && start <= req.end && req.start <= end) out.push({ g, start, end });
    }
    return out.length === 0 ? undefined : out;
  }

  /** The fence numbers the table gave in this decision, lowest and highest (they only grow). */
  private given: [number, number] | undefined;

  /**
   * The file's last fence as the cache knows it (Step.fence): learned with the version (a stale
   * reply's changes or whole state, a committed step's numbers) and from 'fence' refusals.
   */
  private fenceLast = 0;

  /**
   * A grant's fence: one past the file's last (as the cache knows it) or the engine's time in µs
   * from below, whichever is larger; the next ones of the decision follow it.
   */
  private giveFence(): number {
    const g = this.given;
    if (g !== undefined) return ++g[1];
    const f = Math.max(this.fenceLast + 1, this.space.fenceTime());
    this.given = [f, f];
    return f;
  }

  /** The file's last fence is at least `f` (none: nothing learned). */
  private learnFence(f: number | undefined): void {
    if (f !== undefined && f > this.fenceLast) this.fenceLast = f;
  }

  /** The table of this file's records (a decision's starting point). */
  private build(): void {
    const me = this.space.config.node;
    this.giveUpUndos();
    // A grant's fence number, while a hook reads it: the engine applies the step only if it is above
    // the file's last (Step.fence); the decision's are kept in `given` (decide).
    const hooks = this.hooks();
    const fence = hooks.approve !== undefined || hooks.released !== undefined ? () => this.giveFence() : null;
    this.graph.own.clear();
    this.table = new LockTable({ policy: this.space.config.policy, graph: this.graph, hooks, fence });
    this.lockIds.clear();
    this.markedLocks.clear();
    this.waiterIds.clear();
    this.epochOf.clear();
    this.sessionsOf.clear();
    const locks: Lock[] = [];
    const waiters: RestoredWaiter[] = [];
    const waiterRecords: StoreRecord[] = [];
    this.leftOut = false;
    this.rebuild = false;
    for (const r of this.records) {
      // A dead session's records, and this node's from a session it lost, hold nothing any more;
      // nor does what a lock request answered as failed put (Unsure).
      const session = `${r.node}|${r.epoch}`;
      if ((this.dead.size > 0 && this.dead.has(session)) || (r.node === me && r.epoch < this.space.epoch) || (this.unsure.size > 0 && this.undoing(r.id))) {
        this.leftOut = true;
        continue;
      }
      const e = this.decoded.get(r.id, r.data);
      const d = e.d;
      let req = d.req;
      this.addSession(req.owner, session);
      if (r.node === me) {
        const o = this.origins.get(r.id);
        // The decoded request is shared by every build (decoded): the table gets its own origin,
        // as a fresh decoding gave it.
        req = o !== undefined ? { ...req, origin: o } : { ...req, origin: { ...req.origin, event: { ...req.origin.event } } };
        // A grant's lock (grantOf), or what a step of this node left of one (its origin kept).
        const known = o === undefined ? undefined : this.grantOrigin.get(o);
        const marks = r.state === 'held' ? this.grantMarks(this.grantOf.get(r.id), known, req) : undefined;
        if (marks !== undefined) {
          this.grantOf.set(
            r.id,
            marks.map(({ g, start, end }) => ({ rid: g.rid, start, end })),
          );
          if (known === undefined || !sameMarks(known, marks)) {
            req = { ...req, origin: { ...req.origin } };
            this.grantOrigin.set(req.origin, marks);
          }
        }
      } else {
        this.epochOf.set(req.owner, r.epoch);
        // F_GETLK about another node's holder reports lockPid 0 (API.md): its pid means nothing
        // here. Its record keeps the real one. Made once per version of the record (decoded):
        // nothing here changes a lock's or a waiter's origin.
        if (e.view === undefined) {
          const origin = { ...req.origin, pid: 0, event: { ...req.origin.event, [REMOTE]: true } };
          this.remotePid.set(origin, req.origin.pid);
          e.view = { ...req, origin };
        }
        req = e.view;
      }
      if (r.state === 'held') {
        const l = lockOf(req);
        this.lockIds.set(l, r.id);
        if (this.grantOrigin.has(l.origin)) this.markedLocks.set(l, r.id);
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
    this.decoded.sweep(this.records);
    // Marks of grants whose records are gone.
    if (this.grantOf.size > 0 || this.grants.size > 0) {
      const ids = new Set(this.records.map((r) => r.id));
      for (const id of this.grantOf.keys()) if (!ids.has(id)) this.grantOf.delete(id);
      const rids = new Set([...this.grantOf.values()].flatMap((ps) => ps.map((p) => p.rid)));
      for (const rid of this.grants.keys()) if (!rids.has(rid)) this.grants.delete(rid);
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
        // With the bytes of grants it held (its record, and grantOf's entry, gone since): marked
        // under an origin of its own, as a record's lock is above.
        const marks = u.marks?.get(r.id);
        if (marks === undefined) locks.push(lockOf(o === undefined ? req : { ...req, origin: o }));
        else {
          for (const m of marks) if (!this.grants.has(m.g.rid)) this.grants.set(m.g.rid, m.g);
          const origin = { ...(o ?? req.origin) };
          this.grantOrigin.set(origin, marks);
          const l = lockOf({ ...req, origin });
          // No record has it yet (PUT_BACK): the decision's step puts it (committed marks it under
          // its new record) or replaces it at once, and then its marks go with it.
          this.markedLocks.set(l, PUT_BACK);
          locks.push(l);
        }
        putBack = true;
      }
    }
    const ws = this.table.restoreFile(this.path, locks, waiters);
    // The engine holds the edges of every waiter as the node that last changed the file computed
    // them on this same state (the core decides alike everywhere): only changes are sent. Unless
    // this table is not that state: then they are sent whole (resend).
    this.edgesSent.clear();
    this.softUnknown.clear();
    const fifo = this.space.config.policy === 'fifo';
    const waiting = new Set<string>();
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      const id = waiterRecords[i]!.id;
      this.waiterIds.set(w, id);
      if (w.req.kind !== 'posix') continue;
      waiting.add(id);
      if (this.leftOut || putBack) this.resend.add(id);
      // Records left out: the engine's soft edges are still those of the file's last settle.
      if (fifo && !putBack) this.softUnknown.add(id);
      if (this.heldPutBack) {
        this.resend.add(id);
        this.recheck.add(id);
      }
      if (w.blockers.size === 0 && w.queuedBehind.size === 0) continue;
      this.edgesSent.set(id, [this.keysOf(w.blockers, me), this.keysOf(w.queuedBehind, me)]);
    }
    for (const id of this.resend) if (!waiting.has(id)) this.resend.delete(id);
    for (const id of this.recheck) if (!waiting.has(id)) this.recheck.delete(id);
    for (const id of this.deferred) if (!waiting.has(id)) this.deferred.delete(id);
    for (const id of this.doubted) if (!this.deferred.has(id)) this.doubted.delete(id);
  }

  /**
   * The table's hooks: the application's, with each Windows lock's release notice also kept aside
   * (Outcome.released), so that a step given up on can tell which records' notices it holds. A
   * release notice of a lock that holds bytes of another node's grants (grantOrigin) is told as
   * untold judges it: none for the bytes of a grant the caller was never told (a POSIX lock's
   * notice then covers the rest only, one per run of bytes). With no grant marked (grantOf empty),
   * each notice is the table's own, as it comes.
   */
  private hooks(): TableHooks {
    const hooks = this.space.tableHooks(() => this.out);
    const { released } = hooks;
    if (released === undefined) return hooks;
    return {
      ...hooks,
      released: (family, event, lock) => {
        const n = this.out.answers.length;
        // Bytes the caller was never told granted: it never held them, and hears nothing of them.
        // Nothing to look up while no grant is marked: the common release, with no allocation.
        if (lock === undefined || this.grantOf.size === 0) released(family, event);
        else
          this.untold(
            lock,
            () => released(family, event),
            (start, end) => released(family, posixUnlockEvent(lock, start, end)),
          );
        if (family === 'windows' && this.out.answers.length > n) this.out.released.push({ event, answer: this.out.answers[n]! });
      },
    };
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
   * call (a release of any kind) is owed to the file's next step. `came`: when a request came to
   * the file's mailbox (performance.now(); SharedFiles.attempt): its deadline runs from then, not
   * from its turn.
   */
  async decide(run: Run, failed: () => unknown, mustRun: boolean, came?: number): Promise<unknown> {
    this.inDecision++;
    try {
      return await this.deciding(run, failed, mustRun, came);
    } finally {
      this.inDecision--;
      if (this.flying === run) this.flying = undefined;
    }
  }

  private async deciding(run: Run, failed: () => unknown, mustRun: boolean, came: number | undefined): Promise<unknown> {
    // Settled by a re-assertion meanwhile (beginReassert): answered from that, nothing more runs.
    const settled = (): unknown => {
      this.out = emptyOutcome();
      return this.done([], run.settled!.res);
    };
    // A request's answer is due requestTimeoutMs after it came, also when jobs were ahead of it
    // (with the engine gone, each takes up to its own requestTimeoutMs): the deadline its steps
    // carry, and the one its tries end at.
    const deadline = (came ?? performance.now()) + this.space.config.requestTimeoutMs;
    // Its turn came only after that deadline: answered now as it would be then, nothing sent. A
    // release is decided first: one that finds nothing to release on a cache exact for this node
    // is answered so (releaseHere); else it is owed to the file's next step, as at its deadline
    // (also when its caller was answered then already: SharedFiles.answerRelease).
    const overdue = came !== undefined && run.settled === undefined && !(performance.now() < deadline);
    if (overdue && !mustRun) return this.giveUp(run, failed, mustRun);
    // A request whose deadline passed while it was decided (its turn came just before it), before
    // any step of it went out and with no wait for a session or a put-back: answered as at its
    // deadline (a release: owed too), not sent with requestTimeoutMs more (the k-th of k requests
    // queued on one file with the engine gone would be answered about 2 x requestTimeoutMs after
    // it came).
    let lateOk = came === undefined;
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
    /** Waiters of this node whose edges this decision writes unchecked (deferred); made when there is one. */
    let unchecked: Set<string> | undefined;
    /** A try of this decision whose step got no reply it could settle by: its answer (appliedBefore). */
    let tried: { res: unknown } | undefined;
    /** Until when a step refused by the fence is decided again because the lease moved on meanwhile ('fenced'). */
    let fencedBy: number | undefined;
    /**
     * The tries of this decision (not a release's: `tried`) whose steps got no reply that settled
     * their fate: one that a later reply shows applied is this decision's outcome (earlier).
     */
    const tries = new Map<string, { d: Diffed; res: unknown; owed: Run[]; sentAt: number }>();
    // A cycle an earlier decision was told of may be gone (an edge of another node's ended since).
    this.graph.cyclic.clear();
    for (;;) {
      if (run.settled !== undefined) return settled();
      // A new session: its message first (the connection's session changes with it), then this
      // file's re-assertion, if the engine lost its data.
      if (this.space.awaitingSession()) {
        lateOk = true;
        if (!(await this.space.nextSession(this.space.epoch, deadline))) return this.giveUp(run, failed, mustRun);
      }
      while (this.reasserting !== undefined) {
        lateOk = true;
        await this.reasserting;
      }
      if (run.settled !== undefined) return settled();
      const gen = this.gen;
      if (!this.built) {
        // Nothing cached: decided as if the file held nothing (version 0), which is true of most
        // files a lock starts on; if it is not, the commit says so with every record, and the
        // call is decided again. An uncontended lock costs one round trip, never a load first.
        this.built = true;
        this.build();
      } else if (this.rebuild) this.build();
      this.out = emptyOutcome();
      this.given = undefined;
      this.table.wakeups = !hold;
      // A release whose last step is shown applied is not run again (appliedBefore): owed, it is
      // dropped; this decision's own, after a try whose reply was lost, is answered as that try was.
      if (this.owed.length > 0) this.setOwed(this.owed.filter((o) => !this.appliedBefore(o)));
      if (mustRun && tried !== undefined && this.appliedBefore(run)) {
        this.build();
        this.out = emptyOutcome();
        return this.done([], tried.res);
      }
      const owed = this.owed;
      // The file's table and its edge refresh count once the reach is known: whether the
      // decision settled the file, and so refreshed its waiters' soft edges (softUnknown). Not
      // with the reach unknown (the engine did not answer): soft edges computed without it leave
      // out no earlier waiter, where the model may; those still unknown stay as the engine has them.
      let from: readonly [FileLocks | undefined, number] | undefined;
      if (this.space.config.policy === 'fifo' && (await this.askReach(run.owner, deadline))) {
        const f = this.table.fileLocks(this.path);
        from = [f, f?.edgeRefreshes ?? 0];
      }
      // 'fifo': whether the decision made a waiter here wait for an owner that queues behind it
      // on another file (LockTable.softCycles): the model settles the other files then.
      const cyclesFrom = [this.table, this.table.softCycles] as const;
      // Records left out of the table, or a pass held in a grace period: whoever they blocked may
      // fit now (the wake-up pass).
      if (this.leftOut || this.wakeOwed) await this.table.dropRecords(this.path, [], []);
      for (const o of owed) await this.targeting(o);
      for (const id of deadlocked) {
        const w = this.waiterOf(id);
        if (w !== undefined) await this.table.cancel({ waiter: w, path: this.path }, 'deadlock');
      }
      // Kept past an 'overdue' for another waiter in this step (below): the version is the same.
      const ending = deadlocked;
      deadlocked = [];
      const res = mustRun ? await this.targeting(run) : await run(this.table);
      // Waiters whose check is put off (deferred) are written unchecked until it is due, and those
      // this decision was just told of ('overdue' below) until it ends.
      // A pass stays pending for them (its timer may run a little early, or was another's).
      if (this.deferred.size > 0 && performance.now() < this.deferredDue) {
        unchecked ??= new Set();
        for (const id of this.deferred) unchecked.add(id);
        this.space.checkAt(this.path, this.deferredDue);
      }
      const f = this.table.fileLocks(this.path);
      const diffed = this.diff(run.asks, unchecked, from !== undefined && (from[0] !== f || from[1] !== f?.edgeRefreshes));
      const softCycle = this.table.softCycles > (cyclesFrom[0] === this.table ? cyclesFrom[1] : 0);
      const d = diffed !== undefined && softCycle ? { ...diffed, softCycle } : diffed;
      // A read that found the bytes free is checked against a grace period too: records not put
      // back yet could make it untrue (as NFS refuses LOCKT in its grace period), also when the
      // step carries other changes (owed releases, edges written whole, records left out).
      const free = run.free?.(res) === true;
      // Decided on a cache a new session replaced meanwhile (the awaits above): decided again,
      // also when it changed nothing on the rebuilt table (that table is not the one it ran on,
      // and the owed releases it ran were settled by the re-assertion: answered from it, their
      // notices would be told twice).
      if (gen !== this.gen || this.reasserting !== undefined) {
        fresh = false;
        this.build();
        continue;
      }
      // The owed releases it carried found nothing to release on the engine's state: settled. A
      // release that finds nothing where the cache is exact for this node needs no look at the
      // engine (releaseHere).
      if (d === undefined && !free && (fresh || (mustRun && this.releaseHere))) {
        if (!hold) this.wakeOwed = false;
        return this.done(owed, res);
      }
      // Earlier requests of this node wait out a grace period for this file (Parked): a request
      // whose own decision grants waits with them, after them, also once the period ended by the
      // engine's count but before they ran again (else it would pass them). Refusals, waiters
      // that queue and releases go on.
      const ahead = run.park === true && ((d?.step.grants ?? false) || free) ? run.ahead?.() : undefined;
      if (ahead !== undefined) {
        this.build();
        this.out = emptyOutcome();
        return new Parked(ahead, true);
      }
      // One reading of the clock for both questions: read twice, a first send could find the
      // deadline ahead and then past, and take requestTimeoutMs from then (2x from its arrival).
      const now = performance.now();
      if (overdue || (!lateOk && !(now < deadline))) return this.giveUp(run, failed, mustRun);
      // From its first send on, a wait that outlasts the deadline (a grace period, a late renewal)
      // gives the step requestTimeoutMs from then (sendBy).
      lateOk = true;
      // Until when the step is sent again after no reply, and then given up on: the request's
      // deadline, or, when a wait that outlasts it (a grace period) came first, requestTimeoutMs
      // from now. It goes with the step, and the engine refuses the step past it ('late'): a step
      // held up on its way never applies after its request was answered as failed (giveUp).
      const sendBy = now < deadline ? deadline : now + this.space.config.requestTimeoutMs;
      const mark = this.markFor();
      const step: Step = {
        ...(d?.step ?? { file: this.path, base: this.version }),
        grants: (d?.step.grants ?? false) || free,
        deadline: performance.timeOrigin + sendBy,
        ...(mark === undefined ? {} : { notify: [...(d?.step.notify ?? []), mark] }),
      };
      const epoch = this.space.epoch;
      let reply: CommitReply;
      /** The id the step was sent again with, after a reply that never came. */
      let resent: string | undefined;
      // Where the lease stood when the step went out: a refusal by the node's own fence may be
      // followed at once by the renewal it waited for ('fenced' below).
      const leaseAt = this.space.leaseUntil();
      // Once out, the step may apply whatever reply comes (beginReassert).
      if (mustRun) this.flying = run;
      this.sending = step;
      try {
        reply = await this.space.link.commit(step);
        if (!reply.ok && (reply.reason === 'unreachable' || reply.reason === 'fenced')) run.early?.();
        while (!reply.ok && reply.reason === 'unreachable' && performance.now() < sendBy && gen === this.gen) {
          // The same step again, by id: if the first one applied, the stale reply lists it.
          await sleep(20);
          // Never sent under a session that replaced the cache meanwhile.
          if (gen !== this.gen) break;
          // An owed try with a job queued behind it: given up on now (Run.yields).
          if (run.yields?.() === true) break;
          resent = reply.step;
          reply = await this.space.link.commit({ ...step, id: resent });
        }
      } catch (e) {
        this.space.report(e);
        // A malformed step (refused by its checks, TypeError, or by the engine as contradicting the
        // state it names, ProgrammingError): a bug of ours, never a reply. Nothing was applied, and
        // trying again would only repeat it: nothing of it is owed (dropMalformed).
        if (e instanceof TypeError || e instanceof ProgrammingError) return this.dropMalformed(failed, owed);
        // Anything else is the engine refusing the script (out of memory, a read-only replica,
        // loading): like no reply, a release is owed and tried again. A refused resend says
        // nothing of the first send, whose reply was lost: it may have applied (Unsure, lostAnswers).
        if (resent === undefined) return this.giveUp(run, failed, mustRun);
        reply = { ok: false, reason: 'unreachable', step: resent, error: String(e) };
      } finally {
        this.sending = undefined;
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
      // The whole record set shows step `id` (decided as `x`) applied: it holds a record the step
      // minted (newId: no other step puts it), or names it as this node's last step on the file.
      const shownInWhole = (id: string, x: Diffed | undefined) =>
        whole !== undefined && ((!reply.ok && reply.reason === 'stale' && reply.last === id) || x?.fresh.some((f) => whole.some((r) => r.id === f.id)) === true);
      const mintedSeen = resent !== undefined && shownInWhole(resent, d);
      const unknown = resent !== undefined && whole !== undefined && !mintedSeen;
      const unsure = reply.ok ? undefined : reply.reason === 'unreachable' ? reply.step : reply.reason === 'fenced' || reply.reason === 'reset' || unknown ? resent : undefined;
      if (unsure !== undefined && d !== undefined && run.undone === true) this.remember(unsure, d, sendBy, owed.length > 0);
      // Whatever this decision does next (gives up, or decides again), the step may stand.
      if (unsure !== undefined && d !== undefined) this.keepLost(unsure, d, run);
      if (unsure !== undefined && mustRun) tried = { res };
      if (unsure !== undefined && d !== undefined && !mustRun) tries.set(unsure, { d, res, owed, sentAt: now });
      if (unsure !== undefined) for (const r of mustRun ? [...owed, run] : owed) (r.sent ??= []).push(unsure);
      if (reply.ok) {
        this.ownExact = true;
        if (d !== undefined) this.committed(d, reply.version, now);
        // Decided on the records as the engine had them after the grace period: every waiter's
        // edges were written whole then (heldPutBack).
        if (now >= this.reassertedUntil) this.heldPutBack = false;
        this.wakeOwed = hold;
        // A step given up on before this one was sent, and past its deadline then, either applied
        // before this one (and was in the state this one was decided on: undone there) or never
        // will.
        for (const [id, u] of this.unsure) if (u.sendBy <= now) this.unsure.delete(id);
        // Likewise this decision's earlier tries: on this version or an earlier one, unnamed by
        // the stale replies since, they never applied, and this step moved the version past them.
        for (const id of tries.keys()) this.unsure.delete(id);
        const dropped = [...this.lostAnswers.values()];
        this.lostAnswers.clear();
        this.releaseTold.clear();
        const out = this.done(owed, res);
        this.settleEnds(dropped, mark?.requestId);
        return out;
      }
      switch (reply.reason) {
        case 'stale': {
          if (reply.records !== undefined) this.replace(reply.records);
          else this.apply(reply.missed ?? []);
          this.version = reply.version;
          this.learnFence(reply.records !== undefined ? reply.fence : reply.missed?.at(-1)?.fence);
          this.ownExact = true;
          this.shownApplied(mustRun ? [...this.owed, run] : this.owed, reply);
          // An earlier try of this decision that applied after all (its reply lost, then decided
          // again): what it decided stands, and answers the request (not undone as a step given up
          // on would be, Unsure: its request was never answered).
          let earlier: { d: Diffed; res: unknown; owed: Run[]; sentAt: number } | undefined;
          let earlierId: string | undefined;
          for (const [id, x] of tries) {
            if (id === resent || !(reply.missed?.some((c) => c.step === id) ?? shownInWhole(id, x.d))) continue;
            earlier = x;
            earlierId = id;
          }
          // Its other tries were decided on the same version or an earlier one, and a reply after
          // each of those would have named it: none applied, and none can now (the version moved).
          // What it decided for other requests is delivered below (deliverLost).
          if (earlier !== undefined) {
            for (const id of tries.keys()) {
              this.unsure.delete(id);
              if (id !== earlierId) this.lostAnswers.delete(id);
            }
          }
          this.noticeApplied(reply.missed);
          // The resend of unknown fate: after its stale reply, the step can no longer apply (the
          // version moved past its base), and the whole record set is the engine's state since
          // any time it could have. Unless noticeApplied found something of it there (a grant of
          // its waiter elsewhere: its own records would be minted ones), it left nothing to undo;
          // kept, a grant of the request decided again would later be taken for its waiter's.
          if (unknown && this.unsure.get(resent!)?.applied === false) this.unsure.delete(resent!);
          this.deliverLost(reply.missed, reply.last);
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
          if (earlier !== undefined) {
            this.adopt(earlier.d);
            this.edgesWritten(earlier.d, earlier.sentAt);
            this.wakeOwed = hold;
            this.build();
            this.out = emptyOutcome();
            return this.done(earlier.owed, earlier.res);
          }
          break;
        }
        case 'overdue':
        case 'deadlock': {
          const e = d?.edges.find((x) => x.waiter === reply.waiter);
          if (e === undefined) throw new Error(`the engine named waiter ${reply.waiter}, which the step did not check`);
          // The cycle runs only through edges of late sessions (their node may have answered those
          // waiters already, cut off from the engine): untrusted. Ended EDEADLK now, the waiter
          // named would be refused for a cycle gone whenever the late node already answered its
          // own waiter; and nothing else of the decision (an F_SETLK, a release, a wake-up pass,
          // the request's own queueing) waits for that doubt. Decided again with
          // that waiter's edges written unchecked (the decision's new one: the request queues in
          // its place, 'fifo' too), and its check put off (deferred): at most a second later, or
          // at the earliest of those sessions' expiry, a wake-up pass checks it whole: EDEADLK
          // if the cycle is still there once its node renewed, nothing once its edges went.
          // A put-off waiter whose last check was 'overdue' (doubted), found on a cycle now: the
          // late node has just renewed, and the steps it owes (the end of its waiter, answered
          // while it was cut off) commit only after that renewal was answered. Checked once more
          // a pass later before it ends: the cycle may be one its node already broke.
          const doubt = reply.reason === 'deadlock' && this.doubted.delete(reply.waiter);
          if (reply.reason === 'overdue' || doubt) {
            const own = d?.fresh.some((x) => x.waiter !== undefined && x.id === reply.waiter) === true;
            (unchecked ??= new Set()).add(own ? NEW_WAITER : reply.waiter);
            // Last in the set: the engine stops at the first cycle of a step, so the next pass
            // checks the others first (one still late must not hold up a cycle become true).
            if (!own) {
              this.deferred.delete(reply.waiter);
              this.deferred.add(reply.waiter);
              if (!doubt) this.doubted.add(reply.waiter);
            }
            // Not later than a pass already due: each new 'overdue' would put the others off.
            const next = performance.now() + Math.min(Math.max(1, reply.reason === 'overdue' ? reply.retryInMs : OVERDUE_RECHECK_MS), OVERDUE_RECHECK_MS);
            this.deferredDue = this.deferred.size > 0 && this.deferredDue > performance.now() ? Math.min(this.deferredDue, next) : next;
            this.space.checkAt(this.path, this.deferredDue);
            // The engine checked the version before the cycle: the cache is its state. So the
            // waiters this step ended for a cycle found by the step before still end in the next
            // (they would be put off with the others now, and their deadlock forgotten).
            fresh = true;
            deadlocked = ending;
            break;
          }
          // A waiter checked whole (recheck, deferred) did not grow in this decision: the table
          // would not end it, so it is ended as deadlocked in the next.
          if (this.recheck.has(reply.waiter) || this.deferred.has(reply.waiter)) deadlocked = [reply.waiter];
          else this.graph.cyclic.add(StepGraph.key(e.owner, e.hard));
          break;
        }
        case 'dead':
          for (const s of reply.sessions) this.dead.add(`${s.node}|${s.epoch}`);
          break;
        case 'fence':
          // Its grants' numbers were not above the file's last (a cache that did not know it: the
          // file had no record meanwhile), or ran past the engine's time: decided again (the
          // approval hooks asked again: the number changed) with numbers above. The engine's last is
          // the file's, also below what the cache knew: an engine that lost its data with its clock
          // behind those numbers refuses them as past its time, and a cache that kept them would
          // propose them again without end (fence-spin-review).
          this.fenceLast = reply.last;
          this.space.fenceRefused(reply.nowUs);
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
          // again once the renewal came, also when it came between the link's check and this one
          // (the lease moved on since the step went out; given up on, a lock request that only
          // waited for it failed: seen once in CI).
          // Each way on is bounded by the first such refusal's sendBy (sendBy itself moves on past
          // the deadline, for a try that starts after it).
          fencedBy ??= sendBy;
          if (this.space.late() ? await this.space.renewed(fencedBy) : this.space.leaseUntil() > leaseAt && performance.now() < fencedBy) break;
          // No session at all (lost, displaced): none to wait for here; what a release frees
          // went with the lost session (giveUp).
          if (!mustRun || this.space.sessionGone() || performance.now() >= fencedBy) return this.giveUp(run, failed, mustRun);
          await sleep(20);
          break;
      }
      this.build();
    }
  }

  /**
   * 'fifo' lets a request pass earlier waiters when queueing behind them would close a cycle
   * (SEMANTICS-POSIX.md §6). Whether one owner already waits for another is a question about every
   * node's edges: asked of the engine in one round trip before the decision, through the edges of
   * the other files only (this file's are the table's, which the decision changes as it settles:
   * StepGraph). From each of this file's POSIX owners (its waiters', its holders' and the
   * request's) to each that may queue (its waiters' and the request's). Nothing to ask without a
   * waiter. False when the engine did not answer (or no time was left to ask): the reach is then
   * unknown.
   */
  private async askReach(requester: string | undefined, deadline: number): Promise<boolean> {
    this.graph.reach.clear();
    const f = this.table.fileLocks(this.path);
    const to = new Set<string>();
    for (const w of f?.waiters ?? []) if (w.req.kind === 'posix') to.add(w.req.owner);
    if (to.size === 0) return true;
    if (requester?.[0] === 'p') to.add(requester);
    const from = new Set(to);
    for (const l of f?.granted() ?? []) if (l.kind === 'posix') from.add(l.owner);
    if (from.size < 2) return true;
    // At most 64 owners each way: the waiters first (the escape's own question), then the holders.
    const tos = [...to].slice(0, 64);
    const pairs: [string, string][] = [];
    for (const a of [...from].slice(0, 64)) for (const b of tos) if (a !== b) pairs.push([a, b]);
    // Half the time the request has left at most: an engine that does not answer leaves the rest to
    // the step (which meets it too, and ends at the request's deadline), not a whole command
    // timeout before it. No time left: no question, arrival order.
    const wait = (deadline - performance.now()) / 2;
    if (!(wait >= 1)) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const asked = this.space.link.fileReach(this.path, pairs);
      asked.catch(() => {});
      const r = await Promise.race([asked, new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), wait)))]);
      if (r === undefined) return false;
      pairs.forEach(([a, b], i) => {
        if (r.reach[i] !== true) return;
        const got = this.graph.reach.get(a);
        if (got === undefined) this.graph.reach.set(a, [b]);
        else got.push(b);
      });
      // The soft edges this node's build computed (softUnknown) give way to the engine's: the
      // model's as of the file's last settle, which the escape's walks go through until the next.
      if (this.softUnknown.size > 0) {
        for (const w of f?.waiters ?? []) {
          const id = this.waiterIds.get(w);
          if (id !== undefined && this.softUnknown.has(id)) this.table.restoreQueuedBehind(w, new Set(r.edges.get(id)?.soft ?? []));
        }
      }
      return true;
    } catch (e) {
      // Without the answer the request queues in arrival order; the engine's checks stay exact.
      // An engine that does not answer (a timeout, a connection down) is no fault: the commit
      // that follows meets it too and answers as it does. A malformed question (ours) or a script
      // the engine refuses is reported, as a commit's is.
      if (e instanceof TypeError || e instanceof ProgrammingError || (e instanceof Error && e.message.includes('refused a script'))) this.space.report(e);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs release `r` on the table, and keeps the records of the Windows locks it removed
   * (Run.targets); none when it removed another kind's: those other nodes' steps replace too.
   */
  private async targeting(r: Run): Promise<unknown> {
    const before = this.heldIds();
    const res = await r(this.table);
    const after = this.heldIds();
    const gone = [...before].filter(([id]) => !after.has(id));
    r.targets = gone.every(([id, l]) => l.kind === 'windows' && !this.standIn(id)) ? gone.map(([id]) => id) : [];
    return res;
  }

  /** The locks in the table that have a record, by its id (new locks have none yet). */
  private heldIds(): Map<string, Lock> {
    const ids = new Map<string, Lock>();
    for (const l of this.table.fileLocks(this.path)?.granted() ?? []) {
      const id = this.lockIds.get(l);
      if (id !== undefined) ids.set(id, l);
    }
    return ids;
  }

  /**
   * Whether release `r`'s last step applied, as the cache (the engine's records once a reply
   * said so) shows: it removed Windows locks, and none of them is left. While the session lives
   * only this node's steps remove its Windows locks (a lock request never does; nor does another
   * node's grant of a waiter here, which only adds), one at a time through this mailbox, each
   * applied whole or not at all, and a step carries the owed releases before anything else of
   * it: a later one that removed them carried this release. Run again, an unlock would release
   * the handle's second identical lock, and tell it again. Not when a lock request's step of
   * unknown fate that would be undone removed one of them too (Unsure, not tangled; one that
   * carried this release is tangled). POSIX, OFD and flock locks are left out: another node's
   * grant of this node's waiter merges, splits or converts its owner's locks into new records,
   * so their absence proves nothing. Any release a reply named as applied is not run again
   * either (Run.applied, shownApplied); one no reply named yet runs again (a POSIX unlock then
   * frees what it frees on the records as they are).
   */
  private appliedBefore(r: Run): boolean {
    if (r.applied === true) return true;
    const gone = r.targets;
    if (gone === undefined || gone.length === 0 || this.records.some((x) => gone.includes(x.id))) return false;
    for (const u of this.unsure.values()) if (!u.tangled && u.removed.some((x) => gone.includes(x.id))) return false;
    return true;
  }

  /**
   * Releases whose steps went unanswered (Run.sent), that a stale reply names as applied: a change
   * of the log since this node's version, or, when the log no longer reaches back, this node's
   * last step that applied to the file (`last`). That one is exact too: this node's steps on the
   * file go one at a time (the mailbox), never apply past their deadline (so none is in flight
   * when the next goes), and every one sent after a release's first unanswered step carried it
   * until one was answered: had any of them applied, the last that did is one of them. Such a
   * release is not run again: a POSIX unlock would take bytes its owner was granted since (by
   * another node's grant of its waiter), and tell its notice again.
   */
  private shownApplied(runs: readonly Run[], reply: { missed?: readonly Change[]; last?: string }): void {
    const shown = new Set(reply.missed?.map((c) => c.step) ?? (reply.last === undefined ? [] : [reply.last]));
    if (shown.size === 0) return;
    for (const r of runs) if (r.sent?.some((id) => shown.has(id)) === true) r.applied = true;
  }

  /**
   * The releases owed from now on: those that leave the list (written by a step, settled, shown
   * applied, dropped) are told owed no longer (FileSpace.written), before the answers of the step
   * that wrote them leave (done delivers after this).
   */
  private setOwed(next: Run[]): void {
    for (const o of this.owed) if (o.hostId !== undefined && !next.includes(o)) this.space.written(o.hostId);
    this.owed = next;
  }

  /** Whether release `hostId` is owed to the file's next step (its own gave up: giveUp). */
  owes(hostId: number): boolean {
    return this.owed.some((o) => o.hostId === hostId);
  }

  private done(owed: readonly Run[], res: unknown): unknown {
    this.flying = undefined;
    if (owed.length > 0) this.setOwed(this.owed.filter((o) => !owed.includes(o)));
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
    this.flying = undefined;
    this.build();
    this.out = emptyOutcome();
    // Not under session 0 (displaced, or expired with the engine out of reach): what it would
    // release went with the lost session, and no step could carry it (the file would never idle).
    if (mustRun && this.space.epoch !== 0) this.owed.push(run);
    // Also a step that may have applied after all: the next step finds out, and undoes it.
    if (this.owing) this.space.retryOwed(this.path);
    return failed();
  }

  /**
   * A malformed step (decide): dropped with its fault reported once. The call is not owed, and
   * neither are the owed releases the step carried: each next step would carry them again, throw
   * again and report again, and a retry would come by itself for ever (retryOwed), the file's
   * actor never idle. What they would have released stays held in the engine (the cache still
   * has it) until a later call of its owner releases it or this node's session ends.
   */
  private dropMalformed(failed: () => unknown, owed: readonly Run[]): unknown {
    this.flying = undefined;
    this.build();
    this.out = emptyOutcome();
    if (owed.length > 0) this.setOwed(this.owed.filter((o) => !owed.includes(o)));
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
    for (const x of d.fresh) if (x.lock !== undefined && put.includes(x.id)) origins.set(x.id, x.lock.origin);
    const putHeld: StoreRecord[] = [];
    for (const p of d.step.put ?? []) {
      if (p.state === 'held' && put.includes(p.id) && (p.node === undefined || p.node === me)) putHeld.push({ id: p.id, node: me, epoch: this.space.epoch, state: 'held', requestId: '', data: p.data, seq: 0 });
    }
    // Also the owner's locks before its waiter: a grant of it elsewhere, merged with one, is undone
    // by putting that one back (grantedAway).
    const marks = this.grantOf.size === 0 ? undefined : this.marksOf(waiter === undefined ? removed : [...removed, ...waiter.before]);
    const marked = this.markedLocks.size === 0 ? undefined : this.markedBy(d);
    this.unsure.set(id, { put, removed, origins, putHeld, sendBy, tangled: tangled || sibling, applied: false, waiter, ...(marks === undefined ? {} : { marks }), ...(marked === undefined ? {} : { marked }) });
  }

  /** The grants' bytes (grantOf) the records `rs` hold, by record id; undefined if none do. */
  private marksOf(rs: readonly StoreRecord[]): Map<string, GrantBytes[]> | undefined {
    let out: Map<string, GrantBytes[]> | undefined;
    for (const r of rs) {
      const marks = this.grantMarks(this.grantOf.get(r.id), undefined, this.decode(r).req);
      if (marks !== undefined) (out ??= new Map()).set(r.id, marks);
    }
    return out;
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
      if (u.applied) {
        // Being undone, and its waiter's record gone before the undo committed: another node's
        // step ended that waiter (granted it: what the grant gave is undone instead; or failed
        // it, or reaped it: nothing of it is left). Looked at again, as if just learned.
        if (u.waiter === undefined || u.put.some((x) => ids.has(x))) continue;
        u.applied = false;
      }
      const present = u.put.some((x) => ids.has(x));
      // Its waiter, granted by another node: what the grant gave is undone instead.
      const granted = present ? undefined : this.grantedAway(u);
      // A cancelled waiter (answered already) that another node's step failed or reaped: nothing
      // of it is left.
      if (u.cancel === true && !present && granted === undefined) {
        this.unsure.delete(id);
        continue;
      }
      if (granted !== undefined) {
        u.put = granted.put;
        u.removed = [...u.removed, ...granted.removed.filter((r) => !u.removed.some((x) => x.id === r.id))];
      }
      if (!present && granted === undefined && !(missed?.some((c) => c.step === id) ?? false)) continue;
      const undo = (present || granted !== undefined) && !u.tangled && u.removed.every((r) => this.restorable(r, u));
      const also = granted === undefined ? '' : ', and another node granted its waiter';
      if (!undo) {
        this.unsure.delete(id);
        if (present) this.keepMarks(u);
        this.space.report(this.cannotUndo('it changed other requests too, or its bytes went on to others', also));
        continue;
      }
      u.applied = true;
      if (u.cancel !== true) this.space.report(new Error(`${this.appliedAfterAll(also)}; undone`));
    }
  }

  /**
   * Step `id` got no reply: what it decided for other requests is kept (lostAnswers), and a step
   * comes by itself to find out whether it applied (retryOwed). Not for a lock request's own
   * step that is undone if it applied (Unsure, not tangled): nothing of it stands then.
   */
  private keepLost(id: string, d: Diffed, run: Run): void {
    if (this.out.answers.length === 0 || (run.undone === true && this.unsure.get(id)?.tangled === false)) return;
    const ends = this.out.ends.filter((e) => this.records.some((x) => x.id === e.rid)).map(({ rid, result }) => ({ rid, result }));
    const marked = this.markedLocks.size === 0 ? undefined : this.markedBy(d);
    this.lostAnswers.set(id, { answers: this.out.answers, ends, fresh: d.fresh.map((x) => x.id), released: this.releasedBy(d), epoch: this.space.epoch, ...(marked === undefined ? {} : { marked }) });
    this.space.retryOwed(this.path);
  }

  /**
   * This node's locks step `d` puts that hold bytes of grants: what the decision left of a marked
   * lock (its origin's marks: grantOrigin), or a lock it merged with one (carried). Undefined if none.
   */
  private markedBy(d: Diffed): Marked[] | undefined {
    const me = this.space.config.node;
    let out: Marked[] | undefined;
    for (const x of d.fresh) {
      if (x.lock === undefined || nodeOf(x.lock.owner) !== me) continue;
      const known = this.grantOrigin.get(x.lock.origin);
      const marks = known ?? (x.marks === undefined ? undefined : this.grantMarks(x.marks, undefined, x.lock));
      if (marks !== undefined) (out ??= []).push({ id: x.id, origin: x.lock.origin, marks });
    }
    return out;
  }

  /**
   * A step given up on is shown applied: its locks that hold bytes of grants (Lost.marked) keep
   * them, as a committed step's do (adopt): their records' marks, by their origins.
   */
  private adoptLost(marked: readonly Marked[], has: (id: string) => boolean): void {
    for (const { id, origin, marks } of marked) {
      // Gone since (another node's step replaced it): nothing of it to mark.
      if (!has(id)) continue;
      this.origins.set(id, origin);
      for (const m of marks) if (!this.grants.has(m.g.rid)) this.grants.set(m.g.rid, m.g);
      if (!this.grantOrigin.has(origin)) this.grantOrigin.set(origin, marks);
      this.grantOf.set(
        id,
        marks.map(({ g, start, end }) => ({ rid: g.rid, start, end })),
      );
    }
  }

  /** A step given up on that applied and stays (not undone, Unsure): the locks it put keep their grant marks (Unsure.marked), as a lost step's shown applied do. */
  private keepMarks(u: Unsure): void {
    if (u.marked === undefined) return;
    const ids = new Set(this.records.map((r) => r.id));
    this.adoptLost(u.marked, (id) => ids.has(id));
  }

  /**
   * The records of this node's Windows locks of the current session that step `d` removes, with
   * the release notice the decision gave each (matched by what the notice says: the lock's
   * handle, process, key and range; locks alike give the same notice). A lock the step removes
   * without a notice (stopAll) has none.
   */
  private releasedBy(d: Diffed): { id: string; answer: () => void }[] {
    if (this.out.released.length === 0) return [];
    const me = this.space.config.node;
    const gone = new Set(d.step.remove);
    const mine = new Set(this.records.filter((r) => gone.has(r.id) && r.node === me && r.state === 'held' && r.epoch === this.space.epoch && !this.standIn(r.id)).map((r) => r.id));
    const locks = [...this.lockIds].filter(([l, id]) => l.kind === 'windows' && mine.has(id));
    const out: { id: string; answer: () => void }[] = [];
    for (const { event: e, answer } of this.out.released) {
      const i = locks.findIndex(([l]) => {
        const o = l.origin.event;
        return l.start === e.byteOffset && l.end - l.start + 1n === e.length && o.handle === e.handle && o.processId === e.processId && o.key === e.key;
      });
      if (i < 0) continue;
      out.push({ id: locks[i]![1], answer });
      locks.splice(i, 1);
    }
    return out;
  }

  /**
   * Steps given up on that a stale reply shows applied (its missed changes name them, or the
   * whole record set has a record they minted or comes with one as this node's last step there):
   * what they decided for other requests is delivered now. A whole record set may show no step
   * (an earlier one than the last; the file held nothing since). Yet a Windows lock of this node's session that such a step released (Lost.released)
   * and that is gone was released by one of them (a step of this node: nothing else removes it
   * while the session lives, and one of this node that committed would have settled them all):
   * its release notice (onUnlockFile) is delivered now, once. The owed release, run again, finds
   * nothing of it to release and tells nothing; had the lock stayed, it would release it and
   * tell itself.
   */
  private deliverLost(missed: readonly Change[] | undefined, last: string | undefined): void {
    if (this.lostAnswers.size === 0) return;
    const ids = missed === undefined ? new Set(this.records.map((r) => r.id)) : undefined;
    // The records there are (made once, if a step shown applied put marked locks).
    let present: Set<string> | undefined;
    for (const [id, l] of [...this.lostAnswers]) {
      const applied = ids === undefined ? missed!.some((c) => c.step === id) : id === last || l.fresh.some((x) => ids.has(x));
      if (!applied) continue;
      this.lostAnswers.delete(id);
      if (l.marked !== undefined) this.adoptLost(l.marked, (x) => (present ??= ids ?? new Set(this.records.map((r) => r.id))).has(x));
      const told = new Set(l.released.filter((r) => this.releaseTold.has(r.id)).map((r) => r.answer));
      for (const r of l.released) this.releaseTold.add(r.id);
      for (const a of l.answers) if (!told.has(a)) a();
    }
    if (ids === undefined) return;
    for (const l of this.lostAnswers.values()) {
      if (l.epoch !== this.space.epoch) continue;
      for (const r of l.released) {
        if (ids.has(r.id) || this.releaseTold.has(r.id)) continue;
        this.releaseTold.add(r.id);
        r.answer();
      }
    }
  }

  /**
   * Steps given up on whose fate no reply told (a step that only removes records leaves no trace
   * in a whole record set), once a later step committed: none can apply any more, and the records
   * are the engine's after them. A waiter they ended with a failure (a timeout's or a signal's
   * cancel, a close), still waiting here, whose record is gone, was ended either by one of them
   * or by another node's step that granted it or failed it (EDEADLK). Such a step applied before
   * this one and, in that same atomic step, appended its event to this node's inbox: before the
   * mark this one left there (markFor). So the waiter waits for the mark (SharedFiles.afterMark):
   * an event that came before it answered it; if none did, one of the steps given up on ended it,
   * and it is answered with the failure the last of them decided for it (an earlier one that
   * ended it too was decided on a cache where it still waited, so it cannot have applied). What
   * its owner holds now tells nothing: another request of that owner on this node may have taken
   * some of its bytes meanwhile, as another node's grant would have.
   */
  private settleEnds(dropped: readonly Lost[], mark: string | undefined): void {
    const last = new Map<string, LostEnd>();
    for (const l of dropped) for (const e of l.ends) last.set(e.rid, e);
    const ends = [...last.values()].filter((e) => e.result !== 0 && this.space.waits.has(e.rid) && !this.records.some((r) => r.id === e.rid));
    // The step carried a mark whenever one of them could be here (markFor).
    if (ends.length > 0 && mark !== undefined) this.space.afterMark(mark, this.path, ends);
  }

  /**
   * The mark a step leaves in this node's own inbox when steps given up on ended waiters of this
   * node with a failure and they still wait (settleEnds): its name, and its notification. None
   * otherwise: a step costs nothing more on the usual path.
   */
  private markFor(): NotifyInput | undefined {
    for (const l of this.lostAnswers.values()) {
      for (const e of l.ends) {
        if (e.result !== 0 && this.space.waits.has(e.rid)) return { node: this.space.config.node, epoch: this.space.epoch, requestId: this.space.newId(), kind: INBOX_MARK };
      }
    }
    return undefined;
  }

  /**
   * Undos being done whose put-back another owner's lock came to conflict with since they were
   * judged possible (noticeApplied): the bytes their step freed were free in the engine, and
   * another node may have taken them before the undo committed. Given up, as noticeApplied gives
   * up one that cannot be done: what the step put stays. Put back, the lock would be granted over
   * the other owner's.
   */
  private giveUpUndos(): void {
    for (const [id, u] of this.unsure) {
      if (!u.applied || u.removed.every((r) => r.epoch !== this.space.epoch || this.restorable(r, u))) continue;
      this.unsure.delete(id);
      this.keepMarks(u);
      this.space.report(this.cannotUndo('another owner holds bytes it would put back since'));
    }
  }

  /** What a fault about a lock request's step that applied though its request was answered as failed (Unsure) starts with; `also`: what else befell it. */
  private appliedAfterAll(also = ''): string {
    return `a lock request's step on ${this.path} that got no reply from the engine (the request was answered as failed) had applied after all${also}`;
  }

  /**
   * The fault for such a step that cannot be undone (noticeApplied, giveUpUndos, pendingUndos):
   * what it put stays. `why`: what stands in the way; `when`: the moment, if not a reply's.
   */
  private cannotUndo(why: string, also = '', when = ''): Error {
    return new Error(`${this.appliedAfterAll(also)}; it could not be undone${when} (${why}): its owner may hold them until it closes the file`);
  }

  /** Whether `r`, an owner's lock the step replaced, can go back: no other owner holds conflicting bytes now. */
  private restorable(r: StoreRecord, u: Unsure): boolean {
    const req = this.decode(r).req;
    return !this.records.some((x) => x.state === 'held' && !u.put.includes(x.id) && conflicts(req, this.decode(x).req));
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

  /**
   * What the decision changed, as a step on the cached version; undefined when nothing did.
   * `asks`: Run.asks. `settled`: the decision refreshed the file's edges after askReach.
   */
  private diff(asks?: LockRequest, unchecked?: ReadonlySet<string>, settled = false): Diffed | undefined {
    const me = this.space.config.node;
    const f = this.table.fileLocks(this.path);
    const keep = new Set<string>();
    const put: RecordInput[] = [];
    const fresh: Fresh[] = [];
    // The bytes this decision told each owner it holds (carried): made once, when first needed;
    // nothing at all while no lock of the table holds a grant's bytes.
    let told: Map<string, Bytes[]> | undefined;
    const toldOf = this.markedLocks.size === 0 ? undefined : (owner: string): readonly Bytes[] => (told ??= this.toldBytes(asks)).get(owner) ?? [];
    for (const l of f?.granted() ?? []) {
      const known = this.lockIds.get(l);
      if (known !== undefined) {
        keep.add(known);
        continue;
      }
      const id = this.space.newId();
      const marks = toldOf === undefined ? undefined : this.carried(l, toldOf);
      fresh.push(marks === undefined ? { id, lock: l } : { id, lock: l, marks });
      const node = nodeOf(l.owner);
      const data = encodeLock(l, undefined, this.remotePid.get(l.origin));
      put.push(node === me ? { id, state: 'held', data } : { id, state: 'held', data, node, epoch: this.epochOf.get(l.owner)! });
    }
    const edges: EdgeInput[] = [];
    let deferNew: string | undefined;
    for (const w of f?.waiters ?? []) {
      let id = this.waiterIds.get(w);
      const isNew = id === undefined;
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
      const hardKeys = this.keysOf(w.blockers, me);
      const later = unchecked?.has(id) === true || (isNew && unchecked?.has(NEW_WAITER) === true);
      // A check put off (deferred) and now due: written and checked whole.
      const due = !later && this.deferred.has(id);
      const unknown = this.softUnknown.has(id);
      const whole = this.resend.has(id) || (unknown && settled);
      if (!whole && !due && sameKeys(hardKeys, sent?.[0]) && (unknown || sameKeys(this.keysOf(w.queuedBehind, me), sent?.[1]))) continue;
      const sessions = this.targetSessions(w);
      const hard = [...w.blockers];
      // Checked when it waits on something new: an owner, or an owner's lock under a new session.
      const grown = later ? false : this.recheck.has(id) || due ? hard.length > 0 : hardKeys.some((k) => !(sent?.[0] ?? []).includes(k));
      edges.push({ waiter: id, owner: w.req.owner, hard, soft: [...w.queuedBehind], sessions, check: grown });
      if (later && isNew && hard.length > 0) deferNew = id;
    }
    const remove: string[] = [];
    for (const r of this.records) if (!keep.has(r.id)) remove.push(r.id);
    const notify = this.out.notify;
    if (put.length === 0 && remove.length === 0 && edges.length === 0 && notify.length === 0) return undefined;
    // The engine checks an edge against the step's edge changes before it, the waiters checked
    // after it waiting for nobody (LockTable.refreshEdges): unchecked ones (edges written whole
    // among them) go first, so no check walks an edge this step replaces; the checked ones in
    // arrival order (the table's), so the later of two waiters a change puts on a cycle fails.
    edges.sort((a, b) => Number(a.check === true) - Number(b.check === true));
    // Checks put off are done first, in the set's order (the one found 'overdue' last goes last,
    // decide), then the others: a new waiter's 'overdue' must not hold up a check that is due.
    if (this.deferred.size > 0) {
      const rank = new Map([...this.deferred].map((id, i) => [id, i]));
      const at = (e: EdgeInput) => (e.check === true ? (rank.get(e.waiter) ?? rank.size) : -1);
      edges.sort((a, b) => at(a) - at(b));
    }
    // Only a grant of bytes nobody held is refused in a grace period; a split or downgrade is not one.
    const grants = fresh.some((x) => x.lock !== undefined && !this.coveredBefore(x.lock));
    // The fence numbers of this decision's grants among the records put: checked by the engine.
    const g = this.given;
    const fenced = g !== undefined && fresh.some((x) => x.lock?.fence !== undefined && x.lock.fence >= g[0] && x.lock.fence <= g[1]);
    return {
      step: { file: this.path, base: this.version, remove, put, grants, notify, edges, ...(fenced ? { fence: [g[0], g[1]] as const } : {}) },
      fresh,
      edges,
      ...(deferNew === undefined ? {} : { deferNew }),
    };
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
        const ss = this.sessionsOfTarget(o, me);
        if (ss !== undefined) out[o] = ss;
      }
    }
    return out;
  }

  /** The sessions an edge names with target owner `o` (targetSessions); `me`: this node. */
  private sessionsOfTarget(o: string, me: string): readonly string[] | undefined {
    const ss = this.sessionsOf.get(o);
    if (ss !== undefined) return ss;
    const node = nodeOf(o);
    const e = node === me ? this.space.epoch : this.epochOf.get(o);
    return e === undefined ? undefined : [`${node}|${e}`];
  }

  /**
   * targetKeys(owners, targetSessions(w)) for owners `w` waits on, without the sessions object:
   * each step compares every waiter's (diff), and writes only those that changed.
   */
  private keysOf(owners: Iterable<string>, me: string): string[] {
    const out: string[] = [];
    for (const o of owners) {
      const ss = this.sessionsOfTarget(o, me);
      if (ss === undefined || ss.length === 0) out.push(`${o}\n`);
      else for (const x of ss) out.push(`${o}\n${x}`);
    }
    return out;
  }

  /** Whether the owner held a lock of this mode over all of `l` before the decision (a split, a downgrade). */
  private coveredBefore(l: Lock | LockRequest, skip?: (id: string) => boolean): boolean {
    for (const r of this.records) {
      if (r.state !== 'held' || skip?.(r.id) === true) continue;
      const d = this.decode(r).req;
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
    // An undo committed with this step (its records removed): nothing of it is left to look at.
    for (const [id, u] of this.unsure) if (u.applied && !next.some((r) => u.put.includes(r.id))) this.unsure.delete(id);
    let seq = next.length === 0 ? 0 : next[next.length - 1]!.seq;
    const putById = new Map((d.step.put ?? []).map((p) => [p.id, p]));
    for (const id of removed) {
      this.origins.delete(id);
      this.edgesSent.delete(id);
      this.resend.delete(id);
      this.softUnknown.delete(id);
      this.recheck.delete(id);
      this.deferred.delete(id);
      this.doubted.delete(id);
    }
    for (const x of d.fresh) {
      const p = putById.get(x.id)!;
      next.push({ id: x.id, node: p.node ?? me, epoch: p.epoch ?? this.space.epoch, state: p.state, requestId: p.requestId ?? '', data: p.data, seq: ++seq });
      this.addSession((x.lock ?? x.waiter.req).owner, `${p.node ?? me}|${p.epoch ?? this.space.epoch}`);
      if (x.lock !== undefined) this.lockIds.set(x.lock, x.id);
      else this.waiterIds.set(x.waiter, x.id);
    }
    this.adopt(d);
    // The decided table stays the file's: the marked locks are its own, not those it replaced.
    if (this.markedLocks.size > 0) for (const [l, id] of this.markedLocks) if (removed.has(id) || id === PUT_BACK) this.markedLocks.delete(l);
    for (const x of d.fresh) if (x.lock !== undefined && this.grantOrigin.has(x.lock.origin)) this.markedLocks.set(x.lock, x.id);
    for (const e of d.edges) this.edgesSent.set(e.waiter, [targetKeys(e.hard, e.sessions), targetKeys(e.soft ?? [], e.sessions)]);
    this.edgesWritten(d, sentAt);
    this.records = next;
    this.version = version;
    this.learnFence(d.step.fence?.[1]);
    // The locks the steps replaced stay in lockIds (found by no lock of the table) until they could
    // be half of it: then swept in one pass, amortized O(1) a step, with no work for the others.
    if (this.lockIds.size > 2 * next.length + 64) {
      const ids = new Set(next.map((r) => r.id));
      for (const [l, id] of this.lockIds) if (!ids.has(id)) this.lockIds.delete(l);
    }
  }

  /**
   * The step's edges are in the engine: no longer to be written whole, except a waiter put back
   * after an engine loss while the grace period may still run (judged by when the step was sent:
   * one committed just before the period's end may be answered after it).
   */
  private edgesWritten(d: Diffed, sentAt: number): void {
    const graceOver = sentAt >= this.reassertedUntil;
    // 'fifo': a request that queued with edges. The model then settles every other file at once
    // (LockTable.settleOthers): a waiter elsewhere that queues behind an owner that now reaches its
    // own (through the new edges) may pass it, which drops its soft edge and may grant it. The
    // files this node has cached with POSIX waiters get their wake-up passes, after this step:
    // among them every file where this owner waits (a waiter's requests come from its node), the
    // others as their cached records show them (each pass reads them again if they are stale).
    // So too when a waiter's new blockers closed a cycle through another file's queueing.
    if (this.space.config.policy === 'fifo' && (d.softCycle === true || d.fresh.some((x) => x.waiter?.req.kind === 'posix' && d.edges.some((e) => e.waiter === x.id)))) this.space.settleOthers(this.path);
    for (const e of d.edges) {
      // Checked and found on no cycle, or waiting on nobody: nothing put off is left to check.
      if (e.check === true || e.hard.length === 0) {
        this.deferred.delete(e.waiter);
        this.doubted.delete(e.waiter);
      }
      this.softUnknown.delete(e.waiter);
      if (this.recheck.has(e.waiter) && !graceOver) continue;
      this.resend.delete(e.waiter);
      this.recheck.delete(e.waiter);
    }
    if (d.deferNew !== undefined) {
      this.deferred.add(d.deferNew);
      this.doubted.add(d.deferNew);
    }
  }

  /** The table's waiter of record `id`, if it waits. */
  private waiterOf(id: string): Waiter | undefined {
    for (const [w, x] of this.waiterIds) if (x === id) return w;
    return undefined;
  }

  /** This node's records the step put: their origins and grants' bytes (carried), and its new waiter's request. */
  private adopt(d: Diffed): void {
    const me = this.space.config.node;
    for (const x of d.fresh) {
      if (x.waiter !== undefined) {
        this.origins.set(x.id, x.waiter.req.origin);
        if (x.waiter.requestId !== undefined) this.space.queued(x.waiter.requestId, x.id);
      } else if (nodeOf(x.lock.owner) === me) {
        this.origins.set(x.id, x.lock.origin);
        if (x.marks === undefined) {
          // A lock with a marked origin (what the decision left of a marked lock, or one an undo
          // put back): its record is marked as build would mark it, so a notice looks (hooks).
          const known = this.markedLocks.size === 0 ? undefined : this.grantOrigin.get(x.lock.origin);
          if (known !== undefined) this.grantOf.set(x.id, known.map(({ g, start, end }) => ({ rid: g.rid, start, end })));
          continue;
        }
        // The decided table stays the file's until the next build: its lock says them too.
        this.grantOf.set(x.id, x.marks);
        const marks = this.grantMarks(x.marks, undefined, x.lock);
        if (marks !== undefined) this.grantOrigin.set(x.lock.origin, marks);
      }
    }
  }

  /**
   * The bytes of grants (grantOf) a POSIX or OFD lock `l` of this node's decided table holds that
   * its origin does not say: a lock this decision made by merging one that held them (markedLocks:
   * the table's as the decision began) with a lock of a request (the merged lock has the request's
   * origin, not the grant's: grantOrigin). Not the bytes this decision told its owner it holds
   * (`told`: toldBytes). Undefined if none.
   */
  private carried(l: Lock, told: (owner: string) => readonly Bytes[]): GrantPart[] | undefined {
    if ((l.kind !== 'posix' && l.kind !== 'ofd') || this.grantOrigin.has(l.origin) || nodeOf(l.owner) !== this.space.config.node) return undefined;
    let out: GrantPart[] | undefined;
    for (const lock of this.markedLocks.keys()) {
      if (lock.owner !== l.owner || lock.kind !== l.kind || lock.end < l.start || lock.start > l.end) continue;
      for (const m of this.grantOrigin.get(lock.origin) ?? []) {
        const start = m.start > l.start ? m.start : l.start;
        const end = m.end < l.end ? m.end : l.end;
        if (start > end) continue;
        for (const [s, e] of without(start, end, told(l.owner))) (out ??= []).push({ rid: m.g.rid, start: s, end: e });
      }
    }
    return out;
  }

  /**
   * The bytes the decision told each owner it holds, by owner: those of its request `asks` (a
   * POSIX or OFD lock request: Run.asks), and of the waiters of this node it granted (the ends).
   */
  private toldBytes(asks: LockRequest | undefined): Map<string, Bytes[]> {
    const out = new Map<string, Bytes[]>();
    const add = (r: LockRequest): void => {
      const list = out.get(r.owner);
      if (list === undefined) out.set(r.owner, [r]);
      else list.push(r);
    };
    if (asks !== undefined) add(asks);
    const granted = new Set(this.out.ends.filter((e) => e.result === 0).map((e) => e.rid));
    if (granted.size > 0) for (const [w, id] of this.waiterIds) if (granted.has(id)) add(w.req);
    return out;
  }

  // ---- what the actor runs ---------------------------------------------------------------------

  /** Request `hostId`: its result, or a Pending once it waits (committed). */
  request(hostId: number, call: Call, done: (res: unknown) => void, came?: number): Promise<unknown> {
    const read = call.op === 'checkIo' || (call.op === 'lock' && call.cmd === F_GETLK);
    const again = call.op === 'lockFile' && this.space.config.blank !== true;
    const run: Run = (t) => {
      t.requestId = hostId;
      // Asked again of this replacement worker: its lock may be granted already.
      if (again && this.grantedBefore(hostId, call)) return 0;
      // An unlock owed or in flight when another node granted its owner's waiter: the grant
      // came after it, and keeps its bytes (Run.spared).
      const spare = this.spareOf(run, call);
      if (spare !== undefined) return t.unlockSparing(call as Extract<Call, { op: 'lock' | 'flush' | 'unlockAll' | 'unlockFile' }>, spare);
      // Its answer, when the request waits and a later step of this table ends it, leaves only
      // once that step committed, like every other answer. A close's release notices are told
      // while it runs (afterRelease, before any hook is awaited): not for the bytes of grants of
      // the waiters it ends (untold).
      this.closing = call.op === 'closeHandle' || call.op === 'release' ? call : undefined;
      try {
        return t.run(call, (v) => {
          this.out.answers.push(() => done(v));
          const rid = this.space.ridOf(hostId);
          if (rid !== undefined) this.out.ends.push({ rid, result: typeof v === 'object' && v !== null ? (v as PosixReply).result : (v as number) });
        });
      } finally {
        this.closing = undefined;
      }
    };
    if (call.op === 'lock' && call.req.kind === 'posix' && !read) run.owner = call.req.owner;
    if (call.op === 'lock' && !read && call.lockType !== F_UNLCK && (call.req.kind === 'posix' || call.req.kind === 'ofd')) run.asks = call.req;
    if ((call.op === 'lock' || call.op === 'lockFile') && !read && cancellable(call)) run.undone = true;
    // A flush (POSIX: all of its owner's locks go, its waiters keep waiting) and an unlockAll are
    // such releases too.
    if ((call.op === 'lock' && !read && call.lockType === F_UNLCK) || call.op === 'unlockFile' || call.op === 'flush' || call.op === 'unlockAll') run.unlock = true;
    if (call.op === 'checkIo') run.free = (res) => res === 0;
    else if (read) run.free = (res) => (res as PosixReply).lockType === F_UNLCK;
    // What can grant: a lock request, or a read that found the bytes free.
    run.park = read || cancellable(call);
    run.ahead = () => this.space.parkedAhead(this.path, hostId);
    if (!cancellable(call) && !read) run.hostId = hostId;
    return this.decide(
      run,
      () => 'failed',
      !cancellable(call) && !read,
      came,
    );
  }

  /**
   * Whether Windows lock request `hostId` holds its lock already: a held record of this node's
   * session made for that very request (LockOrigin.request), with its handle, range and mode. Only
   * a request a worker that died left unanswered, asked again of its replacement (same id: the
   * caller's ids never repeat), can find one: its step committed just before the worker died, or
   * its waiter was granted by another node's step (the inbox event for the waiter's record, which
   * the replacement does not know, ends nothing) or by its predecessor's own. Run again, it would
   * be refused (33) or wait behind its own handle's lock for ever: a Windows exclusive lock
   * conflicts with its own handle's. Answered granted with no step: the lock it asked for is
   * held, once. A record without the request's id (from a node that does not keep it) is not
   * matched, and the request runs as before. POSIX locks merge with their owner's others, and a
   * POSIX request run again grants what its owner holds already: they are not looked at.
   */
  private grantedBefore(hostId: number, call: Call): boolean {
    if (call.op !== 'lockFile') return false;
    const me = this.space.config.node;
    const want = call.req;
    for (const r of this.records) {
      if (r.node !== me || r.epoch !== this.space.epoch || r.state !== 'held' || this.undoing(r.id)) continue;
      const { req } = this.decode(r);
      if (req.origin.request === hostId && req.kind === 'windows' && req.owner === want.owner && req.start === want.start && req.end === want.end && req.write === want.write) return true;
    }
    return false;
  }

  /**
   * Ends this node's waiter `rid` for `reason` (its answer leaves once committed); false if it no
   * longer waits. `early`: called when a step of it gets no reply or is refused by the node's
   * fence (Run.early): the caller may then be answered at once (cancelAnswered).
   */
  cancel(rid: string, reason: CancelReason, early?: () => void): Promise<unknown> {
    const run: Run = (t) => {
      const w = this.waiterOf(rid);
      return w === undefined ? false : t.cancel({ waiter: w, path: this.path }, reason);
    };
    if (early !== undefined) run.early = early;
    // Answered already, before its turn (cancelAnswered): its removal is owed, and the step that
    // comes by itself for it carries it (retryOwed); no step of its own to wait for here.
    if (this.cancelledWaiter(rid)) return Promise.resolve(false);
    return this.decide(run, () => false, true);
  }

  /**
   * The cancel of this node's waiter `rid` is answered now, before any step removing it committed
   * (its node fenced, or the engine not answering): the removal is owed, to run first in the
   * file's next step that reaches the engine (the record is left out of the table, as an undo's:
   * Unsure, applied), and a step comes by itself for it (retryOwed). If another node's step
   * granted the waiter meanwhile (learned from the inbox, a stale reply's changes or the whole
   * record set), what that grant gave is undone there instead (noticeApplied, grantedAway), and
   * never told. False, and nothing changes, unless the cache has the waiter still waiting, or if
   * its owner has another waiter on this file (the old rule is kept then).
   * `now`: called outside the file's mailbox, before the cancel's turn (the engine not answering,
   * SharedFiles.answerCancels): false also while the file's put-back runs, while a decision in
   * hand has no step out yet (it may still grant the waiter), or while the step out to the engine
   * changes the waiter's record (its reply decides it).
   */
  cancelAnswered(rid: string, now = false): boolean {
    const me = this.space.config.node;
    if (now && (this.reasserting !== undefined || (this.inDecision > 0 && (this.sending === undefined || touches(this.sending, rid))))) return false;
    const r = this.records.find((x) => x.id === rid);
    if (r === undefined || r.node !== me || r.state !== 'waiting' || r.epoch !== this.space.epoch || this.unsureWaiter(rid)) return false;
    const { req } = this.decode(r);
    // Another waiter of its owner on this file (in the cache, or one of a step of unknown fate): a
    // grant of the cancelled waiter could not be told apart from the other's in the engine's
    // records, nor undone (the Unsure limitation). The old rule then: the cancel is answered when
    // its removal commits or the session is counted lost, and a grant that comes first stands and
    // is told.
    if (this.records.some((x) => x.id !== rid && x.state === 'waiting' && this.decode(x).req.owner === req.owner)) return false;
    for (const u of this.unsure.values()) if (u.waiter !== undefined && u.waiter.req.owner === req.owner) return false;
    const before = this.ownerLocks(req.owner);
    const origins = new Map<string, LockOrigin>();
    for (const x of before) {
      const o = this.origins.get(x.id);
      if (o !== undefined) origins.set(x.id, o);
    }
    // Their grants' bytes: a grant of the waiter elsewhere, merged with one of them, is undone by
    // putting that one back (grantedAway), with its marks.
    const marks = this.grantOf.size === 0 ? undefined : this.marksOf(before);
    this.unsure.set(`cancel:${rid}`, { put: [rid], removed: [], origins, putHeld: [], sendBy: Number.POSITIVE_INFINITY, tangled: false, applied: true, waiter: { req, before }, cancel: true, ...(marks === undefined ? {} : { marks }) });
    // Left out of the table now, as giveUp does after the early answer in the cancel's own
    // decision; a decision in hand builds it again when it next decides (rebuild).
    if (now && this.inDecision === 0) this.build();
    else if (now) this.rebuild = true;
    this.space.retryOwed(this.path);
    return true;
  }

  /** Whether `rid` is a waiter whose cancel was answered before its removal committed (cancelAnswered). */
  private cancelledWaiter(rid: string): boolean {
    return this.unsure.has(`cancel:${rid}`);
  }

  /** Removes the records of dead sessions (the reaper's work) and wakes who they blocked. */
  reap(sessions: readonly { node: string; epoch: number }[]): Promise<unknown> {
    for (const s of sessions) this.dead.add(`${s.node}|${s.epoch}`);
    this.refresh();
    return this.reread();
  }


  /**
   * stop(): every waiter of this node ends ('stop'), every lock of this node goes: those the table
   * holds as the stop runs, after the releases owed that ran first in its decision (a split's
   * parts have no record yet). Not lockIds: it keeps locks committed steps replaced until they are
   * swept (committed), and those the owed releases just removed; the core's removal of a lock the
   * table does not hold is no no-op (it mends indexes that may have been swept since, and throws).
   */
  stopAll(): Promise<unknown> {
    return this.decide(
      (t) => {
        // Every waiter of this node ends before any pass (as the core's stop, cancelAll): a pass
        // after one ends could let another in whose approval is answered later, and it would be
        // granted then though the stop ended it. With no pass, each cancel decides at once.
        const wakeups = t.wakeups;
        t.wakeups = false;
        try {
          for (const [w, id] of [...this.waiterIds]) if (this.space.waits.has(id)) void t.cancel({ waiter: w, path: this.path }, 'stop');
        } finally {
          t.wakeups = wakeups;
        }
        const mine = (t.fileLocks(this.path)?.granted() ?? []).filter((l) => nodeOf(l.owner) === this.space.config.node);
        return t.dropRecords(this.path, mine, []);
      },
      () => undefined,
      false,
    );
  }
}
