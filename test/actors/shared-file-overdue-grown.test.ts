/**
 * 'overdue' (a wait-for cycle only through edges of late sessions) named for a waiter that is not
 * the request's own new one: a queued POSIX waiter of this node whose blockers grew with the
 * request's grant (LockTable.refreshEdges checks it again). Its cycle is as untrusted as a new
 * waiter's: a cut-off node's stale edge must not end it with EDEADLK; and the request that grew it
 * (an F_SETLK, a release) does not wait for that doubt: it is answered at once, the waiter's check
 * put off (SharedFile.deferred) until the late node renewed or expired. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness, node a's renewals and steps cut off; every wait is
 * for an answer, an engine record or a counter, within the harness's budget.
 */
import t, { type Test } from 'tap';
import { EDEADLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, lk, within, type TestNode } from './lost-link.js';
import { held } from './reset-harness.js';
import { checkDone, cutNodes, cutOff, heal, lateOnEngine, p1CloseOwed, p1WaitsForQ2, type Nodes } from './overdue-stages.js';

/**
 * q2 (b) writes /a [0,10); p1 (a) writes /b [0,10) and waits for /a (p1 -> q2). Unless `keep`,
 * p1's handle on /a closes while a is cut off: p1's waiter is answered EINTR, the close owed, its
 * edge stays in the engine. a goes late. q3 (b) waits for /b (q3 -> p1: no cycle, q2 waits for
 * nobody). x4 (b) reads /c [0,10); q2 waits to write /c (q2 -> x4).
 */
async function stage(t: Test, keep = false): Promise<Nodes> {
  const { engine, a, b } = await cutNodes(t);
  await p1WaitsForQ2(t, a, b);
  if (!keep) await p1CloseOwed(t, a, undefined, "p1's waiter ended with the close");
  await cutOff(engine, a);
  b.sf.run(2, lk('q3', 3, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -2, "q3's waiter for /b [0,10) queued (q3 -> p1 -> q2: no cycle)");
  b.sf.run(3, lk('x4', 4, F_RDLCK, F_SETLK, 0, 10, '/c'), b.target);
  t.match(await answered(b, 3, "x4's read of /c [0,10)"), { result: 0 });
  b.sf.run(4, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/c'), b.target);
  await answered(b, -4, "q2's waiter for /c [0,10) queued (q2 -> x4)");
  return { engine, a, b };
}

/**
 * a heals: its next step (p5's write of /d) carries its owed close, and p1's edge goes. Resolves
 * once b's put-off check of q2's edges on /c (its wake-up pass, at most a second away) passed:
 * watched from before the heal, the first check that is not put off again.
 */
async function healChecked(t: Test, engine: Nodes['engine'], a: TestNode, b: TestNode): Promise<void> {
  const checked = checkDone(b, '/c');
  await heal(engine, a);
  a.sf.run(4, lk('p5', 5, F_WRLCK, F_SETLK, 0, 10, '/d'), a.target);
  t.match(await answered(a, 4, "p5's write of /d [0,10)"), { result: 0 });
  t.match(await within(checked, BUDGET_MS, "b's check of q2's edges on /c, done"), { ok: true }, 'no cycle once p1 went');
}

t.test("a queued waiter whose blockers grow is not ended EDEADLK by a cycle only through a late node's edge of a waiter its node already ended, and the F_SETLK that grew it is answered at once", async (t) => {
  const { engine, a, b } = await stage(t);
  // q3's read of /c [0,10) is granted beside x4's: q2's waiter now waits for q3 too, and
  // q2 -> q3 -> p1 -> q2 runs through p1's ended waiter's edge, which only a (late) knows is gone.
  b.sf.run(5, lk('q3', 3, F_RDLCK, F_SETLK, 0, 10, '/c'), b.target);
  t.match(await answered(b, 5, "q3's read of /c [0,10)"), { result: 0 }, 'granted at once: an F_SETLK never waits for a third party');
  t.ok(await lateOnEngine(engine, 'a'), 'a is still late when q3 is answered');
  t.notOk(b.got.has(4), `q2's waiter for /c is not ended (${String((b.got.get(4) as { result?: number } | undefined)?.result)})`);
  await healChecked(t, engine, a, b);
  t.notOk(b.got.has(4), `q2's waiter for /c still waits (${String((b.got.get(4) as { result?: number } | undefined)?.result)})`);
  t.same(await held(engine, '/c'), ['b held read q3 0-9', 'b held read x4 0-9', 'b waiting write q2 0-9'].sort(), "/c: q3's and x4's reads, q2's waiter");
  b.sf.run(6, lk('x4', 4, F_UNLCK, F_SETLK, 0, 10, '/c'), b.target);
  await answered(b, 6, "x4's unlock of /c");
  b.sf.run(7, lk('q3', 3, F_UNLCK, F_SETLK, 0, 10, '/c'), b.target);
  await answered(b, 7, "q3's unlock of /c");
  t.match(await answered(b, 4, "q2's write of /c [0,10)"), { result: 0 }, 'granted once the reads went');
  t.same(b.faults, [], 'nothing reported by b');
  t.same(a.faults, [], 'nothing reported by a');
});

t.test("the same growth through a late node whose waiter is true ends the grown waiter EDEADLK once the node renewed", async (t) => {
  const { engine, a, b } = await stage(t, true);
  b.sf.run(5, lk('q3', 3, F_RDLCK, F_SETLK, 0, 10, '/c'), b.target);
  t.match(await answered(b, 5, "q3's read of /c [0,10)"), { result: 0 }, 'granted at once');
  t.notOk(b.got.has(4), 'q2 waits while a is late');
  await heal(engine, a);
  t.match(await answered(b, 4, "q2's waiter for /c"), { result: -EDEADLK }, 'q2 -> q3 -> p1 -> q2 is true: EDEADLK');
  t.same(b.faults, [], 'nothing reported by b');
});

t.test("a release whose wake-up grows a queued waiter through a late node's stale edge goes through, and the grown waiter is not ended EDEADLK", async (t) => {
  const { engine, a, b } = await stage(t);
  // y6 writes /c [10,20); q3 waits to read /c [0,20) behind it (q3 -> y6).
  b.sf.run(8, lk('y6', 6, F_WRLCK, F_SETLK, 10, 10, '/c'), b.target);
  t.match(await answered(b, 8, "y6's write of /c [10,20)"), { result: 0 });
  b.sf.run(9, lk('q3', 3, F_RDLCK, F_SETLKW, 0, 20, '/c'), b.target);
  await answered(b, -9, "q3's read of /c [0,20) queued behind y6");
  // y6's unlock grants q3's read: q2 now waits for q3 too (q2 -> q3 -> p1 -> q2, through p1's ended waiter's edge).
  b.sf.run(10, lk('y6', 6, F_UNLCK, F_SETLK, 10, 10, '/c'), b.target);
  t.match(await answered(b, 10, "y6's unlock of /c [10,20)"), { result: 0 }, 'the release goes through');
  t.match(await answered(b, 9, "q3's read of /c [0,20)"), { result: 0 }, 'q3 granted by it');
  t.ok(await lateOnEngine(engine, 'a'), 'a is still late then');
  t.notOk(b.got.has(4), `q2's waiter for /c is not ended (${String((b.got.get(4) as { result?: number } | undefined)?.result)})`);
  await healChecked(t, engine, a, b);
  t.notOk(b.got.has(4), 'q2 still waits');
  t.same(b.faults, [], 'nothing reported by b');
});
