/**
 * What steps remove of a dead session (rp:<node>|<epoch>), on Redis: many files read in small
 * pages (the hash past its listpack size: HSCAN pages), records whose data JSON escapes
 * (quotes, backslashes, slashes, control and non-ASCII characters) read back byte for byte, and a
 * live node's own unlocks keep nothing and ask nothing more of the engine (no GET beyond the
 * session's MGET: the step's own session is known alive).
 */
import { Redis } from 'ioredis';
import t from 'tap';
import { RedisEngine, type CommitReply } from '../../src/store/index.js';
import { cluster } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer | undefined;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const version = (r: CommitReply): number => {
  if (!r.ok) throw new Error(`refused: ${JSON.stringify(r)}`);
  return r.version;
};

const AWKWARD = `{"q":"\\"quoted\\" / back\\\\slash","c":"\u0001\u001f\u007f","u":"é漢字😀","pipe":"a|b|c","long":"${'x'.repeat(200)}"}`;

t.test('redis: 300 reaped files read by pages of 7, data byte for byte', { skip: noRedis }, async (t) => {
  const c = await cluster('redis', ['a', 'b'], server);
  t.teardown(() => c.close());
  const [a, b] = c.nodes.map((n) => n.store);
  const engine = await RedisEngine.connect({ url: server!.url, shownUrl: server!.url, namespace: c.namespace, requestTimeoutMs: 30_000 });
  t.teardown(() => engine.shutdown());
  const { epoch, incarnation } = a!.session();
  const files = Array.from({ length: 300 }, (_, i) => `/f${i}`);
  for (const f of files) version(await a!.commit({ file: f, base: 0, put: [{ id: `${f}-1`, state: 'held', data: `${AWKWARD}${f}` }, { id: `${f}-2`, state: 'held', data: AWKWARD }] }));
  await c.expire('a');
  for (;;) {
    const r = await b!.reap();
    const dead = r.dead.filter((d) => d.node === 'a');
    if (dead.length === 0) break;
    for (const d of dead) for (const f of d.files) version(await b!.commit({ file: f.file, base: f.version, remove: f.records.map((x) => x.id) }));
  }
  const seen = new Map<string, Map<string, string>>();
  let cursor = '0';
  let pages = 0;
  do {
    const p = await engine.sessionFiles({ node: 'a', epoch, incarnation }, cursor, 7);
    if (p === 'reset') throw new Error('reset');
    pages++;
    for (const f of p.files) {
      const m = seen.get(f.file) ?? new Map<string, string>();
      for (const r of f.records) m.set(r.id, r.data);
      seen.set(f.file, m);
    }
    cursor = p.cursor;
  } while (cursor !== '0' && pages < 10_000);
  t.ok(pages > 2, `read in several pages (${pages})`);
  t.equal(seen.size, 300, 'every reaped file');
  let exact = 0;
  for (const f of files) if (seen.get(f)?.get(`${f}-1`) === `${AWKWARD}${f}` && seen.get(f)?.get(`${f}-2`) === AWKWARD) exact++;
  t.equal(exact, 300, 'every record with its data as written');
});

t.test("redis: a live node's own lock and unlock keep nothing, and ask no GET", { skip: noRedis }, async (t) => {
  const c = await cluster('redis', ['a'], server);
  t.teardown(() => c.close());
  const [a] = c.nodes.map((n) => n.store);
  const admin = new Redis(server!.url);
  t.teardown(() => admin.quit());
  const gets = async (): Promise<number> => {
    const info = await admin.info('commandstats');
    const m = /cmdstat_get:calls=(\d+)/.exec(info);
    return m === null ? 0 : Number(m[1]);
  };
  let v = 0;
  // Warm the script cache first (a first EVALSHA may be refused NOSCRIPT and sent again).
  v = version(await a!.commit({ file: '/w', base: v, put: [{ id: 'w0', state: 'held', data: 'd' }] }));
  v = version(await a!.commit({ file: '/w', base: v, put: [{ id: 'w1', state: 'held', data: 'd' }] }));
  const before = await gets();
  for (let i = 0; i < 20; i++) {
    v = version(await a!.commit({ file: '/w', base: v, put: [{ id: `x${i}`, state: 'held', data: 'd' }] }));
    v = version(await a!.commit({ file: '/w', base: v, remove: [`x${i}`] }));
  }
  const after = await gets();
  t.equal(after - before, 0, 'no GET in 40 live steps');
  const keys = await admin.keys(`{${c.namespace}}:rp:*`);
  t.same(keys, [], 'no rp: key');
});
