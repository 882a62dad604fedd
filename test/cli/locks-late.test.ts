/**
 * `locksmith locks` in a shared lock space whose engine lists a session its node no longer renews:
 * which sessions count as late (against their own TTL, on the engine's clock), what stderr says of
 * each (not renewed for a while, expired, ended), and that a session renewed on time, or one whose
 * TTL is unknown and not yet expired, is not named; a late node's mount as its session recorded
 * it. Canned answers, no mount.
 */
import { hostname } from 'node:os';
import t from 'tap';
import { lateSessions, lateText, listed } from '../../src/locks-cli.js';
import { lateAfterMs } from '../../src/store/options.js';

const lock = (node: string, epoch: number, pid: number, state = 'granted') => ({
  pid,
  kind: 'posix',
  type: 'write',
  start: String(pid),
  end: String(pid),
  state,
  path: 'f',
  dev: null,
  ino: '7',
  key: 'ino:7',
  owner: String(pid),
  node,
  epoch,
});
type Session = { node: string; epoch: number; expiresInMs: number | null; ttlMs?: number; serves?: { host: string; mountpoint: string } };
const answer = (mountpoint: string, node: string, locks: ReturnType<typeof lock>[], sessions: Session[]) => ({
  mount: { mountpoint, backing: '/b', pid: 1, uid: 0, version: 'x', startedAt: '', uptimeMs: 0, workers: 1 },
  space: { engine: 'redis://127.0.0.1:6393', namespace: 'ns', node, incarnation: 'inc-1' },
  registry: { sessions },
  locks,
});

t.test('a mount: late after two renewals missed and a second (2 s), at most its fence (3/4 TTL)', async (t) => {
  t.equal(lateAfterMs(10_000), 2_000);
  t.equal(lateAfterMs(1_000), 750, 'a short TTL: its fence comes first');
});

t.test('which sessions are late, and what is said of each', async (t) => {
  const a = answer('/a', 'a', [lock('a', 1, 10), lock('b', 2, 20), lock('b', 2, 21, 'waiting'), lock('c', 3, 30), lock('d', 4, 40), lock('e', 5, 50), lock('old', 6, 60)], [
    { node: 'a', epoch: 1, expiresInMs: 9_700, ttlMs: 10_000 }, // renewed 0.3 s ago
    { node: 'b', epoch: 2, expiresInMs: 6_500, ttlMs: 10_000 }, // not for 3.5 s
    { node: 'c', epoch: 3, expiresInMs: -400 }, // expired
    { node: 'd', epoch: 4, expiresInMs: null }, // ended or replaced
    { node: 'e', epoch: 5, expiresInMs: 3_000 }, // TTL unknown, not expired: not judged
    // 'old' epoch 6 is not in the registry (reaped meanwhile): not judged
  ]);
  const l = listed([a], [{ mountpoint: '/mnt/b', node: 'b' }]);
  t.same(
    l.map((x) => [x.lock.node, x.lock.late ?? false]),
    [
      ['a', false],
      ['b', true],
      ['b', true],
      ['c', true],
      ['d', true],
      ['e', false],
      ['old', false],
    ],
  );
  const late = lateSessions(l);
  t.same(
    late.map((s) => [s.node, s.mountpoint, s.notRenewedForMs, s.expiresInMs, s.granted, s.waiting]),
    [
      ['b', '/mnt/b', 3_500, 6_500, 1, 1],
      ['c', null, null, -400, 1, 0],
      ['d', null, null, null, 1, 0],
    ],
  );
  t.same(late.map(lateText), [
    "node b (the mount at /mnt/b) has not renewed its session for 3.5 s (its server gone, stopped or cut off from the engine): its lock and waiting request go when the session expires, in about 6.5 s on the engine's clock, unless it renews first",
    'node c: its session expired 0.4 s ago without a renewal (its server gone, stopped or cut off from the engine); its lock goes at the next reap, which the next renewal of a live node starts',
    'node d: its session was ended or replaced by a newer one; its lock goes at the next reap, which the next renewal of a live node starts',
  ]);
});

t.test('an answer without a registry (a mount alone, an older mount): nothing judged', async (t) => {
  const { registry: _r, ...a } = answer('/a', 'a', [lock('b', 2, 20)], []);
  t.same(lateSessions(listed([a])), []);
});

t.test("a late node's mount as its session recorded it: on this machine the mount alone (and its MOUNT), on another one with its host", async (t) => {
  const here = hostname();
  const other = `${here}-other`;
  const a = answer('/a', 'a', [lock('a', 1, 10), lock('b', 2, 20), lock('c', 3, 30), lock('d', 4, 40), lock('e', 5, 50)], [
    { node: 'a', epoch: 1, expiresInMs: 9_700, ttlMs: 10_000 },
    { node: 'b', epoch: 2, expiresInMs: 6_500, ttlMs: 10_000, serves: { host: here, mountpoint: '/mnt/b' } }, // killed, this machine
    { node: 'c', epoch: 3, expiresInMs: 6_000, ttlMs: 10_000, serves: { host: other, mountpoint: '/mnt/c' } }, // another machine's
    { node: 'd', epoch: 4, expiresInMs: 5_000, ttlMs: 10_000 }, // a program using the API
    { node: 'e', epoch: 5, expiresInMs: 9_900, ttlMs: 10_000, serves: { host: other, mountpoint: '/mnt/e' } }, // renews: not late
  ] as Session[]);
  const l = listed([a]);
  t.same(
    l.map((x) => [x.lock.node, x.mountpoint]),
    [
      ['a', '/a'],
      ['b', '/mnt/b'],
      ['c', null],
      ['d', null],
      ['e', null],
    ],
    "MOUNT: a mount of this machine as its session recorded it; another machine's is '-'",
  );
  const late = lateSessions(l);
  t.same(
    late.map((s) => [s.node, s.mountpoint, s.host]),
    [
      ['b', '/mnt/b', null],
      ['c', '/mnt/c', other],
      ['d', null, null],
    ],
  );
  t.same(
    late.map(lateText).map((x) => x.slice(0, x.indexOf(' has not renewed'))),
    ['node b (the mount at /mnt/b)', `node c (the mount at /mnt/c on host ${other})`, 'node d'],
  );
});
