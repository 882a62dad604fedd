/**
 * The engine comes back with data older than what nodes were told had committed: redis-server
 * restarted from an RDB snapshot (Debian's default persistence) or an AOF that missed the last
 * writes, or a failover promoted a replica that lagged. The incarnation key is still there, so
 * nothing looked lost, and a step decided on the older state could grant bytes another node was
 * told it holds. Now any data written under another run of the engine (redis-server's run_id) is
 * dropped before a step applies to it: nodes hear 'reset', re-assert in the grace period, and
 * nothing is granted twice. A new run with the same data (SCRIPT FLUSH: the same process) keeps
 * everything; an incarnation written before the run was recorded adopts the run.
 */
import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import type { Redis } from 'ioredis';
import type { ReassertReply, SessionEvent } from '../../src/store/index.js';
import { RUN_CHECK } from '../../src/store/lua.js';
import { cluster, Feed } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

t.test('a restart from an older snapshot: the writes after it are not trusted, nothing is granted twice', { skip: noRedis }, async (t) => {
  // A long TTL: no node is fenced while the engine restarts (a fenced node refuses steps itself).
  const c = await cluster('redis', [], server, { sessionTtlMs: 10_000, graceMs: 2_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const b = await c.add('b');
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  await admin.del(`${P}grace`); // the first start's grace period: not what this test is about
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A f' }] })).ok, true, 'a holds /f');
  t.equal(await admin.save(), 'OK', 'a snapshot (dump.rdb) with /f only');
  t.equal((await a.store.commit({ file: '/g', base: 0, put: [{ id: 'a2', state: 'held', data: 'A g' }] })).ok, true, 'a holds /g, after the snapshot');
  const before = a.store.session();

  // a re-asserts both locks as soon as it hears of the reset.
  const reasserted = new Feed<[SessionEvent, ReassertReply[]]>();
  void a.session.next('a to hear of the reset', (e: SessionEvent) => e.kind === 'reset').then(async (e) => {
    reasserted.push([e, [await a.store.reassert('/f', [{ id: 'a1', state: 'held', data: 'A f' }]), await a.store.reassert('/g', [{ id: 'a2', state: 'held', data: 'A g' }])]]);
  });

  // kill -9 and the same port again: the server loads dump.rdb, where /g is free.
  await server.restart({ fromSnapshot: true });
  const engine = await server.client();
  t.equal(await engine.exists(`${P}inc`), 1, 'the snapshot brought the incarnation back: the data does not look lost');

  // b decides on what the engine now holds: /g free. Granted, a and b would both hold /g.
  const grant = await b.store.commit({ file: '/g', base: 0, put: [{ id: 'b1', state: 'held', data: 'B g' }] });
  t.equal(grant.ok, false, "b is not granted /g: the engine's data is older than its run");
  t.ok(!grant.ok && (grant.reason === 'reset' || grant.reason === 'grace'), `refused as a reset or by the grace period (${JSON.stringify(grant)})`);

  const [ra, [rf, rg]] = await reasserted.next('a to hear of the reset and re-assert');
  t.match(ra, { kind: 'reset', lost: before.epoch });
  t.not(a.store.session().incarnation, before.incarnation, 'a new incarnation');
  t.equal(rf!.ok, true, 'a1 re-asserted');
  t.equal(rg!.ok, true, 'a2 re-asserted');

  await b.session.next('b to hear of the reset', (e) => e.kind === 'reset');
  const g = await b.store.load('/g');
  t.same(
    g.records.map((r) => [r.id, r.node, r.state]),
    [['a2', 'a', 'held']],
    "/g holds a's lock only",
  );
  const again = await b.store.commit({ file: '/g', base: g.version, remove: ['a2'], put: [{ id: 'b2', state: 'held', data: 'B g' }] });
  t.match(again, { ok: false, reason: 'grace' }, 'a grant in the grace period is refused');
  t.same(
    (await b.store.load('/g')).records.map((r) => [r.id, r.node]),
    [['a2', 'a']],
    'one holder of /g throughout: a',
  );
  t.same(b.errors, [], 'no error on b');
});

t.test('SCRIPT FLUSH: the same run of the engine, nothing dropped', { skip: noRedis }, async (t) => {
  const c = await cluster('redis', [], server, { sessionTtlMs: 10_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  const put = await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] });
  t.equal(put.ok, true);
  await admin.script('FLUSH');
  const next = await a.store.commit({ file: '/f', base: put.ok ? put.version : 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] });
  t.equal(next.ok, true, 'the next step applies: the engine loads the script again');
  t.same(
    (await a.store.load('/f')).records.map((r) => r.id).sort(),
    ['a1', 'a2'],
  );
  t.equal(a.session.seen.some((e) => e.kind === 'reset' || e.kind === 'lost'), false, 'no reset');
  t.equal(typeof (await admin.get(`${P}run`)), 'string', 'the run is recorded');
});

t.test("an incarnation written before the run was recorded adopts the engine's run", { skip: noRedis }, async (t) => {
  const c = await cluster('redis', [], server, { sessionTtlMs: 10_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  const put = await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] });
  t.equal(put.ok, true);
  const run = await admin.get(`${P}run`);
  t.match(run, /^[0-9a-f]{40} [0-9a-f]{40}$/, "OPEN recorded the engine's run_id and replication ID");
  await admin.del(`${P}run`);
  await admin.script('FLUSH'); // the next step goes through the run check
  const next = await a.store.commit({ file: '/f', base: put.ok ? put.version : 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] });
  t.equal(next.ok, true, 'the step applies');
  t.equal(await admin.get(`${P}run`), run, 'the run is recorded again, the same');
  t.equal((await a.store.load('/f')).records.length, 2, 'nothing dropped');
});

t.test('a run recorded by another server process: every key of the namespace goes, none of another namespace', { skip: noRedis }, async (t) => {
  const c = await cluster('redis', [], server, { sessionTtlMs: 10_000 });
  const other = await cluster('redis', [], server, { sessionTtlMs: 10_000 });
  t.teardown(() => Promise.all([c.close(), other.close()]));
  const a = await c.add('a');
  const o = await other.add('o');
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] })).ok, true);
  t.equal((await o.store.commit({ file: '/f', base: 0, put: [{ id: 'o1', state: 'held', data: 'O' }] })).ok, true);
  // As a failover leaves it: the data says another server process wrote it.
  await admin.set(`${P}run`, 'f'.repeat(40));
  await admin.script('FLUSH');
  const r = await a.store.commit({ file: '/f2', base: 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] });
  t.match(r, { ok: false, reason: 'reset' }, "a's next step is refused: the data it was decided on is gone");
  await a.session.next('a to hear of the reset', (e) => e.kind === 'reset');
  t.same((await a.store.load('/f')).records, [], "a's old records are gone (nothing re-asserted them)");
  t.same(
    (await o.store.load('/f')).records.map((x) => x.id),
    ['o1'],
    'the other namespace keeps its data',
  );
  t.equal(o.session.seen.some((e) => e.kind === 'reset'), false, 'and hears of no reset');
});

/**
 * Node a holds a lock of /f; then the engine's data says another run wrote it, as a failover behind
 * a proxy, or a Redis that keeps its scripts, leaves it: the scripts known. Only a dropped
 * connection says the server may have changed.
 */
async function anotherRun(t: Test) {
  const c = await cluster('redis', [], server, { sessionTtlMs: 10_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const admin = await server.client();
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] })).ok, true);
  await admin.set(`{${c.namespace}}:run`, 'f'.repeat(40));
  return { a, admin };
}

t.test('a reconnect checks the run before the next step, even where the engine still knows the scripts', { skip: noRedis }, async (t) => {
  const { a, admin } = await anotherRun(t);
  const list = String(await admin.client('LIST'));
  const ids = [...list.matchAll(/id=(\d+) .*name=locksmith-store-/g)].map((m) => m[1]!);
  t.ok(ids.length > 0, "a's engine connection found");
  for (const id of ids) await admin.client('KILL', 'ID', id);
  let r = await a.store.commit({ file: '/f2', base: 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] });
  // The kill may reach the step first: the connection then closed under it ('unreachable').
  if (!r.ok && r.reason === 'unreachable') r = await a.store.commit({ file: '/f2', base: 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] });
  t.match(r, { ok: false, reason: 'reset' }, 'the step after the reconnect finds the data dropped');
  t.same((await a.store.load('/f')).records, [], 'the old records are gone');
});

t.test("a step made in the socket's last moments (reset, the client still 'ready') goes out on the next connection behind a run check", { skip: noRedis }, async (t) => {
  const { a } = await anotherRun(t);
  const ac = (a.store as unknown as { engine: { client: Redis } }).engine.client;
  const sock = ac.stream as Socket;
  // The socket reset (its close not yet come): the client says 'ready', a call made now waits in
  // its offline queue and goes out on the next connection, a new one that may reach another server
  // process. (The kill above can leave this shape too: its FIN read before the client's close.)
  sock.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  const seen = { status: ac.status, writable: sock.writable };
  const r = await a.store.commit({ file: '/f2', base: 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] });
  t.same(seen, { status: 'ready', writable: false }, "the step was made while the client said 'ready' and its socket took no writes");
  t.match(r, { ok: false, reason: 'reset' }, 'the step finds the data dropped: a run check went out before it');
  t.same((await a.store.load('/f')).records, [], 'the old records are gone');
});

t.test("the drop leaves no key of the namespace: files, waiters' edges, sessions (live, dead, reaped), inboxes", { skip: noRedis }, async (t) => {
  const c = await cluster('redis', [], server, { sessionTtlMs: 10_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const b = await c.add('b');
  const d = await c.add('d');
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  const f = await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] });
  t.equal(f.ok, true);
  const w = await b.store.commit({ file: '/f', base: f.ok ? f.version : 0, put: [{ id: 'b1', state: 'waiting', requestId: 'rb', data: 'B waits' }], edges: [{ waiter: 'b1', owner: 'b:1', hard: ['a:1'], check: true }] });
  t.equal(w.ok, true, "b waits for a, with its wait-for edge");
  t.equal((await d.store.commit({ file: '/g', base: 0, put: [{ id: 'd1', state: 'held', data: 'D' }] })).ok, true);
  // d's session dies and a step removes its lock (what the reaper does): rp:<d|epoch> is kept.
  await c.expire('d');
  const g = await a.store.load('/g');
  t.equal((await a.store.commit({ file: '/g', base: g.version, remove: ['d1'], notify: [] })).ok, true, "d's dead lock removed");
  const before = await admin.keys(`${P}*`);
  for (const k of ['inc', 'run', 'clock', 'files', 'sessions', 'r:/f', 'm:/f', 'l:/f', 'e:/f', 'w:b:1', 's:a', 'own:a', 'in:a']) t.ok(before.includes(P + k), `${k} was there`);
  t.ok(before.some((k) => k.startsWith(`${P}rp:d|`)), "d's reaped records were kept");
  const otherKey = `not-${c.namespace}`;
  await admin.set(otherKey, 'kept');
  t.teardown(() => admin.del(otherKey));
  await admin.set(`${P}run`, 'f'.repeat(40));
  await c.close(); // no renewal may reopen a session in between
  // The nodes' ENDs (the first of this namespace's own scripts on this server process) may have
  // gone through the run check already; either way the data is dropped before any END applies.
  t.ok([0, 1].includes(Number(await admin.eval(RUN_CHECK, 1, `${P}inc`, P))), 'the run check');
  t.equal(await admin.exists(`${P}inc`), 0, 'the run check dropped the data');
  // Left: what a dead session that already left the registry kept (no index names it any more):
  // its opener's key and its reaped records expire by themselves, and its inbox is emptied by the
  // node's next OPEN; none is read under the new incarnation's sessions (new epochs).
  const left = (await admin.keys(`${P}*`)).map((k) => k.slice(P.length)).sort();
  t.same(left, ['in:d', 'own:d', `rp:${left.find((k) => k.startsWith('rp:d|'))?.slice(3)}`].sort(), "only the dead session's own keys are left");
  for (const k of left.filter((k) => !k.startsWith('in:'))) t.ok((await admin.pttl(P + k)) > 0, `${k} expires by itself`);
  t.notOk(left.some((k) => /^(inc|run|clock|files|sessions|[rmle]:|w:|s:|sf:)/.test(k)), 'nothing of the incarnation, its files or its live sessions');
  t.equal(await admin.get(otherKey), 'kept', 'a key outside it is');
  t.equal(await admin.eval(RUN_CHECK, 1, `${P}inc`, P), 0, 'nothing to drop the second time');
});
