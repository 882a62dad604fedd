/**
 * Parsing of the public calls (API.md) into Calls: plain, structured-cloneable data that a
 * LockTable runs. The coordinator parses on the caller's thread, so a malformed request throws its
 * TypeError there and never reaches a worker; the actor trusts what it receives.
 *
 * A parse returns either a Call or the call's final result (an out-of-range value's code, a
 * zero-length checkIo), in which case no table is consulted.
 */
import { EINVAL, ERROR_SUCCESS, F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, OFFSET_MAX, UINT64_MAX } from './codes.js';
import type { LockOrigin, LockRequest } from './file-locks.js';
import {
  decodePosixRange,
  decodeWinRange,
  identityKey,
  optionalIdentityKey,
  optionalInteger,
  posixLength,
  requireBoolean,
  requireInteger,
  requireObject,
  requireString,
  toBigInt,
  winUnsigned,
  type Identity,
} from './input.js';

export interface PosixReply {
  result: number;
  lockType: number;
  lockStart: bigint;
  lockLen: bigint;
  lockPid: number;
}

/** The fields a POSIX reply echoes when it reports no lock: the request's own. */
export interface ReplyBase {
  readonly lockType: number;
  readonly lockStart: bigint;
  readonly lockLen: bigint;
  readonly lockPid: number;
}

export type Call =
  | { readonly op: 'lockFile'; readonly path: string; readonly req: LockRequest; readonly failImmediately: boolean }
  | { readonly op: 'unlockFile'; readonly path: string; readonly owner: string; readonly start: bigint; readonly end: bigint }
  | { readonly op: 'unlockAll'; readonly path: string; readonly handleKey: string; readonly processKey: string }
  | { readonly op: 'closeHandle'; readonly path: string; readonly handleKey: string }
  | { readonly op: 'checkIo'; readonly path: string; readonly owner: string; readonly start: bigint; readonly end: bigint; readonly write: boolean }
  | { readonly op: 'lock'; readonly path: string; readonly cmd: number; readonly lockType: number; readonly req: LockRequest; readonly base: ReplyBase }
  | { readonly op: 'flush'; readonly path: string; readonly owner: string }
  | { readonly op: 'release'; readonly path: string; readonly handleKey: string; readonly flockOwner: string | null };


/**
 * The owner key of a Windows lock: (handle, processId, key) compared by value. Each part is
 * length-prefixed, so string identities containing the separator cannot make two owners one.
 */
export function windowsOwner(handleKey: string, processKey: string, keyKey: string): string {
  return `w${handleKey.length}:${handleKey}|${processKey.length}:${processKey}|${keyKey.length}:${keyKey}`;
}

function pidOf(v: Identity): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(BigInt.asIntN(32, v));
  const n = Number(v);
  return Number.isInteger(n) ? n : 0;
}

function contexts(o: Record<string, unknown>): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (o.fileContext !== undefined) c.fileContext = o.fileContext;
  if (o.handleContext !== undefined) c.handleContext = o.handleContext;
  if (o.handleInfo !== undefined) c.handleInfo = o.handleInfo;
  return c;
}

/** LockFileEx. Out of range: 87 or 307. */
export function parseLockFile(input: unknown): Call | number {
  const o = requireObject(input, 'lockFile request');
  const fileName = requireString(o.fileName, 'fileName');
  const exclusive = requireBoolean(o.exclusiveLock, 'exclusiveLock');
  const failImmediately = requireBoolean(o.failImmediately, 'failImmediately');
  const handleKey = identityKey(o.handle, 'handle');
  const processKey = optionalIdentityKey(o.processId, 'processId');
  const keyKey = optionalIdentityKey(o.key, 'key');
  const range = decodeWinRange(o.byteOffset, o.length);
  if (typeof range === 'number') return range;
  const event = {
    fileName,
    byteOffset: range.start,
    length: range.length,
    exclusiveLock: exclusive,
    failImmediately,
    handle: o.handle as Identity,
    processId: (o.processId ?? 0) as Identity,
    key: (o.key ?? 0) as Identity,
    ...contexts(o),
  };
  const req: LockRequest = {
    kind: 'windows',
    write: exclusive,
    owner: windowsOwner(handleKey, processKey, keyKey),
    start: range.start,
    end: range.end,
    origin: { holder: event.handle, pid: pidOf(event.processId), handleKey, processKey, event },
  };
  return { op: 'lockFile', path: fileName, req, failImmediately };
}

/** UnlockFileEx; byteOffset = length = -1 is unlock-all of (handle, processId). */
export function parseUnlockFile(input: unknown): Call | number {
  const o = requireObject(input, 'unlockFile request');
  const path = requireString(o.fileName, 'fileName');
  const handleKey = identityKey(o.handle, 'handle');
  const processKey = optionalIdentityKey(o.processId, 'processId');
  const keyKey = optionalIdentityKey(o.key, 'key');
  if (winUnsigned(o.byteOffset, 'byteOffset') === UINT64_MAX && winUnsigned(o.length, 'length') === UINT64_MAX) {
    return { op: 'unlockAll', path, handleKey, processKey };
  }
  const range = decodeWinRange(o.byteOffset, o.length);
  if (typeof range === 'number') return range;
  return { op: 'unlockFile', path, owner: windowsOwner(handleKey, processKey, keyKey), start: range.start, end: range.end };
}

export function parseCloseHandle(input: unknown): Call {
  const o = requireObject(input, 'closeHandle request');
  return { op: 'closeHandle', path: requireString(o.fileName, 'fileName'), handleKey: identityKey(o.handle, 'handle') };
}

/** The I/O check; zero-length I/O is allowed before any lookup. */
export function parseCheckIo(input: unknown): Call | number {
  const o = requireObject(input, 'checkIo request');
  const path = requireString(o.fileName, 'fileName');
  const handleKey = identityKey(o.handle, 'handle');
  const processKey = optionalIdentityKey(o.processId, 'processId');
  const write = requireBoolean(o.write, 'write');
  const range = decodeWinRange(o.byteOffset, o.length);
  if (typeof range === 'number') return range;
  if (range.length === 0n) return ERROR_SUCCESS;
  // ReadFile and WriteFile pass no key: the I/O's owner has key 0.
  return { op: 'checkIo', path, owner: windowsOwner(handleKey, processKey, 'n0'), start: range.start, end: range.end, write };
}

/** fcntl / OFD / flock. Out of range: a reply with -EINVAL or -EOVERFLOW. */
export function parseLock(input: unknown): Call | PosixReply {
  const o = requireObject(input, 'lock request');
  const path = requireString(o.path, 'path');
  const lockType = requireInteger(o.lockType, 'lockType');
  const cmd = requireInteger(o.cmd, 'cmd');
  const ownerKey = identityKey(o.lockOwner, 'lockOwner');
  const lockPid = optionalInteger(o.lockPid, 'lockPid', 0);
  const kind = o.kind ?? 'posix';
  if (kind !== 'posix' && kind !== 'ofd' && kind !== 'flock') {
    throw new TypeError(`kind must be 'posix', 'ofd' or 'flock', got ${String(kind)}`);
  }
  const handleKey = o.fileHandle === undefined ? '' : identityKey(o.fileHandle, 'fileHandle');
  const flock = kind === 'flock';
  // flock takes the whole file: its range may be left out, and is ignored when given.
  const lockStart = flock && o.lockStart === undefined ? 0n : toBigInt(o.lockStart, 'lockStart');
  const lockLen = flock && o.lockLen === undefined ? 0n : toBigInt(o.lockLen, 'lockLen');
  const base: ReplyBase = { lockType, lockStart, lockLen, lockPid };
  if ((lockType !== F_RDLCK && lockType !== F_WRLCK && lockType !== F_UNLCK) || (cmd !== F_GETLK && cmd !== F_SETLK && cmd !== F_SETLKW)) {
    return { result: -EINVAL, ...base };
  }
  const range = flock ? { start: 0n, end: OFFSET_MAX } : decodePosixRange(lockStart, lockLen);
  if (typeof range === 'number') return { result: range, ...base };
  const event = {
    path,
    lockType,
    lockStart: range.start,
    lockLen: flock ? 0n : posixLength(range.start, range.end),
    cmd,
    lockOwner: o.lockOwner as Identity,
    lockPid,
    kind,
    ...(o.fileHandle === undefined ? {} : { fileHandle: o.fileHandle as Identity }),
    ...contexts(o),
  };
  const origin: LockOrigin = { holder: event.lockOwner, pid: kind === 'ofd' ? -1 : lockPid, handleKey, processKey: '', event };
  const owner = (kind === 'posix' ? 'p' : kind === 'ofd' ? 'o' : 'f') + ownerKey;
  const req: LockRequest = { kind, write: lockType === F_WRLCK, owner, start: range.start, end: range.end, origin };
  return { op: 'lock', path, cmd, lockType, req, base };
}

export function parseFlush(input: unknown): Call {
  const o = requireObject(input, 'flush request');
  return { op: 'flush', path: requireString(o.path, 'path'), owner: 'p' + identityKey(o.lockOwner, 'lockOwner') };
}

export function parseRelease(input: unknown): Call {
  const o = requireObject(input, 'release request');
  const path = requireString(o.path, 'path');
  const handleKey = identityKey(o.fileHandle, 'fileHandle');
  const flockOwner = o.lockOwner === undefined ? null : 'f' + identityKey(o.lockOwner, 'lockOwner');
  return { op: 'release', path, handleKey, flockOwner };
}

/** The reply to a set or unlock with `result`: the request's own fields echoed. */
export function replyOf(base: ReplyBase, result: number): PosixReply {
  return { result, lockType: base.lockType, lockStart: base.lockStart, lockLen: base.lockLen, lockPid: base.lockPid };
}
