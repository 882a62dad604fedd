/**
 * Decoding of caller input at the boundary: identities, offsets and lengths, both families' ranges.
 *
 * Malformed input (a wrong type, a missing required field) throws a TypeError naming the field: a
 * programming error of the caller. A well-typed value out of range is not an exception: the decoders
 * return the documented result code, and the table never sees the request. Nothing here touches
 * lock state, so bad input cannot disturb any lock.
 */
import { EINVAL, EOVERFLOW, ERROR_INVALID_LOCK_RANGE, ERROR_INVALID_PARAMETER, OFFSET_MAX, UINT64_MAX } from './codes.js';

export type Identity = bigint | number | string;
export type Offset = bigint | number;

const INT64_MIN = -(1n << 63n);

/** The longest text of a string value an error message quotes; the rest is cut ("…"). */
const SHOWN_CHARS = 60;

/**
 * A bad value as an error message shows it after "got": what it is, readably, with its type where
 * the text alone would hide it: `undefined`, `null`, `the string '0'`, `1.5`, `NaN`, `true`,
 * `the bigint 5n`, `a function`, `a symbol`, `an array`, `an object`, `a Date`. Every "got" of the
 * API's and the command lines' errors says it so. Never throws (a Proxy, an object whose
 * conversion throws, a symbol).
 */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'undefined':
      return 'undefined';
    case 'string': {
      // Cut before a pair's high surrogate rather than between its halves.
      const cut = /[\uD800-\uDBFF]/.test(v.charAt(SHOWN_CHARS - 1)) ? SHOWN_CHARS - 1 : SHOWN_CHARS;
      const text = v.length > SHOWN_CHARS ? `${v.slice(0, cut)}…` : v;
      // JSON's escapes show control characters and a lone surrogate; quotes as the messages write them.
      const quoted = JSON.stringify(text).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
      return `the string '${quoted}'`;
    }
    case 'number':
    case 'boolean':
      return String(v);
    case 'bigint':
      return `the bigint ${v}n`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
  }
  if (v === null) return 'null';
  try {
    if (Array.isArray(v)) return 'an array';
    const name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    // A class name is the value's own text too: shown only when it is a short plain identifier.
    if (typeof name !== 'string' || name === 'Object' || !/^[A-Za-z_$][\w$]{0,59}$/.test(name)) return 'an object';
    // "an" by the sound: an Error, an AbortSignal, an Unknown; a URL, a Uint8Array, a User.
    return `${/^(?:[AEIO]|U(?![A-Z]|int|ni|s[ei]))/.test(name) ? 'an' : 'a'} ${name}`;
  } catch {
    return 'an object';
  }
}

const describe = describeValue;

/** A required object argument. */
export function requireObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`${what} must be an object, got ${describe(v)}`);
  }
  return v as Record<string, unknown>;
}

/**
 * The comparison key of an identity: numbers and bigints compare by value (5 and 5n are one
 * identity), strings are their own kind (the string '5' is another identity).
 */
export function identityKey(v: unknown, field: string): string {
  if (typeof v === 'string') return `s${v}`;
  if (typeof v === 'bigint') return `n${v.toString()}`;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`${field} must be a bigint, an integer number or a string, got ${describe(v)}`);
    return `n${Number.isSafeInteger(v) ? String(v) : BigInt(v).toString()}`;
  }
  throw new TypeError(`${field} must be a bigint, an integer number or a string, got ${describe(v)}`);
}

/** An optional identity that defaults to 0 (Windows processId and key). */
export function optionalIdentityKey(v: unknown, field: string): string {
  return v === undefined ? 'n0' : identityKey(v, field);
}

/** An integer offset or length as bigint; TypeError unless it is a bigint or a safe-integer number. */
export function toBigInt(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  // A number past 2^53 - 1 has lost its low digits already: only a bigint can carry it.
  const unsafe = typeof v === 'number' && Number.isInteger(v) ? ' (past Number.MAX_SAFE_INTEGER: pass it as a bigint)' : '';
  throw new TypeError(`${field} must be a bigint or a safe-integer number, got ${describe(v)}${unsafe}`);
}

export function requireBoolean(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${field} must be a boolean, got ${describe(v)}`);
  return v;
}

export function optionalBoolean(v: unknown, field: string, dflt: boolean): boolean {
  return v === undefined ? dflt : requireBoolean(v, field);
}

export function requireString(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new TypeError(`${field} must be a string, got ${describe(v)}`);
  return v;
}

/** An integer field such as lockType or cmd; values out of range are the caller's errno, not a TypeError. */
export function requireInteger(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${field} must be an integer number, got ${describe(v)}`);
  return v;
}

export function optionalInteger(v: unknown, field: string, dflt: number): number {
  return v === undefined ? dflt : requireInteger(v, field);
}

/** A Windows range: inclusive [start, end], where a zero-length range at X is [X, X - 1]. */
export interface WinRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly length: bigint;
}

/**
 * Reads a Windows offset or length as unsigned 64-bit: a negative value is the signed int64 that
 * CBFS passes (two's complement); beyond [-2^63, 2^64-1] no Windows call could carry it (87).
 */
export function winUnsigned(v: unknown, field: string): bigint | typeof ERROR_INVALID_PARAMETER {
  const b = toBigInt(v, field);
  if (b < INT64_MIN || b > UINT64_MAX) return ERROR_INVALID_PARAMETER;
  return b < 0n ? b + (1n << 64n) : b;
}

/**
 * Decodes (byteOffset, length) of a lock or unlock. Returns the range, 87 for a value outside the
 * 64-bit space, or 307 when offset + length - 1 passes 2^64-1 (SEMANTICS-WINDOWS.md §3).
 */
export function decodeWinRange(byteOffset: unknown, length: unknown): WinRange | number {
  const off = winUnsigned(byteOffset, 'byteOffset');
  const len = winUnsigned(length, 'length');
  if (typeof off === 'number' || typeof len === 'number') return ERROR_INVALID_PARAMETER;
  if (len !== 0n && off + len - 1n > UINT64_MAX) return ERROR_INVALID_LOCK_RANGE;
  return { start: off, end: off + len - 1n, length: len };
}

/** A POSIX range: inclusive [start, end] with end <= OFFSET_MAX. */
export interface PosixRange {
  readonly start: bigint;
  readonly end: bigint;
}

/**
 * Decodes (lockStart, lockLen) as fs/locks.c flock64_to_posix_lock does (SEMANTICS-POSIX.md §1):
 * length 0 runs to OFFSET_MAX, a negative length covers the bytes before the start.
 * Returns the range or a negative errno.
 */
export function decodePosixRange(lockStart: unknown, lockLen: unknown): PosixRange | number {
  const start = toBigInt(lockStart, 'lockStart');
  const len = toBigInt(lockLen, 'lockLen');
  if (start < 0n) return -EINVAL;
  if (start > OFFSET_MAX) return -EOVERFLOW;
  if (len > 0n) {
    if (len - 1n > OFFSET_MAX - start) return -EOVERFLOW;
    return { start, end: start + len - 1n };
  }
  if (len === 0n) return { start, end: OFFSET_MAX };
  if (start + len < 0n) return -EINVAL;
  return { start: start + len, end: start - 1n };
}

/** The (lockStart, lockLen) of a reply: lockLen 0 when the range runs to OFFSET_MAX. */
export function posixLength(start: bigint, end: bigint): bigint {
  return end >= OFFSET_MAX ? 0n : end - start + 1n;
}
