/**
 * Review of the release deadline: stop() while releases answered at their deadline are still
 * queued (answeredAlready): each request is answered once, stop() ends, and the engine keeps no
 * lock of the released owners.
 */
import t from 'tap';
import { ENOLCK, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, MemoryEngine, answered, ch, code, countAnswers, headAtLink, lf, lk, nodeFor, within } from './lost-link.js';

const TIMEOUT = 300;

t.test('stop() with releases answered while queued behind a step held at the link: each answered once, stop ends', async (t) => {
  const engine = new MemoryEngine();
  const a = await nodeFor(t, engine, 'a', TIMEOUT);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.equal(code(await answered(a, 1, "p1's lock")), 0, 'p1 holds [0,10)');
  a.sf.run(2, lf(4, 20, 10), a.target);
  t.equal(await answered(a, 2, "handle 4's lock"), 0, 'handle 4 holds [20,30)');
  const counts = countAnswers(a);
  const hold = await headAtLink(a, 9);
  a.sf.run(11, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  a.sf.run(12, ch(4), a.target);
  t.equal(code(await answered(a, 11, "p1's unlock")), -ENOLCK, "p1's unlock answered while queued");
  t.equal(await answered(a, 12, "handle 4's close"), undefined, "handle 4's close answered while queued");
  const stopped = a.sf.stop();
  hold.release();
  await within(stopped, BUDGET_MS, 'stop()');
  await answered(a, 9, 'the head request');
  t.same([9, 11, 12].map((id) => counts.get(id)), [1, 1, 1], 'each answered once');
  t.same((await engine.load('/a')).records.filter((r) => r.node === 'a').length, 0, "no lock of a's left in the engine");
  t.same(a.faults, [], 'nothing reported');
});
