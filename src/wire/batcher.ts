/**
 * Collects the messages one turn of the event loop produces and posts them as one flat array
 * (calls.ts, replies.ts) when the turn ends (a microtask), or at once when `limit` messages are waiting.
 *
 * Waking a thread costs ~40-60 µs here whatever carries the message (FIELD-NOTES.md), so what
 * matters is how many requests one wake-up drains. The limit keeps the two threads overlapping: a
 * batch as large as the whole turn made them take turns, each idle half the time.
 */
import type { DecodedLock } from '../core/requests.js';
import { LOCK_DOUBLES, N_MIXED, T_LOCK, T_OBJECT, appendLockWire, callEnd, writeLockDoubles } from './calls.js';

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
    try {
      this.send(batch);
    } catch (e) {
      this.sendFailed(batch, e);
    }
  };

  /** The batch to post, as it stands; starts the next one empty. */
  protected abstract take(): unknown[];

  /** Posting `batch` threw `error` (it held something that cannot be cloned). */
  protected sendFailed(_batch: unknown[], error: unknown): void {
    throw error;
  }

  /** Posts one batch; what it throws is the caller's. */
  protected post(batch: unknown[]): void {
    this.send(batch);
  }
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
 * The coordinator's batches to one worker: the same flush rules as Batcher, in three lanes (calls.ts
 * N_MIXED): a number lane (a Float64Array reused for every batch: posting copies it), the lock
 * calls' paths, and a mixed lane of wire calls and objects for everything else. Posted as
 * [numbers, doubles used, paths, mixed], or, with at most FLAT_MAX messages, as one flat array.
 */
export class CallBatcher extends Batching {
  private readonly nums: Float64Array;
  private used = 0;
  private paths: string[] = [];
  private mixed: unknown[] = [];

  /**
   * @param unsendable a message (a wire call, or [T_OBJECT, object]) that could not be posted even
   * alone, and why; the others of its batch were posted, in order. The coordinator checks and copies
   * every request before it gets here (requests.ts snapshotRequest), so this is a bug's last line of
   * defence: without it, a DataCloneError thrown from the flush (a microtask) would be uncaught and
   * end the process, and the batch's other requests would be lost.
   */
  constructor(
    send: (batch: unknown[]) => void,
    limit = 64,
    busy: () => boolean = () => false,
    private readonly unsendable: (message: unknown[], error: unknown) => void = (_m, e) =>
      process.emitWarning(`locksmith: a message could not be posted to a worker and was dropped: ${e instanceof Error ? e.message : String(e)}`, 'LocksmithFaultWarning'),
  ) {
    super(send, limit, busy);
    this.nums = new Float64Array(limit * LOCK_DOUBLES);
  }

  /** Appends a lock call without fileContext that calls.ts fitsDoubles accepts. */
  lock(id: number, d: DecodedLock): void {
    writeLockDoubles(this.nums, this.used, id, d);
    this.used += LOCK_DOUBLES;
    this.paths.push(d.path);
    this.added();
  }

  /** Appends a call in its wire form (calls.ts encodeCall, encodeLock). */
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
    return flatten(this.nums, this.used, this.paths, this.mixed);
  }

  /**
   * A batch that could not be posted: each of its messages is posted alone, in order, so one that
   * cannot be cloned is the only one lost (and reported through `unsendable`).
   */
  protected override sendFailed(batch: unknown[], error: unknown): void {
    // A batch in lanes: its number lane is still intact (take() only reset the count of doubles used).
    const flat = batch[0] instanceof Float64Array ? flatten(batch[0], batch[1] as number, batch[2] as string[], batch[3] as unknown[]) : batch;
    if (flat.length === 0) throw error;
    for (let i = 0; i < flat.length; ) {
      const end = flat[i] === T_OBJECT ? i + 2 : callEnd(flat, i);
      const message = flat.slice(i, end);
      try {
        this.post(message);
      } catch (e) {
        this.unsendable(message, e);
      }
      i = end;
    }
  }
}

/** A batch in lanes as one flat array of wire items, in order. */
function flatten(nums: Float64Array, used: number, paths: readonly string[], m: readonly unknown[]): unknown[] {
  const b: unknown[] = [];
  let p = 0;
  let i = 0;
  for (let o = 0; o < used; ) {
    if (nums[o] === T_LOCK) {
      appendLockWire(b, nums, o, paths[p++]!);
      o += LOCK_DOUBLES;
      continue;
    }
    o++;
    const end = m[i] === T_OBJECT ? i + 2 : callEnd(m, i);
    for (; i < end; i++) b.push(m[i]);
  }
  return b;
}
