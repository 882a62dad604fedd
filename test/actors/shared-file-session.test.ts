/**
 * With no session (session 0: the node displaced, or its session expired while the engine was out
 * of reach), a release is answered without waiting for the engine, and nothing of it stays owed:
 * what it would free went with the lost session, and no step could ever carry it. Before, it was
 * owed for the life of the process, and its file's actor never went (counted busy). Real
 * SharedFiles over a MemoryEngine; the link refuses every step as unreachable. Every wait is for
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
