/**
 * Review of `locksmith locks --store` (issue 13): listed from a replica. An admin's read-only
 * query is naturally pointed at a replica (it holds the primary's data, in sync). SPACE_READ
 * judges the data's run with the replica's own run_id against the one the primary recorded, so a
 * healthy replica's listing is said on stderr, and with "stale": true in --json, to be data of an
 * earlier run that "the first node to reach the engine drops": false, nodes use the primary.
 * Fixed in SPACE_READ's runState: a replica whose replication ID is the one recorded holds the
 * primary's data set (a replica promoted since has a new replication ID: 'other', as nodes judge a
 * failover).
 */
import t from 'tap';
import { FAST_SYNC, RedisServer, noRedis, replicate } from '../store/redis-server.js';
import { runCli } from '../native/cli-proc.js';
import { lockSpace } from './locks-store-space.js';

let replica: RedisServer;

const space = lockSpace(t, {
  prefix: 'lr',
  node: 'a',
  settings: FAST_SYNC,
  held: { path: '/f', pid: 7 },
  setup: async ({ server: primary }) => {
    replica = await RedisServer.start();
    await replicate(await replica.client(), primary);
    // The lock has reached the replica (WAIT: every write so far acknowledged by it).
    t.equal(await (await primary.client()).wait(1, 0), 1, 'the replica has every write');
  },
  stop: () => replica?.stop(),
});
const NS = space.ns;

t.test('an in-sync replica: its listing is not said to be stale', { skip: noRedis }, async (t) => {
  const { server: primary } = space;
  const onPrimary = await runCli(['locks', '--store', primary.url, '--namespace', NS, '--json']);
  t.equal(JSON.parse(onPrimary.stdout).store.stale, false, 'the primary: not stale');
  const r = await runCli(['locks', '--store', replica.url, '--namespace', NS, '--json']);
  t.equal(r.status, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { store: { stale: boolean }; locks: { node: string; pid: number }[] };
  t.same(body.locks.map((l) => [l.node, l.pid]), [['a', 7]], 'the lock, from the replica');
  t.equal(body.store.stale, false, 'not stale');
  t.notMatch(r.stderr, /another run of its server/, 'not said to be of another run');
});
