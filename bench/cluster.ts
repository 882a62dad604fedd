/**
 * Cluster benchmark: one lock space shared by several nodes on Redis (`LockCoordinator.start({ store })`,
 * API.md "One lock space across machines"), each row against a floor measured in the same run on
 * the same redis-server, samples of ours and of the floor interleaved so that machine noise hits both.
 *
 *   npm run bench:cluster        (build, then node dist/bench/cluster.js; needs redis-server)
 *
 * The bench starts its own redis-server (loopback, a free port, a temporary directory, no
 * persistence), creates the namespace with no grace period (a node alone opens it first, as the
 * tests do: otherwise every first grant waits one sessionTtlMs), and runs every node as a separate
 * process (bench/cluster-node.ts, forked; { workers: 1 } each unless --workers=N). Cross-process
 * times come from process.hrtime.bigint() (CLOCK_MONOTONIC, one clock for the machine).
 *
 * Rows (ours / floor):
 * 1. seq: one node, one file, uncontended F_SETLK lock then its unlock, each call timed, one bare
 *    EVALSHA of `return 1` on the node's own ioredis connection between them (order alternating).
 *    Judged per call (the p50 of every lock and unlock call) against the bare round trip's p50,
 *    target <= 1.5; a lock+unlock pair against one bare round trip is printed too. Beside them, not
 *    judged, the architecture floor: the same bare EVALSHA done by a worker thread of the node
 *    process on its own connection, asked by a message from the node's main thread and answered by
 *    one (bench/cluster-thread.ts), the least any lock call costs when actors live on worker threads.
 * 2. wake: node A holds [0, 100) of a file, node B waits with F_SETLKW (its record is in the
 *    engine before the unlock: polled); from just before A's unlock call to B's promise resolving.
 *    Then B holds and A waits. Floor: a stream echo on the same engine between the same two
 *    processes: XREAD BLOCK 0 on one's dedicated connection (blocked: polled in CLIENT LIST),
 *    from just before XADD on the other's connection to XREAD returned. Target p50 <= 2x. The
 *    architecture floor beside it, not judged: the same echo with each end in a worker thread of
 *    its process (a message to the writer's thread, a message from the reader's).
 * 3. idle: A holds, B waits, nothing else for --idle-ms (5 s): the engine's commands from INFO
 *    (stats and commandstats deltas, this bench's INFO excluded; these count the commands scripts
 *    run too) and, to tell who sent what, MONITOR: commands sent by clients, and among them the
 *    renewals (EVALSHA of the RENEW script, by its SHA-1). Each node renews every
 *    renewEveryMs = min(sessionTtlMs / 4, 500) ms, one EVALSHA. Target: no command beyond them.
 * 4. pipe: two nodes, 256 lanes each (--lanes), each lane awaiting F_SETLK lock then unlock of its
 *    own range on files (lane + 256 j) mod 5,000 of its node's half of 10,000 files; requests/s
 *    summed over both nodes. Floor: the same two processes, 256 bare EVALSHA in flight each on
 *    their own connections. Target >= 0.5.
 * 5. kill: a holder node (own process, sessionTtlMs 2000) holds a lock, a waiter on another node
 *    waits; kill -9 the holder; from just before the kill to the waiter's grant. Target <=
 *    sessionTtlMs + 1 s (API.md); printed also as a ratio to that bound and to sessionTtlMs.
 * 6. hot: one file, 3 nodes, 4 owners each (--clients), every owner loops F_SETLKW write lock of
 *    [0, 100) then unlock. Ops = lock cycles granted per second; wake-up = from the unlock call of a
 *    cycle to the grant of the next when that request was already waiting. Baseline in the same
 *    processes with the same owners: JuiceFS's Setlk (pkg/meta/redis_lock.go) on a hash per file,
 *    each try WATCH / HGETALL / MULTI HSET SADD EXEC / UNWATCH under a per-process mutex of the
 *    key, a refused EXEC retried, a conflict polled again after 1 ms. Targets: ops >= 3x, wake-up
 *    p50 <= 0.5x. Mutual exclusion is checked on each contender's merged timeline (the three nodes'
 *    cycles). Beside them, not judged: the CPU time (user + system, all threads, /proc/PID/stat) of
 *    the three node processes and redis-server per cycle, redis-server's part of it
 *    (`*_cpu_engine_us_per_cycle`), and how many of the machine's cores that kept busy. And a third
 *    contender, not judged, the architecture floor (`hot_floor_*`): the prescribed shape with no
 *    lock rules, as cheap as it goes, in the same processes with the same owners: each lock and
 *    unlock one message to the node's floor thread (bench/cluster-thread.ts), one bare script there
 *    on its own connection and one message back; lock = the holder key empty: set it to me, else
 *    RPUSH me on a queue; unlock = LPOP the queue: someone, the holder key becomes them and XADD of
 *    their owner to their node's stream, no one, DEL the holder key. A queued owner waits for its
 *    entry, read by one XREAD BLOCK reader per node in that thread and posted to the main thread.
 *    No versions, records or sessions; keys under `{hotfloor}:`, deleted before each round.
 *    Printed: floor / baseline (cycles/s and wake-up, against the 3x and 0.5x targets) and ours /
 *    floor (cycles/s, wake-up, CPU per cycle).
 * 7. Not run here: a coordinator without a store is what bench:api measures; nothing in this
 *    bench changes it (run `node dist/bench/api.js` separately).
 *
 * Order: a warm-up round (discarded) and --rounds rounds (default 5) of rows 1, 2 and 4 (in rows 1
 * and 2, one sample of ours and of each floor in turn, the order rotating); row 3
 * once; a warm-up round and --rounds rounds of row 6 (a third node started for it, stopped after);
 * row 5 --kills times (default 3). Each value is the median over rounds of the round's value (a
 * latency: of the round's p50); a ratio is the median of the per-round ratios. Row 4 runs ours and
 * the floor one after the other, the order alternating by round; row 6 runs ours, the baseline and
 * the architecture floor one after the other, the order rotating by round (round r starts with the
 * r mod 3-th of them, the warm-up with ours), so none always runs first. Beside the judged rows:
 * the holder's unlock call alone (row 2), engine calls per request from the nodes' own counters,
 * and for row 6 the share of wake-ups that crossed nodes and the fairness (fewest / most cycles of
 * one owner in a round).
 * Options: --rounds=N --seq=N (row 1 iterations per round, 1,000) --wake=N (row 2 samples per
 * round, 100) --pipe-ms=MS (1,000) --hot-ms=MS (1,500) --idle-ms=MS (5,000) --kills=N (3)
 * --lanes=N (256) --clients=N (4) --workers=N (1) --ttl=MS (sessionTtlMs of the nodes of rows
 * 1-4 and 6, default 10,000). Writes bench/results/cluster.json ({ rows, floors, ratios, meta }).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RedisServer } from '../driver/redis-server.js';
import { openStore } from '../src/store/index.js';
import { RENEW } from '../src/store/lua.js';
import { median, option } from './report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS = path.join(ROOT, 'bench', 'results', 'cluster.json');
const NODE_SCRIPT = fileURLToPath(new URL('./cluster-node.js', import.meta.url));

const num = (name: string, dflt: number): number => {
  const v = option(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a number, got ${v}`);
    process.exit(2);
  }
  return n;
};
const ROUNDS = num('rounds', 5);
const SEQ_N = num('seq', 1000);
const WAKE_N = num('wake', 100);
const PIPE_MS = num('pipe-ms', 1000);
const HOT_MS = num('hot-ms', 1500);
const IDLE_MS = num('idle-ms', 5000);
const KILLS = num('kills', 3);
const LANES = num('lanes', 256);
const CLIENTS = num('clients', 4);
const WORKERS = num('workers', 1);
const TTL = num('ttl', 10_000);
const KILL_TTL = 2000;
/** How long the bench waits for one event of a node (a grant, an echo) before it fails the run. */
const EVENT_BUDGET_MS = 60_000;
const PIPE_FILES = 10_000;
const NS = 'bench';
const P = `{${NS}}:`;

const base = process.hrtime.bigint();
/** Nanoseconds since `base`, as the nodes count them. */
const t = (): number => Number(process.hrtime.bigint() - base);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- nodes ------------------------------------------------------------------------------------------

type Ev = { ev: string; tag?: number; t: number } & Record<string, unknown>;

/** A node process: requests over IPC, events by (kind, tag). */
class Node {
  readonly proc: ChildProcess;
  private nextId = 0;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly waiting = new Map<string, (e: Ev) => void>();
  private readonly early = new Map<string, Ev>();
  private readonly ready: Promise<void>;
  name = '';
  exited = false;

  constructor(readonly label: string) {
    this.proc = fork(NODE_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    this.proc.on('message', (m: { id?: number; ok?: boolean; r?: unknown; error?: string } & Partial<Ev>) => {
      if (m.ev === 'ready') return ready();
      if (m.ev !== undefined) {
        const key = `${m.ev}:${m.tag}`;
        const w = this.waiting.get(key);
        if (w === undefined) this.early.set(key, m as Ev);
        else {
          this.waiting.delete(key);
          w(m as Ev);
        }
        return;
      }
      const c = this.calls.get(m.id!);
      if (c === undefined) return;
      this.calls.delete(m.id!);
      if (m.ok) c.resolve(m.r);
      else c.reject(new Error(`${this.label}: ${m.error}`));
    });
    this.proc.on('exit', () => {
      this.exited = true;
      for (const c of this.calls.values()) c.reject(new Error(`${this.label} exited`));
      this.calls.clear();
    });
  }

  async start(url: string, sessionTtlMs: number): Promise<this> {
    await this.ready;
    const r = await this.call<{ node: string }>('start', { url, namespace: NS, sessionTtlMs, workers: WORKERS, base: base.toString() });
    this.name = r.node;
    return this;
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      // Budget: a call that never returns (a request never answered) fails the run with its name.
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`bench: node ${this.name} did not answer '${op}' within ${EVENT_BUDGET_MS / 1000} s`));
      }, EVENT_BUDGET_MS);
      const done = <V>(f: (v: V) => void) => (v: V) => {
        clearTimeout(timer);
        f(v);
      };
      this.calls.set(id, { resolve: done(resolve as (v: unknown) => void), reject: done(reject) });
      this.proc.send({ id, op, ...args });
    });
  }

  /** The event (kind, tag), whether it came already or comes later. */
  event(ev: string, tag: number): Promise<Ev> {
    const key = `${ev}:${tag}`;
    const e = this.early.get(key);
    if (e !== undefined) {
      this.early.delete(key);
      return Promise.resolve(e);
    }
    // Budget: an event that never comes (a lost wake-up, a dead node) fails the run with its name.
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`bench: no '${ev}' event (tag ${tag}) from node ${this.name} within ${EVENT_BUDGET_MS / 1000} s`));
      }, EVENT_BUDGET_MS);
      this.waiting.set(key, (e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    await this.call('stop').catch(() => {});
    await gone;
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

// ---- helpers ----------------------------------------------------------------------------------------

/** q-quantile (nearest rank). */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Polls `f` (an engine read, not timed) until it holds; fails after `ms`. */
async function until(what: string, f: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await f())) {
    if (performance.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A waiting record of `file` is in the engine. */
function queued(obs: Redis, file: string): Promise<void> {
  return until(`a waiter on ${file}`, async () => Object.values(await obs.hgetall(`${P}r:${file}`)).some((v) => v.split('|')[1] === 'w'));
}

/** The connection named `name` is blocked (XREAD BLOCK). */
function blocked(obs: Redis, name: string): Promise<void> {
  return until(`${name} blocked`, async () => {
    const list = (await obs.client('LIST')) as string;
    return list.split('\n').some((l) => l.includes(` name=${name} `) && / flags=\w*b/.test(l));
  });
}

/** Series of one row across rounds. */
class Series {
  readonly rounds = new Map<string, number[]>();
  add(name: string, v: number): void {
    let r = this.rounds.get(name);
    if (r === undefined) this.rounds.set(name, (r = []));
    r.push(v);
  }
  get(name: string): number[] {
    return this.rounds.get(name) ?? [];
  }
  med(name: string): number {
    return median(this.get(name));
  }
  /** Median of the per-round ratios num / den. */
  ratio(num: string, den: string): number {
    const a = this.get(num);
    const b = this.get(den);
    return median(a.map((x, i) => x / b[i]!));
  }
}

interface OutRow {
  name: string;
  value: number;
  unit: string;
  spread?: [number, number];
}
interface OutRatio {
  name: string;
  row: string;
  value: number;
  floor: string;
  floorValue: number;
  ratio: number;
  target: string;
  met: boolean | null;
  note?: string;
}

const rows: OutRow[] = [];
const floors: Record<string, { value: number; unit: string; spread?: [number, number] }> = {};
const ratios: OutRatio[] = [];

const r2 = (x: number): number => Math.round(x * 100) / 100;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

function spread(xs: number[]): [number, number] | undefined {
  return xs.length > 1 ? [r2(Math.min(...xs)), r2(Math.max(...xs))] : undefined;
}

function row(name: string, xs: number[], unit: string): number {
  const v = r2(median(xs));
  rows.push({ name, value: v, unit, spread: spread(xs) });
  return v;
}

function floorRow(name: string, xs: number[], unit: string): number {
  const v = r2(median(xs));
  floors[name] = { value: v, unit, spread: spread(xs) };
  return v;
}

function judge(name: string, ours: string, floor: string, ratio: number, target?: { op: '<=' | '>='; x: number }, note?: string): void {
  const o = rows.find((r) => r.name === ours) ?? floors[ours];
  const f = floors[floor] ?? rows.find((r) => r.name === floor);
  const v = r3(ratio);
  ratios.push({
    name,
    row: ours,
    value: o?.value ?? Number.NaN,
    floor,
    floorValue: f?.value ?? Number.NaN,
    ratio: v,
    target: target === undefined ? '' : `${target.op} ${target.x}`,
    met: target === undefined ? null : target.op === '<=' ? v <= target.x : v >= target.x,
    ...(note === undefined ? {} : { note }),
  });
}

// ---- engine round trips per request (a diagnostic: the nodes' own counters) -------------------------

interface StoreCounters {
  roundTrips: number;
  commits: number;
  stale: number;
  renewals: number;
}

async function counters(nodes: Node[]): Promise<StoreCounters> {
  const v = await Promise.all(nodes.map((n) => n.call<StoreCounters>('stats')));
  return v.reduce((a, b) => ({ roundTrips: a.roundTrips + b.roundTrips, commits: a.commits + b.commits, stale: a.stale + b.stale, renewals: a.renewals + b.renewals }));
}

/** Per request of a measured series: engine calls (renewals excluded), commits, stale replies. */
const diag = new Map<string, { requests: number; roundTrips: number; commits: number; stale: number }>();

function account(name: string, before: StoreCounters, after: StoreCounters, requests: number): void {
  const d = diag.get(name) ?? { requests: 0, roundTrips: 0, commits: 0, stale: 0 };
  d.requests += requests;
  d.roundTrips += after.roundTrips - before.roundTrips - (after.renewals - before.renewals);
  d.commits += after.commits - before.commits;
  d.stale += after.stale - before.stale;
  diag.set(name, d);
}

function perRequest(): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [k, d] of diag) out[k] = { requests: d.requests, roundTripsPerRequest: r3(d.roundTrips / d.requests), commitsPerRequest: r3(d.commits / d.requests), stalePerRequest: r3(d.stale / d.requests) };
  return out;
}

// ---- row 1: uncontended lock + unlock, one node ---------------------------------------------------

async function seqRound(n: Node, s: Series, keep: boolean): Promise<void> {
  const c0 = await counters([n]);
  const r = await n.call<{ lock: number[]; unlock: number[]; floor: number[]; threadFloor: number[] }>('seq', { path: '/bench/seq', n: SEQ_N });
  if (!keep) return;
  account('seq', c0, await counters([n]), 2 * SEQ_N);
  const calls = [...r.lock, ...r.unlock];
  const pairs = r.lock.map((x, i) => x + r.unlock[i]!);
  s.add('seq_call_p50_us', quantile(calls, 0.5));
  s.add('seq_pair_p50_us', quantile(pairs, 0.5));
  s.add('seq_lock_p50_us', quantile(r.lock, 0.5));
  s.add('seq_unlock_p50_us', quantile(r.unlock, 0.5));
  s.add('seq_call_p99_us', quantile(calls, 0.99));
  s.add('bare_evalsha_p50_us', quantile(r.floor, 0.5));
  s.add('bare_evalsha_p99_us', quantile(r.floor, 0.99));
  s.add('thread_evalsha_p50_us', quantile(r.threadFloor, 0.5));
}

// ---- row 2: cross-node wake-up ----------------------------------------------------------------------

class WakeRow {
  private holder: Node;
  private waiter: Node;
  private tag = 0;
  private readonly file = '/bench/wake';
  private readonly stream = `bench-echo-${process.pid}`;

  constructor(
    private readonly a: Node,
    private readonly b: Node,
    private readonly obs: Redis,
  ) {
    this.holder = a;
    this.waiter = b;
  }

  async init(): Promise<void> {
    await this.holder.call('hold', { path: this.file, owner: 1 });
  }

  /** One wake-up of ours, µs; the waiter then holds. */
  private async ours(): Promise<number> {
    const tag = ++this.tag;
    const granted = this.waiter.event('granted', tag);
    await this.waiter.call('wait', { path: this.file, owner: 1, tag });
    await queued(this.obs, this.file);
    await sleep(1);
    const u = await this.holder.call<{ t0: number; t1: number }>('unlock', { path: this.file, owner: 1 });
    const e = await granted;
    if (e.result !== 0) throw new Error(`wake: granted with ${String(e.result)}`);
    [this.holder, this.waiter] = [this.waiter, this.holder];
    this.unlockUs.push((u.t1 - u.t0) / 1000);
    return (e.t - u.t0) / 1000;
  }

  /** The holder's unlock call alone (its promise resolved), µs: a diagnostic of where a wake-up goes. */
  private unlockUs: number[] = [];

  /**
   * One stream echo between the same processes, µs (direction alternating like ours); with `t`
   * ('t'), each end in a worker thread of its process (bench/cluster-thread.ts): from just before
   * the writer's main thread asks its thread to XADD to the reader's main thread hearing from its
   * thread that XREAD returned.
   */
  private async floor(i: number, t: '' | 't' = ''): Promise<number> {
    const tag = ++this.tag;
    const [rd, wr] = i % 4 < 2 ? [this.b, this.a] : [this.a, this.b];
    const got = rd.event(`${t}xread`, tag);
    const name = await rd.call<string>(`${t}xarm`, { key: this.stream, tag });
    await blocked(this.obs, name);
    await sleep(1);
    const t0 = await wr.call<number>(`${t}xadd`, { key: this.stream });
    const e = await got;
    return (e.t - t0) / 1000;
  }

  async round(s: Series | undefined): Promise<void> {
    const ours: number[] = [];
    const floor: number[] = [];
    const threadFloor: number[] = [];
    this.unlockUs = [];
    const order = [async () => ours.push(await this.ours()), async (i: number) => floor.push(await this.floor(i)), async (i: number) => threadFloor.push(await this.floor(i, 't'))];
    for (let i = 0; i < WAKE_N; i++) for (let k = 0; k < 3; k++) await order[(i + k) % 3]!(i);
    if (s === undefined) return;
    s.add('wake_p50_us', quantile(ours, 0.5));
    s.add('wake_p99_us', quantile(ours, 0.99));
    s.add('wake_holder_unlock_p50_us', quantile(this.unlockUs, 0.5));
    s.add('stream_echo_p50_us', quantile(floor, 0.5));
    s.add('stream_echo_p99_us', quantile(floor, 0.99));
    s.add('thread_echo_p50_us', quantile(threadFloor, 0.5));
  }

  async finish(): Promise<void> {
    await this.holder.call('unlock', { path: this.file, owner: 1 });
  }
}

// ---- row 4: pipelined, 10,000 files, two nodes --------------------------------------------------------

const pipeFiles = (k: number): string[] => Array.from({ length: PIPE_FILES / 2 }, (_, i) => `/bench/pipe/f${2 * i + k}`);

async function pipeRound(nodes: Node[], s: Series | undefined, r: number): Promise<void> {
  const ours = async (): Promise<number> => {
    const c0 = await counters(nodes);
    const v = await Promise.all(nodes.map((n, k) => n.call<{ ops: number; requests: number }>('pipe', { files: pipeFiles(k), lanes: LANES, ms: PIPE_MS })));
    if (s !== undefined) account('pipe', c0, await counters(nodes), v.reduce((a, b) => a + b.requests, 0));
    return v.reduce((a, b) => a + b.ops, 0);
  };
  const floor = async (): Promise<number> => {
    const v = await Promise.all(nodes.map((n) => n.call<number>('pipeFloor', { lanes: LANES, ms: PIPE_MS })));
    return v.reduce((a, b) => a + b, 0);
  };
  let o: number;
  let f: number;
  if (r % 2 === 0) {
    o = await ours();
    f = await floor();
  } else {
    f = await floor();
    o = await ours();
  }
  s?.add('pipe_ops_2nodes', o);
  s?.add('pipe_bare_evalsha_rt', f);
}

// ---- row 3: the engine while a waiter blocks --------------------------------------------------------

async function idleRow(a: Node, b: Node, obs: Redis, url: string): Promise<Record<string, unknown>> {
  const file = '/bench/idle';
  await a.call('hold', { path: file, owner: 1 });
  const granted = b.event('granted', 1_000_000);
  await b.call('wait', { path: file, owner: 1, tag: 1_000_000 });
  await queued(obs, file);
  // Let whatever the wait started settle (its answer, the nodes' next renewals).
  await sleep(1000);

  const renewSha = createHash('sha1').update(RENEW).digest('hex');
  const mon = new Redis(url, { lazyConnect: true, connectionName: 'bench-monitor' });
  await mon.connect();
  const monitor = await mon.monitor();
  const sent = new Map<string, number>();
  let renewals = 0;
  let inScripts = 0;
  // The window is the stream between this bench's two INFO calls as MONITOR shows them: the same
  // commands, in the engine's order, that the two INFO snapshots enclose.
  let infos = 0;
  let closed!: () => void;
  const windowClosed = new Promise<void>((r) => (closed = r));
  const obsId = String(await obs.client('ID'));
  const obsAddr = ((await obs.client('LIST', 'ID', obsId)) as string).match(/ addr=(\S+)/)?.[1] ?? '';
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const cmd = args[0]!.toLowerCase();
    if (source.endsWith(obsAddr)) {
      if (cmd === 'info' && ++infos === 2) closed();
      return;
    }
    if (infos !== 1) return;
    if (source === 'lua' || source.endsWith(' lua')) {
      inScripts++;
      return;
    }
    if (cmd === 'evalsha' && args[1] === renewSha) renewals++;
    sent.set(cmd, (sent.get(cmd) ?? 0) + 1);
  });
  await sleep(50);

  const info = async (): Promise<{ total: number; byCmd: Map<string, number> }> => {
    const s = (await obs.info('stats', 'commandstats')) as string;
    const total = Number(s.match(/total_commands_processed:(\d+)/)?.[1]);
    const byCmd = new Map<string, number>();
    for (const m of s.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) byCmd.set(m[1]!, Number(m[2]));
    return { total, byCmd };
  };
  const st = async (): Promise<number> => {
    const v = await Promise.all([a, b].map((n) => n.call<{ renewals: number }>('stats')));
    return v.reduce((x, y) => x + y.renewals, 0);
  };
  const r0 = await st();
  const i0 = await info();
  const t0 = performance.now();
  await sleep(IDLE_MS);
  const i1 = await info();
  const secs = (performance.now() - t0) / 1000;
  const r1 = await st();
  await windowClosed;
  // monitor() answers with a connection of its own: closing `mon` leaves it attached, and the
  // engine would feed every command of the rows after this one to it.
  await monitor.quit().catch(() => {});
  monitor.disconnect();
  await mon.quit().catch(() => {});
  mon.disconnect();

  // This bench's own: one INFO counted in the window (the first; each counts after it ran) and the
  // monitor's (MONITOR runs nothing per command).
  const own = new Set(['info', 'monitor', 'quit']);
  let engineTotal = i1.total - i0.total;
  const byCmd: Record<string, number> = {};
  for (const [k, v] of i1.byCmd) {
    const d = v - (i0.byCmd.get(k) ?? 0);
    if (d === 0) continue;
    if (own.has(k)) {
      engineTotal -= d;
      continue;
    }
    byCmd[k] = d;
  }
  const clientCmds = [...sent.values()].reduce((x, y) => x + y, 0);
  const result = {
    seconds: r2(secs),
    engineCommandsTotal: engineTotal,
    engineCommandsByName: byCmd,
    clientCommands: clientCmds,
    clientCommandsByName: Object.fromEntries(sent),
    commandsRunByScripts: inScripts,
    renewalEvalsha: renewals,
    renewalsCountedByNodes: r1 - r0,
    expectedRenewals: r2((2 * secs * 1000) / Math.min(Math.floor(TTL / 4), 500)),
  };

  // Release: B is granted, then B unlocks.
  await a.call('unlock', { path: file, owner: 1 });
  await granted;
  await b.call('unlock', { path: file, owner: 1 });
  return result;
}

// ---- row 6: one hot file, 3 nodes ------------------------------------------------------------------

interface HotEvent {
  c: number;
  req: number;
  grant: number;
  unlock: number;
}

/**
 * Cycles granted per second in [from, to], the wake-ups (µs; those where the next holder is on
 * another node apart too) and overlapping holds (must be 0).
 */
function hotStats(all: HotEvent[][], from: number, to: number): { ops: number; wakes: number[]; crossWakes: number[]; overlaps: number; perOwner: number[] } {
  const cycles = all.flatMap((evs, node) => evs.map((e) => ({ ...e, node }))).sort((x, y) => x.grant - y.grant);
  let overlaps = 0;
  const wakes: number[] = [];
  const crossWakes: number[] = [];
  let ops = 0;
  for (let k = 0; k < cycles.length; k++) {
    const c = cycles[k]!;
    if (c.grant >= from && c.grant <= to) ops++;
    if (k === 0) continue;
    const prev = cycles[k - 1]!;
    if (c.grant < prev.unlock) overlaps++;
    else if (c.req < prev.unlock && c.grant <= to) {
      wakes.push((c.grant - prev.unlock) / 1000);
      if (c.node !== prev.node) crossWakes.push((c.grant - prev.unlock) / 1000);
    }
  }
  const owners = new Map<string, number>();
  for (const c of cycles) if (c.grant >= from && c.grant <= to) owners.set(`${c.node}/${c.c}`, (owners.get(`${c.node}/${c.c}`) ?? 0) + 1);
  const perOwner = [...owners.values()];
  while (perOwner.length < all.length * CLIENTS) perOwner.push(0);
  return { ops: ops / ((to - from) / 1e9), wakes, crossWakes, overlaps, perOwner };
}

/** CPU time (user + system, every thread, µs) the processes `pids` have used so far, from /proc. */
function cpuUs(pids: readonly number[]): number {
  const tick = 1e6 / 100; // USER_HZ
  let sum = 0;
  for (const pid of pids) {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    sum += (Number(f[11]) + Number(f[12])) * tick; // utime, stime: fields 14 and 15 of stat(5)
  }
  return sum;
}

/** Row 6's architecture floor: its keys (holder, queue, one stream per node), under their own prefix. */
const HOT_FLOOR = '{hotfloor}:';

async function hotRound(nodes: Node[], s: Series | undefined, r: number, overlaps: { ours: number; juice: number; floor: number }, cpuPids: readonly number[], obs: Redis): Promise<void> {
  const cycles = (ev: HotEvent[][]): number => ev.reduce((a, b) => a + b.length, 0);
  const ours = async (): Promise<void> => {
    const c0 = await counters(nodes);
    const from = t();
    const cpu0 = cpuUs(cpuPids);
    const engine0 = cpuUs(cpuPids.slice(-1));
    const ev = await Promise.all(nodes.map((n, k) => n.call<HotEvent[]>('hot', { path: '/bench/hot', clients: CLIENTS, ms: HOT_MS, owner0: 1 + k * 100 })));
    const cpu = cpuUs(cpuPids) - cpu0;
    const engine = cpuUs(cpuPids.slice(-1)) - engine0;
    const wall = (t() - from) / 1000;
    s?.add('hot_cpu_us_per_cycle', cpu / cycles(ev));
    s?.add('hot_cpu_engine_us_per_cycle', engine / cycles(ev));
    s?.add('hot_cpu_cores_busy', cpu / wall);
    const h = hotStats(ev, from, from + HOT_MS * 1e6);
    if (s !== undefined) account('hot', c0, await counters(nodes), 2 * ev.reduce((a, b) => a + b.length, 0));
    overlaps.ours += h.overlaps;
    s?.add('hot_ops_3nodes', h.ops);
    s?.add('hot_wake_p50_us', quantile(h.wakes, 0.5));
    s?.add('hot_cross_node_wake_p50_us', quantile(h.crossWakes, 0.5));
    s?.add('hot_cross_node_share', h.crossWakes.length / h.wakes.length);
    s?.add('hot_fairness', Math.min(...h.perOwner) / Math.max(...h.perOwner));
  };
  const juice = async (): Promise<void> => {
    const from = t();
    const cpu0 = cpuUs(cpuPids);
    const engine0 = cpuUs(cpuPids.slice(-1));
    const ev = await Promise.all(nodes.map((n, k) => n.call<HotEvent[]>('hotJuice', { key: '{jfs}:lockp:hot', sid: String(k + 1), clients: CLIENTS, ms: HOT_MS })));
    const cpu = cpuUs(cpuPids) - cpu0;
    const engine = cpuUs(cpuPids.slice(-1)) - engine0;
    const wall = (t() - from) / 1000;
    s?.add('juicefs_hot_cpu_us_per_cycle', cpu / cycles(ev));
    s?.add('juicefs_hot_cpu_engine_us_per_cycle', engine / cycles(ev));
    s?.add('juicefs_hot_cpu_cores_busy', cpu / wall);
    const h = hotStats(ev, from, from + HOT_MS * 1e6);
    overlaps.juice += h.overlaps;
    s?.add('juicefs_hot_ops_3nodes', h.ops);
    s?.add('juicefs_hot_wake_p50_us', quantile(h.wakes, 0.5));
    s?.add('juicefs_hot_fairness', Math.min(...h.perOwner) / Math.max(...h.perOwner));
  };
  const floor = async (): Promise<void> => {
    await obs.del(`${HOT_FLOOR}holder`, `${HOT_FLOOR}queue`, ...nodes.map((_, k) => `${HOT_FLOOR}s:${k + 1}`));
    const from = t();
    const cpu0 = cpuUs(cpuPids);
    const engine0 = cpuUs(cpuPids.slice(-1));
    const ev = await Promise.all(nodes.map((n, k) => n.call<HotEvent[]>('hotFloor', { prefix: HOT_FLOOR, node: k + 1, clients: CLIENTS, ms: HOT_MS, owner0: 1 + k * 100 })));
    const cpu = cpuUs(cpuPids) - cpu0;
    const engine = cpuUs(cpuPids.slice(-1)) - engine0;
    const wall = (t() - from) / 1000;
    s?.add('hot_floor_cpu_us_per_cycle', cpu / cycles(ev));
    s?.add('hot_floor_cpu_engine_us_per_cycle', engine / cycles(ev));
    s?.add('hot_floor_cpu_cores_busy', cpu / wall);
    const h = hotStats(ev, from, from + HOT_MS * 1e6);
    overlaps.floor += h.overlaps;
    s?.add('hot_floor_ops_3nodes', h.ops);
    s?.add('hot_floor_wake_p50_us', quantile(h.wakes, 0.5));
    s?.add('hot_floor_cross_node_share', h.crossWakes.length / h.wakes.length);
    s?.add('hot_floor_fairness', Math.min(...h.perOwner) / Math.max(...h.perOwner));
  };
  const order = [ours, juice, floor];
  for (let k = 0; k < 3; k++) await order[(r + k) % 3]!();
}

// ---- row 5: kill -9 of the holder's node --------------------------------------------------------------

async function killRow(waiter: Node, obs: Redis, url: string): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    const file = `/bench/kill/${k}`;
    const holder = new Node(`holder${k}`);
    nodes.push(holder);
    await holder.start(url, KILL_TTL);
    await holder.call('hold', { path: file, owner: 1 });
    const tag = 2_000_000 + k;
    const granted = waiter.event('granted', tag);
    await waiter.call('wait', { path: file, owner: 1, tag });
    await queued(obs, file);
    // Mid-way between two of the holder's renewals, on average.
    await sleep(100 + Math.random() * 500);
    const t0 = t();
    holder.kill();
    const e = await granted;
    if (e.result !== 0) throw new Error(`kill: granted with ${String(e.result)}`);
    out.push((e.t - t0) / 1e6);
    await waiter.call('unlock', { path: file, owner: 1 });
  }
  return out;
}

// ---- main ---------------------------------------------------------------------------------------------

const started = performance.now();
const server = await RedisServer.start().catch((e: Error) => {
  console.error(`bench:cluster: ${e.message}`);
  process.exit(2);
});
const nodes: Node[] = [];
let exitCode = 0;
try {
  const obs = new Redis(server.url, { connectionName: 'bench-observer' });
  // The namespace opened with no grace period (a fresh one otherwise refuses grants for one TTL).
  await (await openStore({ url: server.url, namespace: NS, node: 'bench-init' }, {}, { graceMs: 0 })).close();

  const n1 = await new Node('node1').start(server.url, TTL);
  const n2 = await new Node('node2').start(server.url, TTL);
  nodes.push(n1, n2);
  console.log(`redis-server ${server.url}; nodes ${n1.name}, ${n2.name} (workers ${WORKERS}, sessionTtlMs ${TTL}); ${ROUNDS} rounds after a warm-up`);

  // Rows 1, 2 and 4, round by round.
  const s = new Series();
  const wake = new WakeRow(n1, n2, obs);
  await wake.init();
  for (let r = 0; r <= ROUNDS; r++) {
    const keep = r > 0 ? s : undefined;
    await seqRound(n1, s, r > 0);
    await wake.round(keep);
    await pipeRound([n1, n2], keep, r);
    process.stdout.write(r === 0 ? 'warm-up done; rounds: 1' : r < ROUNDS ? ` ${r + 1}` : '\n');
  }
  await wake.finish();

  // Row 3, two nodes alive and nothing else.
  const idle = await idleRow(n1, n2, obs, server.url);
  console.log(`idle: ${JSON.stringify(idle)}`);

  // Row 6, a third node.
  const n3 = await new Node('node3').start(server.url, TTL);
  nodes.push(n3);
  const overlaps = { ours: 0, juice: 0, floor: 0 };
  const redisPid = Number(((await obs.info('server')) as string).match(/process_id:(\d+)/)?.[1]);
  const cpuPids = [...[n1, n2, n3].map((n) => n.proc.pid!), redisPid];
  for (let r = 0; r <= ROUNDS; r++) await hotRound([n1, n2, n3], r > 0 ? s : undefined, r, overlaps, cpuPids, obs);
  await n3.stop();
  console.log(`hot: done (${ROUNDS} rounds)`);

  // Row 5.
  const kills = await killRow(n1, obs, server.url);
  console.log(`kill: ${kills.map((x) => x.toFixed(0)).join(', ')} ms`);

  // ---- the report ----
  row('seq_call_p50_us', s.get('seq_call_p50_us'), 'µs');
  row('seq_pair_p50_us', s.get('seq_pair_p50_us'), 'µs');
  row('seq_lock_p50_us', s.get('seq_lock_p50_us'), 'µs');
  row('seq_unlock_p50_us', s.get('seq_unlock_p50_us'), 'µs');
  row('seq_call_p99_us', s.get('seq_call_p99_us'), 'µs');
  floorRow('bare_evalsha_p50_us', s.get('bare_evalsha_p50_us'), 'µs');
  floorRow('bare_evalsha_p99_us', s.get('bare_evalsha_p99_us'), 'µs');
  judge('1. uncontended, per call', 'seq_call_p50_us', 'bare_evalsha_p50_us', s.ratio('seq_call_p50_us', 'bare_evalsha_p50_us'), { op: '<=', x: 1.5 }, 'judged: one lock or unlock call vs one bare EVALSHA');
  judge('1. uncontended, lock+unlock pair', 'seq_pair_p50_us', 'bare_evalsha_p50_us', s.ratio('seq_pair_p50_us', 'bare_evalsha_p50_us'), undefined, 'a pair vs one bare EVALSHA (not judged)');
  floorRow('thread_evalsha_p50_us', s.get('thread_evalsha_p50_us'), 'µs');
  judge('1. the architecture floor', 'thread_evalsha_p50_us', 'bare_evalsha_p50_us', s.ratio('thread_evalsha_p50_us', 'bare_evalsha_p50_us'), undefined, 'not judged: a worker thread\'s bare EVALSHA asked by message from the caller\'s thread vs the bare EVALSHA: the least a lock call costs with actors on worker threads');
  judge('1. per call vs the architecture floor', 'seq_call_p50_us', 'thread_evalsha_p50_us', s.ratio('seq_call_p50_us', 'thread_evalsha_p50_us'), undefined, 'not judged: what the actor, its decision and the COMMIT script add to that floor');

  row('wake_p50_us', s.get('wake_p50_us'), 'µs');
  row('wake_p99_us', s.get('wake_p99_us'), 'µs');
  row('wake_holder_unlock_p50_us', s.get('wake_holder_unlock_p50_us'), 'µs');
  floorRow('stream_echo_p50_us', s.get('stream_echo_p50_us'), 'µs');
  floorRow('stream_echo_p99_us', s.get('stream_echo_p99_us'), 'µs');
  judge('2. cross-node wake-up p50', 'wake_p50_us', 'stream_echo_p50_us', s.ratio('wake_p50_us', 'stream_echo_p50_us'), { op: '<=', x: 2 });
  floorRow('thread_echo_p50_us', s.get('thread_echo_p50_us'), 'µs');
  judge('2. the architecture floor', 'thread_echo_p50_us', 'stream_echo_p50_us', s.ratio('thread_echo_p50_us', 'stream_echo_p50_us'), undefined, 'not judged: the echo with each end in a worker thread (a message there on the writer, a message back on the reader) vs the echo: the least a wake-up costs with actors on worker threads');
  judge('2. wake-up vs the architecture floor', 'wake_p50_us', 'thread_echo_p50_us', s.ratio('wake_p50_us', 'thread_echo_p50_us'), undefined, 'not judged: what the holder\'s step (its COMMIT, a stale round trip when the waiter\'s step changed the file) and the inbox add to that floor');

  const secs = idle.seconds as number;
  const perS = (x: number): number => r2(x / secs);
  rows.push({ name: 'idle_engine_cmds_per_s', value: perS(idle.engineCommandsTotal as number), unit: 'cmd/s' });
  rows.push({ name: 'idle_client_cmds_per_s', value: perS(idle.clientCommands as number), unit: 'cmd/s' });
  floors.idle_renewals_per_s = { value: perS(idle.renewalEvalsha as number), unit: 'cmd/s' };
  const excess = (idle.clientCommands as number) - (idle.renewalEvalsha as number);
  rows.push({ name: 'idle_excess_cmds_per_s', value: perS(excess), unit: 'cmd/s' });
  ratios.push({
    name: '3. commands while a waiter blocks, beyond renewals',
    row: 'idle_excess_cmds_per_s',
    value: perS(excess),
    floor: 'idle_renewals_per_s',
    floorValue: perS(idle.renewalEvalsha as number),
    ratio: r3((idle.clientCommands as number) / Math.max(1, idle.renewalEvalsha as number)),
    target: '== 0 excess',
    met: excess === 0,
    note: `clients sent ${idle.clientCommands} commands in ${secs} s, ${idle.renewalEvalsha} of them renewals (nodes counted ${idle.renewalsCountedByNodes}, expected ${idle.expectedRenewals}); the engine ran ${idle.engineCommandsTotal} in all, ${idle.commandsRunByScripts} of them inside scripts`,
  });

  row('pipe_ops_2nodes', s.get('pipe_ops_2nodes'), 'ops/s');
  floorRow('pipe_bare_evalsha_rt', s.get('pipe_bare_evalsha_rt'), 'rt/s');
  judge('4. pipelined, 10,000 files, 2 nodes', 'pipe_ops_2nodes', 'pipe_bare_evalsha_rt', s.ratio('pipe_ops_2nodes', 'pipe_bare_evalsha_rt'), { op: '>=', x: 0.5 });

  const killMed = median(kills);
  rows.push({ name: 'kill9_grant_ms', value: r2(killMed), unit: 'ms', spread: spread(kills) });
  floors.kill9_bound_ms = { value: KILL_TTL + 1000, unit: 'ms' };
  ratios.push({
    name: '5. grant after kill -9 of the holder',
    row: 'kill9_grant_ms',
    value: r2(killMed),
    floor: 'kill9_bound_ms',
    floorValue: KILL_TTL + 1000,
    ratio: r3(killMed / (KILL_TTL + 1000)),
    target: '<= 1',
    met: Math.max(...kills) <= KILL_TTL + 1000,
    note: `median of ${kills.length} kills, met if every one is within sessionTtlMs + 1 s; ${r3(killMed / KILL_TTL)}x sessionTtlMs (${KILL_TTL} ms)`,
  });

  row('hot_ops_3nodes', s.get('hot_ops_3nodes'), 'ops/s');
  row('hot_wake_p50_us', s.get('hot_wake_p50_us'), 'µs');
  row('hot_cross_node_wake_p50_us', s.get('hot_cross_node_wake_p50_us'), 'µs');
  row('hot_cross_node_share', s.get('hot_cross_node_share'), 'of wake-ups');
  row('hot_fairness', s.get('hot_fairness'), 'min/max cycles per owner');
  floorRow('juicefs_hot_fairness', s.get('juicefs_hot_fairness'), 'min/max cycles per owner');
  floorRow('juicefs_hot_ops_3nodes', s.get('juicefs_hot_ops_3nodes'), 'ops/s');
  floorRow('juicefs_hot_wake_p50_us', s.get('juicefs_hot_wake_p50_us'), 'µs');
  row('hot_cpu_us_per_cycle', s.get('hot_cpu_us_per_cycle'), 'µs');
  row('hot_cpu_cores_busy', s.get('hot_cpu_cores_busy'), 'cores');
  row('hot_cpu_engine_us_per_cycle', s.get('hot_cpu_engine_us_per_cycle'), 'µs');
  floorRow('juicefs_hot_cpu_engine_us_per_cycle', s.get('juicefs_hot_cpu_engine_us_per_cycle'), 'µs');
  floorRow('juicefs_hot_cpu_us_per_cycle', s.get('juicefs_hot_cpu_us_per_cycle'), 'µs');
  floorRow('juicefs_hot_cpu_cores_busy', s.get('juicefs_hot_cpu_cores_busy'), 'cores');
  judge('6. hot file, 3 nodes: lock cycles/s', 'hot_ops_3nodes', 'juicefs_hot_ops_3nodes', s.ratio('hot_ops_3nodes', 'juicefs_hot_ops_3nodes'), { op: '>=', x: 3 });
  judge('6. hot file, 3 nodes: wake-up p50', 'hot_wake_p50_us', 'juicefs_hot_wake_p50_us', s.ratio('hot_wake_p50_us', 'juicefs_hot_wake_p50_us'), { op: '<=', x: 0.5 });
  judge('6. hot file: CPU per cycle', 'hot_cpu_us_per_cycle', 'juicefs_hot_cpu_us_per_cycle', s.ratio('hot_cpu_us_per_cycle', 'juicefs_hot_cpu_us_per_cycle'), undefined, `not judged: CPU time (user + system) of the 3 node processes and redis-server per lock cycle; ours kept ${r2(median(s.get('hot_cpu_cores_busy')))} of the ${os.availableParallelism()} cores busy. At 3x the baseline's rate the cores could spend ${r2((os.availableParallelism() * 1e6) / (3 * median(s.get('juicefs_hot_ops_3nodes'))))} µs per cycle`);
  floorRow('hot_floor_ops_3nodes', s.get('hot_floor_ops_3nodes'), 'ops/s');
  floorRow('hot_floor_wake_p50_us', s.get('hot_floor_wake_p50_us'), 'µs');
  floorRow('hot_floor_cpu_us_per_cycle', s.get('hot_floor_cpu_us_per_cycle'), 'µs');
  floorRow('hot_floor_cpu_cores_busy', s.get('hot_floor_cpu_cores_busy'), 'cores');
  floorRow('hot_floor_cpu_engine_us_per_cycle', s.get('hot_floor_cpu_engine_us_per_cycle'), 'µs');
  floorRow('hot_floor_cross_node_share', s.get('hot_floor_cross_node_share'), 'of wake-ups');
  floorRow('hot_floor_fairness', s.get('hot_floor_fairness'), 'min/max cycles per owner');
  judge('6. the architecture floor: cycles/s', 'hot_floor_ops_3nodes', 'juicefs_hot_ops_3nodes', s.ratio('hot_floor_ops_3nodes', 'juicefs_hot_ops_3nodes'), undefined, 'not judged: the prescribed shape with no lock rules (each lock and unlock a message to a worker thread, one bare script there: a holder key and a FIFO queue, the unlock XADDing the next owner to its node\'s stream, read by XREAD BLOCK in that node\'s worker thread) vs the baseline: the most any design with actors on worker threads could reach against the 3x target');
  judge('6. the architecture floor: wake-up p50', 'hot_floor_wake_p50_us', 'juicefs_hot_wake_p50_us', s.ratio('hot_floor_wake_p50_us', 'juicefs_hot_wake_p50_us'), undefined, 'not judged: the same floor\'s wake-up vs the baseline\'s, against the 0.5x target');
  judge('6. cycles/s vs the architecture floor', 'hot_ops_3nodes', 'hot_floor_ops_3nodes', s.ratio('hot_ops_3nodes', 'hot_floor_ops_3nodes'), undefined, 'not judged: ours vs the floor');
  judge('6. wake-up vs the architecture floor', 'hot_wake_p50_us', 'hot_floor_wake_p50_us', s.ratio('hot_wake_p50_us', 'hot_floor_wake_p50_us'), undefined, 'not judged: what the rules, records, versions and sessions add to the floor\'s wake-up');
  judge('6. CPU per cycle vs the architecture floor', 'hot_cpu_us_per_cycle', 'hot_floor_cpu_us_per_cycle', s.ratio('hot_cpu_us_per_cycle', 'hot_floor_cpu_us_per_cycle'), undefined, `not judged: ours vs the floor, CPU of the 3 node processes and redis-server per cycle; the floor kept ${r2(median(s.get('hot_floor_cpu_cores_busy')))} of the cores busy`);
  if (overlaps.ours + overlaps.juice + overlaps.floor > 0) {
    console.error(`MUTUAL EXCLUSION VIOLATED on the hot file: ours ${overlaps.ours}, baseline ${overlaps.juice}, architecture floor ${overlaps.floor} overlapping holds`);
    exitCode = 1;
  }

  const elapsed = (performance.now() - started) / 1000;
  const fmt = (v: number, unit: string): string => `${unit === 'ops/s' || unit === 'rt/s' ? Math.round(v).toLocaleString('en-US') : v.toLocaleString('en-US')} ${unit}`;
  console.log(
    `\nbench:cluster: median of ${ROUNDS} rounds, node ${process.version}, ${os.availableParallelism()} cpus, load ${os.loadavg()[0]!.toFixed(2)}, ${elapsed.toFixed(0)} s`,
  );
  console.log(`${'row'.padEnd(48)} ${'ours'.padStart(16)} ${'floor'.padStart(16)} ${'ratio'.padStart(8)}  ${'target'.padEnd(12)} met`);
  for (const x of ratios) {
    const o = (rows.find((y) => y.name === x.row) ?? floors[x.row])!;
    const f = (floors[x.floor] ?? rows.find((y) => y.name === x.floor))!;
    const verdict = x.met === null ? '' : x.met ? 'met' : 'MISSED';
    console.log(`${x.name.padEnd(48)} ${fmt(o.value, o.unit).padStart(16)} ${fmt(f.value, f.unit).padStart(16)} ${String(x.ratio).padStart(8)}  ${x.target.padEnd(12)} ${verdict}`);
  }
  console.log('\nall rows (median over rounds [min .. max])');
  for (const x of rows) console.log(`  ${x.name.padEnd(28)} ${fmt(x.value, x.unit).padStart(16)}${x.spread === undefined ? '' : `   [${x.spread[0]} .. ${x.spread[1]}]`}`);
  for (const [k, x] of Object.entries(floors)) console.log(`  ${k.padEnd(28)} ${fmt(x.value, x.unit).padStart(16)}${x.spread === undefined ? '' : `   [${x.spread[0]} .. ${x.spread[1]}]`}  (floor)`);
  for (const x of ratios) if (x.note !== undefined) console.log(`  note, ${x.name}: ${x.note}`);
  console.log('engine calls per request (the nodes\' counters, renewals excluded)');
  for (const [k, d] of Object.entries(perRequest())) console.log(`  ${k.padEnd(6)} ${JSON.stringify(d)}`);

  mkdirSync(path.dirname(RESULTS), { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    loadavg: os.loadavg().map((x) => r2(x)),
    elapsedSec: Math.round(elapsed),
    redis: ((await obs.info('server')) as string).match(/redis_version:(\S+)/)?.[1],
    options: { rounds: ROUNDS, seq: SEQ_N, wake: WAKE_N, pipeMs: PIPE_MS, hotMs: HOT_MS, idleMs: IDLE_MS, kills: KILLS, lanes: LANES, clients: CLIENTS, workers: WORKERS, sessionTtlMs: TTL, killSessionTtlMs: KILL_TTL },
    idle,
    engineCallsPerRequest: perRequest(),
    kills: kills.map(r2),
    overlaps,
  };
  writeFileSync(RESULTS, `${JSON.stringify({ rows, floors, ratios, meta }, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(ROOT, RESULTS)}`);
  obs.disconnect();
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  await Promise.all(nodes.map((n) => Promise.race([n.stop(), sleep(3000)])));
  for (const n of nodes) if (!n.exited) n.kill();
  await server.stop();
}
process.exit(exitCode);
