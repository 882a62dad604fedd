/**
 * Client processes: each POSIX client of the workload is a lockclient process (driver/lockclient.c)
 * calling fcntl and flock on real files, stamping each call with CLOCK_MONOTONIC before and after.
 * Used by the mount target (files on the FUSE mount) and the kernel comparison (files on tmpfs).
 *
 * The runner streams each client its operations a few at a time (so a stopped budget stops it
 * quickly) and reads back one line per operation. Each client's events are in its own stamp order;
 * the merger hands the oracle every event older than what any client can still report.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ClientObserver, type Naming } from '../observer.js';
import type { GetlkAnswer, LogEvent } from '../oracle.js';
import type { LockCoordinator } from '../../src/index.js';
import type { Stage } from '../stage.js';
import type { Op } from '../workloads.js';
import { apiClient } from './api.js';

/** Operations a client has been sent and not answered yet. */
const WINDOW = 8;

/** driver/lockclient.c, found from this module whether it runs as TypeScript or from dist/ (the tests build it too). */
export const SOURCE = ((): string => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'driver', 'lockclient.c');
    if (existsSync(candidate) || dirname(dir) === dir) return candidate;
  }
})();

/** Why client processes cannot run here, or undefined. */
export async function processUnavailable(): Promise<string | undefined> {
  if (!existsSync(SOURCE)) return `the client source ${SOURCE} is missing`;
  try {
    await promisify(execFile)('cc', ['--version']);
  } catch {
    return 'there is no C compiler (cc) to build the client processes';
  }
  return undefined;
}

/** Compiles lockclient.c once per source version into the temp directory; returns the binary. */
export async function buildClient(): Promise<string> {
  const src = readFileSync(SOURCE);
  const dir = join(tmpdir(), `locksmith-stress-${createHash('sha256').update(src).digest('hex').slice(0, 12)}`);
  const bin = join(dir, 'lockclient');
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  await promisify(execFile)('cc', ['-O2', '-Wall', '-o', tmp, SOURCE]);
  await rename(tmp, bin);
  return bin;
}

/** Orders the events of several clients by stamp, as far as every client has reported. */
export class Merger {
  private readonly queues: LogEvent[][];
  private readonly heads: number[];
  /** Per client: no later event of it will be stamped below this. */
  private readonly marks: number[];

  constructor(
    n: number,
    private readonly out: (e: LogEvent) => void,
  ) {
    this.queues = Array.from({ length: n }, () => []);
    this.heads = new Array<number>(n).fill(0);
    this.marks = new Array<number>(n).fill(-Infinity);
  }

  push(client: number, e: LogEvent): void {
    this.queues[client]!.push(e);
  }

  mark(client: number, t: number): void {
    this.marks[client] = t;
  }

  /** Emits every event stamped at or below the lowest mark (`floor` caps it too). */
  flush(floor = Infinity): void {
    const limit = Math.min(floor, ...this.marks);
    for (;;) {
      let best = -1;
      let bestT = Infinity;
      for (let c = 0; c < this.queues.length; c++) {
        const e = this.queues[c]![this.heads[c]!];
        if (e !== undefined && e.t <= limit && e.t < bestT) [best, bestT] = [c, e.t];
      }
      if (best < 0) break;
      const q = this.queues[best]!;
      this.out(q[this.heads[best]!++]!);
      if (this.heads[best]! > 4096) {
        q.splice(0, this.heads[best]!);
        this.heads[best] = 0;
      }
    }
  }
}

/** The line that asks a lockclient for `op`. */
export function line(op: Op): string {
  const limit = 'timeoutMs' in op || 'cancelMs' in op ? Math.max(1, op.timeoutMs ?? op.cancelMs ?? 0) : 0;
  switch (op.op) {
    case 'lock':
      return `L ${op.role[0]} ${op.type} ${op.wait ? 1 : 0} ${op.file} ${op.start} ${op.len} ${limit}\n`;
    case 'getlk':
      return `G ${op.role[0]} ${op.type} ${op.file} ${op.start} ${op.len}\n`;
    case 'flock':
      return `F ${op.type} ${op.wait ? 1 : 0} ${op.file} ${limit}\n`;
    case 'close':
      return `C ${op.role[0]} ${op.file}\n`;
    case 'winlock':
    case 'winunlock':
      throw new Error('a client process cannot make Windows calls');
  }
}

/** A lockclient's F_GETLK answer (the fields after RESULT). */
export function answerOf(fields: string[]): GetlkAnswer {
  const [type, start, len, pid] = fields.map(Number) as [number, number, number, number];
  if (type === 2) return { free: true };
  return { free: false, write: type === 1, start, end: len === 0 ? Infinity : start + len - 1, pid };
}

/** One client process: sends its stream, turns its answers into events. */
export class ProcessClient {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  pid = 0;
  private readonly sent: Op[] = [];
  private readonly obs: ClientObserver;
  private cleanup: Op[] | undefined;
  private lastT = 0;
  private quit = false;

  constructor(
    bin: string,
    dir: string,
    private readonly stage: Stage,
    readonly client: number,
    naming: Naming,
    private readonly merger: Merger,
  ) {
    this.obs = new ClientObserver(client, naming, stage.ids, (e) => merger.push(client, e));
    // Its own process group, so that a terminal's Ctrl-C reaches the runner alone, which stops it.
    this.child = spawn(bin, [dir], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    this.child.stdin!.on('error', () => {}); // a client killed at the end: nothing more to send
    // 'close', not 'exit': every line it wrote has been read by then.
    this.exited = new Promise((r) => this.child.once('close', () => r()));
    this.exited.then(() => merger.mark(client, Infinity));
    merger.mark(client, 0);
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.onLine(l));
  }

  private onLine(l: string): void {
    if (l.startsWith('ready ')) {
      this.pid = Number(l.slice(6));
      this.topUp();
      return;
    }
    const op = this.sent.shift();
    if (op === undefined || this.stage.closed) return;
    const [a, b, r, ...rest] = l.split(' ');
    const t0 = this.stage.clock.from(BigInt(a!));
    const t1 = this.stage.clock.from(BigInt(b!));
    const result = Number(r);
    this.obs.begin(op, t0);
    const outcome = this.obs.end(t1, result, op.op === 'getlk' && result === 0 ? answerOf(rest) : undefined);
    this.stage.metrics.record(op, t0, t1, outcome);
    if ('wait' in op && op.wait) this.stage.metrics.waiting--;
    this.lastT = t1;
    this.merger.mark(this.client, t1);
    this.markWaiting();
    this.topUp();
  }

  /** The operation at the head of the window is the one running: count it while it may wait. */
  private markWaiting(): void {
    const head = this.sent[0];
    if (head !== undefined && 'wait' in head && head.wait) this.stage.metrics.waiting++;
  }

  private send(op: Op): void {
    this.sent.push(op);
    if (this.sent.length === 1) this.markWaiting();
    this.child.stdin!.write(line(op));
  }

  private topUp(): void {
    if (this.quit) return;
    const stream = this.stage.streams[this.client]!;
    while (this.sent.length < WINDOW && this.cleanup === undefined) {
      if (this.stage.take()) this.send(stream.next());
      else this.cleanup = stream.cleanup();
    }
    while (this.sent.length < WINDOW && this.cleanup !== undefined && this.cleanup.length > 0) this.send(this.cleanup.shift()!);
    if (this.cleanup !== undefined && this.cleanup.length === 0 && !this.quit) {
      this.quit = true;
      this.child.stdin!.write('Q\n');
      this.child.stdin!.end();
    }
  }

  /** At the cut: the operation it is stuck in began after its last answer and has no reply. */
  abandon(): void {
    const op = this.sent[0];
    if (op !== undefined) this.obs.begin(op, this.lastT + 1);
    this.merger.mark(this.client, Infinity);
    this.child.kill('SIGKILL');
  }
}

/**
 * Runs the stage's clients: POSIX clients as processes working in `dir`, Windows clients in this
 * process through `windows` (a coordinator deciding the same files), or not at all without one.
 * `naming` gets each process client's pid from `pidOf`. Returns how many clients ran.
 */
export async function driveClients(stage: Stage, dir: string, naming: (pidOf: (client: number) => number) => Naming, windows?: LockCoordinator): Promise<number> {
  const bin = await buildClient();
  const merger = new Merger(stage.spec.clients, stage.feed);
  const procs = new Map<number, ProcessClient>();
  const names = naming((c) => procs.get(c)?.pid ?? 0);
  const running: Promise<void>[] = [];
  stage.begin();
  for (const s of stage.streams) {
    if (s.personality === 'posix') {
      const p = new ProcessClient(bin, dir, stage, s.client, names, merger);
      procs.set(s.client, p);
      running.push(p.exited);
    } else if (windows !== undefined) {
      // Stamped as they happen: the flush floor (now) covers them.
      merger.mark(s.client, Infinity);
      running.push(apiClient(stage, windows, names, s.client, (e) => merger.push(s.client, e)));
    } else {
      merger.mark(s.client, Infinity);
    }
  }
  const flusher = setInterval(() => merger.flush(stage.clock.now()), 50);
  try {
    if (!(await stage.drain(running))) {
      stage.notes.push(`clients were still waiting ${stage.drainMs} ms after the load ended`);
      for (const p of procs.values()) p.abandon();
    }
    await Promise.all([...procs.values()].map((p) => p.exited));
    merger.flush(stage.clock.now());
  } finally {
    clearInterval(flusher);
    for (const p of procs.values()) p.child.kill('SIGKILL');
  }
  return running.length;
}
