/**
 * Core benchmark: the cost of one lock or unlock in LockTable while other locks are held on the
 * same file, next to the Linux kernel's own lock table (fcntl F_SETLK on tmpfs) measured in the
 * same run with the same pattern.
 *
 *   npm run bench:core            (build, then node dist/bench/core.js)
 *
 * For each held count N in 0, 10, 100, 1,000, 10,000, 100,000:
 * - another owner holds N write locks [20i, 20i+9] (never adjacent) on the file;
 * - the measured owner locks and unlocks [20k+12, 20k+16], k = N/2: between two held locks in the
 *   middle of the set, touching neither;
 * - posix: table.lock F_SETLK F_WRLCK then F_UNLCK (kind 'posix');
 *   windows: table.lockFile exclusive, fail-immediately, then table.unlockFile of the same range;
 *   kernel: bench/kernel-locks.c (compiled here with cc -O2 into bench/bin/), where the holder is
 *   a forked process and the measuring process does F_SETLK F_WRLCK / F_UNLCK pairs.
 * Each series is calibrated to rounds of about --round-ms, warmed up, then measured for --rounds
 * rounds, the three series' rounds interleaved so that machine noise hits them alike; the result is
 * the median round. nsPerOp is the time of one operation: a lock OR an unlock (pair time / 2).
 *
 * Writes bench/results/core.json (full runs only) and prints the table, the ratios and the targets:
 * at 10,000 held at least 20x cheaper than the kernel; with nothing held within 5x of the kernel;
 * from 10 to 100,000 held our cost grows less than 4x.
 *
 * Options (for profiling or quick looks; a partial run does not write the results file):
 *   --held=0,10000   held counts        --no-kernel        skip the kernel series
 *   --families=posix,windows           --rounds=N  --round-ms=MS
 * e.g. node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/core.js --held=10000 --no-kernel
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { F_SETLK, F_UNLCK, F_WRLCK } from '../src/core/codes.js';
import { LockTable, type PosixReply } from '../src/core/lock-table.js';
import { median, option } from './report.js';

type Family = 'posix' | 'windows';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const C_SOURCE = path.join(ROOT, 'bench', 'kernel-locks.c');
const C_BINARY = path.join(ROOT, 'bench', 'bin', 'kernel-locks');
const RESULTS = path.join(ROOT, 'bench', 'results', 'core.json');
const TMPFS = '/dev/shm';

const DEFAULT_HELD = [0, 10, 100, 1_000, 10_000, 100_000];
const DEFAULT_FAMILIES: Family[] = ['posix', 'windows'];

// ---- options ------------------------------------------------------------------------------

const heldCounts = option('held')?.split(',').map(Number) ?? DEFAULT_HELD;
const families = (option('families')?.split(',') as Family[] | undefined) ?? DEFAULT_FAMILIES;
const withKernel = option('no-kernel') === undefined;
const ROUNDS = Number(option('rounds') ?? 21);
const ROUND_NS = Number(option('round-ms') ?? 60) * 1e6;
/** At least this many pairs per round, however slow a pair is (the kernel at 100,000 held). */
const MIN_PAIRS = 3;
const fullRun =
  withKernel && heldCounts.join() === DEFAULT_HELD.join() && families.join() === DEFAULT_FAMILIES.join();

for (const n of heldCounts) if (!Number.isInteger(n) || n < 0) throw new TypeError(`bad --held value ${n}`);
for (const f of families) if (f !== 'posix' && f !== 'windows') throw new TypeError(`bad --families value ${f}`);

// A full collection between held counts, so that one count's garbage is not collected in the next.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// ---- what is measured ---------------------------------------------------------------------

/** A measured series: `run(pairs)` does that many lock+unlock pairs and returns the elapsed ns. */
interface Series {
  readonly name: string;
  run(pairs: number): number | Promise<number>;
}

/** The measured owner's range: between held locks k and k+1, 2 free bytes on each side. */
function measuredRange(held: number): { start: number; len: number } {
  return { start: 20 * Math.floor(held / 2) + 12, len: 5 };
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench setup check failed: ${what}`);
}

function posixSeries(held: number): Series {
  const table = new LockTable();
  const file = '/bench/posix';
  for (let i = 0; i < held; i++) {
    const r = table.lock({ path: file, cmd: F_SETLK, lockType: F_WRLCK, lockStart: 20 * i, lockLen: 10, lockOwner: 1, lockPid: 1, kind: 'posix' }) as PosixReply;
    check(r.result === 0, `holder lock ${i}`);
  }
  check(table.counts().locks === held, 'held count');
  const { start, len } = measuredRange(held);
  const lockReq = { path: file, cmd: F_SETLK, lockType: F_WRLCK, lockStart: start, lockLen: len, lockOwner: 2, lockPid: 2, kind: 'posix' };
  const unlockReq = { ...lockReq, lockType: F_UNLCK };
  if (held > 0) {
    // The held locks conflict with the measured owner, the margins around its range do not.
    const probe = table.lock({ ...lockReq, lockStart: 20 * Math.floor(held / 2), lockLen: 10 }) as PosixReply;
    check(probe.result < 0, 'a held lock blocks the measured owner');
  }
  const margin = table.lock({ ...lockReq, lockStart: start - 2, lockLen: len + 4 }) as PosixReply;
  check(margin.result === 0, 'the range and its margins are free');
  table.lock({ ...unlockReq, lockStart: start - 2, lockLen: len + 4 });
  check(table.counts().locks === held, 'held count after probes');
  return {
    name: 'posix',
    run(pairs: number): number {
      let bad = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < pairs; i++) {
        bad |= (table.lock(lockReq) as PosixReply).result;
        bad |= (table.lock(unlockReq) as PosixReply).result;
      }
      const ns = Number(process.hrtime.bigint() - t0);
      check(bad === 0 && table.counts().locks === held, 'posix pairs succeed');
      return ns;
    },
  };
}

function windowsSeries(held: number): Series {
  const table = new LockTable();
  const fileName = '/bench/windows';
  for (let i = 0; i < held; i++) {
    const r = table.lockFile({ fileName, exclusiveLock: true, failImmediately: true, handle: 1, processId: 1, byteOffset: 20 * i, length: 10 });
    check(r === 0, `holder lockFile ${i}`);
  }
  check(table.counts().locks === held, 'held count');
  const { start, len } = measuredRange(held);
  const lockReq = { fileName, exclusiveLock: true, failImmediately: true, handle: 2, processId: 2, byteOffset: start, length: len };
  const unlockReq = { fileName, handle: 2, processId: 2, byteOffset: start, length: len };
  if (held > 0) {
    const probe = table.lockFile({ ...lockReq, byteOffset: 20 * Math.floor(held / 2), length: 10 });
    check(probe !== 0, 'a held lock blocks the measured owner');
  }
  check(table.lockFile({ ...lockReq, byteOffset: start - 2, length: len + 4 }) === 0, 'the range and its margins are free');
  check(table.unlockFile({ ...unlockReq, byteOffset: start - 2, length: len + 4 }) === 0, 'margin probe unlocks');
  check(table.counts().locks === held, 'held count after probes');
  return {
    name: 'windows',
    run(pairs: number): number {
      let bad = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < pairs; i++) {
        bad |= table.lockFile(lockReq) as number;
        bad |= table.unlockFile(unlockReq) as number;
      }
      const ns = Number(process.hrtime.bigint() - t0);
      check(bad === 0 && table.counts().locks === held, 'windows pairs succeed');
      return ns;
    },
  };
}

/** bench/bin/kernel-locks as a child: one JSON line answers each command (see the C file). */
class Kernel {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<{ resolve: (v: Record<string, number>) => void; reject: (e: Error) => void }> = [];
  private stderr = '';

  constructor() {
    this.child = spawn(C_BINARY, [TMPFS], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const w = this.waiting.shift();
      if (w === undefined) return;
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (msg.ok === true) w.resolve(msg as Record<string, number>);
      else w.reject(new Error(`kernel-locks: ${String(msg.error)}`));
    });
    this.child.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`kernel-locks exited (${code}) ${this.stderr}`));
    });
  }

  private send(cmd: string): Promise<Record<string, number>> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${cmd}\n`);
    });
  }

  async hold(n: number): Promise<Record<string, number>> {
    const r = await this.send(`hold ${n}`);
    check(r.held === n && r.start === measuredRange(n).start && r.len === measuredRange(n).len, 'kernel holder and range');
    return r;
  }

  series(): Series {
    return { name: 'kernel', run: async (pairs) => (await this.send(`run ${pairs}`)).ns! };
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end('quit\n');
    await exited;
  }
}

// ---- measuring ------------------------------------------------------------------------------

/** Pairs per round so a round takes about ROUND_NS; the doubling doubles as a first warm-up. */
async function calibrate(s: Series): Promise<number> {
  let pairs = 1;
  for (;;) {
    const ns = Math.max(1, await s.run(pairs));
    if (ns >= ROUND_NS / 4 || pairs >= 1 << 26) return Math.max(MIN_PAIRS, Math.ceil((pairs * ROUND_NS) / ns));
    pairs *= ns < ROUND_NS / 64 ? 8 : 2;
  }
}

interface Measured {
  nsPerOp: number;
  pairs: number;
  /** ns per op of each round, in order. */
  rounds: number[];
}

/** Calibrates and warms up each series, then runs ROUNDS interleaved rounds (rotating the order). */
async function measure(series: Series[]): Promise<Map<string, Measured>> {
  const pairs = new Map<string, number>();
  for (const s of series) {
    const p = await calibrate(s);
    await s.run(p); // warm-up at full size
    pairs.set(s.name, p);
  }
  const perRound = new Map<string, number[]>(series.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < series.length; j++) {
      const s = series[(r + j) % series.length]!;
      const p = pairs.get(s.name)!;
      perRound.get(s.name)!.push((await s.run(p)) / (2 * p));
    }
  }
  const out = new Map<string, Measured>();
  for (const s of series) {
    const rounds = perRound.get(s.name)!;
    out.set(s.name, { nsPerOp: median(rounds), pairs: pairs.get(s.name)!, rounds });
  }
  return out;
}

// ---- report ---------------------------------------------------------------------------------

interface Row {
  held: number;
  family: Family;
  nsPerOp: number;
  kernelNsPerOp: number | null;
  /** kernel / ours: how many times cheaper than the kernel we are. */
  ratio: number | null;
  pairsPerRound: number;
  kernelPairsPerRound: number | null;
  /** Spread of our rounds: interquartile range / median. */
  spread: number;
  kernelSpread: number | null;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (i - lo);
}
const spreadOf = (m: Measured): number => round2((quantile(m.rounds, 0.75) - quantile(m.rounds, 0.25)) / m.nsPerOp);

function fmtNs(ns: number | null): string {
  if (ns === null) return '-';
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

function pad(s: string, n: number, left = false): string {
  return left ? s.padEnd(n) : s.padStart(n);
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadavgAtStart = os.loadavg().map(round2);
  let kernel: Kernel | undefined;
  if (withKernel) {
    mkdirSync(path.dirname(C_BINARY), { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-o', C_BINARY, C_SOURCE], { stdio: 'inherit' });
    kernel = new Kernel();
  }
  console.log(`locksmith core benchmark: ${ROUNDS} rounds of ~${ROUND_NS / 1e6} ms per series, median; ns per op = (lock+unlock pair) / 2`);
  console.log(`held counts ${heldCounts.join(', ')}; families ${families.join(', ')}; kernel ${withKernel ? `fcntl F_SETLK on ${TMPFS}` : 'skipped'}\n`);

  // Warm the JIT on both families before the first (smallest) count is measured.
  for (const f of families) {
    const s = f === 'posix' ? posixSeries(1000) : windowsSeries(1000);
    const p = await calibrate(s);
    for (let i = 0; i < 4; i++) s.run(p);
  }

  const rows: Row[] = [];
  const kernelSetup: Record<string, unknown>[] = [];
  try {
    for (const held of heldCounts) {
      const t0 = Date.now();
      const series: Series[] = families.map((f) => (f === 'posix' ? posixSeries(held) : windowsSeries(held)));
      if (kernel !== undefined) {
        const h = await kernel.hold(held);
        kernelSetup.push({ held, setupMs: round1(h.setupNs! / 1e6), procLocksListed: h.procLocks === -1 ? 'not read' : h.procLocks });
        series.push(kernel.series());
      }
      gc();
      const m = await measure(series);
      const k = m.get('kernel');
      for (const f of families) {
        const ours = m.get(f)!;
        rows.push({
          held,
          family: f,
          nsPerOp: round1(ours.nsPerOp),
          kernelNsPerOp: k === undefined ? null : round1(k.nsPerOp),
          ratio: k === undefined ? null : round2(k.nsPerOp / ours.nsPerOp),
          pairsPerRound: ours.pairs,
          kernelPairsPerRound: k?.pairs ?? null,
          spread: spreadOf(ours),
          kernelSpread: k === undefined ? null : spreadOf(k),
        });
      }
      const line = families.map((f) => `${f} ${fmtNs(m.get(f)!.nsPerOp)}`).join(', ');
      console.log(`  held ${held}: ${line}${k === undefined ? '' : `, kernel ${fmtNs(k.nsPerOp)}`} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await kernel?.close();
  }

  // The table.
  console.log('');
  const header = `${pad('held', 8)}  ${pad('family', 8, true)} ${pad('ours/op', 10)} ${pad('kernel/op', 11)} ${pad('kernel/ours', 12)}   IQR/median ours, kernel`;
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const r of rows) {
    console.log(
      `${pad(r.held.toLocaleString('en-US'), 8)}  ${pad(r.family, 8, true)} ${pad(fmtNs(r.nsPerOp), 10)} ${pad(fmtNs(r.kernelNsPerOp), 11)} ${pad(r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`, 12)}   ${(r.spread * 100).toFixed(0)}%, ${r.kernelSpread === null ? '-' : `${(r.kernelSpread * 100).toFixed(0)}%`}`,
    );
  }

  // The targets.
  const targets: Record<string, unknown>[] = [];
  const at = (held: number, f: Family): Row | undefined => rows.find((r) => r.held === held && r.family === f);
  console.log('');
  for (const f of families) {
    const r10k = at(10_000, f);
    if (r10k?.ratio != null) {
      const met = r10k.ratio >= 20;
      targets.push({ family: f, target: 'at 10,000 held, kernel/ours >= 20', value: r10k.ratio, met });
      console.log(`${f}: at 10,000 held we are ${r10k.ratio.toFixed(1)}x cheaper than the kernel (target >= 20x): ${met ? 'MET' : 'MISSED'}`);
    }
    const r0 = at(0, f);
    if (r0?.kernelNsPerOp != null) {
      const x = round2(r0.nsPerOp / r0.kernelNsPerOp);
      const met = x <= 5;
      targets.push({ family: f, target: 'at 0 held, ours/kernel <= 5', value: x, met });
      console.log(`${f}: with nothing held we cost ${x.toFixed(2)}x the kernel's syscall (target <= 5x): ${met ? 'MET' : 'MISSED'}`);
    }
    const a = at(10, f);
    const b = at(100_000, f);
    if (a !== undefined && b !== undefined) {
      const g = round2(b.nsPerOp / a.nsPerOp);
      const met = g < 4;
      targets.push({ family: f, target: 'ours(100,000 held) / ours(10 held) < 4', value: g, met });
      const kg = a.kernelNsPerOp != null && b.kernelNsPerOp != null ? ` (kernel grows ${Math.round(b.kernelNsPerOp / a.kernelNsPerOp).toLocaleString('en-US')}x)` : '';
      console.log(`${f}: from 10 to 100,000 held our cost grows ${g.toFixed(2)}x (target < 4x): ${met ? 'MET' : 'MISSED'}${kg}`);
    }
  }

  const elapsed = (Date.now() - started) / 1000;
  console.log(`\ntotal ${elapsed.toFixed(1)} s`);
  if (!fullRun) {
    console.log('(partial run: bench/results/core.json not written)');
    return;
  }
  const cpus = os.cpus();
  const out = {
    rows,
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      loadavgAtStart,
      loadavgAtEnd: os.loadavg().map(round2),
    },
    date: new Date().toISOString(),
    method: {
      nsPerOp: 'median over rounds of (round time / pairs / 2); one op = a lock or an unlock',
      rounds: ROUNDS,
      roundMs: ROUND_NS / 1e6,
      heldLocks: '[20i, 20i+9], i < held, one other owner (kernel: a forked process)',
      measuredRange: '[20k+12, 20k+16], k = floor(held/2)',
      kernel: `fcntl F_SETLK on ${TMPFS} (bench/kernel-locks.c, cc -O2)`,
      kernelSetup,
      seconds: round1(elapsed),
    },
    targets,
  };
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  writeFileSync(`${RESULTS}.tmp`, `${JSON.stringify(out, null, 2)}\n`);
  renameSync(`${RESULTS}.tmp`, RESULTS);
  console.log(`wrote ${path.relative(ROOT, RESULTS)}`);
}

await main();
