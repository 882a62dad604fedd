/**
 * With no session (session 0: the node displaced, or its session expired while the engine was out
 * of reach), a release is answered without waiting for the engine, and nothing of it stays owed:
 * what it would free went with the lost session, and no step could ever carry it. Before, it was
 * owed for the life of the process, and its file's actor never went (counted busy). And a step
 * refused by the fence of a renewal that is only late is decided again once it came. Real
 * SharedFiles over a MemoryEngine, behind a link whose refusals the test chooses. Every wait is for
 * an answer, within a budget.
 */
import t from 'tap';
import { F_SETLK, F_WRLCK } from '../../src/core/codes.js';
import { parseRelease } from '../../src/core/requests.js';
import { MemoryEngine, answered, lk, node } from './lost-link.js';

t.test('with no session, a release is answered and leaves nothing owed: the actor goes', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's lock"), { result: 0 }, 'p1 holds [0,10) of /a');
  // The session is gone, the engine out of reach: session 0, as the caller's side posts it.
  a.policy = () => 'drop';
  a.lease[0] = Number.NEGATIVE_INFINITY;
  a.lease[1] = 0;
  a.sf.adopt(0, 0, 0);
  a.sf.run(2, parseRelease({ path: '/a', fileHandle: 1 }), a.target);
  await answered(a, 2, 'the release with no session');
  await new Promise((r) => setImmediate(r));
  t.same(a.sf.counts(), { files: 0, locks: 0, waiters: 0, busy: 0 }, "nothing owed: /a's actor went");
});

// The node fenced by a late renewal: the link refuses the step by the node's own fence, and the
// renewal lands before the actor looks at the refusal. Seen once in CI (several-nodes, "a renewal
// that is only late"): the actor found the node no longer fenced, took the refusal for a lost
// session, and gave the F_SETLK up at once (-ENOLCK).
t.test('a lock refused by the fence of a late renewal that lands right after is decided again and granted', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.lease[0] = performance.timeOrigin + performance.now() - 1;
  let refusals = 0;
  a.policy = () => (refusals++ === 0 ? 'fenced' : 'pass');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's lock"), { result: 0 }, 'granted once the renewal came');
  t.equal(refusals, 2, 'refused once by the fence, then committed');
});
