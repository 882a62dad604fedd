/**
 * Collects the messages one turn of the event loop produces and posts them as one array when the
 * turn ends (a microtask). Waking a thread costs ~40-60 µs here whatever carries the message
 * (FIELD-NOTES.md), so what matters is how many requests one wake-up drains: pipelined callers and
 * a batch of replies each cost one postMessage.
 */
export class Batcher<T> {
  private buf: T[] = [];
  private scheduled = false;

  /**
   * @param limit a full batch leaves at once, so the receiving thread starts on it while this one
   *   goes on producing: the two threads overlap instead of taking turns.
   */
  constructor(
    private readonly send: (batch: T[]) => void,
    private readonly limit = 64,
  ) {}

  push(m: T): void {
    this.buf.push(m);
    if (this.buf.length >= this.limit) {
      this.flushNow();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTurn);
    }
  }

  private readonly flushTurn = (): void => {
    this.scheduled = false;
    this.flushNow();
  };

  readonly flushNow = (): void => {
    if (this.buf.length === 0) return;
    const batch = this.buf;
    this.buf = [];
    this.send(batch);
  };
}
