/**
 * 'fifo' across nodes and workers: a request that queues settles the other files (the single
 * table's LockTable.settleOthers). Under 'fifo' a POSIX waiter also queues behind earlier
 * conflicting waiters, unless their owner already waits for its own: then it passes them. Here W
 * (node b) queues on /b behind X (node a), only because of X's place in the queue (H's read lock
 * there does not conflict with W's read). X then waits for W on /a: queueing behind X would now
 * close a cycle, so W passes X and is granted at once, as one lock table grants it. /a and /b are
 * on different workers of node a (routeOf with 2 workers: /a on worker 1, /b on worker 0), so the
 * wake-up pass of /b goes from the worker that queued X, through the caller, to the other worker.
 * Real node processes over a real redis-server this file starts.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Node, type Reply, event, until } from './node-procs.js';

/** A classic POSIX lock of the whole file (l_len 0: to its end). */
const whole = (path: string, owner: number, cmd: number, lockType: number) => ({ path, lockType, lockStart: 0, lockLen: 0, cmd, lockOwner: owner, lockPid: 100 + owner });
const waiting = (n: Node, path: string, count: number, what: string) => until(() => n.call('locks', path), (l: Reply[]) => l.filter((e) => e.state === 'waiting').length === count, what);

t.test("'fifo': a cycle formed on one worker's file lets a waiter pass on another worker's file of the same node, and grants it", { skip: noRedis }, async (t) => {
  t.equal(routeOf('/a', 2), 1, '/a is on worker 1 of 2');
  t.equal(routeOf('/b', 2), 0, '/b is on worker 0 of 2');
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const namespace = `n-${randomUUID().slice(0, 8)}`;
  // Two workers each (node-procs); sessionTtlMs 2000: the new namespace's grace period is short.
  const [a, b] = ['a', 'b'].map((node) => new Node({ url: server.url, namespace, node, sessionTtlMs: 2000 }, 'fifo'));
  for (const n of [a!, b!]) t.teardown(() => n.kill());
  await Promise.all([a!.ready(), b!.ready()]);
  t.equal((await b!.call('lock', whole('/a', 1, F_SETLK, F_RDLCK))).result, 0, 'W (b, owner 1) reads /a');
  t.equal((await a!.call('lock', whole('/b', 2, F_SETLK, F_RDLCK))).result, 0, 'H (a, owner 2) reads /b');
  const xOnB = a!.call('lock', whole('/b', 3, F_SETLKW, F_WRLCK));
  await waiting(a!, '/b', 1, "X (a, owner 3) waiting to write /b, behind H's read");
  const wOnB = b!.call('lock', whole('/b', 1, F_SETLKW, F_RDLCK));
  await waiting(b!, '/b', 2, 'W waiting to read /b, queued behind X (no lock of H conflicts with it)');
  const xOnA = a!.call('lock', whole('/a', 3, F_SETLKW, F_WRLCK));
  const w = await event(wOnB, "W's answer on /b, once X waits for W on /a");
  t.equal(w.result, 0, 'W passes X and is granted its read of /b');
  const listed = (await a!.call('locks', '/b')) as Reply[];
  t.same(listed.filter((e) => e.state === 'granted').map((e) => e.node).sort(), ['a', 'b'], "/b: H's and W's reads held");
  t.equal(listed.filter((e) => e.state === 'waiting').length, 1, '/b: X still waits');
  // W lets go of /a: X is granted /a; H and W let go of /b: X is granted /b.
  t.equal((await b!.call('lock', whole('/a', 1, F_SETLK, F_UNLCK))).result, 0, 'W unlocks /a');
  t.equal((await event(xOnA, "X's answer on /a")).result, 0, 'X is granted /a');
  t.equal((await b!.call('lock', whole('/b', 1, F_SETLK, F_UNLCK))).result, 0, 'W unlocks /b');
  t.equal((await a!.call('lock', whole('/b', 2, F_SETLK, F_UNLCK))).result, 0, 'H unlocks /b');
  t.equal((await event(xOnB, "X's answer on /b")).result, 0, 'X is granted /b');
});
