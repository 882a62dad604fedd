/**
 * Review of issue 13: two waiters of b granted at once by a's release; b's hook holds the first's
 * approval while the second's caller aborts. The aborted waiter ends while the hook still runs
 * (as a node alone ends a waiter in its mailbox), and nothing of it is left once all settle.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';

async function waiting(c: LockCoordinator, path: string, n: number): Promise<void> {
  while ((await c.locks(path)).filter((e) => e.state === 'waiting').length < n) await new Promise((r) => setImmediate(r));
}

t.test("posix: b's second waiter, granted with the first by a's release, aborted while b's hook judges the first: ends at once, leaves nothing", {
  skip: noRedis,
}, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const namespace = `rhmany-${randomUUID().slice(0, 8)}`;
  const store = (node: string) => ({ url: server.url, namespace, node, sessionTtlMs: 1000 });
  let armed = false;
  let asked: () => void = () => {};
  const askedP = new Promise<void>((r) => (asked = r));
  let answer: (v: number) => void = () => {};
  const hookP = new Promise<number>((r) => (answer = r));
  const a = await LockCoordinator.start({ workers: 1, store: store('a') });
  const b = await LockCoordinator.start({
    workers: 1,
    store: store('b'),
    onLock: (e: LockEvent) => {
      if (!armed || e.lockType === F_UNLCK || e.lockOwner !== 3) return 0;
      asked();
      return hookP;
    },
  });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const path = '/m';
  const lk = (c: LockCoordinator, owner: number, type: number, wait = false, signal?: AbortSignal) =>
    c.lock({ path, lockType: type, lockStart: 0, lockLen: 10, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner, ...(signal ? { signal } : {}) }).then((r) => r.result);
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
