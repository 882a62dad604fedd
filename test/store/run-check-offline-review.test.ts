/**
 * Review of the run check for a step made while the socket takes no writes (reset, its close not
 * yet heard): such a call waits in the client's offline queue and goes out on the next connection,
 * behind a run check. Here: two steps made in that moment, a load() made in it, and how many run
 * checks the reconnect costs (counted with MONITOR on the test's own server).
 */
import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import type { Redis } from 'ioredis';
import { RUN_CHECK } from '../../src/store/lua.js';
import { cluster } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

/** A run check as MONITOR shows it (its script text escaped there, the source appended here): EVAL of RUN_CHECK's text with one key, the namespace's inc. */
const isCheck = (a: string[]): boolean => a[0]?.toLowerCase() === 'eval' && a.length === 6 && a[2] === '1' && String(a[3]).endsWith(':inc') && a[1]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').trim() === RUN_CHECK.trim();

/** Counts the run checks (EVAL of RUN_CHECK) the server is sent from now on. */
async function countChecks(t: Test): Promise<{ synced: () => Promise<void>; checks: () => number; scripts: () => string[] }> {
  const admin = await server.client();
  const mon = await admin.monitor();
  t.teardown(() => mon.disconnect());
  const seen: string[][] = [];
  mon.on('monitor', (_time: string, args: string[], source: string) => seen.push([...args, `@${source}`]));
  let n = 0;
  /** Resolves once MONITOR has shown everything the server ran before now (an ECHO of a fresh token is seen). */
  const synced = async (): Promise<void> => {
    const token = `synced-${++n}`;
    await admin.echo(token);
    while (!seen.some((a) => a[0]?.toLowerCase() === 'echo' && a[1] === token)) await new Promise((r) => setImmediate(r));
  };
  return {
    synced,
    checks: () => seen.filter((a) => isCheck(a)).length,
    scripts: () => seen.filter((a) => /^(eval|evalsha)$/i.test(a[0] ?? '')).map((a) => `${isCheck(a) ? 'check' : a[0]!.toLowerCase() === 'evalsha' ? `sha:${a[1]!.slice(0, 6)}` : `eval:${a[1]!.slice(0, 30)}`}${a.at(-1)}`),
  };
}

/** Node a of a new namespace, holding a lock of /f (a1). */
async function holding(t: Test) {
  const c = await cluster('redis', [], server, { sessionTtlMs: 10_000 });
  t.teardown(() => c.close());
  const a = await c.add('a');
  t.equal((await a.store.commit({ file: '/f', base: 0, put: [{ id: 'a1', state: 'held', data: 'A' }] })).ok, true);
  return { a, c };
}

const reset = (a: { store: unknown }): { ac: Redis; sock: Socket } => {
  const ac = (a.store as unknown as { engine: { client: Redis } }).engine.client;
  const sock = ac.stream as Socket;
  sock.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  return { ac, sock };
};

t.test("two steps made in the socket's last moments: both go out behind a run check, neither is refused for the check itself", { skip: noRedis }, async (t) => {
  const { a, c } = await holding(t);
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  await admin.set(`${P}run`, 'f'.repeat(40)); // another run's data
  const { ac, sock } = reset(a);
  const seen = { status: ac.status, writable: sock.writable };
  const [r1, r2] = await Promise.all([
    a.store.commit({ file: '/f2', base: 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] }),
    a.store.commit({ file: '/f3', base: 0, put: [{ id: 'a3', state: 'held', data: 'A 3' }] }),
  ]);
  t.same(seen, { status: 'ready', writable: false }, 'both made while the socket took no writes');
  t.match(r1, { ok: false, reason: 'reset' }, 'the first finds the data dropped');
  t.match(r2, { ok: false, reason: 'reset' }, 'the second too (it was not applied to the old run)');
  t.same((await a.store.load('/f')).records, [], 'the old records are gone');
});

t.test("two steps in the last moments, the run unchanged: both apply, once each", { skip: noRedis }, async (t) => {
  const { a } = await holding(t);
  const m = await countChecks(t);
  reset(a);
  const [r1, r2] = await Promise.all([
    a.store.commit({ file: '/f2', base: 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] }),
    a.store.commit({ file: '/f3', base: 0, put: [{ id: 'a3', state: 'held', data: 'A 3' }] }),
  ]);
  t.match(r1, { ok: true }, 'the first applies (same run: the check drops nothing)');
  t.match(r2, { ok: true }, 'the second applies');
  t.same((await a.store.load('/f')).records.map((r) => r.id), ['a1'], 'the old record kept');
  t.same((await a.store.load('/f2')).records.map((r) => r.id), ['a2'], 'a2 written');
  t.same((await a.store.load('/f3')).records.map((r) => r.id), ['a3'], 'a3 written');
  await m.synced();
  const seq = m.scripts().map((x) => x.replace(/@.*/, ''));
  t.equal(seq[0], 'check', `a run check went out first on the new connection (${seq.join(' ')})`);
});

t.test("a load() made in the socket's last moments reads after a run check: another run's data is not read", { skip: noRedis }, async (t) => {
  const { a, c } = await holding(t);
  const admin = await server.client();
  const P = `{${c.namespace}}:`;
  // The load script known to the server (else its NOSCRIPT path checks the run by itself).
  t.same((await a.store.load('/f')).records.map((r) => r.id), ['a1'], 'a1 read before');
  await admin.set(`${P}run`, 'f'.repeat(40));
  const { ac, sock } = reset(a);
  const seen = { status: ac.status, writable: sock.writable };
  const l = await a.store.load('/f');
  t.same(seen, { status: 'ready', writable: false }, 'made while the socket took no writes');
  t.same(l.records, [], "the load does not read the old run's records");
});

t.test('after the reconnect, steps and loads need no further run check: one check in all', { skip: noRedis }, async (t) => {
  const { a } = await holding(t);
  // Both scripts used below are known to the server before the reset (no NOSCRIPT path after it).
  let v = (await a.store.load('/f')).version;
  const m = await countChecks(t);
  reset(a);
  t.match(await a.store.commit({ file: '/f2', base: 0, put: [{ id: 'a2', state: 'held', data: 'A 2' }] }), { ok: true }, 'the step in the last moments applies');
  await m.synced();
  t.equal(m.checks(), 1, 'one run check went before the step made in the last moments');
  v = (await a.store.load('/f')).version;
  for (let i = 0; i < 3; i++) {
    const r = await a.store.commit({ file: '/f', base: v, put: [{ id: `n${i}`, state: 'held', data: `N ${i}` }] });
    t.equal(r.ok, true, `normal step ${i} applies`);
    if (r.ok) v = r.version;
  }
  await m.synced();
  // The check made for the offline step is answered on the new connection: it counts for it (it
  // was recorded under the close count of when it was made, and one more check followed).
  t.equal(m.checks(), 1, `no further run check on the new connection (${m.scripts().map((x) => x.replace(/@.*/, '')).join(' ')})`);
});
