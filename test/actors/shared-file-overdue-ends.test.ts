/**
 * A request parked for a late session ('overdue', SharedFiles.park) ends every way a waiting
 * request does, and costs one step a second while it waits: its node's stop() answers it, an
 * engine reset while it waits decides it again under the new session (never EDEADLK from edges
 * the engine lost), and each of its rechecks is one COMMIT. Real SharedFiles over a MemoryEngine,
 * behind the lost-link harness, node a cut off (its steps and renewals); every wait is for an
 * answer, an engine record or a counter, within the harness's budget.
 */
import t, { type Test } from 'tap';
import { EDEADLK, EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { cancelResult } from '../../src/core/lock-table.js';
import { BUDGET_MS, answered, endGrace, lk, resetEngine, within } from './lost-link.js';
import { held, until } from './reset-harness.js';
import { cutNodes, cutOff, p1CloseOwed, p1WaitsForQ2, type Nodes } from './overdue-stages.js';

/** As shared-file-ended-edges: p1's (a) waiter for /a ended by an owed close, its edge p1 -> q2 in the engine; a late; q2 (b) parked for it. */
async function stage(t: Test): Promise<Nodes> {
  const { engine, a, b } = await cutNodes(t);
  await p1WaitsForQ2(t, a, b);
  await p1CloseOwed(t, a);
  await cutOff(engine, a);
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await until(() => b.sf.parkedOverdue > 0 || b.got.has(2), "q2's write of /b parked for a's late session, or answered");
  t.notOk(b.got.has(2), 'q2 is parked, unanswered');
  return { engine, a, b };
}

t.test("stop() answers a request parked for a late session, and leaves no recheck to run", async (t) => {
  const { engine, b } = await stage(t);
  await b.sf.stop();
  t.match(await answered(b, 2, "q2's write of /b, ended by the stop"), { result: cancelResult('stop', false) });
  // Its recheck's timer went with it: nothing parked is left to run again.
  t.equal((b.sf as unknown as { parked: Map<string, unknown> }).parked.size, 0, 'no parked request, no recheck timer, left');
  t.same(await held(engine, '/b'), ['a held write p1 0-9'], 'q2 left nothing on /b');
  t.notOk(b.answers.has(-2), 'q2 never queued');
});

t.test('a request parked for a late session asks again with one step each time, at least every second', async (t) => {
  const { b } = await stage(t);
  const parks = b.sf.parkedOverdue;
  const steps = b.log.length;
  await until(() => b.sf.parkedOverdue >= parks + 2 || b.got.has(2), 'two rechecks of q2, parked again each time');
  t.notOk(b.got.has(2), 'still parked');
  t.equal(b.log.length - steps, b.sf.parkedOverdue - parks, `one step per recheck (${b.log.slice(steps).join('; ')})`);
  b.sf.cancel(2, 'abort');
  t.match(await answered(b, 2, "q2's write of /b, aborted"), { result: -EINTR });
});

t.test('an engine reset while a request is parked for a late session: decided again under the new session, never EDEADLK from the edges it lost', async (t) => {
  const { engine, b } = await stage(t);
  const { old, epoch } = await resetEngine(engine, b);
  b.lease[1] = epoch;
  b.sf.adopt(epoch, old, 60_000);
  // Behind b's re-assertion of /b in its mailbox: an unlock of bytes nobody holds.
  b.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/b'), b.target);
  t.match(await answered(b, 3, "b's unlock of nothing on /b, after the re-assertion"), { result: 0 });
  t.notOk(b.got.has(2), 'q2 still waits (the grace period of the new incarnation)');
  await endGrace(engine, b);
  const got = await within(Promise.race([b.answer(-2).then(() => 'queued'), b.answer(2).then((v) => (v as { result: number }).result)]), BUDGET_MS, "q2's write of /b: queued or answered");
  t.not(got, -EDEADLK, `q2 is not refused EDEADLK (${String(got)})`);
  t.same(b.faults, [], 'nothing reported by b');
});
