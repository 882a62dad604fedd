/**
 * A store mount answers a grant or an unlock only after the kernel wrote back and dropped the
 * file's cached pages (fuse_session.cc, the invalidation threads). That invalidation waits for WRITE
 * requests to this very server; here one of them is held: the backing directory is itself a FUSE
 * mount whose server (a `locksmith mount` child) is stopped (SIGSTOP), so the backing write that
 * laundering a dirty mmap page needs cannot end. The store mount is unmounted while one of its
 * invalidation threads is held in that notify, and another process locks another file (answered
 * by another of those threads, or at the unmount if decided late: mount-store-inval-pool): the unmount
 * ends (it aborts the connection, as for any busy mount), and every process on the mount gets an
 * answer. The held process resumes the stopped server itself once its unlock returned, so nothing
 * here waits on a clock while this file's event loop is inside unmount().
 *
 * Skips only outside CI when a mount, redis-server or python3 cannot work here, saying why.
 */
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Server } from './cli-proc.js';
import { forceUnmount, mountEnvironmentMissing, mounted, until } from './proc.js';

const noPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import fcntl, mmap'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no python3 (with fcntl and mmap) for the processes on the mount';
  }
})();

/** writev and fcntl, by architecture (the first field of /proc/<pid>/task/<tid>/syscall). */
const SYSCALLS: Record<string, { writev: string; fcntl: string }> = { x64: { writev: '20', fcntl: '72' }, arm64: { writev: '66', fcntl: '25' } };

const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined) ?? noPython ?? (SYSCALLS[process.arch] ? undefined : `no syscall numbers for ${process.arch}`);
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/mount-store-inval-unmount.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE, redis-server or python3 unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE, redis-server and python3 are required in CI but unavailable: ${why}`);
  const sys = SYSCALLS[process.arch]!;

  const base = mkdtempSync(join(tmpdir(), 'locksmith-inval-unmount-'));
  const innerBacking = join(base, 'inner-backing');
  const innerMnt = join(base, 'inner');
  const mnt = join(base, 'a');
  for (const d of [innerBacking, innerMnt, mnt]) mkdirSync(d);
  const procs: ChildProcess[] = [];
  let inner: Server | undefined;
  process.on('exit', () => {
    for (const p of procs) p.kill('SIGKILL');
    inner?.proc.kill('SIGCONT');
    forceUnmount(mnt);
    forceUnmount(innerMnt);
  });

  /** The first field of a thread's /proc syscall file ('running' when it is on a CPU), or undefined once it is gone. */
  const syscallOf = (pid: number, tid: number) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]!.trim();
    } catch {
      return undefined;
    }
  };
  /** This process's threads named `name` (pthread_setname_np). */
  const threadsNamed = (name: string) =>
    readdirSync('/proc/self/task')
      .map(Number)
      .filter((tid) => {
        try {
          return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name;
        } catch {
          return false;
        }
      });

  /** A python3 process on the mount: its stdout lines as they come, a line to its stdin, its exit. */
  const python = (program: string) => {
    const p = spawn('python3', ['-c', program], { stdio: ['pipe', 'pipe', 'inherit'] });
    procs.push(p);
    const lines: string[] = [];
    createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    return { p, lines, exited };
  };

  t.test('unmounting a store mount while its invalidation thread waits for a write the mount must serve', async (t) => {
    inner = new Server([innerBacking, innerMnt, '--workers', '1']);
    await inner.serving();
    const backing = join(innerMnt, 'dir');
    mkdirSync(backing);
    writeFileSync(join(backing, 'f'), 'AAAA');
    writeFileSync(join(backing, 'g'), 'AAAA');
    const server = await RedisServer.start();
    t.teardown(() => server.stop());
    const a: FuseMount = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { url: server.url, namespace: `u-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 1000 } });

    // P dirties a page through a shared mapping under a lock, then (told to) unlocks: the unlock's
    // answer waits for that page's write-back, which the stopped inner server holds. Once its
    // unlock returned (answered, or failed as the connection was aborted), P resumes that server.
    const holder = python(
      [
        'import fcntl, mmap, os, signal, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_RDWR)`,
        'm = mmap.mmap(fd, 4)',
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        "m[0:4] = b'MMMM'",
        "print('dirty', flush=True)",
        'sys.stdin.readline()',
        'try:',
        "    fcntl.lockf(fd, fcntl.LOCK_UN); print('unlocked', flush=True)",
        'except OSError as e:',
        "    print('unlock failed', flush=True)",
        `os.kill(${inner.proc.pid}, signal.SIGCONT)`,
      ].join('\n'),
    );
    await until("P's line: a page dirtied under its lock", () => holder.lines.includes('dirty'));
    t.ok(threadsNamed('locksmith-inval').length > 0, 'a store mount has its invalidation threads');
    /** The invalidation thread in a notify (writev to /dev/fuse), if any. */
    const heldIn = () => threadsNamed('locksmith-inval').find((tid) => syscallOf(process.pid, tid) === sys.writev);
    // Q opens another file now: with the inner server stopped, an open would wait for it.
    const queued = python(
      [
        'import fcntl, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'g'))}, os.O_RDWR)`,
        "print('opened', flush=True)",
        'sys.stdin.readline()',
        'try:',
        "    fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True)",
        'except OSError as e:',
        "    print('lock failed', flush=True)",
      ].join('\n'),
    );
    await until("Q's line: the file opened", () => queued.lines.includes('opened'));
    inner.proc.kill('SIGSTOP');
    await until('the inner server stopped', () => readFileSync(`/proc/${inner!.proc.pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('T'));
    // Held: P in its unlock (fcntl) and the invalidation thread in its notify (writev to /dev/fuse)
    // at once: the grant's invalidation ended before P printed, so this one is the unlock's.
    holder.p.stdin!.write('go\n');
    await until("P waiting in its unlock while the invalidation thread is in its notify", () => (syscallOf(holder.p.pid!, holder.p.pid!) === sys.fcntl && heldIn()) || undefined);
    // Q locks another file: its grant is answered by another invalidation thread, or (decided
    // late) at the unmount.
    queued.p.stdin!.write('go\n');
    await until("Q's lock request on the mount", () => syscallOf(queued.p.pid!, queued.p.pid!) === sys.fcntl || queued.lines.length > 1 || undefined);
    t.ok(heldIn(), 'an invalidation thread is still held in its notify');

    await a.unmount();
    t.notOk(mounted(mnt), 'the store mount is gone');
    t.equal(threadsNamed('locksmith-inval').length, 0, 'its invalidation threads ended');
    t.equal(await holder.exited, 0, 'P exited');
    t.equal(holder.lines[1]?.startsWith('unlock'), true, `P's unlock was answered: ${holder.lines[1]}`);
    t.equal(await queued.exited, 0, 'Q exited');
    t.equal(queued.lines.length, 2, `Q's lock was answered: ${queued.lines[1]}`);

    inner.proc.kill('SIGTERM');
    t.match(await inner.ended(), { code: 0 }, 'the inner server unmounted and exited');
    t.notOk(mounted(innerMnt), 'the inner mount is gone');
    rmSync(base, { recursive: true, force: true });
  });
}
