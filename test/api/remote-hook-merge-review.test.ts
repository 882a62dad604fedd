/**
 * Review of issue 13 (a waiter granted by another node's step asks its own node's approval hook):
 * a POSIX waiter whose grant merges with its owner's other locks on the file. A veto refuses the
 * request; it must not take bytes the owner held before it asked (as a node alone: the hook is
 * asked before the lock is applied, so a vetoed upgrade keeps the read lock).
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';

const VETO = -13;

async function nodes(t: Test, veto: (e: LockEvent) => boolean) {
  const asked = { n: 0 };
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const namespace = `rhmerge-${randomUUID().slice(0, 8)}`;
  const store = (node: string) => ({ url: server.url, namespace, node, sessionTtlMs: 1000 });
  const a = await LockCoordinator.start({ workers: 1, store: store('a') });
  const b = await LockCoordinator.start({
    workers: 1,
    store: store('b'),
    onLock: (e: LockEvent) => {
      if (e.lockType === F_UNLCK || !veto(e)) return 0;
      asked.n++;
      return VETO;
    },
  });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return { a, b, asked };
}

async function waiting(c: LockCoordinator, path: string, n: number): Promise<void> {
  while ((await c.locks(path)).filter((e) => e.state === 'waiting').length < n) await new Promise((r) => setImmediate(r));
}

const lk = (c: LockCoordinator, path: string, owner: number, type: number, start: number, len: number, wait = false): Promise<number> =>
  c.lock({ path, lockType: type, lockStart: start, lockLen: len, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner }).then((r) => r.result);

const held = async (c: LockCoordinator, path: string, owner: number) =>
  (await c.locks(path)).filter((e) => e.state === 'granted' && String(e.owner) === String(owner)).map((e) => `${e.type} ${e.start}-${e.end}`);

t.test("posix: a vetoed upgrade (read -> write) granted by another node's release keeps the owner's read lock", {
  skip: noRedis,
}, async (t) => {
  let vetoing = false;
  const { a, b, asked } = await nodes(t, (e) => vetoing && e.lockOwner === 3 && e.lockType === F_WRLCK);
  const path = '/up';
  t.equal(await lk(b, path, 3, F_RDLCK, 0, 10), 0, 'b owner 3 reads [0,10)');
  t.equal(await lk(a, path, 2, F_RDLCK, 0, 10), 0, 'a owner 2 reads [0,10)');
  const up = lk(b, path, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 1);
  vetoing = true;
  t.equal(await lk(a, path, 2, F_UNLCK, 0, 10), 0, 'a unlocks');
  t.equal(await settles(up, "b's upgrade"), VETO, "b's upgrade gets its hook's code");
  t.equal(asked.n, 1, "b's hook was asked once for the grant by a's release");
  t.same(await held(b, path, 3), ['read 0-9'], "b's owner still holds the read lock it had before asking");
  t.equal(await lk(a, path, 5, F_WRLCK, 0, 10), -11, "a's write on those bytes conflicts with b's read lock");
});

t.test("posix: a vetoed extension (adjacent range) granted by another node's release keeps the owner's earlier bytes", {
  skip: noRedis,
}, async (t) => {
  let vetoing = false;
  const { a, b, asked } = await nodes(t, (e) => vetoing && e.lockOwner === 3 && e.lockStart === 10n);
  const path = '/adj';
  t.equal(await lk(b, path, 3, F_WRLCK, 0, 10), 0, 'b owner 3 writes [0,10)');
  t.equal(await lk(a, path, 2, F_WRLCK, 10, 10), 0, 'a owner 2 writes [10,20)');
  const ext = lk(b, path, 3, F_WRLCK, 10, 10, true);
  await waiting(b, path, 1);
  vetoing = true;
  t.equal(await lk(a, path, 2, F_UNLCK, 10, 10), 0, 'a unlocks');
  t.equal(await settles(ext, "b's extension"), VETO, "b's extension gets its hook's code");
  t.equal(asked.n, 1, "b's hook was asked once for the grant by a's release");
  t.same(await held(b, path, 3), ['write 0-9'], "b's owner still holds [0,10)");
  t.equal(await lk(a, path, 5, F_WRLCK, 0, 10), -11, "a's write on [0,10) conflicts with b's lock");
  t.equal(await lk(a, path, 5, F_WRLCK, 10, 10), 0, 'and [10,20) is free');
});

t.test("posix: a vetoed write over the owner's own read lock on part of the range keeps that read lock", {
  skip: noRedis,
}, async (t) => {
  let vetoing = false;
  const { a, b, asked } = await nodes(t, (e) => vetoing && e.lockOwner === 3 && e.lockType === F_WRLCK);
  const path = '/part';
  t.equal(await lk(b, path, 3, F_RDLCK, 0, 5), 0, 'b owner 3 reads [0,5)');
  t.equal(await lk(a, path, 2, F_WRLCK, 5, 5), 0, 'a owner 2 writes [5,10)');
  const w = lk(b, path, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 1);
  vetoing = true;
  t.equal(await lk(a, path, 2, F_UNLCK, 5, 5), 0, 'a unlocks');
  t.equal(await settles(w, "b's write"), VETO, "b's write gets its hook's code");
  t.equal(asked.n, 1, "b's hook was asked once for the grant by a's release");
  t.same(await held(b, path, 3), ['read 0-4'], "b's owner still holds its read lock on [0,5)");
});

t.test("ofd: a vetoed write over the owner's own read lock on part of the range keeps that read lock", {
  skip: noRedis,
}, async (t) => {
  let vetoing = false;
  const { a, b, asked } = await nodes(t, (e) => vetoing && e.lockOwner === 3 && e.lockType === F_WRLCK);
  const path = '/ofd';
  const ofd = (c: LockCoordinator, owner: number, type: number, start: number, len: number, wait = false) =>
    c.lock({ path, kind: 'ofd', lockType: type, lockStart: start, lockLen: len, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner }).then((r) => r.result);
  t.equal(await ofd(b, 3, F_RDLCK, 0, 5), 0, 'b OFD 3 reads [0,5)');
  t.equal(await ofd(a, 2, F_WRLCK, 5, 5), 0, 'a OFD 2 writes [5,10)');
  const w = ofd(b, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 1);
  vetoing = true;
  t.equal(await ofd(a, 2, F_UNLCK, 5, 5), 0, 'a unlocks');
  t.equal(await settles(w, "b's write"), VETO, "b's write gets its hook's code");
  t.equal(asked.n, 1, "b's hook was asked once for the grant by a's release");
  t.same(await held(b, path, 3), ['read 0-4'], "b's OFD still holds its read lock on [0,5)");
  t.equal(await ofd(a, 5, F_WRLCK, 0, 5), -11, "a's write on [0,5) conflicts with b's read lock");
});
