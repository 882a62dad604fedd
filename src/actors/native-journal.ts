/**
 * The worker's side of crash recovery for native requests (the caller's side is
 * src/caller/journal.ts; the entry form they share is src/wire/journal-entry.ts).
 *
 * A native request is answered from this thread, never through the caller's, yet a replacement
 * worker must rebuild its locks too: each committed native request is sent to the caller's journal
 * as the API call it stands for (replies.ts R_JOURNAL). Records are kept flat in a reused array, so
 * the request objects die young (holding them to the end of a native batch made the collector copy
 * them and cost a third of the synthetic rate), and they leave once per wake-up of the worker
 * (NativeFeed), or earlier when an answer that may depend on them leaves: before any API answer
 * (each file's journal keeps the order of its commits) and before a kernel answer outside a
 * wake-up. A file that is idle by then sends one R_IDLE instead of its records, and only if the
 * caller may hold a journal for it: a lock and its unlock answered in one wake-up send nothing.
 */
import type { DecodedLock } from '../core/requests.js';
import type { ReplyWriter } from '../wire/replies.js';

/** Slots of one record: path, flags (-1: a call in wire form, in the last slot), lockOwner, lockPid, lockStart, lockLen, fileHandle, wire. */
const STRIDE = 8;

export class NativeJournal {
  private readonly records: unknown[] = [];
  private count = 0;
  /** Files the caller may hold a journal for: something committed was sent and no idle mark since. */
  private readonly journaled = new Set<string>();

  /** `holds(path)`: the worker's table holds something of `path` now. */
  constructor(
    private readonly out: ReplyWriter,
    private readonly holds: (path: string) => boolean,
  ) {}

  /** Files the caller may hold a journal for already (every file holding something when the feed starts; a restored one). */
  adopt(path: string): void {
    this.journaled.add(path);
  }

  /** An API answer about `path` left, with its idle flag: the caller dropped or kept its journal. */
  replied(path: string, idle: boolean): void {
    if (idle) this.journaled.delete(path);
    else this.journaled.add(path);
  }

  /** A committed native lock request (or a flock drop, as the owner's flock unlock), in the wire's fields. */
  lock(
    path: string,
    flags: number,
    lockOwner: DecodedLock['lockOwner'],
    lockPid: number,
    lockStart: DecodedLock['lockStart'],
    lockLen: DecodedLock['lockLen'],
    fileHandle: DecodedLock['fileHandle'],
  ): void {
    const r = this.records;
    const o = this.count++ * STRIDE;
    r[o] = path;
    r[o + 1] = flags;
    r[o + 2] = lockOwner;
    r[o + 3] = lockPid;
    r[o + 4] = lockStart;
    r[o + 5] = lockLen;
    r[o + 6] = fileHandle;
    r[o + 7] = undefined;
  }

  /** A committed native flush or release, as its wire call (calls.ts encodeCall). */
  call(path: string, wire: readonly unknown[]): void {
    const o = this.count++ * STRIDE;
    this.records[o] = path;
    this.records[o + 1] = -1;
    this.records[o + 7] = wire;
  }

  /** Writes the pending records into the caller's batch (not sent yet: see send). */
  flush(): void {
    if (this.count === 0) return;
    const r = this.records;
    const out = this.out;
    const end = this.count * STRIDE;
    for (let o = 0; o < end; o += STRIDE) {
      const path = r[o] as string;
      if (!this.holds(path)) {
        if (this.journaled.delete(path)) out.idle(path);
        continue;
      }
      this.journaled.add(path);
      const flags = r[o + 1] as number;
      if (flags < 0) out.journalCall(r[o + 7] as unknown[]);
      else out.journalLock(path, flags, r[o + 2] as DecodedLock['lockOwner'], r[o + 3] as number, r[o + 4] as DecodedLock['lockStart'], r[o + 5] as DecodedLock['lockLen'], r[o + 6] as DecodedLock['fileHandle']);
    }
    // Drop the references (owners, paths) but keep the array's storage for the next wake-up.
    r.fill(undefined, 0, end);
    this.count = 0;
  }

  /** Writes the pending records and sends the caller's batch now (before a kernel answer depends on it). */
  send(): void {
    this.flush();
    this.out.flushNow();
  }
}
