/**
 * Review guard of stop() (SharedFile.stopAll) with what is owed to the file: a cancel answered
 * while a was cut off (its waiter's removal owed, SharedFile.cancelAnswered), with or without b's
 * grant of that waiter meanwhile (never told, undone); a stop whose own step gets no reply (a cut
 * off again during it); a lock request's step of unknown fate found applied and undone by the
 * stop's step (fails before the change to stopAll, 2ae662b: the lock put back stayed). Nothing of
 * a is left in the engine once a step of it commits, and each request of a is answered once. Real
 * SharedFiles over a MemoryEngine (lost-link harness); every wait is for an answer or an engine
 * state within its budget.
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, lk, loseNext, type TestNode } from './lost-link.js';
import { held } from './reset-harness.js';
import { twoNodes } from './stages.js';

/** Counts the answers `n` gives from now on, by request id. */
function counted(n: TestNode): Map<number, number> {
  const c = new Map<number, number>();
  const answer = n.target.answer.bind(n.target);
  n.target.answer = (i, path, res, waitedMs, flockDrop, getlk) => {
    c.set(i, (c.get(i) ?? 0) + 1);
    answer(i, path, res, waitedMs, flockDrop, getlk);
  };
  return c;
}

/** q2 (b) holds [10,20), p0 (a) holds [0,10), p1 (a) waits for [10,20); then a's steps are lost. Counts a's answers. */
async function cutWithWaiter(t: Test, a: TestNode, b: TestNode): Promise<Map<number, number>> {
  const c = counted(a);
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 });
  a.sf.run(1, lk('p0', 9, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p0's lock of [0,10)"), { result: 0 });
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 10, 10), a.target);
  await answered(a, -2, "p1's waiter for [10,20) queued");
  a.policy = () => 'drop';
  return c;
}

async function stage(t: Test, a: TestNode, b: TestNode): Promise<Map<number, number>> {
  const c = await cutWithWaiter(t, a, b);
  a.sf.cancel(2, 'abort');
  t.match(await answered(a, 2, "p1's cancel answered while a is cut off"), { result: -4 });
  a.policy = () => 'pass';
  return c;
}

for (const grant of [false, true]) {
  t.test(`a stop with a cancel's removal owed${grant ? ', b having granted the waiter meanwhile' : ''}: nothing of a left, each request answered once`, async (t) => {
    const { engine, a, b } = await twoNodes(t);
    const c = await stage(t, a, b);
    if (grant) {
      b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
      t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
    }
    await a.sf.stop();
    t.same((await held(engine)).filter((x) => x.startsWith('a ')), [], 'nothing of a left in the engine');
    t.same([...c].filter(([, n]) => n !== 1), [], 'each request of a answered once');
    t.equal(c.get(2), 1, "p1's request answered once (the cancel)");
    t.same(a.faults, [], 'nothing reported on a');
  });
}

t.test('a stop whose step gets no reply (cut off during it): nothing reported, its requests answered once; what it holds stays until its session ends', async (t) => {
  const { engine, a, b } = await twoNodes(t);
  const c = await cutWithWaiter(t, a, b);
  await a.sf.stop();
  t.match(a.got.get(2), { result: -4 }, "p1's request ended by the stop (EINTR)");
  t.same([...c].filter(([, n]) => n !== 1), [], 'each request of a answered once');
  t.same(a.faults, [], 'nothing reported on a');
  t.ok((await held(engine)).includes('a held write p0 0-9'), "p0's lock stays in the engine (no step of a committed)");
});

// A lock request's step that applied though the request was answered as failed (its reply lost,
// Unsure) is undone by the next step: its record left out, the owner's lock it replaced put back
// in the table with no record yet. When that next step is the stop's, the lock put back goes too
// (the stop drops the table's locks, not those that have a record): nothing of a left.
t.test("a stop that finds a lock request's step applied after all (undone): the lock put back goes too, nothing of a left", async (t) => {
  const { engine, a } = await twoNodes(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 });
  // p1 extends its lock to [0,20) (merged): the step applies, its reply is lost; answered failed.
  loseNext(a);
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLK, 10, 10), a.target);
  await answered(a, 2, "p1's lock of [10,20) (answered failed)");
  await a.sf.stop();
  t.same((await held(engine)).filter((x) => x.startsWith('a ')), [], 'nothing of a left in the engine');
});
