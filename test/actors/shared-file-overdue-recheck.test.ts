/**
 * 'overdue' named for a waiter put back after an engine loss, whose edges are checked whole
 * (SharedFile.recheck) until a step after the grace period: a request whose step carries them
 * waits (Parked, as for its own waiter), and the waiter is not ended EDEADLK by a cycle that runs
 * only through the edge of a late node's waiter that node already ended (its close owed, cut off).
 * A decision that cannot wait (a release) still counts such a cycle as found: not shown here. Real SharedFiles over a MemoryEngine, behind
 * the lost-link harness; every wait is for an answer, an engine record or a counter, within the
 * harness's budget.
 */
import t from 'tap';
import { EDEADLK, EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseRelease } from '../../src/core/requests.js';
import { lateAfterMs } from '../../src/store/options.js';
import type { Renewed, SessionRef } from '../../src/store/types.js';
import { BUDGET_MS, MemoryEngine, answered, lk, memoryStore, node, within } from './lost-link.js';
import { held, resetBoth, until } from './reset-harness.js';

class CutEngine extends MemoryEngine {
  readonly cut = new Set<string>();
  override renewSync(s: SessionRef, ttlMs: number, inboxAck: string): Renewed {
    if (this.cut.has(s.node)) throw new Error(`${s.node} is cut off`);
    return super.renewSync(s, ttlMs, inboxAck);
  }
}

async function lateIs(engine: MemoryEngine, name: string, late: boolean): Promise<void> {
  let over = false;
  const check = async () => {
    const read = await engine.sessions();
    const s = read.sessions.find((x) => x.node === name && x.ttlMs !== undefined);
    return s !== undefined && s.ttlMs !== undefined && s.deadline > read.now && s.ttlMs - (s.deadline - read.now) > lateAfterMs(s.ttlMs);
  };
  await within(
    (async () => {
      while (!over && (await check()) !== late) await new Promise((r) => setTimeout(r, 20));
    })(),
    BUDGET_MS,
    `${name}'s session ${late ? 'late' : 'renewed'} on the engine`,
  ).finally(() => (over = true));
}

t.test(
  "a waiter put back after an engine loss is not ended EDEADLK by a cycle only through a late node's edge of a waiter that node already ended: the request whose step checks it waits",
  async (t) => {
    const engine = new CutEngine();
    // The engine's first session starts its incarnation with no grace period; a's and b's own
    // (60 s) is for the incarnation after the reset: q2's edges stay to be checked whole through it.
    const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
    const a = await node(engine, 'a', 'default', 300, 60_000);
    const b = await node(engine, 'b', 'default', 300, 60_000);
    await first.close();
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10, '/a'), b.target);
    t.match(await answered(b, 1, "q2's write of /a"), { result: 0 });
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10, '/b'), a.target);
    t.match(await answered(a, 1, "p1's write of /b"), { result: 0 });
    // q2 waits for p1's /b lock (q2 -> p1).
    b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
    await answered(b, -2, "q2's waiter for /b queued");
    // The engine loses everything: both put their records back; q2's waiter goes back without edges (recheck).
    await resetBoth(engine, a, b);
    // Behind the re-assertions in the files' mailboxes: unlocks of bytes nobody holds (none by b on
    // /b: q2's waiter is there without edges until b's next step on /b writes them, checked).
    b.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/a'), b.target);
    t.match(await answered(b, 3, "b's unlock of nothing on /a, after the re-assertion"), { result: 0 });
    a.sf.run(9, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/b'), a.target);
    t.match(await answered(a, 9, "a's unlock of nothing on /b, after the re-assertion"), { result: 0 });
    t.same(await held(engine, '/a'), ['b held write q2 0-9'], "/a: q2's lock put back");
    t.same(await held(engine, '/b'), ['a held write p1 0-9', 'b waiting write q2 0-9'], "/b: p1's lock and q2's waiter put back");
    // p1 waits for q2's /a lock (p1 -> q2): q2's edges are not written again yet, no cycle.
    a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10, '/a'), a.target);
    await answered(a, -2, "p1's waiter for /a queued (under the new session)");
    // a is cut off: p1's handle's close of /a is owed, its waiter answered; a goes late.
    a.policy = () => 'drop';
    a.sf.run(3, parseRelease({ path: '/a', fileHandle: 1 }), a.target);
    await answered(a, 3, "p1's close of /a (owed)");
    t.match(a.got.get(2), { result: -EINTR }, "p1's waiter ended with the close");
    engine.cut.add('a');
    await lateIs(engine, 'a', true);
    // b's next step on /b (q5 queues behind p1) writes q2's edges whole, checked: q2 -> p1 -> q2 only through p1's ended waiter's edge.
    b.sf.run(5, lk('q5', 5, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
    await until(() => b.sf.parkedOverdue > 0 || b.got.has(2) || b.got.has(5), "q5's request on /b parked for a's late session, or answered, or q2's waiter ended");
    t.same((await held(engine, '/a')).filter((l) => l.includes('p1')), ['a waiting write p1 0-9'], "the engine still has p1's ended waiter");
    t.notOk(b.got.has(2), `q2's waiter for /b is not ended (${String((b.got.get(2) as { result?: number } | undefined)?.result)}, EDEADLK = -${EDEADLK})`);
    // a heals: its owed close commits with its next step, p1's edge goes; q5 queues, q2 waits on.
    engine.cut.delete('a');
    a.policy = () => 'pass';
    a.store.nudge();
    await lateIs(engine, 'a', false);
    // Its renewal cuts the owed close's wait short (SharedFiles.watchRenewal): the step removing p1's waiter.
    await within(
      (async () => {
        while ((await held(engine, '/a')).some((l) => l.includes('p1'))) await new Promise((r) => setTimeout(r, 10));
      })(),
      BUDGET_MS,
      "the owed close's step removing p1's ended waiter",
    );
    t.equal(await within(Promise.race([b.answer(-5).then(() => 'queued'), b.answer(5).then(() => 'answered'), b.answer(2).then(() => 'q2 ended')]), BUDGET_MS, "q5 queued, or answered, or q2 ended"), 'queued', 'q5 queues behind p1 once it asked again');
    t.notOk(b.got.has(2), 'q2 still waits');
    t.same(b.faults, [], 'nothing reported by b');
  },
);

t.test('the same check through a late node whose waiter is true ends the waiter put back EDEADLK once that node renewed', async (t) => {
  const engine = new CutEngine();
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const a = await node(engine, 'a', 'default', 300, 60_000);
  const b = await node(engine, 'b', 'default', 300, 60_000);
  await first.close();
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10, '/a'), b.target);
  t.match(await answered(b, 1, "q2's write of /a"), { result: 0 });
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10, '/b'), a.target);
  t.match(await answered(a, 1, "p1's write of /b"), { result: 0 });
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -2, "q2's waiter for /b queued");
  await resetBoth(engine, a, b);
  b.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/a'), b.target);
  t.match(await answered(b, 3, "b's unlock of nothing on /a, after the re-assertion"), { result: 0 });
  a.sf.run(9, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/b'), a.target);
  t.match(await answered(a, 9, "a's unlock of nothing on /b, after the re-assertion"), { result: 0 });
  // p1 waits for q2's /a lock, for good: q2 -> p1 -> q2 is a true cycle, not found yet (q2's edges are not written again).
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10, '/a'), a.target);
  await answered(a, -2, "p1's waiter for /a queued (under the new session)");
  engine.cut.add('a');
  await lateIs(engine, 'a', true);
  b.sf.run(5, lk('q5', 5, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await until(() => b.sf.parkedOverdue > 0 || b.got.has(2) || b.got.has(5), "q5's request on /b parked for a's late session, or answered, or q2's waiter ended");
  engine.cut.delete('a');
  a.store.nudge();
  await lateIs(engine, 'a', false);
  t.match(await answered(b, 2, "q2's waiter for /b"), { result: -EDEADLK }, 'q2 -> p1 -> q2 is true: EDEADLK once a renewed');
  t.equal(await within(Promise.race([b.answer(-5).then(() => 'queued'), b.answer(5).then(() => 'answered')]), BUDGET_MS, 'q5 queued, or answered'), 'queued', 'q5 queues behind p1');
  t.same(b.faults, [], 'nothing reported by b');
});
