/**
 * EDEADLK across nodes is the engine's answer for the moment it is asked, never remembered past
 * the decision that got it. Model: the kernel's F_SETLKW, which fails with EDEADLK only while the
 * wait would close a cycle; once the cycle is broken (the other owner's wait ended), the same
 * request waits. Real SharedFiles over a MemoryEngine behind the lost-link harness (every step
 * passes); every wait is for an answer or a queued waiter, within a budget.
 */
import t from 'tap';
import { EAGAIN, EDEADLK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, lk, node } from './lost-link.js';

for (const stale of [true, false]) {
  t.test(`a cross-node cycle found ${stale ? 'after a stale reply in the same decision' : 'on a fresh copy'}, then broken: the same request waits`, async (t) => {
    const engine = new MemoryEngine();
    const a = await node(engine, 'a', 'default', 2000);
    const b = await node(engine, 'b', 'default', 2000);
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    a.sf.run(1, lk('O', 1, F_WRLCK, F_SETLK, 0, 10, '/a'), a.target);
    t.match(await answered(a, 1, "O's lock of /a"), { result: 0 }, 'O (node a) holds /a');
    b.sf.run(1, lk('P', 2, F_WRLCK, F_SETLK, 0, 10, '/b'), b.target);
    t.match(await answered(b, 1, "P's lock of /b"), { result: 0 }, 'P (node b) holds /b');
    if (!stale) {
      // a's copy of /b is brought up to date first (O's refused try learns P's lock).
      a.sf.run(9, lk('O', 1, F_WRLCK, F_SETLK, 0, 10, '/b'), a.target);
      t.match(await answered(a, 9, "O's try of /b"), { result: -EAGAIN }, "a's copy of /b has P's lock");
    }
    b.sf.run(2, lk('P', 2, F_WRLCK, F_SETLKW, 0, 10, '/a'), b.target);
    await answered(b, -2, "P's wait for /a queued");
    const from = a.log.length;
    a.sf.run(2, lk('O', 1, F_WRLCK, F_SETLKW, 0, 10, '/b'), a.target);
    t.match(await answered(a, 2, "O's F_SETLKW of /b"), { result: -EDEADLK }, 'O -> P -> O: EDEADLK');
    t.equal(a.log.slice(from).some((l) => l.endsWith('-> stale missed')), stale, stale ? 'the decision met a stale reply first' : 'no stale reply');
    // P's wait ends: the cycle is gone, P still holds /b.
    b.sf.cancel(2, 'timeout');
    await answered(b, 2, "P's wait, ended");
    a.sf.run(3, lk('O', 1, F_WRLCK, F_SETLKW, 0, 10, '/b'), a.target);
    t.equal(await Promise.race([answered(a, -3, "O's F_SETLKW of /b queued").then(() => 'queued'), answered(a, 3, "O's F_SETLKW of /b")]), 'queued', 'O waits for P: no cycle now');
    b.sf.run(3, lk('P', 2, F_UNLCK, F_SETLK, 0, 10, '/b'), b.target);
    t.match(await answered(b, 3, "P's unlock of /b"), { result: 0 });
    t.match(await answered(a, 3, "O's F_SETLKW of /b"), { result: 0 }, "granted by P's unlock");
  });
}
