/**
 * One stage of a run: a workload on one target. The harness around every target: the clients'
 * streams and knowledge, the clock, the budget (duration or operation count), sampling for the
 * timeline and the live progress, the oracle, and the result a report is made of.
 */
import { Metrics, type HistogramSummary, type Rates, type Sample } from './metrics.js';
import { Ids } from './observer.js';
import { Oracle, type LockKind, type LogEvent, type OracleSummary } from './oracle.js';
import { streamsFor, type ClientStream } from './workloads.js';

export type TargetName = 'api' | 'mount' | 'pump' | 'kernel' | 'nodes';

export interface StageSpec {
  target: TargetName;
  workload: string;
  seed: number;
  clients: number;
  files: number;
  /** Worker threads of the lock manager (api, mount, pump). */
  workers: number;
  /** Stop issuing new operations after this long (s), or after `ops` operations in all. */
  durationSec?: number;
  ops?: number;
  /** Locks held by the 'many' workload (default 100,000). */
  manyLocks?: number;
  /** Keep the whole oracle log in the result (tests). */
  keepLog?: boolean;
  /** After the budget, how long clients get to clean up before waits count as unanswered (ms). */
  drainMs?: number;
  /** Ends the load early (SIGINT); the clients still clean up and the oracle still judges. */
  signal?: AbortSignal;
  /** The nodes target: node processes sharing one lock space (default 2). */
  nodes?: number;
  /** The nodes target: inject faults (kill -9 of a node, SIGSTOP past its session, an engine restart, one from an older snapshot); default true. */
  faults?: boolean;
  /** The nodes target: each node also mounts one shared directory, with client processes on it, when FUSE is there (default true). */
  mounts?: boolean;
  /** The nodes target: which faults a round injects, in order (default FAULT_KINDS). */
  faultKinds?: readonly FaultKind[];
}

/** The nodes target's faults (targets/nodes.ts): kill -9 of a node, SIGSTOP past its TTL, an engine restart with nothing kept, one from an older snapshot. */
export type FaultKind = 'kill' | 'stop' | 'engine' | 'snapshot';
/** A round of faults, in order. */
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'stop', 'engine', 'snapshot'];

export interface Progress {
  elapsedSec: number;
  /** Fraction of the budget used, 0..1. */
  done: number;
  ops: number;
  opsPerSec: number;
  waiting: number;
}

export interface StageResult {
  target: TargetName;
  workload: string;
  seed: number;
  clients: number;
  /** Clients that ran (a target may not support every personality, e.g. no Windows clients on the kernel). */
  clientsRun: number;
  files: number;
  workers: number;
  durationSec: number;
  ops: number;
  opsPerSec: number;
  oracle: OracleSummary;
  latency: Record<string, HistogramSummary>;
  waits: HistogramSummary;
  outcomes: Metrics['outcomes'];
  /** Answers to lock requests by outcome, in all (the timeline has them per period). */
  answers: Rates;
  timeline: Sample[];
  notes: string[];
  /** Why the stage has no latencies, when it has none by nature (the pump's log is not timed). */
  untimed?: string;
  /** The nodes target: its nodes, their operations and the faults injected. */
  nodes?: NodesResult;
  log?: LogEvent[];
}

/** What one kind of fault did over a run of the nodes target. */
export interface FaultSummary {
  tries: number;
  failures: number;
  /** Per measured time (ms), one value per try that measured it. */
  timesMs: Record<string, number[]>;
  /** Why each failed try failed. */
  why: string[];
}

export interface NodesResult {
  nodes: number;
  sessionTtlMs: number;
  engine: string;
  /** Whether the nodes mounted one shared directory with client processes on each mount, or why not. */
  mounts?: { ran: true; processes: number } | { ran: false; why: string };
  /** Every node process that ran (a killed node is replaced by a new one under a new name). */
  /** onMount: the clients that ran on its mount (lockclient processes), when mounts ran. */
  perNode: { node: string; slot: number; clients: number; onMount?: number; ops: number; sessions: number; commits: number; stale: number; fencedLocally: number; ended: string }[];
  faults: Record<string, FaultSummary>;
  /** Grants learned by a client while its node had lost its session: not counted as holds (see nodes.ts). */
  grantsWhileLost: number;
  /** Replies given while their node had lost its session or could not reach the engine. */
  repliesWhileLost: number;
  /** Each fault as it happened, one line each. */
  log: string[];
}

/** ns since the stage began on CLOCK_MONOTONIC (process.hrtime), strictly increasing within this process. */
export class Clock {
  private last = -1;

  /** `base`: the zero of the scale (another process's clock shares it to stamp on the same scale). */
  constructor(readonly base = process.hrtime.bigint()) {}

  now(): number {
    const t = Number(process.hrtime.bigint() - this.base);
    this.last = t > this.last ? t : this.last + 1;
    return this.last;
  }

  /** A CLOCK_MONOTONIC reading in ns from another process, on this clock's scale. */
  from(monotonicNs: bigint): number {
    return Number(monotonicNs - this.base);
  }
}

export const SAMPLE_MS = 250;

/** Everything a target needs besides its own machinery. */
export class Stage {
  readonly clock = new Clock();
  readonly metrics = new Metrics();
  readonly ids = new Ids();
  readonly oracle: Oracle;
  readonly streams: ClientStream[];
  readonly log: LogEvent[] | undefined;
  readonly notes: string[] = [];
  /** Set by a target that cannot time its operations: why (see StageResult.untimed). */
  untimed: string | undefined;
  private issued = 0;
  /** Set when no operation finished for drainMs (the sampler stopped the load). */
  stalled = false;
  /** While above 0, the budget does not end the load (a fault being injected needs it going). */
  private holds = 0;
  private stopAt = Infinity;
  /** When the load began (begin()): the start-up before it (nodes, mounts, workers) is no part of the load's duration. */
  private beganAt: number | undefined;
  private endedAt = 0;
  /** Set once the log is closed: late events are dropped. */
  private cut = false;
  private exhaust!: () => void;
  /** Resolves when the budget is used up, or when no operation has finished for drainMs (a stall). */
  readonly exhausted = new Promise<void>((r) => (this.exhaust = r));

  constructor(
    readonly spec: StageSpec,
    deadlockKinds: readonly LockKind[],
    private readonly onProgress?: (p: Progress) => void,
    /** Stamp units a certain cycle of waits may last (default 3 s in ns). */
    cycleTolerance = 3e9,
  ) {
    this.oracle = new Oracle({ deadlockKinds, cycleTolerance });
    this.streams = streamsFor({ workload: spec.workload, seed: spec.seed, clients: spec.clients, files: spec.files, ...(spec.manyLocks === undefined ? {} : { manyLocks: spec.manyLocks }) });
    this.log = spec.keepLog ? [] : undefined;
  }

  /** Feeds the oracle (events must come in stamp order). */
  readonly feed = (e: LogEvent): void => {
    if (this.cut) return;
    this.log?.push(e);
    this.oracle.feed(e);
  };

  get closed(): boolean {
    return this.cut;
  }

  /** Marks the start of the load. */
  begin(): void {
    this.beganAt = this.clock.now();
    if (this.spec.durationSec !== undefined) this.stopAt = this.beganAt + this.spec.durationSec * 1e9;
    const stop = () => {
      this.stopAt = -Infinity;
      this.exhaust();
    };
    if (this.spec.signal?.aborted) stop();
    this.spec.signal?.addEventListener('abort', stop, { once: true });
  }

  /** May one more operation start? Counts it if so. */
  take(): boolean {
    const spent = this.clock.now() >= this.stopAt || (this.spec.ops !== undefined && this.issued >= this.spec.ops);
    if (this.cut || this.stopAt === -Infinity || (spent && this.holds === 0)) {
      this.exhaust();
      return false;
    }
    this.issued++;
    return true;
  }

  /** Keeps the load going past its budget until the returned function is called (not past SIGINT). */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (!released) this.holds--;
      released = true;
    };
  }

  /** Whether the budget is used up (holds aside). */
  get spent(): boolean {
    return this.clock.now() >= this.stopAt || (this.spec.ops !== undefined && this.issued >= this.spec.ops);
  }

  /** Milliseconds of the duration budget left (Infinity with an operation count, or before begin()). */
  get remainingMs(): number {
    return this.stopAt === Infinity ? Infinity : Math.max(0, (this.stopAt - this.clock.now()) / 1e6);
  }

  /** Seconds since the load began (0 before begin()). */
  private loadSec(now = this.clock.now()): number {
    return this.beganAt === undefined ? 0 : (now - this.beganAt) / 1e9;
  }

  get drainMs(): number {
    return this.spec.drainMs ?? 15000;
  }

  private done(): number {
    if (this.spec.ops !== undefined) return Math.min(1, this.issued / this.spec.ops);
    return Math.min(1, this.loadSec() / this.spec.durationSec!);
  }

  /** Samples every SAMPLE_MS until stopped; `server` reads the manager's queue depth if it can. */
  startSampling(server?: () => Promise<number>): () => void {
    let last: number | null = null;
    let busy = false;
    let progressAt = this.clock.now();
    let opsSeen = 0;
    const timer = setInterval(() => {
      const now = this.clock.now();
      if (this.metrics.ops !== opsSeen) [opsSeen, progressAt] = [this.metrics.ops, now];
      if (now >= this.stopAt) this.exhaust();
      if (now - progressAt > this.drainMs * 1e6) {
        this.notes.push(`no operation finished for ${this.drainMs} ms: the load was stopped`);
        this.stalled = true;
        progressAt = Infinity;
        this.exhaust();
      }
      if (server !== undefined && !busy) {
        busy = true;
        server().then(
          (n) => {
            last = n;
            busy = false;
          },
          () => (busy = false),
        );
      }
      const s = this.metrics.sample(this.clock.now() / 1e9, last);
      this.onProgress?.({ elapsedSec: this.loadSec(), done: this.done(), ops: this.metrics.ops, opsPerSec: s.opsPerSec, waiting: s.waitingClients ?? s.waitingServer ?? 0 });
    }, SAMPLE_MS);
    return () => clearInterval(timer);
  }

  /**
   * Waits until the budget is used up, then for the clients, giving up drainMs later (their
   * pending requests then count as unanswered). False if it gave up.
   */
  async drain(clients: Promise<unknown>[]): Promise<boolean> {
    const all = Promise.all(clients);
    await Promise.race([this.exhausted, all]);
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([all.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.drainMs)))]);
    clearTimeout(timer);
    return finished;
  }

  /** Marks the end of the operations (every client done, or given up): the duration measured. */
  loadEnded(): void {
    this.endedAt ||= this.clock.now();
  }

  /** How long the load lasted, from begin() to loadEnded() (s). */
  get loadDurationSec(): number {
    return this.endedAt === 0 ? this.loadSec() : this.loadSec(this.endedAt);
  }

  /** Closes the log at `end` (a stamp): later events are dropped, pending requests are unanswered. */
  close(end = this.clock.now()): OracleSummary {
    this.loadEnded();
    const summary = this.oracle.finish(end);
    this.cut = true;
    return summary;
  }

  result(oracle: OracleSummary, clientsRun: number): StageResult {
    const s = this.spec;
    const durationSec = this.loadDurationSec;
    return {
      target: s.target,
      workload: s.workload,
      seed: s.seed,
      clients: s.clients,
      clientsRun,
      files: s.files,
      workers: s.workers,
      durationSec,
      ops: this.metrics.ops,
      opsPerSec: durationSec > 0 ? this.metrics.ops / durationSec : 0,
      oracle,
      latency: this.metrics.latency(),
      waits: this.metrics.waits.summary(),
      outcomes: this.metrics.outcomes,
      answers: this.metrics.answers,
      timeline: this.metrics.timeline,
      notes: this.notes,
      ...(this.untimed === undefined ? {} : { untimed: this.untimed }),
      ...(this.log === undefined ? {} : { log: this.log }),
    };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
