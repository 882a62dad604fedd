/**
 * The wait-for edges of a POSIX waiter that an owed close ended (SharedFiles.endThrough answered
 * it before the close's answer): the engine keeps the waiter's record, and its edges, until the
 * owed close's step commits (the file's next step that reaches the engine removes them), and
 * another node's deadlock check walks them meanwhile. The close is owed because its node could
 * not reach the engine, and no other node knows the waiter ended. So a cycle that runs only
 * through edges of a late session (its node has not renewed it for longer than a healthy node
 * would: lateAfterMs) is not trusted: the engine replies 'overdue', and the request queues with
 * its edges unchecked, its check put off (SharedFile.deferred) and done again at least every
 * second until that node renewed (a cycle still there: EDEADLK) or its session is gone (its edges
 * with it). Once the owed close committed, another node's request queues: at once when the node
 * knows the engine answers again (a step of another file committed), not at the end of the
 * backoff its failed tries grew to. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness, with node a's renewals cut off with its steps;
 * every wait is for an answer, an engine record or a counter, within the harness's budget.
 */
import t, { type Test } from 'tap';
import { EDEADLK, EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { cancelResult } from '../../src/core/lock-table.js';
import { parseRelease } from '../../src/core/requests.js';
import { BUDGET_MS, answered, lk, within, type TestNode } from './lost-link.js';
import { engineIs, held, until } from './reset-harness.js';
import { checkDone, cutNodes, cutOff as cutOffLate, heal, p1CloseOwed, p1WaitsForQ2, type Nodes } from './overdue-stages.js';

/**
 * q2 (node b) writes /a [0,10); p1 (node a, file handle 1) writes /b [0,10) and waits for /a
 * [0,10) (its edge: p1 -> q2). p1's handle on /a closes while a is cut off: the close is owed,
 * and p1's waiter is answered (EINTR) before it.
 */
async function stage(t: Test, close = true): Promise<Nodes> {
  const n = await cutNodes(t);
  await p1WaitsForQ2(t, n.a, n.b);
  n.a.policy = () => 'drop';
  if (!close) return n;
  await p1CloseOwed(t, n.a, undefined, "p1's waiter ended with the close, before its answer");
  t.same(await held(n.engine, '/a'), ['a waiting write p1 0-9', 'b held write q2 0-9'], "the engine still has p1's ended waiter (the close is owed)");
  return n;
}

/** q2's blocking write of /b [0,10) (request `id` of b), which p1 holds: 'queued', or its answer. */
async function q2Waits(b: TestNode, id: number): Promise<unknown> {
  b.sf.run(id, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  return within(Promise.race([b.answer(-id).then(() => 'queued'), b.answer(id)]), BUDGET_MS, "q2's write of /b [0,10): queued or answered");
}

/** Cuts a off (its steps and renewals), and resolves once the engine counts its session late. */
const cutOff = (n: Nodes['engine'], a: TestNode): Promise<void> => cutOffLate(n, a, "a's session late on the engine (not renewed for lateAfterMs)");

/** Starts q2's blocking write of /b [0,10) (request `id` of b), and resolves once it queued, its check put off for late sessions (unanswered). */
async function q2Parks(t: Test, b: TestNode, id: number): Promise<void> {
  b.sf.run(id, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -id, "q2's write of /b [0,10) queued, its check put off");
  t.notOk(b.got.has(id), `q2 is not answered (${JSON.stringify(b.got.get(id))})`);
}

t.test("while an owed close is not committed and its node is late, another node's request that closes a cycle only through the edge of a waiter the close ended is not refused EDEADLK: it queues, and its check passes once the owed close committed", async (t) => {
  const { engine, a, b } = await stage(t);
  await cutOff(engine, a);
  await q2Parks(t, b, 2);
  const checked = checkDone(b, '/b');
  await heal(engine, a);
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  t.match(await answered(a, 4, "p4's write of /c [0,10)"), { result: 0 }, "a's step on /c commits: the engine answers again");
  await engineIs(engine, ['b held write q2 0-9'], "the owed close's step removing p1's ended waiter");
  t.match(await within(checked, BUDGET_MS, "b's check of q2's edges on /b, done"), { ok: true }, 'no cycle once p1 went');
  t.notOk(b.got.has(2), "q2 waits for p1's /b lock");
  a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10, '/b'), a.target);
  t.match(await answered(b, 2, "q2's write of /b [0,10)"), { result: 0 }, 'granted once p1 unlocked');
  t.same(a.faults, [], 'nothing reported by a');
  t.same(b.faults, [], 'nothing reported by b');
});

t.test("a true cycle through a node that was late and renews is refused EDEADLK once it renewed", async (t) => {
  // p1's waiter for /a stays (no close): p1 -> q2 is true.
  const { engine, a, b } = await stage(t, false);
  await cutOff(engine, a);
  await q2Parks(t, b, 2);
  await heal(engine, a);
  t.match(await answered(b, 2, "q2's write of /b [0,10)"), { result: -EDEADLK }, 'q2 -> p1 -> q2: EDEADLK, reported late, not missed');
  t.same(await held(engine, '/b'), ['a held write p1 0-9'], 'q2 left nothing on /b');
  t.same(b.faults, [], 'nothing reported by b');
});

t.test("a cycle through a late node that dies dissolves with its session: the waiter's check passes", async (t) => {
  const { engine, a, b } = await stage(t);
  await cutOff(engine, a);
  await q2Parks(t, b, 2);
  const checked = checkDone(b, '/b');
  engine.expire('a');
  t.match(await within(checked, BUDGET_MS, "b's check of q2's edges on /b, done"), { ok: true }, "no cycle: p1's ended waiter's edge went with a's session");
  t.notOk(b.got.has(2), 'q2 is not refused EDEADLK: it waits for the reaper to remove p1\'s lock of a\'s dead session');
  t.same(b.faults, [], 'nothing reported by b');
});

t.test("a waiter whose check is put off for a late session holds up none of its node's later requests on the file", async (t) => {
  const { engine, a, b } = await stage(t);
  await cutOff(engine, a);
  await q2Parks(t, b, 2);
  b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 20, 10, '/b'), b.target);
  t.match(await answered(b, 3, "q3's write of /b [20,30), free"), { result: 0 }, 'granted at once');
  t.notOk(b.got.has(2), 'q2 still waits');
  b.sf.cancel(2, 'abort');
  t.match(await answered(b, 2, "q2's write of /b, aborted"), { result: -EINTR });
  t.same(b.faults, [], 'nothing reported by b');
});

for (const how of ['timeout', 'abort', 'close'] as const) {
  t.test(`a waiter whose check is put off for a late session ends with its ${how}`, async (t) => {
    const { engine, a, b } = await stage(t);
    await cutOff(engine, a);
    await q2Parks(t, b, 2);
    if (how === 'close') b.sf.run(3, parseRelease({ path: '/b', fileHandle: 2 }), b.target);
    else b.sf.cancel(2, how);
    const want = how === 'close' ? -EINTR : cancelResult(how, false);
    t.match(await answered(b, 2, `q2's write of /b, ended by its ${how}`), { result: want }, `answered ${want}`);
    if (how === 'close') await answered(b, 3, "q2's handle's close of /b");
    t.same(await held(engine, '/b'), ['a held write p1 0-9'], 'q2 left nothing on /b');
    t.same(b.faults, [], 'nothing reported by b');
  });
}

t.test("once a's engine answers again (a step of another file commits), the owed close commits at once, not after its backoff: another node's request queues", async (t) => {
  const { engine, a, b } = await stage(t);
  // From now on each wait of the owed close's tries never runs out: a try after the heal came from it.
  let waits = 0;
  a.sf.owedDelay = () => {
    waits++;
    return 2 ** 31 - 1;
  };
  await until(() => waits > 0, "the owed close's next try, failed, waiting for ever");
  a.policy = () => 'pass';
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  t.match(await answered(a, 4, "p4's write of /c [0,10)"), { result: 0 }, "a's step on /c commits: the engine answers again");
  await engineIs(engine, ['b held write q2 0-9'], "the owed close's step removing p1's ended waiter, with no step of a on /a");
  t.equal(waits, 1, 'no wait of the owed close ran out');
  t.equal(await q2Waits(b, 2), 'queued', "q2 waits for p1's /b lock");
  t.same(a.faults, [], 'nothing reported');
});

t.test("once the owed close committed, the ended waiter's edges are gone: another node's request queues", async (t) => {
  const { engine, a, b } = await stage(t);
  a.policy = () => 'pass';
  a.sf.run(4, lk('p5', 5, F_UNLCK, F_SETLK, 1000, 1, '/a'), a.target);
  t.match(await answered(a, 4, "p5's unlock of nothing on /a, carrying the owed close"), { result: 0 });
  t.same(await held(engine, '/a'), ['b held write q2 0-9'], "the owed close's step removed p1's ended waiter");
  t.equal(await q2Waits(b, 2), 'queued', "q2 waits for p1's /b lock");
  a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10, '/b'), a.target);
  t.match(await answered(a, 5, "p1's unlock of /b [0,10)"), { result: 0 });
  t.match(await answered(b, 2, "q2's write of /b [0,10)"), { result: 0 }, 'granted once p1 unlocked');
  t.same(a.faults, [], 'nothing reported');
});
