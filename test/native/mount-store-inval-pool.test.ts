/**
 * A store mount's invalidations (before a grant's answer, before an unlock goes on) run on a small
 * pool of threads, a file at a time each (fuse_session.cc invalidationLoop): one file whose
 * write-back cannot end holds its own requests only. Here P's unlock of `f` is held in its
 * invalidation, which must write back a page P dirtied through a shared mapping into a backing
 * directory that is itself a FUSE mount whose server (a `locksmith mount` child) is stopped
 * (SIGSTOP); meanwhile Q's lock of another file `g` is granted and answered. With one invalidation
 * thread per mount Q's answer waited behind P's until the backing store came back.
 * Then the backing server resumes, P's unlock is answered, and the mount unmounts as usual.
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
  console.error(`\n${bar}\n!! SKIPPING test/native/mount-store-inval-pool.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE, redis-server or python3 unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE, redis-server and python3 are required in CI but unavailable: ${why}`);
  const sys = SYSCALLS[process.arch]!;

  const base = mkdtempSync(join(tmpdir(), 'locksmith-inval-pool-'));
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

  const syscallOf = (pid: number, tid: number) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]!.trim();
    } catch {
      return undefined;
    }
  };
  /** This process's invalidation threads (pthread_setname_np "locksmith-inval"). */
  const invalThreads = () =>
    readdirSync('/proc/self/task')
      .map(Number)
      .filter((tid) => {
        try {
          return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'locksmith-inval';
        } catch {
          return false;
        }
      });
  const python = (program: string) => {
    const p = spawn('python3', ['-c', program], { stdio: ['pipe', 'pipe', 'inherit'] });
    procs.push(p);
    const lines: string[] = [];
    createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    return { p, lines, exited };
  };

  t.test("one file's held write-back does not hold another file's grant", async (t) => {
    inner = new Server([innerBacking, innerMnt, '--workers', '1']);
    await inner.serving();
    const backing = join(innerMnt, 'dir');
    mkdirSync(backing);
    writeFileSync(join(backing, 'f'), 'AAAA');
    writeFileSync(join(backing, 'g'), 'AAAA');
    const server = await RedisServer.start();
    t.teardown(() => server.stop());
    const a: FuseMount = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { url: server.url, namespace: `p-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 10_000 } });
    t.teardown(async () => {
      inner?.proc.kill('SIGCONT');
      await a.unmount();
    });

    const holder = python(
      [
        'import fcntl, mmap, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_RDWR)`,
        'm = mmap.mmap(fd, 4)',
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        "m[0:4] = b'MMMM'",
        "print('dirty', flush=True)",
        'sys.stdin.readline()',
        "fcntl.lockf(fd, fcntl.LOCK_UN); print('unlocked', flush=True)",
      ].join('\n'),
    );
    await until("P's line: a page dirtied under its lock", () => holder.lines.includes('dirty'));
    t.ok(invalThreads().length > 1, `a store mount has a pool of invalidation threads (${invalThreads().length})`);
    // Q opens g now: with the inner server stopped, an open would wait for it.
    const other = python(
      [
        'import fcntl, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'g'))}, os.O_RDWR)`,
        "print('opened', flush=True)",
        'sys.stdin.readline()',
        "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
    );
    await until("Q's line: the file opened", () => other.lines.includes('opened'));
    inner.proc.kill('SIGSTOP');
    await until('the inner server stopped', () => readFileSync(`/proc/${inner!.proc.pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('T'));
    holder.p.stdin!.write('go\n');
    const heldIn = () => invalThreads().find((tid) => syscallOf(process.pid, tid) === sys.writev);
    await until('P waiting in its unlock while an invalidation thread is in its notify', () => (syscallOf(holder.p.pid!, holder.p.pid!) === sys.fcntl && heldIn()) || undefined);
    other.p.stdin!.write('go\n');
    // Budget: a grant on a quiet mount takes milliseconds; waited behind P's, it never comes while
    // the inner server is stopped.
    await until("Q's grant of g answered while P's unlock of f is held", () => other.lines.includes('locked') || undefined, 30_000);
    t.ok(heldIn(), "P's invalidation is still held in its notify");
    t.equal(syscallOf(holder.p.pid!, holder.p.pid!), sys.fcntl, 'P still waits in its unlock');
    t.notOk(holder.lines.includes('unlocked'), "P's unlock is not answered yet");

    inner.proc.kill('SIGCONT');
    await until("P's unlock answered once the backing store is back", () => holder.lines.includes('unlocked') || undefined);
    t.equal(readFileSync(join(innerBacking, 'dir', 'f'), 'utf8'), 'MMMM', "P's mapped write reached the backing store before its unlock was answered");
    other.p.stdin!.end();
    t.equal(await holder.exited, 0, 'P exited');
    t.equal(await other.exited, 0, 'Q exited');
    await a.unmount();
    t.notOk(mounted(mnt), 'the store mount is gone');
    t.equal(invalThreads().length, 0, 'its invalidation threads ended');
    inner.proc.kill('SIGTERM');
    t.match(await inner.ended(), { code: 0 }, 'the inner server unmounted and exited');
    rmSync(base, { recursive: true, force: true });
  });
}
