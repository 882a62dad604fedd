/**
 * Cancels of several waiters of one file while node a's engine does not answer: once a step of a
 * got no reply ('unreachable') and none sent after it was answered, each cancel is answered at
 * once (its waiter's removal owed), also one waiting in the file's mailbox behind a decision whose
 * step is still out, and one that comes later. Not one requestTimeoutMs after another, each
 * behind the steps of the cancels before it. Real SharedFiles over a MemoryEngine, behind the
 * lost-link harness; a's requestTimeoutMs is a minute, so a decision that holds the mailbox
 * outlasts the budget of every wait here (each is for an answer or an engine state).
 */
import t from 'tap';
import { EINTR, ERROR_OPERATION_ABORTED, F_SETLK, F_SETLKW, F_WRLCK } from '../../src/core/codes.js';
import type { S } from './lost-link.js';
import { answered, lf, lk, lw, uf } from './lost-link.js';
import { conflicts, engineIs, held, until } from './reset-harness.js';
import { twoNodes } from './stages.js';

const MINUTE = 60_000;

/** A gate: a promise and what opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

t.test("Windows waiters of one file, cancelled while a's steps get no reply: each answered at once, the removals owed, carried once a reaches the engine", async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'default', MINUTE);
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0, 'b holds [0,10)');
  // a's handles 7..10 wait for [0,10) (a's requests 1..4).
  for (let i = 1; i <= 4; i++) {
    a.sf.run(i, lw(6 + i, 0, 10), a.target);
    await answered(a, -i, `a's handle ${6 + i} waits for [0,10)`);
  }
  const told = new Map<number, unknown[]>();
  const answer = a.target.answer.bind(a.target);
  a.target.answer = (i, path, res, waitedMs, flockDrop, getlk) => {
    told.set(i, [...(told.get(i) ?? []), res]);
    answer(i, path, res, waitedMs, flockDrop, getlk);
  };
  // a is cut off: its first step's reply is held back until `first` opens (the step out), every
  // later one until `heal` (the first cancel's decision resending its step: it holds the mailbox).
  const first = gate();
  const heal = gate();
  let dropped = 0;
  a.policy = () => 'drop';
  a.afterDrop = async (_s: S) => {
    dropped++;
    await (dropped === 1 ? first.wait : heal.wait);
  };
  const sent = a.log.length;
  a.sf.cancel(1, 'abort');
  a.sf.cancel(2, 'abort');
  a.sf.cancel(3, 'abort');
  // The first cancel's step is out, with no reply yet: the engine may still answer, so nothing is answered early.
  first.open();
  // Its reply: none ('unreachable'). The first cancel is answered (its own step got no reply), and
  // the two behind it in the mailbox too, while the first cancel's decision still sends its step
  // again (held back: it holds the mailbox for up to a minute).
  for (const id of [1, 2, 3]) t.equal(await answered(a, id, `the abort of a's request ${id}, while a's first cancel still resends`), ERROR_OPERATION_ABORTED, `request ${id}: answered with its abort code`);
  await until(() => dropped >= 2, "the first cancel's step, sent again (held back: its decision holds the mailbox)");
  // A cancel that comes now: answered at once, no step of its own sent to learn that.
  a.sf.cancel(4, 'abort');
  t.equal(await answered(a, 4, "the abort of a's request 4"), ERROR_OPERATION_ABORTED, 'a later cancel: answered at once');
  t.equal(a.log.length, sent, 'no step of a reached the engine since it was cut off');
  t.equal((await held(engine)).filter((l) => l.startsWith('a waiting')).length, 4, "the engine still holds a's four waiters (their removal owed)");
  // a reaches the engine again: the owed removals are carried (by the resent step, then the owed step).
  a.policy = () => 'pass';
  heal.open();
  await engineIs(engine, ['b held write 1 0-9'], "a's waiters removed once a reaches the engine");
  // b's unlock grants none of a's handles; b's handle 2 gets [0,10).
  b.sf.run(2, uf(1, 0, 10), b.target);
  t.equal(await answered(b, 2, "b's unlock"), 0, "b's unlock");
  b.sf.run(3, lf(2, 0, 10), b.target);
  t.equal(await answered(b, 3, "b's handle 2 locks [0,10)"), 0, "[0,10) is free: no handle of a holds it");
  t.same(conflicts(await held(engine)), [], 'no two conflicting locks');
  for (const id of [1, 2, 3, 4]) t.same(told.get(id), [ERROR_OPERATION_ABORTED], `request ${id}: told once, never granted`);
  t.same(a.faults, [], 'nothing reported (a)');
  t.same(b.faults, [], 'nothing reported (b)');
});

t.test("POSIX: an owner's second waiter on the file keeps the old rule: its cancel is not answered while a's steps get no reply, and is once a reaches the engine", async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'default', MINUTE);
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [0,10)"), { result: 0 }, 'q2 holds [0,10)');
  // p1 waits for [0,5) and [5,10) (a's requests 1 and 2: two threads of one owner); p3 for [0,10) (request 3).
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 5), a.target);
  await answered(a, -1, "p1's waiter for [0,5)");
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 5), a.target);
  await answered(a, -2, "p1's waiter for [5,10)");
  a.sf.run(3, lk('p3', 3, F_WRLCK, F_SETLKW, 0, 10), a.target);
  await answered(a, -3, "p3's waiter for [0,10)");
  const heal = gate();
  let dropped = 0;
  a.policy = () => 'drop';
  a.afterDrop = async () => {
    if (++dropped > 1) await heal.wait;
  };
  // p3's cancel: its step gets no reply, and it is answered (its own step, as before).
  a.sf.cancel(3, 'abort');
  t.match(await answered(a, 3, "the abort of p3's waiter"), { result: -EINTR }, "p3's waiter: -EINTR at once");
  // p1's: the engine known not to answer, but p1 has another waiter here: not answered early (an
  // answer at once would be given within the call).
  a.sf.cancel(1, 'abort');
  t.equal(a.got.has(1), false, "p1's first waiter: not answered at once while a is cut off");
  // Its turn comes once the decision ahead ends: a heals.
  a.policy = () => 'pass';
  heal.open();
  t.match(await answered(a, 1, "the abort of p1's first waiter, once a reaches the engine"), { result: -EINTR }, "p1's first waiter: -EINTR once its removal commits");
  await engineIs(engine, ['a waiting write p1 5-9', 'b held write q2 0-9'], "p1's second waiter stays; the others removed");
  t.same(a.faults, [], 'nothing reported (a)');
});
