/**
 * A request that waited out a grace period (Parked) runs again in its file's mailbox; queued there
 * behind a step that gets no reply, it is answered at its deadline from outside the mailbox
 * (SharedFiles.attempt). It is answered once, leaves no parked entry, and holds nothing once its
 * turn comes with the engine answering again.
 */
import t from 'tap';
import { ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { CommitReply } from '../../src/store/index.js';
import { BUDGET_MS, MemoryEngine, answered, attemptedAgain, countAnswers, holdAtLink, lk, node, within } from './lost-link.js';

t.test('a parked F_SETLKW run again behind a step that gets no reply: answered once at its deadline, nothing left of it', async (t) => {
  let clock = 0;
  const engine = new MemoryEngine({ now: () => clock });
  const a = await node(engine, 'a', 'default', 300, 200);
  t.teardown(() => a.store.close());
  const counts = countAnswers(a);
  let refusals = 0;
  let refused!: () => void;
  const twice = new Promise<void>((r) => (refused = r));
  a.onReply = (r: CommitReply) => {
    if (!r.ok && r.reason === 'grace' && ++refusals === 2) refused();
  };
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW), a.target);
  await within(twice, BUDGET_MS, "p1's two refusals for the grace period");
  a.onReply = undefined;
  const sf = a.sf as unknown as { parked: Map<string, unknown> };
  const resumed = attemptedAgain(a, 1);
  const link = holdAtLink(a);
  a.sf.run(2, lk('p5', 5, F_UNLCK, F_SETLK, 20), a.target);
  await within(link.atLink, BUDGET_MS, "the unlock's step at the link");
  clock = 200;
  await within(resumed, BUDGET_MS, "p1's new run, queued behind the unlock");
  t.match(await answered(a, 1, "p1's F_SETLKW"), { result: -ENOLCK }, 'p1: the generic code at its deadline, still queued');
  link.release();
  await answered(a, 2, "p5's unlock");
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  t.equal(counts.get(1), 1, 'p1 answered once');
  t.equal(sf.parked.size, 0, 'no parked entry left');
  t.equal(a.sf.counts().waiters, 0, 'no waiter counted');
  a.sf.run(4, lk('p6', 6, F_WRLCK, F_SETLK, 0), a.target);
  t.match(await answered(a, 4, "p6's lock of [0,10)"), { result: 0 }, 'p6 takes [0,10): p1 holds nothing');
});
