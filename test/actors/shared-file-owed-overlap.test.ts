/**
 * An owed POSIX unlock (answered ENOLCK for want of a reply, its step never applied, run in the
 * next step) and a grant, by another node's step, of a waiter of the same owner whose bytes
 * overlap the unlocked ones. The owner was told the unlock
 * first, then the grant: as the kernel would have it, it holds the granted bytes whole. The owed
 * unlock, run in the node's next step on the engine's records (where the grant merged with the
 * owner's older lock), must not take back the part of the grant it overlaps: another owner would
 * then be granted bytes this owner was told it holds. Real SharedFiles over a MemoryEngine, behind
 * the lost-link harness; every wait is for an answer, within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, ENOLCK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, lk, node } from './lost-link.js';

/**
 * q2 (node b) holds [10,20); p1 (node a) holds [0,10) and waits for [5,20) (`type`); p1's unlock
 * of [0,10) is owed; b's unlock grants p1's waiter; a's next step carries the owed unlock. With
 * `lateInbox`, a reads the grant's event only after that step (which learns of the grant from the
 * stale reply's changes instead).
 */
async function owedThenGrant(t: Test, type: number, lateInbox: boolean): Promise<void> {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 }, 'q2 holds [10,20)');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 holds [0,10)');
  a.sf.run(2, lk('p1', 1, type, F_SETLKW, 5, 15), a.target);
  await answered(a, -2, "p1's waiter for [5,20) queued (q2 holds [10,20))");
  // a is cut off: p1's unlock of [0,10) never reaches the engine. Answered ENOLCK (no reply), and
  // owed: a release always runs in the end.
  a.policy = () => 'drop';
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 3, "p1's unlock of [0,10) (given up on: owed)"), { result: -ENOLCK }, "p1's unlock answered before the grant");
  if (lateInbox) a.held = [];
  // b's unlock grants p1's waiter after that answer: p1 is told it holds [5,20).
  b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
  if (!lateInbox) t.match(await answered(a, 2, "p1's F_SETLKW of [5,20)"), { result: 0 }, "granted by b's unlock, after the unlock's answer");
  a.policy = () => 'pass';
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 4, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits, carrying the owed unlock");
  if (lateInbox) {
    a.release();
    t.match(await answered(a, 2, "p1's F_SETLKW of [5,20)"), { result: 0 }, "granted by b's unlock, read late");
  }
  b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 0, 5), b.target);
  t.match(await answered(b, 3, "q3's lock of [0,5)"), { result: 0 }, '[0,5) is free: the owed unlock ran');
  b.sf.run(4, lk('q4', 4, F_WRLCK, F_SETLK, 5, 5), b.target);
  t.match(await answered(b, 4, "q4's write lock of [5,10)"), { result: -EAGAIN }, 'p1 still holds [5,10), which it was granted after the unlock');
  t.same(a.faults, [], 'nothing reported');
}

for (const type of [F_WRLCK, F_RDLCK] as const) {
  const kind = type === F_WRLCK ? 'write' : 'read';
  t.test(`an owed unlock of [0,10), then a grant of the owner's ${kind} waiter for [5,20): the owner keeps [5,20)`, (t) => owedThenGrant(t, type, false));
}

t.test("the same, a's inbox read late: the next step learns of the grant from the engine's changes, and still keeps [5,20)", (t) => owedThenGrant(t, F_WRLCK, true));
