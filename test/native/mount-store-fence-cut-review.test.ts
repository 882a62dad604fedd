/**
 * Review of the fence watcher (Passthrough::fenceWatch): a lease cut short. The session is gone on
 * the engine long before its local deadline (its key deleted: the next renewal learns it, the lease
 * goes to -Infinity at once, the node opens a new session and its locks are lost: EIO through their
 * handles). The watcher sleeps until the old deadline and is woken early only by I/O of a locked
 * file that reaches the server; a read the kernel answers from its page cache never does. So a
 * process whose lock was lost (another node may hold the bytes now) read its cached pages on. Now
 * a lost mark drops the files' pages too (on the invalidation threads, so a read may still find
 * them in the moments after the probe fails: the test reads until it fails, within 20 s).
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
      // The lost handles' pages are dropped on the mount's invalidation threads, after the marks
      // that fail the probe: under load (15 on 2 cores) the first cached read came before the
      // drop. Read until it fails, for at most 20 s (a read that never fails: the pages were
      // never dropped); how many reads the cache answered first is said.
      'ok = 0',
      'end = time.monotonic() + 20',
      'while True:',
      '    try:',
      '        got = os.pread(fd, 8, 0).decode()',
      '    except OSError as e:',
      '        print("read err", e.errno, "after", ok, "cached reads", flush=True); break',
      '    ok += 1',
      '    if time.monotonic() > end:',
      '        print("read ok", got, "for 20 s", flush=True); break',
      '    time.sleep(0.005)',
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
    const read = lines.find((l) => l.startsWith('read'));
    t.match(read, /^read err 5 after \d+ cached reads$/, `the cached read of the lost file fails as a read through the server does, once its pages are dropped (${read})`);
  });
}
