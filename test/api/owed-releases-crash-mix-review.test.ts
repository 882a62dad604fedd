/**
 * Review of the caller's owed releases (issue 13): several handles of node a on one file, each
 * unlocked while the engine is paused (answered owed) and then locked again at once (queued behind
 * the unlocks), the worker killed while they wait, the engine back right after. Whatever a was told
 * must hold in the engine: a relock answered 0 is held (b refused its bytes), one answered with the
 * generic code is not (b is granted them); each unlock is counted once.
 */
import t from 'tap';
import { replacementLaunched } from './helpers.js';
import { routeOf } from '../../src/wire/route.js';
import { noRedis } from '../store/redis-server.js';
import { twoNodes, unwin, win } from './two-nodes.js';


t.test('owed unlocks and relocks of several handles, the worker killed, the engine back: what a was told holds', { skip: noRedis }, async (t) => {
  const { server, a, b } = await twoNodes(t, 'om', { sessionTtlMs: 8000, requestTimeoutMs: 1000 });
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
