/**
 * A store mount fences the I/O of a file locked through it at the lease, natively (passthrough.h
 * fencedIo): while the engine does not answer, writes through a file a lock was granted on fail
 * with EIO from the lease's end (see mount-store-io-fence-trial.test.ts), and
 * - a file that never had a lock through the mount is not fenced: its writes go on (as on NFS);
 * - the fence is not a loss: once the engine answers again in time (before the session could
 *   expire), the lease is renewed and the same handle writes again.
 * Needs root, /dev/fuse and redis-server; skipped (loudly) without them, a failure in CI.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync, } from 'node:fs';
import { join } from 'node:path';
import { until } from './proc.js';
import { oneStoreMount } from './store-mounts.js';

// Long enough that the engine is resumed well before the session could expire (the fence comes
// at about 3/4 of it after the last renewal the engine answered).
const TTL = 8000;
const m = oneStoreMount('test/native/mount-store-io-fence.test.ts', 'locksmith-io-fence-', TTL, { locked: 'x', unlocked: 'x' });
if (m !== undefined) {
  const { backing, mnt } = m;

  t.test('while fenced, an unlocked file writes on; once the engine answers in time, the locked file writes again', async (t) => {
    // One process: a lock on `locked`, none on `unlocked`; writes both every 5 ms, printing each
    // outcome ("L ok|err", "U ok|err"), until told to stop (stdin closed).
    const py = [
      'import fcntl, os, sys, threading, time',
      `fd = os.open(${JSON.stringify(join(mnt, 'locked'))}, os.O_RDWR)`,
      `ufd = os.open(${JSON.stringify(join(mnt, 'unlocked'))}, os.O_RDWR)`,
      'fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)',
      'print("locked", flush=True)',
      'done = threading.Event()',
      'threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()',
      'n = 0',
      'while not done.is_set():',
      '    n += 1',
      '    for name, f in (("L", fd), ("U", ufd)):',
      '        try:',
      '            os.pwrite(f, str(n).encode(), 0); print(name, "ok", n, flush=True)',
      '        except OSError as e:',
      '            print(name, "err", n, e.errno, flush=True)',
      '    time.sleep(0.005)',
      'print("end", flush=True)',
    ].join('\n');
    const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => p.kill('SIGKILL'));
    const lines: string[] = [];
    createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
    await until('the lock through the mount', () => lines.includes('locked') || undefined);
    await until('a first write of each file', () => (lines.some((l) => l.startsWith('L ok')) && lines.some((l) => l.startsWith('U ok'))) || undefined);
    m.server.pause();
    // Budget: the session may expire TTL after the last renewal, which came before the pause.
    const fencedAt = await until('a write of the locked file refused (the fence) within TTL of the pause', () => lines.findIndex((l) => l.startsWith('L err')) + 1 || undefined, TTL);
    t.match(lines[fencedAt - 1], / 5$/, 'EIO from the fence');
    // Some rounds of writes while fenced, the engine still paused.
    const round = (i: number) => Number(lines[i - 1]!.split(' ')[2]);
    const fencedRound = round(fencedAt);
    await until('ten more rounds while fenced', () => lines.some((l) => l.startsWith('L ') && Number(l.split(' ')[2]) >= fencedRound + 10) || undefined);
    const whileFenced = lines.slice(fencedAt);
    t.ok(whileFenced.filter((l) => l.startsWith('U ok')).length >= 10, 'the unlocked file wrote on while the locked one was fenced');
    t.notOk(whileFenced.some((l) => l.startsWith('L ok')), 'the locked file stayed fenced while the engine did not answer');
    m.server.resume();
    const resumedFrom = lines.length;
    // Budget: the node renews about every 0.5 s; a handle still refused after TTL was lost, not fenced.
    await until('a write of the locked file accepted again within TTL of the resume', () => lines.slice(resumedFrom).some((l) => l.startsWith('L ok')) || undefined, TTL);
    p.stdin!.end();
    await until('the writer to stop', () => lines.includes('end') || undefined);
    t.notOk(lines.some((l) => l.startsWith('U err')), 'no write of the unlocked file ever failed');
    const last = lines.filter((l) => l.startsWith('L ')).at(-1)!;
    t.match(last, /^L ok /, 'the locked file writes on after the engine answered again: a fence, not a loss');
    const lastRound = last.split(' ')[2]!;
    t.ok(readFileSync(join(backing, 'locked'), 'utf8').startsWith(lastRound), `the backing file holds the last accepted write (${lastRound})`);
  });
}
