/**
 * Rollbacks the run check (lua.ts RUN) must see, found in review, with real redis-servers.
 *
 * A server process keeps its run_id when its whole data set is replaced by a full sync as a
 * replica: a primary demoted to a replica of a server that lagged behind it (what Sentinel does
 * to a primary that comes back after a failover: REPLICAOF, then CLIENT KILL TYPE normal) loads
 * that server's older data, and keeps its script cache; promoted again, it serves the older data
 * under the same run_id, and that data says it was written under that very run.
 */
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import t from 'tap';
import type { Redis } from 'ioredis';
import { cluster } from './fixture.js';
import { EVENT_BUDGET_MS, FAST_SYNC, RedisServer, noRedis, replicate, until, within } from './redis-server.js';


t.test('a primary demoted to a lagging replica and promoted again: its run_id is the same, its data older; nothing is granted twice', { skip: noRedis }, async (t) => {
  const x = await RedisServer.start(FAST_SYNC);
  const y = await RedisServer.start(FAST_SYNC);
  t.teardown(() => Promise.all([x.stop(), y.stop()]));
  // A long TTL: no node is fenced while the engine changes roles (a fenced node refuses steps itself).
  const c = await cluster('redis', [], x, { sessionTtlMs: 30_000, graceMs: 2_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const b = await c.add('b');
  const ax = await x.client();
  const ay = await y.client();
  const P = `{${c.namespace}}:`;
  await ax.del(`${P}grace`); // the first start's grace period: not what this test is about
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A f' }] })).ok, true, 'a holds /f');

  // y is x's replica, and stops following it (a lagging replica: what it holds is /f only).
  await replicate(ay, x);
  await ay.replicaof('NO', 'ONE');
  t.equal((await a.store.commit({ file: '/g', base: 0, put: [{ id: 'a2', state: 'held', data: 'A g' }] })).ok, true, 'a holds /g, which y never got');

  // x comes back as y's replica (its data: y's), then is promoted again; clients killed each time, as Sentinel does.
  await replicate(ax, y);
  await ax.client('KILL', 'TYPE', 'normal');
  t.equal(await ax.exists(`${P}r:/g`), 0, "x now holds y's older data: no /g");
  await ax.replicaof('NO', 'ONE');
  await ax.client('KILL', 'TYPE', 'normal');
  t.equal(await ax.exists(`${P}inc`), 1, 'the incarnation is there: the data does not look lost');

  // b decides on what x now holds: /g free. Granted, a and b would both hold /g.
  let grant = await b.store.commit({ file: '/g', base: 0, put: [{ id: 'b1', state: 'held', data: 'B g' }] });
  // The kill may have reached b's connection under the step ('unreachable'): sent again.
  if (!grant.ok && grant.reason === 'unreachable') grant = await b.store.commit({ file: '/g', base: 0, put: [{ id: 'b1', state: 'held', data: 'B g' }] });
  t.equal(grant.ok, false, 'b is not granted /g, which a holds');
  t.ok(!grant.ok && (grant.reason === 'reset' || grant.reason === 'grace'), `refused as a reset or by the grace period (${JSON.stringify(grant)})`);
});

t.test('a primary that frees its replication backlog takes a new replication ID: the same data, nothing dropped', { skip: noRedis }, async (t) => {
  const x = await RedisServer.start(FAST_SYNC);
  const y = await RedisServer.start(FAST_SYNC);
  t.teardown(() => Promise.all([x.stop(), y.stop()]));
  const c = await cluster('redis', [], x, { sessionTtlMs: 30_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const ax = await x.client();
  const ay = await y.client();
  const put = await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] });
  t.equal(put.ok, true, 'a holds /f');
  // x had a replica (so a backlog), which left; after repl-backlog-ttl x frees the backlog and
  // takes a new replication ID (Redis' replicationCron), its data untouched.
  await replicate(ay, x);
  await ay.replicaof('NO', 'ONE');
  const replid = (await ax.info('replication')).match(/master_replid:(\w+)/)?.[1];
  await ax.config('SET', 'repl-backlog-ttl', '1');
  await until(async () => (await ax.info('replication')).match(/master_replid:(\w+)/)?.[1] !== replid, EVENT_BUDGET_MS, 'x to free its backlog and take a new replication ID', 50);
  await ax.script('FLUSH'); // the next step goes through the run check
  const next = await a.store.commit({ file: '/f', base: put.ok ? put.version : 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] });
  t.equal(next.ok, true, `the step applies (${JSON.stringify(next)})`);
  t.same((await a.store.load('/f')).records.map((r) => r.id).sort(), ['a1', 'a2'], 'nothing dropped');
  t.equal(a.session.seen.some((e) => e.kind === 'reset' || e.kind === 'lost'), false, 'no reset');
});

/**
 * A TCP proxy in front of `server` that keeps each client's connection open when the server's
 * side drops, and connects to the server again at the client's next bytes: what a proxy that
 * pools its upstream connections shows a client (a restart behind it is no close).
 */
async function keepingProxy(server: RedisServer | (() => RedisServer)): Promise<{ url: string; close(): Promise<void> }> {
  const target = typeof server === 'function' ? server : () => server;
  const clients = new Set<Socket>();
  const proxy = createServer((down) => {
    clients.add(down);
    let up: Socket | undefined;
    const upstream = (): Socket => {
      if (up !== undefined) return up;
      const u = connect(target().port, '127.0.0.1');
      up = u;
      u.on('data', (d) => down.write(d));
      u.on('error', () => {});
      u.on('close', () => {
        if (up === u) up = undefined;
      });
      return u;
    };
    down.on('data', (d) => upstream().write(d));
    down.on('error', () => {});
    down.on('close', () => {
      clients.delete(down);
      up?.destroy();
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const c of clients) c.destroy();
        proxy.close(() => r());
      }),
  };
}

t.test("behind a proxy that hides the restart: another namespace's check loads the scripts, this one's steps still go through its own check", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const proxy = await keepingProxy(server);
  t.teardown(() => proxy.close());
  const via = { url: proxy.url, client: () => server.client() } as unknown as RedisServer;
  const c1 = await cluster('redis', [], via, { sessionTtlMs: 30_000 });
  const c2 = await cluster('redis', [], via, { sessionTtlMs: 30_000, graceMs: 2_000 });
  t.teardown(() => Promise.all([c1.close(), c2.close()]));
  const o = await c1.add('o');
  const a = await c2.add('a');
  const b = await c2.add('b');
  const admin = await server.client();
  await admin.del(`{${c2.namespace}}:grace`); // the first start's grace period: not what this test is about
  t.equal((await o.store.commit({ file: '/f', base: 0, put: [{ id: 'o1', state: 'held', data: 'O' }] })).ok, true);
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A f' }] })).ok, true);
  t.equal(await admin.save(), 'OK', 'a snapshot (dump.rdb)');
  t.equal((await a.store.commit({ file: '/g', base: 0, put: [{ id: 'a2', state: 'held', data: 'A g' }] })).ok, true, 'a holds /g, after the snapshot');
  t.equal((await b.store.load('/g')).records.length, 1, "b reads /g (its connection's run check is behind it)");

  await server.restart(); // loads dump.rdb: /g free; the proxy keeps every node's connection open
  // The other namespace's node is first: NOSCRIPT, its run check, and EVAL load the scripts.
  const first = await o.store.commit({ file: '/f2', base: 0, put: [{ id: 'o2', state: 'held', data: 'O 2' }] });
  t.match(first, { ok: false, reason: 'reset' }, "the other namespace's data is dropped");
  t.equal(o.errors.length + a.errors.length + b.errors.length, 0, 'no node saw its connection drop or fail');

  const grant = await b.store.commit({ file: '/g', base: 0, put: [{ id: 'b1', state: 'held', data: 'B g' }] });
  t.equal(grant.ok, false, 'b is not granted /g, which a holds');
  t.ok(!grant.ok && (grant.reason === 'reset' || grant.reason === 'grace'), `refused as a reset or by the grace period (${JSON.stringify(grant)})`);
});

t.test('a primary demoted and promoted again by hand, its clients kept: a node told the engine was a replica checks the run before its next step', { skip: noRedis }, async (t) => {
  const x = await RedisServer.start(FAST_SYNC);
  const y = await RedisServer.start(FAST_SYNC);
  t.teardown(() => Promise.all([x.stop(), y.stop()]));
  const c = await cluster('redis', [], x, { sessionTtlMs: 30_000, graceMs: 2_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const b = await c.add('b');
  const ax = await x.client();
  const ay = await y.client();
  const P = `{${c.namespace}}:`;
  await ax.del(`${P}grace`);
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A f' }] })).ok, true, 'a holds /f');
  t.equal((await b.store.load('/f')).records.length, 1, "b reads /f (its connection's run check is behind it)");
  // y: a copy of x from before /g, then a primary of its own: a write there gives its data y's run.
  await replicate(ay, x);
  await ay.replicaof('NO', 'ONE');
  t.equal((await a.store.commit({ file: '/g', base: 0, put: [{ id: 'a2', state: 'held', data: 'A g' }] })).ok, true, 'a holds /g, which y never got');
  await ay.set(`${P}run`, 'f'.repeat(40)); // as a node's run check on y would leave it (y's run)

  // x follows y by hand (no client killed) and is promoted again: its scripts and connections kept.
  await replicate(ax, y);
  const refused = await b.store.commit({ file: '/h', base: 0, put: [{ id: 'b0', state: 'held', data: 'B h' }] }).catch((e: Error) => e);
  t.ok(refused instanceof Error || !refused.ok, `b's step while x is a replica is refused (${refused instanceof Error ? refused.message : JSON.stringify(refused)})`);
  await ax.replicaof('NO', 'ONE');

  const grant = await b.store.commit({ file: '/g', base: 0, put: [{ id: 'b1', state: 'held', data: 'B g' }] });
  t.equal(grant.ok, false, 'b is not granted /g, which a holds');
  t.ok(!grant.ok && (grant.reason === 'reset' || grant.reason === 'grace'), `refused as a reset or by the grace period (${JSON.stringify(grant)})`);
});

t.test("a step made while the node reconnects (the client's offline queue) is sent after the run check, on the restarted engine's older data", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const c = await cluster('redis', [], server, { sessionTtlMs: 30_000, graceMs: 2_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const b = await c.add('b');
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  await admin.del(`${P}grace`);
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A f' }] })).ok, true);
  t.equal((await b.store.load('/f')).records.length, 1, "b's connection has had its run check");
  t.equal(await admin.save(), 'OK', 'a snapshot (dump.rdb)');
  t.equal((await a.store.commit({ file: '/g', base: 0, put: [{ id: 'a2', state: 'held', data: 'A g' }] })).ok, true, 'a holds /g, after the snapshot');
  const bc = (b.store as unknown as { engine: { client: Redis } }).engine.client;
  const closes = (n: number) => new Promise<void>((r) => bc.on('close', () => --n === 0 && r()));
  const reconnecting = new Promise<void>((r) => bc.once('reconnecting', () => r()));
  // The step is made while the client reconnects, and an attempt to connect is refused before the
  // engine is back (a close on which the unsent step must not fail: it was written nowhere).
  const refusedAttempt = closes(2);
  const restarted = server.restart({ whileDown: () => within(refusedAttempt, EVENT_BUDGET_MS, "b's client to be refused once while the engine is down") });
  await within(reconnecting, EVENT_BUDGET_MS, "b's client to wait to reconnect");
  t.equal(bc.status, 'reconnecting', "b's client is reconnecting: the step waits in its offline queue");
  const grant = b.store.commit({ file: '/g', base: 0, put: [{ id: 'b1', state: 'held', data: 'B g' }] });
  await restarted;
  const r = await grant;
  t.equal(r.ok, false, 'b is not granted /g, which a holds');
  t.ok(!r.ok && (r.reason === 'reset' || r.reason === 'grace'), `refused as a reset or by the grace period (${JSON.stringify(r)})`);
});

t.test('an ACL user that may not run INFO, or read the run: no run check, and every step still works', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const admin = await server.client();
  const kinds = ['inc', 'clock', 'grace', 'ttlmax', 's:*', 'own:*', 'at:*', 'sessions', 'sf:*', 'rp:*', 'files', 'r:*', 'm:*', 'l:*', 'e:*', 'w:*', 'in:*'];
  for (const [label, rights, keys] of [
    ['no INFO', ['+@all', '-info'], ['*']],
    ['no run key', ['+@all'], kinds],
  ] as const) {
    let url = '';
    const via = { get url() { return url; }, client: () => server.client() } as unknown as RedisServer;
    const c = await cluster('redis', [], via, { sessionTtlMs: 30_000 });
    const namespace = c.namespace;
    const user = `u-${namespace}`;
    await admin.call('ACL', 'SETUSER', user, 'on', '>pw', ...rights, ...keys.map((k) => `~{${namespace}}:${k}`));
    url = server.url.replace('://', `://${user}:pw@`);
    const a = await c.add('a');
    const put = await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] });
    t.equal(put.ok, true, `${label}: a step applies`);
    t.equal(await admin.exists(`{${namespace}}:run`), 0, `${label}: no run recorded`);
    await admin.script('FLUSH'); // the next step goes through the run check, which cannot be made
    const next = await a.store.commit({ file: '/f', base: put.ok ? put.version : 0, remove: ['a1'] });
    t.equal(next.ok, true, `${label}: the next step applies`);
    t.same(a.errors, [], `${label}: no error`);
    await c.close();
    t.equal(await admin.exists(`{${namespace}}:s:a`), 0, `${label}: the session ended`);
  }
});

t.test('a failover to a lagging replica behind a proxy that keeps the nodes connected: the promoted data is dropped, nothing is granted twice', { skip: noRedis }, async (t) => {
  const x = await RedisServer.start(FAST_SYNC);
  const y = await RedisServer.start(FAST_SYNC);
  t.teardown(() => Promise.all([x.stop(), y.stop()]));
  let primary = x;
  const proxy = await keepingProxy(() => primary);
  t.teardown(() => proxy.close());
  const via = { url: proxy.url, client: () => primary.client() } as unknown as RedisServer;
  const c = await cluster('redis', [], via, { sessionTtlMs: 30_000, graceMs: 2_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const b = await c.add('b');
  const ax = await x.client();
  const ay = await y.client();
  const P = `{${c.namespace}}:`;
  await ax.del(`${P}grace`);
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A f' }] })).ok, true, 'a holds /f');
  t.equal((await b.store.load('/f')).records.length, 1, "b's connection has had its run check");
  await replicate(ay, x);
  // The replica gets none of x's later writes (a lag, at its worst): it stops following x now,
  // which is also its promotion.
  await ay.replicaof('NO', 'ONE');
  t.equal((await a.store.commit({ file: '/g', base: 0, put: [{ id: 'a2', state: 'held', data: 'A g' }] })).ok, true, 'a holds /g, which y never got');
  // x dies; the proxy now leads to y, the nodes' connections kept.
  await x.stop();
  primary = y;
  t.equal(await ay.exists(`${P}r:/g`), 0, 'y has no /g');
  const grant = await b.store.commit({ file: '/g', base: 0, put: [{ id: 'b1', state: 'held', data: 'B g' }] });
  t.equal(grant.ok, false, 'b is not granted /g, which a holds');
  t.ok(!grant.ok && (grant.reason === 'reset' || grant.reason === 'grace' || grant.reason === 'unreachable'), `refused (${JSON.stringify(grant)})`);
});
