/**
 * Review of the release deadline: a close answered at its deadline while queued ends the waiter
 * through its handle (158); the engine then grants that waiter (the other node unlocks) before the
 * close's turn. The waiter is told nothing more, and the close still removes the granted lock.
 */
import t from 'tap';
import { ERROR_NOT_LOCKED, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, MemoryEngine, answered, ch, countAnswers, holdAtLink, lk, lw, node, within } from './lost-link.js';

const TIMEOUT = 300;
const code = (r: unknown) => (typeof r === 'number' ? r : (r as { result: number } | undefined)?.result);

t.test('a close answered while queued, then its handle\'s waiter granted by the engine before the close runs: told once, the close removes the grant', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', TIMEOUT);
  const b = await node(engine, 'b', 'default', TIMEOUT);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 1, "q1's lock")), 0, 'q1 holds [0,10)');
  a.sf.run(1, lw(5, 0, 10), a.target);
  await answered(a, -1, "handle 5's waiter queued");
  const counts = countAnswers(a);
  const hold = holdAtLink(a);
  a.sf.run(9, lk('p9', 9, F_WRLCK, F_SETLK, 90, 10), a.target);
  await within(hold.atLink, BUDGET_MS, 'the head step at the link');
  a.sf.run(2, ch(5), a.target);
  t.equal(await answered(a, 2, 'the close of handle 5'), undefined, 'the close answered (void)');
  t.equal(a.got.get(1), ERROR_NOT_LOCKED, "the handle's waiter ended with 158");
  b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 2, "q1's unlock")), 0, "q1 unlocks: the engine grants a's waiter");
  hold.release();
  await answered(a, 9, 'the head request');
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  a.sf.run(3, lk('p8', 8, F_WRLCK, F_SETLK, 60, 10), a.target);
  t.equal(code(await answered(a, 3, "p8's lock")), 0, "a's next step commits");
  b.sf.run(3, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 3, "q2's lock")), 0, 'q2 takes [0,10): the closed handle holds nothing');
  t.same([1, 2].map((id) => counts.get(id)), [1, 1], 'the waiter and the close each answered once');
  t.same(a.faults, [], 'nothing reported');
});
