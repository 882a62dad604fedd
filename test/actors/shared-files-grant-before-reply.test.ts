/**
 * A grant's inbox event read before the reply of the waiter's own step (the reply on its way: the
 * event's file has no record of the waiter yet): the waiter is told granted at its turn in the
 * file's mailbox, behind that step, and the cache must then show the lock as held. Else the
 * owner's unlock is decided on a cache that shows it waiting: its step finds the file changed
 * (stale: the grant), takes the grant for one that came while it was in flight (spared), and
 * releases nothing: answered 0, the lock stays in the engine and the other node's next waiter is
 * never granted (bench:cluster row 2's lost wake-up). Real SharedFiles over a MemoryEngine, behind
 * the lost-link harness; every wait is for an answer, an applied step or an inbox event, within
 * the harness's budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, holdNextReply, lk } from './lost-link.js';
import { held, nodes, until } from './reset-harness.js';

t.test("a waiter granted by another node, the grant's event read before its own step's reply: the owner's unlock then releases the lock", async (t) => {
  const { engine, a, b } = await nodes(t, 'default');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 holds [0,10)');

  // b's next step's reply is held back once it applied (the reply on its way).
  const { applied, letReply } = holdNextReply(b);
  b.held = [];
  b.sf.run(2, lk('q1', 2, F_WRLCK, F_SETLKW, 0, 10), b.target);
  await applied;
  t.equal((await held(engine)).filter((r) => r.startsWith('b waiting')).length, 1, "q1's waiter is in the engine");

  // a's unlock grants q1's waiter; its event reaches b's actor before b's step's reply does.
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 3, "p1's unlock of [0,10)"), { result: 0 }, "p1's unlock applied");
  await until(() => (b.held?.length ?? 0) > 0, "the grant's event in b's inbox");
  b.release();
  letReply();
  t.match(await answered(b, 2, "q1's wait for [0,10)"), { result: 0 }, 'q1 is told granted');

  // q1 unlocks: the engine must hold nothing of q1 after, and p1 can lock again at once.
  b.sf.run(4, lk('q1', 2, F_UNLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 4, "q1's unlock of [0,10)"), { result: 0 }, "q1's unlock answered");
  t.same(await held(engine), [], 'the engine holds nothing after q1 unlocked');
  a.sf.run(5, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 5, "p1's lock of [0,10) again"), { result: 0 }, 'p1 gets [0,10) again');
});
