/**
 * The I/O fence covers reads the kernel would answer from its page cache (first found by review:
 * such a read never reaches opRead). At the lease's deadline the mount's fence watcher
 * (Passthrough::fenceWatch, a native thread asleep until then) drops the cached pages of every file
 * locked through the mount, so the next read comes to the server and gets EIO. A file that was
 * never locked here keeps its cache (and is not fenced).
 * Needs root, /dev/fuse and redis-server; skipped (loudly) without them.
 */
import t from 'tap';
import { join } from 'node:path';
import { until } from './proc.js';
import { lockUntilFenced, oneStoreMount } from './store-mounts.js';

const TTL = 4000;
const m = oneStoreMount('test/native/mount-store-io-fence-cache-review.test.ts', 'locksmith-io-fence-cache-', TTL, { locked: 'precious', probe: 'x', free: 'freebies' });
if (m !== undefined) {
  const { mnt } = m;

  t.test('a cached read of a locked file fails with EIO once the lease ran out', async (t) => {
    const { p, lines } = lockUntilFenced(t, {
      locks: { fd: join(mnt, 'locked'), pfd: join(mnt, 'probe') },
      probe: 'pfd',
      before: [`ffd = os.open(${JSON.stringify(join(mnt, 'free'))}, os.O_RDWR)`, 'os.pread(fd, 8, 0)', 'os.pread(ffd, 8, 0)'],
      after: [
        'sys.stdin.readline()',
        'for name, f in (("read", fd), ("free", ffd)):',
        '    try:',
        '        print(name, "ok", os.pread(f, 8, 0).decode(), flush=True)',
        '    except OSError as e:',
        '        print(name, "err", e.errno, flush=True)',
      ],
    });
    await until('the locks through the mount', () => lines.includes('locked') || undefined);
    const before = m.mount.info().fenceDeadlines ?? 0;
    m.server.pause();
    await until('the fence (a write of the other locked file refused)', () => lines.some((l) => l.startsWith('fenced')) || undefined, TTL);
    // The watcher acts at the deadline; the fenced write may come first (a thread's wake-up late).
    await until('the fence watcher at the deadline', () => (m.mount.info().fenceDeadlines ?? 0) > before || undefined);
    // The drops are done on the invalidation threads, after the watcher handed them on.
    const drops = await until('the drops of both locked files done', () => { const n = m.mount.info().fenceDrops ?? 0; return n >= 2 ? n : undefined; });
    t.ok(drops >= 2, 'the watcher dropped the cached pages of both locked files');
    p.stdin!.write('read\n');
    await until('the reads tried', () => lines.includes('end') || undefined);
    m.server.resume();
    p.stdin!.end();
    t.match(lines.find((l) => l.startsWith('read')), /^read err 5$/, 'the read of the locked file is fenced (EIO)');
    t.match(lines.find((l) => l.startsWith('free')), /^free ok freebies$/, 'a file never locked here reads on');
  });
}
