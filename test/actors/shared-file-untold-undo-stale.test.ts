/**
 * The lock an undo puts back with its grant marks (SharedFile.build: Unsure.marks) is one of the
 * table's marked locks (markedLocks) only while the table has it: when the decision that puts it
 * back replaces it at once (the owner's own request changes it), its marks must not outlive it,
 * else a later decision of this node (no rebuild in between: the decided table stays the
 * file's) takes them for marks of a lock it merges there (carried), and a flush's notice leaves
 * out bytes its owner was told it holds. twoGrants (notice-stages.ts): p1 holds [5,15), one lock,
 * the bytes [5,10) of a grant never told, [10,15) of one told. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness; every wait is for an answer, a step or an engine
 * record, within the harness's budget.
 */
import t from 'tap';
import { ENOLCK, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered } from './lost-link.js';
import { held } from './reset-harness.js';
import { dropAfter, endedOnce, faults, flush, lines, lkFh, locks, replyLost, twoGrants } from './notice-stages.js';

// p1 locks [15,20) (merged with its lock); the step applies, its reply is lost, the request is
// answered as failed. p1's unlock of [5,10) is a's next step: the stale reply shows the lock
// request's step applied, and the decision undoes it (puts [5,15) back, marked) and unlocks
// [5,10) of what it put back at once: [10,15) is left. Then p1 locks [5,10) itself (told), and
// [15,20), each merged with what it holds, in steps of a's with no rebuild in between: all of
// [5,20) is p1's, told.
t.test("a lock put back by an undo and replaced in that same decision: its marks go with it, and the owner's later locks there are told", async (t) => {
  const { engine, a, released, to1 } = await twoGrants(t);
  const { at, got } = await replyLost(a, 8, lkFh(2, F_WRLCK, F_SETLK, 15, 5), "p1's lock of [15,20) (its reply lost: answered as failed)", dropAfter(a));
  t.match(got, { result: -ENOLCK }, 'answered as failed: the generic code');
  t.same(await held(engine), ['a held write p1 5-19'], 'the lock request applied');
  a.policy = () => 'pass';
  a.sf.run(9, lkFh(2, F_UNLCK, F_SETLK, 5, 5), a.target);
  t.match(await answered(a, 9, "p1's unlock of [5,10) (a's next step: the undo with it)"), { result: 0 });
  lines(t, a.log.slice(at + 1), [/ -> stale missed$/, /^pass \{"put":\["[^"]+"\],"remove":\["[^"]+"\]\} -> ok$/], "a's next step: a stale reply naming the lock request's step, then the undo and the unlock in one step");
  t.same(await held(engine), ['a held write p1 10-14'], 'the lock request undone, and [5,10) unlocked');
  await locks(t, a, 10, lkFh(2, F_WRLCK, F_SETLK, 5, 5), "p1's lock of [5,10)");
  await locks(t, a, 11, lkFh(2, F_WRLCK, F_SETLK, 15, 5), "p1's lock of [15,20)");
  t.same(await held(engine), ['a held write p1 5-19'], 'one lock of p1');
  a.sf.run(12, flush, a.target);
  await answered(a, 12, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:5+5', 'posix:5+15'], "the unlock's notice, then the flush's for all of p1's lock: the caller locked or was granted each byte of it");
  faults(t, a, [/had applied after all; undone$/], 'the lock request found applied and undone: reported');
});
