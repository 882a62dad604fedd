/**
 * Review of the per-file fence (Step.fence), engine side:
 * - the engine's clock steps back (a failover to a replica whose clock is behind): the file's last
 *   fence is then ahead of the engine's time; grants go on one above it (FENCE_SLACK_US), but once
 *   the file is left with no record its tombstone lives FENCE_KEEP_MS only, and a node that never
 *   saw the file then proposes the engine's time (SharedFile.giveFence: max(1 + last known, engine
 *   µs)), which is below grants made before: a fence that goes back.
 * - Redis: a step with no fence (an unhooked node's, a waiting record) brings a file back from its
 *   tombstone without taking the tombstone's last fence into m:<file> (the MemoryEngine does): once
 *   t:<file> expires (PX) the file, still with records, has forgotten its last fence.
 */
import { Redis } from 'ioredis';
import t from 'tap';
import { FENCE_KEEP_MS } from '../../src/store/memory.js';
import { MemoryEngine } from '../../src/store/index.js';
import { cluster } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

t.test('memory: a clock step back of the engine, the file emptied, its tombstone gone: the next grant is still above every one before', async (t) => {
  const T0 = 1_800_000_000_000;
  let clock = T0;
  const e = new MemoryEngine({ now: () => clock });
  const open = (node: string) => {
    const o = e.openSync(node, 1000, 0);
    return { node, epoch: o.epoch, incarnation: o.incarnation };
  };
  const a = open('a');
  const rec = (s: { node: string; epoch: number }, id: string) => ({ id, node: s.node, epoch: s.epoch, state: 'held' as const, requestId: '', data: id, seq: 0 });
  const step = (base: number, name: string, remove: string[], put: ReturnType<typeof rec>[], fence?: [number, number]) => ({ file: '/x', base, step: name, grants: put.length > 0, remove, put, notify: [], edges: [], ...(fence === undefined ? {} : { fence }) });
  const f0 = T0 * 1000;
  let r = e.commitSync(a, step(0, 's1', [], [rec(a, 'r1')], [f0, f0]));
  if (!r.ok) return t.fail(`a's first grant at the engine's time: ${JSON.stringify(r)}`);
  // A failover: the engine's clock is now 10 minutes behind.
  clock = T0 - 600_000;
  r = e.commitSync(a, step(r.version, 's2', ['r1'], [rec(a, 'r2')], [f0 + 1, f0 + 1]));
  if (!r.ok) return t.fail(`a's next grant, one above its last: ${JSON.stringify(r)}`);
  t.pass('a grants on, one above the last, with the clock behind');
  t.equal(e.commitSync(a, step(r.version, 'empty', ['r2'], [])).ok, true, 'the file left with no record');
  // The tombstone's time passes, still well before T0 on the engine's clock.
  clock += FENCE_KEEP_MS + 1;
  const b = open('b');
  // b never saw /x: it proposes the engine's time from below (here exactly the engine's time).
  const us = clock * 1000;
  t.ok(us < f0, `the engine's time (${us}) is below the fences given before (${f0 + 1})`);
  const rb = e.commitSync(b, step(0, 'b1', [], [rec(b, 'b1')], [us, us]));
  t.notMatch(rb, { ok: true }, `b's grant with a fence below a's (${us} <= ${f0 + 1}) is refused (got ${JSON.stringify(rb)})`);
});

t.test('redis: a file brought back from its tombstone by a step with no fence keeps its last fence after t:<file> expires', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const c = await cluster('redis', ['a'], server);
  t.teardown(() => c.close());
  const a = c.nodes[0]!.store;
  const lock = (id: string) => ({ id, state: 'held' as const, data: id });
  const probe = await a.commit({ file: '/p', base: 0, put: [lock('p')], fence: [2 ** 52, 2 ** 52] });
  if (probe.ok || probe.reason !== 'fence') return t.fail(`probe: ${JSON.stringify(probe)}`);
  const f = probe.nowUs;
  const v1 = await a.commit({ file: '/f', base: 0, put: [lock('a1')], fence: [f, f] });
  if (!v1.ok) return t.fail(JSON.stringify(v1));
  t.equal((await a.commit({ file: '/f', base: v1.version, remove: ['a1'] })).ok, true, 'the file left with no record (its tombstone)');
  // A step that grants with no fence (a node without hooks) brings the file back.
  const v2 = await a.commit({ file: '/f', base: 0, put: [lock('a2')] });
  t.equal(v2.ok, true, 'an unfenced grant brings the file back');
  t.equal((await a.load('/f')).fence, f, 'its last fence is known (from the tombstone)');
  // The tombstone's PX runs out (FENCE_KEEP_MS later) while the file has records.
  const cli = new Redis(server.url, { lazyConnect: true });
  await cli.connect();
  t.teardown(() => cli.quit());
  const keys = await cli.keys(`*t:/f`);
  t.equal(keys.length, 1, 'the tombstone key');
  await cli.pexpire(keys[0]!, 1);
  await new Promise((r) => setTimeout(r, 20));
  t.equal((await a.load('/f')).fence, f, 'the file, still with records, keeps its last fence (as the MemoryEngine does)');
});

t.test('redis: a file whose last fence is ahead of the engine time keeps its tombstone until the time has passed it', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  // Sessions of 1 s: 10 x the TTL is below FENCE_KEEP_MS.
  const c = await cluster('redis', ['a'], server, { sessionTtlMs: 1000 });
  t.teardown(() => c.close());
  const a = c.nodes[0]!.store;
  const lock = (id: string) => ({ id, state: 'held' as const, data: id });
  const probe = await a.commit({ file: '/p', base: 0, put: [lock('p')], fence: [2 ** 52, 2 ** 52] });
  if (probe.ok || probe.reason !== 'fence') return t.fail(`probe: ${JSON.stringify(probe)}`);
  // As after a clock step back of 130 s: each grant FENCE_SLACK_US (1 s) past the last.
  let f = probe.nowUs;
  let v = 0;
  let prev: string[] = [];
  for (let i = 0; i < 130; i++) {
    const r = await a.commit({ file: '/f', base: v, remove: prev, put: [lock(`a${i}`)], fence: [f, f] });
    if (!r.ok) return t.fail(`grant ${i}: ${JSON.stringify(r)}`);
    v = r.version;
    prev = [`a${i}`];
    f += 1_000_000;
  }
  t.equal((await a.commit({ file: '/f', base: v, remove: prev })).ok, true, 'the file left with no record, its last fence ~129 s ahead of the engine time');
  const cli = new Redis(server.url, { lazyConnect: true });
  await cli.connect();
  t.teardown(() => cli.quit());
  const [key] = await cli.keys('*t:/f');
  const pttl = await cli.pttl(key!);
  t.ok(pttl > FENCE_KEEP_MS + 120_000, `the tombstone lives past the time the engine's clock reaches it (${pttl} ms)`);
});
