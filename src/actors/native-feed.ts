/**
 * The native side of an actor host: it owns a native request from the pump's event to the
 * kernel's answer. Events of the native pump (a FUSE session or the synthetic source, src/native/)
 * become Calls that the host runs on its LockTable with this feed as their reply target; the
 * results go back to the native request from this thread, without passing through the caller's,
 * and what they commit goes to the native journal (native-journal.ts).
 *
 * A native event is decided exactly like the same request made through the public API: it is
 * turned into that request's input and parsed by the same code (src/core/requests.ts), so the
 * kernel's requests obey every rule and every check the API's callers do. A native request is
 * numbered -reqId in the host, apart from the caller's requests (host.ts).
 *
 * FUSE meanings (SEMANTICS-POSIX.md §12): setlk/getlk are classic POSIX requests of owner
 * lock_owner (the kernel's owner id: the process's file table, or the open file for OFD locks;
 * both behave as owners, and they never collide); flock's owner is the open file; flush is
 * close(2) by an owner; release is the last close of an open file: locks taken through its handle
 * go, and its flock lock when the kernel says it held one.
 */
import { ENOLCK, F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, OFFSET_MAX } from '../core/codes.js';
import { identityKey } from '../core/input.js';
import { OWNER_PREFIX, lockCallOf, parseFlush, parseLock, parseRelease, type Call, type PosixReply } from '../core/requests.js';
import * as pump from '../native/index.js';
import { encodeCall, lockFlagsOf, putLock } from '../wire/calls.js';
import { commits, flockDropEntry } from '../wire/journal-entry.js';
import type { FromHost } from '../wire/protocol.js';
import type { ReplyWriter } from '../wire/replies.js';
import type { NativeHost, ReplyTarget, Result } from './reply-target.js';
import { NativeJournal } from './native-journal.js';
import type { NativeName, SharedCounters } from '../counters.js';
import {
  F_END,
  F_FILE_HANDLE,
  F_FLAGS,
  F_KIND,
  F_LOCK_OWNER,
  F_LOCK_PID,
  F_PATH,
  F_REQ_ID,
  F_START,
  F_STRIDE,
  F_TYPE,
  FL_FLOCK_RELEASE,
  FL_SLEEP,
  FL_WIDE_END,
  FL_WIDE_FILE_HANDLE,
  FL_WIDE_LOCK_OWNER,
  FL_WIDE_START,
  K_FLOCK,
  K_FLUSH,
  K_GETLK,
  K_INTERRUPT,
  K_RELEASE,
  K_SETLK,
  U_END,
  U_FILE_HANDLE,
  U_LOCK_OWNER,
  U_START,
  U_STRIDE,
  type FlatBatch,
} from '../native/index.js';

/** A native request as it arrived: what its answer and, if it commits, its journal entry need. */
export interface NativeRequest {
  readonly kind: number;
  readonly path: string;
  readonly type: number;
  readonly flags: number;
  readonly lockPid: number;
  readonly fileHandle: number | bigint;
  readonly lockOwner: number | bigint;
  readonly start: number | bigint;
  readonly end: number | bigint;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * One worker's destination of a native session. Events arrive as flat batches (src/native/index.ts
 * FlatBatch: numbers in one reused Float64Array, 64-bit values exact in a BigUint64Array lane);
 * answers are collected and sent with one native call per batch (replyBatch), or at the end of the
 * turn for answers that come later (a waiter let in by an API call).
 *
 * Each event is read into one reused record (`current`): most requests are answered while they are
 * run, and need no object of their own. Only a request still unanswered when `run` returns (a
 * waiter, or one held by an asynchronous hook) gets a copy in `inflight`.
 */
export class NativeFeed implements ReplyTarget {
  /** Requests in flight by id (-reqId) after their run returned: the answer's shape and the journal record depend on them. */
  private readonly inflight = new Map<number, { readonly req: NativeRequest; readonly call: Call }>();
  private readonly current: Mutable<NativeRequest> = { kind: 0, path: '', type: 0, flags: 0, lockPid: 0, fileHandle: 0, lockOwner: 0, start: 0, end: 0 };
  private currentCall: Call | undefined;
  /** The id of the request being run, until it is answered (0: none). */
  private currentId = 0;
  private readonly replies = new pump.ReplyBuffer();
  /** What this feed's answers committed, on its way to the caller's journal. */
  readonly journal: NativeJournal;
  private attached = false;
  private inBatch = false;
  /**
   * Between the first batch of a wake-up and its end (attachFlat's idle call): answers leave at
   * the end of each batch, their journal records once, at the end of the wake-up.
   */
  private inWake = false;
  private flushQueued = false;
  /** Requests of this feed queued in the table now. */
  private readonly queuedIds = new Set<number>();
  /** An 'owed' or 'written' message waits in `out`: it leaves before the next kernel answer (flush). */
  private toldPending = false;

  /** `holds(path)`: the host's table holds something of `path` now. */
  constructor(
    readonly sessionId: number,
    readonly index: number,
    private readonly host: NativeHost,
    private readonly out: ReplyWriter,
    holds: (path: string) => boolean,
    /** Where the requests this feed answers are counted for stats() (they never pass through the caller's thread). */
    private readonly counters: SharedCounters,
  ) {
    this.journal = new NativeJournal(out, holds);
  }

  attach(): void {
    pump.attachFlat(
      this.sessionId,
      this.index,
      (b) => this.onBatch(b),
      () => this.endWake(),
    );
    this.attached = true;
  }

  /** Stops deliveries to this thread (requests already received stay answerable here). */
  /** These open files lost their locks with this node's session (a shared lock space): their I/O fails with EIO until released. */
  markLost(fileHandles: readonly number[]): void {
    for (const fh of fileHandles) pump.markLost(this.sessionId, fh);
  }

  detach(): void {
    this.flush();
    if (!this.attached) return;
    this.attached = false;
    try {
      pump.detach(this.sessionId, this.index);
    } catch {
      // the session is already gone (unmounted): nothing is delivered any more
    }
  }

  private onBatch(b: FlatBatch): void {
    this.inBatch = true;
    this.inWake = true;
    let threw = true;
    try {
      const f = b.f64;
      const u = b.u64;
      const req = this.current;
      for (let i = 0, o = 0, w = 0; i < b.n; i++, o += F_STRIDE, w += U_STRIDE) {
        const reqId = f[o + F_REQ_ID]!;
        const kind = f[o + F_KIND]!;
        if (kind === K_INTERRUPT) {
          this.host.cancel(-reqId, 'abort');
          continue;
        }
        const flags = f[o + F_FLAGS]!;
        const wideRange = flags & (FL_WIDE_START | FL_WIDE_END);
        req.kind = kind;
        req.path = b.paths[f[o + F_PATH]!]!;
        req.type = f[o + F_TYPE]!;
        req.flags = flags;
        req.lockPid = f[o + F_LOCK_PID]!;
        req.fileHandle = flags & FL_WIDE_FILE_HANDLE ? u[w + U_FILE_HANDLE]! : f[o + F_FILE_HANDLE]!;
        req.lockOwner = flags & FL_WIDE_LOCK_OWNER ? u[w + U_LOCK_OWNER]! : f[o + F_LOCK_OWNER]!;
        req.start = wideRange ? u[w + U_START]! : f[o + F_START]!;
        req.end = wideRange ? u[w + U_END]! : f[o + F_END]!;
        let call: Call | PosixReply;
        try {
          call = fcntlCall(req) ?? nativeCall(req);
        } catch (err) {
          this.host.fault(`native event (kind ${kind}) on ${req.path}: ${err instanceof Error ? err.message : String(err)}`);
          this.counters.count(kind === K_FLUSH ? 'flush' : kind === K_RELEASE ? 'release' : 'lock', -ENOLCK);
          this.replies.push(reqId, ENOLCK);
          continue;
        }
        if (!('op' in call)) {
          // Refused before any table is consulted (a range the kernel would not send): its code.
          this.counters.count('lock', call.result);
          this.replies.push(reqId, -call.result);
          continue;
        }
        this.currentId = -reqId;
        this.currentCall = call;
        try {
          this.host.run(-reqId, call, this);
        } finally {
          if (this.currentId !== 0) {
            // Still in flight (queued, or held by a hook): it needs its own record now.
            this.inflight.set(-reqId, { req: { ...req }, call });
            this.currentId = 0;
          }
          this.currentCall = undefined;
        }
      }
      threw = false;
    } finally {
      this.inBatch = false;
      this.currentId = 0;
      this.flush();
      // An exception leaving this thread's callback may end the thread: nothing may stay unsent.
      if (threw) this.endWake();
    }
  }

  /**
   * The wake-up is over (the thread returns to its event loop): the journal records of every
   * answer it sent leave now, in one message. One process locking and unlocking in turn is
   * answered many times per wake-up (Session::spinUs), and a file that ends idle sends nothing
   * (or one R_IDLE): the caller's thread is not woken for every answer. Nothing can run on this
   * thread between an answer and this call (no timer, message or other callback; an exception
   * from onBatch calls it on its way out), so a worker that dies has sent every record of every
   * answer the kernel heard.
   */
  private endWake(): void {
    this.inWake = false;
    this.journal.send();
  }

  /** ReplyTarget: native request `id` waits now; a flock conversion's drop is journaled at once. */
  queued(id: number, _path: string, flockDrop: boolean): void {
    this.counters.queued();
    this.queuedIds.add(id);
    if (!flockDrop) return;
    const req = id === this.currentId ? this.current : this.inflight.get(id)?.req;
    if (req !== undefined) journalFlockDrop(this.journal, req);
  }

  /**
   * A shared lock space (SharedFiles.tellOwed): release `id`, answered next, is not written yet.
   * The caller's side is told with its wire form before the kernel hears the answer (flush), so a
   * worker that dies before writing it has it sent again to its replacement.
   */
  owed(id: number): void {
    const req = id === this.currentId ? this.current : this.inflight.get(id)?.req;
    if (req === undefined) return;
    this.out.object({ t: 'owed', id, wire: nativeWire(req) } satisfies FromHost);
    this.toldPending = true;
  }

  /** A shared lock space (SharedFiles.written): release `id`, told owed, is owed no longer. */
  written(id: number): void {
    this.out.object({ t: 'written', id });
    this.toldPending = true;
  }

  /** ReplyTarget: the final result of native request `id` (-reqId): a code, a POSIX reply, or nothing (flush, release). */
  answer(id: number, _path: string | undefined, res: Result, waitedMs: number, flockDrop: boolean, getlk: boolean): void {
    const reqId = -id;
    // The record and Call of the request: the current one (no object of its own), or its copy.
    let req: NativeRequest | undefined;
    let call: Call | undefined;
    if (id === this.currentId) {
      this.currentId = 0;
      req = this.current;
      call = this.currentCall;
    } else {
      const held = this.inflight.get(id);
      this.inflight.delete(id);
      req = held?.req;
      call = held?.call;
    }
    const code = typeof res === 'object' ? res.result : (res ?? 0);
    if (waitedMs >= 0 && this.queuedIds.delete(id)) this.counters.waited(waitedMs);
    if (req !== undefined && call !== undefined) {
      this.counters.count(call.op as NativeName, code);
      if (flockDrop) journalFlockDrop(this.journal, req);
      if (commits(call, code)) journalRequest(this.journal, req);
    }
    if (getlk && typeof res === 'object' && res.result === 0 && res.lockType !== F_UNLCK) {
      const end = res.lockLen === 0n ? OFFSET_MAX : res.lockStart + res.lockLen - 1n;
      try {
        pump.replyLock(this.sessionId, reqId, res.lockType, res.lockStart, end, res.lockPid);
      } catch {
        // session gone: the kernel request was answered by the unmount
      }
      return;
    }
    this.replies.push(reqId, code < 0 ? -code : code);
    if (!this.inBatch && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.replies.count === 0) return;
    // Outside a wake-up (a waiter let in by an API call) the records leave first; inside one, at
    // its end. A release told owed is told before the kernel hears its answer, in a wake-up too.
    if (!this.inWake || this.toldPending) {
      this.toldPending = false;
      this.journal.send();
    }
    try {
      this.replies.flush(this.sessionId);
    } catch {
      // session gone: its requests were answered by the unmount
      this.replies.count = 0;
    }
  }
}

/**
 * Records committed native request `r` in `journal` as the API call it stands for (journal-entry.ts):
 * the Call that call decodes to is the one `r` was decided as (property-tests/native-call.test.ts).
 */
export function journalRequest(journal: NativeJournal, r: NativeRequest): void {
  const cmd = r.flags & FL_SLEEP ? F_SETLKW : F_SETLK;
  switch (r.kind) {
    case K_SETLK:
      journal.lock(r.path, lockFlagsOf(cmd, r.type, 'posix'), r.lockOwner, r.lockPid, r.start, INFINITE_END(r.end) ? 0 : lengthOf(r.start, r.end), r.fileHandle);
      return;
    case K_FLOCK:
      journal.lock(r.path, lockFlagsOf(cmd, r.type, 'flock'), r.lockOwner, r.lockPid, 0, 0, r.fileHandle);
      return;
    case K_FLUSH:
    case K_RELEASE:
      journal.call(nativeWire(r));
      return;
  }
}

/**
 * Native release `r` as the API call it stands for, in its wire form (calls.ts), id 0: what
 * journalRequest records, as an array of its own (an owed release, kept by the caller's side).
 */
export function nativeWire(r: NativeRequest): unknown[] {
  const cmd = r.flags & FL_SLEEP ? F_SETLKW : F_SETLK;
  switch (r.kind) {
    case K_SETLK: {
      const w: unknown[] = [];
      putLock(w, 0, 0, r.path, lockFlagsOf(cmd, r.type, 'posix'), r.lockOwner, r.lockPid, r.start, INFINITE_END(r.end) ? 0 : lengthOf(r.start, r.end), r.fileHandle);
      return w;
    }
    case K_FLOCK: {
      const w: unknown[] = [];
      putLock(w, 0, 0, r.path, lockFlagsOf(cmd, r.type, 'flock'), r.lockOwner, r.lockPid, 0, 0, r.fileHandle);
      return w;
    }
    case K_FLUSH:
      return encodeCall('flush', 0, { path: r.path, lockOwner: r.lockOwner });
    case K_RELEASE:
      return encodeCall('release', 0, { path: r.path, fileHandle: r.fileHandle, lockOwner: r.flags & FL_FLOCK_RELEASE ? r.lockOwner : undefined });
    default:
      throw new TypeError(`no wire form for native event kind ${r.kind}`);
  }
}

/** The owner's flock lock of the other type went before `r` was decided: recorded as its flock unlock. */
export function journalFlockDrop(journal: NativeJournal, r: NativeRequest): void {
  journal.call(flockDropEntry(r.path, r.lockOwner));
}

/** end - start + 1, a number while that is exact, else a bigint. */
function lengthOf(start: number | bigint, end: number | bigint): number | bigint {
  if (typeof start === 'number' && typeof end === 'number' && Number.isSafeInteger(end - start + 1)) return end - start + 1;
  return BigInt(end) - BigInt(start) + 1n;
}

/** The end value FUSE uses for "to the end of the file", as a double and exactly. */
const INFINITE_END = (end: number | bigint): boolean => end === Infinity || end === OFFSET_MAX;

/**
 * The common native event, a classic fcntl lock request (getlk/setlk) with a valid type whose
 * range and length are below 2^53, as the Call `nativeCall` makes of it, without building the
 * API's input object and checking it again: `decodeLock`'s result is built directly, and `lockCallOf` makes the Call
 * as it does for the API. Anything else: undefined (nativeCall decides). A property test
 * (property-tests/native-call.test.ts) holds the two to the same Call.
 */
export function fcntlCall(r: NativeRequest): Call | undefined {
  const { kind, type, start, end } = r;
  if (
    (kind !== K_SETLK && kind !== K_GETLK) ||
    (type !== F_RDLCK && type !== F_WRLCK && type !== F_UNLCK) ||
    typeof start !== 'number' ||
    typeof end !== 'number' ||
    !(start >= 0 && (end === Infinity ? start <= Number.MAX_SAFE_INTEGER : end >= start && end < Number.MAX_SAFE_INTEGER))
  ) {
    return undefined;
  }
  return lockCallOf(
    {
      op: 'lock',
      path: r.path,
      cmd: kind === K_GETLK ? F_GETLK : r.flags & FL_SLEEP ? F_SETLKW : F_SETLK,
      lockType: type,
      kind: 'posix',
      owner: cachedKey(ownerKeys, OWNER_PREFIX.posix, r.lockOwner),
      lockOwner: r.lockOwner,
      lockPid: r.lockPid,
      fileHandle: r.fileHandle,
      lockStart: start,
      lockLen: end === Infinity ? 0 : end - start + 1,
    },
    undefined,
    cachedKey(handleKeys, '', r.fileHandle),
  );
}

/**
 * Identity keys of the owners and handles seen lately: the same few come again and again, and a
 * key made once is also hashed once for every Map it is looked up in. Bounded: cleared when full.
 */
const ownerKeys = new Map<number | bigint, string>();
const handleKeys = new Map<number | bigint, string>();
const KEY_CACHE = 4096;

function cachedKey(cache: Map<number | bigint, string>, prefix: string, v: number | bigint): string {
  let k = cache.get(v);
  if (k === undefined) {
    if (cache.size >= KEY_CACHE) cache.clear();
    k = prefix + identityKey(v, 'lockOwner');
    cache.set(v, k);
  }
  return k;
}

/**
 * The public request a native event stands for, parsed as the API parses it. Offsets come as
 * numbers when below 2^53, else as exact bigints (both of a range the same way).
 */
export function nativeCall(r: NativeRequest): Call | PosixReply {
  const { kind, path, type, flags, lockPid, fileHandle, lockOwner, start, end } = r;
  switch (kind) {
    case K_GETLK:
    case K_SETLK:
      return parseLock({
        path,
        lockType: type,
        lockStart: start,
        lockLen: INFINITE_END(end) ? 0 : lengthOf(start, end),
        cmd: kind === K_GETLK ? F_GETLK : flags & FL_SLEEP ? F_SETLKW : F_SETLK,
        lockOwner,
        lockPid,
        kind: 'posix',
        fileHandle,
      });
    case K_FLOCK:
      return parseLock({ path, lockType: type, cmd: flags & FL_SLEEP ? F_SETLKW : F_SETLK, lockOwner, lockPid, kind: 'flock', fileHandle });
    case K_FLUSH:
      return parseFlush({ path, lockOwner });
    case K_RELEASE:
      return parseRelease({ path, fileHandle, ...(flags & FL_FLOCK_RELEASE ? { lockOwner } : {}) });
    default:
      throw new TypeError(`unknown native event kind ${kind}`);
  }
}
