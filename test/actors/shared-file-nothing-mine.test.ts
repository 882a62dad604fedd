/**
 * A release that finds nothing to release, where the cache's records of this node are known to be
 * the engine's (nothing owed or of unknown fate) and no waiter of this node is in the file, is
 * answered without the engine: a close of a file its owner took no lock on costs no round trip,
 * and does not wait out an unreachable engine, whatever other owners of this node hold there.
 * Model: the kernel, where such a close touches no lock. Invariant: a release is answered without
 * a step only when the engine cannot hold anything it would release; where it may (a waiter of
 * this node that another node may have granted since), the release asks the engine. Real
 * SharedFiles over a MemoryEngine behind the lost-link harness.
 */
import t from 'tap';
import { EAGAIN, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseFlush, parseRelease, type Call } from '../../src/core/requests.js';
import { MemoryEngine, answered, lk, node, type TestNode } from './lost-link.js';

const flush = (owner: string, path = '/a'): Call => parseFlush({ path, lockOwner: owner });
const release = (fh: number, path = '/a'): Call => parseRelease({ path, fileHandle: fh, lockOwner: `fl${fh}` });

/** Counts the steps the node sends (each reaches the policy, dropped or not). */
function counting(n: TestNode, fate: () => 'pass' | 'drop' = () => 'pass'): { steps: number } {
  const c = { steps: 0 };
  n.policy = () => {
    c.steps++;
    return fate();
  };
  return c;
}

t.test('a close (flush, release) of a file this node has nothing in: no step once that is known, also with the engine out of reach', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', 2000);
  t.teardown(() => a.store.close());
  const c = counting(a);
  // Nothing known yet of /a (a new worker): the first release asks the engine.
  a.sf.run(1, flush('p1'), a.target);
  await answered(a, 1, 'the first flush of /a');
  t.equal(c.steps, 1, 'the first flush of an unknown file: one step (the engine says what this node holds there)');
  // Known now, and the actor went idle: the next closes are answered here.
  a.sf.run(2, flush('p1'), a.target);
  a.sf.run(3, release(3), a.target);
  await answered(a, 2, 'flush');
  await answered(a, 3, 'release');
  t.equal(c.steps, 1, 'no step for the flush and release that followed');
  // The engine out of reach: a close still answered at once (no wait for requestTimeoutMs).
  c.steps = 0;
  const cut = counting(a, () => 'drop');
  a.sf.run(4, flush('p2'), a.target);
  a.sf.run(5, release(5), a.target);
  await answered(a, 4, 'flush, engine out of reach');
  await answered(a, 5, 'release, engine out of reach');
  t.equal(cut.steps, 0, 'nothing sent');
  t.same(a.faults, [], 'nothing reported');
});

t.test('a close of an owner with nothing is answered here while another owner of the node holds a lock; a release that releases something, or after a waiter of the node may have been granted elsewhere, asks the engine', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', 2000);
  const b = await node(engine, 'b', 'default', 2000);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock"), { result: 0 });
  const c = counting(a);
  // p2 holds nothing while p1 (this node) holds a lock: p2's close releases nothing anywhere (a
  // daemon holds its lock while other processes open and close the file).
  a.sf.run(2, flush('p2'), a.target);
  await answered(a, 2, "p2's flush");
  t.equal(c.steps, 0, "a flush of an owner with nothing, while another owner of this node holds a lock: no step");
  // p1's own close does release: the engine is asked.
  a.sf.run(7, flush('p1'), a.target);
  await answered(a, 7, "p1's flush");
  t.equal(c.steps, 1, "p1's flush, which releases its lock: one step");
  b.sf.run(9, lk('q9', 9, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 9, "q9's lock"), { result: 0 }, "[0,10) is free after p1's flush");
  b.sf.run(10, lk('q9', 9, F_UNLCK, F_SETLK, 0, 10), b.target);
  await answered(b, 10, "q9's unlock");
  // A waiter of this node that another node may grant: b holds [0,10), p3 waits for it.
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 1, "q1's lock"), { result: 0 });
  a.sf.run(4, lk('p3', 3, F_WRLCK, F_SETLKW, 0, 10), a.target);
  await answered(a, -4, "p3's wait queued");
  // b's unlock grants p3 in the engine; a's copy does not know yet (its inbox held back). p3's
  // unlock (another thread of p3) must ask the engine, though a's copy still shows p3 waiting and
  // holding nothing: its step finds the grant. It is answered before p3 is told of the grant, so
  // it leaves the granted lock to p3 (the order of the answers: the unlock, then the grant).
  a.held = [];
  b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 2, "q1's unlock"), { result: 0 });
  const before = c.steps;
  a.sf.run(5, lk('p3', 3, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 5, "p3's unlock"), { result: 0 });
  t.ok(c.steps > before, "p3's unlock asked the engine");
  a.release();
  t.match(await answered(a, 4, "p3's lock, granted by b"), { result: 0 });
  b.sf.run(3, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 3, "q2's lock"), { result: -EAGAIN }, 'p3 holds [0,10): granted after its unlock was answered');
  a.sf.run(8, lk('p3', 3, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 8, "p3's second unlock"), { result: 0 });
  b.sf.run(6, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 6, "q2's lock"), { result: 0 }, "[0,10) is free: p3's second unlock released the granted lock");
  b.sf.run(4, lk('q2', 2, F_UNLCK, F_SETLK, 0, 10), b.target);
  await answered(b, 4, "q2's unlock");
  a.sf.run(6, lk('p4', 4, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 6, "p4's lock"), { result: 0 });
  b.sf.run(5, lk('q3', 3, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 5, "q3's lock"), { result: -EAGAIN }, 'and p4 holds it now, as b sees');
});
