/**
 * Found by a new user's trial (two `locksmith mount --store` mounts of one directory, redis-server
 * SIGSTOPped while a process on mount a holds an fcntl lock and writes every 20 ms): the last
 * renewal of node a reached Redis at 58.766 (MONITOR), so its session key could expire at 68.766
 * and another node be granted the bytes; the writes through mount a were still accepted until
 * 69.047 (EIO from 69.067), 281 ms after. The I/O guard is the worker's markLost, sent when the
 * worker gets to count the session lost (a timer on a loaded event loop), not the lease deadline;
 * lock answers are fenced at 3/4 of sessionTtlMs, I/O is not fenced at all. Here: the engine is
 * paused, and no write issued sessionTtlMs or more after the pause may succeed (the engine's key
 * lives at most sessionTtlMs past the last renewal it received, which came before the pause).
 * Needs root, /dev/fuse and redis-server; skipped (loudly) without them, a failure in CI.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { until } from './proc.js';
import { oneStoreMount } from './store-mounts.js';

const TTL = 2000;
const m = oneStoreMount('test/native/mount-store-io-fence-trial.test.ts', 'locksmith-io-fence-trial-', TTL, { shared: 'x' });
if (m !== undefined) {
  const { mnt } = m;

  t.test(
    'a write through a locked file is refused once the engine may have expired the session',
    async (t) => {
      // Locks, then writes every 5 ms, printing each write's issue time (ms, wall clock) and outcome, until EIO.
      const py = [
        'import fcntl, os, sys, time',
        `fd = os.open(${JSON.stringify(join(mnt, 'shared'))}, os.O_RDWR)`,
        'fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)',
        'print("locked", flush=True)',
        'while True:',
        '    t0 = time.time() * 1000',
        '    try:',
        '        os.pwrite(fd, b"y", 0); print("ok", t0, flush=True)',
        '    except OSError as e:',
        '        print("err", t0, e.errno, flush=True); break',
        '    time.sleep(0.005)',
      ].join('\n');
      const p = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
      t.teardown(() => p.kill('SIGKILL'));
      const lines: string[] = [];
      createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
      await until('the lock through mount a', () => lines.includes('locked') || undefined);
      await until('a first write', () => lines.some((l) => l.startsWith('ok')) || undefined);
      m.server.pause();
      const pausedAt = Date.now(); // the engine received its last renewal before this
      const failed = await until('a write refused with EIO', () => lines.find((l) => l.startsWith('err')));
      t.match(failed, / 5$/, 'EIO');
      const oks = lines.filter((l) => l.startsWith('ok')).map((l) => Number(l.split(' ')[1]));
      const lastOk = Math.max(...oks);
      t.ok(
        lastOk < pausedAt + TTL,
        `no write issued ${TTL} ms or more after the pause succeeded: the last one was issued ${(lastOk - pausedAt).toFixed(0)} ms after it, EIO from ${(Number(failed.split(' ')[1]) - pausedAt).toFixed(0)} ms`,
      );
    },
  );
}
