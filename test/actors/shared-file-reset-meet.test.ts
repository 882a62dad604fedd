/**
 * At an engine reset, a lock request's step of unknown fate (Unsure, not shown applied) is judged
 * once the owed releases are settled (meetOfUnknown after settleOwed). Invariant checked: right
 * after the nodes' re-assertions the engine holds no two conflicting locks, and a lock another
 * node granted is not taken by a step that never applied. Real SharedFiles over a MemoryEngine
 * behind the lost-link harness; every wait is for an answer or an engine record, within a budget.
 */
import t from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseFlush } from '../../src/core/requests.js';
import { answered, lk, loseNext, uf } from './lost-link.js';
import { held, nodes, resetBoth } from './reset-harness.js';

// p1 (node a) writes [0,10) and downgrades it to a read lock: the step applies, its reply is lost
// (the request answered as failed, the step Unsure). p1 then unlocks [0,5): cut off, owed. b's q1
// reads [5,10) (the engine has p1's read lock there). The engine loses its data. p1 holds, either
// way, a read lock of [5,10) at most (the downgrade applied) or a write lock (it did not): what
// goes back must be compatible with q1's read lock, as the engine may have held that.
t.test("a downgrade of unknown fate, then a partial unlock owed of the same owner: the unlock's remainder is judged as the lock it came from", async (t) => {
  const { engine, a, b } = await nodes(t, 'default', null);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  loseNext(a, async () => {
    a.policy = () => 'drop';
  });
  a.sf.run(2, lk('p1', 1, F_RDLCK, F_SETLK, 0, 10), a.target);
  t.notMatch(await answered(a, 2, "p1's downgrade of [0,10) (given up on)"), { result: 0 }, 'the downgrade answered as failed');
  t.same(await held(engine), ['a held read p1 0-9'], 'the engine: the downgrade applied');
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 5), a.target);
  await answered(a, 3, "p1's unlock of [0,5) (given up on: owed)");
  b.sf.run(1, lk('q1', 1, F_RDLCK, F_SETLK, 5, 5), b.target);
  t.match(await answered(b, 1, "q1's read lock of [5,10)"), { result: 0 }, 'q1 reads [5,10)');
  // a may have nothing to put back: its next step, which waits for its re-assertion, if any.
  await resetBoth(engine, a, b, false, true);
  a.policy = () => 'pass';
  a.sf.run(4, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 4, "handle 99's unlock of nothing, after the re-assertion"), 158);
  const after = await held(engine);
  t.notOk(after.includes('a held write p1 5-9'), `after the re-assertions, no write lock of p1 over q1's read lock: ${JSON.stringify(after)}`);
  t.match(a.faults, [/may hold less than it was told/], 'the downgrade of unknown fate reported');
});

// q2 (node b) writes [10,20); p1 (node a) writes [0,10) and waits for [5,15). Every step of a is
// cut off: p1's unlock of [0,10) is owed. b's unlock grants p1's waiter (the cache stands in for
// the grant). p1's downgrade of [5,15), decided on the stand-in (its step carries the owed unlock,
// and is stale at the engine whatever becomes of it), is cut off too: Unsure. At the reset the
// downgrade never applied: p1 keeps its write lock of [5,15), the grant, and nothing is reported.
t.test('a lock step of unknown fate that took the stand-in of a grant spared by an owed unlock: not judged', async (t) => {
  const { engine, a, b } = await nodes(t, 'default', null);
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 }, 'q2 writes [10,20)');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 10), a.target);
  await answered(a, -2, "p1's waiter for [5,15) queued");
  a.policy = () => 'drop';
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 3, "p1's unlock of [0,10) (given up on: owed)");
  b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
  t.match(await answered(a, 2, "p1's F_SETLKW of [5,15)"), { result: 0 }, "p1's waiter granted by b's unlock");
  a.sf.run(4, lk('p1', 1, F_RDLCK, F_SETLK, 5, 10), a.target);
  t.notMatch(await answered(a, 4, "p1's downgrade of [5,15) (given up on)"), { result: 0 }, 'the downgrade answered as failed');
  t.same(await held(engine), ['a held write p1 0-14'], 'the engine: the grant, merged with the lock the unlock never released');
  await resetBoth(engine, a, b, true);
  t.same(await held(engine), ['a held write p1 5-14'], "right after a's re-assertion: p1's write lock of [5,15), the grant");
  t.same(a.faults, [], 'nothing reported');
});

// As shared-file-reset-owed's "an unlock owed ... then another node granted its owner's waiter",
// with a flush (a close of another descriptor of p1's: all of p1's POSIX locks go, its waiter
// keeps waiting) instead of the unlock. The flush was answered before the grant, and no step of
// a carrying it was decided on records that had the grant: p1 holds [5,15) after the reset, as
// the engine held it either way, or at the least the fault says it may hold less than it was told.
t.test("a flush owed when the engine loses its data, then another node granted its owner's waiter: the grant's bytes go back", async (t) => {
  const { engine, a, b } = await nodes(t, 'default', null);
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 }, 'q2 writes [10,20)');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 10), a.target);
  await answered(a, -2, "p1's waiter for [5,15) queued");
  a.policy = () => 'drop';
  a.sf.run(3, parseFlush({ path: '/a', lockOwner: 'p1' }), a.target);
  await answered(a, 3, "p1's flush (given up on: owed)");
  b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
  t.match(await answered(a, 2, "p1's F_SETLKW of [5,15)"), { result: 0 }, "p1's waiter granted by b's unlock");
  t.same(await held(engine), ['a held write p1 0-14'], 'the engine: the grant, merged with the lock the flush never released');
  // Neither node may have anything to put back: a's next step waits for its re-assertion, if any.
  await resetBoth(engine, a, b, true, true);
  a.policy = () => 'pass';
  a.sf.run(4, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 4, "handle 99's unlock of nothing, after the re-assertion"), 158);
  const after = await held(engine);
  t.ok(after.includes('a held write p1 5-14') || a.faults.some((f) => /may hold less than it was told/.test(f)), `p1 keeps the grant, or the fault says it may not: ${JSON.stringify(after)} ${JSON.stringify(a.faults)}`);
});
