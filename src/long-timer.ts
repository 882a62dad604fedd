/**
 * Timers for any valid delay. Node's setTimeout takes at most 2^31-1 ms: a longer delay (30 days,
 * or Number.MAX_SAFE_INTEGER meant as "forever") is clamped to 1 ms with a TimeoutOverflowWarning,
 * which would end a waiting request at once. A long delay is kept as a deadline and re-armed in
 * steps of at most 2^31-1 ms until it is reached.
 */

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

class LongTimeout {
  private readonly deadline: number;
  private handle: NodeJS.Timeout | undefined;

  constructor(
    private readonly f: () => void,
    ms: number,
    private readonly step: number,
  ) {
    this.deadline = performance.now() + ms;
    this.arm();
  }

  private arm(): void {
    const left = this.deadline - performance.now();
    if (left <= 0) {
      this.handle = undefined;
      this.f();
      return;
    }
    this.handle = setTimeout(() => this.arm(), Math.min(left, this.step));
  }

  clear(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
  }
}

/** A running timer: a plain Node timeout for the usual delays, a re-armed one past MAX_TIMER_MS. */
export type Timer = NodeJS.Timeout | LongTimeout;

/**
 * Calls `f` once after `ms` milliseconds, whatever their number (`step` is the longest single
 * setTimeout, MAX_TIMER_MS unless a test makes it small).
 */
export function setTimer(f: () => void, ms: number, step = MAX_TIMER_MS): Timer {
  return ms <= step ? setTimeout(f, ms) : new LongTimeout(f, ms, step);
}

export function clearTimer(t: Timer | undefined): void {
  if (t instanceof LongTimeout) t.clear();
  else if (t !== undefined) clearTimeout(t);
}
