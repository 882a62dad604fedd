/**
 * The data-plane encoding: a batch is one flat array of primitives.
 *
 * Structured clone pays per object and per property name, so nested Call objects cost more to
 * copy than to decide (profiles showed serialization as the largest cost on both threads). A call
 * crosses as its op code, its id and the caller's raw fields in a fixed order; the worker parses
 * them again (they were validated on the caller's thread, so this cannot throw). A reply crosses
 * as a few numbers: the coordinator still holds the call, so it rebuilds a POSIX reply from the
 * request's own fields and the result. Rare messages (cancel, sync, edges, ...) cross as objects.
 */
import type { Call } from '../core/requests.js';
import { parseCheckIo, parseCloseHandle, parseFlush, parseLock, parseLockFile, parseRelease, parseUnlockFile } from '../core/requests.js';

export type Op = Call['op'];

/** Raw request fields per public call, in wire order. */
const FIELDS = {
  lockFile: ['fileName', 'byteOffset', 'length', 'exclusiveLock', 'failImmediately', 'handle', 'processId', 'key', 'handleInfo', 'fileContext', 'handleContext'],
  unlockFile: ['fileName', 'byteOffset', 'length', 'handle', 'processId', 'key'],
  closeHandle: ['fileName', 'handle'],
  checkIo: ['fileName', 'handle', 'processId', 'byteOffset', 'length', 'write'],
  lock: ['path', 'lockType', 'lockStart', 'lockLen', 'cmd', 'lockOwner', 'lockPid', 'kind', 'fileHandle', 'fileContext'],
  flush: ['path', 'lockOwner'],
  release: ['path', 'fileHandle', 'lockOwner'],
} as const;

export type PublicCall = keyof typeof FIELDS;
const CALLS = Object.keys(FIELDS) as PublicCall[];
const TAG = Object.fromEntries(CALLS.map((c, i) => [c, i + 1])) as Record<PublicCall, number>;
const PARSE: Record<PublicCall, (o: unknown) => unknown> = {
  lockFile: parseLockFile,
  unlockFile: parseUnlockFile,
  closeHandle: parseCloseHandle,
  checkIo: parseCheckIo,
  lock: parseLock,
  flush: parseFlush,
  release: parseRelease,
};

/** Tag of a rare message carried as one object. */
export const T_OBJECT = 0;
/**
 * Reply tags and their fields:
 * - R_DONE id, code (null for close/flush/release), waitedMs (-1: never queued), flockDrop,
 *   idle (the file holds nothing now), path (when idle, else null);
 * - R_GETLK id, result, lockType, lockStart, lockLen, lockPid;
 * - R_QUEUED id, flockDrop.
 */
export const R_DONE = 1;
export const R_GETLK = 2;
export const R_QUEUED = 3;

type Encoder = (out: unknown[], id: number, raw: Record<string, unknown>) => void;

/**
 * One encoder per call, generated from FIELDS: a loop over field names reads every caller object
 * through one megamorphic site (9% of the caller's thread in bench:api); written-out property
 * reads stay monomorphic per call.
 */
const ENCODERS = Object.fromEntries(
  CALLS.map((c) => [c, new Function('out', 'id', 'raw', `out.push(${TAG[c]}, id, ${FIELDS[c].map((f) => `raw.${f}`).join(', ')});`) as Encoder]),
) as Record<PublicCall, Encoder>;

/** Appends a public call: [1 + index of the call, id, ...fields]. */
export function encodeCall(out: unknown[], name: PublicCall, id: number, raw: Record<string, unknown>): void {
  ENCODERS[name](out, id, raw);
}

/**
 * Reads the call starting at `batch[i]` (whose tag is > 0). Returns the parsed call, its id and
 * the index after it.
 */
export function decodeCall(batch: readonly unknown[], i: number): { id: number; call: Call; next: number } {
  const name = CALLS[(batch[i] as number) - 1]!;
  const id = batch[i + 1] as number;
  const fields = FIELDS[name];
  const raw: Record<string, unknown> = {};
  for (let k = 0; k < fields.length; k++) {
    const v = batch[i + 2 + k];
    if (v !== undefined) raw[fields[k]!] = v;
  }
  return { id, call: PARSE[name](raw) as Call, next: i + 2 + fields.length };
}
