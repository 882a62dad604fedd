/**
 * The caller's side of stats(): finished operations by call and result, requests waiting now, wait
 * times, hook failures and faults. The workers' own counters come from their hosts (protocol.ts
 * HostStats); LockCoordinator.stats() puts the two together.
 */
import type { Stats } from '../types.js';

const WAIT_BUCKETS = [1, 10, 100, 1000, 10000];

export class Counters {
  private readonly ops: Record<string, Record<string, number>> = {};
  private readonly waits = { count: 0, totalMs: 0, maxMs: 0, histogramMs: {} as Record<string, number> };
  /** Requests queued in a worker right now. */
  waiting = 0;
  hookErrors = 0;
  faults = 0;

  /** A call `name` finished with `code`. */
  count(name: string, code: number): void {
    const byResult = (this.ops[name] ??= {});
    byResult[code] = (byResult[code] ?? 0) + 1;
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

  hookFailed(hook: string, message: string): void {
    this.hookErrors++;
    process.emitWarning(`locksmith: ${hook} hook failed: ${message}`, 'LocksmithHookWarning');
  }

  fault(message: string): void {
    this.faults++;
    process.emitWarning(message, 'LocksmithFaultWarning');
  }

  /** This side's part of stats(), copied: the caller may keep and change it. */
  snapshot(): Pick<Stats, 'operations' | 'waiting' | 'waits' | 'hookErrors' | 'faults'> {
    return { operations: structuredClone(this.ops), waiting: this.waiting, waits: structuredClone(this.waits), hookErrors: this.hookErrors, faults: this.faults };
  }
}
