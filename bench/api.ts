/**
 * API benchmark: LockCoordinator as a caller sees it (main thread -> piscina workers -> back), next
 * to the floors it is built on, all measured in the same run between the same kinds of threads.
 *
 *   npm run bench:api             (build, then node dist/bench/api.js)
 *
 * Ours (LockCoordinator.start({ workers: 1 | 2 }), both coordinators alive for the whole run):
 * - pipelined_ops_w{1,2}_f{1,100,10000}: 256 lanes on the main thread, lane i = owner i+1 with its
 *   own range [16i, 16i+7]; each lane awaits F_SETLK F_WRLCK, then F_UNLCK of the same range, on
 *   file (i + 256j) % F for its j-th pair. So ~256 requests are in flight, nothing ever conflicts,
 *   and ops/s counts requests (a lock OR an unlock): one request is one round trip.
 *   pipelined_batch_*: a diagnostic, the mean requests per batch the workers received (stats()).
 * - seq_lock_p{50,99}_w{1,2}: one F_SETLK lock awaited alone (timed), then its unlock (not timed),
 *   over 100 files so that both workers of w2 take part.
 * - wake_p{50,99}_w{1,2}: owner A holds a write lock, owner B waits for it with F_SETLKW on the same
 *   file and range (an F_GETLK round trip after it proves B is queued in the worker, and lets the
 *   worker go idle); the time is from calling A's unlock to B's promise resolving. Then the roles swap.
 * - rss_mb_100k_files: in a child process (so the other series neither inflate nor recycle its
 *   memory): process RSS (all threads) with 100,000 files holding one write lock each, minus the RSS
 *   right after start() ({ workers: 2 }, main-thread gc() before both readings; workers cannot be
 *   told to collect, so their readings include whatever garbage they hold).
 *
 * Floors:
 * - raw_echo_*: a plain worker_threads Worker that posts every message back. pipelined: 256 numbers
 *   in flight, one postMessage per message; seq: one number's round trip alone. The pipelined
 *   target's floor.
 * - raw_ping_seq_p{50,99}_w{1,2}: one number's round trip to the coordinator's own worker that the
 *   same iteration's sequential lock goes to (LockCoordinator.ping, echoed by the host outside
 *   batches and actors): the raw echo between the very threads that serve the locks, and the floor
 *   of the latency targets. On this VM a bare round trip's time depends on the thread and on the
 *   traffic it serves: with the same traffic the echo Worker and a lock worker answer alike (37 vs
 *   33 µs, 41 vs 42 µs), but in these rounds the lock workers also serve the wake-up series, and
 *   their bare round trip measured 0.9-1.9x the echo Worker's. Against the echo Worker the latency
 *   ratios moved between runs with that, not with the lock manager's own work.
 * - batched_echo_*: the same worker fed our framing (src/wire/batcher.ts, flush at the end of the
 *   turn or at 64 messages): lock calls as CallBatcher writes them (8 doubles and a path, calls.ts
 *   LOCK_DOUBLES) from checked records made up front, answered with 3-item R_DONE replies in
 *   Batcher's flat arrays; no parsing, no deciding.
 * - inthread_ops_f{1,100,10000}: LockTable (src/core/lock-table.ts) called synchronously on the
 *   main thread with the same lanes, owners, ranges, files and request objects; each lane alternates
 *   lock / unlock in round-robin, so 0-256 locks are held as in the pipelined run.
 *
 * Rounds: one warm-up round (discarded), then --rounds rounds, every series once per round, so that
 * machine noise (this is a shared 2-core machine) hits ours and the floors alike. Throughput series
 * run one after the other; latency series are interleaved sample by sample (each iteration takes one
 * sample of every latency series, starting from a rotating one), so a latency and its floor see the
 * same moments. Each value is the median over rounds (latency: the median of the rounds' p50 and
 * p99). A ratio is the median over rounds of that round's own ratio (paired, so a slow round cancels).
 * No gc() between series: on this machine a forced full GC halved the next ~100 ms series.
 * Targets (reported, not asserted): pipelined / raw echo pipelined >= 0.5; seq lock p50 / raw round
 * trip p50 on the same threads (raw_ping_seq_p50_w*) <= 1.5; wake-up p50 / the same <= 2; RSS for
 * 100k files < 300 MB. The latency ratios against the plain echo Worker are printed too.
 *
 * Writes bench/results/api.json ({ rows, floors, ratios, meta }) on a full run; prints the table.
 * Options: --rounds=N (default 9)   --ms=MS (one pipelined measurement, default 500)
 *          --samples=N (latency samples per series and round, default 400)
 *          --series=pipelined,latency,rss, --no-floors (pipelined floors skipped), --workers=1,2 and
 *          --files=1,100,10000 select a part; a partial run does not write the results file.
 * Profiling (writes one .cpuprofile per thread: main, the coordinators' workers, the echo worker):
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/api.js --series=pipelined --no-floors --workers=1 --files=100
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CallBatcher } from '../src/wire/batcher.js';
import { ReplyWriter, readReplies, type ReplyHandler } from '../src/wire/replies.js';
import { LOCK_DOUBLES, callEnd, callId } from '../src/wire/calls.js';
import { F_GETLK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../src/core/codes.js';
import { LockTable, type PosixReply } from '../src/core/lock-table.js';
import { LockCoordinator } from '../src/caller/coordinator.js';
import type { LockRequest } from '../src/types.js';
import { routeOf } from '../src/wire/route.js';
import { decodeLock, type DecodedLock } from '../src/core/requests.js';
import { Report, option, type Results, type Unit } from './report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS = path.join(ROOT, 'bench', 'results', 'api.json');
const SELF = fileURLToPath(import.meta.url);

const LANES = 256;
const RANGE_STRIDE = 16;
const RANGE_LEN = 8;
const DEFAULT_FILES = [1, 100, 10_000];
const DEFAULT_WORKERS = [1, 2];
const FILE_COUNTS = option('files')?.split(',').map(Number) ?? DEFAULT_FILES;
const WORKER_COUNTS = option('workers')?.split(',').map(Number) ?? DEFAULT_WORKERS;
const RSS_FILES = 100_000;
/** The batched floor reads its answers with the coordinator's reader: only `result` records come. */
function floorReplies(result: (id: number) => void): ReplyHandler {
  const never = (): void => {
    throw new Error('the echo worker answers with result records only');
  };
  return { result, getlk: never, queued: never, journal: never, idle: never, message: never };
}


// ---- the echo worker (this same file, run as a worker_threads Worker) -------------------------

function echoWorker(): void {
  const port = parentPort!;
  const out = new ReplyWriter((b) => port.postMessage(b));
  port.on('message', (m: unknown) => {
    if (typeof m === 'number') {
      // raw: one postMessage per message
      port.postMessage(m);
      return;
    }
    // batched: our framing both ways (CallBatcher's lanes or, for a small batch, its flat array
    // in; ReplyWriter's flat array out); each lock call answered with an R_DONE reply
    const b = m as unknown[];
    if (b[0] instanceof Float64Array) {
      // The floor sends lock calls only: every LOCK_DOUBLES run is one (no N_MIXED marks to skip).
      const nums = b[0];
      for (let o = 0; o < (b[1] as number); o += LOCK_DOUBLES) {
        out.result(nums[o + 1]!, 0, -1, 0);
      }
    } else {
      for (let i = 0; i < b.length; i = callEnd(b, i)) {
        out.result(callId(b, i), 0, -1, 0);
      }
    }
  });
  port.postMessage('ready');
}

// ---- helpers ------------------------------------------------------------------------------

function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench check failed: ${what}`);
}

/** q-quantile of samples (nearest rank). */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.now();

function paths(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `/bench/api/f${i}`);
}

/** The coordinator's checked record of lane's F_SETLK F_WRLCK on path. */
function decoded(path: string, lane: number): DecodedLock {
  return decodeLock(lockReq(path, lane, F_WRLCK)) as DecodedLock;
}

function lockReq(path: string, lane: number, lockType: number, cmd = F_SETLK): LockRequest {
  return { path, lockType, lockStart: lane * RANGE_STRIDE, lockLen: RANGE_LEN, cmd, lockOwner: lane + 1, lockPid: lane + 1 };
}

// ---- floors: echo worker --------------------------------------------------------------------

class Echo {
  readonly worker: Worker;
  onMessage: (m: unknown) => void = () => {};
  private readonly ready: Promise<void>;

  constructor() {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { echo: true } });
    this.ready = new Promise((resolve, reject) => {
      this.onMessage = (m) => (m === 'ready' ? resolve() : reject(new Error(`echo worker said ${String(m)}`)));
      this.worker.once('error', reject);
    });
    this.worker.on('message', (m: unknown) => this.onMessage(m));
  }

  start(): Promise<void> {
    return this.ready;
  }

  /** Round trips per second, LANES numbers in flight, one postMessage per message. */
  rawPipelined(ms: number): Promise<number> {
    return new Promise((resolve) => {
      const w = this.worker;
      let done = 0;
      let inflight = 0;
      let t0 = 0;
      let deadline = 0;
      this.onMessage = (m) => {
        done++;
        if (now() < deadline) {
          w.postMessage(m);
        } else if (--inflight === 0) {
          resolve(done / ((now() - t0) / 1000));
        }
      };
      t0 = now();
      deadline = t0 + ms;
      for (; inflight < LANES; inflight++) w.postMessage(inflight);
    });
  }

  /** One number's round trip, µs. */
  rawOnce(i: number): Promise<number> {
    return new Promise((resolve) => {
      this.onMessage = () => resolve((now() - t) * 1000);
      const t = now();
      this.worker.postMessage(i);
    });
  }

  /** Round trips per second in our framing: LANES requests in flight, batched both ways. */
  batchedPipelined(ms: number, files: readonly string[]): Promise<number> {
    return new Promise((resolve) => {
      const out = new CallBatcher((b) => this.worker.postMessage(b));
      const F = files.length;
      // The checked record of each (lane, file) request, made up front: the floor pays the framing only.
      const records = Array.from({ length: LANES * F }, (_, k) => decoded(files[k % F]!, Math.floor(k / F)));
      let done = 0;
      let inflight = 0;
      let t0 = 0;
      let deadline = 0;
      const send = (id: number): void => out.lock(id, records[(id % LANES) * F + (id % F)]!);
      const replies = floorReplies((id) => {
        done++;
        if (now() < deadline) send(id + LANES);
        else if (--inflight === 0) resolve(done / ((now() - t0) / 1000));
      });
      this.onMessage = (m) => readReplies(m as unknown[], replies);
      t0 = now();
      deadline = t0 + ms;
      for (; inflight < LANES; inflight++) send(inflight);
    });
  }

  private readonly seqOut = new CallBatcher((b) => this.worker.postMessage(b));
  private readonly seqRecord = decoded('/bench/api/f0', 0);

  /** One framed request's round trip through Batchers on both sides, µs. */
  batchedOnce(i: number): Promise<number> {
    return new Promise((resolve) => {
      this.onMessage = () => resolve((now() - t) * 1000);
      const t = now();
      this.seqOut.lock(i, this.seqRecord);
    });
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

// ---- floor: the same core in-thread -------------------------------------------------------------

/** LockTable lock/unlock requests per second, synchronously, with the pipelined run's pattern. */
function inThread(files: readonly string[], ms: number): number {
  const table = new LockTable();
  const F = files.length;
  const held = new Int32Array(LANES).fill(-1);
  const next = new Int32Array(LANES);
  let ops = 0;
  let bad = 0;
  const t0 = now();
  const deadline = t0 + ms;
  let t = t0;
  while (t < deadline) {
    for (let lane = 0; lane < LANES; lane++) {
      let r: PosixReply;
      if (held[lane]! < 0) {
        const f = (lane + LANES * next[lane]!++) % F;
        held[lane] = f;
        r = table.lock(lockReq(files[f]!, lane, F_WRLCK)) as PosixReply;
      } else {
        r = table.lock(lockReq(files[held[lane]!]!, lane, F_UNLCK)) as PosixReply;
        held[lane] = -1;
      }
      bad |= r.result;
    }
    ops += LANES;
    t = now();
  }
  check(bad === 0, 'in-thread locks and unlocks succeed');
  return ops / ((t - t0) / 1000);
}

// ---- ours ---------------------------------------------------------------------------------------

/** Requests (a lock or an unlock) per second, LANES lanes each with one request in flight. */
async function pipelined(c: LockCoordinator, files: readonly string[], ms: number): Promise<number> {
  const F = files.length;
  let ops = 0;
  let bad = 0;
  const t0 = now();
  const deadline = t0 + ms;
  const lane = async (i: number): Promise<void> => {
    for (let j = 0; now() < deadline; j++) {
      const p = files[(i + LANES * j) % F]!;
      const a = await c.lock(lockReq(p, i, F_WRLCK));
      const b = await c.lock(lockReq(p, i, F_UNLCK));
      bad |= a.result | b.result;
      ops += 2;
    }
  };
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)));
  const elapsed = now() - t0;
  check(bad === 0, 'pipelined locks and unlocks succeed');
  return ops / (elapsed / 1000);
}

/** Requests and batches the workers have received so far (stats() travels on the control plane). */
async function batchCounts(c: LockCoordinator): Promise<{ calls: number; batches: number }> {
  const st = await c.stats();
  return { calls: st.workers.reduce((n, w) => n + w.calls, 0), batches: st.workers.reduce((n, w) => n + w.batches, 0) };
}

/** A latency series: one sample (µs) per call, so that series can be interleaved sample by sample. */
interface Sampler {
  readonly name: string;
  sample(i: number): Promise<number>;
  finish?(): Promise<void>;
}

/**
 * A bare round trip to the worker that the seq sampler's request of the same iteration goes to
 * (LockCoordinator.ping: one number on the data port, echoed by the host): the raw echo floor on
 * the very threads that serve the locks.
 */
function pingSampler(name: string, c: LockCoordinator, workers: number, files: readonly string[]): Sampler {
  return {
    name,
    async sample(i) {
      const worker = routeOf(files[i % files.length]!, workers);
      const t = now();
      await c.ping(worker);
      return (now() - t) * 1000;
    },
  };
}

/** One F_SETLK lock awaited alone (timed); its unlock follows (untimed). */
function seqLockSampler(name: string, c: LockCoordinator, files: readonly string[]): Sampler {
  return {
    name,
    async sample(i) {
      const p = files[i % files.length]!;
      const t = now();
      const a = await c.lock(lockReq(p, 0, F_WRLCK));
      const us = (now() - t) * 1000;
      const b = await c.lock(lockReq(p, 0, F_UNLCK));
      check(a.result === 0 && b.result === 0, 'sequential lock and unlock succeed');
      return us;
    },
  };
}

/**
 * Wake-up: the holder's unlock is called, the waiter's F_SETLKW (same file, same range) resolves;
 * then the roles swap. Before each sample, an F_GETLK round trip on the same file proves that the
 * waiter is queued in the worker (same port, same file, arrival order) and lets the worker go idle.
 */
function wakeSampler(name: string, c: LockCoordinator, file: string): Sampler {
  const req = (owner: number, lockType: number, cmd = F_SETLK): LockRequest => ({ ...lockReq(file, 0, lockType, cmd), lockOwner: owner, lockPid: owner });
  let holder = 1;
  let waiter = 2;
  let started = false;
  return {
    name,
    async sample() {
      if (!started) {
        check((await c.lock(req(holder, F_WRLCK))).result === 0, 'wake: first holder locks');
        started = true;
      }
      const waitP = c.lock(req(waiter, F_WRLCK, F_SETLKW));
      const probe = await c.lock(req(99, F_WRLCK, F_GETLK));
      check(probe.result === 0 && probe.lockType === F_WRLCK && probe.lockPid === holder, 'wake: the holder blocks the probe');
      const t = now();
      const unlockP = c.lock(req(holder, F_UNLCK));
      const got = await waitP;
      const us = (now() - t) * 1000;
      check(got.result === 0 && (await unlockP).result === 0, 'wake: the waiter gets the lock');
      [holder, waiter] = [waiter, holder];
      return us;
    },
    async finish() {
      if (started) check((await c.lock(req(holder, F_UNLCK))).result === 0, 'wake: last unlock');
      started = false;
    },
  };
}

/** Locks held on one file for the many-locks rows: few, and many. */
const HELD_FEW = 100;
const HELD_MANY = 100_000;

/** `n` one-byte write locks of owner 1 at even offsets of `file`, sent 256 at a time. */
async function holdMany(c: LockCoordinator, file: string, n: number): Promise<void> {
  const batch: Promise<PosixReply>[] = [];
  for (let i = 0; i < n; i++) {
    batch.push(c.lock({ path: file, lockType: F_WRLCK, lockStart: 2 * i, lockLen: 1, cmd: F_SETLK, lockOwner: 1, lockPid: 1 }));
    if (batch.length === 256 || i === n - 1) {
      for (const r of await Promise.all(batch)) check(r.result === 0, 'held: each lock is granted');
      batch.length = 0;
    }
  }
}

/**
 * A lock and its unlock by owner 2 in a gap between `file`'s held locks of owner 1, awaited one
 * after the other and timed together: the per-operation cost as the locks on a file grow (each
 * step is journaled, and a long journal is compacted by a snapshot of the file's locks).
 */
function heldPairSampler(name: string, c: LockCoordinator, file: string, held: number): Sampler {
  return {
    name,
    async sample(i) {
      const gap = 2 * ((i * 7919) % held) + 1;
      const req = (lockType: number): LockRequest => ({ path: file, lockType, lockStart: gap, lockLen: 1, cmd: F_SETLK, lockOwner: 2, lockPid: 2 });
      const t = now();
      const a = await c.lock(req(F_WRLCK));
      const b = await c.lock(req(F_UNLCK));
      const us = (now() - t) * 1000;
      check(a.result === 0 && b.result === 0, 'held: lock and unlock in a gap succeed');
      return us;
    },
  };
}

/** n iterations; each takes one sample of every series, starting from a rotating series. */
async function latencyRound(samplers: readonly Sampler[], n: number): Promise<Map<string, number[]>> {
  const out = new Map(samplers.map((s) => [s.name, [] as number[]] as const));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < samplers.length; k++) {
      const s = samplers[(i + k) % samplers.length]!;
      out.get(s.name)!.push(await s.sample(i));
    }
  }
  for (const s of samplers) await s.finish?.();
  return out;
}

// ---- RSS (child process) --------------------------------------------------------------------------

async function rssChild(): Promise<void> {
  const gc = gcFunction();
  const c = await LockCoordinator.start({ workers: 2 });
  try {
    gc();
    await sleep(300);
    gc();
    const base = process.memoryUsage();
    const files = paths(RSS_FILES);
    let bad = 0;
    let k = 0;
    const t0 = now();
    const lane = async (i: number): Promise<void> => {
      for (let f = i; f < RSS_FILES; f += LANES) {
        bad |= (await c.lock(lockReq(files[f]!, i, F_WRLCK))).result;
        k++;
      }
    };
    await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)));
    const fillMs = now() - t0;
    const st = await c.stats();
    check(bad === 0 && k === RSS_FILES, 'rss: every lock granted');
    check(st.files === RSS_FILES && st.workers.reduce((n, w) => n + w.locks, 0) === RSS_FILES, 'rss: 100k files with one lock each');
    // Let the workers' allocation stop and any memory reducer run; read at the end.
    gc();
    await sleep(1000);
    gc();
    const held = process.memoryUsage();
    const out = {
      baseRss: base.rss,
      heldRss: held.rss,
      mainHeapDelta: held.heapUsed - base.heapUsed,
      fillMs,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await c.stop();
  }
}

function runRssChild(): Promise<{ baseRss: number; heldRss: number; mainHeapDelta: number; fillMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, '--rss-child'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`rss child exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const ALL = ['pipelined', 'latency', 'rss'];
  const seriesOpt = option('series');
  const series = new Set(seriesOpt?.split(',') ?? ALL);
  for (const s of series) if (!ALL.includes(s)) throw new TypeError(`bad --series value ${s}`);
  const ROUNDS = Number(option('rounds') ?? 9);
  const PIPE_MS = Number(option('ms') ?? 500);
  const FLOOR_MS = Math.max(100, Math.round(PIPE_MS * 0.6));
  const INTHREAD_MS = Math.max(50, Math.round(PIPE_MS * 0.3));
  const LAT_N = Number(option('samples') ?? 400);
  const withFloors = option('no-floors') === undefined;
  const fullRun = seriesOpt === undefined && withFloors && FILE_COUNTS.join() === DEFAULT_FILES.join() && WORKER_COUNTS.join() === DEFAULT_WORKERS.join();
  for (const n of [...FILE_COUNTS, ...WORKER_COUNTS]) check(Number.isInteger(n) && n >= 1, `--files / --workers value ${n}`);
  check(FILE_COUNTS.includes(100), '--files must include 100 (the latency series and the batched floor use 100 files)');
  check(Number.isInteger(ROUNDS) && ROUNDS >= 1 && PIPE_MS > 0 && LAT_N >= 10, 'options');

  const tStart = now();
  /** Per series: its unit and one value per measured round. */
  const results: Results = new Map();
  const note = (name: string, unit: Unit, v: number, warm: boolean): void => {
    if (warm) return;
    let e = results.get(name);
    if (e === undefined) results.set(name, (e = { unit, rounds: [] }));
    e.rounds.push(v);
  };

  let rss: Awaited<ReturnType<typeof runRssChild>> | undefined;
  if (series.has('rss')) {
    process.stdout.write('rss: 100,000 files, one lock each (child process) ... ');
    rss = await runRssChild();
    process.stdout.write(`done (${(rss.fillMs / 1000).toFixed(1)} s to lock them)\n`);
  }

  const coordinators = new Map<number, LockCoordinator>();
  const echo = new Echo();
  try {
    for (const w of WORKER_COUNTS) coordinators.set(w, await LockCoordinator.start({ workers: w }));
    await echo.start();
    const fileSets = new Map(FILE_COUNTS.map((n) => [n, paths(n)] as const));
    const files100 = fileSets.get(100)!;
    const samplers: Sampler[] = [
      { name: 'raw_echo_seq', sample: (i) => echo.rawOnce(i) },
      { name: 'batched_echo_seq', sample: (i) => echo.batchedOnce(i) },
    ];
    for (const [w, c] of coordinators) {
      samplers.push(pingSampler(`raw_ping_seq_w${w}`, c, w, files100));
      samplers.push(seqLockSampler(`seq_lock_w${w}`, c, files100));
      samplers.push(wakeSampler(`wake_w${w}`, c, '/bench/api/wake'));
    }
    if (series.has('latency')) {
      // Many locks on one file (1 worker): the same pair with few and with many held, in the same rounds.
      const c1 = coordinators.get(WORKER_COUNTS[0]!)!;
      for (const n of [HELD_FEW, HELD_MANY]) {
        await holdMany(c1, `/bench/api/held${n}`, n);
        samplers.push(heldPairSampler(`held_pair_n${n}`, c1, `/bench/api/held${n}`, n));
      }
    }

    for (let round = 0; round <= ROUNDS; round++) {
      const warm = round === 0;
      const k = warm ? 0.4 : 1;
      process.stdout.write(warm ? 'warm-up round ... ' : `round ${round}/${ROUNDS} ... `);
      if (series.has('pipelined') && withFloors) {
        note('raw_echo_pipelined', 'rt/s', await echo.rawPipelined(FLOOR_MS * k), warm);
        note('batched_echo_pipelined', 'rt/s', await echo.batchedPipelined(FLOOR_MS * k, files100), warm);
        for (const f of FILE_COUNTS) note(`inthread_ops_f${f}`, 'ops/s', inThread(fileSets.get(f)!, INTHREAD_MS * k), warm);
      }
      if (series.has('pipelined')) {
        for (const [w, c] of coordinators) {
          for (const f of FILE_COUNTS) {
            const before = await batchCounts(c);
            note(`pipelined_ops_w${w}_f${f}`, 'ops/s', await pipelined(c, fileSets.get(f)!, PIPE_MS * k), warm);
            const after = await batchCounts(c);
            note(`pipelined_batch_w${w}_f${f}`, 'msg/batch', (after.calls - before.calls) / (after.batches - before.batches), warm);
          }
        }
      }
      if (series.has('latency')) {
        const lat = await latencyRound(samplers, Math.round(LAT_N * k));
        for (const [name, xs] of lat) {
          const [kind, rest] = /^(seq_lock|wake|raw_ping_seq)_w/.test(name) ? name.split(/_(?=w\d)/) : /^held_pair_n/.test(name) ? name.split(/_(?=n\d)/) : [name, ''];
          const suffix = rest === '' ? '' : `_${rest}`;
          note(`${kind}_p50${suffix}`, 'µs', quantile(xs, 0.5), warm);
          note(`${kind}_p99${suffix}`, 'µs', quantile(xs, 0.99), warm);
        }
      }
      process.stdout.write(`${((now() - tStart) / 1000).toFixed(0)} s\n`);
    }
  } finally {
    for (const c of coordinators.values()) await c.stop();
    await echo.stop();
  }

  // ---- report --------------------------------------------------------------------------------
  const report = new Report(results, /^(raw_echo|raw_ping|batched_echo|inthread)_/, { µs: 1, MB: 1, 'msg/batch': 1 });
  if (rss !== undefined) {
    const mb = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;
    report.rows.push({ name: 'rss_mb_100k_files', value: mb(rss.heldRss - rss.baseRss), unit: 'MB' });
    report.rows.push({ name: 'rss_bytes_per_file', value: Math.round((rss.heldRss - rss.baseRss) / RSS_FILES), unit: 'B' });
    report.rows.push({ name: 'rss_mb_baseline_w2', value: mb(rss.baseRss), unit: 'MB' });
    report.rows.push({ name: 'main_heap_mb_100k_files', value: mb(rss.mainHeapDelta), unit: 'MB' });
  }
  const ratio = report.ratio.bind(report);
  for (const w of WORKER_COUNTS) for (const f of FILE_COUNTS) ratio(`pipelined_ops_w${w}_f${f}`, 'raw_echo_pipelined', { op: '>=', x: 0.5 });
  // Latency targets against the round trip on the same threads (see raw_ping_seq above).
  for (const w of WORKER_COUNTS) ratio(`seq_lock_p50_w${w}`, `raw_ping_seq_p50_w${w}`, { op: '<=', x: 1.5 });
  for (const w of WORKER_COUNTS) ratio(`wake_p50_w${w}`, `raw_ping_seq_p50_w${w}`, { op: '<=', x: 2 });
  // The cost of a step must not grow with the locks already on its file (issue: journal compaction).
  ratio(`held_pair_p50_n${HELD_MANY}`, `held_pair_p50_n${HELD_FEW}`, { op: '<=', x: 2 });
  const rssRow = report.rows.find((r) => r.name === 'rss_mb_100k_files')?.value;
  if (rssRow !== undefined) report.absolute('rss_mb_100k_files (MB, not a ratio)', rssRow, '< 300', rssRow < 300);
  // Context, no targets: how far from the batched transport and from the bare core.
  for (const f of FILE_COUNTS) ratio(`pipelined_ops_w1_f${f}`, 'batched_echo_pipelined');
  for (const f of FILE_COUNTS) ratio(`pipelined_ops_w1_f${f}`, `inthread_ops_f${f}`);
  ratio('batched_echo_pipelined', 'raw_echo_pipelined');
  // The same latencies against the plain echo Worker (another thread of the same kind), and how far
  // the two floors differ in the same rounds.
  for (const w of WORKER_COUNTS) ratio(`seq_lock_p50_w${w}`, 'raw_echo_seq_p50');
  for (const w of WORKER_COUNTS) ratio(`wake_p50_w${w}`, 'raw_echo_seq_p50');
  for (const w of WORKER_COUNTS) ratio(`raw_ping_seq_p50_w${w}`, 'raw_echo_seq_p50');
  for (const w of WORKER_COUNTS) ratio(`seq_lock_p99_w${w}`, 'raw_echo_seq_p99');
  for (const w of WORKER_COUNTS) ratio(`wake_p99_w${w}`, 'raw_echo_seq_p99');

  const elapsed = (now() - tStart) / 1000;
  report.print('locksmith API bench', ROUNDS, elapsed, 'same run, same threads kind: main <-> one worker_threads Worker; in-thread: main only');
  if (fullRun) {
    report.write(RESULTS, ROOT, {
      rounds: ROUNDS,
      pipelinedMs: PIPE_MS,
      latencySamplesPerRound: LAT_N,
      lanes: LANES,
      seconds: Math.round(elapsed),
    });
  } else {
    console.log('\n(partial run: results file not written)');
  }
}

// ---- entry (last, so every declaration above is initialised) ---------------------------------------

if (!isMainThread && (workerData as { echo?: boolean } | null)?.echo === true) {
  echoWorker();
} else if (isMainThread && process.argv.includes('--rss-child')) {
  await rssChild();
} else if (isMainThread) {
  await main();
}
