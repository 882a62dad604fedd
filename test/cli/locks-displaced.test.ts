/**
 * `locksmith locks` (listed()) with a mount displaced from its node's name: another process opened
 * a session under the same --node, so the locks the engine lists under that node are the new
 * session's. Each is listed once, under the mount that holds the name now (an answer's, or the
 * one its session recorded on this machine), in whichever order the mounts answer; never under
 * the displaced mount. Canned answers, no mount (the whole path: test/review/same-node-listing-user-review).
 */
import { hostname } from 'node:os';
import t from 'tap';
import { listed, type Answer } from '../../src/locks-cli.js';

const lock = (pid: number, path: string) => ({
  pid,
  kind: 'flock',
  type: 'write',
  start: '0',
  end: '9223372036854775807',
  state: 'granted',
  path,
  dev: null,
  ino: '7',
  key: 'ino:7',
  owner: String(pid),
  node: 'b',
  epoch: 2,
});
const sessions = [
  { node: 'b', epoch: 1, expiresInMs: null },
  { node: 'b', epoch: 2, expiresInMs: 9_800, ttlMs: 10_000, serves: { host: hostname(), mountpoint: '/m2' } },
];
const answer = (mountpoint: string, displaced: boolean, incarnation?: string): Answer => ({
  mount: { mountpoint, backing: '/b', pid: 1, uid: 0, version: 'x', startedAt: '', uptimeMs: 0, workers: 1 },
  space: { engine: 'redis://127.0.0.1:6393', namespace: 'ns', node: 'b', ...(incarnation === undefined ? {} : { incarnation }) },
  ...(displaced ? { displaced: "another process opened a session under its node's name 'b'" } : {}),
  registry: { sessions },
  // Each mount resolves the path through its own view: the displaced one's is not the holder's.
  locks: [lock(20, displaced ? 'seen-by-m1' : 'f')],
});
const here = { host: hostname(), machine: undefined };

t.test('each of the new session\'s locks is listed once, under its mount, whichever mount answers first', async (t) => {
  for (const order of [
    [answer('/m1', true, 'inc'), answer('/m2', false, 'inc')],
    [answer('/m2', false, 'inc'), answer('/m1', true, 'inc')],
  ]) {
    const l = listed(order, [], here);
    t.same(
      l.map((x) => [x.mountpoint, x.lock.path]),
      [['/m2', 'f']],
      `answers from ${order.map((a) => a.mount.mountpoint).join(', ')}`,
    );
  }
});

t.test('the displaced mount asked alone: its node\'s locks go under the mount its node\'s live session recorded', async (t) => {
  const l = listed([answer('/m1', true, 'inc')], [], here);
  t.same(
    l.map((x) => x.mountpoint),
    ['/m2'],
  );
  // A recorded mount on another machine is no mount here: '-', never the displaced one's.
  const other = answer('/m1', true, 'inc');
  other.registry = { sessions: [sessions[0]!, { ...sessions[1]!, serves: { host: 'elsewhere', mountpoint: '/m2', machine: '0123456789abcdef' } }] };
  t.same(
    listed([other], [], here).map((x) => x.mountpoint),
    [null],
  );
});
