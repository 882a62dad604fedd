/**
 * Review of issue 13: two waiters of b granted at once by a's release; b's hook holds the first's
 * approval while the second's caller aborts. The aborted waiter ends while the hook still runs
 * (as a node alone ends a waiter in its mailbox), and nothing of it is left once all settle.
 */
import t from 'tap';
import { F_RDLCK, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

t.test("posix: b's second waiter, granted with the first by a's release, aborted while b's hook judges the first: ends at once, leaves nothing", {
  skip: noRedis,
}, async (t) => {
  let armed = false;
  const { promise: askedP, resolve: asked } = later();
  const { promise: hookP, resolve: answer } = later<number>();
  const { a, b } = await hookNodes(t, 'rhmany', {
    onLock: (e: LockEvent) => {
      if (!armed || e.lockType === F_UNLCK || e.lockOwner !== 3) return 0;
      asked();
      return hookP;
    },
  });
  const path = '/m';
  const lk = (c: LockCoordinator, owner: number, type: number, wait = false, signal?: AbortSignal) => lock(c, path, owner, type, 0, 10, wait, signal);
  t.equal(await lk(a, 2, F_WRLCK), 0, 'a writes');
  const first = lk(b, 3, F_RDLCK, true);
  await waiting(b, path, 1);
  const ac = new AbortController();
  const second = lk(b, 5, F_RDLCK, true, ac.signal);
  await waiting(b, path, 2);
  armed = true;
  t.equal(await lk(a, 2, F_UNLCK), 0, 'a unlocks');
  await settles(askedP, "b's hook asked for the first waiter");
  ac.abort();
  t.equal(await settles(second, "b's aborted second waiter, the hook still running"), -4, 'the second ends with EINTR');
  answer(0);
  t.equal(await settles(first, "b's first waiter"), 0, 'the first is granted');
  t.equal(await lk(b, 3, F_UNLCK), 0, 'the first unlocks');
  t.equal(await settles(lk(a, 7, F_WRLCK, true), "a's write after"), 0, 'a writes: nothing of the aborted waiter is left');
});
