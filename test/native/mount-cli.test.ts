/**
 * `locksmith mount` as a person runs it: the built CLI (dist/, made by `npm test`'s pretest) in a
 * child process. Errors are one sentence and a non-zero exit; a served mount decides a client's
 * locks and goes away cleanly on SIGTERM.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fuseUnavailable } from '../../src/mount.js';
import { buildLockClient, Client, forceUnmount, HANG_MS, mountEnvironmentMissing, mounted, stopped, until } from './proc.js';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { runCli, Server } from './cli-proc.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { controlDir, request, socketName } from '../../src/control.js';
import { randomUUID } from 'node:crypto';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src', 'cli.js');
/**
 * Runs the CLI to its exit. Only a hang meets the budget (HANG_MS, minutes; a run takes about a
 * second): the child is then killed and the test fails saying so.
 */
function run(...args: string[]) {
  return runEnv({}, ...args);
}

/** run() with these environment variables added. */
function runEnv(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: HANG_MS, env: { ...process.env, ...env } });
  if (r.error !== undefined) throw new Error(`locksmith ${args.join(' ')}: ${r.error.message} (still running after ${HANG_MS / 1000} s?)`);
  return r;
}

/** The listening TCP sockets' accept queues (/proc/net/tcp: tx_queue is the backlog, rx_queue the connections waiting), by port. */
function acceptQueues(): Map<number, { waiting: number; backlog: number }> {
  const out = new Map<number, { waiting: number; backlog: number }>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] !== '0A') continue; // LISTEN
    const [tx, rx] = f[4]!.split(':').map((x) => Number.parseInt(x, 16)) as [number, number];
    out.set(Number.parseInt(f[1]!.split(':')[1]!, 16), { waiting: rx, backlog: tx });
  }
  return out;
}

/**
 * A loopback port where a connection never opens, as at a host that is down or filtered: its
 * listener (a child process, stopped) never accepts, and its accept queue (backlog 1) is filled
 * first, so the kernel drops every further SYN. Filled connection by connection, each waited for
 * by its 'connect', until /proc/net/tcp shows the queue full.
 */
async function fullListener(): Promise<{ port: number; close: () => void }> {
  const child = spawn(process.execPath, ['-e', "const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port))"], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const fillers: Socket[] = [];
  const close = () => {
    for (const s of fillers) s.destroy();
    child.kill('SIGKILL');
    child.kill('SIGCONT');
  };
  try {
    const port = Number(await new Promise<string>((r) => createInterface({ input: child.stdout! }).once('line', r)));
    child.kill('SIGSTOP');
    await until('every thread of the listener stopped', () => stopped(child.pid!));
    for (;;) {
      const q = acceptQueues().get(port);
      if (q === undefined) throw new Error(`no listener on port ${port} in /proc/net/tcp`);
      if (q.waiting > q.backlog) return { port, close };
      const s = createConnection({ host: '127.0.0.1', port });
      fillers.push(s);
      await new Promise<void>((ok, fail) => {
        s.once('connect', ok);
        s.once('error', fail);
      });
    }
  } catch (e) {
    close();
    throw e;
  }
}

t.test('usage errors: one sentence, exit 2, no stack trace', async (t) => {
  t.ok(existsSync(cli), `${cli} is built`);
  for (const args of [['mount'], ['mount', '/tmp'], ['mount', '/tmp', '/mnt', '--workers', 'two'], ['mount', '/tmp', '/mnt', '--bogus']]) {
    const r = run(...args);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, /^locksmith mount: [^\n]+\n$/, `${args.join(' ')}: one line`);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  // A bad --node or --namespace is a bad flag like any other: named, its value quoted, exit 2.
  // Before, the store's own check said "store.node must be ..., got a b" and exited 1.
  for (const [flag, value, rule] of [
    ['--node', 'a b', '1 to 64 of A-Z a-z 0-9 . _ -'],
    ['--namespace', 'x/y', '1 to 64 of A-Z a-z 0-9 . _ : -'],
    ['--node', '', '1 to 64 of A-Z a-z 0-9 . _ -'],
  ] as const) {
    const r = run('mount', '/tmp', '/mnt', '--store', 'redis://127.0.0.1:1', flag, value);
    t.equal(r.status, 2, `${flag} ${JSON.stringify(value)}: exit 2`);
    t.equal(r.stderr, `locksmith mount: ${flag} must be ${rule}, got ${JSON.stringify(value)}. Run 'locksmith mount --help'.\n`, `${flag} ${JSON.stringify(value)}: names the flag, quotes the value`);
  }
  // A malformed --store URL too: exit 2 and the help hint, naming the flag, the password hidden.
  // Before, "locksmith store: malformed URL ..." and exit 1.
  const port = run('mount', '/tmp', '/mnt', '--store', 'redis://127.0.0.1:notaport');
  t.equal(port.status, 2, 'a malformed --store URL: exit 2');
  t.equal(port.stderr, "locksmith mount: --store: malformed URL 'redis://127.0.0.1:notaport': the port must be a number from 0 to 65535. Run 'locksmith mount --help'.\n", 'names --store, shows the port');
  // Where a password may stand (the '@host' left out) it stays hidden, and the message says why.
  const pw = run('mount', '/tmp', '/mnt', '--store', 'redis://admin:s3cret');
  t.equal(pw.status, 2);
  t.notMatch(pw.stderr, /s3c|cret/, 'no part of a possible password');
  t.match(pw.stderr, /^locksmith mount: --store: malformed URL 'redis:\/\/admin:\*\*\*': the port must be a number from 0 to 65535 \(what stands there is not shown: .*password.*\. Run 'locksmith mount --help'\.\n$/);
  const scheme = run('mount', '/tmp', '/mnt', '--store', 'http://u:s3cret@127.0.0.1');
  t.equal(scheme.status, 2, 'an engine that is not Redis: exit 2');
  t.equal(scheme.stderr, "locksmith mount: --store: unsupported URL 'http://u:***@127.0.0.1': the engine must be redis:// or rediss://. Run 'locksmith mount --help'.\n");
  // Without --store, LOCKSMITH_STORE gives the URL (out of ps's sight): a bad one is named as such.
  const env = runEnv({ LOCKSMITH_STORE: 'redis://admin:s3cret@127.0.0.1:notaport' }, 'mount', '/tmp', '/mnt', '--node', 'n1');
  t.equal(env.status, 2, 'a malformed URL in LOCKSMITH_STORE: exit 2');
  t.notMatch(env.stderr, /s3c|cret/, 'its password hidden');
  t.match(env.stderr, /^locksmith mount: LOCKSMITH_STORE: malformed URL 'redis:\/\/admin:\*\*\*@127\.0\.0\.1:notaport': the port must be a number from 0 to 65535.*\. Run 'locksmith mount --help'\.\n$/);
  // --store wins over it.
  const both = runEnv({ LOCKSMITH_STORE: 'redis://127.0.0.1:fromenv' }, 'mount', '/tmp', '/mnt', '--store', 'redis://127.0.0.1:fromflag');
  t.equal(both.status, 2);
  t.match(both.stderr, /^locksmith mount: --store: malformed URL 'redis:\/\/127\.0\.0\.1:fromflag'/, '--store is used when both are given');
  // Empty is unset: --node then has no store to go with.
  const empty = runEnv({ LOCKSMITH_STORE: '' }, 'mount', '/tmp', '/mnt', '--node', 'n1');
  t.equal(empty.status, 2);
  t.equal(empty.stderr, "locksmith mount: --namespace and --node go with --store (or LOCKSMITH_STORE). Run 'locksmith mount --help'.\n");
  const help = run('mount', '--help');
  t.equal(help.status, 0);
  t.match(help.stdout, /Without\s+--store, the URL in \$LOCKSMITH_STORE/, '--help names the variable');
  t.match(help.stdout, /usage: locksmith mount <backing-dir> <mountpoint> \[--workers N\]/);
});

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING the mounting part of test/native/mount-cli.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
} else {
  t.test('serves a mount until SIGTERM; a missing or busy mountpoint is one sentence', async (t) => {
    t.notOk(why, 'FUSE can work here');
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-'));
    const backing = join(base, 'backing');
    const mnt = join(base, 'mnt');
    mkdirSync(backing);
    mkdirSync(mnt);
    t.teardown(() => {
      forceUnmount(mnt);
      rmSync(base, { recursive: true, force: true });
    });
    const missing = run('mount', backing, join(base, 'nowhere'));
    t.equal(missing.status, 1);
    t.match(missing.stderr, /^locksmith mount: the mountpoint .*nowhere does not exist\n$/);

    const server = spawn(process.execPath, [cli, 'mount', backing, mnt, '--workers', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    createInterface({ input: server.stdout! }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    t.match(await until('the serving line of locksmith mount', () => lines[0]), /^locksmith: serving .* at .*mnt with 2 workers \(POSIX locks ours, flock ours\)/);
    t.ok(mounted(mnt), 'mounted');

    const busy = run('mount', backing, mnt);
    t.equal(busy.status, 1, 'a second mount on the same mountpoint fails');
    t.match(busy.stderr, /^locksmith mount: the mountpoint .* is busy[^\n]*\n$/);

    const bin = buildLockClient(join(base, 'lockclient'));
    const a = new Client(bin, join(mnt, 'f'), ['open', 'lock', 'w', '0', '0', 'wait']);
    t.same(await a.take(2), ['open ok', 'lock ok']);
    const b = new Client(bin, join(mnt, 'f'), ['open', 'lock', 'r', '5', '1', 'get', 'r', '5', '1']);
    t.same(await b.take(3), ['open ok', 'lock err 11', `get w 0 0 ${a.pid}`], 'the served mount decides locks');
    await b.ended();
    const w = new Client(bin, join(mnt, 'f'), ['open', 'lockw', 'w', '0', '1']);
    t.equal(await w.next(), 'open ok');
    t.ok(await w.silentFor(200), 'a process waits in F_SETLKW');

    const st = JSON.parse(run('stats', mnt, '--json').stdout) as { mounts: { stats: { operations: Record<string, Record<string, number>> } }[] };
    const ops = st.mounts[0]!.stats.operations;
    const sum = (op: string) => Object.values(ops[op] ?? {}).reduce((n, k) => n + k, 0);
    const beforeStop = sum('lock');
    const closes = sum('flush') + sum('release');
    server.kill('SIGTERM');
    // ENOLCK (37), on purpose (docs/API.md, unmount): the kernel's FUSE client would make EINTR a
    // restart, seen as errno 512 by a process with no signal pending.
    t.match(await w.next(), /^lockw err 37$/, 'SIGTERM to the server answers the waiter: ENOLCK');
    t.same(await w.ended(), { code: 0, signal: null }, 'and the waiting process exits normally');
    t.equal(await exited, 0, 'exit 0 after SIGTERM');
    a.go();
    await a.ended();
    // The lock requests only: before, the count held every flush and release the closes sent too.
    // The stats above were read with the waiter waiting: its request is counted only once answered,
    // which the unmount does after the server read its counters. Before, the line said
    // "after N lock requests" and left it out.
    t.match(lines.at(-1), new RegExp(`^locksmith: SIGTERM: unmounted .*mnt after ${beforeStop + 1} lock requests, 1 still waiting, ended$`), `the unmount line counts the ${beforeStop} lock requests answered before SIGTERM and the waiter it ended (flushes and releases: ${closes})`);
    t.ok(closes > 0, 'closes sent flushes and releases, left out of that count');
    t.notOk(mounted(mnt), 'nothing left mounted');
  });

  t.test('--store: the unmount line counts every waiter the unmount ended, also one whose step never reached the engine', { skip: noRedis }, async (t) => {
    const redis = await RedisServer.start();
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-exit-'));
    const backing = join(base, 'backing');
    const mnt = join(base, 'mnt');
    mkdirSync(backing);
    mkdirSync(mnt);
    const env = { LOCKSMITH_RUNTIME_DIR: join(base, 'run') };
    // A new namespace starts with a grace period of the session TTL (10 s): the first grant waits for it.
    const server = new Server([backing, mnt, '--workers', '1', '--store', redis.url, '--namespace', `exit-${randomUUID().slice(0, 8)}`, '--node', 'exit-a'], env);
    const mine: Client[] = [];
    t.teardown(async () => {
      redis.resume();
      for (const c of mine) if (c.running) c.proc.kill('SIGKILL');
      if (server.proc.exitCode === null && server.proc.signalCode === null) {
        server.proc.kill('SIGTERM');
        await server.ended().catch(() => server.proc.kill('SIGKILL'));
      }
      forceUnmount(mnt);
      rmSync(base, { recursive: true, force: true });
      await redis.stop();
    });
    t.match(await server.serving(), /^locksmith: serving .* one lock space with every node on /);
    // The mount's control socket, asked directly: its 'stats' answers from the mount's own counters
    // (the coordinator's, and the native session's outstanding requests), the engine stopped or not.
    const socket = join(controlDir(env), socketName(realpathSync(mnt)));
    type Answer = { stats: { operations: Record<string, Record<string, number>>; waiting: number }; session: { outstanding: number } };
    const stats = async () => (await request(socket, { cmd: 'stats' })) as unknown as Answer;
    const bin = buildLockClient(join(base, 'lockclient'));
    const holder = new Client(bin, join(mnt, 'f'), ['open', 'lock', 'w', '0', '10', 'wait']);
    mine.push(holder);
    t.same(await holder.take(2), ['open ok', 'lock ok'], 'a lock granted (once the grace period is over)');
    // w1 waits on the holder's lock: queued in the engine, so the lock space counts it as waiting.
    const w1 = new Client(bin, join(mnt, 'f'), ['open', 'lockw', 'w', '5', '1']);
    mine.push(w1);
    t.equal(await w1.next(), 'open ok');
    const queued = await until("w1 queued in the lock space (locksmith stats: 1 waiting)", async () => {
      const s = await stats();
      return s.stats.waiting === 1 ? s : undefined;
    });
    const before = Object.values(queued.stats.operations.lock ?? {}).reduce((n, k) => n + k, 0);
    t.equal(before, 1, "the holder's lock request the only one answered");
    // The engine stops answering; w2's F_SETLKW then reaches the mount but its step never reaches
    // the engine, so the lock space never counts it as waiting.
    const redisPid = Number(/process_id:(\d+)/.exec(await (await redis.client()).info('server'))![1]);
    redis.pause();
    await until('every thread of redis-server stopped', () => stopped(redisPid));
    const w2 = new Client(bin, join(mnt, 'f'), ['open', 'lockw', 'w', '6', '1']);
    mine.push(w2);
    t.equal(await w2.next(), 'open ok');
    // Both F_SETLKW requests held by the mount, unanswered. The signal must follow at once: a
    // request that cannot reach the engine is answered as failed after its requestTimeoutMs (5 s).
    const held = await until("w2's request held by the mount (the native session: 2 outstanding)", async () => {
      const s = await stats();
      return s.session.outstanding === 2 ? s : undefined;
    });
    t.equal(held.stats.waiting, 1, 'the lock space still counts only w1 as waiting');
    server.proc.kill('SIGINT');
    t.equal(await w1.next(), 'lockw err 37', 'the unmount ends w1 (ENOLCK)');
    t.equal(await w2.next(), 'lockw err 37', 'and w2, whose step never reached the engine');
    t.same(await server.ended(), { code: 0, signal: null }, 'exit 0 after SIGINT');
    // Before: "after 2 lock requests, 1 still waiting": the waiter the engine never saw was
    // counted nowhere.
    t.match(server.lines.at(-1), new RegExp(`^locksmith: SIGINT: unmounted .*mnt after ${before + 2} lock requests, 2 still waiting, ended$`), 'the unmount line: the granted request and the two waiters it ended');
    t.notOk(mounted(mnt), 'nothing left mounted');
    holder.go();
    await Promise.all(mine.map((c) => c.ended()));
  });

  t.test('--store: what is wrong with the URL or the server there, said plainly', async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-store-'));
    const backing = join(base, 'backing');
    const mnt = join(base, 'mnt');
    mkdirSync(backing);
    mkdirSync(mnt);
    // A web server that answers whatever it is sent with a page, and keeps the connection open (an
    // HTTP server that closes it may reset it before its reply is read: a reset is all one sees then).
    const page = createServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', () => sock.write('<html>not redis</html>\r\n'));
    });
    await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
    t.teardown(() => {
      page.close();
      forceUnmount(mnt);
      rmSync(base, { recursive: true, force: true });
    });
    // A malformed URL is a usage error: see 'usage errors' above.
    // A web server on that port: the client's "Unknown RESP type ... Please report this." before.
    // Run without blocking this process: the web server answers from its event loop.
    const web = await runCli(['mount', backing, mnt, '--store', `redis://127.0.0.1:${(page.address() as AddressInfo).port}`]);
    t.equal(web.status, 1);
    t.match(web.stderr, /^locksmith mount: locksmith store: cannot use redis:\/\/127\.0\.0\.1:\d+: the server there does not answer as Redis \(its reply began with "<"\): is it another service on that port\?\n$/);
    t.notMatch(web.stderr, /report this|RESP/i, "nothing of the client's own words");
    // The same server named by LOCKSMITH_STORE instead of --store: that URL is the one used.
    const fromEnv = await runCli(['mount', backing, mnt], { env: { LOCKSMITH_STORE: `redis://admin:s3cret@127.0.0.1:${(page.address() as AddressInfo).port}` } });
    t.equal(fromEnv.status, 1);
    t.match(fromEnv.stderr, /^locksmith mount: locksmith store: cannot use redis:\/\/admin:\*\*\*@127\.0\.0\.1:\d+: the server there does not answer as Redis/, 'LOCKSMITH_STORE is the URL used without --store');
    t.notMatch(fromEnv.stderr, /s3c|cret/, 'its password hidden');
    t.notOk(mounted(mnt), 'nothing mounted');
  });

  t.test('--store naming a port nothing listens on: the engine refused the connection, said at once', async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-refused-'));
    mkdirSync(join(base, 'backing'));
    mkdirSync(join(base, 'mnt'));
    t.teardown(() => {
      forceUnmount(join(base, 'mnt'));
      rmSync(base, { recursive: true, force: true });
    });
    // A port just freed: nothing listens there (ECONNREFUSED).
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    // Before: "cannot reach redis://u:***@127.0.0.1:PORT (connect ECONNREFUSED 127.0.0.1:PORT)",
    // and the exit 2 s later (the store client's disconnect timer held the process).
    const r = await runCli(['mount', join(base, 'backing'), join(base, 'mnt'), '--store', `redis://u:s3cret@127.0.0.1:${port}`]);
    t.equal(r.status, 1);
    // The store's own message, as the API gives it (src/store/redis.ts).
    t.equal(r.stderr, `locksmith mount: locksmith store: the engine at 127.0.0.1:${port} refused the connection (redis://u:***@127.0.0.1:${port}: nothing listens on that port)\n`, 'says refused, names host:port, the password hidden');
    t.notMatch(r.stderr, /timed out|within/, 'no timeout spoken of');
    t.notOk(mounted(join(base, 'mnt')), 'nothing mounted');
  });

  t.test('--store with a wrong password: the engine refused the credentials', { skip: noRedis }, async (t) => {
    const redis = await RedisServer.start(['--requirepass', 's3cret']);
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-wrongpass-'));
    mkdirSync(join(base, 'backing'));
    mkdirSync(join(base, 'mnt'));
    t.teardown(async () => {
      forceUnmount(join(base, 'mnt'));
      rmSync(base, { recursive: true, force: true });
      await redis.stop();
    });
    // Before: "... refused the connection: WRONGPASS ...", the words said of a port nothing listens on.
    const r = await runCli(['mount', join(base, 'backing'), join(base, 'mnt'), '--store', `redis://:wr0ng@127.0.0.1:${redis.port}`]);
    t.equal(r.status, 1);
    t.match(r.stderr, new RegExp(`^locksmith mount: locksmith store: redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port} refused the credentials: WRONGPASS [^\\n]*\\(check the user and password in the URL[^\\n]*\\n$`));
    t.notMatch(r.stderr, /wr0ng/, 'the password hidden');
    t.notOk(mounted(join(base, 'mnt')), 'nothing mounted');
  });

  t.test('--store naming a stopped engine: it accepted the connection but did not answer', { skip: noRedis }, async (t) => {
    const redis = await RedisServer.start();
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-stopped-'));
    mkdirSync(join(base, 'backing'));
    mkdirSync(join(base, 'mnt'));
    t.teardown(async () => {
      redis.resume();
      forceUnmount(join(base, 'mnt'));
      rmSync(base, { recursive: true, force: true });
      await redis.stop();
    });
    // SIGSTOP: the kernel still accepts connections for it, and nothing answers.
    redis.pause();
    // Before: "cannot reach redis://127.0.0.1:PORT within 5000 ms", as for a host that never
    // answers the connection at all.
    const r = await runCli(['mount', join(base, 'backing'), join(base, 'mnt'), '--store', redis.url]);
    t.equal(r.status, 1);
    t.equal(r.stderr, `locksmith mount: locksmith store: cannot reach ${redis.url} within 5000 ms: the engine at 127.0.0.1:${redis.port} accepted the connection but did not answer (stopped or overloaded?)\n`);
    t.notOk(mounted(join(base, 'mnt')), 'nothing mounted');
  });

  t.test('--store naming a port where no connection opens: no connection, host down or filtered', async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-noconn-'));
    mkdirSync(join(base, 'backing'));
    mkdirSync(join(base, 'mnt'));
    const full = await fullListener();
    t.teardown(() => {
      full.close();
      forceUnmount(join(base, 'mnt'));
      rmSync(base, { recursive: true, force: true });
    });
    // Before: "cannot reach redis://127.0.0.1:PORT within 5000 ms", as for an engine that accepted
    // the connection and did not answer.
    const r = await runCli(['mount', join(base, 'backing'), join(base, 'mnt'), '--store', `redis://127.0.0.1:${full.port}`]);
    t.equal(r.status, 1);
    t.equal(r.stderr, `locksmith mount: locksmith store: cannot reach redis://127.0.0.1:${full.port}: no connection within 5000 ms (host down or filtered?)\n`);
    t.notOk(mounted(join(base, 'mnt')), 'nothing mounted');
  });

  t.test('--store redis:// against a Redis with TLS only: the hint says rediss://', { skip: noRedis }, async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-tlsonly-'));
    mkdirSync(join(base, 'backing'));
    mkdirSync(join(base, 'mnt'));
    // TLS only on its port (no plain port), a self-signed certificate made in its directory.
    const redis = await RedisServer.start([], { tls: true });
    t.teardown(async () => {
      forceUnmount(join(base, 'mnt'));
      rmSync(base, { recursive: true, force: true });
      await redis.stop();
    });
    const port = redis.port;
    // Before: "cannot reach redis://127.0.0.1:PORT (read ECONNRESET)": OpenSSL resets the
    // connection on the client's plain hello, and the "use rediss://" hint (a TLS record read
    // back) never came.
    const r = await runCli(['mount', join(base, 'backing'), join(base, 'mnt'), '--store', `redis://127.0.0.1:${port}`]);
    t.equal(r.status, 1);
    t.equal(r.stderr, `locksmith mount: locksmith store: cannot use redis://127.0.0.1:${port}: the server there dropped a plain Redis hello (it reset or closed the connection, or answered in TLS), as a Redis with TLS does: use rediss://\n`);
    t.notOk(mounted(join(base, 'mnt')), 'nothing mounted');
  });

  t.test('--store rediss:// against a Redis without TLS: the hint says so', { skip: noRedis }, async (t) => {
    const redis = await RedisServer.start();
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-tls-'));
    mkdirSync(join(base, 'backing'));
    mkdirSync(join(base, 'mnt'));
    t.teardown(async () => {
      forceUnmount(join(base, 'mnt'));
      rmSync(base, { recursive: true, force: true });
      await redis.stop();
    });
    // Before: "cannot reach rediss://127.0.0.1:PORT within 5000 ms" and nothing more.
    const r = run('mount', join(base, 'backing'), join(base, 'mnt'), '--store', `rediss://127.0.0.1:${redis.port}`);
    t.equal(r.status, 1);
    t.match(r.stderr, new RegExp(`^locksmith mount: locksmith store: cannot reach rediss://127\\.0\\.0\\.1:${redis.port}[^\\n]*: a TLS handshake got no answer, and the server there answers as a Redis without TLS: use redis://, or enable TLS on the server\\n$`));
  });

  t.test('--store rediss:// with a private CA: NODE_EXTRA_CA_CERTS is all it takes (README, docs/API.md)', { skip: noRedis }, async (t) => {
    // No client certificate is sent: the server must not ask for one (Redis's default does).
    const redis = await RedisServer.start(['--tls-auth-clients', 'no'], { tls: true });
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-ca-'));
    mkdirSync(join(base, 'backing'));
    mkdirSync(join(base, 'mnt'));
    const server = new Server([join(base, 'backing'), join(base, 'mnt'), '--workers', '1', '--store', `rediss://localhost:${redis.port}`, '--namespace', `ca-${process.pid}`], {
      LOCKSMITH_RUNTIME_DIR: join(base, 'run'),
      NODE_EXTRA_CA_CERTS: redis.certFile,
    });
    t.teardown(async () => {
      if (server.proc.exitCode === null && server.proc.signalCode === null) {
        server.proc.kill('SIGTERM');
        await server.ended().catch(() => server.proc.kill('SIGKILL'));
      }
      forceUnmount(join(base, 'mnt'));
      rmSync(base, { recursive: true, force: true });
      await redis.stop();
    });
    t.match(await server.serving(), /one lock space with every node on rediss:\/\/localhost:\d+/, 'serves over TLS, its certificate checked against the CA given');
  });

  t.test('a restart under the name of a killed mount says at once that it waits for its session to expire', { skip: noRedis }, async (t) => {
    const redis = await RedisServer.start();
    const base = mkdtempSync(join(tmpdir(), 'locksmith-cli-restart-'));
    const backing = join(base, 'backing');
    const mnt = join(base, 'mnt');
    mkdirSync(backing);
    mkdirSync(mnt);
    const env = { LOCKSMITH_RUNTIME_DIR: join(base, 'run') };
    const args = [backing, mnt, '--workers', '1', '--clean-stale', '--store', redis.url, '--namespace', `rs-${process.pid}`, '--node', 'again'];
    const first = new Server(args, env);
    let second: Server | undefined;
    t.teardown(async () => {
      for (const s of [first, second]) {
        if (s !== undefined && s.proc.exitCode === null && s.proc.signalCode === null) {
          s.proc.kill('SIGTERM');
          await s.ended().catch(() => s.proc.kill('SIGKILL'));
        }
      }
      forceUnmount(mnt);
      rmSync(base, { recursive: true, force: true });
      await redis.stop();
    });
    t.match(await first.serving(), / as node 'again'/);
    first.proc.kill('SIGKILL'); // its session lives on in the engine until its TTL runs out
    await first.ended();
    second = new Server(args, env);
    // Waited for by its stdout lines, in order: the notice must come first, not after the wait.
    const said = await until('the first line of the restarted mount', () => second!.lines[0]);
    t.match(said, /^locksmith: waiting for the previous session of node 'again' on redis:\/\/127\.0\.0\.1:\d+ to expire \(up to 10\.5 s\)/, 'the first line says it waits, and how long at most');
    t.match(await second.serving(), / as node 'again'/, 'then it serves');
    t.equal(second.lines.filter((l) => l.startsWith('locksmith: waiting')).length, 1, 'said once');
  });
}
