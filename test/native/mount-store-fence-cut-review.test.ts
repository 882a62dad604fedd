/**
 * Review of the fence watcher (Passthrough::fenceWatch): a lease cut short. The session is gone on
 * the engine long before its local deadline (its key deleted: the next renewal learns it, the lease
 * goes to -Infinity at once, the node opens a new session and its locks are lost: EIO through their
 * handles). The watcher sleeps until the old deadline and is woken early only by I/O of a locked
 * file that reaches the server; a read the kernel answers from its page cache never does. So a
 * process whose lock was lost (another node may hold the bytes now) reads its cached pages on.
 * Needs root, /dev/fuse and redis-server; skipped (loudly) without them.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { until } from './proc.js';
import { oneStoreMount } from './store-mounts.js';

// Renewed every 500 ms while the engine answers: the lease's natural deadline never comes.
const TTL = 4000;
const m = oneStoreMount('test/native/mount-store-fence-cut-review.test.ts', 'locksmith-fence-cut-', TTL, { locked: 'precious', probe: 'x' });
if (m !== undefined) {
  const { mnt } = m;

  t.test('a cached read of a file whose lock was lost (lease cut short) fails with EIO', async (t) => {
    const py = [
      'import fcntl, os, sys, time',
      `fd = os.open(${JSON.stringify(join(mnt, 'locked'))}, os.O_RDWR)`,
      `pfd = os.open(${JSON.stringify(join(mnt, 'probe'))}, os.O_RDWR)`,
      'fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)',
      'fcntl.lockf(pfd, fcntl.LOCK_EX, 0, 0)',
      'os.pread(fd, 8, 0)',
      'print("locked", flush=True)',
      'sys.stdin.readline()',
      // Only once the new session is open (the lease valid again): the probe's writes cannot wake the watcher.
      'while True:',
      '    try:',
      '        os.pwrite(pfd, b"p", 0)',
      '    except OSError as e:',
      '        print("lost", e.errno, flush=True); break',
      '    time.sleep(0.005)',
      'try:',
      '    print("read ok", os.pread(fd, 8, 0).decode(), flush=True)',
      'except OSError as e:',
      '    print("read err", e.errno, flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => p.kill('SIGKILL'));
    const lines: string[] = [];
    createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
    await until('the locks through the mount', () => lines.includes('locked') || undefined);
    const redis = await m.server.client();
    const keys = (await redis.keys('*s:a')).filter((k) => /[^s]s:a$/.test(k) || k === 's:a');
    t.equal(keys.length, 1, `the session's key: ${keys.join(', ')}`);
    await redis.del(keys[0]!);
    await until("the mount's new session", async () => ((await m.mount.coordinator.stats()).store?.sessions ?? 0) >= 2 || undefined);
    p.stdin!.write('go\n');
    await until('the probe lost (its lock with the session)', () => lines.find((l) => l.startsWith('read')));
    p.stdin!.end();
    t.match(lines.find((l) => l.startsWith('lost')), /^lost 5$/, 'the probe, locked with the same session, is lost: EIO');
    t.equal(m.mount.info().fenceDeadlines ?? 0, 0, 'no deadline of the lease passed');
    t.match(lines.find((l) => l.startsWith('read')), /^read err 5$/, 'the cached read of the lost file fails as a read through the server does');
  });
}
