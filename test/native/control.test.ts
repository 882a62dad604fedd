/**
 * `locksmith locks` and `locksmith stats` against a live mount, as separate processes: lock client
 * processes (driver/lockclient.c) take fcntl, OFD and flock locks on files of a `locksmith mount` served
 * by another process, and `locksmith locks MOUNTPOINT --json` lists each with its pid, kind, type,
 * range, state and path relative to the mount. The control socket is reachable only by root and
 * its owner: checked with `runuser -u nobody` when that works here, else by the modes alone.
 *
 * Skips only outside CI when a mount cannot work here, saying why; with CI set it fails instead.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketName } from '../../src/control.js';
import { F_SETLK, F_WRLCK, LockCoordinator } from '../../src/index.js';
import { fuseUnavailable } from '../../src/mount.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { runCli, Server } from './cli-proc.js';
import { buildLockClient, Client, forceUnmount, mountEnvironmentMissing, mounted, until } from './proc.js';

const OFFSET_MAX = '9223372036854775807';

interface JsonLock {
  mountpoint: string;
  pid: number;
  kind: string;
  type: string;
  start: string;
  end: string;
  state: string;
  path: string | null;
  ino: string | null;
}

// The whole file runs a mount, lock client processes and about twenty `locksmith` processes,
// each a fresh Node; on a loaded machine that is minutes, beyond .taprc's 120 s for a file. Every wait inside names what it waits for.
t.setTimeout(10 * 60_000);

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/control.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE is required in CI but unavailable: ${why}`);

  // /tmp/locksmith-control-XXX is made 0755 so that only the control directory's own mode keeps
  // another user out; LOCKSMITH_RUNTIME_DIR keeps this file's mounts apart from any other running.
  const base = mkdtempSync(join(tmpdir(), 'locksmith-control-'));
  chmodSync(base, 0o755);
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  const run = join(base, 'run');
  mkdirSync(join(backing, 'dir'), { recursive: true });
  mkdirSync(mnt);
  const env = { LOCKSMITH_RUNTIME_DIR: run };
  const bin = buildLockClient(join(base, 'lockclient'));
  const clients: Client[] = [];
  const client = (name: string, cmds: string[]) => {
    const c = new Client(bin, join(mnt, name), cmds);
    clients.push(c);
    return c;
  };
  const server = new Server([backing, mnt, '--workers', '2', '--log-level', 'info'], env);
  t.teardown(async () => {
    for (const c of clients) if (c.running) c.proc.kill('SIGKILL');
    if (server.proc.exitCode === null && server.proc.signalCode === null) {
      server.proc.kill('SIGTERM');
      await server.ended().catch(() => server.proc.kill('SIGKILL'));
    }
    forceUnmount(mnt);
    rmSync(base, { recursive: true, force: true });
  });
  const locks = async (args: string[] = [mnt]) => {
    const r = await runCli(['locks', ...args, '--json'], { env });
    if (r.status !== 0) throw new Error(`locksmith locks failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout) as { mounts: { mountpoint: string; pid: number }[]; locks: JsonLock[] };
  };

  t.test('the control socket: 0600 in a 0700 directory, named from the mountpoint', async (t) => {
    t.match(await server.serving(), /^locksmith: serving /);
    t.ok(mounted(mnt), 'mounted');
    const sock = join(run, socketName(realpathSync(mnt)));
    t.equal(statSync(run).mode & 0o777, 0o700, 'directory mode 0700');
    t.equal(statSync(run).uid, process.getuid!(), "owned by the server's user");
    t.ok(statSync(sock).isSocket(), `${sock} is a socket`);
    t.equal(statSync(sock).mode & 0o777, 0o600, 'socket mode 0600');
    t.same(readdirSync(run), [socketName(realpathSync(mnt))], 'nothing else in the directory (no temporary name left)');
    t.ok(server.errors.some((l) => / info: control socket .*\.sock \(mode 0600\)/.test(l)), '--log-level info names the socket');
  });

  t.test('locks: the fcntl, OFD and flock locks that processes hold or wait for, with pid, kind, type, range, state and path', async (t) => {
    const a = client('dir/f', ['open', 'lock', 'w', '0', '100', 'ofd', 'r', '200', '10', 'flock', 'ex', 'wait']);
    t.same(await a.take(4), ['open ok', 'lock ok', 'ofd ok', 'flock ok']);
    const b = client('dir/f', ['open', 'lockw', 'w', '50', '1', 'wait']);
    t.equal(await b.next(), 'open ok');
    const g = client('g', ['open', 'lock', 'r', '5', '0', 'wait']);
    t.same(await g.take(2), ['open ok', 'lock ok']);

    // b's F_SETLKW reaches the coordinator after 'open ok': wait until it is listed
    const got = await until('the waiter in locksmith locks', async () => {
      const j = await locks();
      return j.locks.some((l) => l.pid === b.pid && l.state === 'waiting') ? j : undefined;
    }, 120_000);
    const mp = realpathSync(mnt);
    t.same(got.mounts.map((m) => m.mountpoint), [mp], 'one mount, by its real path');
    const pick = ({ pid, kind, type, start, end, state, path, mountpoint }: JsonLock) => ({ pid, kind, type, start, end, state, path, mountpoint });
    const listed = got.locks.map(pick);
    const expected = [
      { pid: a.pid, kind: 'posix', type: 'write', start: '0', end: '99', state: 'granted', path: 'dir/f', mountpoint: mp },
      // over FUSE an OFD lock arrives as a POSIX lock of the open file (ARCHITECTURE.md)
      { pid: a.pid, kind: 'posix', type: 'read', start: '200', end: '209', state: 'granted', path: 'dir/f', mountpoint: mp },
      { pid: a.pid, kind: 'flock', type: 'write', start: '0', end: OFFSET_MAX, state: 'granted', path: 'dir/f', mountpoint: mp },
      { pid: b.pid, kind: 'posix', type: 'write', start: '50', end: '50', state: 'waiting', path: 'dir/f', mountpoint: mp },
      { pid: g.pid, kind: 'posix', type: 'read', start: '5', end: OFFSET_MAX, state: 'granted', path: 'g', mountpoint: mp },
    ];
    const key = (l: { pid: number; kind: string; start: string; state: string }) => `${l.pid} ${l.kind} ${l.start} ${l.state}`;
    t.same([...listed].sort((x, y) => key(x).localeCompare(key(y))), [...expected].sort((x, y) => key(x).localeCompare(key(y))), 'exactly the locks taken');

    const table = await runCli(['locks', mnt], { env });
    t.equal(table.status, 0);
    const rows = table.stdout.trimEnd().split('\n').map((l) => l.trim().split(/\s+/));
    t.same(rows[0], ['PID', 'KIND', 'TYPE', 'START', 'END', 'STATE', 'PATH'], 'lslocks-like heading');
    t.ok(rows.some((r) => r.join(' ') === `${a.pid} posix write 0 99 granted dir/f`), 'a row per lock');
    t.ok(rows.some((r) => r.join(' ') === `${a.pid} flock write 0 EOF granted dir/f`), 'EOF for a lock to the end of the file');
    t.ok(rows.some((r) => r.join(' ') === `${b.pid} posix write 50 50 waiting dir/f`), 'the waiter');
    const bare = await runCli(['locks', mnt, '--noheadings'], { env });
    t.equal(bare.stdout.split('\n').filter(Boolean).length, expected.length, '--noheadings: one line per lock');

    const all = await runCli(['locks'], { env });
    t.equal(all.status, 0, 'without a mountpoint: every running mount');
    t.match(all.stdout, /^\s*PID KIND +TYPE +START +END +STATE +MOUNT +PATH\n/);
    t.ok(all.stdout.includes(`${mp} dir/f`), 'with a MOUNT column');
    t.same((await locks([])).locks.map(pick).length, expected.length, '--json without a mountpoint lists them too');

    const st = await runCli(['stats', mnt, '--json'], { env });
    t.equal(st.status, 0, 'stats answers');
    const s = JSON.parse(st.stdout) as { mounts: { mount: { mountpoint: string; pid: number; workers: number }; stats: { workers: { locks: number; waiters: number }[]; operations: Record<string, Record<string, number>>; waiting: number }; session: { posixLocks: boolean; flockLocks: boolean } }[] };
    t.equal(s.mounts.length, 1);
    const m = s.mounts[0]!;
    t.equal(m.mount.mountpoint, mp);
    t.equal(m.mount.pid, server.proc.pid, "the server's pid");
    t.equal(m.stats.workers.length, 2, 'two workers');
    t.equal(m.stats.workers.reduce((n, w) => n + w.locks, 0), 4, 'four granted locks');
    t.equal(m.stats.workers.reduce((n, w) => n + w.waiters, 0), 1, 'one waiter');
    // The kernel's requests never pass through the caller's thread: the workers counted them.
    t.ok((m.stats.operations.lock?.['0'] ?? 0) >= 4, `the four granted lock requests are counted (${JSON.stringify(m.stats.operations)})`);
    t.equal(m.stats.waiting, 1, 'and the one waiting');
    t.same([m.session.posixLocks, m.session.flockLocks], [true, true], 'the session took both lock capabilities');
    const human = await runCli(['stats', mnt], { env });
    t.match(human.stdout, /locks +4 granted, 1 waiting, on 2 files/);

    a.go();
    t.equal(await b.next(), 'lockw ok', "the waiter is granted when a's locks go");
    b.go();
    g.go();
    await Promise.all([a.ended(), b.ended(), g.ended()]);
    t.same((await locks()).locks, [], 'nothing listed once the processes are gone');
  });

  t.test('stats of a mount sharing its lock space (--store): its own locks and waiters counted, and a store line', { skip: noRedis }, async (t) => {
    const redis = await RedisServer.start();
    const mnt2 = join(base, 'mnt-store');
    mkdirSync(mnt2);
    // A new namespace starts with a grace period of the session TTL (10 s): the first grant waits for it.
    const served = new Server([backing, mnt2, '--workers', '2', '--store', redis.url, '--namespace', `ctl-${randomUUID().slice(0, 8)}`, '--node', 'ctl-a'], env);
    const mine: Client[] = [];
    t.teardown(async () => {
      for (const c of mine) if (c.running) c.proc.kill('SIGKILL');
      if (served.proc.exitCode === null && served.proc.signalCode === null) {
        served.proc.kill('SIGTERM');
        await served.ended().catch(() => served.proc.kill('SIGKILL'));
      }
      forceUnmount(mnt2);
      await redis.stop();
    });
    t.match(await served.serving(), /^locksmith: serving /);
    const a = new Client(bin, join(mnt2, 'g'), ['open', 'lock', 'w', '0', '10', 'flock', 'ex', 'wait']);
    mine.push(a);
    t.same(await a.take(3), ['open ok', 'lock ok', 'flock ok'], 'a POSIX lock and a flock lock');
    // Started once a holds its lock: its F_SETLKW waits for it.
    const b = new Client(bin, join(mnt2, 'g'), ['open', 'lockw', 'w', '5', '1', 'wait']);
    mine.push(b);
    t.equal(await b.next(), 'open ok');
    // Before, the workers counted no lock with a store: "locks 0 granted, 1 waiting"; and no store line.
    const human = await until("b's waiter counted by locksmith stats", async () => {
      const r = await runCli(['stats', mnt2], { env });
      return / 1 waiting/.test(r.stdout) ? r : undefined;
    }, 120_000);
    t.equal(human.status, 0);
    t.match(human.stdout, /\n {2}locks +2 granted, 1 waiting, on 1 file \(node ctl-a's\)\n/, 'the two locks and the waiter of this node');
    t.match(human.stdout, /\n {2}store +redis namespace ctl-\w+, node ctl-a, session \d+ \(1 opened\); \d+ renewals, 0 failed; \d+ round trips, \d+ commits, /, 'the store line');
    const json = JSON.parse((await runCli(['stats', mnt2, '--json'], { env })).stdout) as { mounts: { stats: { workers: { busyActors: number }[] } }[] };
    t.equal(json.mounts[0]!.stats.workers.reduce((n, w) => n + w.busyActors, 0), 0, 'no actor busy: the waiter waits in its table');
    a.go();
    t.equal(await b.next(), 'lockw ok', "b's waiter is granted when a's locks go");
    b.go();
    await Promise.all([a.ended(), b.ended()]);
  });

  t.test('locks of two mounts sharing one lock space: each lock once, under the mount of its node; an engine that does not answer is said', { skip: noRedis }, async (t) => {
    // A password, to see it hidden in the messages.
    const redis = await RedisServer.start(['--requirepass', 's3cret']);
    const url = `redis://:s3cret@127.0.0.1:${redis.port}`;
    const shown = `redis://:***@127.0.0.1:${redis.port}`;
    // Mount B is given the URL written another way (its database written out), by LOCKSMITH_STORE:
    // still one lock space. Before, the two spellings made two, and each lock was listed twice.
    const shownB = `${shown}/0`;
    const ns = `two-${randomUUID().slice(0, 8)}`;
    // Their own runtime directory: `locksmith locks` without a mountpoint lists these two only.
    const env2 = { LOCKSMITH_RUNTIME_DIR: join(base, 'run-two') };
    const [mA, mB] = [join(base, 'mnt-n1'), join(base, 'mnt-n2')];
    mkdirSync(mA);
    mkdirSync(mB);
    const served = [
      new Server([backing, mA, '--workers', '2', '--store', url, '--namespace', ns, '--node', 'n1'], env2),
      new Server([backing, mB, '--workers', '2', '--namespace', ns, '--node', 'n2'], { ...env2, LOCKSMITH_STORE: `${url}/0` }),
    ];
    const mine: Client[] = [];
    let api: LockCoordinator | undefined;
    t.teardown(async () => {
      redis.resume();
      for (const sv of served) sv.proc.kill('SIGCONT');
      for (const c of mine) if (c.running) c.proc.kill('SIGKILL');
      await api?.stop().catch(() => {});
      for (const sv of served) {
        if (sv.proc.exitCode === null && sv.proc.signalCode === null) {
          sv.proc.kill('SIGTERM');
          await sv.ended().catch(() => sv.proc.kill('SIGKILL'));
        }
      }
      forceUnmount(mA);
      forceUnmount(mB);
      await redis.stop();
    });
    for (const sv of served) t.match(await sv.serving(), /^locksmith: serving /);
    const [pA, pB] = [realpathSync(mA), realpathSync(mB)];

    // Nothing locked yet: the heading still has the NODE column of a shared lock space.
    const empty = await runCli(['locks', mA], { env: env2 });
    t.equal(empty.status, 0);
    t.equal(empty.stdout, 'NODE PID KIND TYPE START END STATE PATH\n', 'no locks: the NODE column is in the heading all the same');

    // n1's process holds bytes 0-9 through mount A; n2's waits for byte 5 through mount B; a
    // program on a third node (the API, no mount) holds a lock of its own.
    const a = new Client(bin, join(mA, 'shared'), ['open', 'lock', 'w', '0', '10', 'wait']);
    mine.push(a);
    t.same(await a.take(2), ['open ok', 'lock ok'], "n1's lock (once the new lock space's grace period is over)");
    const b = new Client(bin, join(mB, 'shared'), ['open', 'lockw', 'w', '5', '1', 'wait']);
    mine.push(b);
    t.equal(await b.next(), 'open ok');
    api = await LockCoordinator.start({ workers: 1, store: { url, namespace: ns, node: 'n3' } });
    t.equal((await api.lock({ path: '/api-file', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 1, lockPid: 4242 })).result, 0, "n3's lock");

    type Listed = JsonLock & { node: string };
    const got = await until("n2's waiter in locksmith locks", async () => {
      const r = await runCli(['locks', '--json'], { env: env2 });
      const j = JSON.parse(r.stdout) as { mounts: { mountpoint: string }[]; locks: Listed[] };
      return j.locks.some((l) => l.pid === b.pid && l.state === 'waiting') ? j : undefined;
    }, 120_000);
    t.same(got.mounts.map((m) => m.mountpoint), [pA, pB], 'both mounts asked');
    const spaces = (got.mounts as { space?: { engine: string; incarnation?: string } }[]).map((m) => m.space);
    t.same(spaces.map((s) => s?.engine), [shown, shownB], 'the URL each was given, its password hidden');
    t.ok(spaces[0]?.incarnation && spaces[0].incarnation === spaces[1]?.incarnation, 'and the one incarnation of their engine');
    const pick = ({ node, pid, state, mountpoint }: Listed) => ({ node, pid, state, mountpoint });
    // Before, each mount listed every node's locks, each under its own name: six entries, and
    // n2's waiter under mount A.
    t.same(got.locks.map(pick), [
      { node: 'n1', pid: a.pid, state: 'granted', mountpoint: pA },
      { node: 'n2', pid: b.pid, state: 'waiting', mountpoint: pB },
      { node: 'n3', pid: 4242, state: 'granted', mountpoint: null },
    ], "each lock once, on its node's mount (null: a node with no mount listed)");
    t.same(got.locks.filter((l) => l.node !== 'n3').map((l) => l.path), ['shared', 'shared'], 'with its path');

    const table = await runCli(['locks'], { env: env2 });
    t.equal(table.status, 0);
    const rows = table.stdout.trimEnd().split('\n').map((l) => l.trim().split(/\s+/));
    t.same(rows, [
      ['NODE', 'PID', 'KIND', 'TYPE', 'START', 'END', 'STATE', 'MOUNT', 'PATH'],
      ['n1', String(a.pid), 'posix', 'write', '0', '9', 'granted', pA, 'shared'],
      ['n2', String(b.pid), 'posix', 'write', '5', '5', 'waiting', pB, 'shared'],
      ['n3', '4242', 'posix', 'write', '0', '0', 'granted', '-', '/api-file'],
    ], "the table: one row per lock, MOUNT the mount of its NODE, '-' for none");
    const one = await runCli(['locks', mB, '--noheadings'], { env: env2 });
    t.equal(one.stdout.trimEnd().split('\n').length, 3, 'locks MOUNTPOINT: every node\'s lock, once');

    const [sA, sB] = served as [Server, Server];
    const esc = (x: string) => x.replace(/[*.?()[\]]/g, '\\$&');
    // Mount B's server stops (SIGSTOP): named on stderr as not answering, and n2's lock, which mount
    // A lists from the engine, is shown on mount B. Before: MOUNT '-', as for a node with no mount.
    // With the engine answering: after the scene where it does not, a loaded machine may leave the
    // nodes fenced a while longer, or with their sessions (and locks) lost.
    sB.proc.kill('SIGSTOP');
    const stopped = await runCli(['locks'], { env: env2 });
    sB.proc.kill('SIGCONT');
    t.equal(stopped.status, 1, 'exit 1: a mount did not answer');
    t.match(stopped.stderr, new RegExp(`^locksmith locks: skipping the mount at ${esc(pB)} \\(pid ${sB.proc.pid}\\): it does not answer`, 'm'), `mount B named (${stopped.stderr.trim()})`);
    t.same(
      stopped.stdout.trimEnd().split('\n').slice(1).map((l) => l.trim().split(/\s+/)),
      [
        ['n1', String(a.pid), 'posix', 'write', '0', '9', 'granted', pA, 'shared'],
        ['n2', String(b.pid), 'posix', 'write', '5', '5', 'waiting', pB, 'shared'],
        ['n3', '4242', 'posix', 'write', '0', '0', 'granted', '-', '/api-file'],
      ],
      "n2's lock on mount B, the mount that did not answer; n3's (no mount) '-'",
    );

    // The engine stops answering (SIGSTOP): the listing says which engine, and what is unknown.
    const logged = [sA.errors.length, sB.errors.length];
    redis.pause();
    // Both at once: each waits out the request timeout (5 s), within the sessions' fence (7.5 s)
    // on a machine that starts the two CLIs in time.
    const [dark, darkAll] = await Promise.all([runCli(['locks', mA], { env: env2 }), runCli(['locks'], { env: env2 })]);
    redis.resume();
    t.equal(dark.status, 1, 'exit 1');
    // Each mount lists its own node's locks as it last knew them, marked, and says why. Before:
    // nothing listed, "this node's cannot be listed either until it answers".
    const said = (mount: string, engine: string, what: string) =>
      new RegExp(`^locksmith locks: the mount at ${esc(mount)}: the lock space's engine at ${esc(engine)} did not answer \\([^)]*\\), so ${what}$`, 'm');
    const lastKnown = (mount: string, engine: string) => said(mount, engine, "its node's own locks are listed as it last knew them \\(marked \\* in STATE\\) and other nodes' locks are unknown");
    // On a loaded machine a CLI may ask past the fence: a fenced node answers nothing from what it
    // holds, so its mount lists nothing of its own. Taken as such only once that mount's server
    // has said its session was fenced (its own log line, waited for).
    const fencedEmpty = (mount: string, engine: string) => said(mount, engine, "nothing is listed: its node last knew of no locks of its own, and other nodes' locks are unknown");
    const fenced = async (i: 0 | 1, stderr: string, mount: string, engine: string): Promise<boolean> => {
      if (!fencedEmpty(mount, engine).test(stderr)) return false;
      const sv = served[i]!;
      await until(`the 'fenced' line of the mount at ${mount}, which listed nothing of its own`, () => sv.errors.slice(logged[i]).some((l) => / session \d+ fenced: /.test(l)), 60_000);
      t.comment(`the mount at ${mount} was fenced while the engine did not answer (a loaded machine): it listed nothing of its own, as a fenced node must`);
      return true;
    };
    const listed = (out: string) => out.trimEnd().split('\n').slice(1).filter((l) => l !== '').map((l) => l.trim().split(/\s+/));
    if (!(await fenced(0, dark.stderr, pA, shown))) {
      t.match(dark.stderr, lastKnown(pA, shown), `names the mount and the engine, its password hidden (${dark.stderr.trim()})`);
      t.same(listed(dark.stdout), [['n1', String(a.pid), 'posix', 'write', '0', '9', 'granted*', 'shared']], "mount A: n1's lock, as n1 last knew it");
    }
    t.notMatch(dark.stderr + darkAll.stderr, /s3cret/, 'never the password');
    t.equal(darkAll.status, 1, 'without a mountpoint: exit 1, the listing is incomplete');
    const expected: string[][] = [];
    if (!(await fenced(0, darkAll.stderr, pA, shown))) {
      t.match(darkAll.stderr, lastKnown(pA, shown), `mount A named (${darkAll.stderr.trim()})`);
      expected.push(['n1', String(a.pid), 'posix', 'write', '0', '9', 'granted*', pA, 'shared']);
    }
    if (!(await fenced(1, darkAll.stderr, pB, shownB))) {
      t.match(darkAll.stderr, lastKnown(pB, shownB), 'and mount B');
      expected.push(['n2', String(b.pid), 'posix', 'write', '5', '5', 'waiting*', pB, 'shared']);
    }
    t.same(listed(darkAll.stdout), expected, "each node's own locks, on its mount; n3's (no mount) unknown");

    a.go();
    b.go();
    await Promise.all([a.ended(), b.ended()]);
  });

  t.test('a locked file whose name is gone is shown by its inode', async (t) => {
    const c = client('doomed', ['open', 'flock', 'sh', 'wait']);
    t.same(await c.take(2), ['open ok', 'flock ok']);
    unlinkSync(join(backing, 'doomed')); // behind the mount's back: no name leads to it any more
    const [l] = (await locks()).locks;
    t.match(l, { pid: c.pid, kind: 'flock', type: 'read', path: null }, 'no path');
    t.match(l?.ino, /^\d+$/, 'but the inode');
    const table = await runCli(['locks', mnt, '--noheadings'], { env });
    t.match(table.stdout, new RegExp(`^\\s*${c.pid} flock read +0 +EOF granted <dev \\d+ inode \\d+>\\n$`));
    c.go();
    await c.ended();
  });

  t.test('a name with control characters is escaped in the table, exact in --json', async (t) => {
    const c = client('odd\x1b[2Jname', ['open', 'lock', 'w', '0', '1', 'wait']);
    t.same(await c.take(2), ['open ok', 'lock ok']);
    t.match((await locks()).locks, [{ pid: c.pid, path: 'odd\x1b[2Jname' }], 'the exact name in JSON');
    const table = await runCli(['locks', mnt, '--noheadings'], { env });
    t.equal(table.stdout.trim().split(/\s+/).at(-1), 'odd\\x1b[2Jname', 'escaped for the terminal');
    c.go();
    await c.ended();
  });

  t.test('only root and the owner can reach the socket', async (t) => {
    const sock = join(run, socketName(realpathSync(mnt)));
    const nobody = spawnSync('runuser', ['-u', 'nobody', '--', 'env', '-u', 'NODE_OPTIONS', process.execPath, '-e', ''], { cwd: '/', stdio: 'ignore' });
    if (process.getuid?.() !== 0 || nobody.status !== 0) {
      t.comment('cannot run a process as nobody here: checking the modes only');
      t.equal(statSync(run).mode & 0o077, 0, 'no group or other access to the directory');
      t.equal(statSync(sock).mode & 0o077, 0, 'nor to the socket');
      return;
    }
    // Without NODE_OPTIONS: tap puts its own imports there (and back into any spawn's environment),
    // and they would write process files where nobody may not.
    const asNobody = (args: string[]) => runCli(args, { env, argv0: ['runuser', '-u', 'nobody', '--', 'env', '-u', 'NODE_OPTIONS', process.execPath] });
    const dirOnly = await asNobody(['locks', mnt]);
    t.equal(dirOnly.status, 1, 'nobody is refused');
    t.match(dirOnly.stderr, /^locksmith locks: permission denied on .*\.sock: only root and the user running the mount at .* can ask it\n$/);

    chmodSync(run, 0o711); // the directory searchable: now the socket's own 0600 is all that stands
    try {
      const sockOnly = await asNobody(['locks', mnt]);
      t.equal(sockOnly.status, 1, 'refused by the socket mode alone');
      t.match(sockOnly.stderr, /permission denied/);
      chmodSync(sock, 0o666); // control: with both opened up, the same command as nobody works
      const open = await asNobody(['locks', mnt, '--json']);
      t.equal(open.status, 0, `nobody can ask once the modes allow it (${open.stderr.trim()})`);
      t.equal(open.stderr, '', 'without complaint');
    } finally {
      chmodSync(sock, 0o600);
      chmodSync(run, 0o700);
    }
    t.equal((await runCli(['stats', mnt], { env })).status, 0, 'root still can');
  });

  t.test('SIGTERM: the socket goes with the mount', async (t) => {
    const sock = join(run, socketName(realpathSync(mnt)));
    server.proc.kill('SIGTERM');
    t.same(await server.ended(), { code: 0, signal: null }, 'exit 0');
    t.notOk(mounted(mnt), 'unmounted');
    t.throws(() => statSync(sock), { code: 'ENOENT' }, 'socket removed');
    const r = await runCli(['locks', mnt], { env });
    t.equal(r.status, 1);
    t.match(r.stderr, /^locksmith locks: no running locksmith mount at /);
    t.ok(server.errors.some((l) => / info: SIGTERM: /.test(l)), 'the info line at unmount');
  });
}
