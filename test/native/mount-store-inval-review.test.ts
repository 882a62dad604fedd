/**
 * Review of the store-mount invalidation (fuse_session.cc, locksmith-inval): cases its own tests
 * did not try. Two mounts of one backing directory over one redis-server, as in
 * mount-store-coherence.test.ts; the processes are python3:
 * - a waiter on the other mount granted by an unlock (lockf, flock) reads the holder's mapped stores
 *   (they were written back only at the unlock's answer, after redis had released it: all stale);
 * - on one mount, a waiter holding dirty mapped pages of the file is granted at another's unlock;
 * - a flock released by the last close (FUSE_RELEASE, after munmap wrote back) and an OFD unlock.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { twoStoreMounts } from './store-mounts.js';

const m = twoStoreMounts('test/native/mount-store-inval-review.test.ts', 'locksmith-inval-review-');
if (m !== undefined) {
  const { backing, mntA, mntB, python } = m;

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

  const P = (s: string) => JSON.stringify(s);
  t.test('on one mount, a waiter with dirty mapped pages of the file is granted at another process\'s unlock (no deadlock), its stores reach the storage', async (t) => {
    writeFileSync(join(backing, 'p1'), Buffer.alloc(8 << 20, 'A'));
    const out = await python([
      'import fcntl, mmap, os, time',
      `A = ${P(join(mntA, 'p1'))}; N = 8 << 20`,
      'r, w = os.pipe()',
      'h = os.open(A, os.O_RDWR); fcntl.lockf(h, fcntl.LOCK_EX, 4096, 0)',
      'pid = os.fork()',
      'if pid == 0:',
      '    a = os.open(A, os.O_RDWR); m = mmap.mmap(a, N); m[4096:] = b"D" * (N - 4096)',  // dirty, outside the lock
      '    fcntl.lockf(a, fcntl.LOCK_EX, 4096, 0)',
      '    os.write(w, b"ok"); os._exit(0)',
      'for i in range(6000):',
      "    if open('/proc/%d/syscall' % pid).read().split()[0] == '72': break",
      '    time.sleep(0.01)',
      'fcntl.lockf(h, fcntl.LOCK_UN, 4096, 0)',
      "print(os.read(r, 10).decode()); os.waitpid(pid, 0)",
      `print(open(${P(join(backing, 'p1'))}, 'rb').read().count(b'D'))`,
    ].join('\n'));
    t.same(out, ['ok', String((8 << 20) - 4096)], 'the waiter got its lock and every byte it stored outside it is in the backing file');
  });
  t.test('a waiter on the other mount reads the mapped stores of a flock released by the last close, and of an OFD lock unlocked', async (t) => {
    writeFileSync(join(backing, 'p5'), Buffer.alloc(4 << 20, 'A'));
    const out = await python([
      'import fcntl, mmap, os, struct, time',
      `A, B, N = ${P(join(mntA, 'p5'))}, ${P(join(mntB, 'p5'))}, 4 << 20`,
      'r, w = os.pipe()',
      'a = os.open(A, os.O_RDWR); fcntl.flock(a, fcntl.LOCK_EX); m = mmap.mmap(a, N)',
      'pid = os.fork()',
      'if pid == 0:',
      '    os.close(a); m.close()',
      '    b = os.open(B, os.O_RDWR); fcntl.flock(b, fcntl.LOCK_EX); d = os.pread(b, N, 0)',
      "    os.write(w, str(N - d.count(b'F')).encode()); os._exit(0)",
      'for i in range(6000):',
      "    if open('/proc/%d/syscall' % pid).read().split()[0] == '73': break",
      '    time.sleep(0.01)',
      "m[:] = b'F' * N; os.close(a); m.close()",  // released by the last reference
      "print('flock-close stale', os.read(r, 100).decode()); os.waitpid(pid, 0)",
      // OFD (F_OFD_SETLKW = 38, F_OFD_SETLK = 37)
      'a = os.open(A, os.O_RDWR); m = mmap.mmap(a, N)',
      "fl = lambda t: struct.pack('hhqqi4x', t, 0, 0, 0, 0)",
      'fcntl.fcntl(a, 38, fl(fcntl.F_WRLCK))',
      'pid = os.fork()',
      'if pid == 0:',
      "    b = os.open(B, os.O_RDWR); fcntl.fcntl(b, 38, fl(fcntl.F_WRLCK)); d = os.pread(b, N, 0)",
      "    os.write(w, str(N - d.count(b'O')).encode()); os._exit(0)",
      'for i in range(6000):',
      "    if open('/proc/%d/syscall' % pid).read().split()[0] == '72': break",
      '    time.sleep(0.01)',
      "m[:] = b'O' * N; fcntl.fcntl(a, 37, fl(fcntl.F_UNLCK))",
      "print('ofd stale', os.read(r, 100).decode()); os.waitpid(pid, 0)",
    ].join('\n'));
    t.same(out, ['flock-close stale 0', 'ofd stale 0'], 'no stale byte read by either waiter');
  });
}
