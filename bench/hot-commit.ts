/**
 * Scratch driver (not a judged bench): row 6's hot file alone (3 node processes, 4 owners each,
 * F_SETLKW write lock of [0, 100) then unlock), measuring the COMMIT script inside redis-server:
 * INFO commandstats (evalsha usec_per_call), the redis-server CPU per cycle, the nodes' counters,
 * and with --monitor, a MONITOR capture of the commands the scripts run, per EVALSHA by command.
 * Also the nodes' CPU per cycle (their processes, workers included: /proc stat), and with
 * --cpu-prof=DIR, V8 CPU profiles of every node thread written to DIR; --node-args='A B' are
 * more flags for the node processes (--trace-gc: their scavenges, per cycle of all rounds, are an
 * allocation count that the machine's load does not move).
 *   node dist/bench/hot-commit.js [--hot-ms=1500] [--rounds=3] [--monitor] [--cpu-prof=DIR] [--node-args='--trace-gc']
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RedisServer } from '../driver/redis-server.js';
import { openStore } from '../src/store/index.js';
import { median, option } from './report.js';

const NODE_SCRIPT = fileURLToPath(new URL('./cluster-node.js', import.meta.url));
const HOT_MS = Number(option('hot-ms') ?? 1500);
const ROUNDS = Number(option('rounds') ?? 3);
const MONITOR = process.argv.includes('--monitor');
const CPU_PROF = option('cpu-prof');
const NODE_ARGS = option('node-args');
const NS = 'bench';
const base = process.hrtime.bigint();

class Node {
  readonly proc: ChildProcess;
  private nextId = 0;
  private readonly calls = new Map<number, (m: { ok?: boolean; r?: unknown; error?: string }) => void>();
  private readonly ready: Promise<void>;
  constructor() {
    const execArgv = [...(CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`]), ...(NODE_ARGS?.split(' ').filter((a) => a !== '') ?? [])];
    this.proc = fork(NODE_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    this.proc.on('message', (m: { id?: number; ev?: string; ok?: boolean; r?: unknown; error?: string }) => {
      if (m.ev === 'ready') return ready();
      if (m.id === undefined) return;
      const c = this.calls.get(m.id);
      this.calls.delete(m.id);
      c?.(m);
    });
  }
  async start(url: string): Promise<this> {
    await this.ready;
    await this.call('start', { url, namespace: NS, sessionTtlMs: 10_000, workers: 1, base: base.toString() });
    return this;
  }
  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, (m) => (m.ok ? resolve(m.r as T) : reject(new Error(m.error))));
      this.proc.send({ id, op, ...args });
    });
  }
  async stop(): Promise<void> {
    const gone = new Promise((r) => this.proc.once('exit', r));
    await this.call('stop').catch(() => {});
    await gone;
  }
}

function cpuUs(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 1e4;
}

interface Counters { roundTrips: number; commits: number; stale: number; renewals: number }
async function counters(nodes: Node[]): Promise<Counters> {
  const v = await Promise.all(nodes.map((n) => n.call<Counters>('stats')));
  return v.reduce((a, b) => ({ roundTrips: a.roundTrips + b.roundTrips, commits: a.commits + b.commits, stale: a.stale + b.stale, renewals: a.renewals + b.renewals }));
}

function evalsha(info: string): { calls: number; usec: number } {
  const m = info.match(/cmdstat_evalsha:calls=(\d+),usec=(\d+)/);
  return { calls: Number(m?.[1] ?? 0), usec: Number(m?.[2] ?? 0) };
}

const server = await RedisServer.start();
const nodes: Node[] = [];
try {
  const obs = new Redis(server.url);
  await (await openStore({ url: server.url, namespace: NS, node: 'bench-init' }, {}, { graceMs: 0 })).close();
  for (let k = 0; k < 3; k++) nodes.push(await new Node().start(server.url));
  const pid = Number(((await obs.info('server')) as string).match(/process_id:(\d+)/)?.[1]);
  const perCycle: number[] = [];
  const nodePerCycle: number[] = [];
  const usecPerCall: number[] = [];
  const cycles: number[] = [];
  const commitsPerCycle: number[] = [];
  const stalePerCycle: number[] = [];
  let mon: Redis | undefined;
  let monConn: Redis | undefined;
  const lines: string[] = [];
  let allCycles = 0;
  for (let r = 0; r <= ROUNDS; r++) {
    await obs.config('RESETSTAT');
    if (MONITOR && r === ROUNDS) {
      mon = new Redis(server.url);
      const m = await mon.monitor();
      monConn = m;
      m.on('monitor', (_time: string, args: string[], source: string) => lines.push(`${source}\t${args[0]}\t${args.slice(1).map((a) => a.length).join(',')}\t${args[1] ?? ''}`));
    }
    const c0 = await counters(nodes);
    const cpu0 = cpuUs(pid);
    const nodeCpu0 = nodes.reduce((a, x) => a + cpuUs(x.proc.pid!), 0);
    const ev = await Promise.all(nodes.map((n, k) => n.call<unknown[]>('hot', { path: '/bench/hot', clients: 4, ms: HOT_MS, owner0: 1 + k * 100 })));
    const cpu = cpuUs(pid) - cpu0;
    const nodeCpu = nodes.reduce((a, x) => a + cpuUs(x.proc.pid!), 0) - nodeCpu0;
    const c1 = await counters(nodes);
    const stats = (await obs.info('commandstats')) as string;
    const es = evalsha(stats);
    if (r === ROUNDS - (MONITOR ? 1 : 0)) {
      console.log('commandstats (per EVALSHA):');
      for (const m of stats.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)) console.log(`  ${m[1]!.padEnd(16)} ${(Number(m[2]) / es.calls).toFixed(2)} calls, ${(Number(m[3]) / es.calls).toFixed(1)} µs`);
    }
    const n = ev.reduce((a, b) => a + b.length, 0);
    allCycles += n;
    if (r === 0) continue;
    perCycle.push(cpu / n);
    nodePerCycle.push(nodeCpu / n);
    usecPerCall.push(es.usec / es.calls);
    cycles.push(n / (HOT_MS / 1000));
    commitsPerCycle.push((c1.commits - c0.commits) / n);
    stalePerCycle.push((c1.stale - c0.stale) / n);
    console.log(`round ${r}: ${(n / (HOT_MS / 1000)).toFixed(0)} cycles/s; redis CPU ${(cpu / n).toFixed(0)} µs/cycle; nodes CPU ${(nodeCpu / n).toFixed(0)} µs/cycle; evalsha ${es.calls} calls ${(es.usec / es.calls).toFixed(1)} µs/call (commandstats incl. renewals); commits/cycle ${((c1.commits - c0.commits) / n).toFixed(2)} stale/cycle ${((c1.stale - c0.stale) / n).toFixed(2)}${MONITOR && r === ROUNDS ? ' [MONITOR on]' : ''}`);
  }
  console.log(`median: ${median(cycles).toFixed(0)} cycles/s; redis CPU ${median(perCycle).toFixed(0)} µs/cycle; nodes CPU ${median(nodePerCycle).toFixed(0)} µs/cycle; evalsha ${median(usecPerCall).toFixed(1)} µs/call; commits/cycle ${median(commitsPerCycle).toFixed(2)}; stale/cycle ${median(stalePerCycle).toFixed(2)}`);
  console.log(`cycles of all rounds (round 0 too): ${allCycles}`);
  if (mon !== undefined) {
    monConn?.disconnect();
    mon.disconnect();
    // Per EVALSHA: the commands the script ran (lines tagged lua follow their EVALSHA).
    const by = new Map<string, number>();
    let evals = 0;
    const bytes = new Map<string, number>();
    for (const l of lines) {
      const [src, cmd, lens, key] = l.split('\t');
      const c = cmd!.toUpperCase();
      if (src === 'lua') {
        const k = `${c} ${(key ?? '').replace(/^\{bench\}:/, '').replace(/:.*$/, ':')}`;
        by.set(k, (by.get(k) ?? 0) + 1);
        if (c === 'HSET' || c === 'RPUSH') bytes.set(k, (bytes.get(k) ?? 0) + lens!.split(',').reduce((a, b) => a + Number(b), 0));
      } else if (c === 'EVALSHA') evals++;
    }
    console.log(`MONITOR: ${evals} EVALSHA`);
    for (const [k, v] of [...by].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(24)} ${(v / evals).toFixed(2)} per EVALSHA${bytes.has(k) ? `, ${(bytes.get(k)! / v).toFixed(0)} B of args per call` : ''}`);
  }
  // Set only by a copy of the script with timing marks (phase -> µs, c:phase -> count).
  const prof = await obs.hgetall('{bench}:prof');
  if (Object.keys(prof).length > 0) console.log(`prof ${JSON.stringify(prof)}`);
  obs.disconnect();
} finally {
  for (const n of nodes) await n.stop();
  await server.stop();
}
process.exit(0);
