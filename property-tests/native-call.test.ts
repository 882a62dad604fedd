// Native requests. (1) Fast path, model = nativeCall (the native event turned into the API's input and parsed by parseLock, as every API call is); invariant: for any getlk/setlk event, fcntlCall either declines (undefined) or returns exactly the Call the model makes, and it never declines a well-formed request with a range below 2^53. (2) Journal, model = nativeCall again; invariant: a committed native request (setlk, flock, flush, release) recorded by the native journal and read back by the caller's reply reader decodes (the journal's one entry form, a wire call) to exactly the Call it was decided as, so a replacement worker replays what the kernel was told.
import t from 'tap';
import fc from 'fast-check';
import { deepStrictEqual } from 'node:assert/strict';
import { nativeCall, fcntlCall, journalRequest, type NativeRequest } from '../src/actors/native-feed.js';
import { NativeJournal } from '../src/actors/native-journal.js';
import { FL_FLOCK_RELEASE, FL_SLEEP, K_FLOCK, K_FLUSH, K_GETLK, K_RELEASE, K_SETLK } from '../src/native/index.js';
import { decodeCall } from '../src/wire/calls.js';
import { ReplyWriter, readReplies } from '../src/wire/replies.js';

const SAFE = Number.MAX_SAFE_INTEGER;
const identity = fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const offset = fc.oneof(fc.nat({ max: 1 << 20 }), fc.integer({ min: SAFE - 4, max: SAFE }), fc.constant(Infinity), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));

const event: fc.Arbitrary<NativeRequest> = fc
  .record({
    kind: fc.constantFrom(K_SETLK, K_SETLK, K_GETLK, K_FLOCK),
    path: fc.constantFrom('/a', '/b/c'),
    type: fc.integer({ min: -1, max: 3 }),
    flags: fc.constantFrom(0, FL_SLEEP),
    lockPid: fc.integer({ min: 0, max: 1 << 22 }),
    fileHandle: identity,
    lockOwner: identity,
    start: offset,
    end: offset,
    // Most kernel ranges end at or after their start: end = start + len then.
    len: fc.option(fc.nat({ max: 1 << 12 }), { freq: 3 }),
  })
  .map(({ len, ...r }) => (len !== null && typeof r.start === 'number' ? { ...r, end: r.start + len } : r));

t.test('fcntlCall makes the Call parseLock makes, or declines', async (t) => {
  let taken = 0;
  fc.assert(
    fc.property(event, (r) => {
      const fast = fcntlCall(r);
      if (fast === undefined) return true;
      taken++;
      const slow = nativeCall(r);
      t.same(fast, slow, 'same Call');
      return 'op' in slow;
    }),
    { numRuns: 2000 },
  );
  t.ok(taken > 100, `the fast path answered ${taken} of 2000 events`);
});

t.test('every well-formed classic request below 2^53 takes the fast path', async (t) => {
  const narrow = fc
    .record({
      kind: fc.constantFrom(K_SETLK, K_GETLK),
      type: fc.constantFrom(0, 1, 2),
      flags: fc.constantFrom(0, FL_SLEEP),
      start: fc.nat({ max: SAFE - 1 }),
      len: fc.nat({ max: 1 << 30 }),
      toEnd: fc.boolean(),
      lockOwner: identity,
      fileHandle: identity,
    })
    .filter((x) => x.start + x.len < SAFE);
  fc.assert(
    fc.property(narrow, (x) => {
      const r: NativeRequest = { kind: x.kind, path: '/f', type: x.type, flags: x.flags, lockPid: 7, fileHandle: x.fileHandle, lockOwner: x.lockOwner, start: x.start, end: x.toEnd ? Infinity : x.start + x.len };
      const fast = fcntlCall(r);
      return fast !== undefined && fast.op === 'lock';
    }),
    { numRuns: 500 },
  );
  t.pass('taken every time');
});

t.test('a committed native request journals as the API call it was decided as', async (t) => {
  const committed = fc.oneof(
    event.filter((r) => r.kind !== K_GETLK),
    fc.record({ kind: fc.constantFrom(K_FLUSH, K_RELEASE), flags: fc.constantFrom(0, FL_FLOCK_RELEASE), fileHandle: identity, lockOwner: identity }).map(
      (x): NativeRequest => ({ ...x, path: '/c', type: 2, lockPid: 0, start: 0, end: 0 }),
    ),
  );
  let checked = 0;
  fc.assert(
    fc.property(committed, (r) => {
      let decided: ReturnType<typeof nativeCall>;
      try {
        decided = nativeCall(r);
      } catch {
        return; // a malformed event: the feed reports it and answers ENOLCK, never committed
      }
      if (!('op' in decided)) return; // refused before any table: never committed
      const wires: unknown[][] = [];
      const out = new ReplyWriter((b) =>
        readReplies(structuredClone(b), {
          journal: (_path, wire) => wires.push(wire),
          result: fail,
          getlk: fail,
          queued: fail,
          idle: fail,
          message: fail,
        }),
      );
      const journal = new NativeJournal(out, () => true);
      journalRequest(journal, r);
      journal.send();
      deepStrictEqual(wires.length, 1);
      deepStrictEqual(decodeCall(wires[0]!, 0), decided);
      checked++;
    }),
    { numRuns: 2000 },
  );
  t.ok(checked > 500, `${checked} committed requests read back as their Call`);
});

function fail(): never {
  throw new Error('the native journal writes journal records only');
}
