/**
 * Review of the store-mount invalidation (fuse_session.cc, locksmith-inval): cases its own tests
 * did not try. Two mounts of one backing directory over one redis-server, as in
 * mount-store-coherence.test.ts; the processes are python3.
 */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { HANG_MS, forceUnmount, mountEnvironmentMissing, mounted } from './proc.js';

const noPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import fcntl, sqlite3'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no python3 (with fcntl and sqlite3) for the processes on the mounts';
  }
})();

const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined) ?? noPython;
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/mount-store-inval-review.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE, redis-server or python3 unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE, redis-server and python3 are required in CI but unavailable: ${why}`);

  const base = mkdtempSync(join(tmpdir(), 'locksmith-inval-review-'));
  const backing = join(base, 'backing');
  const mntA = join(base, 'a');
  const mntB = join(base, 'b');
  for (const d of [backing, mntA, mntB]) mkdirSync(d);
  process.on('exit', () => {
    forceUnmount(mntA);
    forceUnmount(mntB);
  });

  let server: RedisServer;
  let a: FuseMount;
  let b: FuseMount;

  /** Runs a python3 program (never synchronously: this process serves the mounts) and gives its stdout's lines. */
  const python = (program: string) =>
    new Promise<string[]>((resolve, reject) => {
      const p = spawn('python3', ['-c', program], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`still waiting after ${HANG_MS / 1000} s for the python3 process to exit`));
      }, HANG_MS);
      p.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out.trim().split('\n'));
        else reject(new Error(`python3 exited with ${code}: ${err}`));
      });
    });

  t.before(async () => {
    server = await RedisServer.start();
    const namespace = `c-${randomUUID().slice(0, 8)}`;
    // A new namespace starts with a grace period of sessionTtlMs: short, so the first grant comes soon.
    a = await mountFuse({ backing, mountpoint: mntA, workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: 2000 } });
    b = await mountFuse({ backing, mountpoint: mntB, workers: 2, store: { url: server.url, namespace, node: 'b', sessionTtlMs: 2000 } });
  });

  t.teardown(async () => {
    await a?.unmount();
    await b?.unmount();
    forceUnmount(mntA);
    forceUnmount(mntB);
    await server?.stop();
    if (mounted(mntA) || mounted(mntB)) throw new Error('a mount is still there');
    rmSync(base, { recursive: true, force: true });
  });

  /**
   * A python3 program: the child (mount b) blocks in F_SETLKW (or flock) on a file whose lock the
   * parent (mount a) holds while it stores through a shared mapping; the parent unlocks, the child,
   * granted, counts the bytes of the backing file (through mount b) that are not the parent's.
   */
  const unlockRace = (kind: 'lockf' | 'flock', name: string, mib: number) => [
    'import fcntl, mmap, os, sys, time',
    `A, B, N = ${JSON.stringify(join(mntA, name))}, ${JSON.stringify(join(mntB, name))}, ${mib} << 20`,
    `lock = (lambda fd, op: fcntl.${kind}(fd, op))`,
    'a = os.open(A, os.O_RDWR)',
    'm = mmap.mmap(a, N)',
    'lock(a, fcntl.LOCK_EX)',
    'r, w = os.pipe()',
    'pid = os.fork()',
    'if pid == 0:',
    '    os.close(r)',
    '    b = os.open(B, os.O_RDWR)',
    '    lock(b, fcntl.LOCK_EX)',  // blocks: the parent holds it
    '    data = os.pread(b, N, 0)',
    "    os.write(w, str(N - data.count(b'M')).encode())",
    '    os._exit(0)',
    'os.close(w)',
    // Until the child sleeps in fcntl or flock (x86_64 72, 73; arm64 25, 32): the unlock then wakes a waiter.
    'for i in range(6000):',
    "    f = open('/proc/%d/syscall' % pid).read().split()[0]",
    "    if f in ('72', '73', '25', '32'): break",
    '    time.sleep(0.01)',
    "m[:] = b'M' * N",  // dirty pages, written back only by the invalidation
    'lock(a, fcntl.LOCK_UN)',
    "print('stale', os.read(r, 100).decode())",
    'os.waitpid(pid, 0)',
  ].join('\n');

  for (const kind of ['lockf', 'flock'] as const) {
    t.test(
      `a waiter on the other mount, granted at a ${kind} unlock, reads what the holder stored through its mapping`,
      async (t) => {
        const name = `race-${kind}`;
        writeFileSync(join(backing, name), Buffer.alloc(16 << 20, 'A'));
        const out = await python(unlockRace(kind, name, 16));
        t.same(out, ['stale 0'], 'no byte read by the waiter is older than the unlock (as NFS: written back before the unlock reaches the server)');
      },
    );
  }

}
