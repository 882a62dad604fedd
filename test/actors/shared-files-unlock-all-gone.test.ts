/**
 * docs/API.md: `unlockFile` resolves with a number; with `byteOffset = length = -1` it is unlock-all
 * (0 when it runs). With the engine not answering, a request gets its family's generic code: for
 * the Windows family 33, an unlock-all too, queued (answered at its deadline, from outside the
 * mailbox) or at its turn (its step given up), and it is still written once the engine answers.
 * Real SharedFiles over a MemoryEngine behind the lost-link harness.
 */
import t from 'tap';
import { ERROR_LOCK_VIOLATION, F_WRLCK, F_SETLK } from '../../src/core/codes.js';
import { BUDGET_MS, MemoryEngine, answered, holdAtLink, lf, lk, node, uf, within } from './lost-link.js';

const TIMEOUT = 300;

t.test('an unlock-all with the engine gone: 33, at its turn and queued behind a held step, and written once the engine answers', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', TIMEOUT);
  const b = await node(engine, 'b', 'default', TIMEOUT);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  a.sf.run(1, lf(3, 0, 10), a.target);
  a.sf.run(2, lf(3, 10, 10), a.target);
  t.same([await answered(a, 1, 'lock 1'), await answered(a, 2, 'lock 2')], [0, 0], 'handle 3 holds [0,20) in two locks');
  a.policy = () => 'drop';
  // At its turn: its step gives up.
  a.sf.run(3, uf(3, -1, -1), a.target);
  t.equal(await answered(a, 3, 'the unlock-all at its turn'), ERROR_LOCK_VIOLATION, 'at its turn: 33, a number');
  // Queued behind a step held at the link: answered at its deadline.
  const hold = holdAtLink(a);
  a.sf.run(4, lk('p9', 9, F_WRLCK, F_SETLK, 90, 10), a.target);
  await within(hold.atLink, BUDGET_MS, 'the head step at the link');
  a.sf.run(5, uf(3, -1, -1), a.target);
  t.equal(await answered(a, 5, 'the queued unlock-all'), ERROR_LOCK_VIOLATION, 'queued past its deadline: 33, a number');
  a.policy = () => 'pass';
  hold.release();
  await answered(a, 4, 'the head request');
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  a.sf.run(6, lf(8, 60, 10), a.target);
  t.equal(await answered(a, 6, "a's next lock"), 0, "a's next step commits, with what it owes");
  b.sf.run(100, lf(1, 0, 20), b.target);
  t.equal(await answered(b, 100, "b's lock of [0,20)"), 0, 'b takes [0,20): the unlock-all was written');
});
