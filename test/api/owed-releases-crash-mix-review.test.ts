/**
 * Review of the caller's owed releases (issue 13): several handles of node a on one file, each
 * unlocked while the engine is paused (answered owed) and then locked again at once (queued behind
 * the unlocks), the worker killed while they wait, the engine back right after. Whatever a was told
 * must hold in the engine: a relock answered 0 is held (b refused its bytes), one answered with the
 * generic code is not (b is granted them); each unlock is counted once.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { replacementLaunched } from './helpers.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis } from '../store/redis-server.js';

const win = (fileName: string, handle: number, start: number, length: number) => ({ fileName, byteOffset: start, length, exclusiveLock: true, failImmediately: true, handle, processId: 1 });
const unwin = (fileName: string, handle: number, start: number, length: number) => ({ fileName, byteOffset: start, length, handle, processId: 1 });

t.test('owed unlocks and relocks of several handles, the worker killed, the engine back: what a was told holds', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const store = { url: server.url, namespace: `om-${randomUUID().slice(0, 8)}`, sessionTtlMs: 8000, requestTimeoutMs: 1000 };
  const a = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'a' } });
  const b = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'b' } });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const handles = [1, 2, 3, 4, 5, 6];
  t.same(await Promise.all(handles.map((h) => a.lockFile(win('/m', h, h * 10, 10)))), handles.map(() => 0), "a's handles lock their bytes of /m");
  server.pause();
  const unlocks: Promise<number>[] = [];
  const relocks: Promise<number>[] = [];
  try {
    for (const h of handles) {
      unlocks.push(a.unlockFile(unwin('/m', h, h * 10, 10)));
      if (h % 2 === 0) relocks.push(a.lockFile(win('/m', h, h * 10, 10)));
    }
    await Promise.race(unlocks);
    const gone = replacementLaunched("the replacement of /m's worker");
    const crashed = a.crashWorker(routeOf('/m', 2));
    await gone;
    server.resume();
    await crashed;
  } finally {
    server.resume();
  }
  const u = await Promise.all(unlocks);
  const r = await Promise.all(relocks);
  t.ok(u.every((x) => x === 0 || x === 33), `unlocks answered 0 or 33 (${u.join(',')})`);
  const even = handles.filter((h) => h % 2 === 0);
  for (const [i, h] of even.entries()) {
    const got = await b.lockFile(win('/m', 100 + h, h * 10, 10));
    t.equal(got, r[i] === 0 ? 33 : 0, `handle ${h}: relock told ${r[i]}, b got ${got}`);
  }
  for (const h of handles.filter((x) => x % 2 === 1)) {
    t.equal(await b.lockFile(win('/m', 100 + h, h * 10, 10)), 0, `handle ${h}'s unlock was written: b locks its bytes`);
  }
  const ops = (await a.stats()).operations.unlockFile as Record<string, number>;
  t.equal(Object.values(ops).reduce((s, n) => s + n, 0), handles.length, `each unlock counted once (${JSON.stringify(ops)})`);
  t.equal((a as unknown as { owedReleases: Map<number, unknown> }).owedReleases.size, 0, 'the caller keeps no owed release once all is written');
});
