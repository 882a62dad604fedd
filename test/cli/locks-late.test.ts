/**
 * `locksmith locks` in a shared lock space whose engine lists a session its node no longer renews:
 * which sessions count as late (against their own TTL, on the engine's clock), what stderr says of
 * each (not renewed for a while, expired, ended), and that a session renewed on time, or one whose
 * TTL is unknown and not yet expired, is not named; a late node's mount as its session recorded
 * it, on this machine or another (told apart by machine identity, else host name). Canned
 * answers, no mount; and the machine identity itself (src/machine.ts), also as computed by a
 * process beside this one and by one in another mount namespace.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import t from 'tap';
import { lateJson, lateSessions, lateText, listed } from '../../src/locks-cli.js';
import { lateAfterMs } from '../../src/store/options.js';
import { machineIdentity, readMachineIds, thisMachine } from '../../src/machine.js';

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

t.test("a machine's identity: a keyed hash of its machine ID, boot ID and mount namespace, never an ID or a part of one", async (t) => {
  const machineId = '0123456789abcdef0123456789abcdef';
  const bootId = '526c5bbf-42eb-46c4-9b9f-a80ef7f294be';
  const mountNs = '4:4026531832';
  const m = machineIdentity({ machineId, bootId, mountNs })!;
  t.match(m, /^[0-9a-f]{16}$/, '16 hex digits');
  t.equal(machineIdentity({ machineId, bootId, mountNs }), m, 'the same inputs: the same identity');
  // One image's machine ID in containers on two hosts: two boots of two kernels.
  t.not(machineIdentity({ machineId, bootId: '9f0c2d6e-1b7a-4c3e-8d5f-2a4b6c8e0f13', mountNs }), m, 'the same machine ID, another boot ID: another machine');
  // ... and in two containers of one host: one boot, two mount namespaces.
  t.not(machineIdentity({ machineId, bootId, mountNs: '4:4026532291' }), m, 'the same machine and boot IDs, another mount namespace: another machine');
  t.not(machineIdentity({ machineId: machineId.replace(/f$/, '0'), bootId, mountNs }), m, 'another machine ID: another machine');
  for (const part of [machineId, bootId.replaceAll('-', '')]) {
    const pieces = Array.from({ length: part.length - 7 }, (_, i) => part.slice(i, i + 8));
    t.notOk(pieces.some((x) => m.includes(x)), `no 8 digits in a row of ${part} in it`);
  }
  // A record of an earlier mount (its machine ID alone) is told from this one: another machine.
  const old = createHmac('sha256', machineId).update('locksmith machine identity').digest('hex').slice(0, 16);
  t.equal(machineIdentity({ machineId }), old, 'a machine ID alone: the identity earlier versions recorded');
  t.not(m, old, "an earlier version's record reads as another machine's");
  // No machine ID (an image without one): the boot ID keys it, so containers are still told apart.
  const bare = machineIdentity({ bootId, mountNs });
  t.match(bare, /^[0-9a-f]{16}$/, 'a boot ID without a machine ID: an identity');
  t.not(machineIdentity({ bootId, mountNs: '4:4026532291' }), bare, 'and another mount namespace, another one');
  t.equal(machineIdentity({ mountNs }), undefined, 'neither ID (a namespace number is the same on every host): none');
  t.equal(machineIdentity({}), undefined, 'nothing: none');
});

t.test("this machine's identity: of this machine's IDs and this process's mount namespace, read once", async (t) => {
  const read = (f: string) => {
    try {
      const v = readFileSync(f, 'utf8').trim();
      return v === '' || v === 'uninitialized' ? undefined : v;
    } catch {
      return undefined;
    }
  };
  const machineId = read('/etc/machine-id') ?? read('/var/lib/dbus/machine-id');
  const bootId = read('/proc/sys/kernel/random/boot_id');
  let mountNs: string | undefined;
  try {
    const s = statSync('/proc/self/ns/mnt');
    mountNs = `${s.dev}:${s.ino}`;
  } catch {}
  t.strictSame(readMachineIds(), { ...(machineId === undefined ? {} : { machineId }), ...(bootId === undefined ? {} : { bootId }), ...(mountNs === undefined ? {} : { mountNs }) }, 'what it is made of');
  const m = thisMachine();
  t.equal(m, machineIdentity({ machineId, bootId, mountNs }), 'their identity');
  t.equal(thisMachine(), m, 'the same on every call');
});

t.test('a process in another mount namespace of this host (a container) is another machine; one in this one is this machine', async (t) => {
  // The built module (dist/), in a fresh Node: as a mount's server and `locksmith locks` compute it.
  const mod = new URL('../../dist/src/machine.js', import.meta.url).href;
  const code = `import(${JSON.stringify(mod)}).then((m) => process.stdout.write(String(m.thisMachine())))`;
  const here = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 120_000 });
  t.equal(here.status, 0, `a process beside this one ran (${here.stderr.trim()})`);
  t.equal(here.stdout, String(thisMachine()), 'in this mount namespace: this machine');
  // unshare(1) needs root (CAP_SYS_ADMIN) for a new mount namespace: skipped without it.
  const probe = spawnSync('unshare', ['-m', 'true'], { encoding: 'utf8', timeout: 120_000 });
  if (probe.error !== undefined || probe.status !== 0) return void t.skip(`no new mount namespace here: ${probe.error?.message ?? probe.stderr.trim()}`);
  if (thisMachine() === undefined) return void t.skip('no machine ID nor boot ID here');
  const there = spawnSync('unshare', ['-m', process.execPath, '-e', code], { encoding: 'utf8', timeout: 120_000 });
  t.equal(there.status, 0, `a process in a new mount namespace ran (${there.stderr.trim()})`);
  t.match(there.stdout, /^[0-9a-f]{16}$/, 'it has an identity');
  t.not(there.stdout, thisMachine(), 'in another mount namespace (same machine ID, host name and boot): another machine');
});
