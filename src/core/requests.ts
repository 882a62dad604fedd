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
  describeValue,
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
  type Offset,
  type PosixRange,
} from './input.js';

/**
 * The fields each public request may have (API.md, src/types.ts); any other own field of a request
 * is a TypeError naming it. Contexts are copied when the call is made (CLONED).
 */
export const REQUEST_FIELDS = {
  lockFile: ['fileName', 'byteOffset', 'length', 'exclusiveLock', 'failImmediately', 'handle', 'processId', 'key', 'handleInfo', 'fileContext', 'handleContext', 'timeoutMs', 'signal'],
  unlockFile: ['fileName', 'byteOffset', 'length', 'handle', 'processId', 'key'],
  closeHandle: ['fileName', 'handle'],
  checkIo: ['fileName', 'handle', 'processId', 'byteOffset', 'length', 'write'],
  lock: ['path', 'lockType', 'lockStart', 'lockLen', 'cmd', 'lockOwner', 'lockPid', 'kind', 'fileHandle', 'fileContext', 'timeoutMs', 'signal'],
  flush: ['path', 'lockOwner'],
  release: ['path', 'fileHandle', 'lockOwner'],
} as const;

/** A public request method. */
export type RequestName = keyof typeof REQUEST_FIELDS;

/** Fields that carry the caller's own data to a worker and the hooks: deep-copied at the call. */
const CLONED: readonly string[] = ['fileContext', 'handleContext', 'handleInfo'];

const KNOWN = Object.fromEntries(
  Object.entries(REQUEST_FIELDS).map(([name, fields]) => [name, new Set<string>(fields)]),
) as unknown as Record<RequestName, ReadonlySet<string>>;

/**
 * One reader per method, generated from REQUEST_FIELDS: `{ fileName: o.fileName, ... }`. Each known
 * field is read exactly once (a getter or a Proxy trap runs once), written-out reads stay
 * monomorphic per call, and every known field is an own property of the copy (undefined when
 * absent), so no later read of the copy reaches a prototype. A plain literal rather than a
 * null-prototype object: V8 keeps the latter in dictionary mode, and the copy is on the hot path.
 */
const READERS = Object.fromEntries(
  Object.entries(REQUEST_FIELDS).map(([name, fields]) => [
    name,
    new Function('o', `return { ${fields.map((f) => `${f}: o.${f}`).join(', ')} };`) as (o: object) => Record<string, unknown>,
  ]),
) as Record<RequestName, (o: object) => Record<string, unknown>>;

const CLONED_OF = Object.fromEntries(
  Object.entries(REQUEST_FIELDS).map(([name, fields]) => [name, CLONED.filter((f) => (fields as readonly string[]).includes(f))]),
) as unknown as Record<RequestName, readonly string[]>;

/**
 * The request as the coordinator keeps and sends it, taken once, when the method is called: its
 * own keys are checked (an unknown one is a TypeError naming it, with the close match if there is
 * one), each known field is read exactly once, and the contexts are deep-copied by structured clone
 * (what cannot be copied is this call's TypeError, naming the field). Everything after this reads
 * the copy, never the caller's object: a getter that answers differently later, a Proxy, or a
 * context the caller changes after the call cannot change what is checked, sent or replayed.
 */
export function snapshotRequest(name: RequestName, input: unknown): Record<string, unknown> {
  const o = requireObject(input, `${name} request`);
  const known = KNOWN[name];
  // Own enumerable string keys, as Object.keys lists them, without the array it allocates (a third
  // of this function's cost on the hot path); an inherited unknown key is not the caller's field.
  for (const k in o) if (!known.has(k) && Object.hasOwn(o, k)) throw unknownField(name, k);
  const s = READERS[name](o);
  for (const f of CLONED_OF[name]) {
    const v = s[f];
    if (v === undefined) continue;
    try {
      s[f] = structuredClone(v);
    } catch (e) {
      throw new TypeError(`${f} must be structured-cloneable (it travels to a worker thread): ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return s;
}

/**
 * A request given to a LockTable's own methods: the coordinator's fields (an unknown one is a
 * TypeError naming it), but no `timeoutMs` or `signal`: the table keeps no timers and reads no
 * signal; its embedder ends a wait with cancel(pending, reason). A non-object is left to the parser.
 */
export function checkTableRequest(name: RequestName, input: unknown): void {
  if (typeof input !== 'object' || input === null) return;
  const known = KNOWN[name];
  for (const k in input) if (!known.has(k) && Object.hasOwn(input, k)) throw unknownField(name, k);
  const o = input as Record<string, unknown>;
  if (known.has('timeoutMs') && o.timeoutMs !== undefined) throw new TypeError(`timeoutMs: a LockTable keeps no timers; end the wait with cancel(pending, 'timeout')`);
  if (known.has('signal') && o.signal !== undefined) throw new TypeError(`signal: a LockTable reads no signal; end the wait with cancel(pending, 'abort')`);
}

function unknownField(name: RequestName, field: string): TypeError {
  const near = closeMatch(field, REQUEST_FIELDS[name]);
  return new TypeError(`unknown field '${field}' in ${name} request${near === undefined ? '' : ` (did you mean '${near}'?)`}`);
}

/** The known field `field` most likely meant: the same but for case, or at most two edits away. */
function closeMatch(field: string, fields: readonly string[]): string | undefined {
  const lower = field.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const f of fields) {
    const d = f.toLowerCase() === lower ? 0 : editDistance(lower, f.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = f;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance of a and b, or `limit` when it is at least that. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return Math.min(prev[b.length]!, limit);
}

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

/**
 * A lock request after its checks, before the objects a table keeps (event, origin, request) are
 * built. The coordinator checks each lock call once, on the caller's thread, keeps this as the
 * request's record, and sends its fields to the worker (src/wire/calls.ts), which builds the Call with
 * `lockCallOf` without checking anything again.
 */
export interface DecodedLock {
  readonly op: 'lock';
  readonly path: string;
  readonly cmd: number;
  readonly lockType: number;
  readonly kind: 'posix' | 'ofd' | 'flock';
  /** The table's owner key: the kind's prefix and the lockOwner's identity key. */
  readonly owner: string;
  readonly lockOwner: Identity;
  readonly lockPid: number;
  readonly fileHandle: Identity | undefined;
  /**
   * The range as the caller gave it (a number is a safe integer; an omitted flock range is 0);
   * it decodes to a valid range. Numbers stay numbers: they cross threads cheaper than bigints.
   */
  readonly lockStart: Offset;
  readonly lockLen: Offset;
}

/**
 * A lock request's owner key in the tables is this prefix and identityKey(lockOwner): the three
 * kinds never share an owner (the wire and the native feed build keys with it too).
 */
export const OWNER_PREFIX = { posix: 'p', ofd: 'o', flock: 'f' } as const;

/** fcntl / OFD / flock. Out of range: a reply with -EINVAL or -EOVERFLOW. */
export function parseLock(input: unknown): Call | PosixReply {
  const o = requireObject(input, 'lock request');
  const d = decodeLock(o);
  return d.op === 'lock' ? lockCallOf(d, contexts(o)) : d;
}

/** The checks of parseLock: a TypeError, the reply of a request out of range, or the request. */
export function decodeLock(o: Record<string, unknown>): DecodedLock | (PosixReply & { op?: undefined }) {
  const path = requireString(o.path, 'path');
  const lockType = requireInteger(o.lockType, 'lockType');
  const cmd = requireInteger(o.cmd, 'cmd');
  const ownerKey = identityKey(o.lockOwner, 'lockOwner');
  const lockPid = optionalInteger(o.lockPid, 'lockPid', 0);
  const kind = o.kind ?? 'posix';
  if (kind !== 'posix' && kind !== 'ofd' && kind !== 'flock') {
    throw new TypeError(`kind must be 'posix', 'ofd' or 'flock', got ${describeValue(kind)}`);
  }
  if (o.fileHandle !== undefined) identityKey(o.fileHandle, 'fileHandle');
  const flock = kind === 'flock';
  // flock takes the whole file: its range may be left out, and is ignored when given.
  const lockStart = flock && o.lockStart === undefined ? 0 : offset(o.lockStart, 'lockStart');
  const lockLen = flock && o.lockLen === undefined ? 0 : offset(o.lockLen, 'lockLen');
  if ((lockType !== F_RDLCK && lockType !== F_WRLCK && lockType !== F_UNLCK) || (cmd !== F_GETLK && cmd !== F_SETLK && cmd !== F_SETLKW)) {
    return replyOf({ lockType, lockStart: BigInt(lockStart), lockLen: BigInt(lockLen), lockPid }, -EINVAL);
  }
  const code = flock ? 0 : posixRangeCode(lockStart, lockLen);
  if (code !== 0) return replyOf({ lockType, lockStart: BigInt(lockStart), lockLen: BigInt(lockLen), lockPid }, code);
  const owner = OWNER_PREFIX[kind] + ownerKey;
  return { op: 'lock', path, cmd, lockType, kind, owner, lockOwner: o.lockOwner as Identity, lockPid, fileHandle: o.fileHandle as Identity | undefined, lockStart, lockLen };
}

/** An offset or length field, checked as toBigInt checks it, but left a number if it is one. */
function offset(v: unknown, field: string): Offset {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v)) ? v : toBigInt(v, field);
}

/** decodePosixRange's verdict: 0 or its errno. Safe-integer numbers never reach OFFSET_MAX. */
function posixRangeCode(lockStart: Offset, lockLen: Offset): number {
  if (typeof lockStart === 'number' && typeof lockLen === 'number') {
    return lockStart < 0 || lockStart + lockLen < 0 ? -EINVAL : 0;
  }
  const r = decodePosixRange(lockStart, lockLen);
  return typeof r === 'number' ? r : 0;
}

/** The reply to a decoded lock request with `result`: the request's own fields echoed. */
export function replyOfLock(d: DecodedLock, result: number): PosixReply {
  return { result, lockType: d.lockType, lockStart: BigInt(d.lockStart), lockLen: BigInt(d.lockLen), lockPid: d.lockPid };
}

/**
 * The Call of a decoded lock request, with the objects a granted lock keeps (its origin, and the
 * event the hooks and listings see); `ctx` holds the request's contexts, if it has any;
 * `handleKey`, when the caller knows it, is identityKey(fileHandle).
 */
export function lockCallOf(d: DecodedLock, ctx: Record<string, unknown> | undefined, handleKey?: string): Call {
  const { path, cmd, lockType, kind, lockOwner, lockPid, fileHandle } = d;
  const base: ReplyBase = { lockType, lockStart: BigInt(d.lockStart), lockLen: BigInt(d.lockLen), lockPid };
  let start: bigint;
  let end: bigint;
  let len: bigint;
  if (kind === 'flock') {
    start = 0n;
    end = OFFSET_MAX;
    len = 0n;
  } else if (typeof d.lockStart === 'number' && typeof d.lockLen === 'number' && d.lockLen > 0 && d.lockStart + d.lockLen <= Number.MAX_SAFE_INTEGER) {
    // The common case, without bigint arithmetic: [lockStart, lockStart + lockLen - 1].
    start = base.lockStart;
    end = BigInt(d.lockStart + d.lockLen - 1);
    len = base.lockLen;
  } else {
    const range = decodePosixRange(base.lockStart, base.lockLen) as PosixRange;
    start = range.start;
    end = range.end;
    len = posixLength(start, end);
  }
  // One literal per shape: a property added afterwards costs the event a second allocation.
  const event: Record<string, unknown> =
    fileHandle === undefined
      ? { path, lockType, lockStart: start, lockLen: len, cmd, lockOwner, lockPid, kind }
      : { path, lockType, lockStart: start, lockLen: len, cmd, lockOwner, lockPid, kind, fileHandle };
  if (ctx !== undefined) for (const k in ctx) event[k] = ctx[k];
  const hk = handleKey ?? (fileHandle === undefined ? '' : identityKey(fileHandle, 'fileHandle'));
  const origin: LockOrigin = { holder: lockOwner, pid: kind === 'ofd' ? -1 : lockPid, handleKey: hk, processKey: '', event };
  const req: LockRequest = { kind, write: lockType === F_WRLCK, owner: d.owner, start, end, origin };
  return { op: 'lock', path, cmd, lockType, req, base };
}

/**
 * Whether a request's signal or timeout may end it before it runs: a lock request (LockFileEx, or
 * an fcntl/flock set that is no unlock). Every other request never waits, so it always runs: an
 * unlock, an F_GETLK, a close, a flush or a release answered without running would tell its caller
 * something that did not happen.
 */
export function cancellable(c: Call | DecodedLock): boolean {
  return c.op === 'lockFile' || (c.op === 'lock' && c.cmd !== F_GETLK && c.lockType !== F_UNLCK);
}

export function parseFlush(input: unknown): Call {
  const o = requireObject(input, 'flush request');
  return { op: 'flush', path: requireString(o.path, 'path'), owner: OWNER_PREFIX.posix + identityKey(o.lockOwner, 'lockOwner') };
}

export function parseRelease(input: unknown): Call {
  const o = requireObject(input, 'release request');
  const path = requireString(o.path, 'path');
  const handleKey = identityKey(o.fileHandle, 'fileHandle');
  const flockOwner = o.lockOwner === undefined ? null : OWNER_PREFIX.flock + identityKey(o.lockOwner, 'lockOwner');
  return { op: 'release', path, handleKey, flockOwner };
}

/** The reply to a set or unlock with `result`: the request's own fields echoed. */
export function replyOf(base: ReplyBase, result: number): PosixReply {
  return { result, lockType: base.lockType, lockStart: base.lockStart, lockLen: base.lockLen, lockPid: base.lockPid };
}
