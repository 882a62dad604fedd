/**
 * Two waiters of one node on one file whose deadlock checks are put off (SharedFile.deferred),
 * each for a cycle through a different late node. Once one of those nodes renewed, the waiter
 * whose cycle runs through it is answered EDEADLK (its cycle is true) while the other node stays
 * late and the other waiter's check is 'overdue' again each second: whichever of the two queued
 * first. The engine answers a step's checks in order and stops at the first cycle, so neither the
 * 'deadlock' found in one step may be lost with the 'overdue' of the next, nor the late one's
 * check hold the other's up until its node renews or expires (a TTL away in production, never
 * here). Real SharedFiles over a MemoryEngine, behind the lost-link harness,
 * nodes a and c cut off (their steps and renewals); every wait is for an answer or the engine's
 * view of a session, within the harness's budget.
 */
import t, { type Test } from 'tap';
import { EDEADLK, F_SETLK, F_SETLKW, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, lk, node, within, type TestNode } from './lost-link.js';
import { CutEngine, lateIs, lateOnEngine } from './overdue-stages.js';

async function stage(t: Test, trueFirst: boolean): Promise<{ engine: CutEngine; a: TestNode; b: TestNode; c: TestNode }> {
  const engine = new CutEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  const c = await node(engine, 'c');
  t.teardown(() => Promise.all([a.store.close(), b.store.close(), c.store.close()]));
  // q1 (b) writes /y; p1 (a) writes /x [0,10) and waits for /y (p1 -> q1).
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10, '/y'), b.target);
  t.match(await answered(b, 1, "q1's write of /y"), { result: 0 });
  a.sf.run(1, lk('p1', 11, F_WRLCK, F_SETLK, 0, 10, '/x'), a.target);
  t.match(await answered(a, 1, "p1's write of /x [0,10)"), { result: 0 });
  a.sf.run(2, lk('p1', 11, F_WRLCK, F_SETLKW, 0, 10, '/y'), a.target);
  await answered(a, -2, "p1's waiter for /y queued (p1 -> q1)");
  // q2 (b) writes /z; r1 (c) writes /x [20,30) and waits for /z (r1 -> q2).
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10, '/z'), b.target);
  t.match(await answered(b, 2, "q2's write of /z"), { result: 0 });
  c.sf.run(1, lk('r1', 21, F_WRLCK, F_SETLK, 20, 10, '/x'), c.target);
  t.match(await answered(c, 1, "r1's write of /x [20,30)"), { result: 0 });
  c.sf.run(2, lk('r1', 21, F_WRLCK, F_SETLKW, 0, 10, '/z'), c.target);
  await answered(c, -2, "r1's waiter for /z queued (r1 -> q2)");
  // a and c are cut off (steps and renewals) until the engine counts both late.
  a.policy = () => 'drop';
  c.policy = () => 'drop';
  engine.cut.add('a');
  engine.cut.add('c');
  await lateIs(engine, 'a', true);
  await lateIs(engine, 'c', true);
  // q1 waits for /x [0,10): q1 -> p1 -> q1 through a's edge ('overdue'), queued, its check put off.
  // q2 waits for /x [20,30): q2 -> r1 -> q2 through c's edge ('overdue'), likewise.
  const q1 = async () => {
    b.sf.run(3, lk('q1', 1, F_WRLCK, F_SETLKW, 0, 10, '/x'), b.target);
    await answered(b, -3, "q1's waiter for /x [0,10) queued, its check put off for a");
  };
  const q2 = async () => {
    b.sf.run(4, lk('q2', 2, F_WRLCK, F_SETLKW, 20, 10, '/x'), b.target);
    await answered(b, -4, "q2's waiter for /x [20,30) queued, its check put off for c");
  };
  if (trueFirst) {
    await q2();
    await q1();
  } else {
    await q1();
    await q2();
  }
  t.notOk(b.got.has(3) || b.got.has(4), 'both wait while a and c are late');
  return { engine, a, b, c };
}

/** c reaches the engine again (its waiter r1 is true: q2 -> r1 -> q2 is a deadlock); a stays cut off. */
async function healC(t: Test, engine: CutEngine, b: TestNode, c: TestNode): Promise<void> {
  engine.cut.delete('c');
  c.policy = () => 'pass';
  c.store.nudge();
  await lateIs(engine, 'c', false, "c's renewal on the engine");
  t.match(await answered(b, 4, "q2's waiter for /x [20,30), once c renewed"), { result: -EDEADLK }, 'q2 -> r1 -> q2 is true: EDEADLK');
  t.ok(await lateOnEngine(engine, 'a'), 'a is still late when q2 is answered');
  t.notOk(b.got.has(3), `q1's waiter still waits (its cycle runs through a, still late): ${String((b.got.get(3) as { result?: number } | undefined)?.result)}`);
  t.same(b.faults, [], 'nothing reported by b');
}

t.test("the waiter whose cycle became true queued first: its 'deadlock' is not lost with the other's 'overdue' in the next step", async (t) => {
  const { engine, b, c } = await stage(t, true);
  await healC(t, engine, b, c);
});

t.test("the waiter whose cycle became true queued after the one still 'overdue': its check is not held up behind it", async (t) => {
  const { engine, b, c } = await stage(t, false);
  await healC(t, engine, b, c);
});

t.test("new requests refused 'overdue' for a late node, one after another, do not put a due check of an earlier put-off waiter off for ever", async (t) => {
  const { engine, b, c } = await stage(t, true);
  engine.cut.delete('c');
  c.policy = () => 'pass';
  c.store.nudge();
  await lateIs(engine, 'c', false, "c's renewal on the engine");
  // q1's waiter (through a, still late) is aborted and asked again, each new one 'overdue' (its
  // check put off), as a process that retries a timed-out lock would, several times a second:
  // until q2 is answered.
  let id = 3;
  let rounds = 0;
  let over = false;
  const stream = (async () => {
    while (!b.got.has(4) && !over) {
      b.sf.cancel(id, 'abort');
      await answered(b, id, `q1's waiter (request ${id}), aborted`);
      id += 10;
      rounds++;
      b.sf.run(id, lk('q1', 1, F_WRLCK, F_SETLKW, 0, 10, '/x'), b.target);
      await within(Promise.race([b.answer(-id), b.answer(id), b.answer(4)]), BUDGET_MS, `q1's request ${id}: queued or answered`);
      if (b.got.has(id)) throw new Error(`q1's request ${id} was answered ${JSON.stringify(b.got.get(id), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}, not queued`);
      // About ten a second (a pace, not a wait for anything): as fast as it can go, the loop
      // would starve the nodes' renewals in this one process, and make c late again.
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    t.match(await answered(b, 4, "q2's waiter for /x [20,30), while q1 asks again and again"), { result: -EDEADLK }, 'q2 -> r1 -> q2 is true: EDEADLK');
  } finally {
    over = true;
    await stream;
  }
  t.ok(await lateOnEngine(engine, 'a'), `a is still late when q2 is answered (after ${rounds} requests of q1)`);
  t.same(b.faults, [], 'nothing reported by b');
});
