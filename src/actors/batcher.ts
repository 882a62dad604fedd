/**
 * Collects the messages one turn of the event loop produces and posts them as one array when the
 * turn ends (a microtask). Waking a thread costs ~40-60 µs here whatever carries the message
 * (FIELD-NOTES.md), so what matters is how many requests one wake-up drains: pipelined callers and
 * a batch of replies each cost one postMessage.
 */
export class Batcher<T> {
  private buf: T[] = [];
  private scheduled = false;

  constructor(private readonly send: (batch: T[]) => void) {}

  push(m: T): void {
    this.buf.push(m);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushNow);
    }
  }

  readonly flushNow = (): void => {
    this.scheduled = false;
    if (this.buf.length === 0) return;
    const batch = this.buf;
    this.buf = [];
    this.send(batch);
  };
}
