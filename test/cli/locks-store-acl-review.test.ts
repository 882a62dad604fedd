/**
 * Review of `locksmith locks --store` (issue 13): an ACL user that may read but not run MULTI/EXEC
 * or TIME (a monitoring user: +@read, +eval_ro, +info, CLIENT SETNAME) lists the locks (the
 * records are read by EVAL_RO), but the session registry (MULTI, TIME, ZRANGE) is refused. The
 * listing must not then pass off every node as one "whose session is gone" (MOUNT '-') and say
 * nothing of late sessions in silence: it says on stderr that the registry could not be read.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { Redis } from 'ioredis';
import { F_SETLK, F_WRLCK, LockCoordinator } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { runCli } from '../native/cli-proc.js';
import { SERVES } from '../../src/store/options.js';

const NS = `la-${randomUUID().slice(0, 8)}`;

let server: RedisServer;
let admin: Redis;
let b: LockCoordinator;

t.before(async () => {
  if (noRedis) return;
  server = await RedisServer.start();
  admin = await server.client();
  b = await LockCoordinator.start({ workers: 1, store: { url: server.url, namespace: NS, sessionTtlMs: 3000, node: 'b', [SERVES]: { host: 'host-b', mountpoint: '/mnt/b' } } });
  t.equal((await b.lock({ path: '/f', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1, lockPid: 202 })).result, 0);
  await admin.call('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '+@read', '+eval_ro', '+info', '+client|setname', '+ping');
});
t.teardown(async () => {
  await b?.stop();
  admin?.disconnect();
  await server?.stop();
});

t.test('a user refused the registry: the locks listed, and said that MOUNT and late sessions are unknown', { skip: noRedis }, async (t) => {
  const full = await runCli(['locks', '--store', server.url, '--namespace', NS, '--noheadings']);
  t.match(full.stdout, /host-b:\/mnt\/b/, "the default user: b's recorded mount");
  const r = await runCli(['locks', '--store', server.url.replace('redis://', 'redis://reader:pw@'), '--namespace', NS, '--noheadings']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^b +202 +posix +write +0 +9 +granted /, 'the lock, listed from the records');
  t.match(r.stderr, /session registry.*NOPERM/s, 'said on stderr: the registry was refused, and why');
});
