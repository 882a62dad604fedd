/**
 * 'fifo' and a request parked for a late session ('overdue'): it has no waiter in the engine while
 * parked, so a later request for the same bytes (of its own node here) queues first and is
 * granted first. Shown as it stands (todo): SharedFiles.parkedAhead lets every later request pass
 * an overdue-parked one by design, so that it holds nothing up. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness; every wait is for an answer, an engine record or a
 * counter, within the harness's budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, lk, within } from './lost-link.js';
import { until } from './reset-harness.js';
import { cutNodes, cutOff, heal, p1CloseOwed, p1WaitsForQ2 } from './overdue-stages.js';

t.test("'fifo': a request parked for a late session is granted before a later request of its node for the same bytes", { todo: 'by design for now: an overdue-parked request keeps no place in the queue' }, async (t) => {
  const { engine, a, b } = await cutNodes(t, 'fifo');
  await p1WaitsForQ2(t, a, b, '');
  await p1CloseOwed(t, a, "p1's close of /a (owed)");
  await cutOff(engine, a);
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await until(() => b.sf.parkedOverdue > 0 || b.got.has(2), "q2's write of /b parked, or answered");
  b.sf.run(3, lk('q5', 5, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -3, "q5's write of /b queued (behind p1's lock)");
  await heal(engine, a);
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  await answered(a, 4, "a's step on /c (its owed close commits with it)");
  await answered(b, -2, "q2's write of /b queued once p1's ended waiter's edge went");
  a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10, '/b'), a.target);
  const first = await within(Promise.race([b.answer(2).then(() => 'q2'), b.answer(3).then(() => 'q5')]), BUDGET_MS, 'the first of q2 and q5 granted');
  t.equal(first, 'q2', 'q2, which asked first, is granted first');
});
