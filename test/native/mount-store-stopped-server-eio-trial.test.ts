/**
 * Found by a new user's trial (issue 13): two `locksmith mount --store` servers (nodes a and b) of one
 * backing directory on one redis-server. A process on mount a locks `f` (fcntl F_SETLK); the server of
 * mount a gets SIGSTOP; the process is killed (kill -9) while it is stopped; node b's waiter on `f` is
 * granted once a's session expires (as promised); then SIGCONT. A NEW process on mount a opens `f`,
 * gets F_SETLK granted (result 0, and `locksmith locks` lists it as granted), and yet every read and
 * write through that new descriptor fails with EIO for as long as it stays open (8 s seen); a process
 * that opens it later is fine. Seen 3 times in 6 runs by hand (a race: a write 2 s after SIGCONT).
 * README ("reads and writes through a mount's files that held them fail with EIO until closed") and
 * API.md ("reads and writes on those handles fail with EIO until the handles close") promise EIO only
 * for the handles that held the lost locks, not for a handle opened afterwards whose lock was granted.
 * The cause: Passthrough's lost set was keyed by the file handle, which was the backing fd number
 * (passthrough.cc `fi->fh = fd`); a markLost(fh) for the killed process's handle that arrived after
 * that handle's RELEASE closed the fd marked whichever later handle reused the number. Handles are
 * unique per open now, and a mark of a released one is ignored (mount-store-lost-fh-reuse.test.ts
 * forces that order; here it is a race, hence several rounds).
 * Needs root, /dev/fuse, redis-server and python3; skipped (loudly) without them.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fuseUnavailable } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Server } from './cli-proc.js';
import { forceUnmount, mountEnvironmentMissing, stopped, threadStates, until } from './proc.js';

/**
 * Rounds until the first failure: whether the worker's mark of the killed holder's handle comes
 * after that handle's RELEASE (the defect's order) is a race, so one round rarely shows it.
 */
const ROUNDS = 5;

const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined);
if (why !== undefined) {
  t.plan(0, `FUSE or redis-server unavailable: ${why}`);
} else {
  const base = mkdtempSync(join(tmpdir(), 'locksmith-stopped-eio-trial-'));
  const backing = join(base, 'backing');
  const mntA = join(base, 'a');
  const mntB = join(base, 'b');
  for (const d of [backing, mntA, mntB]) mkdirSync(d);
  writeFileSync(join(backing, 'f'), 'x');
  process.on('exit', () => {
    forceUnmount(mntA);
    forceUnmount(mntB);
  });

  /** A python3 process: its stdout's lines as they come. */
  const python = (program: string) => {
    const p = spawn('python3', ['-c', program], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    return { p, lines, exited };
  };
  const lockF = (mnt: string, cmd: 'F_SETLK' | 'F_SETLKW') =>
    [
      'import fcntl, os, struct, time',
      `fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_RDWR)`,
      `fcntl.fcntl(fd, fcntl.${cmd}, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))`,
      'print("locked", flush=True)',
    ].join('\n');

  t.test(
    'a handle opened after the server resumed, whose lock is granted, reads and writes',
    async (t) => {
      const redis = await RedisServer.start();
      const url = redis.url;
      const namespace = `t-${randomUUID().slice(0, 8)}`;
      const a = new Server([backing, mntA, '--store', url, '--namespace', namespace, '--node', 'a', '--log-level', 'info']);
      const b = new Server([backing, mntB, '--store', url, '--namespace', namespace, '--node', 'b']);
      t.teardown(async () => {
        if (a.proc.exitCode === null) {
          a.proc.kill('SIGCONT');
          a.proc.kill('SIGTERM');
          await a.ended();
        }
        if (b.proc.exitCode === null) {
          b.proc.kill('SIGTERM');
          await b.ended();
        }
        await redis.stop();
        rmSync(base, { recursive: true, force: true });
      });
      await a.serving();
      await b.serving();
      const failures: string[] = [];
      for (let round = 0; round < ROUNDS && failures.length === 0; round++) {
        // A holder on mount a (its first lock waits out the new namespace's grace period).
        const holder = python(`${lockF(mntA, 'F_SETLK')}\ntime.sleep(600)`);
        await until('the holder locked f through mount a', () => holder.lines.includes('locked') || undefined);
        a.proc.kill('SIGSTOP');
        // Every thread of a's server stopped before the holder dies: a thread still running (the
        // stop is taken by one thread, then spreads) could answer the holder's FLUSH and RELEASE,
        // b's waiter would be granted by that unlock with a's session alive, and a, never lost,
        // would log no loss (seen once beside two busy loops: a's log ended at its grace period).
        await until("every thread of a's server stopped", () => stopped(a.proc.pid!));
        holder.p.kill('SIGKILL');
        // Node b's waiter is granted once a's session expired (sessionTtlMs + 1 s at most).
        const waiter = python(lockF(mntB, 'F_SETLKW'));
        await until("node b's waiter granted after a's session expired", () => waiter.lines.includes('locked') || undefined);
        await waiter.exited;
        a.proc.kill('SIGCONT');
        // Seen once not to come within the budget (the suite beside two busy loops; not seen again
        // in 15 rounds under that load): the failure says what a's server was doing.
        await until('mount a reports its old session lost', () => a.errors.some((l) => /session \d+ lost\b/.test(l)) || undefined).catch((e: Error) => {
          throw new Error(`${e.message}; a's server: ${threadStates(a.proc.pid!)}; its log: ${a.errors.slice(-5).join(' | ')}`);
        });
        // A new process on mount a: lock (granted), then read and write 20 times over about 2 s.
        const fresh = python(
          [
            lockF(mntA, 'F_SETLKW'),
            'for i in range(20):',
            '    try:',
            '        os.pwrite(fd, b"z", 0); os.pread(fd, 1, 0); print("ok", flush=True)',
            '    except OSError as e:',
            '        print("err", e.errno, flush=True)',
            '    time.sleep(0.1)',
            'print("end", flush=True)',
          ].join('\n'),
        );
        await until('the new process on mount a ended its I/O', () => fresh.lines.includes('end') || undefined);
        await fresh.exited;
        t.ok(fresh.lines.includes('locked'), `round ${round}: the new process's lock was granted`);
        const errs = fresh.lines.filter((l) => l.startsWith('err'));
        if (errs.length > 0) failures.push(`round ${round}: ${errs.length} of 20 I/O rounds failed (${errs[0]}) through a handle whose lock was granted`);
      }
      t.same(failures, [], 'no I/O error through a new handle whose lock was granted');
    },
  );
}
