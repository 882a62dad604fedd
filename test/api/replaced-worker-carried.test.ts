/**
 * After the engine lost its data, a worker puts its locks back under the session carried over
 * (the grace period), and says it acts on that session ('adopted', Worker.session) only once they
 * are back, or told lost. A worker that dies before that leaves its replacement its older session
 * (HostInit.shared.predecessor), whose data the engine lost: what it held is unknown, and said so
 * (a fault). Before, 'adopted' left with the re-assertions: the replacement read the new session
 * only, found nothing, and the lock was gone unsaid. One node as a LockCoordinator in this process,
 * over a real redis-server this file starts, reached through a proxy that holds the re-assertion.
 * Every wait is for an event (a session event, the proxy's hold, the worker's replacement, an
 * answer), within HANG_MS.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { CutProxy } from '../store/cut-proxy.js';
import { RedisServer, noRedis, within } from '../store/redis-server.js';
import { HANG_MS, sessionEvents } from './helpers.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const win = (fileName: string, handle: number) => ({ fileName, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle, processId: 1 });

// a's handle 1 locks /w through worker k. The engine restarts empty: a's session is carried over,
// and worker k's re-assertion of /w (the first command naming /w since) is held at the proxy,
// never reaching the engine. Worker k dies then.
t.test("a worker that dies before its locks went back under the carried session: its replacement says they are unknown (a fault)", { skip: noRedis }, async (t) => {
  const namespace = `rwc-${randomUUID().slice(0, 8)}`;
  const proxy = await CutProxy.start(server.port);
  t.teardown(() => proxy.stop());
  const a = await LockCoordinator.start({ workers: 2, store: { url: proxy.url, namespace, node: 'a', sessionTtlMs: 6000, requestTimeoutMs: 60_000 } });
  t.teardown(() => a.stop());
  const seen = sessionEvents(a);
  const warned: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'LocksmithFaultWarning') warned.push(w.message);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  const k = routeOf('/w', 2);
  const held = within(proxy.holdNext('/w'), HANG_MS, "worker k's re-assertion of /w, held at the proxy");
  await server.restart();
  await seen('reset');
  await held;
  await within(a.crashWorker(k), HANG_MS, 'crashWorker: the replacement answers once it read what its predecessor held');
  const { faults } = await a.stats();
  t.equal(faults, 1, 'one fault: the locks the dead worker had not put back are unknown');
  t.match(warned, [/could not read to its end, before this node's session changed or the engine lost its data, which locks its predecessor took/], 'saying so');
});
