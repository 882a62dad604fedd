/**
 * A request in flight, as the caller's side keeps it from the call to its answer: the parsed call,
 * its wire form (what a resend and the journal use), the worker that owns its file, and how it
 * ends (its Promise, its signal and timer).
 */
import type { CancelReason } from '../core/lock-table.js';
import type { LockRequest } from '../core/file-locks.js';
import type { Call, DecodedLock } from '../core/requests.js';
import type { Timer } from '../long-timer.js';
import type { CallBatcher } from '../wire/batcher.js';
import type { PublicCall } from '../wire/calls.js';

/** What the coordinator keeps of a call: a lock call as decoded (its reply's fields), others parsed. */
export type Sent = Exclude<Call, { op: 'lock' }> | DecodedLock;

/** A request in flight. */
export interface Request {
  readonly id: number;
  readonly name: PublicCall;
  /**
   * The call as it travels (calls.ts), a copy taken when it was made, so a caller reusing its
   * request object cannot change what a resend or the journal replays; undefined for a lock call
   * that crosses as doubles (its immutable `call` serves both).
   */
  readonly wire: unknown[] | undefined;
  readonly call: Sent;
  /** The worker that owns the request's file (routeOf). */
  readonly worker: number;
  readonly resolve: (v: unknown) => void;
  readonly signal: AbortSignal | undefined;
  timer: Timer | undefined;
  queued: boolean;
  /** A cancel the caller asked for (kept so a request resent after a crash still honours it). */
  cancelled: CancelReason | undefined;
  /**
   * A shared lock space: a release its worker answered before its step was written (the host's
   * 'owed', for its last run): kept after its answer until 'written' (LockCoordinator.owedReleases).
   * Also a waiter cancelled or vetoed while its hook judged another node's grant of it (`judged`
   * set): kept until the grant's release is written, resent cancelled to a replacement ('judged').
   */
  owed?: boolean;
  /**
   * A mount's release its worker answered to the kernel itself before writing it (told 'owed' with
   * its wire form): kept in owedReleases only, resent ahead of the native destination (recover).
   */
  native?: boolean;
  /**
   * A shared lock space: a waiter whose grant by another node's step its node's approval hook
   * judges (the host's 'judging'): its owner's locks on the file before that grant, sent ahead of
   * the request to a replacement if its worker dies first ('judged').
   */
  judged?: LockRequest[];
}

/**
 * The executor of every request's Promise: it hands its resolve function over through `captured`
 * (read right after `new Promise`), so no closure is made per request.
 */
export let captured: ((v: unknown) => void) | undefined;
export function captureResolve(resolve: (v: unknown) => void): void {
  captured = resolve;
}

/** Whether a call answers with a Win32 code (its cancel and failure codes are Windows ones). */
export function isWindows(call: Sent): boolean {
  return call.op !== 'lock' && call.op !== 'flush' && call.op !== 'release';
}

/** Sends request `r` to its worker's batch: first from submit, again to a replacement worker. */
export function send(out: CallBatcher, r: Request): void {
  if (r.wire !== undefined) out.call(r.wire);
  else out.lock(r.id, r.call as DecodedLock);
}
