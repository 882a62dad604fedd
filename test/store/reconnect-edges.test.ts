/**
 * The Redis engine's calls across a reconnect (review of 545d2cc: a call is failed when the
 * connection it went out on closes, not at a refused attempt to connect), with real redis-servers.
 *
 * - A call made when the client still says 'ready' but its socket no longer takes writes (reset:
 *   destroyed, its close not yet come) waits in the client's
 *   offline queue and goes out on the next connection: the close of the one it never went out on
 *   must not answer it 'unreachable' while it is still to go out.
 * - A step that waited in the offline queue past requestTimeoutMs (the engine out of reach) was
 *   answered 'unreachable'; the client still sends it when the connection comes back. Past its
 *   deadline (Step.deadline) the engine refuses it; with none, it applies (the reply said it may).
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import type { Redis } from 'ioredis';
import { openStore, type NodeStore } from '../../src/store/index.js';
import { CutProxy } from './cut-proxy.js';
import { EVENT_BUDGET_MS, RedisServer, noRedis, within } from './redis-server.js';

const lock = (id: string) => ({ id, state: 'held' as const, data: id });
const clientOf = (s: NodeStore) => (s as unknown as { engine: { client: Redis } }).engine.client;

t.test("a call made in the socket's last moments (reset, the client still 'ready') goes out on the next connection and gets its reply", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const b = await openStore({ url: server.url, namespace: `t-${process.pid}-end`, node: 'b', sessionTtlMs: 60_000, requestTimeoutMs: 30_000 }, {}, { graceMs: 0 });
  t.teardown(() => b.close());
  const bc = clientOf(b);
  const sock = bc.stream as Socket;
  // The connection is reset (as by the network: the socket destroyed with ECONNRESET); the
  // client hears of it at the socket's close, a later turn of the loop. Until then it says
  // 'ready', and what is called meanwhile waits in its offline queue (the socket takes no writes).
  sock.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  const seen = { status: bc.status, writable: sock.writable };
  const made = b.commit({ file: '/f', base: 0, put: [lock('b1')] });
  t.same(seen, { status: 'ready', writable: false }, "the step is made while the client says 'ready' and its socket takes no writes");
  const reply = await within(made, EVENT_BUDGET_MS, "the step's reply");
  t.equal(reply.ok, true, `the step went out on the next connection and applied: not 'unreachable' before it went out (${JSON.stringify(reply)})`);
  t.same(
    (await b.load('/f')).records.map((r) => r.id),
    ['b1'],
    'b holds /f',
  );
});

t.test("a step answered 'unreachable' from the offline queue goes out when the connection is back: refused past its deadline, applied with none", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const proxy = await CutProxy.start(server.port);
  t.teardown(() => proxy.stop());
  const requestTimeoutMs = 1_000;
  const b = await openStore({ url: proxy.url, namespace: `t-${process.pid}-late`, node: 'b', sessionTtlMs: 60_000, requestTimeoutMs }, {}, { graceMs: 0 });
  t.teardown(() => b.close());
  const bc = clientOf(b);
  // A step first: the engine knows the commit script (a NOSCRIPT reply to a step that timed out
  // ends it there, nothing more is sent, and nothing below would apply).
  t.equal((await b.commit({ file: '/e', base: 0, put: [lock('b0')] })).ok, true, "b's connection is up, the commit script known");
  const reconnecting = new Promise<void>((r) => bc.once('reconnecting', () => r()));
  proxy.cut();
  await within(reconnecting, EVENT_BUDGET_MS, "b's client to wait to reconnect");
  // Its deadline: half the request's time from now, so that the 'unreachable' answer comes after it.
  const deadline = performance.timeOrigin + performance.now() + requestTimeoutMs / 2;
  const withDeadline = b.commit({ file: '/g', base: 0, put: [lock('b1')], deadline });
  const withNone = b.commit({ file: '/h', base: 0, put: [lock('b2')] });
  const [r1, r2] = await within(Promise.all([withDeadline, withNone]), EVENT_BUDGET_MS, 'both steps to be answered');
  t.match(r1, { ok: false, reason: 'unreachable' }, "the step with a deadline: 'unreachable' (no connection within requestTimeoutMs)");
  t.match(r2, { ok: false, reason: 'unreachable' }, "the step with none: 'unreachable'");
  t.equal(bc.status === 'ready', false, 'still no connection: both wait unsent in the offline queue');
  const ready = new Promise<void>((r) => bc.once('ready', () => r()));
  proxy.pass();
  await within(ready, EVENT_BUDGET_MS, "b's client to connect again");
  // Read on the same connection, behind what the offline queue sent.
  t.same((await b.load('/g')).records, [], 'the step past its deadline did not apply (the engine refused it as late)');
  t.same(
    (await b.load('/h')).records.map((r) => r.id),
    ['b2'],
    "the step with no deadline applied after its 'unreachable' answer (what that reply allows: its id shows in the next stale reply)",
  );
});
