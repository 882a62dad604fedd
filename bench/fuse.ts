/**
 * FUSE benchmark: lock+unlock pairs through a real mount whose locks locksmith's actors decide,
 * next to the floors it is built on, and the synthetic source's rate through the actors next to
 * the bare native-to-worker delivery rate; all measured in the same run.
 *
 *   npm run bench:fuse            (build, then node dist/bench/fuse.js; needs root, /dev/fuse,
 *                                  cc, pkg-config fuse3 and fusermount3)
 *
 * Mounts (all four mounted for the whole FUSE part, each serving files f0 ... f7):
 * - fuse_*: ours, src/mount.ts mountFuse({ workers: 2 }) over a backing directory: every getlk,
 *   setlk and flock goes to a worker's actor and is answered from there.
 * - kernel_*: the same native passthrough mounted with `locks: false`: the lock capabilities are
 *   not negotiated, so the kernel decides fcntl locks on the mount itself (no request reaches us).
 * - bare_*: the floor, the fastest bare libfuse server: bench/fuse/minimal.c with libfuse's
 *   single-threaded fuse_session_loop, answering every lock request at once with success (no
 *   table, no decision, no thread hand-off).
 * - minimal_*: the same program with fuse_session_loop_mt (4 threads, max_idle_threads 4, no
 *   clone_fd: the configuration locksmith used before issue 15), a second reference row.
 * Load: bench/fuse/loader.c, one process per file; each opens its file, waits until all are ready,
 * then loops fcntl(F_SETLK, F_WRLCK [0,1)) / fcntl(F_SETLK, F_UNLCK [0,1)) for --ms ms, timing
 * each call. One operation is a lock or an unlock.
 * - *_p1_lat_us: 1 process, mean time per operation (elapsed / operations); *_p1_p50_us its median.
 * - *_p8_ops: 8 processes on 8 files at once: total operations / the longest elapsed.
 * - *_p1_held10k_lat_us (fuse, kernel): as *_p1_lat_us, by a process that first took 10,000 write
 *   locks of its own on the same file (bytes 2, 4, ...; the lock+unlock is on byte 0).
 * - *_sqlite_tx (fuse, kernel): SQLite in WAL mode (bench/fuse/sqlite.c, libsqlite3), 8 processes
 *   running BEGIN IMMEDIATE / UPDATE / COMMIT on one fresh database for --ms ms: committed
 *   transactions per second. Each run checks the sum of the updates against the commits and
 *   PRAGMA integrity_check. Needs libsqlite3-dev (apt-get install libsqlite3-dev); without it these
 *   rows are skipped with that message.
 *
 * Synthetic (no kernel): 2 native producer threads, 64 files, write lock then unlock per pair.
 * - synthetic_actors_ops_w{1,2}: src/mount.ts runSynthetic({ workers }): each event decided by the
 *   actors of a LockCoordinator's workers and answered natively (what issue 4 asks for).
 * - pump_flat_echo_w2: floor: 2 worker threads attached with attachFlat answering every request
 *   with 0 through replyBatch, deciding nothing (the pump's own round-trip ceiling).
 * - pump_flat_deliver_w2, pump_object_deliver_w2: floors: bare native-to-worker delivery (no
 *   requests, no replies) with attachFlat and with attach (event objects).
 *
 * Rounds: one short warm-up round (discarded), then --rounds rounds; each round runs every series
 * once, the mounts in a rotating order. A value is the median over rounds; a ratio is the median of
 * the rounds' own ratios (paired, so a slow round cancels). Targets (reported, not asserted):
 * fuse_p1_lat_us / bare_p1_lat_us <= 1.5; fuse_p8_ops / bare_p8_ops >= 1;
 * fuse_p1_held10k_lat_us / fuse_p1_lat_us <= 2; fuse_sqlite_tx / kernel_sqlite_tx >= 0.8;
 * synthetic_actors_ops_w2 >= 1,000,000 ops/s.
 *
 * Writes bench/results/fuse.json ({ rows, floors, ratios, meta }) on a full run; prints the table.
 * Options: --rounds=N (default 5)  --ms=MS (one loader run, default 1000)  --ops=N (synthetic events
 * per producer thread, default 500000)  --series=fuse,synthetic (a part: results file not written;
 * `--series=sqlite`: only the SQLite rows, on ours and the kernel-decided mount).
 * Every mount is unmounted on the way out, also after an error or a signal (fusermount3 -u -z last).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { forceUnmount, mountFuse, runSynthetic, type FuseMount } from '../src/mount.js';
import * as pump from '../src/native/index.js';
import { Report, median, option, type Results, type Unit } from './report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS = path.join(ROOT, 'bench', 'results', 'fuse.json');
const SRC = path.join(ROOT, 'bench', 'fuse');
const BIN = path.join(ROOT, 'bench', 'bin');
const FILES = 8;
const PROCS = 8;
/** Locks the held-locks row's process takes before it starts. */
const HELD = 10_000;


const ROUNDS = Number(option('rounds') ?? 5);
const LOAD_MS = Number(option('ms') ?? 1000);
const SYNTH_OPS = Number(option('ops') ?? 500_000);
const SERIES = new Set((option('series') ?? 'fuse,synthetic').split(','));
const fullRun = option('series') === undefined;


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


// ---- prerequisites and the C programs -----------------------------------------------------------

function unavailable(): string | undefined {
  if (!pump.nativeAvailable().ok) return pump.nativeAvailable().reason;
  if (SERIES.has('fuse') || SERIES.has('sqlite')) {
    if (!pump.hasFuse) return 'the addon was built without libfuse3';
    if (process.getuid?.() !== 0) return 'mounting needs root';
    try {
      accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
    } catch {
      return '/dev/fuse is missing or not accessible';
    }
    for (const [cmd, args] of [
      ['cc', ['--version']],
      ['pkg-config', ['--exists', 'fuse3']],
      ['fusermount3', ['--version']],
    ] as const) {
      try {
        execFileSync(cmd, args, { stdio: 'ignore' });
      } catch {
        return `${cmd} ${args.join(' ')} failed (install build-essential, pkg-config, libfuse3-dev and fuse3)`;
      }
    }
  }
  return undefined;
}

function buildPrograms(): { minimal: string; loader: string; sqlite: string | undefined } {
  mkdirSync(BIN, { recursive: true });
  const fuseFlags = execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/);
  const minimal = path.join(BIN, 'minimal');
  const loader = path.join(BIN, 'loader');
  let sqlite: string | undefined = path.join(BIN, 'sqlite');
  execFileSync('cc', ['-O2', '-Wall', '-o', minimal, path.join(SRC, 'minimal.c'), ...fuseFlags]);
  execFileSync('cc', ['-O2', '-Wall', '-o', loader, path.join(SRC, 'loader.c')]);
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', sqlite, path.join(SRC, 'sqlite.c'), '-lsqlite3'], { stdio: 'pipe' });
  } catch {
    console.error('bench:fuse: cannot build bench/fuse/sqlite.c against libsqlite3: the SQLite rows are skipped (apt-get install libsqlite3-dev)');
    sqlite = undefined;
  }
  return { minimal, loader, sqlite };
}

interface Server {
  name: 'fuse' | 'kernel' | 'bare' | 'minimal';
  mountpoint: string;
  stop(): Promise<void>;
}

const mountpoints = new Set<string>();
const stops: (() => Promise<void>)[] = [];

async function startOurs(backing: string, mountpoint: string): Promise<Server> {
  mountpoints.add(mountpoint);
  const m: FuseMount = await mountFuse({ backing, mountpoint, workers: 2 });
  const stop = () => m.unmount();
  stops.push(stop);
  return { name: 'fuse', mountpoint, stop };
}

async function startKernel(backing: string, mountpoint: string): Promise<Server> {
  mountpoints.add(mountpoint);
  const sid = pump.mount({ backing, mountpoint, destinations: 1, locks: false });
  let done = false;
  const stop = async () => {
    if (!done) pump.unmount(sid);
    done = true;
  };
  stops.push(stop);
  return { name: 'kernel', mountpoint, stop };
}

async function startMinimal(bin: string, mountpoint: string, loop: 'st' | 'mt'): Promise<Server> {
  mountpoints.add(mountpoint);
  const child = spawn(bin, [mountpoint, String(FILES), '4', loop], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    forceUnmount(mountpoint);
  };
  stops.push(stop);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the minimal server did not say ready within 5 s')), 5000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      if (l === 'ready') resolve();
      else reject(new Error(`the minimal server said ${l}`));
    });
    child.once('exit', (code) => reject(new Error(`the minimal server exited (${code})`)));
  });
  return { name: loop === 'st' ? 'bare' : 'minimal', mountpoint, stop };
}

async function stopAll(): Promise<void> {
  for (const stop of stops.splice(0).reverse()) {
    try {
      await stop();
    } catch (e) {
      console.error(`unmount: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  mountpoints.forEach(forceUnmount);
}

// ---- load ----------------------------------------------------------------------------------------

interface Load {
  opsPerSecond: number;
  /** Mean µs per operation of the slowest process (1 process: elapsed / ops). */
  meanUs: number;
  p50Us: number;
}

/** `procs` loader processes on files f0 ... at once; resolves with their combined result. */
async function runLoaders(loader: string, mountpoint: string, procs: number, ms: number, hold = 0): Promise<Load> {
  const results = await startTogether(
    procs,
    (i) => spawn(loader, [path.join(mountpoint, `f${i % FILES}`), String(ms), '0', String(hold)], { stdio: ['pipe', 'pipe', 'inherit'] }),
    hold > 0 ? 300_000 : 30_000,
  );
  let ops = 0;
  let maxNs = 0;
  const p50s: number[] = [];
  for (const r of results) {
    const m = /^ops (\d+) ns (\d+) p50 (\d+) p99 (\d+) errors (\d+)$/.exec(r);
    if (m === null) throw new Error(`loader: ${r}`);
    if (Number(m[5]) !== 0) throw new Error(`loader: ${m[5]} lock calls failed on ${mountpoint}`);
    ops += Number(m[1]);
    maxNs = Math.max(maxNs, Number(m[2]));
    p50s.push(Number(m[3]) / 1000);
  }
  return { opsPerSecond: (ops / maxNs) * 1e9, meanUs: maxNs / 1000 / (ops / procs), p50Us: median(p50s) };
}

/** SQLite WAL, `procs` processes on a fresh database in `dir`: committed transactions per second. */
async function runSqlite(bin: string, dir: string, name: string, procs: number, ms: number): Promise<number> {
  const db = path.join(dir, `${name}.db`);
  execFileSync(bin, [db, 'init', String(procs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const results = await startTogether(procs, (i) => spawn(bin, [db, 'run', String(ms), String(i)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  let tx = 0;
  let maxNs = 0;
  for (const r of results) {
    const m = /^tx (\d+) ns (\d+) busy (\d+) errors (\d+)$/.exec(r);
    if (m === null) throw new Error(`sqlite: ${r}`);
    if (Number(m[4]) !== 0) throw new Error(`sqlite: ${m[4]} transactions failed on ${db}`);
    tx += Number(m[1]);
    maxNs = Math.max(maxNs, Number(m[2]));
  }
  const check = execFileSync(bin, [db, 'check'], { encoding: 'utf8' }).trim();
  if (check !== `sum ${tx} integrity ok`) throw new Error(`sqlite on ${db}: ${tx} commits, but ${check}`);
  for (const suffix of ['', '-wal', '-shm']) rmSync(db + suffix, { force: true });
  return (tx / maxNs) * 1e9;
}

/**
 * Spawns `procs` clients that each print "open" when ready, starts them together with one line on
 * stdin, and returns each one's result line.
 */
async function startTogether(procs: number, start: (i: number) => ChildProcess, readyMs = 30_000): Promise<string[]> {
  const kids: { child: ChildProcess; lines: string[]; next: (ms?: number) => Promise<string> }[] = [];
  try {
    for (let i = 0; i < procs; i++) {
      const child = start(i);
      const lines: string[] = [];
      const waiters: ((l: string) => void)[] = [];
      createInterface({ input: child.stdout! }).on('line', (l) => {
        const w = waiters.shift();
        if (w !== undefined) w(l);
        else lines.push(l);
      });
      const next = (wait = 30_000) =>
        new Promise<string>((resolve, reject) => {
          const l = lines.shift();
          if (l !== undefined) return resolve(l);
          const timer = setTimeout(() => reject(new Error(`a client said nothing for ${wait / 1000} s`)), wait);
          waiters.push((x) => {
            clearTimeout(timer);
            resolve(x);
          });
        });
      kids.push({ child, lines, next });
    }
    for (const k of kids) {
      const l = await k.next(readyMs);
      if (l !== 'open') throw new Error(`client: ${l}`);
    }
    for (const k of kids) k.child.stdin!.write('go\n');
    const results = await Promise.all(kids.map((k) => k.next()));
    await Promise.all(kids.map((k) => new Promise((r) => (k.child.exitCode !== null ? r(null) : k.child.once('exit', r)))));
    return results;
  } finally {
    for (const k of kids) if (k.child.exitCode === null && k.child.signalCode === null) k.child.kill('SIGKILL');
  }
}

// ---- the pump's own floors (worker threads, like test/native/synth.test.ts) ---------------------

const PUMP_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const a = require(workerData.addonPath);
const S = workerData.stride, ID = workerData.reqIdField;
let pairs = new Float64Array(2 * 8192);
parentPort.on('message', (m) => {
  if (m.flat) {
    a.attachFlat(m.sid, m.index, (b) => {
      if (!m.reply) return;
      const n = b.n, f = b.f64;
      if (pairs.length < 2 * n) pairs = new Float64Array(4 * n);
      for (let i = 0, o = 0; i < n; i++, o += S) { pairs[2 * i] = f[o + ID]; pairs[2 * i + 1] = 0; }
      a.replyBatch(m.sid, pairs, n);
    });
  } else {
    a.attach(m.sid, m.index, (evs) => { if (m.reply) for (let i = 0; i < evs.length; i++) a.replyErr(m.sid, evs[i].reqId, 0); });
  }
  parentPort.postMessage('attached');
});
parentPort.postMessage('ready');
`;

async function pumpRate(workers: Worker[], flat: boolean, reply: boolean, ops: number): Promise<number> {
  const once = (w: Worker) => new Promise((r) => w.once('message', r));
  const sid = pump.synthStart({ destinations: workers.length, threads: 2, files: 64, opsPerThread: ops, window: 4096, mode: reply ? 'reply' : 'deliver' });
  let stopped = false;
  try {
    await Promise.all(
      workers.map((w, index) => {
        w.postMessage({ sid, index, flat, reply });
        return once(w);
      }),
    );
    const deadline = Date.now() + 120_000;
    while (!pump.synthStats(sid).done) {
      if (Date.now() > deadline) throw new Error('the synthetic source did not finish within 120 s');
      await sleep(5);
    }
    const s = pump.synthStop(sid);
    stopped = true;
    return (s.generated! / s.elapsedMs!) * 1000;
  } finally {
    if (!stopped) pump.synthStop(sid);
  }
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const why = unavailable();
  if (why !== undefined) {
    console.error(`bench:fuse cannot run here: ${why}`);
    process.exitCode = 1;
    return;
  }
  const tStart = performance.now();
  const results: Results = new Map();
  const record = (name: string, unit: Unit, v: number, warm: boolean): void => {
    if (warm) return;
    let e = results.get(name);
    if (e === undefined) results.set(name, (e = { unit, rounds: [] }));
    e.rounds.push(v);
  };

  const base = mkdtempSync(path.join(os.tmpdir(), 'locksmith-bench-fuse-'));
  const cleanup = async () => {
    await stopAll();
    rmSync(base, { recursive: true, force: true });
  };
  process.on('exit', () => mountpoints.forEach(forceUnmount));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: unmounting`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    if (SERIES.has('fuse') || SERIES.has('sqlite')) {
      const { minimal, loader, sqlite } = buildPrograms();
      const loaders = SERIES.has('fuse');
      if (!loaders && sqlite === undefined) throw new Error('--series=sqlite needs libsqlite3-dev');
      const backing = path.join(base, 'backing');
      mkdirSync(backing);
      for (let i = 0; i < FILES; i++) writeFileSync(path.join(backing, `f${i}`), '');
      const mp = (n: string) => {
        const p = path.join(base, n);
        mkdirSync(p);
        return p;
      };
      const servers = [await startOurs(backing, mp('fuse')), await startKernel(backing, mp('kernel'))];
      if (loaders) servers.push(await startMinimal(minimal, mp('bare'), 'st'), await startMinimal(minimal, mp('minimal'), 'mt'));
      for (let round = 0; round <= ROUNDS; round++) {
        const warm = round === 0;
        const ms = warm ? Math.min(200, LOAD_MS) : LOAD_MS;
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(k + round) % servers.length]!;
          if (!loaders) {
            record(`${s.name}_sqlite_tx`, 'tx/s', await runSqlite(sqlite!, s.mountpoint, `${s.name}-${round}`, PROCS, ms), warm);
            continue;
          }
          const one = await runLoaders(loader, s.mountpoint, 1, ms);
          record(`${s.name}_p1_lat_us`, 'µs', one.meanUs, warm);
          record(`${s.name}_p1_p50_us`, 'µs', one.p50Us, warm);
          record(`${s.name}_p1_ops`, 'ops/s', one.opsPerSecond, warm);
          const eight = await runLoaders(loader, s.mountpoint, PROCS, ms);
          record(`${s.name}_p${PROCS}_ops`, 'ops/s', eight.opsPerSecond, warm);
          if (s.name !== 'fuse' && s.name !== 'kernel') continue;
          // Decided locks only: the bare servers keep none.
          const held = await runLoaders(loader, s.mountpoint, 1, ms, HELD);
          record(`${s.name}_p1_held10k_lat_us`, 'µs', held.meanUs, warm);
          if (sqlite !== undefined) record(`${s.name}_sqlite_tx`, 'tx/s', await runSqlite(sqlite, s.mountpoint, `${s.name}-${round}`, PROCS, ms), warm);
        }
        if (!warm) process.stdout.write(`fuse round ${round}/${ROUNDS}\n`);
      }
      await stopAll();
    }

    if (SERIES.has('synthetic')) {
      const workers: Worker[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          const w = new Worker(PUMP_WORKER, { eval: true, workerData: { addonPath: pump.addonPath, stride: pump.F_STRIDE, reqIdField: pump.F_REQ_ID } });
          await new Promise((r) => w.once('message', r));
          workers.push(w);
        }
        for (let round = 0; round <= ROUNDS; round++) {
          const warm = round === 0;
          const ops = warm ? Math.min(100_000, SYNTH_OPS) : SYNTH_OPS;
          for (const w of [2, 1]) {
            const r = await runSynthetic({ workers: w, threads: 2, files: 64, opsPerThread: ops, window: 4096 });
            if (r.replied !== r.generated) throw new Error(`runSynthetic: ${r.generated} generated, ${r.replied} answered`);
            record(`synthetic_actors_ops_w${w}`, 'ops/s', r.opsPerSecond, warm);
          }
          record('pump_flat_echo_w2', 'ops/s', await pumpRate(workers, true, true, ops), warm);
          record('pump_flat_deliver_w2', 'ops/s', await pumpRate(workers, true, false, 4 * ops), warm);
          record('pump_object_deliver_w2', 'ops/s', await pumpRate(workers, false, false, ops), warm);
          if (!warm) process.stdout.write(`synthetic round ${round}/${ROUNDS}\n`);
        }
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    }
  } finally {
    await cleanup();
  }

  // ---- report --------------------------------------------------------------------------------
  const report = new Report(results, /^(kernel|bare|minimal|pump)_/, { µs: 2 });
  const ratio = report.ratio.bind(report);
  ratio('fuse_p1_lat_us', 'bare_p1_lat_us', { op: '<=', x: 1.5 });
  ratio(`fuse_p${PROCS}_ops`, `bare_p${PROCS}_ops`, { op: '>=', x: 1 });
  ratio('fuse_p1_held10k_lat_us', 'fuse_p1_lat_us', { op: '<=', x: 2 });
  ratio('fuse_sqlite_tx', 'kernel_sqlite_tx', { op: '>=', x: 0.8 });
  const synth = results.get('synthetic_actors_ops_w2');
  if (synth !== undefined) {
    const v = Math.round(median(synth.rounds));
    report.absolute('synthetic_actors_ops_w2 (ops/s, not a ratio)', v, '>= 1000000', v >= 1_000_000);
  }
  // Context, no targets.
  ratio('fuse_p1_p50_us', 'bare_p1_p50_us');
  ratio('fuse_p1_lat_us', 'minimal_p1_lat_us');
  ratio(`fuse_p${PROCS}_ops`, `minimal_p${PROCS}_ops`);
  ratio('minimal_p1_lat_us', 'bare_p1_lat_us');
  ratio('kernel_p1_held10k_lat_us', 'kernel_p1_lat_us');
  ratio('fuse_p1_lat_us', 'kernel_p1_lat_us');
  ratio(`fuse_p${PROCS}_ops`, `kernel_p${PROCS}_ops`);
  ratio('minimal_p1_lat_us', 'kernel_p1_lat_us');
  ratio('synthetic_actors_ops_w2', 'pump_flat_echo_w2');
  ratio('synthetic_actors_ops_w2', 'pump_flat_deliver_w2');
  ratio('synthetic_actors_ops_w2', 'synthetic_actors_ops_w1');
  ratio('pump_flat_deliver_w2', 'pump_object_deliver_w2');

  const elapsed = (performance.now() - tStart) / 1000;
  report.print('locksmith FUSE bench', ROUNDS, elapsed, 'kernel: the same passthrough without lock caps; bare: bench/fuse/minimal.c single-threaded; minimal: the same, loop_mt; pump: no actors');
  if (fullRun) {
    report.write(RESULTS, ROOT, { rounds: ROUNDS, loadMs: LOAD_MS, processes: PROCS, synthOpsPerThread: SYNTH_OPS, seconds: Math.round(elapsed) });
  } else {
    console.log('\n(partial run: results file not written)');
  }
  if (existsSync(base)) rmSync(base, { recursive: true, force: true });
}

main().catch(async (e) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  await stopAll();
  process.exitCode = 1;
});
