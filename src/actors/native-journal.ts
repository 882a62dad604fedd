/**
 * The worker's side of crash recovery for native requests (the caller's side is
 * src/caller/journal.ts; the entry form they share is src/wire/journal-entry.ts).
 *
 * A native request is answered from this thread, never through the caller's, yet a replacement
 * worker must rebuild its locks too: each committed native request is sent to the caller's journal
 * as the API call it stands for (replies.ts R_JOURNAL). Records are kept as wire items, flat in one
 * array, so the request objects die young (holding them to the end of a native batch made the collector copy
 * them and cost a third of the synthetic rate), and they leave once per wake-up of the worker
 * (NativeFeed), or earlier when an answer that may depend on them leaves: before any API answer
 * (each file's journal keeps the order of its commits) and before a kernel answer outside a
 * wake-up. A file that is idle by then sends one R_IDLE instead of its records, and only if the
 * caller may hold a journal for it: a lock and its unlock answered in one wake-up send nothing.
 */
import type { DecodedLock } from '../core/requests.js';
import { callEnd, putLock } from '../wire/calls.js';
import type { ReplyWriter } from '../wire/replies.js';

export class NativeJournal {
  /**
   * The committed calls not sent yet, back to back in their wire form (calls.ts: the path is item
   * 2), in calls[0, used): the array is reused, its storage kept from one wake-up to the next.
   */
  private readonly calls: unknown[] = [];
  private used = 0;
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

  /** A committed native lock request, from the wire's fields (no array of its own). */
  lock(
    path: string,
    flags: number,
    lockOwner: DecodedLock['lockOwner'],
    lockPid: number,
    lockStart: DecodedLock['lockStart'],
    lockLen: DecodedLock['lockLen'],
    fileHandle: DecodedLock['fileHandle'],
  ): void {
    this.used = putLock(this.calls, this.used, 0, path, flags, lockOwner, lockPid, lockStart, lockLen, fileHandle);
  }

  /** Any other committed call, in its wire form (calls.ts encodeCall; journal-entry.ts flockDropEntry). */
  call(wire: readonly unknown[]): void {
    for (let k = 0; k < wire.length; k++) this.calls[this.used++] = wire[k];
  }

  /** Writes the pending records into the caller's batch (not sent yet: see send). */
  flush(): void {
    const c = this.calls;
    for (let i = 0; i < this.used; ) {
      const end = callEnd(c, i);
      const path = c[i + 2] as string;
      if (this.holds(path)) {
        this.journaled.add(path);
        this.out.journal(c, i, end);
      } else if (this.journaled.delete(path)) {
        this.out.idle(path);
      }
      i = end;
    }
    // Drop the references (owners, paths), keep the storage.
    c.fill(undefined, 0, this.used);
    this.used = 0;
  }

  /** Writes the pending records and sends the caller's batch now (before a kernel answer depends on it). */
  send(): void {
    this.flush();
    this.out.flushNow();
  }
}
