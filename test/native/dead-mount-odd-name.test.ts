/**
 * A dead mount whose mountpoint's name holds a newline, a tab, a quote and a space (a directory may
 * be named so): `locksmith mount` and `locksmith locks` on it each say so in one line, as the rest
 * of `locksmith locks` names mounts (control characters as \xNN), and the command they name,
 * pasted into a shell, unmounts it. Before, the raw newline split the line in two and the command
 * was quoted across it. Also: isMounted and forceUnmount (the stress runner's last resort) see a
 * mountpoint whose name /proc/self/mountinfo escapes (a space as \040).
 *
 * Skips only outside CI when a mount cannot work here, saying why; with CI set it fails instead.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeadMount } from '../../src/dead-mount.js';
import { fuseUnavailable } from '../../src/mount.js';
import { runCli, Server } from './cli-proc.js';
import { forceUnmount, mountEnvironmentMissing, mounted, until } from './proc.js';

// A few fresh Node processes and one mount; every wait inside names what it waits for.
t.setTimeout(10 * 60_000);

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/dead-mount-odd-name.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE unavailable: ${why}`);
} else {
  t.test("a dead mount named with a newline, a tab, a quote and a space: one line each, and a command a shell runs", async (t) => {
    t.notOk(why, 'FUSE can work here');
    const base = mkdtempSync(join(tmpdir(), 'locksmith-dead-odd-'));
    const backing = join(base, 'backing');
    const mnt = join(base, "m 'x'\tT\nN");
    const shown = join(base, "m 'x'\\x09T\\x0aN");
    const run = join(base, 'run');
    mkdirSync(backing);
    mkdirSync(mnt);
    const env = { LOCKSMITH_RUNTIME_DIR: run };
    const servers: Server[] = [];
    t.teardown(async () => {
      for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
      try {
        execFileSync('fusermount3', ['-u', '-z', mnt], { stdio: 'ignore' });
      } catch {
        // not mounted
      }
      rmSync(base, { recursive: true, force: true });
    });

    const first = new Server([backing, mnt, '--workers', '1'], env);
    servers.push(first);
    await first.serving();
    t.ok(mounted(mnt), 'isMounted sees the mount though mountinfo escapes its name');
    first.proc.kill('SIGKILL');
    t.same(await first.ended(), { code: null, signal: 'SIGKILL' }, 'server killed');
    await until('the killed server to leave its mount dead', () => isDeadMount(mnt));

    const again = await runCli(['mount', backing, mnt], { env });
    t.equal(again.status, 1, 'mounting there again fails');
    t.equal(again.stderr.split('\n').length, 2, `one line from locksmith mount: ${JSON.stringify(again.stderr)}`);
    t.ok(again.stderr.startsWith(`locksmith mount: ${shown} is a dead FUSE mount`), 'naming the mountpoint as locksmith locks names mounts');
    const locks = await runCli(['locks', mnt], { env });
    t.equal(locks.status, 1, 'locksmith locks on the dead mount fails');
    t.equal(locks.stderr.split('\n').length, 2, `one line from locksmith locks: ${JSON.stringify(locks.stderr)}`);
    t.ok(locks.stderr.startsWith(`locksmith locks: ${shown} is a dead FUSE mount`), 'naming it the same way');

    const command = /: run '(.*)'$/.exec(locks.stderr.trimEnd())?.[1];
    t.ok(command !== undefined, `a command in run '...': ${JSON.stringify(locks.stderr)}`);
    t.equal(/: run '(.*)' \(or add --clean-stale\)$/.exec(again.stderr.trimEnd())?.[1], command, 'locksmith mount names the same command');
    execFileSync('bash', ['-c', command ?? 'false'], { stdio: 'ignore' });
    t.notOk(mounted(mnt), 'the command, run by a shell, unmounted it');
    t.notOk(isDeadMount(mnt), 'the mountpoint is usable again');

    // forceUnmount, the stress runner's last resort, finds such a mount too.
    const second = new Server([backing, mnt, '--workers', '1'], env);
    servers.push(second);
    await second.serving();
    second.proc.kill('SIGKILL');
    t.same(await second.ended(), { code: null, signal: 'SIGKILL' }, 'second server killed');
    forceUnmount(mnt);
    t.notOk(isDeadMount(mnt), 'forceUnmount removed the dead mount');
  });
}
