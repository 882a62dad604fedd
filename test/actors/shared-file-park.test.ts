/**
 * Requests of one node that wait out a grace period (after the engine lost its data) run again
 * in the order they came, once it ends. A request that would grant and comes after them waits
 * behind them, unsent, also when it comes once the period ended by the engine's count but before
 * this node ran them again (the few ms of its margin): before, it was sent, granted, and passed
 * them. Real SharedFiles over a MemoryEngine whose clock the test moves; the parked requests run
 * again on this node's own timer. Every wait is for an answer or a reply, within a budget.
 */
import t from 'tap';
import { EAGAIN, F_SETLK, F_SETLKW, F_WRLCK } from '../../src/core/codes.js';
import type { CommitReply } from '../../src/store/index.js';
import { MemoryEngine, answered, lk, node, within, BUDGET_MS } from './lost-link.js';

t.test('a request that would grant, made after the grace period ended but before the parked ones ran again, waits behind them', async (t) => {
  let clock = 0;
  const engine = new MemoryEngine({ now: () => clock });
  // The engine's first session starts a grace period of 1,000 ms on its clock; this node runs its
  // parked requests again 1,000 ms (and its margin) later on the real one.
  const a = await node(engine, 'a', 'default', 5_000, 1_000);
  t.teardown(() => a.store.close());
  let refusals = 0;
  let refused!: () => void;
  const twice = new Promise<void>((r) => (refused = r));
  a.onReply = (r: CommitReply) => {
    if (!r.ok && r.reason === 'grace' && ++refusals === 2) refused();
  };
  // p1's F_SETLKW of free bytes: refused for the grace period (decided again with the wake-up pass
  // held, refused again), then parked.
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW), a.target);
  await within(twice, BUDGET_MS, "p1's two refusals for the grace period");
  // The period ends by the engine's count; p1 has not run again yet.
  clock = 1_000;
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 2, "p2's F_SETLK"), { result: -EAGAIN }, 'p2, which came after it, finds its lock (before: granted, and p1 queued behind it)');
  t.match(await answered(a, 1, "p1's F_SETLKW"), { result: 0 }, 'p1, parked first, was granted before it');
  t.same((await engine.load('/a')).records.map((r) => [r.state, r.requestId === '' ? 'lock' : 'waiter']), [['held', 'lock']], "only p1's lock stands");
});
