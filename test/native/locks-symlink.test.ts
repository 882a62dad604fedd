/**
 * `locksmith locks` and `stats` given a mountpoint through a symlink
 * while its server is stopped. Real mounts, real processes.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseUnavailable } from '../../src/mount.js';
import { runCli, Server } from './cli-proc.js';
import { forceUnmount, mountEnvironmentMissing } from './proc.js';

t.setTimeout(5 * 60_000);

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined && !process.env.CI) {
  console.error(`\n!! SKIPPING test/native/locks-symlink.test.ts: ${why}\n`);
  t.plan(0, `FUSE unavailable: ${why}`);
} else {
  /** A directory with a backing directory and mountpoints, a control directory of its own, removed at the end. */
  const place = (t: Tap.Test, name: string, mounts: string[]) => {
    const base = mkdtempSync(join(tmpdir(), `locksmith-${name}-`));
    mkdirSync(join(base, 'backing'));
    for (const m of mounts) mkdirSync(join(base, m));
    const servers: Server[] = [];
    t.teardown(async () => {
      for (const s of servers) {
        if (s.proc.exitCode !== null || s.proc.signalCode !== null) continue;
        s.proc.kill('SIGCONT');
        s.proc.kill('SIGTERM');
        await s.ended().catch(() => s.proc.kill('SIGKILL'));
      }
      for (const m of mounts) forceUnmount(join(base, m));
      rmSync(base, { recursive: true, force: true });
    });
    return { base, env: { LOCKSMITH_RUNTIME_DIR: join(base, 'run') }, servers };
  };

  t.test('a stopped mount named through a symlink: named by its mountpoint and pid, never hangs', async (t) => {
    const { base, env, servers } = place(t, 'review-link', ['a']);
    const a = new Server([join(base, 'backing'), join(base, 'a'), '--workers', '1'], env);
    servers.push(a);
    await a.serving();
    symlinkSync(join(base, 'a'), join(base, 'link'));
    a.proc.kill('SIGSTOP');
    // Before: resolving the symlink stat-ed the mount's root, which waits for the stopped server
    // for ever (SIGTERM does not end it). The run takes about 3 s; the budget only catches the hang.
    for (const cmd of ['locks', 'stats']) {
      const r = await runCli([cmd, join(base, 'link')], { env, ms: 60_000 });
      t.equal(r.status, 1, `${cmd}: exit 1`);
      t.equal(
        r.stderr,
        `locksmith ${cmd}: the mount at ${join(base, 'a')} (pid ${a.proc.pid}) does not answer (no answer to 'info' within 3 s: its server is stopped (SIGSTOP, a debugger) or stuck)\n`,
        `${cmd}: names the mount the symlink leads to`,
      );
    }
    a.proc.kill('SIGCONT');
  });
}
