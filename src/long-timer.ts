/**
 * Timers for any valid delay. Node's setTimeout takes at most 2^31-1 ms: a longer delay (30 days,
 * or Number.MAX_SAFE_INTEGER meant as "forever") is clamped to 1 ms with a TimeoutOverflowWarning,
 * which would end a waiting request at once. A long delay is kept as a deadline and re-armed in
 * steps of at most 2^31-1 ms until it is reached. The same re-arming serves a timer that must not
 * run early (setTimerExact): a Node timer runs on the loop's coarser clock, and may fire a fraction
 * of a millisecond before performance.now() reaches its deadline.
 */

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

class LongTimeout {
  private readonly deadline: number;
  private handle: NodeJS.Timeout | undefined;
  private unrefd = false;

  constructor(
    private readonly f: () => void,
    ms: number,
    private readonly step: number,
  ) {
    this.deadline = performance.now() + ms;
    // Never at once, even for a deadline already past: `f` runs after its caller's turn, as a timer's does.
    this.handle = setTimeout(() => this.arm(), Math.min(Math.max(ms, 0), this.step));
  }

  private arm(): void {
    const left = this.deadline - performance.now();
    if (left <= 0) {
      this.handle = undefined;
      this.f();
      return;
    }
    this.handle = setTimeout(() => this.arm(), Math.min(left, this.step));
    if (this.unrefd) this.handle.unref();
  }

  /** As a Node timer's unref(): this timer does not keep the process alive. */
  unref(): this {
    this.unrefd = true;
    this.handle?.unref();
    return this;
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

/**
 * As setTimer, but `f` never runs before `ms` have passed by performance.now(): a timer that fires
 * early is re-armed for the rest (a deadline checked against performance.now() is then past).
 */
export function setTimerExact(f: () => void, ms: number, step = MAX_TIMER_MS): Timer {
  return new LongTimeout(f, ms, step);
}

export function clearTimer(t: Timer | undefined): void {
  if (t instanceof LongTimeout) t.clear();
  else if (t !== undefined) clearTimeout(t);
}
