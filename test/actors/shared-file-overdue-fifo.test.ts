/**
 * 'fifo' and a request whose waiter closes a cycle only through a late session's edge
 * ('overdue'): it queues at once with its edges unchecked (its check put off, SharedFile.deferred),
 * so it keeps its place: a later request for the same bytes (of its own node here) queues behind
 * it and is granted after it. Real SharedFiles over a MemoryEngine, behind the lost-link harness;
 * every wait is for an answer, an engine record or a step's reply, within the harness's budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, lk, within } from './lost-link.js';
import { held } from './reset-harness.js';
import { checkDone, cutNodes, cutOff, heal, p1CloseOwed, p1WaitsForQ2 } from './overdue-stages.js';

t.test("'fifo': a request whose check is put off for a late session is granted before a later request of its node for the same bytes", async (t) => {
  const { engine, a, b } = await cutNodes(t, 'fifo');
  await p1WaitsForQ2(t, a, b, '');
  await p1CloseOwed(t, a, "p1's close of /a (owed)");
  await cutOff(engine, a);
  // q2 -> p1 -> q2 only through p1's ended waiter's edge: q2 queues, its check put off.
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -2, "q2's write of /b queued, its check put off");
  b.sf.run(3, lk('q5', 5, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -3, "q5's write of /b queued (behind p1's lock and q2)");
  t.same(await held(engine, '/b'), ['a held write p1 0-9', 'b waiting write q2 0-9', 'b waiting write q5 0-9'], '/b: p1, then q2 and q5 in their order');
  const checked = checkDone(b, '/b');
  await heal(engine, a);
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  await answered(a, 4, "a's step on /c (its owed close commits with it)");
  t.match(await within(checked, BUDGET_MS, "b's check of q2's edges on /b, done"), { ok: true }, 'no cycle once p1 went');
  a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10, '/b'), a.target);
  const first = await within(Promise.race([b.answer(2).then(() => 'q2'), b.answer(3).then(() => 'q5')]), BUDGET_MS, 'the first of q2 and q5 granted');
  t.equal(first, 'q2', 'q2, which asked first, is granted first');
  t.match(b.got.get(2), { result: 0 }, 'q2 granted');
});
