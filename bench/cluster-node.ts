/**
 * One node of bench:cluster (bench/cluster.ts forks this file): a LockCoordinator with a store, plus
 * bare ioredis connections to the same engine for the floors, driven over the IPC channel.
 *
 * Messages in: `{ id, op, ...args }`; each is answered `{ id, ok, r }` or `{ id, ok: false, error }`.
 * Events out (not answers): `{ ev, tag, t, ... }`. Times `t` are nanoseconds of
 * process.hrtime.bigint() (CLOCK_MONOTONIC, one clock for every process of the machine) minus the
 * base the orchestrator sent at start, so they compare across processes.
 */
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { LockCoordinator } from '../src/caller/coordinator.js';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../src/core/codes.js';
import type { LockRequest } from '../src/types.js';

type Msg = { id: number; op: string } & Record<string, unknown>;

let base = 0n;
/** Nanoseconds since the orchestrator's base. */
const t = (): number => Number(process.hrtime.bigint() - base);
const now = (): number => performance.now();

let c: LockCoordinator | undefined;
/** The floors' connection: EVALSHA of a trivial script, XADD, and the JuiceFS-style baseline's first client. */
let bare: Redis | undefined;
/** A dedicated connection for the floor's XREAD BLOCK 0. */
let reader: Redis | undefined;
let sha = '';
let url = '';

/**
 * The architecture floors' worker thread (bench/cluster-thread.ts): a message to it, its own bare
 * engine command, a message back.
 */
class FloorThread {
  private readonly w: Worker;
  private next = 0;
  private readonly replies = new Map<number, (m: Record<string, unknown>) => void>();
  readonly ready: Promise<void>;

  constructor() {
    this.w = new Worker(new URL('./cluster-thread.js', import.meta.url), { workerData: { url, pid: process.pid } });
    let ready!: () => void;
    this.ready = new Promise<void>((r) => (ready = r));
    this.w.on('error', (e) => {
      console.error('bench node: the floor thread failed:', e);
      process.exit(1);
    });
    this.w.on('message', (m: Record<string, unknown>) => {
      if (m.ready === true) ready();
      else if (typeof m.xread === 'number') send({ ev: 'txread', tag: m.xread, t: t() });
      else if (typeof m.hot === 'number') hotGranted(m.hot);
      else {
        const f = this.replies.get(m.i as number);
        this.replies.delete(m.i as number);
        f?.(m);
      }
    });
  }

  ask(op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const i = ++this.next;
    return new Promise((resolve) => {
      this.replies.set(i, resolve);
      this.w.postMessage({ i, op, ...args });
    });
  }

  async quit(): Promise<void> {
    await this.ask('quit');
    await this.w.terminate();
  }
}
let thread: FloorThread | undefined;

/** Row 6's floor: the owners of this node waiting for their entry on its stream, and entries come early. */
const hotWaiting = new Map<number, () => void>();
const hotEarly = new Set<number>();

function hotGranted(owner: number): void {
  const w = hotWaiting.get(owner);
  if (w === undefined) hotEarly.add(owner);
  else {
    hotWaiting.delete(owner);
    w();
  }
}

function send(m: Record<string, unknown>): void {
  process.send!(m);
}

function req(path: string, owner: number, lockType: number, cmd: number, start = 0, len = 100): LockRequest {
  return { path, lockType, lockStart: start, lockLen: len, cmd, lockOwner: owner, lockPid: 1000 + owner };
}

function coord(): LockCoordinator {
  if (c === undefined) throw new Error('bench node: not started');
  return c;
}

async function connect(name: string): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true, connectionName: name, maxRetriesPerRequest: null, enableAutoPipelining: false });
  await r.connect();
  return r;
}

// ---- row 6's JuiceFS-style baseline: pkg/meta/redis_lock.go Setlk over WATCH/MULTI/EXEC --------

/** go-redis's per-process txLock: transactions on one key from one process run one at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(f: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const prev = this.tail;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await f();
    } finally {
      release();
    }
  }
}

const EAGAIN = 'EAGAIN';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One client of the baseline: the lock hash `ikey` maps `sid_owner` to its locks (here one range,
 * "W,start,end"); `locked<sid>` is the session's index. What one try sends, as go-redis does it:
 * WATCH, HGETALL (or HGET for an unlock), then MULTI ... EXEC in one pipeline, then UNWATCH; a
 * refused EXEC (the key changed) retries at once up to 50 times with rand % (i+1)^2 ms between; a
 * conflict (EAGAIN) sleeps 1 ms (a write lock) and tries again.
 */
class JuiceClient {
  constructor(
    private readonly r: Redis,
    private readonly mutex: Mutex,
    private readonly ikey: string,
    private readonly lkey: string,
    private readonly lockedKey: string,
  ) {}

  private async txn(f: () => Promise<'ok' | 'retry' | typeof EAGAIN>): Promise<'ok' | typeof EAGAIN> {
    return this.mutex.run(async () => {
      for (let i = 0; i < 50; i++) {
        await this.r.watch(this.ikey);
        let res: 'ok' | 'retry' | typeof EAGAIN;
        try {
          res = await f();
        } finally {
          await this.r.unwatch();
        }
        if (res !== 'retry') return res;
        const ms = Math.floor(Math.random() * 2 ** 31) % ((i + 1) * (i + 1));
        if (ms > 0) await sleep(ms);
      }
      throw new Error('baseline: transaction failed 50 times');
    });
  }

  async lock(start: number, end: number): Promise<void> {
    for (;;) {
      const r = await this.txn(async () => {
        const owners = await this.r.hgetall(this.ikey);
        delete owners[this.lkey];
        // A write lock conflicts with every overlapping lock of another owner.
        for (const d of Object.values(owners)) {
          const [, s, e] = d.split(',');
          if (end >= Number(s) && start <= Number(e)) return EAGAIN;
        }
        const ex = await this.r.multi().hset(this.ikey, this.lkey, `W,${start},${end}`).sadd(this.lockedKey, this.ikey).exec();
        return ex === null ? 'retry' : 'ok';
      });
      if (r === 'ok') return;
      await sleep(1);
    }
  }

  async unlock(): Promise<void> {
    await this.txn(async () => {
      const d = await this.r.hget(this.ikey, this.lkey);
      if (d === null) return 'ok';
      const keys = await this.r.hkeys(this.ikey);
      const prefix = this.lkey.slice(0, this.lkey.indexOf('_') + 1);
      const last = !keys.some((k) => k !== this.lkey && k.startsWith(prefix));
      let m = this.r.multi().hdel(this.ikey, this.lkey);
      if (last) m = m.srem(this.lockedKey, this.ikey);
      const ex = await m.exec();
      return ex === null ? 'retry' : 'ok';
    });
  }
}

const juice: Redis[] = [];

async function juiceClients(n: number, ikey: string, sid: string): Promise<JuiceClient[]> {
  while (juice.length < n) juice.push(await connect(`bench-juice-${process.pid}-${juice.length}`));
  const m = new Mutex();
  return juice.slice(0, n).map((r, i) => new JuiceClient(r, m, ikey, `${sid}_${i + 1}`, `{jfs}:locked${sid}`));
}

// ---- the operations ------------------------------------------------------------------------------

interface HotEvent {
  c: number;
  req: number;
  grant: number;
  unlock: number;
}

const ops: Record<string, (m: Msg) => Promise<unknown>> = {
  async start(m) {
    base = BigInt(m.base as string);
    url = m.url as string;
    c = await LockCoordinator.start({
      workers: m.workers as number,
      store: { url, namespace: m.namespace as string, sessionTtlMs: m.sessionTtlMs as number },
    });
    bare = await connect(`bench-bare-${process.pid}`);
    sha = (await bare.script('LOAD', 'return 1')) as string;
    thread = new FloorThread();
    await thread.ready;
    const st = await c.stats();
    return { node: st.store?.node, pid: process.pid };
  },

  /**
   * Row 1: `n` iterations, each one uncontended F_SETLK lock (timed), its unlock (timed), one bare
   * EVALSHA on `bare` (timed) and one asked of the floor thread (timed from this thread: a message
   * there, its EVALSHA, a message back), the order rotating. µs.
   */
  async seq(m) {
    const path = m.path as string;
    const n = m.n as number;
    const lock: number[] = [];
    const unlock: number[] = [];
    const floor: number[] = [];
    const threadFloor: number[] = [];
    const co = coord();
    const b = bare!;
    const th = thread!;
    const ours = async (): Promise<void> => {
      const t0 = now();
      const a = await co.lock(req(path, 1, F_WRLCK, F_SETLK));
      const t1 = now();
      const u = await co.lock(req(path, 1, F_UNLCK, F_SETLK));
      const t2 = now();
      if (a.result !== 0 || u.result !== 0) throw new Error(`seq: lock ${a.result}, unlock ${u.result}`);
      lock.push((t1 - t0) * 1000);
      unlock.push((t2 - t1) * 1000);
    };
    const bareOnce = async (): Promise<void> => {
      const t0 = now();
      await b.evalsha(sha, 0);
      floor.push((now() - t0) * 1000);
    };
    const threadOnce = async (): Promise<void> => {
      const t0 = now();
      await th.ask('eval');
      threadFloor.push((now() - t0) * 1000);
    };
    const order = [ours, bareOnce, threadOnce];
    for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) await order[(i + k) % 3]!();
    return { lock, unlock, floor, threadFloor };
  },

  /** Takes a write lock on [0, 100) as `owner`, waiting if need be. */
  async hold(m) {
    const r = await coord().lock(req(m.path as string, m.owner as number, F_WRLCK, F_SETLKW));
    if (r.result !== 0) throw new Error(`hold: ${r.result}`);
    return t();
  },

  /** Starts an F_SETLKW of [0, 100) as `owner`; event 'granted' (tag) when it resolves. */
  async wait(m) {
    const tag = m.tag;
    void coord()
      .lock(req(m.path as string, m.owner as number, F_WRLCK, F_SETLKW))
      .then((r) => send({ ev: 'granted', tag, t: t(), result: r.result }));
    return t();
  },

  /** Unlocks [0, 100) of `owner`: the times just before the call and when it resolved. */
  async unlock(m) {
    const t0 = t();
    const r = await coord().lock(req(m.path as string, m.owner as number, F_UNLCK, F_SETLK));
    const t1 = t();
    if (r.result !== 0) throw new Error(`unlock: ${r.result}`);
    return { t0, t1 };
  },

  /** The floor's reader: XREAD BLOCK 0 on its own connection; event 'xread' (tag) when it returns. */
  async xarm(m) {
    reader ??= await connect(`bench-xread-${process.pid}`);
    const tag = m.tag;
    void reader.xread('BLOCK', 0, 'STREAMS', m.key as string, '$').then(() => send({ ev: 'xread', tag, t: t() }));
    return reader.options.connectionName;
  },

  /** The floor's writer: the time just before XADD. */
  async xadd(m) {
    const t0 = t();
    await bare!.xadd(m.key as string, 'MAXLEN', '1000', '*', 'f', '1');
    return t0;
  },

  /**
   * Row 2's architecture floor, reader: XREAD BLOCK 0 in the floor thread; event 'txread' (tag)
   * when its message that XREAD returned reaches this thread.
   */
  async txarm(m) {
    const r = await thread!.ask('xarm', { key: m.key, tag: m.tag });
    return r.name;
  },

  /** Row 2's architecture floor, writer: the time just before this thread asks the floor thread to XADD. */
  async txadd(m) {
    const t0 = t();
    await thread!.ask('xadd', { key: m.key });
    return t0;
  },

  /** Row 4, ours: `lanes` lanes, each awaiting lock then unlock on its files in turn, for `ms`. Requests/s. */
  async pipe(m) {
    const files = m.files as string[];
    const lanes = m.lanes as number;
    const ms = m.ms as number;
    const co = coord();
    const F = files.length;
    let done = 0;
    let bad = 0;
    const t0 = now();
    const deadline = t0 + ms;
    const lane = async (i: number): Promise<void> => {
      for (let j = 0; now() < deadline; j++) {
        const p = files[(i + lanes * j) % F]!;
        const a = await co.lock(req(p, i + 1, F_WRLCK, F_SETLK, i * 16, 8));
        const b = await co.lock(req(p, i + 1, F_UNLCK, F_SETLK, i * 16, 8));
        bad |= a.result | b.result;
        done += 2;
      }
    };
    await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
    if (bad !== 0) throw new Error('pipe: a lock or unlock failed');
    return { ops: done / ((now() - t0) / 1000), requests: done };
  },

  /** Row 4, floor: `lanes` bare EVALSHA in flight on one connection for `ms`. Round trips/s. */
  async pipeFloor(m) {
    const lanes = m.lanes as number;
    const ms = m.ms as number;
    const b = bare!;
    let done = 0;
    const t0 = now();
    const deadline = t0 + ms;
    const lane = async (): Promise<void> => {
      while (now() < deadline) {
        await b.evalsha(sha, 0);
        done++;
      }
    };
    await Promise.all(Array.from({ length: lanes }, () => lane()));
    return done / ((now() - t0) / 1000);
  },

  /** This node's session counters. */
  async stats() {
    const s = await coord().stats();
    return s.store;
  },

  /**
   * Row 6: `clients` owners each loop F_SETLKW write lock on [0, 100) of `path`, then unlock, until
   * `ms` ran out (a cycle under way finishes). Every cycle's times: request, grant, unlock call.
   */
  async hot(m) {
    const co = coord();
    const path = m.path as string;
    const events: HotEvent[] = [];
    const stopAt = t() + (m.ms as number) * 1e6;
    const owner0 = m.owner0 as number;
    const client = async (k: number): Promise<void> => {
      const owner = owner0 + k;
      while (t() < stopAt) {
        const t0 = t();
        const a = await co.lock(req(path, owner, F_WRLCK, F_SETLKW));
        const t1 = t();
        if (a.result !== 0) throw new Error(`hot: lock ${a.result}`);
        const t2 = t();
        const u = await co.lock(req(path, owner, F_UNLCK, F_SETLK));
        if (u.result !== 0) throw new Error(`hot: unlock ${u.result}`);
        events.push({ c: owner, req: t0, grant: t1, unlock: t2 });
      }
    };
    await Promise.all(Array.from({ length: m.clients as number }, (_, k) => client(k)));
    return events;
  },

  /** Row 6's baseline: the same loop over JuiceClient (WATCH/MULTI/EXEC tries, 1 ms polls). */
  async hotJuice(m) {
    const clients = await juiceClients(m.clients as number, m.key as string, m.sid as string);
    const events: HotEvent[] = [];
    const stopAt = t() + (m.ms as number) * 1e6;
    const client = async (k: number): Promise<void> => {
      const cl = clients[k]!;
      while (t() < stopAt) {
        const t0 = t();
        await cl.lock(0, 99);
        const t1 = t();
        const t2 = t();
        await cl.unlock();
        events.push({ c: k, req: t0, grant: t1, unlock: t2 });
      }
    };
    await Promise.all(clients.map((_, k) => client(k)));
    return events;
  },

  /**
   * Row 6's architecture floor: the same owners and loop as `hot`, each lock and unlock one message
   * to the floor thread, one bare script there (HOT_LOCK, HOT_UNLOCK in cluster-thread.ts: a holder
   * key and a FIFO queue, no lock rules, no records, no versions, no sessions) and one message back;
   * a queued lock waits for its owner's entry on this node's stream (`prefix` + `node`), read by the
   * thread's XREAD BLOCK reader and posted here. The bench deleted the keys before the round.
   */
  async hotFloor(m) {
    const th = thread!;
    const prefix = m.prefix as string;
    const node = m.node as number;
    const keys = [`${prefix}holder`, `${prefix}queue`];
    const stream = `${prefix}s:${node}`;
    const events: HotEvent[] = [];
    await th.ask('harm', { key: stream });
    const stopAt = t() + (m.ms as number) * 1e6;
    const owner0 = m.owner0 as number;
    const granted = (owner: number): Promise<void> => {
      if (hotEarly.delete(owner)) return Promise.resolve();
      return new Promise((r) => hotWaiting.set(owner, r));
    };
    const client = async (k: number): Promise<void> => {
      const owner = owner0 + k;
      const me = `${node}|${owner}`;
      while (t() < stopAt) {
        const t0 = t();
        const a = await th.ask('hlock', { keys, me });
        if (a.r !== 1) await granted(owner);
        const t1 = t();
        const t2 = t();
        await th.ask('hunlock', { keys, prefix: `${prefix}s:` });
        events.push({ c: owner, req: t0, grant: t1, unlock: t2 });
      }
    };
    await Promise.all(Array.from({ length: m.clients as number }, (_, k) => client(k)));
    await th.ask('hend', { key: stream });
    if (hotWaiting.size + hotEarly.size > 0) throw new Error(`hotFloor: ${hotWaiting.size} owners still waiting, ${hotEarly.size} entries unclaimed`);
    return events;
  },

  async stop() {
    await c?.stop();
    c = undefined;
    await thread?.quit();
    thread = undefined;
    for (const r of [bare, reader, ...juice]) r?.disconnect();
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on('message', (m: Msg) => {
  const f = ops[m.op];
  if (f === undefined) {
    send({ id: m.id, ok: false, error: `unknown op ${m.op}` });
    return;
  }
  f(m).then(
    (r) => send({ id: m.id, ok: true, r }),
    (e: unknown) => send({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
send({ ev: 'ready' });
