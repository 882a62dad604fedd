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
import { parseRelease } from '../../src/core/requests.js';
import { lateAfterMs } from '../../src/store/options.js';
import type { Renewed, SessionRef } from '../../src/store/types.js';
import { BUDGET_MS, MemoryEngine, answered, endGrace, lk, node, resetEngine, within, type TestNode } from './lost-link.js';
import { held, until } from './reset-harness.js';

class CutEngine extends MemoryEngine {
  readonly cut = new Set<string>();
  override renewSync(s: SessionRef, ttlMs: number, inboxAck: string): Renewed {
    if (this.cut.has(s.node)) throw new Error(`${s.node} is cut off`);
    return super.renewSync(s, ttlMs, inboxAck);
  }
}

async function lateOnEngine(engine: MemoryEngine, name: string): Promise<boolean> {
  const read = await engine.sessions();
  const s = read.sessions.find((x) => x.node === name && x.ttlMs !== undefined);
  return s !== undefined && s.ttlMs !== undefined && s.deadline > read.now && s.ttlMs - (s.deadline - read.now) > lateAfterMs(s.ttlMs);
}

/** As shared-file-ended-edges: p1's (a) waiter for /a ended by an owed close, its edge p1 -> q2 in the engine; a late; q2 (b) parked for it. */
async function stage(t: Test): Promise<{ engine: CutEngine; a: TestNode; b: TestNode }> {
  const engine = new CutEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10, '/a'), b.target);
  t.match(await answered(b, 1, "q2's write of /a [0,10)"), { result: 0 });
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10, '/b'), a.target);
  t.match(await answered(a, 1, "p1's write of /b [0,10)"), { result: 0 });
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10, '/a'), a.target);
  await answered(a, -2, "p1's waiter for /a [0,10) queued");
  a.policy = () => 'drop';
  a.sf.run(3, parseRelease({ path: '/a', fileHandle: 1 }), a.target);
  await answered(a, 3, "p1's handle 1's close of /a (given up on: owed)");
  t.match(a.got.get(2), { result: -EINTR });
  engine.cut.add('a');
  let over = false;
  await within(
    (async () => {
      while (!over && !(await lateOnEngine(engine, 'a'))) await new Promise((r) => setTimeout(r, 20));
    })(),
    BUDGET_MS,
    "a's session late on the engine",
  ).finally(() => (over = true));
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
