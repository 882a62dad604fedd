/**
 * User review (issue 13): two mounts claiming the same --node name. The first is stopped past its
 * session's TTL (SIGSTOP), a second mount takes the name, the first resumes: it is displaced
 * ("another process opened a session under this node's name 'b' ... Give each node its own name",
 * at error) and its lock requests fail ENOLCK, as README says. But `locksmith locks` (every mount)
 * then lists each lock of the new mount twice, once under each mountpoint, where its help says
 * "each lock is listed once, its MOUNT the mount of its NODE"; and `locksmith locks` of the
 * displaced mount lists the other mount's lock as its own node's, exit status 0, nothing on stderr.
 * Seen by hand: "b 23042 flock write 0 EOF granted /tmp/c43w/c f" and the same line with
 * /tmp/c43w/b.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fuseUnavailable } from '../../src/mount.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { runCli, Server } from '../native/cli-proc.js';
import { forceUnmount, mountEnvironmentMissing, until } from '../native/proc.js';

const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined);

t.test(
  'a lock is listed once by `locksmith locks` when a displaced mount shares its node name',
  { skip: why ?? false },
  async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'locksmith-same-node-review-'));
    const backing = join(base, 'backing');
    const m1 = join(base, 'm1');
    const m2 = join(base, 'm2');
    for (const d of [backing, m1, m2]) mkdirSync(d);
    writeFileSync(join(backing, 'f'), 'x');
    const env = { LOCKSMITH_RUNTIME_DIR: join(base, 'run') };
    const redis = await RedisServer.start();
    const ns = `sn-${randomUUID().slice(0, 8)}`;
    const servers: Server[] = [];
    t.teardown(async () => {
      for (const s of servers) {
        s.proc.kill('SIGCONT');
        if (s.proc.exitCode === null && s.proc.signalCode === null) {
          s.proc.kill('SIGTERM');
          await s.ended().catch(() => s.proc.kill('SIGKILL'));
        }
      }
      forceUnmount(m1);
      forceUnmount(m2);
      await redis.stop();
      rmSync(base, { recursive: true, force: true });
    });
    const first = new Server([backing, m1, '--workers', '1', '--store', redis.url, '--namespace', ns, '--node', 'b'], env);
    servers.push(first);
    await first.serving();
    first.proc.kill('SIGSTOP');
    // The second waits for the first's session to expire (up to its TTL, 10 s), then serves.
    const second = new Server([backing, m2, '--workers', '1', '--store', redis.url, '--namespace', ns, '--node', 'b'], env);
    servers.push(second);
    await second.serving();
    first.proc.kill('SIGCONT');
    await until('the first mount saying it was displaced', () => first.errors.some((l) => /another process opened a session under this node's name/.test(l)), 120_000);
    const p = spawn('python3', ['-c', `import fcntl, sys\nf = open(${JSON.stringify(join(m2, 'f'))})\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => p.kill('SIGKILL'));
    const lines: string[] = [];
    createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
    await until("the flock holder's 'held' through the second mount", () => lines.includes('held'), 120_000);
    const r = await runCli(['locks', '--json'], { env });
    const locks = (JSON.parse(r.stdout) as { locks: { mountpoint: string; kind: string }[] }).locks;
    t.same(locks.map((l) => `${l.kind} ${l.mountpoint}`), [`flock ${m2}`], `the flock lock is listed once, under the mount that holds it (stderr: ${r.stderr})`);
    t.match(r.stderr, new RegExp(`the mount at ${m1}: displaced: another process opened a session under its node's name 'b'.*listed under the mount at ${m2}`), 'stderr names the displaced mount and where its node\'s locks are');
    t.equal(r.status, 1, 'a displaced mount among the answers: exit status 1');
    // Asked alone, the displaced mount lists the lock under the mount that holds it, not as its own.
    const one = await runCli(['locks', m1, '--json'], { env });
    const own = (JSON.parse(one.stdout) as { mounts: { displaced?: string }[]; locks: { mountpoint: string; kind: string }[] });
    t.same(own.locks.map((l) => `${l.kind} ${l.mountpoint}`), [`flock ${m2}`], `locks of the displaced mount: the lock is the other mount's (stderr: ${one.stderr})`);
    t.match(own.mounts[0]?.displaced, /another process opened a session under its node's name 'b'/, '--json says the mount is displaced');
    t.equal(one.status, 1, 'locks of the displaced mount: exit status 1');
    t.match(one.stderr, new RegExp(`the mount at ${m1}: displaced: .*listed under the mount at ${m2}`), 'and says on stderr why, and where the lock is');
    const text = await runCli(['locks', m1], { env });
    t.match(text.stdout, new RegExp(`MOUNT[\\s\\S]*b +\\d+ +flock +write +0 +EOF +granted +${m2} +f\\n`), `its text listing shows the lock under the other mount (${text.stdout})`);
  },
);
