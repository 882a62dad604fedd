/**
 * Review of the settlement of owed releases at an engine reset (SharedFile.beginReassert,
 * settleOwed): a release still in flight when the engine loses its data (its step applied, its
 * reply not yet in), and a decision in flight across the reset that carried an owed release.
 * Invariants checked: right after the re-assertions the engine never holds two conflicting locks;
 * a release notice is told once. Real SharedFiles over a MemoryEngine behind the lost-link
 * harness; every wait is for an answer or an engine record, within a budget.
 */
import t from 'tap';
import { F_GETLK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, lk, loseNext, within } from './lost-link.js';
import { held, nodes, resetBoth } from './reset-harness.js';

// p1 (node a) holds [0,10), p2 [20,30). p1 unlocks [0,10): the step applies and its reply is on its way (not owed yet: the
// decision is still waiting for it) when b's q1 takes [0,10) and the engine loses its data. a's
// re-assertion must not put p1's lock back over q1's: the unlock is a release of unknown fate as
// much as an owed one is.
t.test('an unlock in flight (applied, its reply not in yet) when the engine loses its data: its lock is not put back over the one another node took since', async (t) => {
  const { engine, a, b, released } = await nodes(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  a.sf.run(3, lk('p2', 2, F_WRLCK, F_SETLK, 20, 10), a.target);
  t.match(await answered(a, 3, "p2's lock of [20,30)"), { result: 0 }, 'p2 writes [20,30)');
  let right: string[] = [];
  loseNext(a, async () => {
    t.same(await held(engine), ['a held write p2 20-29'], 'the engine: the unlock applied');
    b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
    t.match(await answered(b, 1, "q1's lock of [0,10)"), { result: 0 }, 'q1 writes [0,10)');
    await resetBoth(engine, a, b);
    right = await held(engine);
  });
  a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 2, "p1's unlock of [0,10)"), { result: 0 }, "p1's unlock answered");
  t.same(right, ['a held write p2 20-29', 'b held write q1 0-9'], "right after the re-assertions: p2's lock and q1's, not p1's");
  t.same(await held(engine), ['a held write p2 20-29', 'b held write q1 0-9'], 'once the unlock is answered: the same');
  t.same(released, ['posix:0+10'], "p1's unlock notice, told once");
});

// 'fifo': a's decisions ask the engine which owners wait for which (askReach) when b's waiters are
// in a's copy of the file. p1's unlock is owed (its steps cut off, never applied). a's next step
// (the retry's read of the file) carries it and is stale (b changed the file); decided again, it
// asks the engine, and the engine loses its data meanwhile: the re-assertion settles the owed
// unlock and tells its notice. The decision in flight, on the rebuilt table, must not run that
// unlock again and tell the notice a second time.
t.test("a decision in flight across the reset that carried an owed unlock (fifo): the unlock's notice is told once", async (t) => {
  const { engine, a, b, released } = await nodes(t, 'fifo');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 2, "p2's lock of [40,50)"), { result: 0 }, 'p2 writes [40,50)');
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 20, 10), b.target);
  t.match(await answered(b, 1, "q1's lock of [20,30)"), { result: 0 }, 'q1 writes [20,30)');
  b.sf.run(2, lk('q3', 3, F_WRLCK, F_SETLKW, 20, 10), b.target);
  await answered(b, -2, "q3's waiter queued");
  b.sf.run(3, lk('q4', 4, F_WRLCK, F_SETLKW, 20, 10), b.target);
  await answered(b, -3, "q4's waiter queued");
  // Every step of a is cut off until the trap is armed; then they pass, and the first question
  // to the engine about waiting owners waits for the reset.
  let armed = false;
  a.policy = () => (armed ? 'pass' : 'drop');
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 3, "p1's unlock of [0,10) (given up on: owed)");
  t.same(await held(engine), ['a held write p1 0-9', 'a held write p2 40-49', 'b held write q1 20-29', 'b waiting write q3 20-29', 'b waiting write q4 20-29'], 'the engine: the unlock never applied');
  const fileReach = a.store.fileReach.bind(a.store);
  let resetDone!: () => void;
  const afterReset = new Promise<void>((r) => (resetDone = r));
  let asked = false;
  a.store.fileReach = async (file, pairs) => {
    if (!asked) {
      asked = true;
      await resetBoth(engine, a, b);
      resetDone();
    }
    return fileReach(file, pairs);
  };
  armed = true;
  // p5 asks who holds [40,50) (p2, a's own lock: nothing changes, nothing is free).
  a.sf.run(4, lk('p5', 5, F_WRLCK, F_GETLK, 40, 10), a.target);
  await within(afterReset, BUDGET_MS, 'the reset, during a question of a decision of a');
  t.match(await answered(a, 4, "p5's F_GETLK of [40,50)"), { result: 0, lockStart: 40 }, 'p2 holds [40,50)');
  // Whatever of a's comes next: the file read again, once the re-assertion is answered.
  a.sf.run(5, lk('p6', 6, F_WRLCK, F_GETLK, 40, 10), a.target);
  await answered(a, 5, "p6's F_GETLK of [40,50)");
  t.same(released, ['posix:0+10'], "p1's unlock notice, told once");
  t.notOk((await held(engine)).some((x) => x.startsWith('a held write p1')), 'p1 holds nothing');
});
