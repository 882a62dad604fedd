/**
 * The native side of an actor host: events of the native pump (a FUSE session or the synthetic
 * source, src/native/) become Calls run by the host's own LockTable, and their results go back to
 * the native request, from this thread, without passing through the coordinator.
 *
 * A native event is decided exactly like the same request made through the public API: it is
 * turned into that request's input and parsed by the same code (src/core/requests.ts), so the
 * kernel's requests obey every rule and every check the API's callers do. Native requests carry
 * the id -reqId inside the host, so they never meet the coordinator's positive ids.
 *
 * FUSE meanings (SEMANTICS-POSIX.md §12): setlk/getlk are classic POSIX requests of owner
 * lock_owner (the kernel's owner id: the process's file table, or the open file for OFD locks;
 * both behave as owners, and they never collide); flock's owner is the open file; flush is
 * close(2) by an owner; release is the last close of an open file: locks taken through its handle
 * go, and its flock lock when the kernel says it held one.
 */
import { ENOLCK, F_GETLK, F_SETLK, F_SETLKW, F_UNLCK, OFFSET_MAX } from '../core/codes.js';
import type { CancelReason } from '../core/lock-table.js';
import { parseFlush, parseLock, parseRelease, type Call, type PosixReply } from '../core/requests.js';
import * as pump from '../native/index.js';
import type { NativeEvent } from '../native/index.js';

export interface NativeSink {
  /** Runs a native request: `id` is -reqId. */
  submit(id: number, call: Call): void;
  /** Ends native request `id` (-reqId) early if it waits or is about to. */
  cancel(id: number, reason: CancelReason): void;
  /** A native event that could not be turned into a call (a pump bug): reported, answered. */
  fault(message: string): void;
}

export class NativeFeed {
  /** Kind of each request in flight, to shape its answer (getlk answers with a lock). */
  private readonly getlks = new Set<number>();
  private attached = false;
  events = 0;

  constructor(
    readonly sessionId: number,
    readonly index: number,
    private readonly sink: NativeSink,
  ) {}

  attach(): void {
    pump.attach(this.sessionId, this.index, (events) => this.onEvents(events));
    this.attached = true;
  }

  /** Stops deliveries to this thread (unanswered requests stay answerable here until they end). */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    try {
      pump.detach(this.sessionId, this.index);
    } catch {
      // the session is already gone (unmounted): nothing is delivered any more
    }
  }

  private onEvents(events: NativeEvent[]): void {
    for (const e of events) {
      this.events++;
      const id = -e.reqId;
      if (e.kind === 'interrupt') {
        this.sink.cancel(id, 'abort');
        continue;
      }
      let call: Call | PosixReply;
      try {
        call = callOf(e);
      } catch (err) {
        this.sink.fault(`native ${e.kind} event on ${e.path}: ${err instanceof Error ? err.message : String(err)}`);
        this.answerErr(e.reqId, ENOLCK);
        continue;
      }
      if (!('op' in call)) {
        // Refused before any table is consulted (a range the kernel would not send): its code.
        this.answerErr(e.reqId, -call.result);
        continue;
      }
      if (call.op === 'lock' && call.cmd === F_GETLK) this.getlks.add(id);
      this.sink.submit(id, call);
    }
  }

  /** The final result of native request `id` (-reqId): a code, a POSIX reply, or nothing (flush, release). */
  answer(id: number, res: number | PosixReply | undefined): void {
    const reqId = -id;
    if (this.getlks.delete(id) && typeof res === 'object' && res.result === 0) {
      if (res.lockType === F_UNLCK) {
        this.answerErr(reqId, 0);
        return;
      }
      const end = res.lockLen === 0n ? OFFSET_MAX : res.lockStart + res.lockLen - 1n;
      try {
        pump.replyLock(this.sessionId, reqId, res.lockType, res.lockStart, end, res.lockPid);
      } catch {
        // session gone: the kernel request was answered by the unmount
      }
      return;
    }
    const code = typeof res === 'object' ? res.result : (res ?? 0);
    this.answerErr(reqId, code < 0 ? -code : code);
  }

  private answerErr(reqId: number, errno: number): void {
    try {
      pump.replyErr(this.sessionId, reqId, errno);
    } catch {
      // session gone: the kernel request was answered by the unmount
    }
  }
}

/** The public request a native event stands for, parsed as the API parses it. */
export function callOf(e: NativeEvent): Call | PosixReply {
  switch (e.kind) {
    case 'getlk':
    case 'setlk':
      return parseLock({
        path: e.path,
        lockType: e.type,
        lockStart: e.start,
        lockLen: e.end >= OFFSET_MAX ? 0n : e.end - e.start + 1n,
        cmd: e.kind === 'getlk' ? F_GETLK : e.sleep ? F_SETLKW : F_SETLK,
        lockOwner: e.owner,
        lockPid: e.pid,
        kind: 'posix',
        fileHandle: e.fh,
      });
    case 'flock':
      return parseLock({
        path: e.path,
        lockType: e.type,
        cmd: e.sleep ? F_SETLKW : F_SETLK,
        lockOwner: e.owner,
        lockPid: e.pid,
        kind: 'flock',
        fileHandle: e.fh,
      });
    case 'flush':
      return parseFlush({ path: e.path, lockOwner: e.owner });
    case 'release':
      return parseRelease({ path: e.path, fileHandle: e.fh, ...(e.flockRelease ? { lockOwner: e.owner } : {}) });
    default:
      throw new TypeError(`unknown native event kind ${String((e as { kind: unknown }).kind)}`);
  }
}
