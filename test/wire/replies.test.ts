/**
 * The reply codec (src/wire/replies.ts). Model: a list of reply records, each one of the writer's
 * calls with its arguments. Invariant: whatever list a worker writes with ReplyWriter, in whatever
 * batches its flush rule cuts, and after a structured clone (the port), readReplies hands the
 * caller's side the same records, in the same order, with the same values.
 */
import t from 'tap';
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { encodeCall, lockFlagsOf, putLock } from '../../src/wire/calls.js';
import { END_FLOCK_DROP, END_IDLE, ReplyWriter, readReplies, type ReplyHandler } from '../../src/wire/replies.js';
import type { FromHost } from '../../src/wire/protocol.js';

type Record =
  | { k: 'result'; id: number; code: number | null; waitedMs: number; flags: number }
  | { k: 'getlk'; id: number; result: number; lockType: number; lockStart: bigint; lockLen: bigint; lockPid: number }
  | { k: 'queued'; id: number; flockDrop: boolean }
  | { k: 'journalLock'; path: string; flags: number; lockOwner: number | bigint | string; lockPid: number; lockStart: number | bigint; lockLen: number | bigint; fileHandle: number | bigint | string | undefined }
  | { k: 'journalCall'; wire: unknown[] }
  | { k: 'idle'; path: string }
  | { k: 'object'; m: FromHost };

const id = fc.integer({ min: -(2 ** 40), max: 2 ** 40 });
const path = fc.oneof(fc.constantFrom('/a', '/b', 'dir/f', ''), fc.string());
const identity = fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.string());
const offset = fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }));

const record: fc.Arbitrary<Record> = fc.oneof(
  fc.record({
    k: fc.constant('result' as const),
    id,
    code: fc.oneof(fc.constant(null), fc.integer({ min: -200, max: 2000 })),
    // -1: never queued; R_DONE carries neither a wait nor flags, R_ENDED both.
    waitedMs: fc.oneof(fc.constant(-1), fc.nat()),
    flags: fc.constantFrom(0, END_FLOCK_DROP, END_IDLE, END_FLOCK_DROP | END_IDLE),
  }),
  fc.record({
    k: fc.constant('getlk' as const),
    id,
    result: fc.integer({ min: -100, max: 0 }),
    lockType: fc.constantFrom(F_RDLCK, F_WRLCK, F_UNLCK),
    lockStart: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
    lockLen: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
    lockPid: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
  }),
  fc.record({ k: fc.constant('queued' as const), id, flockDrop: fc.boolean() }),
  fc.record({
    k: fc.constant('journalLock' as const),
    path,
    flags: fc.tuple(fc.constantFrom(F_SETLK, F_SETLKW), fc.constantFrom(F_RDLCK, F_WRLCK, F_UNLCK), fc.constantFrom('posix' as const, 'ofd' as const, 'flock' as const)).map(([c, ty, kd]) => lockFlagsOf(c, ty, kd)),
    lockOwner: identity,
    lockPid: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    lockStart: offset,
    lockLen: offset,
    fileHandle: fc.oneof(fc.constant(undefined), identity),
  }),
  fc.oneof(
    fc.record({ path, lockOwner: identity }).map(({ path, lockOwner }) => ({ k: 'journalCall' as const, wire: encodeCall('flush', 0, { path, lockOwner }) })),
    fc.record({ path, fileHandle: identity, lockOwner: fc.oneof(fc.constant(undefined), identity) }).map(({ path, fileHandle, lockOwner }) => ({
      k: 'journalCall' as const,
      wire: encodeCall('release', 0, { path, fileHandle, lockOwner }),
    })),
  ),
  fc.record({ k: fc.constant('idle' as const), path }),
  fc.oneof(
    fc.record({ token: fc.nat() }).map(({ token }) => ({ k: 'object' as const, m: { t: 'synced' as const, token } })),
    fc.record({ id, owner: fc.string(), blockers: fc.array(fc.string(), { maxLength: 3 }) }).map(({ id, owner, blockers }) => ({
      k: 'object' as const,
      m: { t: 'edges' as const, id, owner, blockers, queuedBehind: [] },
    })),
  ),
);

function write(w: ReplyWriter, r: Record): void {
  switch (r.k) {
    case 'result':
      w.result(r.id, r.code, r.waitedMs, r.waitedMs < 0 ? 0 : r.flags);
      return;
    case 'getlk':
      w.getlk(r.id, { result: r.result, lockType: r.lockType, lockStart: r.lockStart, lockLen: r.lockLen, lockPid: r.lockPid });
      return;
    case 'queued':
      w.queued(r.id, r.flockDrop);
      return;
    case 'journalLock': {
      // A call among others in a longer array (the native journal's): only b[start, end) is written.
      const b: unknown[] = ['before'];
      putLock(b, b.length, 0, r.path, r.flags, r.lockOwner, r.lockPid, r.lockStart, r.lockLen, r.fileHandle);
      w.journal([...b, 'after'], 1, b.length);
      return;
    }
    case 'journalCall':
      w.journal(r.wire, 0, r.wire.length);
      return;
    case 'idle':
      w.idle(r.path);
      return;
    case 'object':
      w.object(r.m);
      return;
  }
}

/** What the reader should hand over for record `r`. */
function expected(r: Record): unknown[] {
  switch (r.k) {
    case 'result':
      return ['result', r.id, r.code, r.waitedMs, r.waitedMs < 0 ? 0 : r.flags];
    case 'getlk':
      return ['getlk', r.id, { result: r.result, lockType: r.lockType, lockStart: r.lockStart, lockLen: r.lockLen, lockPid: r.lockPid }];
    case 'queued':
      return ['queued', r.id, r.flockDrop];
    case 'journalLock':
      return ['journal', r.path, [1, 0, r.path, r.flags, r.lockOwner, r.lockPid, r.lockStart, r.lockLen, r.fileHandle, undefined]];
    case 'journalCall':
      return ['journal', r.wire[2], r.wire];
    case 'idle':
      return ['idle', r.path];
    case 'object':
      return ['message', r.m];
  }
}

function recorder(seen: unknown[][]): ReplyHandler {
  return {
    result: (id, code, waitedMs, flags) => seen.push(['result', id, code, waitedMs, flags]),
    getlk: (id, reply) => seen.push(['getlk', id, reply]),
    queued: (id, flockDrop) => seen.push(['queued', id, flockDrop]),
    journal: (path, wire) => seen.push(['journal', path, wire]),
    idle: (path) => seen.push(['idle', path]),
    message: (m) => seen.push(['message', m]),
  };
}

t.test('what the writer writes, the reader reads: every record, in order, across batch cuts and a clone', async (t) => {
  fc.assert(
    fc.property(fc.array(record, { maxLength: 200 }), fc.integer({ min: 1, max: 70 }), (records, limit) => {
      const seen: unknown[][] = [];
      const h = recorder(seen);
      // The port: a structured clone of each batch, read on arrival.
      const w = new ReplyWriter((batch) => readReplies(structuredClone(batch), h), limit);
      for (const r of records) write(w, r);
      w.flushNow();
      // Thrown, not counted, so fast-check shrinks a failure to its smallest list.
      deepStrictEqual(seen, records.map(expected));
    }),
    { numRuns: 300 },
  );
  t.pass('300 random reply lists read back as written');
});

t.test('a record the reader does not know is refused, naming where', async (t) => {
  t.throws(() => readReplies([1, 5, 0, 99, 1], recorder([])), /unknown record 99 at 3/);
});
