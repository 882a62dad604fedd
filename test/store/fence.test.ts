/**
 * Step.fence on both engines: a step whose grants hold fence numbers applies only if the lowest is
 * above the engine's counter of versions (every version and fence given before, on any file) and
 * the highest not above its time in µs (or, with the counter ahead of that time, its next ms);
 * else 'fence' with the counter and the time. The step's version is at least its highest number.
 * This is what makes hook events' `fence` grow with every grant on a file across nodes, also
 * across a file left with no records (version 0 again).
 */
import t, { type Test } from 'tap';
import type { CommitReply } from '../../src/store/index.js';
import { cluster, type Kind } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer | undefined;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const lock = (id: string) => ({ id, state: 'held' as const, data: id });

function refused(t: Test, r: CommitReply, what: string): { clock: number; nowUs: number } {
  t.match(r, { ok: false, reason: 'fence' }, `${what}: refused 'fence'`);
  if (r.ok || r.reason !== 'fence') throw new Error(`expected 'fence', got ${JSON.stringify(r)}`);
  t.ok(Number.isSafeInteger(r.clock) && Number.isSafeInteger(r.nowUs), `${what}: with the counter and the time`);
  return r;
}

function accepted(t: Test, r: CommitReply, what: string): number {
  t.equal(r.ok, true, `${what}: accepted (${JSON.stringify(r)})`);
  return r.ok ? r.version : -1;
}

for (const kind of ['memory', 'redis'] as Kind[]) {
  t.test(`${kind}: a fence at or below the counter, or past the time, is refused; one between applies, and the version is at least it`, { skip: kind === 'redis' && noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const v1 = accepted(t, await a!.commit({ file: '/f', base: 0, put: [lock('a1')] }), 'a plain grant');
    const r1 = refused(t, await a!.commit({ file: '/f', base: v1, remove: ['a1'], put: [lock('a2')], fence: [v1, v1] }), 'a fence equal to a version given');
    t.ok(r1.clock >= v1, 'the counter is at least that version');
    const far = r1.nowUs + 10_000_000;
    refused(t, await a!.commit({ file: '/f', base: v1, remove: ['a1'], put: [lock('a2')], fence: [far, far] }), 'a fence 10 s past the engine time');
    t.same((await b!.load('/f')).records.map((r) => r.id), ['a1'], 'neither refusal changed the file');
    const f1 = Math.max(r1.clock + 1, r1.nowUs - 1000);
    const v2 = accepted(t, await a!.commit({ file: '/f', base: v1, remove: ['a1'], put: [lock('a2')], fence: [f1, f1 + 2] }), 'a fence above the counter, not past the time');
    t.ok(v2 >= f1 + 2, `its version (${v2}) is at least its highest fence (${f1 + 2})`);
    // The file left with no records is at version 0 again: its next grant still needs a number above.
    t.equal(accepted(t, await a!.commit({ file: '/f', base: v2, remove: ['a2'] }), 'the last record removed'), 0, 'version 0');
    refused(t, await b!.commit({ file: '/f', base: 0, put: [lock('b1')], fence: [f1 + 2, f1 + 2] }), "b's grant with a's last fence, on the empty file");
    const r2 = refused(t, await b!.commit({ file: '/f', base: 0, put: [lock('b1')], fence: [f1 + 1, f1 + 1] }), 'or a smaller one');
    // Another file's steps move the counter too: a number is above every one given in the namespace.
    const v3 = accepted(t, await a!.commit({ file: '/g', base: 0, put: [lock('g1')] }), 'a step on another file');
    t.ok(v3 > r2.clock, 'the counter moved on');
    refused(t, await b!.commit({ file: '/f', base: 0, put: [lock('b1')], fence: [r2.clock + 1, r2.clock + 1] }), 'a number at or below that step’s version');
    const f2 = Math.max(v3 + 1, r2.nowUs);
    accepted(t, await b!.commit({ file: '/f', base: 0, put: [lock('b1')], fence: [f2, f2] }), 'one above it');
  });
}

t.test('redis: a counter ahead of the engine time (a failover to a server whose clock is behind) still takes numbers just above it', { skip: noRedis }, async (t) => {
  const c = await cluster('redis', ['a'], server);
  t.teardown(() => c.close());
  const a = c.nodes[0]!.store;
  const r = refused(t, await a.commit({ file: '/f', base: 0, put: [lock('a1')], fence: [1, 1] }), 'a fence of 1');
  const ahead = r.nowUs + 60_000_000;
  await (await server!.client()).set(`{${c.namespace}}:clock`, String(ahead));
  const r2 = refused(t, await a.commit({ file: '/f', base: 0, put: [lock('a1')], fence: [r.nowUs, r.nowUs] }), 'a number at the time, below the counter');
  t.equal(r2.clock, ahead, 'the counter as set');
  t.ok(accepted(t, await a.commit({ file: '/f', base: 0, put: [lock('a1')], fence: [ahead + 1, ahead + 1] }), 'the counter + 1, 60 s past the time') >= ahead + 1, 'applied');
  refused(t, await a.commit({ file: '/g', base: 0, put: [lock('g1')], fence: [ahead + 5_000, ahead + 5_000] }), 'but not more than 1 ms past the counter');
});

t.test('step.fence is checked at the boundary', async (t) => {
  const c = await cluster('memory', ['a'], undefined);
  t.teardown(() => c.close());
  const a = c.nodes[0]!.store;
  for (const bad of [[2, 1], [0, 1], [1.5, 2], [1], 'x', [1, 2 ** 60]]) {
    await t.rejects(a.commit({ file: '/f', base: 0, put: [lock('a1')], fence: bad as never }), { name: 'TypeError', message: /step\.fence/ }, `fence ${JSON.stringify(bad)}`);
  }
});
