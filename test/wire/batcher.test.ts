/**
 * CallBatcher (src/wire/batcher.ts) and readBatch (src/wire/calls.ts), the coordinator's batches
 * to a worker. Model: the messages in the order they were appended, each decoded on its own (a lock
 * call as parseLock makes it, another call as decodeCall makes it from its own wire, an object as
 * itself). Invariant: whatever the mix and the count (a small batch goes flat, a larger one in
 * lanes, a full one at the limit), reading every posted batch, after the structured clone that
 * posting does, gives back exactly that sequence.
 */
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import fc from 'fast-check';
import { CallBatcher } from '../../src/wire/batcher.js';
import { decodeCall, encodeCall, encodeLock, fitsDoubles, readBatch } from '../../src/wire/calls.js';
import { F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { decodeLock, parseLock, type Call, type DecodedLock } from '../../src/core/requests.js';

type Msg = { lock: Record<string, unknown> } | { unlockFile: Record<string, unknown> } | { object: { t: string; n: number } };

const identity = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.bigInt({ min: 0n, max: 1000n }), fc.string({ maxLength: 4 }));
const offset = fc.oneof(fc.integer({ min: 0, max: 1 << 20 }), fc.bigInt({ min: 0n, max: 1n << 40n }));
const lockReq = fc.record(
  {
    path: fc.constantFrom('/a', '/b/c', '/ü/d'),
    lockType: fc.constantFrom(F_RDLCK, F_WRLCK, F_UNLCK),
    cmd: fc.constantFrom(F_GETLK, F_SETLK, F_SETLKW),
    lockStart: offset,
    lockLen: offset,
    lockOwner: identity,
    lockPid: fc.integer({ min: 0, max: 1 << 30 }),
    kind: fc.constantFrom('posix', 'ofd', 'flock'),
    fileHandle: identity,
    // A plain object, as a caller passes one (fc.record makes null-prototype objects, which a clone does not keep).
    fileContext: fc.nat().map((n) => ({ n })),
  },
  { requiredKeys: ['path', 'lockType', 'cmd', 'lockStart', 'lockLen', 'lockOwner'] },
);
const unlockFileReq = fc.record({ fileName: fc.constantFrom('/a', '/w'), byteOffset: fc.nat(), length: fc.nat(), handle: identity, processId: fc.nat() });
const message: fc.Arbitrary<Msg> = fc.oneof(
  { weight: 6, arbitrary: lockReq.map((lock) => ({ lock })) },
  { weight: 1, arbitrary: unlockFileReq.map((unlockFile) => ({ unlockFile })) },
  { weight: 1, arbitrary: fc.nat().map((n) => ({ object: { t: 'sync', n } })) },
);

t.test('every message comes back in order, as decoded alone, flat or in lanes', async (t) => {
  let flat = 0;
  let lanes = 0;
  let numberLane = 0;
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 150, size: 'max' }), (msgs) => {
      const posted: unknown[][] = [];
      const out = new CallBatcher((b) => posted.push(structuredClone(b)), 64);
      const expected: unknown[] = [];
      for (const [k, m] of msgs.entries()) {
        const id = k + 1;
        if ('lock' in m) {
          const d = decodeLock(m.lock);
          if (d.op !== 'lock') continue;
          if (fitsDoubles(d, m.lock.fileContext)) {
            out.lock(id, d as DecodedLock);
            numberLane++;
          } else out.call(encodeLock(id, d, m.lock.fileContext));
          expected.push([id, parseLock(m.lock)]);
        } else if ('unlockFile' in m) {
          const wire = encodeCall('unlockFile', id, m.unlockFile);
          out.call(wire);
          expected.push([id, decodeCall(wire, 0)]);
        } else {
          out.object(m.object);
          expected.push(m.object);
        }
      }
      out.flushNow();
      const got: unknown[] = [];
      for (const b of posted) {
        if (b[0] instanceof Float64Array) lanes++;
        else flat++;
        readBatch(
          b,
          (id: number, call: Call) => got.push([id, call]),
          (o: unknown) => got.push(o),
        );
      }
      return isDeepStrictEqual(got, expected);
    }),
    { numRuns: 200 },
  );
  t.pass('200 random sequences came back in order');
  t.ok(flat > 0 && lanes > 0, `both forms were read (flat ${flat}, lanes ${lanes})`);
  t.ok(numberLane > 0, `lock calls crossed as doubles (${numberLane})`);
});

t.test('a batch flushes by itself at the limit, and at the end of the turn', async (t) => {
  const posted: unknown[][] = [];
  const out = new CallBatcher((b) => posted.push(b), 4);
  const d = decodeLock({ path: '/a', lockType: F_WRLCK, cmd: F_SETLK, lockStart: 0, lockLen: 1, lockOwner: 1 }) as DecodedLock;
  for (let id = 1; id <= 5; id++) out.lock(id, d);
  t.equal(posted.length, 1, 'the fourth message filled the batch');
  await Promise.resolve();
  t.equal(posted.length, 2, 'the fifth went at the end of the turn');
  const ids: number[] = [];
  for (const b of posted) readBatch(b, (id) => ids.push(id), () => t.fail('no objects'));
  t.strictSame(ids, [1, 2, 3, 4, 5]);
});
