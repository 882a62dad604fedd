/**
 * A lock request's step that applied though the request was answered as failed is undone: its
 * owner's locks it replaced go back, if no other owner holds conflicting bytes. That is judged
 * again on every reply until the undo commits: another node may take those bytes meanwhile (they
 * were free in the engine after the step). Model: the single table, where no two conflicting locks
 * are ever granted; the undo then gives up (what the step put stays, and the fault says so).
 * Real SharedFiles over a MemoryEngine behind the lost-link harness.
 */
import t from 'tap';
import { EAGAIN, F_RDLCK, F_SETLK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, lk, loseNext, node } from './lost-link.js';

t.test("an undo whose put-back another node's lock came to conflict with, after it was judged possible: given up, never granted over that lock", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  const c = await node(engine, 'c');
  t.teardown(() => Promise.all([a.store.close(), b.store.close(), c.store.close()]));
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's write lock"), { result: 0 }, 'p1 writes [0,10)');
  // p1 downgrades: the step applies, its reply is lost; answered as failed, so undone later.
  loseNext(a);
  a.sf.run(2, lk('p1', 1, F_RDLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 2, "p1's downgrade (answered failed)");
  // a's next step learns the downgrade applied and decides its undo; that step is cut off, and
  // meanwhile b reads [0,10) (the engine has p1's read lock: compatible).
  let news = 0;
  a.policy = (s) => (s.id === undefined && ++news === 2 ? 'drop' : 'pass');
  a.afterDrop = async () => {
    a.afterDrop = undefined;
    b.sf.run(1, lk('q1', 1, F_RDLCK, F_SETLK, 0, 10), b.target);
    t.match(await answered(b, 1, "q1's read lock"), { result: 0 }, 'q1 reads [0,10) while the undo is on its way');
  };
  a.sf.run(3, lk('p3', 3, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 3, "p3's lock"), { result: 0 }, "a's request commits");
  t.equal(news >= 2, true, 'the undo step was cut off once');
  // p1's write lock must not be back over q1's read lock.
  c.sf.run(1, lk('r1', 1, F_RDLCK, F_SETLK, 0, 10), c.target);
  t.match(await answered(c, 1, "r1's read lock"), { result: 0 }, 'r1 reads [0,10): nobody writes it');
  c.sf.run(2, lk('r2', 2, F_WRLCK, F_SETLK, 0, 10), c.target);
  t.match(await answered(c, 2, "r2's write lock"), { result: -EAGAIN }, 'readers hold it');
  t.match(a.faults.join('\n'), /could not be undone/, 'the fault says the step stays');
});
