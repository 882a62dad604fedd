/**
 * The reply codec: how answers cross from a worker back to the caller's thread, the mirror of the
 * call codec (calls.ts). One writer (ReplyWriter, on the worker) and one reader (readReplies, on
 * the caller's thread); test/wire/replies.test.ts holds them to each other.
 *
 * A reply crosses as a tag and a few primitives: the caller's side still holds the request, so it
 * rebuilds a POSIX reply from the request's own fields and the result. Records, by tag:
 * - R_DONE id, code: answered without waiting, no flock lock dropped, the file still holds
 *   something (the common answer). code is null for closeHandle, flush and release.
 * - R_ENDED id, code, waitedMs (-1: never queued), flags (END_FLOCK_DROP, END_IDLE).
 * - R_GETLK id, result, lockType, lockStart, lockLen, lockPid.
 * - R_QUEUED id, flockDrop: the request waits now.
 * - R_JOURNAL, then a call in its wire form: a native request committed (native requests never
 *   travel as calls, but a replacement worker must rebuild their locks too: journal-entry.ts).
 * - R_IDLE path: the file holds nothing now (its journal goes).
 * - T_OBJECT message: a rare message (protocol.ts FromHost).
 */
import type { PosixReply } from '../core/requests.js';
import { Batcher } from './batcher.js';
import { T_OBJECT, callEnd } from './calls.js';
import type { FromHost } from './protocol.js';

export const R_DONE = 1;
export const R_ENDED = 2;
export const R_GETLK = 3;
export const R_QUEUED = 4;
export const R_JOURNAL = 5;
export const R_IDLE = 6;
/** R_ENDED flags: the request first dropped its owner's flock lock of the other type. */
export const END_FLOCK_DROP = 1;
/** R_ENDED flags: the file holds nothing any more (the caller drops its journal). */
export const END_IDLE = 2;

/** A worker's answers to the caller's thread, batched per turn (Batcher). */
export class ReplyWriter extends Batcher {
  /** A final result: R_DONE when there is nothing more to tell, else R_ENDED. */
  result(id: number, code: number | null, waitedMs: number, flags: number): void {
    if (waitedMs < 0 && flags === 0) this.buf.push(R_DONE, id, code);
    else this.buf.push(R_ENDED, id, code, waitedMs, flags);
    this.added();
  }

  getlk(id: number, r: PosixReply): void {
    this.buf.push(R_GETLK, id, r.result, r.lockType, r.lockStart, r.lockLen, r.lockPid);
    this.added();
  }

  queued(id: number, flockDrop: boolean): void {
    this.buf.push(R_QUEUED, id, flockDrop);
    this.added();
  }

  /** A committed native request: R_JOURNAL and its call's wire items, b[start, end) (calls.ts). */
  journal(b: readonly unknown[], start: number, end: number): void {
    this.buf.push(R_JOURNAL);
    for (let k = start; k < end; k++) this.buf.push(b[k]);
    this.added();
  }

  idle(path: string): void {
    this.buf.push(R_IDLE, path);
    this.added();
  }
}

/** What the caller's side does with each record, in batch order. */
export interface ReplyHandler {
  /** R_DONE (waitedMs -1, flags 0) and R_ENDED. */
  result(id: number, code: number | null, waitedMs: number, flags: number): void;
  getlk(id: number, reply: PosixReply): void;
  queued(id: number, flockDrop: boolean): void;
  /** A committed native request's wire call (its path is item 2). */
  journal(path: string, wire: unknown[]): void;
  idle(path: string): void;
  message(m: FromHost): void;
}

/** Reads a batch written by ReplyWriter; throws on a record it does not know (a corrupt batch). */
export function readReplies(b: readonly unknown[], h: ReplyHandler): void {
  let i = 0;
  while (i < b.length) {
    switch (b[i]) {
      case R_DONE:
        h.result(b[i + 1] as number, b[i + 2] as number | null, -1, 0);
        i += 3;
        break;
      case R_ENDED:
        h.result(b[i + 1] as number, b[i + 2] as number | null, b[i + 3] as number, b[i + 4] as number);
        i += 5;
        break;
      case R_GETLK:
        h.getlk(b[i + 1] as number, {
          result: b[i + 2] as number,
          lockType: b[i + 3] as number,
          lockStart: b[i + 4] as bigint,
          lockLen: b[i + 5] as bigint,
          lockPid: b[i + 6] as number,
        });
        i += 7;
        break;
      case R_QUEUED:
        h.queued(b[i + 1] as number, b[i + 2] === true);
        i += 3;
        break;
      case R_JOURNAL: {
        const end = callEnd(b, i + 1);
        h.journal(b[i + 3] as string, b.slice(i + 1, end));
        i = end;
        break;
      }
      case R_IDLE:
        h.idle(b[i + 1] as string);
        i += 2;
        break;
      case T_OBJECT:
        h.message(b[i + 1] as FromHost);
        i += 2;
        break;
      default:
        throw new Error(`corrupt reply batch: unknown record ${String(b[i])} at ${i}`);
    }
  }
}
