/**
 * LockTable: every file's lock state, deciding the public calls of API.md synchronously.
 *
 * This is the semantic core: no threads, no timers, no I/O. A file actor (src/actors/) hosts one
 * LockTable for the files it owns; property tests drive it directly.
 *
 * Results come back in one of three ways:
 * - a value at once (granted, failed, unlocked, F_GETLK answered);
 * - a Pending, when the request queued; its `done` callback later receives the final result, and
 *   `cancel` ends it early (signal, timeout, stop);
 * - a Promise of either, only when an approval hook answers asynchronously. The caller must then
 *   keep every other request for that file back until it settles: an actor's mailbox does that.
 *
 * Each step that can free bytes (unlock, close, flush, release, downgrade) or shorten the queue
 * ends with `settle`: the wake-up pass of FileLocks.grantable, then the deadlock re-check of the
 * waiters whose blockers changed. After every public call returns (or its Promise settles):
 * - no two conflicting locks are granted;
 * - no waiter fits the granted locks (and, under 'fifo', the waiters ahead of it) while queued;
 * - the wait-for graph holds exactly the current edges of every queued 'posix' waiter, and has no cycle.
 */
import { EAGAIN, EDEADLK, EINTR, EINVAL, ERROR_LOCK_VIOLATION, ERROR_NOT_LOCKED, ERROR_OPERATION_ABORTED, ERROR_SUCCESS, F_GETLK, F_SETLK, F_UNLCK } from './codes.js';
import { type WaitForGraph, LocalWaitForGraph } from './deadlock.js';
import { SweptMap } from './swept-map.js';
import { FileLocks, Lock, type LockRequest, type Policy, type Waiter } from './file-locks.js';
import { listLocks, posixUnlockEvent, posixView, winUnlockEvent, type LockEntry } from './views.js';
import {
  checkTableRequest,
  parseCheckIo,
  parseCloseHandle,
  parseFlush,
  parseLock,
  parseLockFile,
  parseRelease,
  parseUnlockFile,
  replyOf,
  type Call,
  type PosixReply,
  type ReplyBase,
} from './requests.js';

export type { PosixReply } from './requests.js';
export type { LockEntry } from './views.js';

export type Family = 'windows' | 'posix';

/** What the hooks of API.md become inside the table. */
export interface TableHooks {
  /**
   * Asked just before a grant: 0 grants; any other number is the request's result and nothing is
   * granted. May answer with a Promise (see the class comment).
   */
  approve?: (family: Family, event: Readonly<Record<string, unknown>>) => number | Promise<number>;
  /**
   * Told after a lock is released: each Windows record, each POSIX unlock, flush or release.
   * `lock`: the lock released, for a notice of one (a Windows record; a lock a POSIX flush or
   * release removed), not for a POSIX unlock's notice (its own call's).
   */
  released?: (family: Family, event: Readonly<Record<string, unknown>>, lock?: Lock) => void;
}

export interface TableOptions {
  /** Wake-up policy (SEMANTICS-WINDOWS.md §9): 'default' is the operating systems'; 'fifo' is fair. */
  policy?: Policy;
  /** The wait-for graph; tables on several threads share one through an adapter. */
  graph?: WaitForGraph;
  hooks?: TableHooks;
  /** Clock for wait times in listings (ms). */
  now?: () => number;
  /**
   * The fence number of a grant decided now (hook events' `fence`; the granted lock keeps it:
   * Lock.fence). Default, while a hook is given: the table's own counter (nextFence). null: none
   * (a shared lock space, where a number no engine checks could go back across nodes).
   */
  fence?: (() => number) | null;
}

const TABLE_OPTIONS: ReadonlySet<string> = new Set(['policy', 'graph', 'hooks', 'now', 'fence']);

/** Why a waiter is ended from outside; the result depends on the family (API.md). */
export type CancelReason = 'abort' | 'timeout' | 'stop' | 'deadlock';

const CANCEL_RESULT: Record<CancelReason, [windows: number, posix: number]> = {
  abort: [ERROR_OPERATION_ABORTED, -EINTR],
  timeout: [ERROR_LOCK_VIOLATION, -EAGAIN],
  stop: [ERROR_OPERATION_ABORTED, -EINTR],
  // A cycle through waiters on several worker threads, found by the coordinator's graph.
  deadlock: [ERROR_LOCK_VIOLATION, -EDEADLK],
};

/** The result a request of the family gets when it is ended for `reason` (API.md). */
export function cancelResult(reason: CancelReason, windows: boolean): number {
  return CANCEL_RESULT[reason][windows ? 0 : 1];
}

type Maybe<T> = T | Promise<T>;

/** A lock a release leaves to its owner (LockTable.unlockSparing): its range, and its mode. */
export type Spared = Pick<LockRequest, 'start' | 'end' | 'write'>;

/** The parts of [start, end] (inclusive) outside every range of `cut`, in order. */
export function without(start: bigint, end: bigint, cut: readonly { readonly start: bigint; readonly end: bigint }[]): [bigint, bigint][] {
  let parts: [bigint, bigint][] = [[start, end]];
  for (const c of cut) {
    const next: [bigint, bigint][] = [];
    for (const [s, e] of parts) {
      if (c.end < s || c.start > e) {
        next.push([s, e]);
        continue;
      }
      if (c.start > s) next.push([s, c.start - 1n]);
      if (c.end < e) next.push([c.end + 1n, e]);
    }
    parts = next;
  }
  return parts;
}

/** `req` granted under `fence`: its locks keep the number (release events read it). Its origin stays the same object. */
function fenced(req: LockRequest, fence: number | undefined): LockRequest {
  return fence === undefined ? req : { ...req, fence };
}

/** What the approval hook is shown: the request's event, with the fence its grant would hold. */
function eventOf(req: LockRequest, fence: number | undefined): Readonly<Record<string, unknown>> {
  return fence === undefined ? req.origin.event : { ...req.origin.event, fence };
}

function then<T, U>(x: Maybe<T>, f: (v: T) => Maybe<U>): Maybe<U> {
  return x instanceof Promise ? x.then(f) : f(x);
}

/** A step of a file's history that `replay` re-applies (see src/wire/journal-entry.ts). */
export type ReplayEntry = { j: 'call'; call: Call } | { j: 'locks'; locks: readonly Lock[] };

/** A waiting request put back by restoreFile. */
export interface RestoredWaiter {
  readonly req: LockRequest;
  readonly since: number;
  readonly settle: (result: number) => void;
  readonly requestId: number | undefined;
}

/** A pending request: the waiter and the file it waits on. */
export interface Pending {
  readonly waiter: Waiter;
  readonly path: string;
}

export class LockTable {
  /** Files with state; an idle one stays until the next sweep (swept-map.ts says why). */
  private readonly files = new SweptMap<string, FileLocks>((f) => f.isIdle(), 1024);
  private readonly policy: Policy;
  private readonly graph: WaitForGraph;
  private hooks: TableHooks;
  private readonly now: () => number;
  /** A grant's fence, while anything will read it (TableOptions.fence); the last one given. */
  private readonly fenceOf: (() => number) | undefined;
  private lastFence = 0;
  /**
   * The caller's id for the request it is about to run: stamped on the waiter that request
   * creates (Waiter.requestId), so later edge changes name the right request even while other requests
   * run (the actor host's request ids).
   */
  requestId: number | undefined = undefined;
  /**
   * False while the wake-up pass is held: a release frees its bytes, but its waiters stay queued,
   * with their edges refreshed, until a later pass (dropRecords). A shared lock space holds it for
   * a decision the engine refused in a grace period (no new grant until it ends).
   */
  wakeups = true;

  /**
   * 'fifo': how many times a waiter's new blockers closed a cycle through another waiter's
   * queueing (refreshEdges); the settle that saw it settles the other files. A shared lock space's
   * file (one file per table) reads it to do the same across its node (SharedFile).
   */
  softCycles = 0;
  /** A refresh counted one (softCycles) that no settle has acted on yet. */
  private softCycled = false;

  constructor(opts: TableOptions = {}) {
    for (const k of Object.keys(opts)) if (!TABLE_OPTIONS.has(k)) throw new TypeError(`unknown option '${k}' of LockTable (known: ${[...TABLE_OPTIONS].join(', ')})`);
    this.policy = opts.policy ?? 'default';
    if (this.policy !== 'default' && this.policy !== 'fifo') throw new TypeError(`policy must be 'default' or 'fifo'`);
    this.graph = opts.graph ?? new LocalWaitForGraph();
    this.hooks = opts.hooks ?? {};
    this.now = opts.now ?? Date.now;
    const h = this.hooks;
    this.fenceOf = opts.fence === null ? undefined : (opts.fence ?? (h.approve !== undefined || h.released !== undefined ? () => this.nextFence() : undefined));
  }

  /**
   * The wall clock in µs, or one past the last fence when that is not later: it grows with every
   * grant of this table, and past the fences of a table this one replaces (a dead worker's),
   * unless the clock was set back meanwhile. Below 2^53 until the year 2255.
   */
  private nextFence(): number {
    const now = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    this.lastFence = now > this.lastFence ? now : this.lastFence + 1;
    return this.lastFence;
  }

  /** Files with live state (locks or waiters). */
  get fileCount(): number {
    return this.files.liveCount();
  }

  private file(path: string): FileLocks {
    let f = this.files.get(path);
    if (f === undefined) {
      f = new FileLocks(path, this.policy);
      this.files.set(path, f);
    }
    return f;
  }

  private retire(f: FileLocks): void {
    if (f.isIdle()) this.files.emptiedOne();
  }

  // ---- the public calls: parse (TypeError or an immediate result), then run -----------------

  /**
   * LockFileEx (SEMANTICS-WINDOWS.md §4, §7, §8): a Win32 code, or a Pending whose `done` gets the
   * code when the wait ends.
   */
  lockFile(input: unknown, done: (code: number) => void = noop): Maybe<number | Pending> {
    checkTableRequest('lockFile', input);
    const c = parseLockFile(input);
    return typeof c === 'number' ? c : (this.run(c, done as (r: unknown) => void) as Maybe<number | Pending>);
  }

  /**
   * UnlockFileEx: removes the one record of this owner with exactly this range (an exclusive one
   * first), or with byteOffset = length = -1 every lock of (handle, processId) (IRP_MN_UNLOCK_ALL).
   */
  unlockFile(input: unknown): Maybe<number> {
    checkTableRequest('unlockFile', input);
    const c = parseUnlockFile(input);
    return typeof c === 'number' ? c : (this.run(c) as Maybe<number>);
  }

  /**
   * Close of a handle (IRP_MJ_CLEANUP): releases every lock taken through it, ends its waiters
   * with ERROR_NOT_LOCKED, then wakes whoever now fits.
   */
  closeHandle(input: unknown): Maybe<void> {
    checkTableRequest('closeHandle', input);
    return this.run(parseCloseHandle(input)) as Maybe<void>;
  }

  /**
   * The mandatory-locking check before a read (write = false) or write: 0 or ERROR_LOCK_VIOLATION.
   * Zero-length I/O is always allowed; only granted Windows locks count.
   */
  checkIo(input: unknown): number {
    checkTableRequest('checkIo', input);
    const c = parseCheckIo(input);
    return typeof c === 'number' ? c : (this.run(c) as number);
  }

  /**
   * fcntl F_GETLK / F_SETLK / F_SETLKW, OFD and flock (SEMANTICS-POSIX.md §1-§9): a reply, or a
   * Pending (a conflicting F_SETLKW) whose `done` gets the reply when the wait ends.
   */
  lock(input: unknown, done: (reply: PosixReply) => void = noop): Maybe<PosixReply | Pending> {
    checkTableRequest('lock', input);
    const c = parseLock(input);
    return 'result' in c ? c : (this.run(c, done as (r: unknown) => void) as Maybe<PosixReply | Pending>);
  }

  /**
   * close(2) of any descriptor by the process: drops every granted classic POSIX lock of
   * `lockOwner` on `path` (SEMANTICS-POSIX.md §10); its waiting requests keep waiting.
   */
  flush(input: unknown): Maybe<void> {
    checkTableRequest('flush', input);
    return this.run(parseFlush(input)) as Maybe<void>;
  }

  /**
   * Last close of an open file description: drops every lock taken through `fileHandle` and, with
   * `lockOwner`, that owner's flock lock. Waiters through the handle end with -EINTR.
   */
  release(input: unknown): Maybe<void> {
    checkTableRequest('release', input);
    return this.run(parseRelease(input)) as Maybe<void>;
  }

  /**
   * A release that leaves its owner's locks over the ranges `spare` as they are: the release came
   * first, and the owner was granted those bytes after it (a shared lock space: another node's
   * step granted its waiter while the release's own step had not applied yet). A POSIX, OFD or
   * flock unlock (F_SETLK with F_UNLCK) tells its notice as any unlock; a flock unlock with
   * anything spared removes nothing (its lock is the whole file). A flush removes what its owner's
   * locks have outside them, with a notice for each part it removes. A Windows unlockAll keeps,
   * for each of `spare` (the handle's granted locks), the newest of the handle's locks with its
   * range and mode; a Windows unlockFile removes a record of its range other than those
   * (ERROR_NOT_LOCKED if none is left).
   */
  unlockSparing(c: Extract<Call, { op: 'lock' | 'flush' | 'unlockAll' | 'unlockFile' }>, spare: readonly Spared[]): Maybe<PosixReply | number | void> {
    if (c.op === 'lock') {
      if (c.lockType !== F_UNLCK || c.cmd === F_GETLK) throw new TypeError(`unlockSparing: not an unlock (lockType ${c.lockType}, cmd ${c.cmd})`);
      return this.unlock(c.path, c.req, c.base, spare);
    }
    const f = this.files.get(c.path);
    if (c.op === 'flush') {
      if (f === undefined) return;
      // The parts it removes, each told as a lock of its own (afterRelease).
      const gone = f.ownedBy(c.owner).flatMap((l) => without(l.start, l.end, spare).map(([start, end]) => new Lock(start, end, l.seq, l.kind, l.write, l.owner, l.origin, l.fence)));
      for (const l of gone) f.applyPosix(c.owner, l.start, l.end, 'unlock');
      return this.afterRelease(f, gone);
    }
    if (f === undefined) return c.op === 'unlockFile' ? ERROR_NOT_LOCKED : ERROR_SUCCESS;
    const mine = f.granted().filter((l) => l.kind === 'windows' && (c.op === 'unlockFile' ? l.owner === c.owner : l.origin.handleKey === c.handleKey && l.origin.processKey === c.processKey));
    const keep = new Set<Lock>();
    for (const s of spare) {
      const newest = mine.filter((l) => !keep.has(l) && l.start === s.start && l.end === s.end && l.write === s.write).sort((x, y) => y.seq - x.seq)[0];
      if (newest !== undefined) keep.add(newest);
    }
    if (c.op === 'unlockFile') {
      const l = f.unlockExact(c.owner, c.start, c.end, keep);
      return l === undefined ? ERROR_NOT_LOCKED : then(this.afterRelease(f, [l]), () => ERROR_SUCCESS);
    }
    const gone = f.removeByHandle(c.handleKey, (l) => l.kind === 'windows' && l.origin.processKey === c.processKey && !keep.has(l));
    return then(this.afterRelease(f, gone), () => ERROR_SUCCESS);
  }

  /**
   * Runs a parsed call. The result is the call's: a Win32 code, a PosixReply, nothing (close,
   * flush, release), or a Pending whose `done` receives the final code or reply.
   */
  run(c: Call, done: (result: unknown) => void = noop): Maybe<number | PosixReply | Pending | void> {
    // A call that may grant waits while the file's wake-up pass waits for an approval (a pass
    // another file's call ran, outside this file's turn): decided now, it could be granted
    // against the lock being approved.
    if ((c.op === 'lockFile' || (c.op === 'lock' && c.cmd !== F_GETLK && c.lockType !== F_UNLCK)) && (this.files.get(c.path)?.approving ?? 0) > 0) {
      const f = this.files.get(c.path)!;
      return this.pinnedUntil(f, new Promise<void>((r) => (f.afterApprovals ??= []).push(r)), () => this.run(c, done));
    }
    switch (c.op) {
      case 'lockFile':
        return this.lockFileCall(c.path, c.req, c.failImmediately, done);
      case 'unlockFile': {
        const f = this.files.get(c.path);
        const l = f?.unlockExact(c.owner, c.start, c.end);
        if (f === undefined || l === undefined) return ERROR_NOT_LOCKED;
        return then(this.afterRelease(f, [l]), () => ERROR_SUCCESS);
      }
      case 'unlockAll': {
        const f = this.files.get(c.path);
        if (f === undefined) return ERROR_SUCCESS;
        const gone = f.removeByHandle(c.handleKey, (l) => l.kind === 'windows' && l.origin.processKey === c.processKey);
        return then(this.afterRelease(f, gone), () => ERROR_SUCCESS);
      }
      case 'closeHandle': {
        const f = this.files.get(c.path);
        if (f === undefined) return;
        for (const w of f.waiters) {
          const code = closedWith(c, w.req);
          if (code !== undefined) this.endWaiter(f, w, code);
        }
        return this.afterRelease(f, f.removeByHandle(c.handleKey, (l) => l.kind === 'windows'));
      }
      case 'checkIo': {
        const f = this.files.get(c.path);
        return f?.ioConflict(c.owner, c.start, c.end, c.write) ? ERROR_LOCK_VIOLATION : ERROR_SUCCESS;
      }
      case 'lock':
        return this.lockCall(c.path, c.cmd, c.lockType, c.req, c.base, done);
      case 'flush': {
        const f = this.files.get(c.path);
        if (f === undefined) return;
        return this.afterRelease(f, f.removeOwned(c.owner));
      }
      case 'release': {
        const f = this.files.get(c.path);
        if (f === undefined) return;
        for (const w of f.waiters) {
          const code = closedWith(c, w.req);
          if (code !== undefined) this.endWaiter(f, w, code);
        }
        const gone = f.removeByHandle(c.handleKey, (l) => l.kind !== 'windows');
        const fl = c.flockOwner === null ? undefined : f.flockOf(c.flockOwner);
        if (fl !== undefined) {
          f.removeFlock(fl);
          gone.push(fl);
        }
        return this.afterRelease(f, gone);
      }
    }
  }

  private lockFileCall(path: string, req: LockRequest, failImmediately: boolean, done: (code: number) => void): Maybe<number | Pending> {
    const f = this.file(path);
    if (f.conflict(req) !== undefined || f.fifoBlocker(req, undefined, this.waitsFor) !== undefined) {
      if (failImmediately) {
        this.retire(f);
        return ERROR_LOCK_VIOLATION;
      }
      const w = f.enqueue(req, this.now(), done);
      w.requestId = this.requestId;
      return { waiter: w, path };
    }
    return this.approveAndGrant(f, req, 'windows');
  }

  private lockCall(path: string, cmd: number, lockType: number, req: LockRequest, base: ReplyBase, done: (reply: PosixReply) => void): Maybe<PosixReply | Pending> {
    if (cmd === F_GETLK) return this.getlk(path, req, lockType, base);
    if (lockType === F_UNLCK) return this.unlock(path, req, base);
    const f = this.file(path);
    if (req.kind === 'flock') {
      const held = f.flockOf(req.owner);
      if (held !== undefined) {
        if (held.write === req.write) return replyOf(base, 0);
        // flock(2) converts as Linux does in one step under the file's lock [fs/locks.c
        // flock_lock_inode]: the old lock goes (not atomic: it is not kept on a refusal), the new
        // one is decided, and only then do the waiters the removal woke try again. So a downgrade
        // never fails, and a converter that fits now is granted before earlier waiters.
        f.removeFlock(held);
        this.notifyReleased([held]);
        if (cmd === F_SETLK || (f.setConflict(req) === undefined && f.fifoBlocker(req, undefined, this.waitsFor) === undefined)) {
          // Granted or refused now, never queued: the waiters' pass follows the answer.
          const decided = this.setlk(f, req, cmd, base, done) as Maybe<PosixReply>;
          const after = (r: PosixReply): Maybe<PosixReply> => then(this.settle(f), () => {
            this.retire(f);
            return r;
          });
          return decided instanceof Promise ? this.pinnedUntil(f, decided, after) : after(decided);
        }
        // It will wait: the waiters ahead of it try first, as the kernel's woken ones run before
        // a request queued behind them could be granted.
        const settled = this.settle(f);
        if (settled === undefined) return this.setlk(f, req, cmd, base, done);
        // Waiters' approvals are away and the file may be left idle: pinned until the set goes on.
        return this.pinnedUntil(f, settled, () => this.setlk(f, req, cmd, base, done));
      }
    }
    return this.setlk(f, req, cmd, base, done);
  }

  private getlk(path: string, req: LockRequest, lockType: number, base: ReplyBase): PosixReply {
    const f = this.files.get(path);
    let l: Lock | undefined;
    if (lockType === F_UNLCK) {
      // Linux 6.x: F_OFD_GETLK with F_UNLCK reports the caller's own lock over the range.
      if (req.kind !== 'ofd') return replyOf(base, -EINVAL);
      l = f?.ownLock(req.owner, req.start, req.end);
    } else {
      l = f?.reported(req);
    }
    if (l === undefined) return { ...replyOf(base, 0), lockType: F_UNLCK };
    return { result: 0, ...posixView(l) };
  }

  private unlock(path: string, req: LockRequest, base: ReplyBase, spare: readonly Spared[] = []): Maybe<PosixReply> {
    const f = this.files.get(path);
    // The notice's fence: the highest of the locks the unlock releases (0: it releases none).
    const released = this.hooks.released;
    const fencing = released !== undefined && this.fenceOf !== undefined;
    if (f === undefined) {
      released?.('posix', fencing ? { ...req.origin.event, fence: 0 } : req.origin.event);
      return replyOf(base, 0);
    }
    let fence = 0;
    if (req.kind === 'flock') {
      const held = f.flockOf(req.owner);
      if (held !== undefined && spare.length === 0) {
        fence = held.fence ?? 0;
        f.removeFlock(held);
      }
    } else {
      if (fencing) fence = f.ownedFence(req.owner, req.start, req.end);
      for (const [start, end] of without(req.start, req.end, spare)) f.applyPosix(req.owner, start, end, 'unlock');
    }
    released?.('posix', fencing ? { ...req.origin.event, fence } : req.origin.event);
    const settled = this.settle(f);
    if (settled === undefined) {
      // Settled synchronously (no hook waits): no continuation to allocate.
      this.retire(f);
      return replyOf(base, 0);
    }
    return settled.then(() => {
      this.retire(f);
      return replyOf(base, 0);
    });
  }

  private setlk(f: FileLocks, req: LockRequest, cmd: number, base: ReplyBase, done: (reply: PosixReply) => void): Maybe<PosixReply | Pending> {
    if (f.setConflict(req) === undefined && f.fifoBlocker(req, undefined, this.waitsFor) === undefined) {
      const r = this.approveAndGrant(f, req, 'posix');
      return typeof r === 'number' ? replyOf(base, r) : r.then((code) => replyOf(base, code));
    }
    if (cmd === F_SETLK) {
      this.retire(f);
      return replyOf(base, -EAGAIN);
    }
    const posix = req.kind === 'posix';
    const blockers = posix ? f.posixBlockers(req) : new Set<string>();
    if (blockers.size > 0 && this.graph.closesCycle(req.owner, blockers, true)) {
      this.retire(f);
      return replyOf(base, -EDEADLK);
    }
    const w = f.enqueue(req, this.now(), (r) => done(replyOf(base, r)));
    w.requestId = this.requestId;
    const pending: Pending = { waiter: w, path: f.path };
    const behind = posix ? f.fifoBlockers(req, w, this.waitsFor) : new Set<string>();
    if (blockers.size === 0 && behind.size === 0) return pending;
    w.blockers = blockers;
    w.queuedBehind = behind;
    this.graph.setEdges(w, req.owner, blockers, behind);
    // Under 'fifo' a new edge can turn a waiter held back elsewhere into a deadlock: let every
    // queue look again (waitsFor now lets such a waiter through).
    return this.policy === 'fifo' ? then(this.settleOthers(f), () => pending) : pending;
  }

  private settleOthers(except: FileLocks): Maybe<void> {
    const queues = [...this.files.values()].filter((g) => g !== except && g.waiters.size > 0);
    const next = (i: number): Maybe<void> => (i === queues.length ? undefined : then(this.settle(queues[i]!), () => next(i + 1)));
    return next(0);
  }

  // ---- waiting requests ---------------------------------------------------------------------

  /**
   * Ends a waiting request from outside (signal, timeout, stop) with its family's code. Returns
   * false when it had already ended. Nothing else changes, then the queue settles.
   */
  cancel(p: Pending, reason: CancelReason): Maybe<boolean> {
    const f = this.files.get(p.path);
    if (f === undefined || !f.waiters.has(p.waiter)) return false;
    const [win, posix] = CANCEL_RESULT[reason];
    this.endWaiter(f, p.waiter, p.waiter.req.kind === 'windows' ? win : posix);
    return then(this.settle(f), () => {
      this.retire(f);
      return true;
    });
  }

  /**
   * 'fifo' across workers: `owner` waits, through files this table cannot see, for the owner of
   * waiting request `p`, so `p` stops queueing behind `owner`'s waiters (what `waitsFor` does for
   * cycles within the table); the file settles again, which may grant it.
   */
  letPass(p: Pending, owner: string): Maybe<void> {
    const f = this.files.get(p.path);
    if (f === undefined || !f.waiters.has(p.waiter)) return undefined;
    (p.waiter.passes ??= new Set()).add(owner);
    return then(this.settle(f), () => this.retire(f));
  }

  /** Ends every waiter of every file (stop()). */
  cancelAll(reason: CancelReason): void {
    const [win, posix] = CANCEL_RESULT[reason];
    for (const f of [...this.files.values()]) {
      for (const w of f.waiters) this.endWaiter(f, w, w.req.kind === 'windows' ? win : posix);
      this.retire(f);
    }
  }

  // ---- rebuilding after a worker died ---------------------------------------------------------

  /**
   * Re-applies committed steps of one file, in their order, without hooks, checks or waiters:
   * granted lock requests are granted, releases release. Used on a fresh table only.
   */
  replay(path: string, entries: readonly ReplayEntry[]): void {
    const f = this.file(path);
    for (const e of entries) {
      if (e.j === 'locks') {
        for (const l of e.locks) f.grant({ kind: l.kind, write: l.write, owner: l.owner, start: l.start, end: l.end, origin: l.origin, fence: l.fence });
        continue;
      }
      const c = e.call;
      if (c.op === 'lockFile' || (c.op === 'lock' && c.lockType !== F_UNLCK)) {
        if (c.req.kind === 'flock') {
          const held = f.flockOf(c.req.owner);
          if (held !== undefined) f.removeFlock(held);
        }
        f.grant(fenced(c.req, this.fenceOf?.()));
      } else if (c.op === 'lock') {
        if (c.req.kind === 'flock') {
          const held = f.flockOf(c.req.owner);
          if (held !== undefined) f.removeFlock(held);
        } else {
          f.applyPosix(c.req.owner, c.req.start, c.req.end, 'unlock');
        }
      } else {
        const hooks = this.hooks;
        this.hooks = {};
        try {
          this.run(c);
        } finally {
          this.hooks = hooks;
        }
      }
    }
    this.retire(f);
  }

  // ---- a shared lock space (src/actors/shared-file.ts) -------------------------------------------

  /**
   * Rebuilds one file of a fresh table from the records of a shared lock space: the granted locks
   * as they were granted, then the waiters in queue order with their wait-for edges. Decides
   * nothing: every record was written by a committed step, which left the file settled.
   */
  restoreFile(path: string, locks: readonly Lock[], waiters: readonly RestoredWaiter[]): Waiter[] {
    const f = this.file(path);
    for (const l of locks) f.restoreLock(l);
    const out: Waiter[] = [];
    for (const x of waiters) {
      const w = f.enqueue(x.req, x.since, x.settle);
      w.requestId = x.requestId;
      out.push(w);
    }
    for (const w of out) {
      if (w.req.kind !== 'posix') continue;
      w.blockers = f.posixBlockers(w.req);
      w.queuedBehind = f.fifoBlockers(w.req, w, this.waitsFor);
      if (w.blockers.size > 0 || w.queuedBehind.size > 0) this.graph.setEdges(w, w.req.owner, w.blockers, w.queuedBehind);
    }
    return out;
  }

  /**
   * Removes granted locks and waiting requests that no live node owns any more (a node whose
   * session expired): its waiters end unanswered (nobody is left to answer), no hook is told, and
   * whoever now fits is woken.
   */
  dropRecords(path: string, locks: readonly Lock[], waiters: readonly Waiter[]): Maybe<void> {
    const f = this.files.get(path);
    if (f === undefined) return;
    for (const w of waiters) if (f.dequeue(w)) this.dropEdges(w);
    for (const l of locks) f.removeLock(l);
    return this.afterRelease(f, []);
  }

  /** The file's state, idle or not (a shared lock space reads it back into records after each step). */
  fileLocks(path: string): FileLocks | undefined {
    return this.files.get(path);
  }

  /** The granted locks of one file, for journal compaction. */
  grantedLocks(path: string): Lock[] {
    return this.files.get(path)?.granted() ?? [];
  }

  // ---- listing ------------------------------------------------------------------------------

  /** Granted and waiting locks, of one file or all. */
  locks(path?: string): LockEntry[] {
    const files = path === undefined ? [...this.files.values()] : [this.files.get(path)].filter((f) => f !== undefined);
    return listLocks(files, this.now());
  }

  /** Counts for stats(): files, granted locks, waiters. */
  counts(): { files: number; locks: number; waiters: number } {
    let locks = 0;
    let waiters = 0;
    let files = 0;
    for (const f of this.files.values()) {
      files++;
      locks += f.lockCount;
      waiters += f.waiters.size;
    }
    return { files: files, locks, waiters };
  }

  /** Paths of the files that hold something (locks, waiters or handles). */
  *activePaths(): IterableIterator<string> {
    for (const f of this.files.values()) if (!f.isIdle()) yield f.path;
  }

  /** The file's state, for tests that check internal invariants. */
  fileState(path: string): FileLocks | undefined {
    const f = this.files.get(path);
    return f === undefined || f.isIdle() ? undefined : f;
  }

  // ---- the shared steps ---------------------------------------------------------------------

  /** Runs the approval hook on a request that fits, then grants it. Resolves to 0 or the veto. */
  private approveAndGrant(f: FileLocks, req: LockRequest, family: Family): Maybe<number> {
    const approve = this.hooks.approve;
    const fence = this.fenceOf?.();
    if (approve === undefined) return this.grantApproved(f, req, 0, fence);
    const verdict = approve(family, eventOf(req, fence));
    if (!(verdict instanceof Promise)) return this.grantApproved(f, req, verdict, fence);
    // The file may hold nothing yet: keep it out of the sweeps until the grant (or veto) lands.
    return this.pinnedUntil(f, verdict, (code) => this.grantApproved(f, req, code, fence));
  }

  /**
   * `next(await step)`, with `f` pinned meanwhile (FileLocks.pins): a sweep cannot replace the
   * state that `next` will act on, even if the file is idle in between.
   */
  private pinnedUntil<T, U>(f: FileLocks, step: Promise<T>, next: (v: T) => Maybe<U>): Promise<U> {
    f.pins++;
    return step.then(
      (v) => {
        f.pins--;
        return next(v);
      },
      (e: unknown) => {
        f.pins--;
        this.retire(f);
        throw e;
      },
    );
  }

  /** approveAndGrant once the verdict is known. */
  private grantApproved(f: FileLocks, req: LockRequest, code: number, fence: number | undefined): Maybe<number> {
    if (code !== 0) {
      this.retire(f);
      return code;
    }
    const mark = f.freedCount;
    f.grant(fenced(req, fence));
    // A grant adds a lock, which can give queued 'posix' waiters new blockers; only a
    // downgrade (or a 'fifo' waiter failed by the re-check) can let anyone else in.
    const failed = f.waiters.size === 0 ? 0 : this.refreshEdges(f);
    // Under 'fifo' a grant can exempt its owner's own queued requests: settle then too.
    if (f.freedCount === mark && this.policy !== 'fifo') return 0;
    if (f.freedCount === mark && failed === 0 && f.waiters.size === 0) return 0;
    return then(this.settle(f), () => 0);
  }

  /** Notifies each released lock, then wakes whoever now fits. */
  private afterRelease(f: FileLocks, gone: Lock[]): Maybe<void> {
    this.notifyReleased(gone);
    return then(this.settle(f), () => this.retire(f));
  }

  /** The release hook, for each lock gone. */
  private notifyReleased(gone: readonly Lock[]): void {
    const released = this.hooks.released;
    if (released === undefined) return;
    for (const l of gone) {
      if (l.kind === 'windows') released('windows', winUnlockEvent(l), l);
      else released('posix', posixUnlockEvent(l), l);
    }
  }

  /**
   * The wake-up pass, then the deadlock re-check; repeated while a re-check shortens a 'fifo'
   * queue. Grants go through the approval hook; a veto ends that waiter with the hook's code.
   */
  private settle(f: FileLocks): Maybe<void> {
    // Nobody waits: no one to let in and no edge to refresh (the common unlock, without the pass).
    if (f.waiters.size === 0) return undefined;
    if (!this.wakeups) {
      this.refreshEdges(f);
      return undefined;
    }
    // A pass of this file waits for an approval: one more pass after it (FileLocks.approving).
    if (f.approving > 0) {
      f.settleAgain = true;
      return undefined;
    }
    f.settleAgain = false;
    const pass = f.grantable(this.waitsFor);
    const step = (): Maybe<void> => {
      for (;;) {
        const next = pass.next();
        if (next.done === true) {
          if (f.settleAgain) return this.settle(f);
          const failed = this.refreshEdges(f);
          if (failed > 0 && this.policy === 'fifo') return this.settle(f);
          if (!this.softCycled) return undefined;
          // A waiter here now waits for an owner that queues behind it elsewhere ('fifo'): a cycle
          // 'fifo' made. The other queues look again (waitsFor now lets such a waiter through).
          this.softCycled = false;
          return this.settleOthers(f);
        }
        const w = next.value;
        const fence = this.fenceOf?.();
        const verdict = this.hooks.approve === undefined ? 0 : this.hooks.approve(w.req.kind === 'windows' ? 'windows' : 'posix', eventOf(w.req, fence));
        if (verdict instanceof Promise) {
          f.approving++;
          return verdict.then(
            (code) => {
              this.approved(f);
              this.grantWaiter(f, w, code, fence);
              return step();
            },
            (e: unknown) => {
              this.approved(f);
              throw e;
            },
          );
        }
        this.grantWaiter(f, w, verdict, fence);
      }
    };
    return step();
  }

  /** An approval of `f`'s pass answered: the calls put off for it run once none is pending (their turns come after this pass goes on). */
  private approved(f: FileLocks): void {
    if (--f.approving > 0 || f.afterApprovals === null) return;
    const calls = f.afterApprovals;
    f.afterApprovals = null;
    for (const go of calls) go();
  }

  private grantWaiter(f: FileLocks, w: Waiter, code: number, fence: number | undefined): void {
    if (code !== 0) {
      this.endWaiter(f, w, code);
      return;
    }
    // A waiter ended while its approval was pending (a cancel, a stop) stays ended.
    if (!f.dequeue(w)) return;
    this.dropEdges(w);
    f.grant(fenced(w.req, fence));
    w.settle(0);
  }

  private endWaiter(f: FileLocks, w: Waiter, result: number): void {
    if (!f.dequeue(w)) return;
    this.dropEdges(w);
    w.settle(result);
  }

  private dropEdges(w: Waiter): void {
    if (w.blockers.size > 0 || w.queuedBehind.size > 0) {
      this.graph.removeEdges(w, w.req.owner);
      w.blockers = new Set();
      w.queuedBehind = new Set();
    }
  }

  /**
   * 'fifo', a shared lock space: the owners restored waiter `w` queues behind, as the step that
   * last settled its file wrote them. restoreFile computes them again, with what it knows then of
   * the cycles through other files, which may have formed or ended since that settle; the next
   * settle recomputes them (refreshEdges). Decides nothing.
   */
  restoreQueuedBehind(w: Waiter, owners: ReadonlySet<string>): void {
    if (w.req.kind !== 'posix' || sameSet(owners, w.queuedBehind)) return;
    w.queuedBehind = owners;
    if (w.blockers.size === 0 && owners.size === 0) this.graph.removeEdges(w, w.req.owner);
    else this.graph.setEdges(w, w.req.owner, w.blockers, owners);
  }

  /**
   * Recomputes the edges of every queued 'posix' waiter of `f`, all first (so no check sees
   * another waiter's outdated edges), then checks, in arrival order, each waiter that gained a
   * blocker: if its edges now close a cycle it fails with -EDEADLK, as a woken Linux waiter does
   * when it sleeps again. A check sees the edges of the waiters checked before it, not those of
   * the ones checked after it (woken Linux waiters that have not slept again wait for nobody):
   * when one change puts two of them on a cycle, the later one fails, as on Linux and as a shared
   * lock space's engine checks a step's edges (src/store/lua.ts COMMIT). Every cycle a check sees
   * is in the final graph: never a false EDEADLK. A worker's graph passes a checked waiter's
   * edges on to the caller's thread only with its check (holdEdges), so a cycle through several
   * workers closed by the later waiter fails it there too (SEMANTICS-POSIX.md §6 says what stays
   * apart: an earlier waiter's cycle through another worker is found after this pass). Returns the
   * number of waiters failed.
   */
  private refreshEdges(f: FileLocks): number {
    f.edgeRefreshes++;
    const grown: Waiter[] = [];
    for (const w of f.waiters) {
      if (w.req.kind !== 'posix') continue;
      const b = f.posixBlockers(w.req);
      const q = f.fifoBlockers(w.req, w, this.waitsFor);
      if (sameSet(b, w.blockers) && sameSet(q, w.queuedBehind)) continue;
      const grew = [...b].some((o) => !w.blockers.has(o));
      w.blockers = b;
      w.queuedBehind = q;
      if (b.size === 0 && q.size === 0) this.graph.removeEdges(w, w.req.owner);
      else if (!grew) this.graph.setEdges(w, w.req.owner, b, q);
      else {
        grown.push(w);
        // Later waiters' 'fifo' queueing looks at these edges now; their check comes below.
        if (this.graph.holdEdges !== undefined) this.graph.holdEdges(w, w.req.owner, b, q);
        else this.graph.setEdges(w, w.req.owner, b, q);
      }
    }
    let failed = 0;
    // Set again below: those held back, and those taken out for the ordered checks.
    const again = grown.length > 1 || this.graph.holdEdges !== undefined;
    if (grown.length > 1) for (const w of grown) this.graph.removeEdges(w, w.req.owner);
    for (const w of grown) {
      if (again) this.graph.setEdges(w, w.req.owner, w.blockers, w.queuedBehind);
      if (this.graph.closesCycle(w.req.owner, w.blockers, true)) {
        this.endWaiter(f, w, -EDEADLK);
        failed++;
      } else if (this.policy === 'fifo' && this.graph.closesCycle(w.req.owner, w.blockers)) {
        this.softCycles++;
        this.softCycled = true;
      }
    }
    return failed;
  }

  /**
   * The 'fifo' escape (SEMANTICS-POSIX.md §6): true when `waiterOwner` already waits, through
   * granted locks, for `owner`, so queueing `owner` behind it would close a cycle.
   */
  private readonly waitsFor = (waiterOwner: string, owner: string): boolean =>
    waiterOwner !== owner && waiterOwner[0] === 'p' && owner[0] === 'p' && this.graph.closesCycle(owner, [waiterOwner]);
}

/**
 * The code a close of a handle (closeHandle: IRP_MJ_CLEANUP) or the last close of an open file
 * description (release) ends a waiting request `req` with, or undefined if it keeps waiting:
 * ERROR_NOT_LOCKED for a Windows request through the handle, -EINTR for a POSIX, OFD or flock
 * request through the file handle.
 */
export function closedWith(c: Call, req: LockRequest): number | undefined {
  if (c.op === 'closeHandle') return req.kind === 'windows' && req.origin.handleKey === c.handleKey ? ERROR_NOT_LOCKED : undefined;
  if (c.op === 'release') return req.kind !== 'windows' && req.origin.handleKey === c.handleKey ? -EINTR : undefined;
  return undefined;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function noop(): void {}
