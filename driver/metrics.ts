/**
 * What a run measures: latency by operation kind, the time blocking requests spent, throughput,
 * queue depth and the rates of each outcome over time. Times come in as ns stamps.
 *
 * Latencies go into HdrHistogram (hdr-histogram-js, its pure-JS build) in integer ns with 3
 * significant digits: a percentile it reports is the recorded value of that nearest rank, or at
 * most 1/1024 (under 0.1%) above it. Count, mean, min and max are kept exactly beside it.
 */
import { JsHistogram, build, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import type { Outcome } from './oracle.js';
import { F_UNLCK, type Op } from './workloads.js';

export const SIGNIFICANT_DIGITS = 3;
/** The longest latency the histograms track, in ns (an hour); longer ones are recorded as an hour and counted in `clamped`. */
export const HIGHEST_NS = 3600e9;
/** Bins of the plotted distribution: this many per decade. */
const BINS_PER_DECADE = 10;

export class Histogram {
  private readonly h: JsHistogram;
  n = 0;
  sum = 0;
  min = Infinity;
  max = 0;
  clamped = 0;

  constructor() {
    const h = build({ useWebAssembly: false, bitBucketSize: 64, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_NS, numberOfSignificantValueDigits: SIGNIFICANT_DIGITS });
    if (!(h instanceof JsHistogram)) throw new Error('hdr-histogram-js built a histogram that is not its JS implementation');
    this.h = h;
  }

  /** Records one duration in ns (rounded to a whole ns). */
  add(ns: number): void {
    let v = Math.max(0, Math.round(ns));
    this.n++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (v > HIGHEST_NS) {
      this.clamped++;
      v = HIGHEST_NS;
    }
    this.h.recordValue(v);
  }

  /**
   * The value of nearest rank ceil(p * count) (ns), as HdrHistogram has it: the highest value
   * equivalent to the recorded one at 3 significant digits, never above the exact max.
   */
  quantile(p: number): number {
    return this.quantiles([p])[0]!;
  }

  /** quantile() of each of `ps` (ascending), in one pass over the recorded values. */
  quantiles(ps: readonly number[]): number[] {
    return this.walk(ps).quantiles;
  }

  /** Lowest and highest value HdrHistogram does not tell apart from `ns`. */
  equivalentRange(ns: number): [number, number] {
    return [this.h.lowestEquivalentValue(ns), this.h.highestEquivalentValue(ns)];
  }

  /** Non-empty plotting bins as [lower edge ns, count]: BINS_PER_DECADE per decade of ns. */
  bins(): [number, number][] {
    return this.walk([]).bins;
  }

  /** quantiles(ps) and bins() in one pass over the recorded values (a pass is most of the cost). */
  private walk(ps: readonly number[]): { quantiles: number[]; bins: [number, number][] } {
    const ranks = ps.map((p) => {
      // The rank in integer terms: p * n is off by an ulp for many p (0.323 * 23000 = 7429.000000000001),
      // and so is getValueAtPercentile's (p * 100 / 100) * n, which then answers the next rank.
      const x = p * this.n;
      return Math.max(1, Math.abs(x - Math.round(x)) < 1e-9 * x ? Math.round(x) : Math.ceil(x));
    });
    const quantiles = ps.map(() => (this.n === 0 ? 0 : this.max));
    const counts = new Map<number, number>();
    const it = this.h.recordedValuesIterator;
    it.reset();
    let i = 0;
    while (this.n > 0 && it.hasNext()) {
      const v = it.next();
      for (; i < ranks.length && v.totalCountToThisValue >= ranks[i]!; i++) quantiles[i] = Math.min(this.max, this.h.highestEquivalentValue(v.valueIteratedTo));
      const mid = this.h.medianEquivalentValue(v.valueIteratedTo);
      const bin = mid < 1 ? -1 : Math.floor(Math.log10(mid) * BINS_PER_DECADE + 1e-9);
      counts.set(bin, (counts.get(bin) ?? 0) + v.countAddedInThisIterationStep);
    }
    const bins = [...counts.entries()].sort(([a], [b]) => a - b).map(([bin, n]): [number, number] => [bin < 0 ? 0 : 10 ** (bin / BINS_PER_DECADE), n]);
    return { quantiles, bins };
  }

  summary(): HistogramSummary {
    const { quantiles, bins } = this.walk([0.5, 0.9, 0.99, 0.999]);
    const [p50, p90, p99, p999] = quantiles as [number, number, number, number];
    return {
      unit: 'ns',
      significantDigits: SIGNIFICANT_DIGITS,
      count: this.n,
      mean: this.n === 0 ? 0 : this.sum / this.n,
      min: this.n === 0 ? 0 : this.min,
      p50,
      p90,
      p99,
      p999,
      max: this.max,
      ...(this.clamped > 0 ? { clamped: this.clamped } : {}),
      bins,
      hdr: this.n === 0 ? '' : encodeIntoCompressedBase64(this.h),
    };
  }
}

/** One histogram in a report. Every value is in ns. */
export interface HistogramSummary {
  unit: 'ns';
  /** HdrHistogram's precision: percentiles are at most 10^-digits above the recorded value of their rank. */
  significantDigits: number;
  count: number;
  /** Exact: the recorded values' sum over their count. */
  mean: number;
  /** Exact. */
  min: number;
  /** Nearest-rank percentiles from HdrHistogram. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** Exact. */
  max: number;
  /** Values above HIGHEST_NS, recorded as HIGHEST_NS in the percentiles. */
  clamped?: number;
  /** For plotting only: [lower edge ns, count] of non-empty bins, BINS_PER_DECADE per decade. */
  bins: [number, number][];
  /** The HdrHistogram itself (encodeIntoCompressedBase64; decodeFromCompressedBase64 reads it back). */
  hdr: string;
}

/** `ns` at the histograms' precision (3 significant digits), with its unit. */
export function formatNs(ns: number): string {
  const units: [number, string][] = [
    [1e9, 's'],
    [1e6, 'ms'],
    [1e3, 'µs'],
  ];
  const sig = (x: number) => Number(x.toPrecision(SIGNIFICANT_DIGITS));
  for (const [scale, unit] of units) {
    if (sig(ns) >= scale) return `${sig(ns / scale).toLocaleString('en-US', { maximumFractionDigits: 2 })} ${unit}`;
  }
  return `${sig(ns)} ns`;
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

/** How the answers to lock requests are counted over time. */
export const RATE_KINDS = ['granted', 'conflict', 'EDEADLK', 'timeout', 'cancelled', 'error'] as const;
export type RateKind = (typeof RATE_KINDS)[number];

/**
 * How an answer counts in the outcome rates; undefined when the operation asks for no lock
 * (unlocks, F_GETLK, closes). A refused request that did not wait is a conflict; a waiting one
 * that ended early timed out (its own timeout) or was cancelled (a signal, or the end of the run).
 */
export function rateKind(op: Op, outcome: Outcome): RateKind | undefined {
  if (op.op === 'getlk' || op.op === 'winunlock' || op.op === 'close') return undefined;
  if (op.op !== 'winlock' && op.type === F_UNLCK) return undefined;
  switch (outcome) {
    case 'ok':
      return 'granted';
    case 'deadlock':
      return 'EDEADLK';
    case 'busy':
      return op.wait ? 'timeout' : 'conflict';
    case 'interrupted':
      return op.timeoutMs !== undefined ? 'timeout' : 'cancelled';
    case 'error':
      return 'error';
  }
}

export type Rates = Partial<Record<RateKind, number>>;

export interface Sample {
  /** Seconds since the stage started. */
  at: number;
  /** Operations finished so far. */
  ops: number;
  opsPerSec: number;
  /** Blocking requests outstanding, as the clients see them (null when the target cannot tell). */
  waitingClients: number | null;
  /** Requests queued in the lock manager (stats().waiting), when the target can tell. */
  waitingServer: number | null;
  /** Answers to lock requests per second since the previous sample, by outcome (absent: none). */
  rates: Rates;
}

export class Metrics {
  private readonly byKind = new Map<string, Histogram>();
  readonly waits = new Histogram();
  readonly outcomes: Record<string, Partial<Record<Outcome, number>>> = {};
  readonly timeline: Sample[] = [];
  /** Answers to lock requests in all, by how they count in the rates. */
  readonly answers: Rates = {};
  ops = 0;
  waiting = 0;
  /** False when the target cannot see its clients' blocking requests. */
  waitingKnown = true;
  private pending: Record<string, number> = {};
  private lastOps = 0;
  private lastAt = 0;

  /** One finished operation, stamped before the call and after the answer (ns). */
  record(op: Op, t0: number, t1: number, outcome: Outcome): void {
    const kind = label(op);
    let h = this.byKind.get(kind);
    if (h === undefined) this.byKind.set(kind, (h = new Histogram()));
    h.add(t1 - t0);
    if ('wait' in op && op.wait) this.waits.add(t1 - t0);
    this.count(op, outcome);
  }

  /** One finished operation whose duration is unknown (the pump's log is ordered, not timed); returns how it counts in the rates. */
  count(op: Op, outcome: Outcome): RateKind | undefined {
    const o = (this.outcomes[label(op)] ??= {});
    o[outcome] = (o[outcome] ?? 0) + 1;
    this.ops++;
    const r = rateKind(op, outcome);
    if (r !== undefined) {
      this.pending[r] = (this.pending[r] ?? 0) + 1;
      this.answers[r] = (this.answers[r] ?? 0) + 1;
    }
    return r;
  }

  /** Adds a point to the timeline (call every sampling period). */
  sample(atSec: number, waitingServer: number | null): Sample {
    const dt = atSec - this.lastAt;
    const rates: Rates = {};
    for (const k of RATE_KINDS) if (this.pending[k] && dt > 0) rates[k] = this.pending[k]! / dt;
    const s: Sample = {
      at: atSec,
      ops: this.ops,
      opsPerSec: dt > 0 ? (this.ops - this.lastOps) / dt : 0,
      waitingClients: this.waitingKnown ? this.waiting : null,
      waitingServer,
      rates,
    };
    this.pending = {};
    this.lastOps = this.ops;
    this.lastAt = atSec;
    this.timeline.push(s);
    return s;
  }

  /**
   * Outcome rates for a target whose answers are ordered but not timed (the pump): the i-th
   * answer (1-based, in `kinds`) happened in the first sampling period whose finished-operations
   * count reached i; answers after the last sample count in the last period.
   */
  placeRates(kinds: readonly (RateKind | undefined)[]): void {
    if (this.timeline.length === 0) return;
    const counts = this.timeline.map((): Record<string, number> => ({}));
    let s = 0;
    kinds.forEach((k, i) => {
      while (s < this.timeline.length - 1 && this.timeline[s]!.ops < i + 1) s++;
      if (k !== undefined) counts[s]![k] = (counts[s]![k] ?? 0) + 1;
    });
    this.timeline.forEach((p, i) => {
      const dt = p.at - (i === 0 ? 0 : this.timeline[i - 1]!.at);
      p.rates = {};
      for (const k of RATE_KINDS) if (counts[i]![k] && dt > 0) p.rates[k] = counts[i]![k]! / dt;
    });
    this.pending = {};
  }

  latency(): Record<string, HistogramSummary> {
    return Object.fromEntries([...this.byKind.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, h]) => [k, h.summary()]));
  }
}
