/**
 * LockCoordinator: the public API (API.md) on the caller's thread.
 *
 * A call is read once and parsed here (a malformed one rejects with its TypeError and never leaves
 * this thread), routed by a stable hash of its path (src/wire/route.ts) to the worker whose actor
 * owns the file, and sent in that worker's next batch (src/wire/calls.ts). The worker's answer
 * (src/wire/replies.ts) resolves the call's Promise. Waiting requests stay waiting in the worker; a
 * `signal` or `timeoutMs` sends a cancel that the actor applies if the request still waits (if the
 * grant won the race, the caller gets the grant: nothing is lost).
 *
 * Crash recovery, the caller's side: per file the journal of committed steps (journal.ts). When a
 * worker dies, a replacement starts, the journal rebuilds its files' granted locks, and every
 * request that had no answer is sent again in its original order (recover).
 */
import type {
  CheckIoRequest,
  CloseHandleRequest,
  FlushRequest,
  LockFileRequest,
  LockReply,
  LockRequest,
  ReleaseRequest,
  StartOptions,
  Stats,
  UnlockFileRequest,
} from '../types.js';
import { ENOLCK, ERROR_LOCK_VIOLATION } from '../core/codes.js';
import { describeValue } from '../core/input.js';
import { cancelResult, type CancelReason, type LockEntry } from '../core/lock-table.js';
import {
  cancellable,
  decodeLock,
  parseCheckIo,
  parseCloseHandle,
  parseFlush,
  parseLockFile,
  parseRelease,
  parseUnlockFile,
  replyOfLock,
  snapshotRequest,
  type Call,
  type DecodedLock,
} from '../core/requests.js';
import { clearTimer, setTimer } from '../long-timer.js';
import { T_OBJECT, decodeCall, encodeCall, encodeLock, fitsDoubles, type PublicCall } from '../wire/calls.js';
import { commits, flockDropEntry } from '../wire/journal-entry.js';
import type { FromHost } from '../wire/protocol.js';
import { END_FLOCK_DROP, END_IDLE, readReplies, type ReplyHandler } from '../wire/replies.js';
import { routeOf } from '../wire/route.js';
import { DeadlockService } from './deadlock-service.js';
import { hookRunner, hookScope, reentryError } from './hooks.js';
import { Journal } from './journal.js';
import { NO_WAIT, defaultWorkers, earlyReply, hostConfig, validateOptions, waitOptions, type Options, type WaitOptions } from './options.js';
import { captureResolve, captured, isWindows, send, type Request, type Sent } from './request.js';
import { AbortWatch } from './abort-watch.js';
import { Counters, merge } from '../counters.js';
import { RequestWindow } from './request-window.js';
import { Workers, type Worker } from './workers.js';
import { SharedSpace, type SessionState, type SpaceListing } from './shared-space.js';
import type { SessionEvent } from '../store/types.js';

/** How long stop() waits for a host that neither says 'stopped' nor ends (it answers at once). */
const STOP_GRACE_MS = 1000;

const STOPPED = 'LockCoordinator is stopped';

/** True only while start() constructs its coordinator (the constructor refuses any other caller). */
let viaStart = false;

export class LockCoordinator {
  private readonly workers: Workers;
  private readonly requests = new RequestWindow<Request>();
  /**
   * A shared lock space: releases answered before their step was written (a host's 'owed'),
   * until their worker says 'written'. If it dies first they are sent again to its replacement
   * with the unanswered requests, in order of arrival (recover), and not answered again. A native
   * release (a mount's flush, release or unlock, answered to the kernel by the worker itself) is
   * kept here too, by its host id (-reqId, below 0), with the wire form its 'owed' carried
   * (protocol.ts 'owed'); resent, it becomes an API call of this thread's numbering. And a
   * waiter answered its cancel, or its hook's veto, while its hook judged another node's grant of
   * it, the grant's release not written yet: resent cancelled ('judged'), the replacement releases
   * the grant.
   */
  private readonly owedReleases = new Map<number, Request>();
  /** Per file, committed steps since it was last idle: what a replacement worker replays. */
  private readonly journal = new Journal((path) => this.workerOf(path).out.object({ t: 'snapshot', path }));
  private readonly cycleAnswers = new Map<number, { worker: number; answer: (failed: boolean) => void }>();
  private readonly deadlocks: DeadlockService;
  private readonly counters = new Counters();
  private hookErrors = 0;
  private faults = 0;
  private readonly aborts = new AbortWatch<Request>((r) => this.cancel(r, 'abort'));
  /** Each live worker's reply handler (made at its first batch). */
  private readonly replies = new Map<Worker, ReplyHandler>();
  private nextId = 0;
  private nextToken = 0;
  private stopping: Promise<void> | undefined;
  /** Until start() has heard from every host: a host that ends then fails start (startFailed). */
  private starting = false;
  private startFailed: (e: Error) => void = () => {};
  /** Told of the shared space's session events (onStoreSession). */
  private sessionListener: ((e: SessionEvent, now: SessionState) => void) | undefined;
  /** The native pump session whose events the workers take (attachNative), if any. */
  private nativeSession: number | undefined;

  private constructor(
    n: number,
    opts: Options,
    /** A shared lock space (`store`): its session, and the workers' way to the engine. */
    private readonly space?: SharedSpace,
  ) {
    // Private to TypeScript only: from JavaScript, `new LockCoordinator()` would fail on a missing
    // option deep inside ("Cannot read properties of undefined"), or start workers no one waits for.
    if (!viaStart) throw new TypeError('LockCoordinator has no public constructor: use `await LockCoordinator.start(options)`');
    this.deadlocks = new DeadlockService({
      syncAll: () => this.workers.syncAll(),
      breakCycle: (id) => this.breakCycle(id),
      letPass: (id, owner) => {
        const w = this.deadlocks.workerOf(id);
        if (w !== undefined) this.workers.list[w]!.out.object({ t: 'pass', id, owner });
      },
    });
    const report = (hook: string, message: string): void => this.hookFailed(hook, message);
    this.workers = new Workers(
      n,
      hostConfig(opts),
      hookRunner(opts, report),
      {
        replies: (w, batch) => this.onReplies(w, batch),
        ended: (w, error) => this.onWorkerEnd(w, error),
        unsendable: (m, e) => this.unsendable(m, e),
        busy: () => this.requests.size > 1,
      },
      space === undefined ? undefined : () => space.link(),
    );
    if (space !== undefined) {
      space.post = (path, m) => {
        if (path !== undefined) this.workerOf(path).out.object(m);
        else for (const w of this.workers.list) w.out.object(m);
      };
      space.fault = (message) => this.fault(message);
      space.heard = (e, now) => this.sessionListener?.(e, now);
    }
  }

  /**
   * Starts the worker pool and one actor host per worker; resolves once every worker answers.
   * Rejects with a TypeError naming a malformed option (hooks: onLockFile and onUnlockFile go
   * together). With `store`, it first opens this node's session on the engine: an engine that
   * cannot be reached, or a malformed URL, rejects within requestTimeoutMs with an Error naming it.
   *
   * @example
   * const c = await LockCoordinator.start({ workers: 2, onLock: (e) => (e.path.startsWith('/ro/') ? -ENOLCK : 0) });
   */
  static async start(options?: StartOptions): Promise<LockCoordinator> {
    const opts = validateOptions(options);
    const space = opts.store === undefined ? undefined : await SharedSpace.open(opts.store, opts.policy ?? 'default');
    viaStart = true;
    let c: LockCoordinator;
    try {
      c = new LockCoordinator(opts.workers ?? defaultWorkers(), opts, space);
    } finally {
      viaStart = false;
    }
    c.workers.onPoolError((e) => {
      if (c.stopping === undefined) process.emitWarning(`locksmith: worker pool error: ${String(e)}`, 'LocksmithWorkerWarning');
    });
    c.starting = true;
    // A first stats round trip proves every host is up before start() resolves. A worker that dies
    // before that is not replaced (its replacement would most likely die the same way): start fails.
    const failed = new Promise<never>((_, reject) => (c.startFailed = reject));
    try {
      await Promise.race([Promise.all(c.workers.list.map((w) => c.workers.ask(w.index, (h) => h.stats()))), failed]);
    } catch (e) {
      await c.stop();
      throw e;
    } finally {
      c.starting = false;
    }
    return c;
  }

  private workerOf(path: string): Worker {
    return this.workers.list[routeOf(path, this.workers.size)]!;
  }

  // ---- a worker's end: recovery -------------------------------------------------------------

  private onWorkerEnd(dead: Worker, error: unknown): void {
    this.replies.delete(dead);
    if (this.starting && this.stopping === undefined) {
      const why = error instanceof Error ? error.message : String(error ?? 'it exited');
      this.startFailed(new Error(`locksmith: worker ${dead.index} could not start: ${why}`));
    }
    if (this.stopping !== undefined || this.starting) {
      this.workers.abandon(dead, STOPPED);
      return;
    }
    process.emitWarning(`locksmith: worker ${dead.index} ended (${String(error ?? 'exited')}); rebuilding its files on a new worker`, 'LocksmithWorkerWarning');
    this.recover(dead, this.workers.replace(dead));
  }

  /**
   * Rebuilds dead worker `dead`'s share on `fresh`: its native destination, its files' granted
   * locks (journal replay), then its unanswered requests, resent in arrival order.
   */
  private recover(dead: Worker, fresh: Worker): void {
    // Native waiters of the dead worker: the pump queues their events again for the new one.
    this.deadlocks.forgetWorker(dead.index);
    for (const [path, entries] of this.journal.entries()) {
      if (routeOf(path, this.workers.size) === dead.index) fresh.out.object({ t: 'restore', path, entries });
    }
    // The mount's releases answered before they were written, in the kernel's order, ahead of the
    // native destination: the requests the pump delivers again (which came after them) run after
    // them in their files' mailboxes, as on the dead worker.
    // (Resent before, their ids are this thread's, in that order, and they came before those still
    // numbered -reqId.)
    const owed = [...this.owedReleases.values()].filter((r) => r.worker === dead.index && r.native !== true);
    const nativeOwed = [...this.owedReleases.values()].filter((r) => r.worker === dead.index && r.native === true).sort((a, b) => (a.id > 0) !== (b.id > 0) ? b.id - a.id : Math.abs(a.id) - Math.abs(b.id));
    for (const r of nativeOwed) {
      // Numbered as an API call from here on: its answer, 'owed' and 'written' come by that id.
      this.owedReleases.delete(r.id);
      const id = ++this.nextId;
      const wire = r.wire!.slice();
      wire[1] = id;
      const again: Request = { ...r, id, wire, owed: false };
      this.owedReleases.set(id, again);
      send(fresh.out, again);
    }
    // The native destination last: its events, which arrive on another path than this port, find
    // every file restored (a restore spread over several batches could otherwise come later).
    if (this.nativeSession !== undefined) fresh.out.object({ t: 'native', sessionId: this.nativeSession });
    const again = owed.length === 0 ? this.requests.values() : [...this.requests.values(), ...owed].sort((a, b) => a.id - b.id);
    for (const r of again) {
      if (r.worker !== dead.index) continue;
      // Answered already, not written (owed): run again, answered once. Kept until written there.
      // A waiter cancelled or vetoed while its hook judged another node's grant of it, the grant's
      // release not written: the replacement releases the grant if it still holds it, and never runs it.
      if (this.owedReleases.get(r.id) === r) {
        r.owed = false;
        this.resend(fresh, r, r.cancelled ?? 'abort');
        continue;
      }
      if (r.queued) this.counters.waiting--;
      r.queued = false;
      // A cancelled lock request ends as its cancel would have; anything else never waits, so it
      // is sent again and runs (an unlock answered unrun would leave the lock held).
      if (r.cancelled !== undefined && cancellable(r.call)) {
        // Its grant by another node's step was being judged: answered now all the same, but kept
        // as owed, and sent on, so that the replacement releases the grant (SharedFiles.attempt).
        const releases = r.judged !== undefined && this.space !== undefined;
        if (releases) r.owed = true;
        this.finishCancelled(r, r.cancelled);
        if (!releases) continue;
        r.owed = false;
        this.resend(fresh, r, r.cancelled);
        continue;
      }
      // Its grant by another node's step was being judged: judged again there, from what its
      // owner held before (SharedFiles.rejudge).
      this.resend(fresh, r, undefined);
    }
    // A cycle being broken on the dead worker: its requests were resent, the check starts over.
    for (const [token, c] of this.cycleAnswers) {
      if (c.worker !== dead.index) continue;
      this.cycleAnswers.delete(token);
      c.answer(false);
    }
    this.journal.abandonCompactions((path) => routeOf(path, this.workers.size) === dead.index);
  }

  /**
   * Sends request `r` again, to replacement worker `fresh`. If its grant by another node's step was
   * being judged (`r.judged`), what its owner held before that grant goes first ('judged'): with
   * `cancelled`, the request was ended and the replacement releases the grant as a veto would;
   * without, the replacement judges the grant again (SharedFiles.rejudge).
   */
  private resend(fresh: Worker, r: Request, cancelled: CancelReason | undefined): void {
    if (r.judged !== undefined) {
      fresh.out.object(cancelled === undefined ? { t: 'judged', id: r.id, before: r.judged } : { t: 'judged', id: r.id, before: r.judged, cancelled });
    }
    send(fresh.out, r);
  }

  private breakCycle(id: number): Promise<boolean> {
    const worker = this.deadlocks.workerOf(id);
    if (worker === undefined) return Promise.resolve(false);
    const token = ++this.nextToken;
    return new Promise((resolve) => {
      this.cycleAnswers.set(token, { worker, answer: resolve });
      this.workers.list[worker]!.out.object({ t: 'deadlock', id, token });
    });
  }

  // ---- answers --------------------------------------------------------------------------------

  private onReplies(w: Worker, batch: unknown[]): void {
    // A replaced worker's late answers are dropped (its requests were sent again); while stopping
    // there is no replacement, and every answer that arrives is the request's real outcome.
    if (!w.alive && this.stopping === undefined) return;
    let h = this.replies.get(w);
    if (h === undefined) {
      h = this.replyHandler(w);
      this.replies.set(w, h);
    }
    try {
      readReplies(batch, h);
    } catch (e) {
      throw new Error(`locksmith: worker ${w.index}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private replyHandler(w: Worker): ReplyHandler {
    return {
      result: (id, code, waitedMs, flags) => this.onResult(id, code, waitedMs, flags),
      getlk: (id, reply) => {
        const r = this.requests.get(id);
        if (r !== undefined) this.finish(r, reply.result, reply);
      },
      queued: (id, flockDrop) => {
        const r = this.requests.get(id);
        if (r === undefined) return;
        if (flockDrop) this.recordFlockDrop(r.call as DecodedLock);
        r.queued = true;
        // Waiting again (on a replacement that found its grant gone): what a judgment kept is stale.
        r.judged = undefined;
        this.counters.waiting++;
      },
      journal: (path, wire) => this.journal.record(path, wire),
      idle: (path) => this.journal.forget(path),
      message: (m) => this.onHostMessage(m, w),
    };
  }

  /** A final result (replies.ts R_DONE, R_ENDED): journal, stats, and the caller's Promise. */
  private onResult(id: number, result: number | null, waitedMs: number, flags: number): void {
    const r = this.requests.get(id);
    if (r === undefined) {
      // A release answered before, run again on a replacement worker: kept while owed there.
      const o = this.owedReleases.get(id);
      if (o !== undefined && o.owed !== true) this.owedReleases.delete(id);
      return;
    }
    const call = r.call;
    // A shared lock space keeps its own record of every step: the store (a replacement worker loads from it).
    if (this.space === undefined) {
      if ((flags & END_FLOCK_DROP) !== 0) this.recordFlockDrop(call as DecodedLock);
      // A file left idle needs no journal at all (an unlock's entry would be dropped at once).
      if ((flags & END_IDLE) !== 0) this.journal.forget(call.path);
      else if (commits(call, result)) this.journal.record(call.path, r.wire ?? encodeLock(0, call as DecodedLock, undefined));
    }
    if (waitedMs >= 0) this.counters.waited(waitedMs);
    this.finish(r, result ?? 0, call.op === 'lock' ? replyOfLock(call, result!) : (result ?? undefined));
  }

  private recordFlockDrop(d: DecodedLock): void {
    this.journal.record(d.path, flockDropEntry(d.path, d.lockOwner));
  }

  private onHostMessage(m: FromHost, w: Worker): void {
    switch (m.t) {
      case 'edges':
        this.deadlocks.edges(m.id, m.owner, m.blockers, m.queuedBehind, w.index);
        return;
      case 'deadlocked':
        this.cycleAnswers.get(m.token)?.answer(m.failed);
        this.cycleAnswers.delete(m.token);
        return;
      case 'synced':
        this.workers.synced(m.token);
        return;
      case 'snapshot':
        this.journal.snapshot(m.path, m.locks);
        return;
      case 'hookError':
        this.hookFailed(m.hook, m.message);
        return;
      case 'fault':
        this.fault(`locksmith: internal error in a worker: ${m.message}`);
        return;
      case 'stopped':
        // Every answer the host could give came before this, in order.
        w.markStopped();
        return;
      case 'storeTrouble':
        this.space?.nudge();
        return;
      case 'settleOthers':
        for (const o of this.workers.list) if (o !== w && o.alive) o.out.object({ t: 'settleOthers' });
        return;
      case 'adopted':
        // Session 0 holds nothing: the locks it may have are still the last session's.
        if (m.epoch !== 0) {
          w.session = { epoch: m.epoch, incarnation: m.incarnation };
          // Its replacement reads no older session's index: the closes that index needed go.
          this.workers.lostOf(w.index).closed.clear();
        }
        return;
      case 'lostHandles': {
        const lost = this.workers.lostOf(w.index);
        for (const key of m.keys) {
          lost.handles.add(key);
          lost.closed.delete(key);
        }
        return;
      }
      case 'owed': {
        const wire = m.wire;
        if (wire !== undefined) {
          // A native release (its id -reqId): answered by its worker itself, kept from now on.
          if (this.stopping === undefined) this.owedReleases.set(m.id, nativeOwedRequest(m.id, wire, w.index));
          return;
        }
        const r = this.requests.get(m.id) ?? this.owedReleases.get(m.id);
        if (r !== undefined) r.owed = true;
        return;
      }
      case 'written':
        this.owedReleases.delete(m.id);
        return;
      case 'judging': {
        const r = this.requests.get(m.id);
        if (r !== undefined) r.judged = m.before;
        return;
      }
      case 'lostClosed': {
        const lost = this.workers.lostOf(w.index);
        lost.handles.delete(m.key);
        lost.closed.add(m.key);
        return;
      }
    }
  }

  private hookFailed(hook: string, message: string): void {
    this.hookErrors++;
    process.emitWarning(`locksmith: ${hook} hook failed: ${message}`, 'LocksmithHookWarning');
  }

  private fault(message: string): void {
    this.faults++;
    process.emitWarning(message, 'LocksmithFaultWarning');
  }

  /** Ends a request that its worker can no longer answer, as its cancel would have. */
  private finishCancelled(r: Request, reason: CancelReason): void {
    const code = cancelResult(reason, isWindows(r.call));
    const call = r.call;
    this.finish(r, code, call.op === 'lock' ? replyOfLock(call, code) : r.name === 'closeHandle' || r.name === 'flush' || r.name === 'release' ? undefined : code);
  }

  /** Ends request `r`: `code` is counted in the stats, `value` resolves the caller's Promise. */
  private finish(r: Request, code: number, value: unknown): void {
    this.requests.delete(r);
    this.deadlocks.forget(r.id);
    if (r.queued) this.counters.waiting--;
    if (r.timer !== undefined) clearTimer(r.timer);
    if (r.signal !== undefined) this.aborts.delete(r.signal, r);
    this.counters.count(r.name, code);
    r.resolve(value);
    if (r.owed === true && this.stopping === undefined) this.owedReleases.set(r.id, r);
  }

  // ---- submitting -----------------------------------------------------------------------------

  /** The caller's signal or timeout ends request `r` if it still waits (the worker decides). */
  private cancel(r: Request, reason: CancelReason): void {
    if (r.cancelled !== undefined || this.requests.get(r.id) !== r) return;
    r.cancelled = reason;
    this.workers.list[r.worker]!.out.object({ t: 'cancel', id: r.id, reason });
  }

  private submit(name: PublicCall, raw: Record<string, unknown>, call: Sent, w: WaitOptions): Promise<unknown> {
    const scope = hookScope.getStore();
    if (scope?.running && scope.path === call.path) return Promise.reject(reentryError(name, scope));
    const id = ++this.nextId;
    const worker = routeOf(call.path, this.workers.size);
    const wire =
      call.op !== 'lock' ? encodeCall(name as Exclude<PublicCall, 'lock'>, id, raw) : fitsDoubles(call, raw.fileContext) ? undefined : encodeLock(id, call, raw.fileContext);
    const promise = new Promise(captureResolve);
    const r: Request = { id, name, wire, call, worker, resolve: captured!, signal: w.signal, timer: undefined, queued: false, cancelled: undefined };
    if (w.signal !== undefined) this.aborts.add(w.signal, r);
    if (w.timeoutMs !== undefined) r.timer = setTimer(() => this.cancel(r, 'timeout'), w.timeoutMs);
    this.requests.add(r);
    send(this.workers.list[worker]!.out, r);
    return promise;
  }

  /**
   * Runs a public call: its TypeError becomes a rejection, an immediate result resolves at once, a
   * parsed call goes to its worker. No async wrapper: one Promise per request is all the caller pays.
   *
   * The request is read once, here (requests.ts snapshotRequest): unknown fields are refused, each
   * known field is read exactly once and the contexts are copied. Everything after (the wait options,
   * the parse, the early reply, the wire form in submit, a resend, the journal) sees only that copy,
   * so nothing the caller does to its object later can change or break what is sent.
   */
  private enter<T>(name: PublicCall, req: unknown, windows: boolean, parse: (o: Record<string, unknown>) => Sent | Call | T, early?: (o: Record<string, unknown>, code: number) => T): Promise<T> {
    if (this.stopping !== undefined) return Promise.reject(new Error(STOPPED));
    try {
      const o = snapshotRequest(name, req);
      let w = NO_WAIT;
      if (early !== undefined) {
        w = waitOptions(o, windows);
        if (w.early !== undefined) {
          this.counters.count(name, w.early);
          return Promise.resolve(early(o, w.early));
        }
      }
      const c = parse(o);
      if (typeof c !== 'object' || c === null || !('op' in c)) {
        this.counters.count(name, typeof c === 'number' ? c : (c as LockReply).result);
        return Promise.resolve(c as T);
      }
      return this.submit(name, o, c as Sent, w) as Promise<T>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A message its batch could not post even alone (batcher.ts CallBatcher; the rest of the batch went).
   * enter() copies every request, so this is a bug: the request is rejected with an Error that says
   * so, counted as a fault and reported; other callers are not touched.
   */
  private unsendable(message: unknown[], error: unknown): void {
    const why = error instanceof Error ? error.message : String(error);
    this.fault(`locksmith: internal error: a message could not be posted to a worker: ${why}`);
    if (message[0] === T_OBJECT) return;
    const r = this.requests.get(message[1] as number);
    if (r === undefined) return;
    const failure = Promise.reject(new Error(`locksmith: ${r.name} request could not be sent to its worker: ${why}`));
    this.finish(r, isWindows(r.call) ? ERROR_LOCK_VIOLATION : -ENOLCK, failure);
  }

  /**
   * LockFileEx / CBFS LockFile: locks a byte range of `fileName` for the owner (handle, processId,
   * key). Resolves to a Win32 code: 0 granted, 33 conflict (failImmediately, timeoutMs) or hook veto,
   * 87 / 307 for a range no Windows call could carry, 158 when the handle closes while it waits, 995
   * when `signal` aborts the wait (SEMANTICS-WINDOWS.md). A malformed or unknown field rejects with a
   * TypeError naming it.
   *
   * @example
   * const code = await c.lockFile({ fileName: '/data.db', byteOffset: 0, length: 4096, exclusiveLock: true,
   *                                 failImmediately: false, handle: 17, processId: 4242, timeoutMs: 5000 });
   * if (code === ERROR_LOCK_VIOLATION) console.log('busy');
   */
  lockFile(req: LockFileRequest): Promise<number> {
    return this.enter<number>('lockFile', req, true, parseLockFile, (_o, code) => code);
  }

  /**
   * UnlockFileEx / CBFS UnlockFile: removes the lock record that matches the range and owner exactly
   * (0, or 158 ERROR_NOT_LOCKED). byteOffset = length = -1 unlocks everything of (handle, processId).
   *
   * @example
   * await c.unlockFile({ fileName: '/data.db', byteOffset: 0, length: 4096, handle: 17, processId: 4242 });
   * await c.unlockFile({ fileName: '/data.db', byteOffset: -1, length: -1, handle: 17, processId: 4242 }); // unlock all
   */
  unlockFile(req: UnlockFileRequest): Promise<number> {
    return this.enter<number>('unlockFile', req, true, parseUnlockFile);
  }

  /**
   * The last close of a Windows handle: releases every lock taken through it; its waiting requests
   * end with 158 (ERROR_NOT_LOCKED).
   *
   * @example
   * await c.closeHandle({ fileName: '/data.db', handle: 17 });
   */
  closeHandle(req: CloseHandleRequest): Promise<void> {
    return this.enter<void>('closeHandle', req, true, parseCloseHandle);
  }

  /**
   * The mandatory-locking check a filesystem makes before a read or a write: 0 (allowed) or 33
   * (ERROR_LOCK_VIOLATION). Zero-length I/O is always allowed; POSIX locks do not count.
   *
   * @example
   * if ((await c.checkIo({ fileName: '/data.db', handle: 18, byteOffset: 0, length: 512, write: true })) !== 0) {
   *   // fail the write with STATUS_FILE_LOCK_CONFLICT
   * }
   */
  checkIo(req: CheckIoRequest): Promise<number> {
    return this.enter<number>('checkIo', req, true, parseCheckIo);
  }

  /**
   * fcntl F_GETLK / F_SETLK / F_SETLKW with classic POSIX, OFD (`kind: 'ofd'`) or flock
   * (`kind: 'flock'`) semantics (SEMANTICS-POSIX.md). `result` is 0 or a negative errno (-EAGAIN,
   * -EDEADLK, -EINTR, -EINVAL, -EOVERFLOW, -ENOLCK); F_GETLK reports the conflicting lock or
   * lockType F_UNLCK.
   *
   * @example
   * const r = await c.lock({ path: '/data.db', lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLKW,
   *                          lockOwner: 0x7f3an, lockPid: 4242, timeoutMs: 1000 });
   * if (r.result === -EAGAIN) console.log('timed out');
   */
  lock(req: LockRequest): Promise<LockReply> {
    return this.enter<LockReply>('lock', req, false, decodeLock, earlyReply);
  }

  /**
   * What close(2) does to POSIX locks: drops every classic ('posix') lock of `lockOwner` on `path`.
   *
   * @example
   * await c.flush({ path: '/data.db', lockOwner: 0x7f3an });
   */
  flush(req: FlushRequest): Promise<void> {
    return this.enter<void>('flush', req, false, parseFlush);
  }

  /**
   * The last close of an open file description: drops every lock taken through `fileHandle` and,
   * when `lockOwner` is given, that owner's flock lock.
   *
   * @example
   * await c.release({ path: '/data.db', fileHandle: 3, lockOwner: 0x7f3an });
   */
  release(req: ReleaseRequest): Promise<void> {
    return this.enter<void>('release', req, false, parseRelease);
  }

  private async guard<T>(f: () => Promise<T>): Promise<T> {
    if (this.stopping !== undefined) throw new Error(STOPPED);
    return f();
  }

  /**
   * Granted and waiting locks, of one file or all, one entry per lock (think /proc/locks).
   *
   * @example
   * for (const l of await c.locks('/data.db')) console.log(l.kind, l.type, l.start, l.end, l.owner, l.state);
   */
  locks(path?: string): Promise<LockEntry[]> {
    return this.guard(async () => {
      if (path !== undefined && typeof path !== 'string') throw new TypeError(`path must be a string, got ${describeValue(path)}`);
      if (this.space !== undefined) return this.space.locks(path);
      if (path !== undefined) return this.workers.ask(routeOf(path, this.workers.size), (h) => h.locks(path));
      const parts = await Promise.all(this.workers.list.map((w) => this.workers.ask(w.index, (h) => h.locks())));
      return parts.flat();
    });
  }

  /**
   * With a store: every node's locks as locks() lists them, each with the epoch of its session,
   * and the engine's session registry read beside them (what `locksmith locks` tells a node that
   * no longer renews its session by). Undefined without a store.
   */
  spaceLocks(): Promise<SpaceListing | undefined> {
    return this.guard(async () => this.space?.listing(undefined, true));
  }

  /**
   * With a store: this node's own locks and waiters as its workers last knew them (each file's
   * cache, as of this node's last step on it), without asking the engine: what `locksmith locks`
   * lists while the engine does not answer. Without a store, the same as locks().
   */
  lastKnownLocks(): Promise<LockEntry[]> {
    return this.guard(async () => (await Promise.all(this.workers.list.map((w) => this.workers.ask(w.index, (h) => h.locks())))).flat());
  }

  /**
   * Counters for a person watching a running system: operations by call and result, waiting
   * requests, wait times, files with live actors, per worker.
   *
   * @example
   * const s = await c.stats();
   * console.log(s.waiting, s.operations.lockFile);
   */
  stats(): Promise<Stats> {
    return this.guard(async () => {
      const hosts = await Promise.all(this.workers.list.map((w) => this.workers.ask(w.index, (h) => h.stats())));
      // A mount's requests never pass through this thread: each worker counted its own.
      const counted = this.counters.snapshot();
      for (const n of this.workers.nativeCounted()) merge(counted, n);
      return {
        ...counted,
        hookErrors: this.hookErrors,
        faults: this.faults,
        inFlight: this.requests.size,
        files: hosts.reduce((n, h) => n + h.files, 0),
        workers: hosts.map(({ engine: _, ...h }, i) => ({ ...h, restarts: this.workers.list[i]!.restarts })),
        workerRestarts: this.workers.list.reduce((n, w) => n + w.restarts, 0),
        crossWorkerDeadlocks: this.deadlocks.broken,
        ...(this.space === undefined ? {} : { store: { ...this.space.stats(hosts.map((h) => h.engine).filter((e) => e !== undefined)), owedReleases: this.owedReleases.size } }),
      };
    });
  }

  /**
   * Ends every waiting request (995 / -EINTR), waits for the answers, and stops every worker.
   * Calling it again resolves again; every other call rejects afterwards.
   *
   * @example
   * process.once('SIGTERM', () => void c.stop());
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    // From here on every new call is refused (this.stopping is set once this first await returns).
    await undefined;
    // Each host ends every waiter (995 / -EINTR) and answers all it can at once, then says
    // 'stopped'; a host that died counts as stopped. No polling: these are events.
    await this.workers.stopAll(STOP_GRACE_MS);
    // What is left waits on a hook that has not answered (its file's mailbox is held), or on a host
    // that never answered: such a request ends as stop ends a waiter.
    for (const r of this.requests.values()) this.finishCancelled(r, 'stop');
    this.owedReleases.clear();
    for (const [token, c] of this.cycleAnswers) {
      this.cycleAnswers.delete(token);
      c.answer(false);
    }
    await this.workers.destroy(STOPPED);
    // The workers released this node's locks (each host's stop); the session ends last.
    await this.space?.close();
  }

  /**
   * Tells `listener` of every event of this node's session on the store (fenced, lost, expired, a
   * reset, a grace period's end...), with the session as it then is: a mount logs them. Replaces
   * any listener before; nothing happens without a store.
   */
  onStoreSession(listener: (e: SessionEvent, now: SessionState) => void): void {
    this.sessionListener = listener;
  }

  /**
   * Makes the workers decide the lock events of native pump session `sessionId` (src/native/: a
   * FUSE mount or the synthetic source, made with as many destinations as this coordinator has
   * workers): worker i takes destination i, which receives the files routeOf sends to worker i.
   * A replacement worker takes over its destination. Resolves once every worker is attached.
   */
  async attachNative(sessionId: number): Promise<void> {
    if (this.stopping !== undefined) throw new Error(STOPPED);
    if (!Number.isInteger(sessionId)) throw new TypeError(`sessionId must be an integer, got ${describeValue(sessionId)}`);
    this.nativeSession = sessionId;
    for (const w of this.workers.list) w.out.object({ t: 'native', sessionId });
    await this.workers.syncAll();
  }

  /**
   * A bare round trip to worker `index`: one number posted on its data port, which the host posts
   * straight back, outside batches and actors. Resolves with the round trip in µs; rejects if the
   * worker ends first. What a request takes beyond this is the lock manager's own work (bench:api
   * uses it as the floor of the same threads).
   */
  ping(index: number): Promise<number> {
    if (this.stopping !== undefined) return Promise.reject(new Error(STOPPED));
    if (!Number.isInteger(index)) return Promise.reject(new TypeError(`index must be an integer, got ${describeValue(index)}`));
    if (this.workers.list[index] === undefined) return Promise.reject(new RangeError(`no worker ${String(index)}`));
    return this.workers.ping(index);
  }

  /**
   * Crash drill (tests, fire drills): worker `index` dies as from an uncaught exception. Resolves
   * once its replacement has been rebuilt and answers, or once stop() began.
   */
  async crashWorker(index: number): Promise<void> {
    if (this.stopping !== undefined) throw new Error(STOPPED);
    if (!Number.isInteger(index)) throw new TypeError(`index must be an integer, got ${describeValue(index)}`);
    const w = this.workers.list[index];
    if (w === undefined) throw new RangeError(`no worker ${index}`);
    w.out.object({ t: 'crash' });
    await w.died;
    if (this.stopping !== undefined) return;
    try {
      await this.workers.ask(index, (h) => h.stats());
    } catch (e) {
      // stop() began while the replacement was on its way (its asks end with STOPPED): the drill
      // is over all the same, as when stop() came before the worker died.
      if (this.stopping === undefined) throw e;
    }
  }
}

/**
 * A native release its worker answered before writing it ('owed' with its wire form), kept as a
 * Request in owedReleases under its host id `id` (-reqId): no caller waits for it (its kernel
 * request was answered by the worker), only a replacement may need it.
 */
function nativeOwedRequest(id: number, wire: unknown[], worker: number): Request {
  const call = decodeCall(wire, 0) as Sent;
  return { id, name: call.op as PublicCall, wire, call, worker, resolve: () => {}, signal: undefined, timer: undefined, queued: false, cancelled: undefined, owed: true, native: true };
}
