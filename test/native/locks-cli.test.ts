/**
 * `locksmith locks` when something behind a mount does not answer: a mount whose server is stopped
 * (SIGSTOP) is named by its mountpoint and pid within a few seconds while the other mounts are
 * listed; a mount sharing its lock space whose engine is gone lists its node's own locks, as that
 * node last knew them, and says the engine refused the connection; a node whose mount was killed
 * (SIGKILL) while holding a lock is said late on stderr, named with its mount (recorded with its
 * session), with when its locks go, until its session is reaped; a stopped mount named through a symlink never hangs the command. Real mounts, real
 * processes.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseUnavailable } from '../../src/mount.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { runCli, Server } from './cli-proc.js';
import { buildLockClient, Client, forceUnmount, mountEnvironmentMissing, until } from './proc.js';

// Mounts, lock clients and `locksmith` processes, each a fresh Node; a first lock in a new lock
// space waits out its grace period (10 s). Every wait names what it waits for.
t.setTimeout(10 * 60_000);

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined && !process.env.CI) {
  console.error(`\n!! SKIPPING test/native/locks-cli.test.ts: ${why}\n`);
  t.plan(0, `FUSE unavailable: ${why}`);
} else {
  /** A directory, a backing directory and mountpoints, a control directory of its own, removed at the end. */
  const place = (t: Tap.Test, name: string, mounts: string[]) => {
    const base = mkdtempSync(join(tmpdir(), `locksmith-${name}-`));
    mkdirSync(join(base, 'backing'));
    for (const m of mounts) mkdirSync(join(base, m));
    const servers: Server[] = [];
    const clients: Client[] = [];
    t.teardown(async () => {
      for (const c of clients) if (c.running) c.proc.kill('SIGKILL');
      for (const s of servers) {
        if (s.proc.exitCode !== null || s.proc.signalCode !== null) continue;
        s.proc.kill('SIGCONT');
        s.proc.kill('SIGTERM');
        await s.ended().catch(() => s.proc.kill('SIGKILL'));
      }
      for (const m of mounts) forceUnmount(join(base, m));
      rmSync(base, { recursive: true, force: true });
    });
    const bin = () => buildLockClient(join(base, 'lockclient'));
    return { base, env: { LOCKSMITH_RUNTIME_DIR: join(base, 'run') }, bin, servers, clients };
  };

  t.test('a mount whose server is stopped: named by mountpoint and pid after a few seconds, the others listed', async (t) => {
    const { base, env, bin, servers, clients } = place(t, 'locks-stopped', ['a', 'b']);
    const a = new Server([join(base, 'backing'), join(base, 'a'), '--workers', '1'], env);
    const b = new Server([join(base, 'backing'), join(base, 'b'), '--workers', '1'], env);
    servers.push(a, b);
    await a.serving();
    await b.serving();
    const holder = new Client(bin(), join(base, 'b', 'f'), ['open', 'lock', 'w', '0', '0', 'wait']);
    clients.push(holder);
    t.same(await holder.take(2), ['open ok', 'lock ok'], 'a lock on mount b');
    a.proc.kill('SIGSTOP');
    // Nothing here touches mount a while its server is stopped (that would hang this process).
    // Before: 30 s, then "skipping /…/run/<hash>.sock: no answer to 'locks' … within 30 s".
    const all = await runCli(['locks'], { env });
    t.equal(all.status, 1, 'exit 1: a mount is missing from the listing');
    t.match(all.stderr, new RegExp(`^locksmith locks: skipping the mount at ${join(base, 'a')} \\(pid ${a.proc.pid}\\): it does not answer \\(no answer to 'info' within 3 s: its server is stopped \\(SIGSTOP, a debugger\\) or stuck\\); the other mounts are listed\\n$`));
    t.match(all.stdout, new RegExp(`^ *${holder.pid} posix write +0 EOF granted ${join(base, 'b')} f$`, 'm'), "mount b's lock is listed");
    const one = await runCli(['locks', join(base, 'a')], { env });
    t.equal(one.status, 1);
    t.equal(one.stderr, `locksmith locks: the mount at ${join(base, 'a')} (pid ${a.proc.pid}) does not answer (no answer to 'info' within 3 s: its server is stopped (SIGSTOP, a debugger) or stuck)\n`);
    a.proc.kill('SIGCONT');
    holder.go();
    await holder.ended();
  });

  t.test('a mount sharing its lock space, its engine gone: its own locks as its node last knew them', { skip: noRedis }, async (t) => {
    const { base, env, bin, servers, clients } = place(t, 'locks-engine', ['a']);
    const redis = await RedisServer.start();
    t.teardown(() => redis.stop());
    const a = new Server([join(base, 'backing'), join(base, 'a'), '--workers', '1', '--store', redis.url, '--namespace', `lk-${process.pid}`, '--node', 'a'], env);
    servers.push(a);
    await a.serving();
    // A new lock space's first grant waits out its grace period (sessionTtlMs, 10 s): the line is the event.
    const holder = new Client(bin(), join(base, 'a', 'f'), ['open', 'lock', 'w', '0', '9', 'wait']);
    clients.push(holder);
    t.same(await holder.take(2), ['open ok', 'lock ok'], 'a lock through node a');
    await redis.stop();
    // Before: after requestTimeoutMs (5 s), "the lock space's engine … did not answer (Command timed
    // out): … this node's cannot be listed either", and nothing listed.
    const r = await runCli(['locks', join(base, 'a')], { env });
    t.equal(r.status, 1, 'exit 1: other nodes’ locks are unknown');
    t.equal(
      r.stderr,
      `locksmith locks: the mount at ${join(base, 'a')}: the engine at 127.0.0.1:${redis.port} refused the connection (${redis.url}: nothing listens on that port), so its node's own locks are listed as it last knew them (marked * in STATE) and other nodes' locks are unknown\n`,
    );
    t.match(r.stdout, new RegExp(`^a +${holder.pid} posix write +0 +8 granted\\* f$`, 'm'), 'its lock, marked');
    holder.go();
    await holder.ended();
  });

  t.test('a node whose mount was killed (SIGKILL) holding a lock: said late, named with its mount, with when its lock goes, until its session is reaped', { skip: noRedis }, async (t) => {
    const { base, env, bin, servers, clients } = place(t, 'locks-killed', ['a', 'b']);
    const redis = await RedisServer.start();
    t.teardown(() => redis.stop());
    const store = ['--workers', '1', '--store', redis.url, '--namespace', `lk-${process.pid}-killed`];
    const a = new Server([join(base, 'backing'), join(base, 'a'), ...store, '--node', 'a'], env);
    const b = new Server([join(base, 'backing'), join(base, 'b'), ...store, '--node', 'b'], env);
    servers.push(a, b);
    await a.serving();
    await b.serving();
    // A new lock space's first grant waits out its grace period (sessionTtlMs, 10 s): the line is the event.
    const holder = new Client(bin(), join(base, 'b', 'f'), ['open', 'lock', 'w', '0', '9', 'wait']);
    clients.push(holder);
    t.same(await holder.take(2), ['open ok', 'lock ok'], 'a lock through node b');
    const waiter = new Client(bin(), join(base, 'a', 'f'), ['open', 'lockw', 'w', '0', '9', 'wait']);
    clients.push(waiter);
    t.equal(await waiter.next(), 'open ok');
    const json = async () => {
      const r = await runCli(['locks', '--json'], { env });
      return { ...r, body: JSON.parse(r.stdout) as { locks: { node: string; pid: number; state: string; mountpoint: string | null; late?: true }[]; lateSessions?: Record<string, unknown>[] } };
    };
    const before = await until("node a's F_SETLKW waiting behind node b's lock, in the listing", async () => {
      const r = await json();
      return r.body.locks.some((l) => l.node === 'a' && l.state === 'waiting') && r;
    });
    t.equal(before.stderr, '', 'both nodes renew: nothing said');
    t.equal(before.body.lateSessions, undefined);

    b.proc.kill('SIGKILL');
    await b.exited;
    // The grant that ends the wait below: b's session expired and was reaped.
    let reaped = false;
    const granted = waiter.next().finally(() => (reaped = true));
    // Node b no longer renews: said once two renewals are missed (2 s), long before its session
    // expires (10 s after its last renewal) and a's request is granted, with its mount: a dead
    // FUSE mount has no server to ask, so it is named as its session recorded it. Before: the
    // line said "node b has not renewed ..." without the mount, and b's lock was on MOUNT '-'.
    const late = await until("the listing to say that node b no longer renews its session (or a's grant, which is too late)", async () => {
      const r = await json();
      return (r.stderr !== '' || reaped) && r;
    });
    t.notOk(reaped, 'said before the session was reaped');
    t.equal(late.status, 0, 'exit 0: the listing is complete (b’s lock is the engine’s, and still blocks)');
    t.match(
      late.stderr,
      new RegExp(
        `^locksmith locks: node b \\(the mount at ${join(base, 'b')}\\) has not renewed its session for (\\d+\\.\\d) s \\(its server gone, stopped or cut off from the engine\\): ` +
          "its lock goes when the session expires, in about (\\d+\\.\\d) s on the engine's clock, unless it renews first\\n$",
      ),
    );
    const [, since, left] = /for (\d+\.\d) s .* in about (\d+\.\d) s/.exec(late.stderr) ?? [];
    t.ok(Number(since) >= 2 && Number(since) + Number(left) <= 10.1, `not renewed for ${since} s, expires in ${left} s: within its 10 s TTL`);
    t.match(late.body.lateSessions, [{ node: 'b', mountpoint: join(base, 'b'), host: null, machine: null, notRenewedForMs: Number, expiresInMs: Number }], '--json: lateSessions, with its mount (on this machine: host and machine null)');
    t.same(
      late.body.locks.map((l) => [l.node, l.state, l.mountpoint, l.late ?? false]),
      [
        ['a', 'waiting', join(base, 'a'), false],
        ['b', 'granted', join(base, 'b'), true],
      ],
      "--json: b's lock on its dead mount and marked late, a's request not",
    );

    // The session expires and a live node's renewal reaps it: a's request is granted, and the note goes.
    t.equal(await granted, 'lockw ok', "node a's F_SETLKW granted once node b's session is reaped");
    const after = await json();
    t.equal(after.status, 0);
    t.equal(after.stderr, '', 'nothing said once the session is reaped');
    t.equal(after.body.lateSessions, undefined);
    t.same(
      after.body.locks.map((l) => [l.node, l.pid, l.state]),
      [['a', waiter.pid, 'granted']],
      "only a's lock is left",
    );
    waiter.go();
    await waiter.ended();
  });

  t.test('a stopped mount named through a symlink: named by its mountpoint and pid, never hangs', async (t) => {
    const { base, env, servers } = place(t, 'locks-link', ['a']);
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
