/**
 * Review of 6d03fc2 (fence a locked file's I/O at the lease): an open(O_TRUNC) of a locked file
 * while its lease ran out truncates the backing file. With FUSE_CAP_ATOMIC_O_TRUNC (libfuse3's
 * default) the truncation rides on OPEN (opOpen passes fi->flags to open(2)), which fencedIo never
 * checks: only read, write_buf and setattr(size) are fenced.
 * Needs root, /dev/fuse and redis-server; skipped (loudly) without them.
 */
import t from 'tap';
import { readFileSync, } from 'node:fs';
import { join } from 'node:path';
import { until } from './proc.js';
import { lockUntilFenced, oneStoreMount } from './store-mounts.js';

const TTL = 4000;
const m = oneStoreMount('test/native/mount-store-io-fence-otrunc-review.test.ts', 'locksmith-io-fence-otrunc-', TTL, { locked: 'precious' });
if (m !== undefined) {
  const { backing, mnt } = m;

  t.test('an open(O_TRUNC) of a locked file is fenced like ftruncate once the lease ran out', async (t) => {
    const path = JSON.stringify(join(mnt, 'locked'));
    const { p, lines } = lockUntilFenced(t, {
      locks: { fd: join(mnt, 'locked') },
      probe: 'fd',
      after: [
        'try:',
        '    os.ftruncate(fd, 0); print("ftruncate ok", flush=True)',
        'except OSError as e:',
        '    print("ftruncate err", e.errno, flush=True)',
        'try:',
        `    g = os.open(${path}, os.O_WRONLY | os.O_TRUNC); print("otrunc ok", flush=True); os.close(g)`,
        'except OSError as e:',
        '    print("otrunc err", e.errno, flush=True)',
      ],
    });
    await until('the lock through the mount', () => lines.includes('locked') || undefined);
    m.server.pause();
    await until('the fence', () => lines.some((l) => l.startsWith('fenced')) || undefined, TTL);
    await until('the truncations tried', () => lines.includes('end') || undefined);
    const size = readFileSync(join(backing, 'locked')).length;
    m.server.resume();
    p.stdin!.end();
    t.match(lines.find((l) => l.startsWith('ftruncate')), /^ftruncate err 5$/, 'ftruncate is fenced (EIO)');
    t.match(lines.find((l) => l.startsWith('otrunc')), /^otrunc err 5$/, 'open(O_TRUNC) is fenced (EIO)');
    t.equal(size, 8, 'the backing file was not truncated while the lease ran out');
  });
}
