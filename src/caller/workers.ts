/**
 * The worker threads as the caller's side sees them: the piscina pool, and per thread its ports,
 * its outgoing batch, its control calls and pings in flight, and the promises that say it stopped
 * or died. What a worker's answers mean, and how its files are rebuilt when it dies, is the
 * coordinator's (coordinator.ts onReplies, recover); this file only carries messages and notices.
 */
import * as Comlink from 'comlink';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { type Counted, SharedCounters } from '../counters.js';
import { CallBatcher } from '../wire/batcher.js';
import type { HookRunner, HostControl, HostInit, HostSession } from '../wire/protocol.js';

/** One worker thread. */
export interface Worker {
  readonly index: number;
  readonly data: MessagePort;
  readonly control: Comlink.Remote<HostControl>;
  /** Calls and messages to this worker, batched per turn. */
  readonly out: CallBatcher;
  /** Times a worker at this index was replaced after it died. */
  readonly restarts: number;
  /**
   * A shared lock space: the last session (epoch not 0) this worker started on or said it acts on
   * (the host's 'adopted'), under which it may have taken locks. A message it never read is no
   * word: a session lost while it died is not taken for one it acted on (its replacement's
   * HostInit.shared.predecessor).
   */
  session: HostSession | undefined;
  alive: boolean;
  /** Settles when this worker is gone (crashWorker waits for it). */
  readonly died: Promise<void>;
  /** Settles when the host said 'stopped' (every answer it could give is in) or ended. */
  readonly stopped: Promise<void>;
  markStopped(): void;
  /**
   * Control-plane calls to this worker not answered yet: asked again of the replacement if it dies,
   * rejected if the coordinator stops. Each leaves the set when answered, so nothing keeps a reply.
   */
  readonly asks: Set<Ask>;
  /** ping() round trips in flight, oldest first (the host echoes in order). */
  readonly pings: { readonly t0: number; readonly resolve: (us: number) => void; readonly reject: (e: Error) => void }[];
  closePorts(): void;
}

/** What a worker index's hosts said of lost handles (path|handle keys; Workers.lostOf). */
export interface LostHandles {
  /** Told lost and not closed since: their I/O fails. */
  readonly handles: Set<string>;
  /**
   * Closed since their session was lost, or while a replacement read a lost session's index: not
   * told lost from that index (SharedFiles.recoverLost). Emptied when a worker here acts on a new
   * session (no replacement reads an older one then).
   */
  readonly closed: Set<string>;
}

/** A control-plane call in flight (Workers.ask). */
interface Ask {
  readonly retry: () => void;
  readonly reject: (e: Error) => void;
}

/** What the coordinator hears from its workers. */
export interface WorkerEvents {
  /** A batch of answers (src/wire/replies.ts). */
  replies(w: Worker, batch: unknown[]): void;
  /** `w` ended (its task settled with `error`, or undefined): everything it posted was read first. */
  ended(w: Worker, error: unknown): void;
  /** A message its batch could not post even alone (batcher.ts CallBatcher). */
  unsendable(message: unknown[], error: unknown): void;
  /** True while answers are outstanding (batcher.ts: the batch then waits for the end of the phase). */
  busy(): boolean;
}

/** A host's start message without its ports (they are made per launch). */
export type HostConfig = Omit<HostInit, 'index' | 'data' | 'control' | 'hooks' | 'nativeCounters' | 'shared'>;

/** The worker entry: built JavaScript, also when this module runs from TypeScript sources in tests. */
function hostFile(): string {
  const here = fileURLToPath(new URL('../actors/host.js', import.meta.url));
  if (import.meta.url.endsWith('.ts')) return here.replace(/([\\/])src([\\/])actors([\\/])host\.js$/, '$1dist$1src$2actors$3host.js');
  return here;
}

function isInputType(flag: string): boolean {
  return flag === '--input-type' || flag.startsWith('--input-type=');
}

export class Workers {
  readonly list: Worker[] = [];
  private readonly pool: Piscina;
  private readonly syncs = new Map<number, () => void>();
  /** Per worker index, where its native feed counts (kept for the replacement of a worker that dies). */
  private readonly counters: SharedArrayBuffer[] = [];
  /** Per worker index, what its workers said of lost handles (lostOf). */
  private readonly lost: LostHandles[] = [];
  private nextToken = 0;

  constructor(
    private readonly n: number,
    private readonly config: HostConfig,
    private readonly hooks: HookRunner,
    private readonly events: WorkerEvents,
    /** A shared lock space: each launch's StoreLink port and config (shared-space.ts link). */
    private readonly shared?: () => NonNullable<HostInit['shared']>,
  ) {
    this.pool = new Piscina({
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
    for (let i = 0; i < n; i++) this.list.push(this.launch(i));
  }

  /** Reports a pool error (a worker that died with no task running, during stop); without a listener it would end the process. */
  onPoolError(f: (e: unknown) => void): void {
    this.pool.on('error', f);
  }

  get size(): number {
    return this.list.length;
  }

  /** Starts the host of worker `index`, replacing `dead` if given. */
  private launch(index: number, dead?: Worker): Worker {
    const data = new MessageChannel();
    const control = new MessageChannel();
    const hooks = new MessageChannel();
    const nativeCounters = (this.counters[index] ??= new SharedArrayBuffer(SharedCounters.BYTES));
    const init: HostInit = { ...this.config, index, data: data.port2, control: control.port2, hooks: hooks.port2, nativeCounters };
    const transferList = [data.port2, control.port2, hooks.port2];
    // A replacement's files may hold its predecessor's locks in the engine; a first worker's hold none.
    let session: HostSession | undefined;
    if (this.shared !== undefined) {
      const s = { ...this.shared(), blank: dead === undefined, workers: this.n };
      const before = dead?.session;
      // The session its predecessor last acted on, when the node has another now: what it took
      // there went with that session (or with the engine's data), and its handles are told so.
      if (before !== undefined && (before.epoch !== s.epoch || before.incarnation !== s.incarnation)) s.predecessor = before;
      // The handles its predecessors told lost live only in them: the replacement tells them too.
      const lost = this.lostOf(index);
      if (dead !== undefined) s.lost = { handles: [...lost.handles], closed: [...lost.closed] };
      init.shared = s;
      // Started with none (the next is not open yet): its predecessor's is still the one whose
      // locks its files may hold, for its own replacement.
      session = s.epoch !== 0 ? { epoch: s.epoch, incarnation: s.incarnation } : before;
    }
    Comlink.expose(this.hooks, hooks.port1 as unknown as Comlink.Endpoint);
    let markDead!: () => void;
    const died = new Promise<void>((r) => (markDead = r));
    let markStopped!: () => void;
    const stopped = new Promise<void>((r) => (markStopped = r));
    const w: Worker = {
      index,
      data: data.port1,
      control: Comlink.wrap<HostControl>(control.port1 as unknown as Comlink.Endpoint),
      out: new CallBatcher((batch) => data.port1.postMessage(batch), 64, this.events.busy, this.events.unsendable),
      restarts: dead === undefined ? 0 : dead.restarts + 1,
      session,
      alive: true,
      died,
      stopped,
      markStopped,
      asks: new Set(),
      pings: [],
      closePorts: () => {
        data.port1.close();
        control.port1.close();
        hooks.port1.close();
      },
    };
    data.port1.on('message', (m: unknown[] | number) => this.onData(w, m));
    this.pool.run(init, { transferList }).then(
      () => this.onEnd(w, markDead, undefined),
      (e: unknown) => this.onEnd(w, markDead, e),
    );
    return w;
  }

  /** A message on a worker's data port: a batch of answers, or a ping's echo. */
  private onData(w: Worker, m: unknown[] | number): void {
    if (typeof m !== 'number') {
      this.events.replies(w, m);
      return;
    }
    const p = w.pings.shift();
    p?.resolve((performance.now() - p.t0) * 1000);
  }

  private onEnd(w: Worker, markDead: () => void, error: unknown): void {
    if (!w.alive) return;
    // What the worker posted before it ended may still wait in its port (ports deliver in their own
    // turns, and the pool may report the end first). Read it now, before its files are rebuilt and
    // the port closed: it can hold the journal records of native grants the kernel has heard of.
    for (let m = receiveMessageOnPort(w.data); m !== undefined; m = receiveMessageOnPort(w.data)) {
      this.onData(w, m.message as unknown[] | number);
    }
    w.alive = false;
    markDead();
    w.markStopped();
    for (const p of w.pings.splice(0)) p.reject(new Error(`locksmith: worker ${w.index} ended before answering the ping`));
    this.events.ended(w, error);
  }

  /**
   * A shared lock space: what the workers at `index` said of lost handles (the hosts'
   * 'lostHandles' and 'lostClosed'), kept across their deaths for each replacement
   * (HostInit.shared.lost).
   */
  lostOf(index: number): LostHandles {
    return (this.lost[index] ??= { handles: new Set(), closed: new Set() });
  }

  /** A dead worker that will not be replaced (stopping, or failing to start): its control calls fail with `why`. */
  abandon(w: Worker, why: string): void {
    for (const a of w.asks) a.reject(new Error(why));
    w.asks.clear();
  }

  /**
   * Starts a replacement for dead worker `w` at its index, asks it the control calls `w` left
   * unanswered, and releases every sync in flight (the dead worker will never answer its own).
   */
  replace(w: Worker): Worker {
    w.closePorts();
    new SharedCounters(this.counters[w.index]!).noneWaiting();
    const fresh = this.launch(w.index, w);
    this.list[w.index] = fresh;
    const asks = [...w.asks];
    w.asks.clear();
    for (const a of asks) a.retry();
    this.releaseSyncs();
    return fresh;
  }

  /**
   * A control-plane call to worker `index`, asked again of the replacement if that worker dies and
   * rejected if the coordinator stops first. Its reply is referenced only by the caller's Promise.
   */
  ask<T>(index: number, f: (h: Comlink.Remote<HostControl>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        const w = this.list[index]!;
        const a: Ask = { retry: attempt, reject };
        w.asks.add(a);
        f(w.control).then(
          (v) => {
            if (w.asks.delete(a)) resolve(v);
          },
          (e: unknown) => {
            if (w.asks.delete(a)) reject(e);
          },
        );
      };
      attempt();
    });
  }

  /** Resolves once worker `w` has answered every message sent to it before this one. */
  sync(w: Worker): Promise<void> {
    const token = ++this.nextToken;
    return new Promise((resolve) => {
      this.syncs.set(token, resolve);
      w.out.object({ t: 'sync', token });
    });
  }

  /** Every live worker synced. */
  syncAll(): Promise<void> {
    return Promise.all(this.list.filter((w) => w.alive).map((w) => this.sync(w))).then(() => undefined);
  }

  /** A host's 'synced'. */
  synced(token: number): void {
    this.syncs.get(token)?.();
    this.syncs.delete(token);
  }

  private releaseSyncs(): void {
    for (const [token, answer] of this.syncs) {
      this.syncs.delete(token);
      answer();
    }
  }

  /** What each worker's native feed counted (counters.ts), all of its life and its predecessors'. */
  nativeCounted(): Counted[] {
    return this.counters.map((b) => new SharedCounters(b).snapshot());
  }

  /** A bare round trip to worker `index` on its data port, in µs. */
  ping(index: number): Promise<number> {
    const w = this.list[index]!;
    return new Promise((resolve, reject) => {
      w.pings.push({ t0: performance.now(), resolve, reject });
      w.data.postMessage(0);
    });
  }

  /**
   * Tells every host to stop and waits until each says 'stopped' or ends, at most `graceMs` (a host
   * answers at once; one stuck in a hook never will).
   */
  async stopAll(graceMs: number): Promise<void> {
    for (const w of this.list) {
      w.out.object({ t: 'stop' });
      w.out.flushNow();
    }
    let cap: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.list.map((w) => w.stopped)), new Promise<void>((r) => (cap = setTimeout(r, graceMs)))]);
    clearTimeout(cap);
  }

  /** After stopAll: fails whatever is still asked, and ends the threads. */
  async destroy(why: string): Promise<void> {
    this.releaseSyncs();
    for (const w of this.list) {
      this.abandon(w, why);
      for (const p of w.pings.splice(0)) p.reject(new Error(why));
    }
    await this.pool.destroy();
    for (const w of this.list) {
      w.alive = false;
      w.closePorts();
    }
  }
}
