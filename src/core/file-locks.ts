/**
 * The lock state of one file: granted locks of every family, and the queue of waiting requests.
 *
 * Model (SEMANTICS-WINDOWS.md, SEMANTICS-POSIX.md):
 * - Two lock spaces. The byte-range space holds Windows records and POSIX/OFD locks; they all see
 *   each other (shared ~ read, exclusive ~ write). The flock space holds whole-file flock locks and
 *   sees nothing else.
 * - An owner is an opaque key: 'w' + (handle, processId, key) for Windows, 'p'/'o'/'f' + lockOwner
 *   for posix/ofd/flock. Owners of different families never compare equal.
 * - Conflict: overlap, and a write/exclusive on either side, and another owner; except that a Windows
 *   exclusive request conflicts with its own owner's locks too ([MS-FSA] 2.1.4.10).
 * - Windows records are never merged; a POSIX/OFD owner's locks are canonical (same-type ranges of
 *   one owner never overlap or touch), kept so by `applyPosix`, the fs/locks.c posix_lock_inode step.
 *
 * Indexes, all O(log n + k) per query: granted byte-range locks split into `readers` and `writers`
 * (granted writers never overlap each other, so a reader's conflict query visits only real
 * conflicts); each POSIX/OFD owner's own locks (for merge, trim, split); Windows records by exact
 * (owner, offset, length) for unlock and by handle for close.
 *
 * Waiters form one queue in arrival order. `grantable()` is the wake-up pass: it yields, in arrival
 * order, each waiter that fits at that moment; the caller grants or fails it before asking for the
 * next one (that is where an asynchronous approval hook runs). Whenever a grant frees bytes (a POSIX
 * downgrade), the pass starts over, so no waiter stays queued while it could be granted.
 */
import { IntervalTree, type Ranged } from './interval-tree.js';
import { OFFSET_MAX } from './codes.js';
import { SweptMap } from './swept-map.js';

export type LockKind = 'windows' | 'posix' | 'ofd' | 'flock';
export type Policy = 'default' | 'fifo';

/** Who took a lock and through what: kept for replies, listings, release and hook events. */
export interface LockOrigin {
  /** The lockOwner, or the Windows handle, as the caller gave it. */
  readonly holder: bigint | number | string;
  /** lockPid; processId for Windows; -1 for OFD. */
  readonly pid: number;
  /** Windows: the handle key; POSIX kinds: the fileHandle key ('' when none was given). */
  readonly handleKey: string;
  /** Windows: the processId key. */
  readonly processKey: string;
  /** The request as the hooks see it (API.md LockFileEvent / LockEvent). */
  readonly event: Readonly<Record<string, unknown>>;
  /**
   * A shared lock space's Windows lock: the caller's id of the request that asked for it (unique
   * in its node's session: one coordinator's ids never repeat). Kept in its record, and by every
   * node that grants its waiter, so that the request asked again of a replacement worker finds
   * the lock it got already (SharedFile.request).
   */
  readonly request?: number;
}

export class Lock implements Ranged {
  constructor(
    readonly start: bigint,
    /** Inclusive; a zero-length Windows lock has end = start - 1. */
    readonly end: bigint,
    readonly seq: number,
    readonly kind: LockKind,
    readonly write: boolean,
    readonly owner: string,
    readonly origin: LockOrigin,
    /** The fence number of the grant that made it (TableOptions.fence), when one was given. */
    readonly fence?: number,
  ) {}
}

/** A lock request after decoding: what the table needs to decide it. */
export interface LockRequest {
  readonly kind: LockKind;
  readonly write: boolean;
  readonly owner: string;
  readonly start: bigint;
  readonly end: bigint;
  readonly origin: LockOrigin;
  /** A granted request: the fence number it is granted under (the locks it makes keep it). */
  readonly fence?: number;
}

export class Waiter {
  /** Owners this waiter waits for, as last told to the wait-for graph ('posix' waiters only). */
  blockers: ReadonlySet<string> = EMPTY;
  /** Under 'fifo': owners of the earlier waiters it queues behind ('posix' ones only). */
  queuedBehind: ReadonlySet<string> = EMPTY;
  /**
   * Under 'fifo': owners whose waiters it no longer queues behind, because they wait (through
   * files on other workers) for its own owner (LockTable.letPass).
   */
  passes: Set<string> | null = null;
  /** The id of the request that queued it, as the table's caller named it (LockTable.requestId). */
  requestId: number | undefined = undefined;
  constructor(
    readonly seq: number,
    readonly req: LockRequest,
    readonly since: number,
    /** Called once, when the request ends (granted, failed, cancelled, timed out). */
    readonly settle: (result: number) => void,
  ) {}
}

const EMPTY: ReadonlySet<string> = new Set();
const NO_WAITERS: ReadonlySet<Waiter> = new Set();
const NO_LOCKS: readonly Lock[] = [];

// Emptiness tests of the SweptMaps, shared by every file rather than made per file.
const emptyTree = (t: IntervalTree<Lock>): boolean => t.size === 0;
const emptyList = (l: Lock[]): boolean => l.length === 0;
const emptySet = (s: Set<Lock>): boolean => s.size === 0;
const noFlock = (f: { lock: Lock | null }): boolean => f.lock === null;
const zeroCount = (c: { n: number }): boolean => c.n === 0;

interface Span {
  readonly start: bigint;
  readonly end: bigint;
}

function overlaps(a: Span, b: Span): boolean {
  return a.start <= b.end && b.start <= a.end;
}

/** SEMANTICS §4 (Windows) and §3 (POSIX) in one predicate; `held` may be a waiter under 'fifo'. */
export function conflicts(req: LockRequest, held: LockRequest | Lock): boolean {
  if ((req.kind === 'flock') !== (held.kind === 'flock')) return false;
  if (!req.write && !held.write) return false;
  if (held.owner !== req.owner) return overlaps(req, held);
  return req.kind === 'windows' && req.write && overlaps(req, held);
}

let seqCounter = 0;
/** Grant and arrival order, shared by all files so listings can interleave them. */
export function nextSeq(): number {
  return ++seqCounter;
}

export class FileLocks {
  private readonly readers = new IntervalTree<Lock>();
  private readonly writers = new IntervalTree<Lock>();
  // Keyed state that empties and refills as locks come and go lives in SweptMaps (swept-map.ts);
  // the Windows and flock ones are made when the file first sees such a lock.
  /** POSIX/OFD owner -> that owner's canonical locks. */
  private readonly owned = new SweptMap<string, IntervalTree<Lock>>(emptyTree);
  /**
   * How many times the table recomputed the edges of this file's waiters (LockTable.refreshEdges):
   * a shared lock space tells from it whether a decision settled the file, under 'fifo' the one
   * moment the model recomputes a waiter's soft edges.
   */
  edgeRefreshes = 0;
  /**
   * The table's wake-up pass waits for an approval hook's answer (LockTable.settle): another
   * pass now, from another file's call, would grant past the waiter being approved. It asks for
   * one more pass (settleAgain) that runs when this one ends.
   */
  approving = 0;
  settleAgain = false;
  /** Calls that may grant, put off until no approval of this file's pass is pending (LockTable.run). */
  afterApprovals: (() => void)[] | null = null;
  /** Windows owner|start|length -> records in grant order. */
  private exact: SweptMap<string, Lock[]> | null = null;
  /** Windows handle key or POSIX fileHandle key -> locks taken through it. */
  private readonly byHandle = new SweptMap<string, Set<Lock>>(emptySet);
  /** flock owner -> its whole-file lock (null once released). */
  private flocks: SweptMap<string, { lock: Lock | null }> | null = null;
  private flockCount = 0;
  /** Zero-length Windows locks held (see setConflict). */
  private zeroLengthWin = 0;
  private flockWriter: Lock | null = null;
  /** Windows owner -> number of granted records. */
  private winOwners: SweptMap<string, { n: number }> | null = null;
  /** The queue in arrival order; made on the first waiter (most files never have one). */
  private queue: Set<Waiter> | null = null;

  get waiters(): ReadonlySet<Waiter> {
    return this.queue ?? NO_WAITERS;
  }
  /** Bumped whenever granted bytes are freed; a running pass starts over when it moves. */
  private freed = 0;

  constructor(
    readonly path: string,
    readonly policy: Policy,
  ) {}

  get lockCount(): number {
    return this.readers.size + this.writers.size + this.flockCount;
  }

  isIdle(): boolean {
    return this.lockCount === 0 && this.waiters.size === 0 && this.pins === 0;
  }

  /**
   * Steps waiting on an approval hook that will still act on this file: while any does, the file
   * is not idle, so a sweep cannot replace it with a fresh one and lose what the step grants.
   */
  pins = 0;

  // ---- conflicts --------------------------------------------------------------------------

  /** The granted lock with the lowest start that conflicts with `req`, if any. */
  conflict(req: LockRequest): Lock | undefined {
    if (req.kind === 'flock') return this.flockConflict(req);
    const pred = (l: Lock): boolean => conflicts(req, l);
    const w = this.writers.findOverlap(req.start, req.end, pred);
    if (!req.write) return w;
    const r = this.readers.findOverlap(req.start, req.end, pred);
    if (w === undefined) return r;
    if (r === undefined) return w;
    return r.start < w.start ? r : w;
  }

  /**
   * The conflict F_GETLK reports: the lowest start; at the same start a write lock first, then the
   * lowest owner key, then the lowest end (a flock request: the exclusive holder, else the shared
   * one with the lowest owner key). Chosen on the locks alone, never on the order they were
   * granted or restored in: every node of a shared lock space, whatever order it built its table
   * in, reports the same lock as one table would.
   */
  reported(req: LockRequest): Lock | undefined {
    if (req.kind === 'flock') return this.flockConflict(req, true);
    const w = lowestConflict(this.writers, req);
    if (!req.write) return w;
    const r = lowestConflict(this.readers, req);
    if (w === undefined) return r;
    if (r === undefined) return w;
    return r.start < w.start ? r : w;
  }

  /**
   * The conflict that stops `req` from being set: as `conflict`, but over the lock the request
   * would leave after merging with its owner's same-type neighbours. Only a zero-length Windows
   * lock at the junction of two touching ranges can block the merge and neither part, so the
   * wider query runs only while the file holds one.
   */
  setConflict(req: LockRequest): Lock | undefined {
    const span = this.mergedSpan(req);
    return span === req ? this.conflict(req) : this.conflict({ ...req, start: span.start, end: span.end });
  }

  private mergedSpan(req: LockRequest): Span {
    if (this.zeroLengthWin === 0 || (req.kind !== 'posix' && req.kind !== 'ofd')) return req;
    const tree = this.owned.get(req.owner);
    if (tree === undefined || tree.size === 0) return req;
    let start = req.start;
    let end = req.end;
    tree.findOverlap(req.start - 1n, req.end + 1n, (l) => {
      if (l.write === req.write) {
        if (l.start < start) start = l.start;
        if (l.end > end) end = l.end;
      }
      return false;
    });
    return start === req.start && end === req.end ? req : { start, end };
  }

  /** With `lowest`, of several shared holders the one with the lowest owner key (F_GETLK); else the first found. */
  private flockConflict(req: LockRequest, lowest = false): Lock | undefined {
    const w = this.flockWriter;
    if (w !== null && w.owner !== req.owner) return w;
    if (!req.write) return undefined;
    let best: Lock | undefined;
    for (const f of this.flocks?.values() ?? []) {
      const l = f.lock!;
      if (l.owner === req.owner || (best !== undefined && l.owner >= best.owner)) continue;
      if (!lowest) return l;
      best = l;
    }
    return best;
  }

  /** Owners of every granted 'posix' lock that blocks `req`: its edges in the wait-for graph. */
  posixBlockers(req: LockRequest): Set<string> {
    const out = new Set<string>();
    const span = this.mergedSpan(req);
    const visit = (l: Lock): boolean => {
      if (l.kind === 'posix' && conflicts(req, l) && overlaps(span, l)) out.add(l.owner);
      return false;
    };
    this.writers.findOverlap(span.start, span.end, visit);
    if (req.write) this.readers.findOverlap(span.start, span.end, visit);
    return out;
  }

  /** Under 'fifo': 'posix' owners of the conflicting waiters ahead of `self` that hold it back. */
  fifoBlockers(req: LockRequest, self: Waiter | undefined, waitsFor: (waiterOwner: string, owner: string) => boolean): Set<string> {
    const out = new Set<string>();
    if (this.policy !== 'fifo' || this.holdsAny(req.owner)) return out;
    for (const w of this.waiters) {
      if (w === self) break;
      if (w.req.kind === 'posix' && conflicts(req, w.req) && !waitsFor(w.req.owner, req.owner) && !(self?.passes?.has(w.req.owner) ?? false)) out.add(w.req.owner);
    }
    return out;
  }

  /** True when the owner holds a granted lock here (the 'fifo' exemption). */
  holdsAny(owner: string): boolean {
    return (
      (this.owned.get(owner)?.size ?? 0) > 0 || (this.flocks?.get(owner)?.lock ?? null) !== null || (this.winOwners?.get(owner)?.n ?? 0) > 0
    );
  }

  /**
   * Under 'fifo': the earliest waiter queued before `before` (or any, for a new request) that
   * `req` must queue behind. Owners holding a lock on the file are exempt, and so is a request
   * whose owner that waiter already waits for (`waitsFor`): queueing would create a deadlock.
   */
  fifoBlocker(req: LockRequest, before?: Waiter, waitsFor?: (waiterOwner: string, owner: string) => boolean): Waiter | undefined {
    if (this.policy !== 'fifo' || this.holdsAny(req.owner)) return undefined;
    for (const w of this.waiters) {
      if (w === before) return undefined;
      if (conflicts(req, w.req) && !(waitsFor?.(w.req.owner, req.owner) ?? false) && !(before?.passes?.has(w.req.owner) ?? false)) return w;
    }
    return undefined;
  }

  /**
   * Mandatory-locking check of a read or write by the Windows owner `owner` over [start, end]
   * (SEMANTICS-WINDOWS.md §5): only granted Windows locks count.
   */
  ioConflict(owner: string, start: bigint, end: bigint, write: boolean): boolean {
    const hit = (l: Lock): boolean => l.kind === 'windows' && (l.owner !== owner || (write && !l.write));
    if (this.writers.findOverlap(start, end, hit) !== undefined) return true;
    return write && this.readers.findOverlap(start, end, hit) !== undefined;
  }

  // ---- granting and removing ---------------------------------------------------------------

  private insert(l: Lock): void {
    (l.write ? this.writers : this.readers).insert(l);
    if (l.kind === 'windows') {
      const k = exactKey(l.owner, l.start, l.end);
      const exact = (this.exact ??= new SweptMap(emptyList));
      const list = exact.get(k);
      if (list === undefined) exact.set(k, [l]);
      else list.push(l);
      const owners = (this.winOwners ??= new SweptMap(zeroCount));
      const c = owners.get(l.owner);
      if (c === undefined) owners.set(l.owner, { n: 1 });
      else c.n++;
      if (l.end < l.start) this.zeroLengthWin++;
    } else {
      let tree = this.owned.get(l.owner);
      if (tree === undefined) {
        tree = new IntervalTree<Lock>();
        this.owned.set(l.owner, tree);
      }
      tree.insert(l);
    }
    const hk = l.origin.handleKey;
    if (hk !== '') {
      const set = this.byHandle.get(hk);
      if (set === undefined) this.byHandle.set(hk, new Set([l]));
      else set.add(l);
    }
  }

  private delete(l: Lock): void {
    (l.write ? this.writers : this.readers).remove(l);
    if (l.kind === 'windows') {
      const k = exactKey(l.owner, l.start, l.end);
      const list = this.exact!.get(k)!;
      list.splice(list.indexOf(l), 1);
      if (list.length === 0) this.exact!.emptiedOne();
      const c = this.winOwners!.get(l.owner)!;
      if (--c.n === 0) this.winOwners!.emptiedOne();
      if (l.end < l.start) this.zeroLengthWin--;
    } else {
      const tree = this.owned.get(l.owner)!;
      tree.remove(l);
      if (tree.size === 0) this.owned.emptiedOne();
    }
    const hk = l.origin.handleKey;
    if (hk !== '') {
      const set = this.byHandle.get(hk)!;
      set.delete(l);
      if (set.size === 0) this.byHandle.emptiedOne();
    }
    this.freed++;
  }

  /** Grants `req`, which the caller has found free of conflicts. */
  grant(req: LockRequest): void {
    if (req.kind === 'windows') this.insert(lockOf(req, req.start, req.end, req.write));
    else if (req.kind === 'flock') this.setFlock(req);
    else this.applyPosix(req.owner, req.start, req.end, req.write ? 'write' : 'read', req);
  }

  /**
   * fs/locks.c posix_lock_inode, the owner-local half: merge same-type locks that overlap or touch
   * the range, trim or split other-type ones, then insert the new lock (none for 'unlock').
   */
  applyPosix(owner: string, start: bigint, end: bigint, type: 'read' | 'write' | 'unlock', req?: LockRequest): void {
    const tree = this.owned.get(owner);
    const touched = tree === undefined || tree.size === 0 ? NO_LOCKS : tree.overlapping(start - 1n, end + 1n);
    const write = type === 'write';
    let lo = start;
    let hi = end;
    // Made only when needed: most requests split nothing.
    let pieces: Lock[] | undefined;
    for (const l of touched) {
      if (type !== 'unlock' && l.write === write) {
        if (l.start < lo) lo = l.start;
        if (l.end > hi) hi = l.end;
        this.delete(l);
        continue;
      }
      if (l.end < start || l.start > end) continue; // touches only; other type stays
      this.delete(l);
      if (l.start < start) (pieces ??= []).push(new Lock(l.start, start - 1n, nextSeq(), l.kind, l.write, owner, l.origin, l.fence));
      if (l.end > end) (pieces ??= []).push(new Lock(end + 1n, l.end, nextSeq(), l.kind, l.write, owner, l.origin, l.fence));
    }
    if (pieces !== undefined) for (const p of pieces) this.insert(p);
    if (req !== undefined && type !== 'unlock') this.insert(lockOf(req, lo, hi, write));
  }

  private setFlock(req: LockRequest): void {
    // An owner with two queued requests (say SH then EX) ends with the last one granted.
    const old = this.flocks?.get(req.owner)?.lock;
    if (old != null) this.removeFlock(old);
    this.putFlock(lockOf(req, 0n, OFFSET_MAX, req.write));
  }

  private putFlock(l: Lock): void {
    const flocks = (this.flocks ??= new SweptMap(noFlock));
    const slot = flocks.get(l.owner);
    if (slot === undefined) flocks.set(l.owner, { lock: l });
    else slot.lock = l;
    this.flockCount++;
    if (l.write) this.flockWriter = l;
    const hk = l.origin.handleKey;
    if (hk !== '') {
      const set = this.byHandle.get(hk);
      if (set === undefined) this.byHandle.set(hk, new Set([l]));
      else set.add(l);
    }
  }

  /**
   * Puts back a lock exactly as it was granted (a shared lock space rebuilding a file from its
   * records, src/actors/shared-file.ts): no merge, no check. The records were canonical when written.
   */
  restoreLock(l: Lock): void {
    if (l.kind === 'flock') this.putFlock(l);
    else this.insert(l);
  }

  /** Removes one granted lock of any kind (a dead node's lock, removed by the reaper). */
  removeLock(l: Lock): void {
    if (l.kind === 'flock') this.removeFlock(l);
    else this.delete(l);
  }

  /** The owner's flock lock, if any. */
  flockOf(owner: string): Lock | undefined {
    return this.flocks?.get(owner)?.lock ?? undefined;
  }

  /** Removes a flock lock. */
  removeFlock(l: Lock): void {
    this.flocks!.get(l.owner)!.lock = null;
    this.flocks!.emptiedOne();
    this.flockCount--;
    if (this.flockWriter === l) this.flockWriter = null;
    const hk = l.origin.handleKey;
    if (hk !== '') {
      const set = this.byHandle.get(hk);
      if (set !== undefined) {
        set.delete(l);
        if (set.size === 0) this.byHandle.emptiedOne();
      }
    }
    this.freed++;
  }

  /**
   * Windows unlock of exactly (start, end) by `owner`: an exclusive record first, else a shared
   * one ([MS-FSA] 2.1.5.9), never one of `skip`. Returns the removed record, or undefined
   * (ERROR_NOT_LOCKED).
   */
  unlockExact(owner: string, start: bigint, end: bigint, skip?: ReadonlySet<Lock>): Lock | undefined {
    const all = this.exact?.get(exactKey(owner, start, end));
    const list = skip === undefined || all === undefined ? all : all.filter((r) => !skip.has(r));
    if (list === undefined || list.length === 0) return undefined;
    const l = list.find((r) => r.write) ?? list[0]!;
    this.delete(l);
    return l;
  }

  /** Removes every granted lock matching `pred` among those taken through `handleKey`. */
  removeByHandle(handleKey: string, pred: (l: Lock) => boolean): Lock[] {
    const set = this.byHandle.get(handleKey);
    if (set === undefined || set.size === 0) return [];
    const out = [...set].filter(pred).sort(bySeq);
    for (const l of out) {
      if (l.kind === 'flock') this.removeFlock(l);
      else this.delete(l);
    }
    return out;
  }

  /** Removes every granted lock of a POSIX/OFD owner (flush). */
  removeOwned(owner: string): Lock[] {
    const tree = this.owned.get(owner);
    if (tree === undefined || tree.size === 0) return [];
    const out = [...tree];
    for (const l of out) this.delete(l);
    return out;
  }

  /** The owner's own lock with the lowest start overlapping [start, end] (OFD F_GETLK with F_UNLCK). */
  ownLock(owner: string, start: bigint, end: bigint): Lock | undefined {
    return this.owned.get(owner)?.findOverlap(start, end, () => true);
  }

  /** The highest fence among the owner's POSIX/OFD locks overlapping [start, end] (0: none, or none kept). */
  ownedFence(owner: string, start: bigint, end: bigint): number {
    let fence = 0;
    const tree = this.owned.get(owner);
    if (tree !== undefined && tree.size > 0) for (const l of tree.overlapping(start, end)) fence = Math.max(fence, l.fence ?? 0);
    return fence;
  }

  // ---- waiters ------------------------------------------------------------------------------

  enqueue(req: LockRequest, now: number, settle: (result: number) => void): Waiter {
    const w = new Waiter(nextSeq(), req, now, settle);
    (this.queue ??= new Set()).add(w);
    return w;
  }

  /** Removes a waiter from the queue; false if it already ended. */
  dequeue(w: Waiter): boolean {
    return this.queue?.delete(w) ?? false;
  }

  /** The freed-bytes counter, so callers can tell whether a step freed anything. */
  get freedCount(): number {
    return this.freed;
  }

  /**
   * The wake-up pass (SEMANTICS-WINDOWS.md §9, SEMANTICS-POSIX.md §7): yields, in arrival order,
   * each waiter that fits now. The consumer must dequeue it (grant or fail) before calling next().
   */
  *grantable(waitsFor?: (waiterOwner: string, owner: string) => boolean): Generator<Waiter, void, void> {
    for (;;) {
      const mark = this.freed;
      let again = false;
      for (const w of this.waiters) {
        if (this.setConflict(w.req) !== undefined) continue;
        if (this.fifoBlocker(w.req, w, waitsFor) !== undefined) continue;
        yield w;
        // Under 'fifo' a grant can also exempt an owner whose waiters sat behind others.
        if (this.freed !== mark || this.policy === 'fifo') {
          again = true;
          break;
        }
      }
      if (!again) return;
    }
  }

  // ---- listing ------------------------------------------------------------------------------

  /** Granted locks of both spaces, by start then grant order. */
  granted(): Lock[] {
    const all = [...this.readers, ...this.writers];
    for (const f of this.flocks?.values() ?? []) all.push(f.lock!);
    return all.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.seq - b.seq));
  }

  /** Locks of one POSIX/OFD owner in start order (tests check canonical form on this). */
  ownedBy(owner: string): Lock[] {
    const tree = this.owned.get(owner);
    return tree === undefined ? [] : [...tree];
  }
}

/** Of `tree`'s locks that conflict with `req`, the first at the lowest start by owner key, then end (FileLocks.reported). */
function lowestConflict(tree: IntervalTree<Lock>, req: LockRequest): Lock | undefined {
  let best: Lock | undefined;
  // In (start, seq) order: the walk stops at the first lock past the best one's start.
  tree.findOverlap(req.start, req.end, (l) => {
    if (best !== undefined && l.start > best.start) return true;
    if (conflicts(req, l) && (best === undefined || l.owner < best.owner || (l.owner === best.owner && l.end < best.end))) best = l;
    return false;
  });
  return best;
}

function exactKey(owner: string, start: bigint, end: bigint): string {
  return `${owner}|${start}|${end}`;
}

function bySeq(a: Lock, b: Lock): number {
  return a.seq - b.seq;
}

function lockOf(req: LockRequest, start: bigint, end: bigint, write: boolean): Lock {
  return new Lock(start, end, nextSeq(), req.kind, write, req.owner, req.origin, req.fence);
}
