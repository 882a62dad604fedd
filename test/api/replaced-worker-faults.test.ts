/**
 * A replaced worker in a shared lock space (SharedFiles.recover through the API): two
 * nodes as LockCoordinators in this process over a real redis-server this file starts. Every wait
 * is for an answer, within HANG_MS.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis, within } from '../store/redis-server.js';
import { HANG_MS } from './helpers.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const win = (fileName: string, handle: number) => ({ fileName, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle, processId: 1 });

async function pair(t: Test, ttl: number, requestTimeoutMs = 2000): Promise<[LockCoordinator, LockCoordinator]> {
  const namespace = `rwr-${randomUUID().slice(0, 8)}`;
  const a = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: ttl, requestTimeoutMs } });
  const b = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'b', sessionTtlMs: ttl, requestTimeoutMs } });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return [a, b];
}

// The replacement starts while the engine does not answer: its first stats() (crashWorker waits
// for it) comes after requestTimeoutMs at most, not once the engine is back; then the engine
// answers again, the reading goes on, and a's lock through the dead worker still holds.
t.test('a worker replaced while the engine does not answer: crashWorker resolves, the lock still holds once the engine is back', { skip: noRedis }, async (t) => {
  const [a, b] = await pair(t, 6000, 1000);
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  server.pause();
  let resumed = false;
  t.teardown(() => (resumed ? undefined : server.resume()));
  await within(a.crashWorker(routeOf('/w', 2)), HANG_MS, 'crashWorker with the engine paused');
  server.resume();
  resumed = true;
  t.equal(await b.lockFile(win('/w', 2)), 33, "b cannot lock /w: a's lock through the dead worker holds");
  await a.closeHandle({ fileName: '/w', handle: 1 });
  // A blocking request: the close may have been answered before the engine wrote it (a step past
  // requestTimeoutMs on a loaded machine is owed and written later), and b is woken when it is.
  t.equal(await within(b.lockFile({ ...win('/w', 2), failImmediately: false }), HANG_MS, "b's blocking lock after a's close"), 0, "b locks /w once a's handle 1 closed");
});

// The worker is replaced three times in a row (each replacement reads the index again, each
// crashWorker waiting for that); then the engine restarts: a's lock is put back, never given to b.
t.test('a worker replaced three times in a row: its lock is put back at an engine restart, never two holders', { skip: noRedis }, async (t) => {
  const [a, b] = await pair(t, 6000);
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  const k = routeOf('/w', 2);
  await within(a.crashWorker(k), HANG_MS, 'the first crash');
  await within(a.crashWorker(k), HANG_MS, 'the second crash');
  await within(a.crashWorker(k), HANG_MS, 'the third crash');
  await server.restart();
  const deadline = Date.now() + HANG_MS;
  for (;;) {
    const s = await Promise.all([a.stats(), b.stats()]);
    if (s.every((x) => x.store!.sessions === 2 && !x.store!.session.fenced)) break;
    if (Date.now() > deadline) throw new Error('new sessions after the restart: not seen');
    await new Promise((r) => setTimeout(r, 10));
  }
  const aIo = await a.checkIo({ fileName: '/w', handle: 1, processId: 1, byteOffset: 0, length: 10, write: true });
  const got = await b.lockFile(win('/w', 2));
  t.not(got === 0 && aIo === 0, true, `never two holders: b's LockFileEx ${got}, a's checkIo ${aIo}`);
  t.equal(aIo, 0, "the third replacement had read the lock before the restart (crashWorker waits for that): put back");
});
