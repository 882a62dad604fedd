/**
 * The inbox on a real engine: an event written while a node's inbox connection is down (killed
 * with CLIENT KILL and kept from reconnecting) arrives once it is back, resumed from the last id;
 * and a node with a blocked waiter sends the engine nothing but its session renewals (MONITOR
 * sees no XREAD again, no other script).
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { RENEW } from '../../src/store/lua.js';
import { cluster, Feed } from './fixture.js';
import { keyEvents } from './keyevents.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

t.test('an event sent while the inbox connection is down arrives after the reconnect', { skip: noRedis }, async (t) => {
  const c = await cluster('redis', [], server);
  t.teardown(() => c.close());
  // MONITOR first: the XREAD of a's reader reaching the engine is the event that says it blocks.
  const admin = await server.client();
  const monitor = await admin.monitor();
  t.teardown(() => monitor.disconnect());
  const commands = new Feed<string[]>();
  monitor.on('monitor', (_time: string, args: string[]) => commands.push(args));
  const na = await c.add('a');
  const nb = await c.add('b');
  const a = na.store;
  const b = nb.store;
  const inbox = `{${c.namespace}}:in:a`;
  await commands.next("a's reader to block in XREAD", (args) => args[0]?.toLowerCase() === 'xread' && args.includes(inbox));
  const v1 = await b.commit({ file: '/i', base: 0, put: [{ id: 'b1', state: 'held', data: 'b1' }] });
  if (!v1.ok) throw new Error(JSON.stringify(v1));
  const v2 = await a.commit({ file: '/i', base: v1.version, put: [{ id: 'a1', state: 'waiting', requestId: 'ra', data: 'a1' }] });
  if (!v2.ok) throw new Error(JSON.stringify(v2));
  const aEpoch = a.session().epoch;

  // Cut a's reader off: with a password set, the connections already open stay in, a's
  // reconnection attempts do not.
  const name = (a.inboxReader() as unknown as { connectionName: string }).connectionName;
  const line = ((await admin.client('LIST')) as string).split('\n').find((l) => l.includes(`name=${name} `));
  t.match(line, /cmd=xread/, "a's inbox connection is blocked in XREAD");
  const id = /\bid=(\d+)/.exec(line!)![1]!;
  await admin.config('SET', 'requirepass', 'locksmith-test');
  t.teardown(() => admin.config('SET', 'requirepass', ''));
  t.equal(await admin.client('KILL', 'ID', id), 1, "a's inbox connection killed");

  const grant = await b.commit({
    file: '/i',
    base: v2.version,
    remove: ['b1'],
    put: [{ id: 'a1', state: 'held', data: 'a1', node: 'a', epoch: aEpoch }],
    notify: [{ node: 'a', epoch: aEpoch, requestId: 'ra', kind: 'granted' }],
  });
  t.equal(grant.ok, true, "b releases and grants a's waiter");
  const list = (await admin.client('LIST')) as string;
  t.notMatch(list, new RegExp(`name=${name} `), "the event was written while a's inbox connection was gone");
  t.equal(na.events.seen.length, 0, 'not delivered yet');

  await admin.config('SET', 'requirepass', '');
  const e = await na.events.next('the grant event once the inbox reconnects');
  t.match(e, { file: '/i', requestId: 'ra', kind: 'granted', from: 'b', epoch: aEpoch, version: grant.ok ? grant.version : -1 });
  t.equal(na.events.seen.length, 1, 'delivered once');
});

t.test('a blocked waiter costs the engine nothing beyond the session renewals', { skip: noRedis }, async (t) => {
  const c = await cluster('redis', [], server);
  t.teardown(() => c.close());
  const na = await c.add('a', { sessionTtlMs: 1_200 });
  const nb = await c.add('b', { sessionTtlMs: 1_200 });
  const v1 = await nb.store.commit({ file: '/q', base: 0, put: [{ id: 'b1', state: 'held', data: '' }] });
  if (!v1.ok) throw new Error(JSON.stringify(v1));
  const v2 = await na.store.commit({ file: '/q', base: v1.version, put: [{ id: 'a1', state: 'waiting', requestId: 'r', data: '' }] });
  t.equal(v2.ok, true, 'a waits');
  // Both inbox readers are blocked once the first renewal of each has gone by.
  const ke = await keyEvents(server);
  t.teardown(ke.close);
  const key = (n: string) => `{${c.namespace}}:s:${n}`;
  await ke.feed.next('a renewal of a', (e) => e.event === 'set' && e.key === key('a'));
  await ke.feed.next('a renewal of b', (e) => e.event === 'set' && e.key === key('b'));

  const monitor = await (await server.client()).monitor();
  t.teardown(() => monitor.disconnect());
  const seen = new Feed<string[]>();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (!source.startsWith('lua')) seen.push(args);
  });
  const renew = createHash('sha1').update(RENEW).digest('hex');
  // EVALSHA sha numkeys inc prefix incarnation node ...
  const isRenewal = (args: string[], node?: string) => args[0]?.toLowerCase() === 'evalsha' && args[1] === renew && (node === undefined || args[6] === node);
  for (let i = 0; i < 3; i++) {
    await seen.next(`renewal ${i + 1} of a`, (args) => isRenewal(args, 'a'));
    await seen.next(`renewal ${i + 1} of b`, (args) => isRenewal(args, 'b'));
  }
  t.same(
    seen.seen.filter((args) => !isRenewal(args)),
    [],
    'nothing but renewals: no XREAD again, no polling',
  );
});
