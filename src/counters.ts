/**
 * Counters of finished requests for stats(): by call and result, the requests waiting now, and how
 * long those that waited took. The caller's thread counts API requests (Counters, in
 * LockCoordinator). Native requests never pass through it: each worker's NativeFeed counts those it
 * answers in SharedCounters, memory the caller's thread owns and hands to the worker at each start,
 * so the counts outlive a worker that dies and go on in its replacement. stats() adds them up.
 */
import type { Stats } from './types.js';

const WAIT_BUCKETS = [1, 10, 100, 1000, 10000];

/** The histogram key of a wait of `ms`. */
function bucketOf(ms: number): string {
  const bucket = WAIT_BUCKETS.find((b) => ms < b);
  return bucket === undefined ? '>=10000' : `<${bucket}`;
}

/** What one side counted: the shape stats() reports. */
export type Counted = Pick<Stats, 'operations' | 'waiting' | 'waits'>;

export class Counters {
  /** By call, then by result code: Maps, so counting converts no number into a property name. */
  private readonly ops = new Map<string, Map<number, number>>();
  private readonly waits = { count: 0, totalMs: 0, maxMs: 0, histogramMs: {} as Record<string, number> };
  /** Requests queued right now. */
  waiting = 0;

  /** A call `name` finished with `code`. */
  count(name: string, code: number): void {
    let byResult = this.ops.get(name);
    if (byResult === undefined) this.ops.set(name, (byResult = new Map()));
    byResult.set(code, (byResult.get(code) ?? 0) + 1);
  }

  /** A request that had queued ended after `ms`. */
  waited(ms: number): void {
    const w = this.waits;
    w.count++;
    w.totalMs += ms;
    if (ms > w.maxMs) w.maxMs = ms;
    const key = bucketOf(ms);
    w.histogramMs[key] = (w.histogramMs[key] ?? 0) + 1;
  }

  /** A copy: the receiver may keep and change it. */
  snapshot(): Counted {
    const operations: Stats['operations'] = {};
    for (const [name, byResult] of this.ops) operations[name] = Object.fromEntries(byResult);
    return { operations, waiting: this.waiting, waits: structuredClone(this.waits) };
  }
}

/** `into` plus `c`, in place. */
export function merge(into: Counted, c: Counted): void {
  for (const [name, byResult] of Object.entries(c.operations)) {
    const to = (into.operations[name] ??= {});
    for (const [code, n] of Object.entries(byResult)) to[code] = (to[code] ?? 0) + n;
  }
  into.waiting += c.waiting;
  const w = into.waits;
  w.count += c.waits.count;
  w.totalMs += c.waits.totalMs;
  w.maxMs = Math.max(w.maxMs, c.waits.maxMs);
  for (const [k, n] of Object.entries(c.waits.histogramMs)) w.histogramMs[k] = (w.histogramMs[k] ?? 0) + n;
}

/** What a native request counts as: the API call it stands for. */
export type NativeName = 'lock' | 'flush' | 'release';
const NATIVE_NAMES: readonly NativeName[] = ['lock', 'flush', 'release'];
/** Result codes counted exactly: 0 down to -(CODES - 1) (errnos); anything else counts at the last. */
const CODES = 256;
const S_TOTAL = NATIVE_NAMES.length * CODES;
const S_MAX = S_TOTAL + 1;
const S_COUNT = S_TOTAL + 2;
const S_WAITING = S_TOTAL + 3;
const S_HIST = S_TOTAL + 4;
const HIST_KEYS = [...WAIT_BUCKETS.map((b) => `<${b}`), '>=10000'];

/**
 * Native counters in shared memory: one writer (the worker's feed), read by the caller's thread.
 * Doubles count exactly to 2^53; an aligned 8-byte store is never seen half written.
 */
export class SharedCounters {
  static readonly BYTES = (S_HIST + HIST_KEYS.length) * 8;
  private readonly a: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.a = new Float64Array(buffer);
  }

  count(name: NativeName, code: number): void {
    const n = name === 'lock' ? 0 : name === 'flush' ? 1 : 2;
    const k = n * CODES + (code <= 0 && code > -CODES ? -code : CODES - 1);
    this.a[k] = this.a[k]! + 1;
  }

  queued(): void {
    this.a[S_WAITING] = this.a[S_WAITING]! + 1;
  }

  /** A request that had queued ended after `ms`. */
  waited(ms: number): void {
    const a = this.a;
    a[S_WAITING] = a[S_WAITING]! - 1;
    a[S_COUNT] = a[S_COUNT]! + 1;
    a[S_TOTAL] = a[S_TOTAL]! + ms;
    if (ms > a[S_MAX]!) a[S_MAX] = ms;
    const h = S_HIST + HIST_KEYS.indexOf(bucketOf(ms));
    a[h] = a[h]! + 1;
  }

  /** The writer died: its waiters are gone (the pump hands their requests to the replacement). */
  noneWaiting(): void {
    this.a[S_WAITING] = 0;
  }

  snapshot(): Counted {
    const a = this.a;
    const operations: Stats['operations'] = {};
    for (const [n, name] of NATIVE_NAMES.entries()) {
      for (let k = 0; k < CODES; k++) {
        const v = a[n * CODES + k]!;
        if (v > 0) (operations[name] ??= {})[k === 0 ? 0 : -k] = v;
      }
    }
    const histogramMs: Record<string, number> = {};
    for (const [i, key] of HIST_KEYS.entries()) if (a[S_HIST + i]! > 0) histogramMs[key] = a[S_HIST + i]!;
    return { operations, waiting: a[S_WAITING]!, waits: { count: a[S_COUNT]!, totalMs: a[S_TOTAL]!, maxMs: a[S_MAX]!, histogramMs } };
  }
}
