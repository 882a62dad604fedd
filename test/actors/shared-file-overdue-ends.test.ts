/**
 * A waiter whose deadlock check is put off for a late session ('overdue', SharedFile.deferred)
 * ends every way a waiter does, and costs one step a second while its check is put off: its
 * node's stop() ends it and leaves no check pass behind, each check is one COMMIT, and an engine
 * reset meanwhile puts it back (never EDEADLK from edges the engine lost). Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness, node a cut off (its steps and renewals); every wait
 * is for an answer, an engine record or a step's reply, within the harness's budget.
 */
import t, { type Test } from 'tap';
import { EDEADLK, EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { cancelResult } from '../../src/core/lock-table.js';
import { answered, lk, resetEngine } from './lost-link.js';
import { graceOver, held, until } from './reset-harness.js';
import { cutNodes, cutOff, p1CloseOwed, p1WaitsForQ2, type Nodes } from './overdue-stages.js';

/** As shared-file-ended-edges: p1's (a) waiter for /a ended by an owed close, its edge p1 -> q2 in the engine; a late; q2 (b) queued, its check put off. */
async function stage(t: Test, resetGraceMs = 0): Promise<Nodes> {
  const { engine, a, b } = await cutNodes(t, 'default', resetGraceMs);
  await p1WaitsForQ2(t, a, b);
  await p1CloseOwed(t, a);
  await cutOff(engine, a);
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -2, "q2's write of /b queued, its check put off for a's late session");
  t.notOk(b.got.has(2), 'q2 is unanswered');
  return { engine, a, b };
}

t.test("stop() ends a waiter whose check is put off, and leaves no check pass to run", async (t) => {
  const { engine, b } = await stage(t);
  await b.sf.stop();
  t.match(await answered(b, 2, "q2's write of /b, ended by the stop"), { result: cancelResult('stop', false) });
  t.equal((b.sf as unknown as { checkTimers: Map<string, unknown> }).checkTimers.size, 0, 'no check pass left pending');
  t.same(await held(engine, '/b'), ['a held write p1 0-9'], 'q2 left nothing on /b');
});

t.test('a waiter whose check is put off is checked again with one step each time, at least every second', async (t) => {
  const { b } = await stage(t);
  const steps: string[] = [];
  let checks = 0;
  b.onReply = (r, step) => {
    steps.push(`${step.file} ${JSON.stringify(step.edges?.map((e) => e.check))} -> ${r.ok ? 'ok' : r.reason}`);
    if (step.file === '/b' && (step.edges ?? []).some((e) => e.check === true) && !r.ok && r.reason === 'overdue') checks++;
  };
  await until(() => checks >= 2 || b.got.has(2), "two checks of q2's edges, each put off again");
  t.notOk(b.got.has(2), 'q2 still waits');
  t.equal(steps.length, checks, `one step per check (${steps.join('; ')})`);
  b.sf.cancel(2, 'abort');
  t.match(await answered(b, 2, "q2's write of /b, aborted"), { result: -EINTR });
});

t.test('an engine reset while a waiter\'s check is put off: put back under the new session, never EDEADLK from the edges it lost', async (t) => {
  // The incarnation after the reset starts with a grace period: q2's waiter goes back in it.
  const { engine, b } = await stage(t, 60_000);
  const { old, epoch } = await resetEngine(engine, b);
  b.lease[1] = epoch;
  b.sf.adopt(epoch, old, 60_000);
  // Behind b's re-assertion of /b in its mailbox: an unlock of bytes nobody holds.
  b.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/b'), b.target);
  t.match(await answered(b, 3, "b's unlock of nothing on /b, after the re-assertion"), { result: 0 });
  t.notOk(b.got.has(2), `q2 still waits (the grace period of the new incarnation): ${String((b.got.get(2) as { result?: number } | undefined)?.result)}`);
  await graceOver(engine, '/b', b);
  // p1's lock and its ended waiter's edge went with the engine's data, and a (cut off) put nothing back.
  t.match(await answered(b, 2, "q2's write of /b [0,10), after the grace period"), { result: 0 }, `granted, never EDEADLK (-${EDEADLK})`);
  t.same(b.faults, [], 'nothing reported by b');
});
