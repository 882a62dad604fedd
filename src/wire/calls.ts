/**
 * The call codec: how a request crosses from the caller's thread to a worker (the reply codec,
 * replies.ts, is its mirror). Flat runs of primitives, and for the hot lock call a run of doubles.
 *
 * Structured clone pays per object and per property name, so nested Call objects cost more to copy
 * than to decide (profiles showed serialization as the largest cost on both threads), and it pays
 * per array item too, so the common lock call crosses in a Float64Array (the number lane, below;
 * batcher.ts CallBatcher). Otherwise a call crosses as its tag, its id and a fixed run of fields.
 * A lock call crosses checked (requests.ts DecodedLock without its owner key, which the worker
 * derives from lockOwner; cmd, type and kind packed in one small integer; offsets as numbers unless
 * the caller gave bigints): the worker builds its Call without checking again. The other calls cross
 * as the fields of the request's snapshot (requests.ts snapshotRequest), which the worker parses
 * again (they were validated on the caller's thread from that same snapshot, so this cannot throw).
 * Rare messages (cancel, sync, edges, ...) cross as objects (protocol.ts).
 *
 * A call's wire form is also the journal's entry form (journal-entry.ts): compact, and immune to
 * the caller's later edits.
 */
import type { Call, DecodedLock } from '../core/requests.js';
import { identityKey } from '../core/input.js';
import { OWNER_PREFIX, lockCallOf, parseCheckIo, parseCloseHandle, parseFlush, parseLockFile, parseRelease, parseUnlockFile } from '../core/requests.js';

/** Raw request fields per public call other than lock, in wire order. */
const FIELDS = {
  lockFile: ['fileName', 'byteOffset', 'length', 'exclusiveLock', 'failImmediately', 'handle', 'processId', 'key', 'handleInfo', 'fileContext', 'handleContext'],
  unlockFile: ['fileName', 'byteOffset', 'length', 'handle', 'processId', 'key'],
  closeHandle: ['fileName', 'handle'],
  checkIo: ['fileName', 'handle', 'processId', 'byteOffset', 'length', 'write'],
  flush: ['path', 'lockOwner'],
  release: ['path', 'fileHandle', 'lockOwner'],
} as const;

type RawCall = keyof typeof FIELDS;
export type PublicCall = RawCall | 'lock';
const RAW_CALLS = Object.keys(FIELDS) as RawCall[];
/** Tag of a lock call; a raw call's tag is 2 + its index in FIELDS. */
export const T_LOCK = 1;
const TAG = Object.fromEntries(RAW_CALLS.map((c, i) => [c, i + 2])) as Record<RawCall, number>;
const PARSE: Record<RawCall, (o: unknown) => unknown> = {
  lockFile: parseLockFile,
  unlockFile: parseUnlockFile,
  closeHandle: parseCloseHandle,
  checkIo: parseCheckIo,
  flush: parseFlush,
  release: parseRelease,
};

/** Tag of a rare message carried as one object. */
export const T_OBJECT = 0;
type Encoder = (id: number, raw: Record<string, unknown>) => unknown[];

/**
 * One encoder per raw call, generated from FIELDS: a loop over field names reads every caller
 * object through one megamorphic site (9% of the caller's thread in bench:api); written-out
 * property reads stay monomorphic per call, and an array literal is allocated once, at its size.
 */
const ENCODERS = Object.fromEntries(
  RAW_CALLS.map((c) => [c, new Function('id', 'raw', `return [${TAG[c]}, id, ${FIELDS[c].map((f) => `raw.${f}`).join(', ')}];`) as Encoder]),
) as Record<RawCall, Encoder>;

/**
 * A public call other than lock: [tag, id, ...raw fields]. `raw` is the request's snapshot, never the
 * caller's object (whose getters could answer differently now than when it was checked).
 */
export function encodeCall(name: RawCall, id: number, raw: Record<string, unknown>): unknown[] {
  return ENCODERS[name](id, raw);
}

const KINDS = ['posix', 'ofd', 'flock'] as const;
/** Items of a lock call on the wire. */
const LOCK_ITEMS = 10;

/** cmd, type and kind of a lock call in one small integer. */
export function lockFlagsOf(cmd: number, lockType: number, kind: DecodedLock['kind']): number {
  return (cmd << 4) | (lockType << 2) | (kind === 'posix' ? 0 : kind === 'ofd' ? 1 : 2);
}

function lockFlags(d: DecodedLock): number {
  return lockFlagsOf(d.cmd, d.lockType, d.kind);
}

/** A checked lock call; fileContext is the snapshot's copy of the caller's (requests.ts snapshotRequest). */
export function encodeLock(id: number, d: DecodedLock, fileContext: unknown): unknown[] {
  return [T_LOCK, id, d.path, lockFlags(d), d.lockOwner, d.lockPid, d.lockStart, d.lockLen, d.fileHandle, fileContext];
}

/**
 * Writes a lock call's wire items at b[o] from its fields, over what is there (a reused array, or
 * b.length to append), without a DecodedLock or an array of its own; returns the index after it.
 */
export function putLock(
  b: unknown[],
  o: number,
  id: number,
  path: string,
  flags: number,
  lockOwner: DecodedLock['lockOwner'],
  lockPid: number,
  lockStart: DecodedLock['lockStart'],
  lockLen: DecodedLock['lockLen'],
  fileHandle: DecodedLock['fileHandle'],
): number {
  b[o] = T_LOCK;
  b[o + 1] = id;
  b[o + 2] = path;
  b[o + 3] = flags;
  b[o + 4] = lockOwner;
  b[o + 5] = lockPid;
  b[o + 6] = lockStart;
  b[o + 7] = lockLen;
  b[o + 8] = fileHandle;
  b[o + 9] = undefined;
  return o + LOCK_ITEMS;
}

/**
 * The number lane of a batch from the coordinator (CallBatcher): a lock call whose identities and
 * range are numbers and which has no fileContext (nearly all of them) crosses as LOCK_DOUBLES
 * doubles, its path in the batch's path lane. A Float64Array clones as one copy of its bytes; the
 * same fields as array items cost the serializer per item (a 64-call batch: ~20 µs as items, ~9 µs
 * as doubles and paths). Anything else is N_MIXED in the number lane and a wire call or an object
 * in the mixed lane, in the same order.
 */
export const N_MIXED = 0;
/** T_LOCK, id, flags, lockOwner, lockPid, lockStart, lockLen, fileHandle (NaN: none). */
export const LOCK_DOUBLES = 8;

/** Whether a checked lock call can cross as doubles (writeLockDoubles). */
export function fitsDoubles(d: DecodedLock, fileContext: unknown): boolean {
  return (
    fileContext === undefined &&
    typeof d.lockOwner === 'number' &&
    typeof d.lockStart === 'number' &&
    typeof d.lockLen === 'number' &&
    (d.fileHandle === undefined || typeof d.fileHandle === 'number')
  );
}

/** Writes a lock call that fitsDoubles at nums[o]; its path goes to the path lane. */
export function writeLockDoubles(nums: Float64Array, o: number, id: number, d: DecodedLock): void {
  nums[o] = T_LOCK;
  nums[o + 1] = id;
  nums[o + 2] = lockFlags(d);
  nums[o + 3] = d.lockOwner as number;
  nums[o + 4] = d.lockPid;
  nums[o + 5] = d.lockStart as number;
  nums[o + 6] = d.lockLen as number;
  nums[o + 7] = d.fileHandle === undefined ? NaN : (d.fileHandle as number);
}

/** Appends the lock call written at nums[o] to `b` as encodeLock's items. */
export function appendLockWire(b: unknown[], nums: Float64Array, o: number, path: string): void {
  const fh = nums[o + 7]!;
  putLock(b, b.length, nums[o + 1]!, path, nums[o + 2]!, nums[o + 3]!, nums[o + 4]!, nums[o + 5]!, nums[o + 6]!, Number.isNaN(fh) ? undefined : fh);
}

/** The Call of the lock call written at nums[o] (whose tag is T_LOCK), with its path. */
export function decodeLockDoubles(nums: Float64Array, o: number, path: string): Call {
  const fh = nums[o + 7]!;
  return decodeLockFields(path, nums[o + 2]!, nums[o + 3]!, nums[o + 4]!, nums[o + 5]!, nums[o + 6]!, Number.isNaN(fh) ? undefined : fh, undefined);
}

function decodeLockFields(
  path: string,
  flags: number,
  lockOwner: DecodedLock['lockOwner'],
  lockPid: number,
  lockStart: DecodedLock['lockStart'],
  lockLen: DecodedLock['lockLen'],
  fileHandle: DecodedLock['fileHandle'],
  fileContext: unknown,
): Call {
  const kind = KINDS[flags & 3]!;
  const d: DecodedLock = {
    op: 'lock',
    path,
    cmd: flags >> 4,
    lockType: (flags >> 2) & 3,
    kind,
    // Rebuilt here rather than sent: one string less to copy per request (decodeLock's key).
    owner: OWNER_PREFIX[kind] + identityKey(lockOwner, 'lockOwner'),
    lockOwner,
    lockPid,
    lockStart,
    lockLen,
    fileHandle,
  };
  return lockCallOf(d, fileContext === undefined ? undefined : { fileContext });
}

/** The id of the call starting at `batch[i]` (whose tag is > 0). */
export function callId(batch: readonly unknown[], i: number): number {
  return batch[i + 1] as number;
}

/** The index after the call starting at `batch[i]`. */
export function callEnd(batch: readonly unknown[], i: number): number {
  const tag = batch[i] as number;
  return i + (tag === T_LOCK ? LOCK_ITEMS : 2 + FIELDS[RAW_CALLS[tag - 2]!].length);
}

/** The Call starting at `batch[i]` (whose tag is > 0). */
export function decodeCall(batch: readonly unknown[], i: number): Call {
  const tag = batch[i] as number;
  if (tag === T_LOCK) {
    return decodeLockFields(
      batch[i + 2] as string,
      batch[i + 3] as number,
      batch[i + 4] as DecodedLock['lockOwner'],
      batch[i + 5] as number,
      batch[i + 6] as DecodedLock['lockStart'],
      batch[i + 7] as DecodedLock['lockLen'],
      batch[i + 8] as DecodedLock['fileHandle'],
      batch[i + 9],
    );
  }
  const name = RAW_CALLS[tag - 2]!;
  const fields = FIELDS[name];
  const raw: Record<string, unknown> = {};
  for (let k = 0; k < fields.length; k++) {
    const v = batch[i + 2 + k];
    if (v !== undefined) raw[fields[k]!] = v;
  }
  return PARSE[name](raw) as Call;
}

/**
 * Reads a batch from the coordinator (batcher.ts CallBatcher), in order: [numbers, doubles used,
 * paths, mixed], or a small batch as one flat array of wire items.
 */
export function readBatch(batch: readonly unknown[], onCall: (id: number, call: Call) => void, onObject: (m: unknown) => void): void {
  if (!(batch[0] instanceof Float64Array)) {
    for (let i = 0; i < batch.length; ) i = readWire(batch, i, onCall, onObject);
    return;
  }
  const nums = batch[0];
  const used = batch[1] as number;
  const paths = batch[2] as string[];
  const mixed = batch[3] as unknown[];
  let p = 0;
  let i = 0;
  for (let o = 0; o < used; ) {
    if (nums[o] === T_LOCK) {
      onCall(nums[o + 1]!, decodeLockDoubles(nums, o, paths[p++]!));
      o += LOCK_DOUBLES;
      continue;
    }
    o++;
    i = readWire(mixed, i, onCall, onObject);
  }
}

/** Reads the message (a wire call or an object) at b[i]; returns the index after it. */
function readWire(b: readonly unknown[], i: number, onCall: (id: number, call: Call) => void, onObject: (m: unknown) => void): number {
  if (b[i] === T_OBJECT) {
    onObject(b[i + 1]);
    return i + 2;
  }
  const end = callEnd(b, i);
  onCall(callId(b, i), decodeCall(b, i));
  return end;
}
