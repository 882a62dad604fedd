// Native fast path, model = callOfRequest (the native event turned into the API's input and parsed by parseLock, as every API call is); invariant: for any getlk/setlk event, fcntlCall either declines (undefined) or returns exactly the Call the model makes, and it never declines a well-formed request with a range below 2^53.
import t from 'tap';
import fc from 'fast-check';
import { callOfRequest, fcntlCall, type NativeRequest } from '../src/actors/native-feed.js';
import { FL_SLEEP, K_FLOCK, K_GETLK, K_SETLK } from '../src/native/index.js';

const SAFE = Number.MAX_SAFE_INTEGER;
const identity = fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const offset = fc.oneof(fc.nat({ max: 1 << 20 }), fc.integer({ min: SAFE - 4, max: SAFE }), fc.constant(Infinity), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));

const event: fc.Arbitrary<NativeRequest> = fc
  .record({
    kind: fc.constantFrom(K_SETLK, K_SETLK, K_GETLK, K_FLOCK),
    path: fc.constantFrom('/a', '/b/c'),
    type: fc.integer({ min: -1, max: 3 }),
    flags: fc.constantFrom(0, FL_SLEEP),
    pid: fc.integer({ min: 0, max: 1 << 22 }),
    fh: identity,
    owner: identity,
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
      const slow = callOfRequest(r);
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
      owner: identity,
      fh: identity,
    })
    .filter((x) => x.start + x.len < SAFE);
  fc.assert(
    fc.property(narrow, (x) => {
      const r: NativeRequest = { kind: x.kind, path: '/f', type: x.type, flags: x.flags, pid: 7, fh: x.fh, owner: x.owner, start: x.start, end: x.toEnd ? Infinity : x.start + x.len };
      const fast = fcntlCall(r);
      return fast !== undefined && fast.op === 'lock';
    }),
    { numRuns: 500 },
  );
  t.pass('taken every time');
});
