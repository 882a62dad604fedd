/**
 * More of what a process on one mount sees of what one on the other did (mount-store-coherence.test.ts
 * has the first cases): a name created there, a lock granted later (a waiter, an OFD lock), a file
 * that grew. The setup is that file's.
 *
 * What a process on one mount sees of what a process on the other mount did, over one shared lock
 * space (two mounts of one backing directory, each its own node on a real redis-server: two file
 * servers in front of one shared storage). Each mount has a kernel cache of its own, of names and
 * of data; the locks are only worth something if what they protect is what the holder reads:
 * - a name removed (or renamed away) through one mount must not open through the other, with the
 *   contents it had (SQLite replayed a rollback journal the other node had deleted after committing:
 *   lost updates);
 * - a lock granted through one mount must show what the other mount wrote before it unlocked
 *   (NFS drops a file's cached data when a lock is granted).
 *
 * The processes are python3, as in mount-store.test.ts. Skips only outside CI when a mount,
 * redis-server or python3 cannot work here, saying why; with CI set it fails instead.
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
  console.error(`\n${bar}\n!! SKIPPING test/native/mount-store-coherence.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE, redis-server or python3 unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE, redis-server and python3 are required in CI but unavailable: ${why}`);

  const base = mkdtempSync(join(tmpdir(), 'locksmith-mount-coherence2-'));
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

  t.test('a name created through one mount is seen through the other at once, after it was looked up and not found there', async (t) => {
    const out = await python(
      [
        'import os',
        `A, B = ${JSON.stringify(mntA)}, ${JSON.stringify(mntB)}`,
        "print('before', os.path.exists(B + '/new'))",
        "open(A + '/new', 'w').write('made')",
        "print('after', os.path.exists(B + '/new'), open(B + '/new').read())",
        "os.mkdir(A + '/newdir'); open(A + '/newdir/x', 'w').write('x')",
        "print('dir', sorted(os.listdir(B + '/newdir')))",
      ].join('\n'),
    );
    t.same(out, ['before False', 'after True made', "dir ['x']"], 'no name found missing is remembered missing');
  });

  t.test('a lock granted later to a waiter (F_SETLKW, and an OFD lock) shows what the holder on the other mount wrote', async (t) => {
    writeFileSync(join(backing, 'waited'), 'AAAA');
    const out = await python(
      [
        'import fcntl, os, struct, threading, time',
        `a = os.open(${JSON.stringify(join(mntA, 'waited'))}, os.O_RDWR)`,
        `b = os.open(${JSON.stringify(join(mntB, 'waited'))}, os.O_RDWR)`,
        "print('a reads', os.pread(a, 4, 0).decode())",
        'fcntl.lockf(b, fcntl.LOCK_EX)',
        'got = []',
        // The waiter on mount a: blocked until b unlocks (it runs in a thread; b goes on meanwhile).
        'tid = []',
        "w = threading.Thread(target=lambda: (tid.append(threading.get_native_id()), fcntl.lockf(a, fcntl.LOCK_SH), got.append(os.pread(a, 4, 0).decode()), fcntl.lockf(a, fcntl.LOCK_UN)))",
        'w.start()',
        // b writes once the waiter is in its fcntl (syscall 72 on x86_64, 25 on aarch64): it waits for b's unlock.
        "while not tid or open(f'/proc/self/task/{tid[0]}/syscall').read().split()[0] not in ('72', '25'): time.sleep(0.001)",
        "os.pwrite(b, b'BBBB', 0)",
        'fcntl.lockf(b, fcntl.LOCK_UN)',
        'w.join()',
        "print('a waited, reads', got[0])",
        // OFD locks (F_OFD_SETLKW), whole file.
        "ofd = lambda fd, typ: fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, struct.pack('hhqqi4x', typ, 0, 0, 0, 0))",
        'ofd(b, fcntl.F_WRLCK)',
        "os.pwrite(b, b'CCCC', 0)",
        'ofd(b, fcntl.F_UNLCK)',
        'ofd(a, fcntl.F_RDLCK)',
        "print('a ofd reads', os.pread(a, 4, 0).decode())",
        'ofd(a, fcntl.F_UNLCK)',
      ].join('\n'),
    );
    t.same(out, ['a reads AAAA', 'a waited, reads BBBB', 'a ofd reads CCCC'], "after each grant mount a reads what b wrote under its lock, not its cache's copy");
  });

  t.test('a file that grew through the other mount: read whole under the next lock', async (t) => {
    writeFileSync(join(backing, 'grew'), 'AAAA');
    const out = await python(
      [
        'import fcntl, os',
        `a = os.open(${JSON.stringify(join(mntA, 'grew'))}, os.O_RDWR)`,
        `b = os.open(${JSON.stringify(join(mntB, 'grew'))}, os.O_RDWR | os.O_APPEND)`,
        "print('a reads', os.pread(a, 100, 0).decode(), os.fstat(a).st_size)",
        'fcntl.lockf(b, fcntl.LOCK_EX)',
        "os.write(b, b'BBBB')",
        'fcntl.lockf(b, fcntl.LOCK_UN)',
        'fcntl.lockf(a, fcntl.LOCK_SH)',
        "print('a reads', os.pread(a, 100, 0).decode(), os.fstat(a).st_size)",
        'fcntl.lockf(a, fcntl.LOCK_UN)',
      ].join('\n'),
    );
    t.same(out, ['a reads AAAA 4', 'a reads AAAABBBB 8'], 'the new size and bytes, as on one file system');
  });

  t.test(
    'bytes read through a shared mapping under a lock on one mount are what the other mount wrote before it unlocked',
    { todo: "not fixed: the grant marks only the file's attributes stale, and a read through a mapping asks for none, so the pages mapped before the lock stay (NFS drops a mapped file's pages at each lock: do_setlk, nfs_revalidate_mapping); dropping them (notify_inval_inode with a range) must not run on the thread that polls the device, as a locked page may wait on a read only it would receive" },
    async (t) => {
      writeFileSync(join(backing, 'mapread'), 'AAAA');
      const out = await python(
        [
          'import fcntl, mmap, os',
          `a = os.open(${JSON.stringify(join(mntA, 'mapread'))}, os.O_RDWR)`,
          `b = os.open(${JSON.stringify(join(mntB, 'mapread'))}, os.O_RDWR)`,
          'm = mmap.mmap(a, 4, prot=mmap.PROT_READ)',
          "print('a maps', m[0:4].decode())",
          "fcntl.lockf(b, fcntl.LOCK_EX); os.pwrite(b, b'BBBB', 0); fcntl.lockf(b, fcntl.LOCK_UN)",
          "fcntl.lockf(a, fcntl.LOCK_SH); print('a maps', m[0:4].decode())",
        ].join('\n'),
      );
      t.same(out, ['a maps AAAA', 'a maps BBBB'], 'as on a local file system (one page cache) or NFS (a mapped file\'s pages dropped at the lock)');
    },
  );
}
