/**
 * 'overdue' named for a waiter put back after an engine loss, whose edges are checked whole
 * (SharedFile.recheck) until a step after the grace period: the request whose step carries them
 * goes on (q5 queues at once), the waiter is not ended EDEADLK by a cycle that runs only through
 * the edge of a late node's waiter that node already ended (its close owed, cut off), and its
 * check is put off (SharedFile.deferred) until that node renewed (EDEADLK if the cycle is true).
 * Real SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is for an answer,
 * an engine record or a step's reply, within the harness's budget.
 */
import t from 'tap';
import { EDEADLK, F_SETLKW, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, lk, until, within } from './lost-link.js';
import { held } from './reset-harness.js';
import { checkDone, cutOff, heal, lateIs, lateOnEngine, p1CloseOwed, p1Waits, putBack } from './overdue-stages.js';

t.test(
  "a waiter put back after an engine loss is not ended EDEADLK by a cycle only through a late node's edge of a waiter that node already ended: the request whose step checks it goes on",
  async (t) => {
    // q2 -> p1, put back after the engine lost everything (putBack: q2's edges to be checked whole).
    const { engine, a, b } = await putBack(t);
    t.same(await held(engine, '/a'), ['b held write q2 0-9'], "/a: q2's lock put back");
    t.same(await held(engine, '/b'), ['a held write p1 0-9', 'b waiting write q2 0-9'], "/b: p1's lock and q2's waiter put back");
    // p1 waits for q2's /a lock (p1 -> q2): q2's edges are not written again yet, no cycle.
    await p1Waits(a, "p1's waiter for /a queued (under the new session)");
    // a is cut off: p1's handle's close of /a is owed, its waiter answered; a goes late.
    await p1CloseOwed(t, a, "p1's close of /a (owed)", "p1's waiter ended with the close");
    await cutOff(engine, a);
    // b's next step on /b (q5 queues behind p1) writes q2's edges whole, checked: q2 -> p1 -> q2 only through p1's ended waiter's edge.
    b.sf.run(5, lk('q5', 5, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
    await answered(b, -5, "q5's waiter for /b queued at once (q2's check put off)");
    t.ok(await lateOnEngine(engine, 'a'), 'a is still late then');
    t.same((await held(engine, '/a')).filter((l) => l.includes('p1')), ['a waiting write p1 0-9'], "the engine still has p1's ended waiter");
    t.notOk(b.got.has(2), `q2's waiter for /b is not ended (${String((b.got.get(2) as { result?: number } | undefined)?.result)}, EDEADLK = -${EDEADLK})`);
    // a heals: its owed close commits with its next step, p1's edge goes. b's check is watched
    // from before: the first one after that is not put off again.
    const checked = checkDone(b, '/b');
    await heal(engine, a, "a's session renewed on the engine");
    // Its renewal cuts the owed close's wait short (SharedFiles.watchRenewal): the step removing p1's waiter.
    await until(async () => (await held(engine, '/a')).every((l) => !l.includes('p1')), BUDGET_MS, "the owed close's step removing p1's ended waiter");
    t.match(await within(checked, BUDGET_MS, "b's check of q2's edges on /b, done"), { ok: true }, 'no cycle once p1 went');
    t.notOk(b.got.has(2), 'q2 still waits');
    t.same(b.faults, [], 'nothing reported by b');
  },
);

t.test('the same check through a late node whose waiter is true ends the waiter put back EDEADLK once that node renewed', async (t) => {
  const { engine, a, b } = await putBack(t);
  // p1 waits for q2's /a lock, for good: q2 -> p1 -> q2 is a true cycle, not found yet (q2's edges are not written again).
  await p1Waits(a, "p1's waiter for /a queued (under the new session)");
  // a's renewals are cut off, its steps still pass.
  engine.cut.add('a');
  await lateIs(engine, 'a', true);
  b.sf.run(5, lk('q5', 5, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -5, "q5's waiter for /b queued at once (q2's check put off)");
  t.notOk(b.got.has(2), 'q2 waits while a is late');
  engine.cut.delete('a');
  a.store.nudge();
  await lateIs(engine, 'a', false);
  t.match(await answered(b, 2, "q2's waiter for /b"), { result: -EDEADLK }, 'q2 -> p1 -> q2 is true: EDEADLK once a renewed');
  t.same(b.faults, [], 'nothing reported by b');
});
