/**
 * Command generators shared by the properties. Every range they produce is a union of whole cells
 * of the model's universe (model.ts), so the model stays exact; values come in every encoding the
 * API accepts (number, bigint, Windows' signed int64), identities as number or bigint (and one string
 * identity that must stay distinct from the number of the same spelling).
 */
import fc from 'fast-check';
import { REQUEST_FIELDS } from '../src/core/requests.js';
import { OpCommand, encWin, type Op } from './harness.js';
import { cellEnd, cellStart, NCELLS, OFFSET_MAX, POSIX_CELLS, UINT64_MAX, F_GETLK, F_SETLK, F_SETLKW, F_RDLCK, F_WRLCK, F_UNLCK } from './model.js';

const cmd = (op: Op): OpCommand => new OpCommand(op);
const call = (method: Extract<Op, { t: 'call' }>['method'], input: unknown, garbage = false): OpCommand => cmd({ t: 'call', method, input, garbage });

/** A cell index below `n`, mostly among the small single-byte cells. */
function cell(n: number, small = 6): fc.Arbitrary<number> {
  return fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: small - 1 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: n - 1 }) });
}

/** A numeric identity as number or bigint; the string form stays a string. */
function identity(values: readonly (number | string)[]): fc.Arbitrary<number | bigint | string> {
  return fc.tuple(fc.constantFrom(...values), fc.boolean()).map(([v, big]) => (typeof v === 'number' && big ? BigInt(v) : v));
}

/** The first path most of the time, so that requests meet. */
function pathOf(paths: readonly string[]): fc.Arbitrary<string> {
  return paths.length === 1 ? fc.constant(paths[0]!) : fc.oneof({ weight: 3, arbitrary: fc.constant(paths[0]!) }, { weight: 1, arbitrary: fc.constantFrom(...paths.slice(1)) });
}

function optional<T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(a, { nil: undefined });
}

/** Sets only the defined fields. */
function obj(fields: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) o[k] = v;
  return o;
}

// ---- Windows ------------------------------------------------------------------------------------

export const WIN_HANDLES: readonly (number | string)[] = [1, 2, '1'];
const winHandle = identity(WIN_HANDLES);
/** Mostly the defaults, so that owners meet often; sometimes explicit (0 is the default by value). */
const mostlyDefault = (a: fc.Arbitrary<number | bigint | string>): fc.Arbitrary<number | bigint | string | undefined> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
const winPid = mostlyDefault(identity([0, 7]));
const winKey = mostlyDefault(identity([0, 1]));

/** (offset, length) of a valid Windows range of whole cells, or a zero-length one at a cell start. */
const winRange = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.tuple(cell(NCELLS, 4), cell(NCELLS, 4)).map(([a, b]) => {
      const lo = Math.min(a, b);
      let hi = Math.max(a, b);
      if (lo === 0 && hi === NCELLS - 1) hi--; // length 2^64 does not exist
      return { off: cellStart(lo), len: cellEnd(hi) - cellStart(lo) + 1n };
    }),
  },
  { weight: 1, arbitrary: cell(NCELLS, 4).map((i) => ({ off: cellStart(i), len: 0n })) },
);

type Weighted = { weight: number; arbitrary: fc.Arbitrary<OpCommand> };

/** One arbitrary from weighted parts (fc.commands alone would pick its arbitraries uniformly). */
export function mix(...parts: Weighted[]): fc.Arbitrary<OpCommand>[] {
  return [fc.oneof(...parts)];
}

export function windowsCommands(paths: readonly string[]): Weighted[] {
  const path = pathOf(paths);
  const lockFile = fc
    .record({ path, h: winHandle, pid: winPid, key: winKey, r: winRange, enc: fc.nat(15), x: fc.boolean(), fi: fc.boolean() })
    .map(({ path, h, pid, key, r, enc, x, fi }) =>
      call('lockFile', obj({ fileName: path, byteOffset: encWin(r.off, enc), length: encWin(r.len, enc >> 2), exclusiveLock: x, failImmediately: fi, handle: h, processId: pid, key })),
    );
  const unlockFile = fc
    .record({ path, h: winHandle, pid: winPid, key: winKey, r: winRange, enc: fc.nat(15) })
    .map(({ path, h, pid, key, r, enc }) => call('unlockFile', obj({ fileName: path, byteOffset: encWin(r.off, enc), length: encWin(r.len, enc >> 2), handle: h, processId: pid, key })));
  const unlockHeld = fc.record({ path, k: fc.nat(7), enc: fc.nat(255) }).map(({ path, k, enc }) => cmd({ t: 'unlockHeld', path, k, enc }));
  const minusOne = fc.constantFrom<bigint | number>(-1, -1n, UINT64_MAX);
  const unlockAll = fc
    .record({ path, h: winHandle, pid: winPid, key: winKey, o: minusOne, l: minusOne })
    .map(({ path, h, pid, key, o, l }) => call('unlockFile', obj({ fileName: path, byteOffset: o, length: l, handle: h, processId: pid, key })));
  const closeHandle = fc.record({ path, h: winHandle }).map(({ path, h }) => call('closeHandle', { fileName: path, handle: h }));
  const checkIo = fc
    .record({ path, h: winHandle, pid: winPid, r: winRange, enc: fc.nat(15), write: fc.boolean() })
    .map(({ path, h, pid, r, enc, write }) => call('checkIo', obj({ fileName: path, handle: h, processId: pid, byteOffset: encWin(r.off, enc), length: encWin(r.len, enc >> 2), write })));
  return [
    { weight: 8, arbitrary: lockFile },
    { weight: 3, arbitrary: unlockHeld },
    { weight: 1, arbitrary: unlockFile },
    { weight: 1, arbitrary: unlockAll },
    { weight: 1, arbitrary: closeHandle },
    { weight: 2, arbitrary: checkIo },
    { weight: 2, arbitrary: cancelCommand },
  ];
}

export const cancelCommand = fc
  .record({ k: fc.nat(15), reason: fc.constantFrom<'abort' | 'timeout'>('abort', 'timeout') })
  .map(({ k, reason }) => cmd({ t: 'cancel', k, reason }));

// ---- POSIX, OFD, flock ------------------------------------------------------------------------

/** Owners: classic ones are processes (fixed pid), OFD and flock ones open files (fixed fileHandle). */
export const POSIX_OWNERS: readonly (number | string)[] = [1, 2, '1'];
export const OFD_OWNERS: readonly (number | string)[] = [1, 2];
const ownerIndex = (v: number | string, list: readonly (number | string)[]): number => list.indexOf(v);
/** The fileHandle an owner always uses: posix owner i -> 10+i, OFD and flock owner i -> 20+i (one open file). */
export function fileHandleOf(kind: 'posix' | 'ofd' | 'flock', i: number): number {
  return (kind === 'posix' ? 10 : 20) + i;
}

/** (lockStart, lockLen) of a POSIX range of whole cells in one of its encodings. */
export function posixRange(smallCells = 8): fc.Arbitrary<{ lockStart: bigint | number; lockLen: bigint | number }> {
  return fc.tuple(cell(POSIX_CELLS, smallCells), cell(POSIX_CELLS, smallCells), fc.nat(7), fc.nat(9)).map(([a, b, e, whole]) => {
    // Now and then the whole file, [0, OFFSET_MAX].
    const start = whole === 0 ? 0n : cellStart(Math.min(a, b));
    const end = whole === 0 ? OFFSET_MAX : cellEnd(Math.max(a, b));
    let lockStart = start;
    let lockLen = end - start + 1n;
    if (e % 3 === 1 && end === OFFSET_MAX) lockLen = 0n; // "to OFFSET_MAX"
    if (e % 3 === 2 && end < OFFSET_MAX) {
      lockStart = end + 1n; // negative length: the bytes before lockStart
      lockLen = -(end - start + 1n);
    }
    const num = (v: bigint): bigint | number => (e & 4 && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v);
    return { lockStart: num(lockStart), lockLen: num(lockLen) };
  });
}

function idOf(v: number | string | bigint, big: boolean): number | bigint | string {
  return typeof v === 'number' && big ? BigInt(v) : v;
}

const setCmd = fc.oneof({ weight: 3, arbitrary: fc.constant(F_SETLK) }, { weight: 3, arbitrary: fc.constant(F_SETLKW) }, { weight: 2, arbitrary: fc.constant(F_GETLK) });
const lockType = fc.oneof({ weight: 3, arbitrary: fc.constant(F_RDLCK) }, { weight: 3, arbitrary: fc.constant(F_WRLCK) }, { weight: 3, arbitrary: fc.constant(F_UNLCK) });

export interface PosixOptions {
  readonly kinds?: readonly ('posix' | 'ofd')[];
  readonly owners?: readonly (number | string)[];
  /** Ranges mostly among cells 0 .. smallCells-1. */
  readonly smallCells?: number;
  /** May classic 'posix' requests wait (F_SETLKW)? If not, they use F_SETLK. */
  readonly blockingPosix?: boolean;
}

export function posixCommands(paths: readonly string[], opts: PosixOptions = {}): fc.Arbitrary<OpCommand> {
  const { kinds = ['posix', 'ofd'], owners = POSIX_OWNERS, smallCells = 8, blockingPosix = true } = opts;
  const path = pathOf(paths);
  return fc
    .record({ path, kind: fc.constantFrom(...kinds), o: fc.constantFrom(...owners), big: fc.boolean(), lockType, cmd: setCmd, r: posixRange(smallCells), omitKind: fc.boolean() })
    .map(({ path, kind, o, big, lockType, cmd, r, omitKind }) => {
      const list = kind === 'posix' ? owners : OFD_OWNERS;
      const v = kind === 'ofd' && !OFD_OWNERS.includes(o) ? 1 : o;
      const i = ownerIndex(v, list);
      return call(
        'lock',
        obj({
          path,
          lockType,
          lockStart: r.lockStart,
          lockLen: r.lockLen,
          cmd: kind === 'posix' && !blockingPosix && cmd === F_SETLKW ? F_SETLK : cmd,
          lockOwner: idOf(v, big),
          lockPid: kind === 'posix' ? 100 + i : 0,
          kind: kind === 'posix' && omitKind ? undefined : kind,
          fileHandle: idOf(fileHandleOf(kind, i), big),
        }),
      );
    });
}

export function flockCommands(paths: readonly string[]): fc.Arbitrary<OpCommand> {
  const path = pathOf(paths);
  // flock ignores the range: mostly left out, sometimes nonsense that must not matter.
  const range = fc.oneof(
    { weight: 3, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.constantFrom({ lockStart: -5, lockLen: 3 }, { lockStart: 7n, lockLen: -100 }, { lockStart: 3, lockLen: 1 }) },
  );
  return fc
    .record({ path, o: fc.constantFrom(...OFD_OWNERS), big: fc.boolean(), lockType, cmd: setCmd, range })
    .map(({ path, o, big, lockType, cmd, range }) => {
      const i = ownerIndex(o, OFD_OWNERS);
      return call('lock', { path, lockType, cmd, lockOwner: idOf(o, big), lockPid: 300 + i, kind: 'flock', fileHandle: idOf(fileHandleOf('flock', i), big), ...range });
    });
}

export function flushCommand(paths: readonly string[], owners = POSIX_OWNERS): fc.Arbitrary<OpCommand> {
  return fc
    .record({ path: fc.constantFrom(...paths), o: fc.constantFrom(...owners), big: fc.boolean() })
    .map(({ path, o, big }) => call('flush', { path, lockOwner: idOf(o, big) }));
}

export function releaseCommand(paths: readonly string[], owners = POSIX_OWNERS): fc.Arbitrary<OpCommand> {
  const handles = [...owners.map((_, i) => fileHandleOf('posix', i)), ...OFD_OWNERS.map((_, i) => fileHandleOf('ofd', i)), 99];
  return fc
    .record({ path: fc.constantFrom(...paths), fh: fc.constantFrom(...handles), big: fc.boolean(), owner: optional(fc.constantFrom(...OFD_OWNERS)) })
    .map(({ path, fh, big, owner }) => call('release', obj({ path, fileHandle: idOf(fh, big), lockOwner: owner })));
}

// ---- garbage ----------------------------------------------------------------------------------

/**
 * Requests that must be refused without touching any lock: a wrong type (TypeError naming the
 * field) or a value out of range (the documented code). Built from a valid request with one field
 * spoiled.
 */
export function garbageCommands(paths: readonly string[]): fc.Arbitrary<OpCommand> {
  const path = pathOf(paths);
  const winBase = (p: string): Record<string, unknown> => ({ fileName: p, byteOffset: 2, length: 3, exclusiveLock: true, failImmediately: false, handle: 1 });
  const posixBase = (p: string): Record<string, unknown> => ({ path: p, lockType: F_WRLCK, lockStart: 0, lockLen: 4, cmd: F_SETLKW, lockOwner: 1, lockPid: 100, fileHandle: 10 });
  const notObject = fc.constantFrom<unknown>(null, undefined, 5, 'req', [1, 2]);
  type G = [Extract<Op, { t: 'call' }>['method'], (p: string) => Record<string, unknown>, string, unknown];
  const spoiled: G[] = [
    // Wrong types: TypeError naming the field.
    ['lockFile', winBase, 'fileName', 5],
    ['lockFile', winBase, 'exclusiveLock', 'yes'],
    ['lockFile', winBase, 'failImmediately', 1],
    ['lockFile', winBase, 'handle', undefined],
    ['lockFile', winBase, 'handle', {}],
    ['lockFile', winBase, 'processId', true],
    ['lockFile', winBase, 'key', {}],
    ['lockFile', winBase, 'byteOffset', '2'],
    ['lockFile', winBase, 'byteOffset', 1.5],
    ['lockFile', winBase, 'length', 2 ** 60],
    ['lockFile', winBase, 'length', undefined],
    ['unlockFile', winBase, 'handle', null],
    ['unlockFile', winBase, 'byteOffset', '-1'],
    ['unlockFile', winBase, 'length', 0.5],
    ['closeHandle', winBase, 'fileName', undefined],
    ['closeHandle', winBase, 'handle', []],
    ['checkIo', (p) => ({ ...winBase(p), write: false }), 'write', 'no'],
    ['checkIo', (p) => ({ ...winBase(p), write: false }), 'byteOffset', null],
    ['lock', posixBase, 'path', 1],
    ['lock', posixBase, 'lockType', '1'],
    ['lock', posixBase, 'lockType', 1.5],
    ['lock', posixBase, 'cmd', undefined],
    ['lock', posixBase, 'lockOwner', undefined],
    ['lock', posixBase, 'lockOwner', { id: 1 }],
    ['lock', posixBase, 'lockPid', 'x'],
    ['lock', posixBase, 'kind', 5],
    ['lock', posixBase, 'fileHandle', true],
    ['lock', posixBase, 'lockStart', '0'],
    ['lock', posixBase, 'lockLen', 2.5],
    ['lock', posixBase, 'lockLen', 2 ** 60],
    ['flush', (p) => ({ path: p, lockOwner: 1 }), 'path', null],
    ['flush', (p) => ({ path: p, lockOwner: 1 }), 'lockOwner', false],
    ['release', (p) => ({ path: p, fileHandle: 10 }), 'fileHandle', undefined],
    ['release', (p) => ({ path: p, fileHandle: 10 }), 'lockOwner', {}],
    // Values out of range: the documented code, nothing changes.
    ['lockFile', winBase, 'byteOffset', 1n << 64n], // 87
    ['lockFile', winBase, 'length', -(1n << 63n) - 1n], // 87
    ['lockFile', winBase, 'byteOffset', -1], // 2^64-1 with length 3: 307
    ['lockFile', winBase, 'byteOffset', UINT64_MAX - 1n], // 307
    ['lockFile', (p) => ({ ...winBase(p), length: -1 }), 'byteOffset', -1], // (-1, -1): 307
    ['unlockFile', winBase, 'byteOffset', 1n << 64n], // 87
    ['unlockFile', winBase, 'length', UINT64_MAX], // 307
    ['checkIo', (p) => ({ ...winBase(p), write: true }), 'byteOffset', -(1n << 63n) - 1n], // 87
    ['checkIo', (p) => ({ ...winBase(p), write: true }), 'length', -1], // 2 + (2^64-1) - 1 wraps: 307
    ['lock', posixBase, 'lockType', 3], // -EINVAL
    ['lock', posixBase, 'lockType', -1], // -EINVAL
    ['lock', posixBase, 'cmd', 8], // -EINVAL
    ['lock', posixBase, 'lockStart', -1], // -EINVAL
    ['lock', posixBase, 'lockStart', OFFSET_MAX + 1n], // -EOVERFLOW
    ['lock', (p) => ({ ...posixBase(p), lockStart: 1 }), 'lockLen', OFFSET_MAX + 1n], // -EOVERFLOW
    ['lock', (p) => ({ ...posixBase(p), lockStart: 2 }), 'lockLen', -3], // -EINVAL
    ['lock', (p) => ({ ...posixBase(p), cmd: F_GETLK }), 'lockType', F_UNLCK], // F_GETLK with F_UNLCK: -EINVAL
  ];
  const one = fc.tuple(path, fc.constantFrom(...spoiled)).map(([p, [method, base, field, bad]]) => {
    // The method's own fields of the base only: an unknown field is a TypeError of its own.
    const known: readonly string[] = REQUEST_FIELDS[method];
    const input = Object.fromEntries(Object.entries(base(p)).filter(([k]) => known.includes(k)));
    if (bad === undefined) delete input[field];
    else input[field] = bad;
    return call(method, input, true);
  });
  const whole = fc
    .tuple(fc.constantFrom<Extract<Op, { t: 'call' }>['method']>('lockFile', 'unlockFile', 'closeHandle', 'checkIo', 'lock', 'flush', 'release'), notObject)
    .map(([m, v]) => call(m, v, true));
  return fc.oneof({ weight: 8, arbitrary: one }, { weight: 1, arbitrary: whole });
}
