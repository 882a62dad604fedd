/**
 * A worker replaced after a crash, in a shared lock space (SharedConfig.blank is false for it: its
 * predecessor's locks may be in the engine, so its first release of a file asks the engine). Two nodes as LockCoordinators with a `store`
 * in this process, over a real redis-server this file starts on a free port. Model: the kernel,
 * where a lock is held until its owner releases it or closes, whatever happens to the threads
 * deciding it, and no two conflicting locks are ever granted.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { HANG_MS } from './helpers.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const win = (fileName: string, handle: number) => ({ fileName, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle, processId: 1 });

/** Asks again until `pred` holds (within HANG_MS: a hang, never a slow machine). */
async function _until<T>(ask: () => Promise<T>, pred: (x: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + HANG_MS;
  for (;;) {
    const x = await ask();
    if (pred(x)) return x;
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${HANG_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function pair(t: Test, ttl: number): Promise<[LockCoordinator, LockCoordinator]> {
  const namespace = `rw-${randomUUID().slice(0, 8)}`;
  const a = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: ttl } });
  const b = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'b', sessionTtlMs: ttl } });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return [a, b];
}

// Held: a's handle 1 locks /w through worker k; worker k dies, and its replacement (not blank)
// asks the engine at the handle's close, which releases the lock.
t.test("a close through a replaced worker releases the lock its predecessor took", { skip: noRedis }, async (t) => {
  const [a, b] = await pair(t, 2000);
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  await a.crashWorker(routeOf('/w', 2));
  await a.closeHandle({ fileName: '/w', handle: 1 });
  t.equal(await b.lockFile(win('/w', 2)), 0, "b locks /w: a's close released its lock");
});
