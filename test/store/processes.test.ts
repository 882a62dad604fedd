/**
 * Nodes in separate processes over one engine: a step decided on a version another process has
 * moved on is refused with what it missed; and two processes doing read-modify-write steps on one
 * record as fast as they can lose no update (every increment lands exactly once).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ChildNode } from './child-proc.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

function nodes(names: string[]): { namespace: string; children: ChildNode[] } {
  const namespace = `p-${randomUUID().slice(0, 8)}`;
  const children = names.map((node) => new ChildNode({ url: server.url, namespace, node, sessionTtlMs: 30_000, tuning: { graceMs: 0 } }));
  for (const c of children) t.teardown(() => c.kill());
  return { namespace, children };
}

t.test('a step on a version another process moved on: refused, with the missed change', { skip: noRedis }, async (t) => {
  const { children: [x, y] } = nodes(['x', 'y']);
  await Promise.all([x!.ready(), y!.ready()]);
  const v1 = await x!.run({ op: 'commit', step: { file: '/c', base: 0, put: [{ id: 'x1', state: 'held', data: 'X [0,10)' }] } });
  t.equal(v1.ok, true);
  // Both decide on v1; y commits first.
  const ys = await y!.run({ op: 'commit', step: { file: '/c', base: v1.version, put: [{ id: 'y1', state: 'held', data: 'Y [20,30)' }] } });
  t.equal(ys.ok, true, 'y first');
  const xs = await x!.run({ op: 'commit', step: { file: '/c', base: v1.version, put: [{ id: 'x2', state: 'held', data: 'X [15,25)' }] } });
  t.match(xs, { ok: false, reason: 'stale', version: ys.version });
  t.same(
    xs.missed.map((m: { node: string; step: string; put: { id: string; data: string }[] }) => [m.node, m.step, m.put.map((r) => [r.id, r.data])]),
    [['y', ys.step, [['y1', 'Y [20,30)']]]],
    "x learns y's step from the same reply",
  );
  const st = await x!.run({ op: 'load', file: '/c' });
  t.same(
    st.records.map((r: { id: string }) => r.id),
    ['x1', 'y1'],
    "x's stale step left no trace",
  );
  await Promise.all([x!.run({ op: 'close' }), y!.run({ op: 'close' })]);
});

t.test('two processes racing read-modify-write steps on one record lose no update', { skip: noRedis }, async (t) => {
  const n = 150;
  const { children } = nodes(['x', 'y']);
  await Promise.all(children.map((c) => c.ready()));
  const results = await Promise.all(children.map((c) => c.run({ op: 'incr', file: '/counter', n })));
  const st = await children[0]!.run({ op: 'load', file: '/counter' });
  t.equal(st.records.length, 1);
  t.equal(st.records[0].data, String(2 * n), `${2 * n} increments, each exactly once`);
  t.comment(`stale retries: ${results.map((r) => r.stale).join(', ')}`);
  await Promise.all(children.map((c) => c.run({ op: 'close' })));
});
