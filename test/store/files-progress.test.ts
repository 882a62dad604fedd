/**
 * RedisEngine.files() reads the namespace's file index by SSCAN, 1,000 files a step, and tells
 * `progress` after each step's answer: `locksmith locks --store` re-arms its silence timeout
 * there, so an index of millions of files is bounded per answer, never as a whole.
 */
import t from 'tap';
import { RedisEngine } from '../../src/store/redis.js';
import { RedisServer, noRedis } from './redis-server.js';

t.test('files(): every file of the index, once and sorted; progress after every SSCAN step', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const admin = await server.client();
  t.teardown(() => admin.disconnect());
  const names = Array.from({ length: 5_000 }, (_, i) => `/f/${i}`);
  await admin.sadd('{fp}:files', ...names);
  const engine = await RedisEngine.connect({ url: server.url, shownUrl: server.url, namespace: 'fp', requestTimeoutMs: 30_000 });
  t.teardown(() => engine.shutdown());
  let steps = 0;
  const files = await engine.files(() => steps++);
  t.same(files, [...names].sort(), 'every file once, sorted');
  // SSCAN's COUNT is a hint: ~5 steps for 5,000 members, at least 2 whatever the engine's choice.
  t.ok(steps >= 2, `progress told after each of the ${steps} steps`);
  t.same(await engine.files(), files, 'without progress: the same');
});
