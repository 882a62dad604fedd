/**
 * Collects the messages one turn of the event loop produces and posts them as one flat array
 * (wire.ts) when the turn ends (a microtask), or at once when `limit` messages are waiting.
 *
 * Waking a thread costs ~40-60 µs here whatever carries the message (FIELD-NOTES.md), so what
 * matters is how many requests one wake-up drains. The limit keeps the two threads overlapping: a
 * batch as large as the whole turn made them take turns, each idle half the time.
 */
import type { DecodedLock } from '../core/requests.js';
import { LOCK_DOUBLES, N_MIXED, T_LOCK, T_OBJECT, appendLockWire, callEnd, writeLockDoubles } from './wire.js';

/** When a batch leaves: at the end of the turn, at the end of the phase while busy, at once when full. */
abstract class Batching {
  protected count = 0;
  private scheduled = false;

  constructor(
    private readonly send: (batch: unknown[]) => void,
    protected readonly limit = 64,
    /**
     * True while answers are outstanding: the batch then waits for the end of the event-loop
     * phase (setImmediate) rather than the end of the turn, so replies arriving in several
     * messages refill one batch instead of each sending its own. Measured with 2 workers over
     * 10,000 files: 1.1 requests per batch with microtask flushes, 52 with this.
     */
    private readonly busy: () => boolean = () => false,
  ) {}

  /** Counts the message just appended; sends the batch when it is full. */
  added(): void {
    if (++this.count >= this.limit) {
      this.flushNow();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      if (this.busy()) setImmediate(this.flushTurn);
      else queueMicrotask(this.flushTurn);
    }
  }

  private readonly flushTurn = (): void => {
    this.scheduled = false;
    this.flushNow();
  };

  readonly flushNow = (): void => {
    if (this.count === 0) return;
    const batch = this.take();
    this.count = 0;
    this.send(batch);
  };

  /** The batch to post, as it stands; starts the next one empty. */
  protected abstract take(): unknown[];
}

export class Batcher extends Batching {
  /** Append one message's items here, then call `added()`. */
  buf: unknown[] = [];

  /** Appends a rare message carried as one object. */
  object(m: object): void {
    this.buf.push(T_OBJECT, m);
    this.added();
  }

  protected take(): unknown[] {
    const batch = this.buf;
    this.buf = [];
    return batch;
  }
}

/**
 * A batch of at most this many messages goes as one flat array (Batcher's form) instead of lanes: a
 * Float64Array in a message costs a fixed ~5-10 µs more on a round trip (measured alone, one
 * message at a time, main <-> worker), which a few calls' cheaper copy does not pay back, and one
 * call awaited alone (latency) is exactly that case.
 */
const FLAT_MAX = 16;

/**
 * The coordinator's batches to one worker: the same flush rules as Batcher, in three lanes (wire.ts
 * N_MIXED): a number lane (a Float64Array reused for every batch: posting copies it), the lock
 * calls' paths, and a mixed lane of wire calls and objects for everything else. Posted as
 * [numbers, doubles used, paths, mixed], or, with at most FLAT_MAX messages, as one flat array.
 */
export class CallBatcher extends Batching {
  private readonly nums: Float64Array;
  private used = 0;
  private paths: string[] = [];
  private mixed: unknown[] = [];

  constructor(send: (batch: unknown[]) => void, limit = 64, busy: () => boolean = () => false) {
    super(send, limit, busy);
    this.nums = new Float64Array(limit * LOCK_DOUBLES);
  }

  /** Appends a lock call without fileContext that wire.ts fitsDoubles accepts. */
  lock(id: number, d: DecodedLock): void {
    writeLockDoubles(this.nums, this.used, id, d);
    this.used += LOCK_DOUBLES;
    this.paths.push(d.path);
    this.added();
  }

  /** Appends a call in its wire form (wire.ts encodeCall, encodeLock). */
  call(wire: readonly unknown[]): void {
    this.nums[this.used++] = N_MIXED;
    for (let k = 0; k < wire.length; k++) this.mixed.push(wire[k]);
    this.added();
  }

  /** Appends a rare message carried as one object. */
  object(m: object): void {
    this.nums[this.used++] = N_MIXED;
    this.mixed.push(T_OBJECT, m);
    this.added();
  }

  protected take(): unknown[] {
    const batch = this.count <= FLAT_MAX ? this.flat() : [this.nums, this.used, this.paths, this.mixed];
    this.used = 0;
    this.paths = [];
    this.mixed = [];
    return batch;
  }

  /** The batch as one flat array of wire items, in order. */
  private flat(): unknown[] {
    const b: unknown[] = [];
    const m = this.mixed;
    let p = 0;
    let i = 0;
    for (let o = 0; o < this.used; ) {
      if (this.nums[o] === T_LOCK) {
        appendLockWire(b, this.nums, o, this.paths[p++]!);
        o += LOCK_DOUBLES;
        continue;
      }
      o++;
      const end = m[i] === T_OBJECT ? i + 2 : callEnd(m, i);
      for (; i < end; i++) b.push(m[i]);
    }
    return b;
  }
}
