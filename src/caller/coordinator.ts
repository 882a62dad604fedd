/**
 * LockCoordinator: the public API (API.md) on the caller's thread.
 *
 * A call is parsed here (a malformed one rejects with its TypeError and never leaves this thread),
 * routed by a stable hash of its path to the worker whose actor owns the file, and sent in that
 * worker's next batch. The worker's reply resolves the call's Promise. Waiting requests stay
 * waiting in the worker; a `signal` or `timeoutMs` sends a cancel that the actor applies if the
 * request still waits (if the grant won the race, the caller gets the grant: nothing is lost).
 *
 * The coordinator also keeps, per file, the journal of committed steps (protocol.ts JournalEntry).
 * When a worker dies, piscina starts a replacement, the journal rebuilds its files' granted locks,
 * and every request that had no answer is sent again in its original order.
 */
import * as Comlink from 'comlink';
import { AsyncLocalStorage } from 'node:async_hooks';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
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
import {
  EINTR,
  ENOLCK,
  ERROR_INVALID_PARAMETER,
  ERROR_LOCK_VIOLATION,
  ERROR_OPERATION_ABORTED,
  EINVAL,
} from '../core/codes.js';
import { cancelResult, type CancelReason, type LockEntry } from '../core/lock-table.js';
import {
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
import { requireObject } from '../core/input.js';
import { CallBatcher } from '../wire/batcher.js';
import { END_FLOCK_DROP, END_IDLE, R_DONE, R_ENDED, R_GETLK, R_NDROP, R_NIDLE, R_NJOURNAL, R_QUEUED, T_OBJECT, encodeCall, encodeLock, fitsDoubles, type PublicCall } from '../wire/calls.js';
import { DeadlockService } from './deadlock-service.js';
import { RequestWindow } from './request-window.js';
import { clearTimer, setTimer, type Timer } from '../long-timer.js';
import type { FromHost, HookRunner, HostControl, HostInit } from '../wire/protocol.js';
import { Journal, commits } from './journal.js';
import { routeOf } from '../wire/route.js';

export type {
  CheckIoRequest,
  CloseHandleRequest,
  CoordinatorOptions,
  CoordinatorStats,
  FlushRequest,
  LockEntry,
  LockEvent,
  LockFileEvent,
  LockFileRequest,
  LockReply,
  LockRequest,
  PosixReply,
  ReleaseRequest,
  StartOptions,
  Stats,
  StoreOptions,
  UnlockFileEvent,
  UnlockFileRequest,
} from '../types.js';

/** What the coordinator keeps of a call: a lock call as decoded (its reply's fields), others parsed. */
type Sent = Exclude<Call, { op: 'lock' }> | DecodedLock;

interface Request {
  readonly id: number;
  readonly name: PublicCall;
  /**
   * The call as it travels (wire.ts), a copy taken when it was made, so a caller reusing its
   * request object cannot change what a resend or the journal replays; undefined for a lock call
   * that crosses as doubles (its immutable `call` serves both).
   */
  readonly wire: unknown[] | undefined;
  readonly call: Sent;
  readonly slot: number;
  readonly resolve: (v: unknown) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  timer: Timer | undefined;
  queued: boolean;
  /** A cancel the caller asked for (kept so a request resent after a crash still honours it). */
  cancelled: CancelReason | undefined;
}

interface Slot {
  readonly index: number;
  data: MessagePort;
  control: Comlink.Remote<HostControl>;
  out: CallBatcher;
  restarts: number;
  alive: boolean;
  closePorts: () => void;
  /** Settles when this worker is gone (crashDrill waits for it). */
  readonly died: Promise<void>;
  markDead: () => void;
  /**
   * Control-plane calls to this worker not answered yet: asked again of the replacement if it dies,
   * rejected if the coordinator stops. Each leaves the set when answered, so nothing keeps a reply.
   */
  readonly asks: Set<Ask>;
  /** Settles when the host said 'stopped' (every answer it could give is in) or ended. */
  readonly stopped: Promise<void>;
  markStopped: () => void;
  /** ping() round trips in flight, oldest first (the host echoes in order). */
  readonly pings: { readonly t0: number; readonly resolve: (us: number) => void; readonly reject: (e: Error) => void }[];
}

/** A control-plane call in flight (LockCoordinator.ask). */
interface Ask {
  readonly retry: () => void;
  readonly reject: (e: Error) => void;
}

/** A hook running on this thread, for the requests it makes (a request on its own file would wait for it). */
interface HookScope {
  readonly path: string;
  readonly hook: string;
  running: boolean;
}
const hookScope = new AsyncLocalStorage<HookScope>();

/** How long stop() waits for a host that neither says 'stopped' nor ends (it answers at once). */
const STOP_GRACE_MS = 1000;

const STOPPED = 'LockCoordinator is stopped';
const WAIT_BUCKETS = [1, 10, 100, 1000, 10000];

/** The worker entry: built JavaScript, also when this module runs from TypeScript sources in tests. */
function hostFile(): string {
  const here = fileURLToPath(new URL('../actors/host.js', import.meta.url));
  if (import.meta.url.endsWith('.ts')) return here.replace(/([\\/])src([\\/])actors([\\/])host\.js$/, '$1dist$1src$2actors$3host.js');
  return here;
}

/**
 * The options as the coordinator keeps them. A hook receives an event that a host built and sent
 * across threads (requests.ts, lock-table.ts): the shapes types.ts declares, held here as records.
 */
type HostEvent = Readonly<Record<string, unknown>>;
interface Options extends Omit<StartOptions, 'onLockFile' | 'onUnlockFile' | 'onLock' | 'store'> {
  onLockFile?: (e: HostEvent) => number | void | Promise<number | void>;
  onUnlockFile?: (e: HostEvent) => void | Promise<void>;
  onLock?: (e: HostEvent) => number | void | Promise<number | void>;
}

const START_OPTIONS = new Set(['workers', 'onLockFile', 'onUnlockFile', 'onLock', 'policy', 'hookTimeoutMs', 'store']);

function validateOptions(o: unknown): Options {
  if (o === undefined) return {};
  const opts = requireObject(o, 'options') as StartOptions;
  for (const k of Object.keys(opts)) {
    if (!START_OPTIONS.has(k)) throw new TypeError(`unknown field '${k}' in options (known: ${[...START_OPTIONS].join(', ')})`);
  }
  // Declared (types.ts StoreOptions) for the shared lock space of API.md, not built yet: refusing it
  // beats a coordinator that silently keeps its locks to itself while the caller expects a cluster.
  if (opts.store !== undefined) {
    throw new Error('options.store: a shared lock store is not available yet in this version of locksmith; start without it for a lock space in this process');
  }
  if (opts.workers !== undefined && (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 256)) {
    throw new TypeError(`options.workers must be an integer from 1 to 256, got ${String(opts.workers)}`);
  }
  for (const k of ['onLockFile', 'onUnlockFile', 'onLock'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'function') throw new TypeError(`options.${k} must be a function`);
  }
  if ((opts.onLockFile === undefined) !== (opts.onUnlockFile === undefined)) {
    throw new TypeError('options.onLockFile and options.onUnlockFile go together: pass both or neither');
  }
  if (opts.policy !== undefined && opts.policy !== 'default' && opts.policy !== 'fifo') {
    throw new TypeError(`options.policy must be 'default' or 'fifo', got ${String(opts.policy)}`);
  }
  if (opts.hookTimeoutMs !== undefined && (typeof opts.hookTimeoutMs !== 'number' || !(opts.hookTimeoutMs > 0))) {
    throw new TypeError(`options.hookTimeoutMs must be a positive number, got ${String(opts.hookTimeoutMs)}`);
  }
  return opts as Options;
}

function isInputType(flag: string): boolean {
  return flag === '--input-type' || flag.startsWith('--input-type=');
}

/** Checks the extensions of waiting requests; returns the family's code for a bad or aborted one. */
interface WaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The result when the request ends before it starts (aborted signal, bad timeout). */
  early?: number;
}

/** The wait options of a request without signal and timeout (most requests): shared, never changed. */
const NO_WAIT: WaitOptions = Object.freeze({});

function waitOptions(o: Record<string, unknown>, windows: boolean): WaitOptions {
  const signal = o.signal;
  if (signal === undefined && o.timeoutMs === undefined) return NO_WAIT;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  if (signal?.aborted) return { early: windows ? ERROR_OPERATION_ABORTED : -EINTR };
  const t = o.timeoutMs;
  if (t !== undefined) {
    if (typeof t !== 'number') throw new TypeError(`timeoutMs must be a number, got ${typeof t}`);
    if (!(t >= 0)) return { early: windows ? ERROR_INVALID_PARAMETER : -EINVAL };
  }
  // Infinity waits for ever, as leaving timeoutMs out does.
  return { signal, timeoutMs: t === Infinity ? undefined : (t as number | undefined) };
}

/**
 * The executor of every request's Promise: it hands its resolve function over through `captured`
 * (read right after `new Promise`), so no closure is made per request.
 */
let captured: ((v: unknown) => void) | undefined;
function captureResolve(resolve: (v: unknown) => void): void {
  captured = resolve;
}

export class LockCoordinator {
  private readonly slots: Slot[] = [];
  private readonly requests = new RequestWindow<Request>();
  /** Per file, committed steps since it was last idle: what a replacement worker replays. */
  private readonly journal = new Journal((path) => this.slots[routeOf(path, this.slots.length)]!.out.object({ t: 'snapshot', path }));
  private readonly syncs = new Map<number, () => void>();
  private readonly cycleAnswers = new Map<number, { slot: number; answer: (failed: boolean) => void }>();
  private readonly deadlocks: DeadlockService;
  private readonly ops: Record<string, Record<string, number>> = {};
  private readonly waits = { count: 0, totalMs: 0, maxMs: 0, histogramMs: {} as Record<string, number> };
  private nextId = 0;
  private nextToken = 0;
  private waiting = 0;
  private hookErrors = 0;
  private faults = 0;
  private stopping: Promise<void> | undefined;
  /** Until start() has heard from every host: a host that ends then fails start (startFailed). */
  private starting = false;
  private startFailed: (e: Error) => void = () => {};
  /** The native pump session whose events the workers take (attachNative), if any. */
  private nativeSession: number | undefined;
  /** Native requests (negative ids) with wait-for edges, and the worker deciding each. */
  private readonly nativeSlots = new Map<number, number>();

  private constructor(
    private readonly pool: Piscina,
    private readonly opts: Options,
  ) {
    this.deadlocks = new DeadlockService({
      syncAll: () => Promise.all(this.slots.filter((s) => s.alive).map((s) => this.sync(s))).then(() => undefined),
      breakCycle: (id) => this.breakCycle(id),
      letPass: (id, owner) => {
        const slot = this.slotOfRequest(id);
        if (slot !== undefined) this.slots[slot]!.out.object({ t: 'pass', id, owner });
      },
    });
  }

  /**
   * Starts the worker pool and one actor host per worker; resolves once every worker answers.
   * Rejects with a TypeError naming a malformed option (hooks: onLockFile and onUnlockFile go
   * together), and with an Error for `store`, which this version does not have yet.
   *
   * @example
   * const c = await LockCoordinator.start({ workers: 2, onLock: (e) => (e.path.startsWith('/ro/') ? -ENOLCK : 0) });
   */
  static async start(options?: StartOptions): Promise<LockCoordinator> {
    const opts = validateOptions(options);
    const n = opts.workers ?? availableParallelism();
    const pool = new Piscina({
      filename: hostFile(),
      minThreads: n,
      maxThreads: n,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      // An idle host must keep its event loop turning to read its port ('sync' would freeze it).
      atomics: 'disabled',
      // Workers inherit the process's flags; --input-type (node -e with ESM) makes a worker's entry
      // file fail to load, so it is left out. Only then is a list given: a given list is checked
      // again, and process-wide V8 flags such as --expose-gc are refused in it.
      ...(process.execArgv.some(isInputType) ? { execArgv: process.execArgv.filter((a) => !isInputType(a)) } : {}),
    });
    const c = new LockCoordinator(pool, opts);
    // A worker that dies with no task running (during stop) is reported here, not by a task: without
    // a listener piscina's 'error' event would end the process.
    pool.on('error', (e: unknown) => {
      if (c.stopping === undefined) process.emitWarning(`locksmith: worker pool error: ${String(e)}`, 'LocksmithWorkerWarning');
    });
    c.starting = true;
    for (let i = 0; i < n; i++) c.slots.push(c.launch(i, 0));
    // A first stats round trip proves every host is up before start() resolves. A worker that dies
    // before that is not replaced (its replacement would most likely die the same way): start fails.
    const failed = new Promise<never>((_, reject) => (c.startFailed = reject));
    try {
      await Promise.race([Promise.all(c.slots.map((s) => c.ask(s.index, (h) => h.stats()))), failed]);
    } catch (e) {
      await c.stop();
      throw e;
    } finally {
      c.starting = false;
    }
    return c;
  }

  // ---- workers ------------------------------------------------------------------------------

  private launch(index: number, restarts: number): Slot {
    const data = new MessageChannel();
    const control = new MessageChannel();
    const hooks = new MessageChannel();
    const o = this.opts;
    const init: HostInit = {
      index,
      data: data.port2,
      control: control.port2,
      hooks: hooks.port2,
      policy: o.policy ?? 'default',
      approveWindows: o.onLockFile !== undefined,
      approvePosix: o.onLock !== undefined,
      releasedWindows: o.onUnlockFile !== undefined,
      releasedPosix: o.onLock !== undefined,
      hookTimeoutMs: o.hookTimeoutMs ?? 30_000,
    };
    Comlink.expose(this.hookRunner(), hooks.port1 as unknown as Comlink.Endpoint);
    let markDead!: () => void;
    const died = new Promise<void>((r) => (markDead = r));
    let markStopped!: () => void;
    const stopped = new Promise<void>((r) => (markStopped = r));
    const slot: Slot = {
      died,
      markDead,
      asks: new Set(),
      stopped,
      markStopped,
      pings: [],
      index,
      data: data.port1,
      control: Comlink.wrap<HostControl>(control.port1 as unknown as Comlink.Endpoint),
      out: new CallBatcher((batch) => data.port1.postMessage(batch), 64, () => this.requests.size > 1, (m, e) => this.unsendable(m, e)),
      restarts,
      alive: true,
      closePorts: () => {
        data.port1.close();
        control.port1.close();
        hooks.port1.close();
      },
    };
    data.port1.on('message', (batch: unknown[] | number) => this.onData(slot, batch));
    this.pool
      .run(init, { transferList: [data.port2, control.port2, hooks.port2] })
      .then(
        () => this.onHostEnd(slot, undefined),
        (e: unknown) => this.onHostEnd(slot, e),
      );
    return slot;
  }

  /** A message on a worker's data port: a batch of answers, or a ping's echo. */
  private onData(slot: Slot, batch: unknown[] | number): void {
    if (typeof batch !== 'number') {
      this.onBatch(slot, batch);
      return;
    }
    const p = slot.pings.shift();
    p?.resolve((performance.now() - p.t0) * 1000);
  }

  private onHostEnd(slot: Slot, error: unknown): void {
    if (!slot.alive) return;
    // What the worker posted before it ended may still wait in its port (ports deliver in their own
    // turns, and the pool may report the end first). Read it now, before the journal is replayed
    // and the port closed: it can hold the journal records of native grants the kernel has heard of.
    for (let m = receiveMessageOnPort(slot.data); m !== undefined; m = receiveMessageOnPort(slot.data)) {
      this.onData(slot, m.message as unknown[] | number);
    }
    slot.alive = false;
    slot.markDead();
    slot.markStopped();
    for (const p of slot.pings.splice(0)) p.reject(new Error(`locksmith: worker ${slot.index} ended before answering the ping`));
    const asks = [...slot.asks];
    slot.asks.clear();
    if (this.starting && this.stopping === undefined) {
      const why = error instanceof Error ? error.message : String(error ?? 'it exited');
      this.startFailed(new Error(`locksmith: worker ${slot.index} could not start: ${why}`));
    }
    if (this.stopping !== undefined || this.starting) {
      for (const a of asks) a.reject(new Error(STOPPED));
      return;
    }
    slot.closePorts();
    process.emitWarning(`locksmith: worker ${slot.index} ended (${String(error ?? 'exited')}); rebuilding its files on a new worker`, 'LocksmithWorkerWarning');
    const fresh = this.launch(slot.index, slot.restarts + 1);
    this.slots[slot.index] = fresh;
    for (const a of asks) a.retry();
    // Native waiters of the dead worker: the pump queues their events again for the new one.
    for (const [id, s] of this.nativeSlots) {
      if (s !== slot.index) continue;
      this.nativeSlots.delete(id);
      this.deadlocks.forget(id);
    }
    if (this.nativeSession !== undefined) fresh.out.object({ t: 'native', sessionId: this.nativeSession });
    // Rebuild granted locks first, then resend unanswered requests in arrival order.
    for (const [path, entries] of this.journal.entries()) {
      if (routeOf(path, this.slots.length) === slot.index) fresh.out.object({ t: 'restore', path, entries });
    }
    for (const r of this.requests.values()) {
      if (r.slot !== slot.index) continue;
      this.deadlocks.forget(r.id);
      if (r.queued) this.waiting--;
      r.queued = false;
      if (r.cancelled !== undefined) {
        this.finishCancelled(r, r.cancelled);
        continue;
      }
      send(fresh.out, r);
    }
    for (const [token, answer] of this.syncs) {
      this.syncs.delete(token);
      answer();
    }
    // A cycle being broken on the dead worker: its requests were resent, the check starts over.
    for (const [token, c] of this.cycleAnswers) {
      if (c.slot !== slot.index) continue;
      this.cycleAnswers.delete(token);
      c.answer(false);
    }
    this.journal.abandonCompactions((path) => routeOf(path, this.slots.length) === slot.index);
  }

  /**
   * A control-plane call to worker `index`, asked again of the replacement if that worker dies and
   * rejected if the coordinator stops first. Its reply is referenced only by the caller's Promise.
   */
  private ask<T>(index: number, f: (h: Comlink.Remote<HostControl>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        const s = this.slots[index]!;
        const a: Ask = { retry: attempt, reject };
        s.asks.add(a);
        f(s.control).then(
          (v) => {
            if (s.asks.delete(a)) resolve(v);
          },
          (e: unknown) => {
            if (s.asks.delete(a)) reject(e);
          },
        );
      };
      attempt();
    });
  }

  private sync(slot: Slot): Promise<void> {
    const token = ++this.nextToken;
    return new Promise((resolve) => {
      this.syncs.set(token, resolve);
      slot.out.object({ t: 'sync', token });
    });
  }

  /** The worker deciding request `id`: a native one (negative id) or a caller's. */
  private slotOfRequest(id: number): number | undefined {
    return id < 0 ? this.nativeSlots.get(id) : this.requests.get(id)?.slot;
  }

  private breakCycle(id: number): Promise<boolean> {
    const slot = this.slotOfRequest(id);
    if (slot === undefined) return Promise.resolve(false);
    const token = ++this.nextToken;
    return new Promise((resolve) => {
      this.cycleAnswers.set(token, { slot, answer: resolve });
      this.slots[slot]!.out.object({ t: 'deadlock', id, token });
    });
  }

  private hookRunner(): HookRunner {
    const o = this.opts;
    const report = (hook: string, message: string): void => {
      this.hookErrors++;
      process.emitWarning(`locksmith: ${hook} hook failed: ${message}`, 'LocksmithHookWarning');
    };
    return {
      approve: async (family, event) => {
        const hook = family === 'windows' ? o.onLockFile : o.onLock;
        const name = family === 'windows' ? 'onLockFile' : 'onLock';
        const generic = family === 'windows' ? ERROR_LOCK_VIOLATION : -ENOLCK;
        if (hook === undefined) return 0;
        // The file's other requests wait for this verdict: a request the hook makes on the same file
        // while it runs could only wait for the hook itself, so `submit` refuses it at once.
        const scope: HookScope = { path: String(event.fileName ?? event.path), hook: name, running: true };
        let r: unknown;
        try {
          r = await hookScope.run(scope, hook, event);
        } catch (e) {
          report(name, e instanceof Error ? e.message : String(e));
          return generic;
        } finally {
          scope.running = false;
        }
        if (r === undefined || r === 0) return 0;
        if (typeof r === 'number' && Number.isInteger(r) && (family === 'windows' || r < 0)) return r;
        report(name, `returned ${String(r)}, which is not ${family === 'windows' ? 'a Win32 code' : 'a negative errno'}`);
        return generic;
      },
      released: async (family, event) => {
        const hook = family === 'windows' ? o.onUnlockFile : o.onLock;
        try {
          await hook?.(event);
        } catch (e) {
          report(family === 'windows' ? 'onUnlockFile' : 'onLock', e instanceof Error ? e.message : String(e));
        }
      },
    };
  }

  // ---- replies ------------------------------------------------------------------------------

  private onBatch(slot: Slot, b: unknown[]): void {
    // A replaced worker's late answers are dropped (its requests were sent again); while stopping
    // there is no replacement, and every answer that arrives is the request's real outcome.
    if (!slot.alive && this.stopping === undefined) return;
    let i = 0;
    while (i < b.length) {
      switch (b[i]) {
        case R_DONE:
          this.onDone(b[i + 1] as number, b[i + 2] as number | null, -1, 0);
          i += 3;
          break;
        case R_ENDED:
          this.onDone(b[i + 1] as number, b[i + 2] as number | null, b[i + 3] as number, b[i + 4] as number);
          i += 5;
          break;
        case R_GETLK: {
          const r = this.requests.get(b[i + 1] as number);
          const reply = { result: b[i + 2], lockType: b[i + 3], lockStart: b[i + 4], lockLen: b[i + 5], lockPid: b[i + 6] };
          if (r !== undefined) this.finish(r, reply.result as number, reply);
          i += 7;
          break;
        }
        case R_QUEUED: {
          const r = this.requests.get(b[i + 1] as number);
          if (r !== undefined) {
            if (b[i + 2] === true) this.journal.record(r.call.path, { j: 'flockDrop', owner: (r.call as DecodedLock).owner });
            r.queued = true;
            this.waiting++;
          }
          i += 3;
          break;
        }
        case R_NJOURNAL:
          this.journal.record(b[i + 1] as string, { j: 'native', f: b.slice(i + 2, i + 10) });
          i += 10;
          break;
        case R_NIDLE:
          this.journal.forget(b[i + 1] as string);
          i += 2;
          break;
        case R_NDROP:
          this.journal.record(b[i + 1] as string, { j: 'flockDrop', owner: b[i + 2] as string });
          i += 3;
          break;
        case T_OBJECT:
          this.onHostMessage(b[i + 1] as FromHost, slot);
          i += 2;
          break;
        default:
          throw new Error(`locksmith: corrupt batch from worker ${slot.index} at ${i}`);
      }
    }
  }

  /** A final result (R_DONE, R_ENDED): journal, stats, and the caller's Promise. */
  private onDone(id: number, result: number | null, waitedMs: number, flags: number): void {
    const r = this.requests.get(id);
    if (r === undefined) return;
    const call = r.call;
    if ((flags & END_FLOCK_DROP) !== 0) this.journal.record(call.path, { j: 'flockDrop', owner: (call as DecodedLock).owner });
    // A file left idle needs no journal at all (an unlock's entry would be dropped at once).
    if ((flags & END_IDLE) !== 0) this.journal.forget(call.path);
    else if (commits(call, result)) this.journal.record(call.path, r.wire ?? (call as DecodedLock));
    if (waitedMs >= 0) this.noteWait(waitedMs);
    this.finish(r, result ?? 0, call.op === 'lock' ? replyOfLock(call, result!) : (result ?? undefined));
  }

  private onHostMessage(m: FromHost, slot: Slot): void {
    switch (m.t) {
      case 'edges':
        if (m.id < 0) {
          if (m.blockers.length === 0 && m.queuedBehind.length === 0) this.nativeSlots.delete(m.id);
          else this.nativeSlots.set(m.id, slot.index);
        }
        this.deadlocks.edges(m.id, m.owner, m.blockers, m.queuedBehind);
        return;
      case 'deadlocked':
        this.cycleAnswers.get(m.token)?.answer(m.failed);
        this.cycleAnswers.delete(m.token);
        return;
      case 'synced':
        this.syncs.get(m.token)?.();
        this.syncs.delete(m.token);
        return;
      case 'snapshot':
        this.journal.snapshot(m.path, m.locks);
        return;
      case 'hookError':
        this.hookErrors++;
        process.emitWarning(`locksmith: ${m.hook} hook failed: ${m.message}`, 'LocksmithHookWarning');
        return;
      case 'fault':
        this.faults++;
        process.emitWarning(`locksmith: internal error in a worker: ${m.message}`, 'LocksmithFaultWarning');
        return;
      case 'stopped':
        // Every answer the host could give came before this, in order.
        slot.markStopped();
        return;
    }
  }

  private noteWait(ms: number): void {
    const w = this.waits;
    w.count++;
    w.totalMs += ms;
    if (ms > w.maxMs) w.maxMs = ms;
    const bucket = WAIT_BUCKETS.find((b) => ms < b);
    const key = bucket === undefined ? '>=10000' : `<${bucket}`;
    w.histogramMs[key] = (w.histogramMs[key] ?? 0) + 1;
  }

  /** Ends a request that its worker can no longer answer, as its cancel would have. */
  private finishCancelled(r: Request, reason: CancelReason): void {
    const windows = r.call.op !== 'lock' && r.call.op !== 'flush' && r.call.op !== 'release';
    const code = cancelResult(reason, windows);
    const call = r.call;
    this.finish(r, code, call.op === 'lock' ? replyOfLock(call, code) : r.name === 'closeHandle' || r.name === 'flush' || r.name === 'release' ? undefined : code);
  }

  /** Ends request `r`: `code` is counted in the stats, `value` resolves the caller's Promise. */
  private finish(r: Request, code: number, value: unknown): void {
    this.requests.delete(r);
    this.deadlocks.forget(r.id);
    if (r.queued) this.waiting--;
    if (r.timer !== undefined) clearTimer(r.timer);
    if (r.onAbort !== undefined) r.signal!.removeEventListener('abort', r.onAbort);
    this.count(r.name, code);
    r.resolve(value);
  }

  private count(name: PublicCall, code: number): void {
    const byResult = (this.ops[name] ??= {});
    byResult[code] = (byResult[code] ?? 0) + 1;
  }

  // ---- submitting -----------------------------------------------------------------------------

  private submit(name: PublicCall, raw: Record<string, unknown>, call: Sent, w: WaitOptions): Promise<unknown> {
    const scope = hookScope.getStore();
    if (scope?.running && scope.path === call.path) return Promise.reject(reentryError(name, scope));
    const id = ++this.nextId;
    const slot = routeOf(call.path, this.slots.length);
    const wire =
      call.op !== 'lock' ? encodeCall(name as Exclude<PublicCall, 'lock'>, id, raw) : fitsDoubles(call, raw.fileContext) ? undefined : encodeLock(id, call, raw.fileContext);
    const promise = new Promise(captureResolve);
    const r: Request = { id, name, wire, call, slot, resolve: captured!, signal: w.signal, onAbort: undefined, timer: undefined, queued: false, cancelled: undefined };
    if (w.signal !== undefined || w.timeoutMs !== undefined) {
      const cancel = (reason: CancelReason): void => {
        if (r.cancelled !== undefined || !this.requests.has(id)) return;
        r.cancelled = reason;
        this.slots[r.slot]!.out.object({ t: 'cancel', id, reason });
      };
      if (w.signal !== undefined) {
        r.onAbort = () => cancel('abort');
        w.signal.addEventListener('abort', r.onAbort, { once: true });
      }
      if (w.timeoutMs !== undefined) r.timer = setTimer(() => cancel('timeout'), w.timeoutMs);
    }
    this.requests.add(r);
    send(this.slots[slot]!.out, r);
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
          this.count(name, w.early);
          return Promise.resolve(early(o, w.early));
        }
      }
      const c = parse(o);
      if (typeof c !== 'object' || c === null || !('op' in c)) {
        this.count(name, typeof c === 'number' ? c : (c as LockReply).result);
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
    this.faults++;
    const why = error instanceof Error ? error.message : String(error);
    process.emitWarning(`locksmith: internal error: a message could not be posted to a worker: ${why}`, 'LocksmithFaultWarning');
    if (message[0] === T_OBJECT) return;
    const r = this.requests.get(message[1] as number);
    if (r === undefined) return;
    const windows = r.call.op !== 'lock' && r.call.op !== 'flush' && r.call.op !== 'release';
    const failure = Promise.reject(new Error(`locksmith: ${r.name} request could not be sent to its worker: ${why}`));
    this.finish(r, windows ? ERROR_LOCK_VIOLATION : -ENOLCK, failure);
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
      if (path !== undefined && typeof path !== 'string') throw new TypeError('path must be a string');
      if (path !== undefined) return this.ask(routeOf(path, this.slots.length), (h) => h.locks(path));
      const parts = await Promise.all(this.slots.map((s) => this.ask(s.index, (h) => h.locks())));
      return parts.flat();
    });
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
      const hosts = await Promise.all(this.slots.map((s) => this.ask(s.index, (h) => h.stats())));
      return {
        operations: structuredClone(this.ops),
        waiting: this.waiting,
        inFlight: this.requests.size,
        waits: structuredClone(this.waits),
        files: hosts.reduce((n, h) => n + h.files, 0),
        workers: hosts.map((h, i) => ({ ...h, restarts: this.slots[i]!.restarts })),
        hookErrors: this.hookErrors,
        faults: this.faults,
        workerRestarts: this.slots.reduce((n, s) => n + s.restarts, 0),
        crossWorkerDeadlocks: this.deadlocks.broken,
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
    for (const s of this.slots) {
      s.out.object({ t: 'stop' });
      s.out.flushNow();
    }
    // Each host ends every waiter (995 / -EINTR) and answers all it can at once, then says
    // 'stopped'; a host that died counts as stopped. No polling: these are events.
    let cap: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.slots.map((s) => s.stopped)),
      new Promise<void>((r) => (cap = setTimeout(r, STOP_GRACE_MS))),
    ]);
    clearTimeout(cap);
    // What is left waits on a hook that has not answered (its file's mailbox is held), or on a host
    // that never answered: such a request ends as stop ends a waiter.
    for (const r of this.requests.values()) this.finishCancelled(r, 'stop');
    for (const [token, answer] of this.syncs) {
      this.syncs.delete(token);
      answer();
    }
    for (const [token, c] of this.cycleAnswers) {
      this.cycleAnswers.delete(token);
      c.answer(false);
    }
    for (const s of this.slots) {
      for (const a of s.asks) a.reject(new Error(STOPPED));
      s.asks.clear();
      for (const p of s.pings.splice(0)) p.reject(new Error(STOPPED));
    }
    await this.pool.destroy();
    for (const s of this.slots) {
      s.alive = false;
      s.closePorts();
    }
  }

  /**
   * Makes the workers decide the lock events of native pump session `sessionId` (src/native/: a
   * FUSE mount or the synthetic source, made with as many destinations as this coordinator has
   * workers): worker i takes destination i, which receives the files routeOf sends to worker i.
   * A replacement worker takes over its destination. Resolves once every worker is attached.
   */
  async attachNative(sessionId: number): Promise<void> {
    if (this.stopping !== undefined) throw new Error(STOPPED);
    if (!Number.isInteger(sessionId)) throw new TypeError('sessionId must be an integer');
    this.nativeSession = sessionId;
    for (const s of this.slots) s.out.object({ t: 'native', sessionId });
    await Promise.all(this.slots.map((s) => this.sync(s)));
  }

  /**
   * A bare round trip to worker `index`: one number posted on its data port, which the host posts
   * straight back, outside batches and actors. Resolves with the round trip in µs; rejects if the
   * worker ends first. What a request takes beyond this is the lock manager's own work (bench:api
   * uses it as the floor of the same threads).
   */
  ping(index: number): Promise<number> {
    if (this.stopping !== undefined) return Promise.reject(new Error(STOPPED));
    if (!Number.isInteger(index)) return Promise.reject(new TypeError(`index must be an integer, got ${String(index)}`));
    const s = this.slots[index];
    if (s === undefined) return Promise.reject(new RangeError(`no worker ${String(index)}`));
    return new Promise((resolve, reject) => {
      s.pings.push({ t0: performance.now(), resolve, reject });
      s.data.postMessage(0);
    });
  }

  /**
   * Crash drill (tests, fire drills): worker `index` dies as from an uncaught exception. Resolves
   * once its replacement has been rebuilt and answers.
   */
  async crashWorker(index: number): Promise<void> {
    if (this.stopping !== undefined) throw new Error(STOPPED);
    if (!Number.isInteger(index)) throw new TypeError(`index must be an integer, got ${String(index)}`);
    const s = this.slots[index];
    if (s === undefined) throw new RangeError(`no worker ${index}`);
    s.out.object({ t: 'crash' });
    await s.died;
    if (this.stopping === undefined) await this.ask(index, (h) => h.stats());
  }
}

/**
 * The reply to a request ended before it was parsed (aborted signal, bad timeout): its fields
 * echoed. `o` is the request's snapshot (enter), never the caller's object.
 */
function earlyReply(o: Record<string, unknown>, result: number): LockReply {
  const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : 0n);
  return {
    result,
    lockType: typeof o.lockType === 'number' ? o.lockType : 0,
    lockStart: big(o.lockStart),
    lockLen: big(o.lockLen),
    lockPid: typeof o.lockPid === 'number' ? o.lockPid : 0,
  };
}

/** Why a request from inside a hook on the same file is refused (see HookScope). */
function reentryError(name: PublicCall, scope: HookScope): Error {
  return new Error(
    `locksmith: ${name} on '${scope.path}' was called from inside the ${scope.hook} hook deciding a lock on the same file; ` +
      `that file's requests wait for the hook's verdict, so this one could never run before the hook returns. ` +
      `Make the call after the hook has returned.`,
  );
}

/** Sends request `r` to its worker's batch: first from submit, again to a replacement worker. */
function send(out: CallBatcher, r: Request): void {
  if (r.wire !== undefined) out.call(r.wire);
  else out.lock(r.id, r.call as DecodedLock);
}
