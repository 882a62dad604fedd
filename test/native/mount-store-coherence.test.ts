/**
 * What a process on one mount sees of what a process on the other mount did, over one shared lock
 * space (two mounts of one backing directory, each its own node on a real redis-server: two file
 * servers in front of one shared storage). Each mount has a kernel cache of its own, of names and
 * of data; the locks are only worth something if what they protect is what the holder reads:
 * - a name removed (or renamed away) through one mount must not open through the other, with the
 *   contents it had (SQLite replayed a rollback journal the other node had deleted after committing:
 *   lost updates);
 * - a name created through one mount is found through the other, also after a lookup missed it;
 * - a lock granted through one mount (at once, or later to a waiter; POSIX, OFD, flock) must show
 *   what the other mount wrote before it unlocked, a file it grew whole (NFS drops a file's cached
 *   data when a lock is granted);
 * - so too through a shared mapping: stores through it under a lock reach the other mount by the
 *   unlock (written back before the unlock is answered), and pages mapped before a lock are dropped
 *   when it is granted (fuse_session.cc, the invalidation thread).
 *
 * The processes are python3, as in mount-store.test.ts. Skips only outside CI when a mount,
 * redis-server or python3 cannot work here, saying why; with CI set it fails instead.
 */
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { twoStoreMounts } from './store-mounts.js';

const m = twoStoreMounts('test/native/mount-store-coherence.test.ts', 'locksmith-mount-coherence-');
if (m !== undefined) {
  const { backing, mntA, mntB, python } = m;

  t.test('a file removed through one mount does not open through the other, nor a name renamed onto another file open the old one', async (t) => {
    const out = await python(
      [
        'import os',
        `A, B = ${JSON.stringify(mntA)}, ${JSON.stringify(mntB)}`,
        "open(A + '/journal', 'w').write('old')",
        "print('seen', os.path.exists(B + '/journal'))",  // mount b now knows the name
        "os.unlink(A + '/journal')",
        'try:',
        "    fd = os.open(B + '/journal', os.O_RDONLY); print('opened', os.read(fd, 10).decode()); os.close(fd)",
        'except FileNotFoundError:',
        "    print('ENOENT')",
        "open(A + '/f', 'w').write('old'); open(A + '/g', 'w').write('new')",
        "print('f', open(B + '/f').read())",  // mount b now knows f as the old file
        "os.rename(A + '/g', A + '/f')",
        "print('f', open(B + '/f').read())",
      ].join('\n'),
    );
    t.same(out, ['seen True', 'ENOENT', 'f old', 'f new'], 'mount b opens what the shared storage holds, as a local file system would');
  });

  t.test('a lock granted through one mount shows what a process on the other wrote before it unlocked', async (t) => {
    writeFileSync(join(backing, 'data'), 'AAAA');
    const out = await python(
      [
        'import fcntl, os',
        `a = os.open(${JSON.stringify(join(mntA, 'data'))}, os.O_RDWR)`,
        `b = os.open(${JSON.stringify(join(mntB, 'data'))}, os.O_RDWR)`,
        "print('a reads', os.pread(a, 4, 0).decode())",  // in mount a's cache now
        'fcntl.lockf(b, fcntl.LOCK_EX)',
        "os.pwrite(b, b'BBBB', 0)",
        'fcntl.lockf(b, fcntl.LOCK_UN)',
        'fcntl.lockf(a, fcntl.LOCK_SH)',
        "print('a reads', os.pread(a, 4, 0).decode())",
        'fcntl.lockf(a, fcntl.LOCK_UN)',
        'fcntl.flock(b, fcntl.LOCK_EX)',
        "os.pwrite(b, b'CCCC', 0)",
        'fcntl.flock(b, fcntl.LOCK_UN)',
        'fcntl.flock(a, fcntl.LOCK_SH)',
        "print('a reads', os.pread(a, 4, 0).decode())",
      ].join('\n'),
    );
    t.same(out, ['a reads AAAA', 'a reads BBBB', 'a reads CCCC'], "after each grant mount a reads what b wrote under its lock, not its cache's copy");
  });

  t.test('SQLite on the two mounts: every transaction of two writers counts', async (t) => {
    const db = join(backing, 'db');
    await python(`import sqlite3; c = sqlite3.connect(${JSON.stringify(db)}); c.execute('create table t(n integer)'); c.execute('insert into t values(0)'); c.commit()`);
    const writer = (mnt: string) =>
      python(
        [
          'import sqlite3',
          `c = sqlite3.connect(${JSON.stringify(join(mnt, 'db'))}, timeout=60, isolation_level=None)`,
          'for i in range(150):',
          "    c.execute('begin immediate'); n = c.execute('select n from t').fetchone()[0]; c.execute('update t set n=?', (n + 1,)); c.execute('commit')",
          "print('done')",
        ].join('\n'),
      );
    t.same(await Promise.all([writer(mntA), writer(mntB)]), [['done'], ['done']]);
    t.same(await python(`import sqlite3; print(sqlite3.connect(${JSON.stringify(db)}).execute('select n from t').fetchone()[0])`), ['300'], '150 increments from each mount (the default rollback journal, deleted at each commit)');
  });

  t.test(
    "bytes written through a shared mapping under a lock on one mount are read under the next lock on the other",
    async (t) => {
      writeFileSync(join(backing, 'mapped'), 'AAAA');
      const out = await python(
        [
          'import fcntl, mmap, os',
          `a = os.open(${JSON.stringify(join(mntA, 'mapped'))}, os.O_RDWR)`,
          `b = os.open(${JSON.stringify(join(mntB, 'mapped'))}, os.O_RDWR)`,
          'm = mmap.mmap(a, 4)',
          "fcntl.lockf(a, fcntl.LOCK_EX); m[0:4] = b'MMMM'; fcntl.lockf(a, fcntl.LOCK_UN)",
          "fcntl.lockf(b, fcntl.LOCK_SH); print('b reads', os.pread(b, 4, 0).decode())",
        ].join('\n'),
      );
      t.same(out, ['b reads MMMM'], 'as on a local file system (one page cache) or NFS (written back at unlock)');
    },
  );

  t.test(
    'flock on a directory through one mount conflicts through the other',
    { todo: "not fixed: the kernel's FUSE sends no lock request for a directory (its directory file operations have no flock), so each mount's kernel decides a directory's flock alone; only documenting it, or refusing, is in reach" },
    async (t) => {
      mkdirSync(join(backing, 'dir'));
      const out = await python(
        [
          'import fcntl, os',
          `a = os.open(${JSON.stringify(join(mntA, 'dir'))}, os.O_RDONLY)`,
          `b = os.open(${JSON.stringify(join(mntB, 'dir'))}, os.O_RDONLY)`,
          'fcntl.flock(a, fcntl.LOCK_EX)',
          'try:',
          "    fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB); print('granted')",
          'except BlockingIOError:',
          "    print('EAGAIN')",
        ].join('\n'),
      );
      t.same(out, ['EAGAIN'], 'as two processes on one mount (or one local file system) see it');
    },
  );

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
