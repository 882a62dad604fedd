/**
 * Every node of a namespace must use the same policy (docs/API.md): a coordinator whose policy
 * differs from a live node's is refused at its start, with an Error naming the policy in use and
 * that node; once no node of the other policy is live, the namespace takes the new one. Both
 * engines (the Engine.policy record), and through LockCoordinator.start on a real redis-server.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { MemoryEngine, NodeStore } from '../../src/store/index.js';
import { RedisEngine } from '../../src/store/redis.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer | undefined;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const tuning = { sessionTtlMs: 60_000, renewEveryMs: 15_000, fenceAfterMs: 45_000, graceMs: 0 };

for (const kind of ['memory', 'redis'] as const) {
  t.test(`${kind}: a node of another policy is refused while one of the first lives; the policy changes once none does`, { skip: kind === 'redis' && noRedis }, async (t) => {
    const namespace = `policy-${randomUUID().slice(0, 8)}`;
    const memory = new MemoryEngine();
    // Every Redis engine made here is shut down at the end (a refused start leaves its own open).
    const made: RedisEngine[] = [];
    t.teardown(() => Promise.all(made.map((e) => e.shutdown())));
    const engine = async () => {
      if (kind === 'memory') return memory;
      const e = await RedisEngine.connect({ url: server!.url, shownUrl: server!.url, namespace, requestTimeoutMs: 10_000 });
      made.push(e);
      return e;
    };
    const start = async (node: string, policy: string) => NodeStore.start(await engine(), { node, policy, ...tuning }, {}, kind, false);
    const a = await start('a', 'fifo');
    const b = await start('b', 'fifo');
    t.pass('two nodes with one policy');
    await t.rejects(start('c', 'default'), /decided with policy 'fifo' by node '(a|b)', which is live; this node asks for 'default': every node of a namespace must use the same policy/);
    const left = kind === 'memory' ? memory : await engine();
    t.equal((await left.sessions()).sessions.some((s) => s.node === 'c' && s.deadline > 0), false, "the refused node's session is ended");
    await a.close();
    await t.rejects(start('c', 'default'), /by node 'b'/, 'still refused while b lives');
    await b.close();
    const c = await start('c', 'default');
    t.pass('with no fifo node live, the namespace takes default');
    await t.rejects(start('d', 'fifo'), /decided with policy 'default' by node 'c'/);
    const self = await start('c2', 'default');
    await Promise.all([c.close(), self.close()]);
  });
}

t.test('LockCoordinator.start with another policy than a live node of the namespace: refused, the first keeps serving', { skip: noRedis }, async (t) => {
  const store = { url: server!.url, namespace: `policy-api-${randomUUID().slice(0, 8)}`, sessionTtlMs: 60_000 };
  const a = await LockCoordinator.start({ workers: 1, policy: 'fifo', store: { ...store, node: 'a' } });
  t.teardown(() => a.stop());
  await t.rejects(LockCoordinator.start({ workers: 1, store: { ...store, node: 'b' } }), /decided with policy 'fifo' by node 'a'.*asks for 'default'/);
  const b = await LockCoordinator.start({ workers: 1, policy: 'fifo', store: { ...store, node: 'b' } });
  t.teardown(() => b.stop());
  t.equal((await a.stats()).store?.node, 'a', 'a serves on');
});
