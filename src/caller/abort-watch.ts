/**
 * One 'abort' listener per AbortSignal, however many waiting requests share it. A listener per
 * request made Node warn (MaxListenersExceededWarning) as soon as an application passed one
 * signal to more than ten waiting requests, which is how a signal is commonly used: one per
 * session, or one for shutdown.
 */
interface Watch<R> {
  readonly requests: Set<R>;
  readonly listener: () => void;
}

export class AbortWatch<R> {
  private readonly watches = new WeakMap<AbortSignal, Watch<R>>();

  /** `aborted(r)` runs for every request still watched when its signal aborts. */
  constructor(private readonly aborted: (r: R) => void) {}

  add(signal: AbortSignal, r: R): void {
    let w = this.watches.get(signal);
    if (w === undefined) {
      const requests = new Set<R>();
      const listener = (): void => {
        this.watches.delete(signal);
        for (const x of requests) this.aborted(x);
      };
      w = { requests, listener };
      this.watches.set(signal, w);
      signal.addEventListener('abort', listener, { once: true });
    }
    w.requests.add(r);
  }

  /** `r` ended: no longer watched; the signal loses its listener with its last request. */
  delete(signal: AbortSignal, r: R): void {
    const w = this.watches.get(signal);
    if (w === undefined || !w.requests.delete(r) || w.requests.size > 0) return;
    this.watches.delete(signal);
    signal.removeEventListener('abort', w.listener);
  }
}
