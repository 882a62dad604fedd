/**
 * Review of `locksmith locks --store` (issue 13): an ACL user that may read but not run MULTI/EXEC
 * or TIME (a monitoring user: +@read, +eval_ro, +info, CLIENT SETNAME) lists the locks (the
 * records are read by EVAL_RO), but the session registry (MULTI, TIME, ZRANGE) is refused. The
 * listing must not then pass off every node as one "whose session is gone" (MOUNT '-') and say
 * nothing of late sessions in silence: it says on stderr that the registry could not be read.
 */
import t from 'tap';
import { noRedis } from '../store/redis-server.js';
import { runCli } from '../native/cli-proc.js';
import { lockSpace } from './locks-store-space.js';

const space = lockSpace(t, {
  prefix: 'la',
  node: 'b',
  serves: { host: 'host-b', mountpoint: '/mnt/b' },
  held: { path: '/f', pid: 202 },
  setup: async ({ server }) => {
    await (await server.client()).call('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '+@read', '+eval_ro', '+info', '+client|setname', '+ping');
  },
});
const NS = space.ns;

t.test('a user refused the registry: the locks listed, and said that MOUNT and late sessions are unknown', { skip: noRedis }, async (t) => {
  const { server } = space;
  const full = await runCli(['locks', '--store', server.url, '--namespace', NS, '--noheadings']);
  t.match(full.stdout, /host-b:\/mnt\/b/, "the default user: b's recorded mount");
  const r = await runCli(['locks', '--store', server.url.replace('redis://', 'redis://reader:pw@'), '--namespace', NS, '--noheadings']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^b +202 +posix +write +0 +9 +granted /, 'the lock, listed from the records');
  t.match(r.stderr, /session registry.*NOPERM/s, 'said on stderr: the registry was refused, and why');
});
