/**
 * Counters of finished requests for stats(): by call and result, the requests waiting now, and how
 * long those that waited took. Both sides keep one: the caller's thread for API requests
 * (LockCoordinator), each worker for the native requests it answers itself (NativeFeed, which never
 * tells the caller's thread of a request); stats() adds them up (`merge`).
 */
import type { Stats } from './types.js';

const WAIT_BUCKETS = [1, 10, 100, 1000, 10000];

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
    const bucket = WAIT_BUCKETS.find((b) => ms < b);
    const key = bucket === undefined ? '>=10000' : `<${bucket}`;
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
