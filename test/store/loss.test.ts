/**
 * The engine loses its data (kill -9, restart without persistence): nodes learn it from their
 * next renewal, open sessions in the new incarnation, and a node that was live re-asserts what it
 * held during the grace period, in which no grant is made; a node that was fenced re-asserts
 * nothing (its locks count as lost); after the grace period, grants resume and a late
 * re-assertion is refused. Nothing is granted twice.
 */
import t from 'tap';
import type { ReassertReply, SessionEvent } from '../../src/store/index.js';
import { cluster, Feed } from './fixture.js';
import { EVENT_BUDGET_MS, RedisServer, noRedis, until } from './redis-server.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

t.test('restart without persistence: reset, re-assertion in grace, no conflicting grant, late refused', { skip: noRedis }, async (t) => {
  const ttl = 1_000;
  const graceMs = 4_000;
  const c = await cluster('redis', [], server, { sessionTtlMs: ttl, graceMs });
  t.teardown(() => c.close());
  const a = await c.add('a');
  const b = await c.add('b');
  // c renews only after three TTLs: by the time it hears of the loss, it is fenced.
  const cn = await c.add('c', { renewEveryMs: 3 * ttl });
  const admin = await server.client();
  await admin.del(`{${c.namespace}}:grace`); // the first start's grace period: not what this test is about
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A [0,10)' }] })).ok, true, 'a holds /f');
  t.equal((await a.store.commit({ file: '/w', base: 0, put: [{ id: 'a2', state: 'waiting', requestId: 'ra', data: 'A waits' }] })).ok, true, 'a waits on /w');
  t.equal((await cn.store.commit({ file: '/g', base: 0, put: [{ id: 'c1', state: 'held', data: 'C' }] })).ok, true, 'c holds /g');
  const oldA = a.store.session();

  // a re-asserts what it holds as soon as it hears of the reset.
  const reasserted = new Feed<[SessionEvent, ReassertReply[]]>();
  void a.session.next('a to hear of the reset', (e: SessionEvent) => e.kind === 'reset').then(async (e) => {
    reasserted.push([e, [await a.store.reassert('/f', [{ id: 'a1', state: 'held', data: 'A [0,10)' }]), await a.store.reassert('/w', [{ id: 'a2', state: 'waiting', requestId: 'ra', data: 'A waits' }])]]);
  });

  await server.restart();

  const [ra, [rf, rw]] = await reasserted.next('a to hear of the reset and re-assert');
  t.match(ra, { kind: 'reset', lost: oldA.epoch });
  t.ok(ra.kind === 'reset' && ra.epoch > 0 && ra.graceMs > 0 && ra.graceMs <= graceMs, 'a new session, inside the grace period');
  t.not(a.store.session().incarnation, oldA.incarnation, 'a new incarnation');
  t.equal(rf!.ok, true, 'a1 re-asserted');
  t.equal(rw!.ok, true, 'a2 re-asserted');
  const f = await b.store.load('/f');
  t.same(
    f.records.map((r) => [r.id, r.node, r.epoch, r.state, r.data]),
    [['a1', 'a', a.store.session().epoch, 'held', 'A [0,10)']],
    "a's lock is back, under its new session",
  );

  // b hears of the reset too; no grant during the grace period, whatever b decides.
  const rb = await b.session.next('b to hear of the reset', (e) => e.kind === 'reset');
  const grant = await b.store.commit({ file: '/f', base: f.version, remove: ['a1'], put: [{ id: 'b1', state: 'held', data: 'B' }] });
  t.match(grant, { ok: false, reason: 'grace' }, 'refused: grace');
  const waiter = await b.store.commit({ file: '/f', base: f.version, put: [{ id: 'b2', state: 'waiting', requestId: 'rb', data: 'B waits' }] });
  t.equal(waiter.ok, true, 'queuing is fine');

  // c was fenced when it heard: it re-asserts nothing, its lock is lost.
  const lc = await cn.session.next('c to hear', (e) => e.kind === 'lost' || e.kind === 'reset');
  t.equal(lc.kind, 'lost', 'c was fenced: lost, not reset');
  // 'expired': c counted its session lost by itself, a TTL after its last renewal, whichever
  // came first of that and its renewal's news of the reset.
  t.same(
    cn.session.seen.map((e) => e.kind).filter((k) => k !== 'expired'),
    ['fenced', 'lost'],
  );
  t.same(await b.store.load('/g'), { version: 0, records: [] }, "c's lock is not in the new incarnation");

  // The grace period ends; grants resume, late re-assertions are refused.
  // The end of this period, under b's new session: b's first start had its own grace period, which
  // may have ended (its event) only after the test had started.
  await b.session.next('the grace period to end on b', (e) => e.kind === 'grace-ended' && e.epoch === rb.epoch);
  t.equal(b.store.session().grace, false);
  // A node's view of the period ends first (it counts from when it asked, the engine from when it
  // answered; session.test.ts): the engine's own end is the key's, asked every 10 ms.
  const engine = await server.client(); // the restart closed the first one
  await until(async () => (await engine.exists(`{${c.namespace}}:grace`)) === 0, EVENT_BUDGET_MS, "the engine's grace key to go");
  const f2 = await b.store.load('/f');
  const after = await b.store.commit({ file: '/f2', base: 0, put: [{ id: 'b3', state: 'held', data: 'B elsewhere' }] });
  t.match(after, { ok: true }, 'a grant after the grace period');
  t.same(await a.store.reassert('/g', [{ id: 'a9', state: 'held', data: 'A late' }]), { ok: false, reason: 'late' }, 'a late re-assertion is refused');
  t.same(
    (await b.store.load('/f')).records.map((r) => [r.id, r.node, r.state]),
    f2.records.map((r) => [r.id, r.node, r.state]),
  );
  t.same(
    f2.records.map((r) => [r.id, r.node, r.state]),
    [
      ['a1', 'a', 'held'],
      ['b2', 'b', 'waiting'],
    ],
    'one holder of /f throughout: a',
  );
});
