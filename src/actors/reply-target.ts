/**
 * What a request running on a worker answers to: the reply target it came with. The actor host
 * (host.ts) runs requests from two sources, the caller's thread and the native pump; it hands each
 * result to the target the request came with and never asks where it came from. The native feed
 * (native-feed.ts) is one target and runs its requests through NativeHost.
 */
import type { CancelReason } from '../core/lock-table.js';
import type { Call, PosixReply } from '../core/requests.js';

/** A request's result as the table gives it: a Win32 code, a POSIX reply, or nothing (close, flush, release). */
export type Result = number | PosixReply | undefined;

/** Where the result of a request goes: the caller's thread, or the native pump. */
export interface ReplyTarget {
  /**
   * The final result of request `id` on `path`: `waitedMs` is -1 if it never waited; `flockDrop`:
   * it first dropped its owner's flock lock of the other type; `getlk`: an F_GETLK, whose reply
   * reports a lock rather than a code. `path` is undefined for a waiter that ended inside its own
   * step, before it was ever queued (the file's state is then not this answer's to report).
   */
  answer(id: number, path: string | undefined, res: Result, waitedMs: number, flockDrop: boolean, getlk: boolean): void;
  /** Request `id` on `path` waits now (after dropping its owner's flock lock if `flockDrop`). */
  queued(id: number, path: string, flockDrop: boolean): void;
}

/** The host's side of the native feed: how a native request is run and ended. */
export interface NativeHost {
  run(id: number, call: Call, target: ReplyTarget): void;
  cancel(id: number, reason: CancelReason): void;
  /** A native event that could not be turned into a call (a pump bug): reported. */
  fault(message: string): void;
}
