/**
 * What a run measures: latency by operation kind (log-bucketed histograms, so millions of samples
 * cost a few hundred numbers), the time blocking requests spent, throughput and queue depth over
 * time. Times come in as ns stamps.
 */
import type { Outcome } from './oracle.js';
import type { Op } from './workloads.js';

/** Buckets of 2^(1/4) growth from 1 µs: bucket i holds [2^(i/4), 2^((i+1)/4)) µs. */
const SUB = 4;
const BUCKETS = 30 * SUB;

export class Histogram {
  readonly counts = new Array<number>(BUCKETS).fill(0);
  n = 0;
  max = 0;
  sum = 0;

  add(us: number): void {
    const i = us < 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log2(us) * SUB));
    this.counts[i]!++;
    this.n++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  /** Upper edge of the bucket holding the p-quantile (µs). */
  quantile(p: number): number {
    if (this.n === 0) return 0;
    const rank = Math.ceil(p * this.n);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, 2 ** ((i + 1) / SUB));
    }
    return this.max;
  }

  /** Non-empty buckets as [lower edge µs, count]. */
  buckets(): [number, number][] {
    const out: [number, number][] = [];
    this.counts.forEach((c, i) => c > 0 && out.push([i === 0 ? 0 : 2 ** (i / SUB), c]));
    return out;
  }

  summary(): HistogramSummary {
    return {
      count: this.n,
      meanUs: this.n === 0 ? 0 : this.sum / this.n,
      p50Us: this.quantile(0.5),
      p90Us: this.quantile(0.9),
      p99Us: this.quantile(0.99),
      p999Us: this.quantile(0.999),
      maxUs: this.max,
      buckets: this.buckets(),
    };
  }
}

export interface HistogramSummary {
  count: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  buckets: [number, number][];
}

/** The kind an operation is reported under. */
export function label(op: Op): string {
  switch (op.op) {
    case 'lock':
      return op.type === 2 ? 'unlock' : op.wait ? 'setlkw' : 'setlk';
    case 'getlk':
      return 'getlk';
    case 'flock':
      return op.type === 2 ? 'flock-un' : op.wait ? 'flock-wait' : 'flock-nb';
    case 'winlock':
      return op.wait ? 'lockfile-wait' : 'lockfile';
    case 'winunlock':
      return 'unlockfile';
    case 'close':
      return op.role === 'windows' ? 'closehandle' : 'close';
  }
}

export interface Sample {
  /** Seconds since the stage started. */
  at: number;
  opsPerSec: number;
  /** Blocking requests outstanding, as the clients see them. */
  waitingClients: number;
  /** Requests queued in the lock manager (stats().waiting), when the target can tell. */
  waitingServer: number | null;
}

export class Metrics {
  private readonly byKind = new Map<string, Histogram>();
  readonly waits = new Histogram();
  readonly outcomes: Record<string, Partial<Record<Outcome, number>>> = {};
  readonly timeline: Sample[] = [];
  ops = 0;
  waiting = 0;
  private lastOps = 0;
  private lastAt = 0;

  /** One finished operation, stamped before the call and after the answer (ns). */
  record(op: Op, t0: number, t1: number, outcome: Outcome): void {
    const kind = label(op);
    let h = this.byKind.get(kind);
    if (h === undefined) this.byKind.set(kind, (h = new Histogram()));
    const us = (t1 - t0) / 1000;
    h.add(us);
    if ('wait' in op && op.wait) this.waits.add(us);
    this.count(op, outcome);
  }

  /** One finished operation whose duration is unknown (the pump's log is ordered, not timed). */
  count(op: Op, outcome: Outcome): void {
    const o = (this.outcomes[label(op)] ??= {});
    o[outcome] = (o[outcome] ?? 0) + 1;
    this.ops++;
  }

  /** Adds a point to the timeline (call every sampling period). */
  sample(atSec: number, waitingServer: number | null): Sample {
    const dt = atSec - this.lastAt;
    const s: Sample = { at: atSec, opsPerSec: dt > 0 ? (this.ops - this.lastOps) / dt : 0, waitingClients: this.waiting, waitingServer };
    this.lastOps = this.ops;
    this.lastAt = atSec;
    this.timeline.push(s);
    return s;
  }

  latency(): Record<string, HistogramSummary> {
    return Object.fromEntries([...this.byKind.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, h]) => [k, h.summary()]));
  }
}
