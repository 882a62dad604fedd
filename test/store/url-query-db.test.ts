/**
 * A database named in the URL's query (`?db=N`, which a URL may carry) is checked as the path's
 * `/N` is: the client selects it on connect but does not fail when the engine refuses it, and then
 * serves database 0 (the lock space of every node whose URL names no database) quietly. And a
 * query that names a parameter twice is refused: the client takes the last, the checks read the first.
 */
import t from 'tap';
import { openStore } from '../../src/store/index.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

t.test("a database the engine does not have, named in the query: refused as the path's is", { skip: noRedis }, async (t) => {
  // 16 databases by default: 20 is none of them.
  for (const url of [`${server.url}?db=20`, `${server.url}/?db=20`]) {
    let err: Error | undefined;
    try {
      const s = await openStore({ url, requestTimeoutMs: 5_000 });
      await s.close();
    } catch (e) {
      err = e as Error;
    }
    t.match(err?.message, /has no such database/, `${url}: an Error saying there is no such database (${err?.message ?? 'it opened, on database 0'})`);
  }
  // The server's one admin client (kept by the server, not closed here).
  const admin = await server.client();
  t.same(await admin.dbsize(), 0, 'nothing was written to database 0');
});

t.test('a database the engine has, named in the query: the lock space is there', { skip: noRedis }, async (t) => {
  const admin = await server.client();
  await admin.flushall();
  const s = await openStore({ url: `${server.url}?db=3`, requestTimeoutMs: 5_000 });
  await s.close();
  t.same(await admin.dbsize(), 0, 'nothing in database 0');
  await admin.select(3);
  t.ok((await admin.dbsize()) > 0, "the lock space's keys are in database 3");
  await admin.select(0);
});

t.test('a parameter named twice in the query is refused, naming it', async (t) => {
  for (const url of ['redis://127.0.0.1:1?db=1&db=20', 'redis://127.0.0.1:1/0?family=4&family=6']) {
    let err: Error | undefined;
    try {
      await openStore({ url, requestTimeoutMs: 1_000 });
    } catch (e) {
      err = e as Error;
    }
    t.match(err?.message, /malformed URL .*: query parameter '(db|family)' is given twice/, `${url} (${err?.message})`);
  }
});

t.test('a user or password in the query beside credentials before the host is refused: the client would ignore it', async (t) => {
  // The client reads the query's username and password only when the URL has neither before its
  // host: redis://:pw@h?username=u would authenticate as the default user, not u.
  for (const [url, k] of [
    ['redis://:s3cret@127.0.0.1:1?username=u', 'username'],
    ['redis://u@127.0.0.1:1?password=s3cret', 'password'],
    ['redis://u:s3cret@127.0.0.1:1/0?password=other', 'password'],
  ] as const) {
    let err: Error | undefined;
    try {
      await openStore({ url, requestTimeoutMs: 1_000 });
    } catch (e) {
      err = e as Error;
    }
    t.match(err?.message, new RegExp(`malformed URL .*: query parameter '${k}' beside a user or password before the host`), `${url.replace(/s3cret|other/g, '…')} (${err?.message})`);
    t.notOk(err?.message.includes('s3cret') || err?.message.includes('other'), 'no password in the error');
  }
  // Either alone is taken.
  for (const url of ['redis://127.0.0.1:1?username=u&password=s3cret', 'redis://u:s3cret@127.0.0.1:1']) {
    const err = await openStore({ url, requestTimeoutMs: 1_000 }).then(
      (s) => s.close().then(() => undefined),
      (e: Error) => e,
    );
    t.notMatch(err?.message ?? '', /malformed URL/, `${url.replace(/s3cret/g, '…')}: not refused as written (${err?.message})`);
  }
});
