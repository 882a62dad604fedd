/**
 * `locksmith locks` in a shared lock space whose engine lists a session its node no longer renews:
 * which sessions count as late (against their own TTL, on the engine's clock), what stderr says of
 * each (not renewed for a while, expired, ended), and that a session renewed on time, or one whose
 * TTL is unknown and not yet expired, is not named; a late node's mount as its session recorded
 * it, on this machine or another (told apart by machine identity, else host name). Canned
 * answers, no mount.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import t from 'tap';
import { lateJson, lateSessions, lateText, listed } from '../../src/locks-cli.js';
import { lateAfterMs } from '../../src/store/options.js';
import { machineIdentity, thisMachine } from '../../src/machine.js';

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
type Session = { node: string; epoch: number; expiresInMs: number | null; ttlMs?: number; serves?: { host: string; mountpoint: string; machine?: string } };
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

t.test('two machines of one host name: a mount is this machine\'s by machine identity when both have one, else by host name; the text and JSON tell the other machine apart', async (t) => {
  const here = hostname();
  const mine = 'aaaaaaaaaaaaaaaa';
  const theirs = 'bbbbbbbbbbbbbbbb';
  const sessions: Session[] = [
    { node: 'a', epoch: 1, expiresInMs: 9_700, ttlMs: 10_000 },
    { node: 'b', epoch: 2, expiresInMs: 6_500, ttlMs: 10_000, serves: { host: here, mountpoint: '/mnt/b', machine: theirs } }, // another machine, this host name
    { node: 'c', epoch: 3, expiresInMs: 6_500, ttlMs: 10_000, serves: { host: here, mountpoint: '/mnt/c', machine: mine } }, // this machine
    { node: 'd', epoch: 4, expiresInMs: 6_500, ttlMs: 10_000, serves: { host: here, mountpoint: '/mnt/d' } }, // an earlier version's record: host name alone
    { node: 'e', epoch: 5, expiresInMs: 6_500, ttlMs: 10_000, serves: { host: `${here}-renamed`, mountpoint: '/mnt/e', machine: mine } }, // this machine, renamed since
    { node: 'f', epoch: 6, expiresInMs: 6_500, ttlMs: 10_000, serves: { host: `${here}-other`, mountpoint: '/mnt/f', machine: theirs } }, // another host name
  ];
  const a = answer('/a', 'a', [lock('a', 1, 10), lock('b', 2, 20), lock('c', 3, 30), lock('d', 4, 40), lock('e', 5, 50), lock('f', 6, 60)], sessions);
  const l = listed([a], [], { host: here, machine: mine });
  t.same(
    l.map((x) => [x.lock.node, x.mountpoint]),
    [
      ['a', '/a'],
      ['b', null],
      ['c', '/mnt/c'],
      ['d', '/mnt/d'],
      ['e', '/mnt/e'],
      ['f', null],
    ],
    "MOUNT: another machine's mount is '-' though its host name is this machine's",
  );
  const late = lateSessions(l);
  t.same(
    late.map((s) => [s.node, s.host, s.machine]),
    [
      ['b', here, theirs],
      ['c', null, null],
      ['d', null, null],
      ['e', null, null],
      ['f', `${here}-other`, theirs],
    ],
  );
  t.same(
    late.map(lateText).map((x) => x.slice(0, x.indexOf(' has not renewed'))),
    [
      `node b (the mount at /mnt/b on host ${here}, another machine with this host name)`,
      'node c (the mount at /mnt/c)',
      'node d (the mount at /mnt/d)',
      'node e (the mount at /mnt/e)',
      `node f (the mount at /mnt/f on host ${here}-other)`,
    ],
  );
  t.strictSame(lateJson(late[0]!), { node: 'b', epoch: 2, mountpoint: '/mnt/b', host: here, machine: theirs, notRenewedForMs: 3_500, expiresInMs: 6_500 }, '--json: its host name and machine');
  t.strictSame(lateJson(late[1]!), { node: 'c', epoch: 3, mountpoint: '/mnt/c', host: null, machine: null, notRenewedForMs: 3_500, expiresInMs: 6_500 }, "--json: this machine's, neither");

  // This machine without a machine ID: host names alone, as before (b is taken for this machine's).
  const bare = lateSessions(listed([a], [], { host: here, machine: undefined }));
  t.same(
    bare.map((s) => [s.node, s.mountpoint, s.host, s.machine]),
    [
      ['b', '/mnt/b', null, null],
      ['c', '/mnt/c', null, null],
      ['d', '/mnt/d', null, null],
      ['e', '/mnt/e', `${here}-renamed`, mine],
      ['f', '/mnt/f', `${here}-other`, theirs],
    ],
  );
});

t.test("this machine's identity: a keyed hash of its machine ID, never the ID or a part of it", async (t) => {
  let id: string | undefined;
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      id = readFileSync(f, 'utf8').trim();
      if (id !== '' && id !== 'uninitialized') break;
      id = undefined;
    } catch {}
  }
  const m = thisMachine();
  if (id === undefined) return void t.equal(m, undefined, 'no machine ID: none');
  t.match(m, /^[0-9a-f]{16}$/, '16 hex digits');
  t.equal(m, machineIdentity(id), 'of this machine ID');
  t.equal(thisMachine(), m, 'the same on every call');
  t.notOk(id.includes(m!), 'no part of the ID');
  t.not(machineIdentity(`${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`), m, 'another ID, another identity');
});
