/**
 * The product end to end: `mountFuse` mounts a passthrough whose lock requests the coordinator's
 * two workers decide, and separate processes (driver/lockclient.c) call fcntl, OFD fcntl and flock on
 * its files. Every expectation is what Linux does on a local file system (SEMANTICS-POSIX.md).
 *
 * Skips only outside CI when a mount cannot work here, saying why; with CI set it fails instead.
 * This file's thread decides nothing (the workers do), but it still leaves all file work on the
 * mount to the client processes.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routeOf } from '../../src/wire/route.js';
import { fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { buildLockClient, Client, forceUnmount, mountEnvironmentMissing, mounted, until } from './proc.js';

const EAGAIN = 11;
const EINTR = 4;
const EDEADLK = 35;

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/mount.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE is required in CI but unavailable: ${why}`);

  const base = mkdtempSync(join(tmpdir(), 'locksmith-mount-'));
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const bin = buildLockClient(join(base, 'lockclient'));
  process.on('exit', () => forceUnmount(mnt));

  let m: FuseMount;
  const clients: Client[] = [];
  const client = (name: string, cmds: string[]) => {
    const c = new Client(bin, join(mnt, name), cmds);
    clients.push(c);
    return c;
  };
  /** The coordinator's view of one process's locks. */
  const locksOf = async (pid: number) => (await m.coordinator.locks()).filter((l) => l.pid === pid);
  /**
   * Waits until the coordinator lists a waiting request of client `c`: its blocking call has
   * reached the decider. (A client that printed nothing for a while may not have made the call yet
   * on a busy machine; a signal sent then would not interrupt it, and a cycle would close the
   * other way round.)
   */
  const queued = (c: Client, what: string) =>
    until(`${what}: a waiting request of pid ${c.pid} in the coordinator`, async () => (await m.coordinator.locks()).some((l) => l.state === 'waiting' && l.pid === c.pid) || undefined);

  t.before(async () => {
    m = await mountFuse({ backing, mountpoint: mnt, workers: 2 });
  });

  t.teardown(async () => {
    for (const c of clients) if (c.running) c.proc.kill('SIGKILL');
    await m?.unmount();
    forceUnmount(mnt);
    await Promise.all(clients.map((c) => c.ended().catch((e: Error) => console.error(e.message))));
    if (mounted(mnt)) throw new Error(`${mnt} is still mounted`);
    rmSync(base, { recursive: true, force: true });
  });

  t.test('the mount negotiated both lock capabilities and the workers took their destinations', async (t) => {
    const info = m.info();
    t.equal(info.posixLocks, true, 'FUSE_CAP_POSIX_LOCKS');
    t.equal(info.flockLocks, true, 'FUSE_CAP_FLOCK_LOCKS');
    t.equal(info.attached, 2, 'both workers attached');
  });

  t.test('two processes conflict; F_GETLK names the holder pid; a blocked F_SETLKW is granted on unlock', async (t) => {
    const a = client('conflict', ['open', 'lock', 'w', '0', '100', 'wait', 'lock', 'u', '0', '100', 'wait']);
    t.same(await a.take(2), ['open ok', 'lock ok']);
    const b = client('conflict', ['open', 'lock', 'w', '50', '10', 'get', 'w', '50', '10', 'lock', 'r', '100', '10', 'lockw', 'w', '0', '1', 'wait']);
    t.same(await b.take(2), ['open ok', `lock err ${EAGAIN}`], 'F_SETLK on a held range fails with EAGAIN');
    t.equal(await b.next(), `get w 0 100 ${a.pid}`, 'F_GETLK reports the write lock and its pid');
    t.equal(await b.next(), 'lock ok', 'the byte after the held range is free');
    t.ok(await b.silentFor(200), 'F_SETLKW waits while the range is held');
    const held = await locksOf(a.pid);
    t.match(held, [{ kind: 'posix', type: 'write', start: 0n, end: 99n, state: 'granted' }], 'the coordinator holds the lock');
    await queued(b, "B's F_SETLKW");
    t.pass("the waiter is in the actor's queue, not in a libfuse thread");
    a.go();
    t.equal(await a.next(), 'lock ok', 'unlock');
    t.equal(await b.next(), 'lockw ok', 'the waiter is granted after the unlock');
    a.go();
    b.go();
    await Promise.all([a.ended(), b.ended()]);
    await until('every lock gone after exit', async () => (await m.coordinator.locks()).length === 0 || undefined);
  });

  t.test('close(2) drops classic POSIX locks; OFD locks survive closing a dup and go at the last close', async (t) => {
    const a = client('close', ['open', 'lock', 'w', '0', '10', 'close', 'wait', 'open', 'ofd', 'w', '20', '10', 'dup', 'close', 'wait', 'fd', '0', 'close', 'wait']);
    t.same(await a.take(3), ['open ok', 'lock ok', 'close ok']);
    const b = client('close', ['open', 'lock', 'w', '0', '10', 'lock', 'u', '0', '10', 'wait', 'ofd', 'w', '20', '10', 'wait', 'ofd', 'w', '20', '10', 'wait']);
    t.same(await b.take(3), ['open ok', 'lock ok', 'lock ok'], 'the POSIX lock went with the close');
    a.go();
    t.same(await a.take(4), ['open ok', 'ofd ok', 'dup ok 1', 'close ok'], 'OFD lock, then the dup is closed');
    b.go();
    t.equal(await b.next(), `ofd err ${EAGAIN}`, 'the OFD lock survives the close of a dup');
    a.go();
    t.same(await a.take(2), ['fd ok', 'close ok'], 'last close of the open file');
    // close(2) returns before the kernel's RELEASE reaches the server (FUSE sends it in the
    // background), so the lock is gone once the coordinator has taken that release.
    await until('the last close released the OFD lock', async () => (await m.coordinator.locks()).every((l) => l.start !== 20n) || undefined);
    b.go();
    t.equal(await b.next(), 'ofd ok', 'the OFD lock went with the last close');
    a.go();
    b.go();
    await Promise.all([a.ended(), b.ended()]);
  });

  t.test('flock: shared locks share, exclusive conflicts, a blocking flock waits; flock and fcntl are independent', async (t) => {
    const a = client('flock', ['open', 'flock', 'sh', 'wait', 'flock', 'un', 'wait']);
    t.same(await a.take(2), ['open ok', 'flock ok']);
    const b = client('flock', ['open', 'flock', 'sh', 'nb', 'flock', 'ex', 'nb', 'lock', 'w', '0', '0', 'flock', 'ex', 'wait']);
    t.same(await b.take(4), ['open ok', 'flock ok', `flock err ${EAGAIN}`, 'lock ok'], 'sh+sh share; ex (nb) conflicts; fcntl ignores flock');
    t.ok(await b.silentFor(200), 'a blocking LOCK_EX waits for the other shared lock');
    a.go();
    t.equal(await a.next(), 'flock ok');
    t.equal(await b.next(), 'flock ok', 'granted once the other shared lock is gone');
    t.ok((await locksOf(b.pid)).some((l) => l.kind === 'flock' && l.type === 'write'), 'the coordinator holds the flock lock');
    a.go();
    b.go();
    await Promise.all([a.ended(), b.ended()]);
  });

  t.test('EDEADLK between two processes over two files on different workers', async (t) => {
    // Two file names whose backing identities route to different workers make a cross-worker cycle.
    const a = client('dl-1', ['open', 'lock', 'w', '0', '1', 'file', join(mnt, 'dl-2'), 'fd', '1', 'open', 'wait', 'lockw', 'w', '0', '1', 'wait']);
    t.same(await a.take(4), ['open ok', 'lock ok', 'fd ok', 'open ok']);
    const b = client('dl-2', ['open', 'lock', 'w', '0', '1', 'file', join(mnt, 'dl-1'), 'fd', '1', 'open', 'wait', 'lockw', 'w', '0', '1', 'wait']);
    t.same(await b.take(4), ['open ok', 'lock ok', 'fd ok', 'open ok']);
    const paths = [...new Set((await m.coordinator.locks()).filter((l) => l.pid === a.pid || l.pid === b.pid).map((l) => l.path))];
    t.equal(paths.length, 2, 'two files');
    t.comment(`files on workers ${paths.map((p) => routeOf(p, 2)).join(' and ')}`);
    a.go();
    await queued(a, "A's F_SETLKW on B's file");
    t.ok(await a.silentFor(0), 'A waits for B');
    b.go();
    t.equal(await b.next(), `lockw err ${EDEADLK}`, 'B closing the cycle gets EDEADLK');
    b.go();
    await b.ended();
    t.equal(await a.next(), 'lockw ok', "A is granted once B's locks go with its exit");
    a.go();
    await a.ended();
  });

  t.test('a signal ends a blocked F_SETLKW with EINTR; SIGKILL ends a blocked process', async (t) => {
    const a = client('signal', ['open', 'lock', 'w', '0', '0', 'wait']);
    t.same(await a.take(2), ['open ok', 'lock ok']);
    const b = client('signal', ['trapint', 'open', 'lockw', 'w', '0', '1', 'wait']);
    t.same(await b.take(2), ['trapint ok', 'open ok']);
    await queued(b, "B's F_SETLKW");
    t.ok(await b.silentFor(0), 'blocked');
    b.proc.kill('SIGINT');
    t.equal(await b.next(), `lockw err ${EINTR}`, 'SIGINT interrupts F_SETLKW');
    const c = client('signal', ['open', 'lockw', 'w', '0', '1', 'wait']);
    t.equal(await c.next(), 'open ok');
    await queued(c, "C's F_SETLKW");
    t.ok(await c.silentFor(0), 'blocked');
    c.proc.kill('SIGKILL');
    t.same(await c.ended(), { code: null, signal: 'SIGKILL' }, 'SIGKILL ends a process blocked in F_SETLKW');
    await until('no waiter left', async () => !(await m.coordinator.locks()).some((l) => l.state === 'waiting') || undefined);
    t.match(await locksOf(a.pid), [{ type: 'write', state: 'granted' }], "the holder's lock is untouched");
    a.go();
    b.go();
    await Promise.all([a.ended(), b.ended()]);
  });

  t.test('a process killed while holding locks leaves none behind', async (t) => {
    const a = client('killed', ['open', 'lock', 'w', '0', '10', 'ofd', 'r', '100', '10', 'flock', 'ex', 'wait']);
    t.same(await a.take(4), ['open ok', 'lock ok', 'ofd ok', 'flock ok']);
    // Over FUSE an OFD lock arrives as a POSIX lock whose owner is the open file, with the pid of
    // the process that took it (ARCHITECTURE.md: what FUSE cannot tell apart).
    t.equal((await locksOf(a.pid)).length, 3, 'POSIX, OFD and flock locks are held');
    const b = client('killed', ['open', 'lockw', 'w', '0', '200', 'flock', 'ex', 'wait']);
    t.equal(await b.next(), 'open ok');
    await queued(b, "B's F_SETLKW");
    t.ok(await b.silentFor(0), 'B waits');
    a.proc.kill('SIGKILL');
    await a.ended();
    t.same(await b.take(2), ['lockw ok', 'flock ok'], "every lock of the killed process went: B's waits are granted");
    b.go();
    await b.ended();
    await until('the file idle', async () => (await m.coordinator.locks()).length === 0 || undefined);
  });

  t.test("a worker crash keeps the mount's locks: the journal rebuilds them on the replacement", async (t) => {
    const a = client('crash', ['open', 'lock', 'w', '0', '10', 'flock', 'ex', 'wait', 'lock', 'u', '0', '10', 'wait']);
    t.same(await a.take(3), ['open ok', 'lock ok', 'flock ok']);
    const [held] = await locksOf(a.pid);
    t.ok(held, 'the lock is listed');
    const before = await m.coordinator.stats();
    t.ok((before.operations.lock?.['0'] ?? 0) >= 2, "the mount's stats count the kernel's granted requests");
    await m.coordinator.crashWorker(routeOf(held!.path, 2));
    const after = await m.coordinator.stats();
    t.equal(after.workerRestarts, before.workerRestarts + 1, 'the worker was replaced');
    t.ok((after.operations.lock?.['0'] ?? 0) >= (before.operations.lock?.['0'] ?? 0), 'and the counts outlive the worker that made them');
    t.equal((await locksOf(a.pid)).length, 2, 'both locks are still held after the crash');
    const b = client('crash', ['open', 'lock', 'w', '5', '1', 'flock', 'ex', 'nb', 'lockw', 'w', '5', '1', 'wait']);
    t.same(await b.take(3), ['open ok', `lock err ${EAGAIN}`, `flock err ${EAGAIN}`], 'another process still conflicts with both');
    await queued(b, "B's F_SETLKW on the replacement worker");
    t.ok(await b.silentFor(0), 'and waits');
    a.go();
    t.equal(await a.next(), 'lock ok');
    t.equal(await b.next(), 'lockw ok', 'the waiter on the replacement worker is granted on unlock');
    a.go();
    b.go();
    await Promise.all([a.ended(), b.ended()]);
  });

  t.test('ordinary I/O works on the mount', async (t) => {
    const c = client('io', ['open', 'close']);
    t.same(await c.take(2), ['open ok', 'close ok']);
    await c.ended();
    const { readdir } = await import('node:fs/promises');
    t.ok((await readdir(mnt)).includes('io'), 'the file created through the mount is listed');
    t.ok((await readdir(backing)).includes('io'), 'and exists in the backing directory');
  });

  t.test('unmount answers every waiter and leaves nothing mounted', async (t) => {
    const a = client('unmount', ['open', 'lock', 'w', '0', '0', 'wait']);
    t.same(await a.take(2), ['open ok', 'lock ok']);
    const b = client('unmount', ['open', 'lockw', 'w', '0', '1']);
    t.equal(await b.next(), 'open ok');
    await queued(b, "B's F_SETLKW");
    t.ok(await b.silentFor(0), 'B waits');
    await m.unmount();
    t.match(await b.next(), /^lockw err \d+$/, 'the waiter returned with an error');
    t.same(await b.ended(), { code: 0, signal: null }, 'and exited');
    t.notOk(mounted(mnt), 'nothing is mounted');
    a.go();
    await a.ended();
  });
}
