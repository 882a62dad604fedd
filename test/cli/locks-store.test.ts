/**
 * `locksmith locks --store URL [--namespace NAME]` (issue 13): a shared lock space listed from its
 * engine on a machine with no mount. Two API coordinators (nodes a and b) over a real redis-server
 * of this file's own hold and wait on POSIX and flock locks of two files; the built CLI runs as a
 * child process: each lock once with its node, state and range, --json, no session opened and no
 * write (MONITOR, and the namespace's keys and sessions before and after), the errors (an engine
 * that is not there, a malformed URL, --store with a mountpoint), and data of an earlier run of the
 * engine (restarted from a snapshot) listed and said to be so, and left as it is.
 */
import { randomUUID } from 'node:crypto';
import { type Socket, connect, createServer } from 'node:net';
import t from 'tap';
import type { Redis } from 'ioredis';
import { F_RDLCK, F_SETLK, F_SETLKW, F_WRLCK, LockCoordinator } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { runCli } from '../native/cli-proc.js';
import { waitFor } from '../api/helpers.js';
import { SERVES } from '../../src/store/options.js';

const NS = `ls-${randomUUID().slice(0, 8)}`;
const OFFSET_MAX = '9223372036854775807';
const posix = (path: string, owner: number, pid: number, start: number, len: number, cmd = F_SETLK, lockType = F_WRLCK) => ({ path, lockType, lockStart: start, lockLen: len, cmd, lockOwner: owner, lockPid: pid });
const flock = (path: string, owner: number, pid: number, cmd = F_SETLK) => ({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd, lockOwner: owner, lockPid: pid, kind: 'flock' as const, fileHandle: owner });

let server: RedisServer;
let admin: Redis;
let a: LockCoordinator;
let b: LockCoordinator;
/** The requests that wait for the whole file (ended when the nodes stop). */
const waiting: Promise<unknown>[] = [];

t.before(async () => {
  if (noRedis) return;
  server = await RedisServer.start();
  admin = await server.client();
  // A short TTL: a new namespace's grace period (sessionTtlMs) holds its first grant up.
  const store = { url: server.url, namespace: NS, sessionTtlMs: 3000 };
  a = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'a' } });
  // b records where it serves, as a mount does (src/mount.ts): on another machine's host.
  b = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'b', [SERVES]: { host: 'host-b', mountpoint: '/mnt/b' } } });
  // /f1: a holds bytes 0-9 (posix write), b waits for 5-14; b holds 100 to EOF for reading.
  // /f2: b holds an exclusive flock, a waits for one.
  t.equal((await a.lock(posix('/f1', 1, 101, 0, 10))).result, 0);
  t.equal((await b.lock(posix('/f1', 2, 202, 100, 0, F_SETLK, F_RDLCK))).result, 0);
  t.equal((await b.lock(flock('/f2', 3, 203))).result, 0);
  waiting.push(b.lock(posix('/f1', 4, 204, 5, 10, F_SETLKW)), a.lock(flock('/f2', 5, 105, F_SETLKW)));
  for (const w of waiting) w.catch(() => {});
  await waitFor(async () => (await a.locks()).filter((l) => l.state === 'waiting').length === 2 || undefined, 'both waiters in the engine');
});
t.teardown(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  admin?.disconnect();
  await server?.stop();
});

/**
 * A MONITOR connection to the engine on `port` (a plain socket, no client library): `seen` gets
 * each relayed command's source ("lua" or the client's address) and its arguments; resolves once
 * MONITOR is on (its +OK came).
 */
function rawMonitor(port: number, seen: (source: string, args: string[]) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    let on = false;
    s.setEncoding('utf8');
    s.on('error', reject);
    s.on('connect', () => s.write('MONITOR\r\n'));
    s.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (!on) {
          on = line === '+OK';
          if (on) resolve(s);
          else reject(new Error(`MONITOR refused: ${line}`));
          continue;
        }
        const m = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
        if (m === null) continue;
        const args = [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]!.replace(/\\(.)/g, '$1'));
        seen(m[1]!, args);
      }
    });
  });
}

/** The locks as the API lists them (every node's, from the engine), as the CLI's --json gives them. */
async function expected(): Promise<string[]> {
  return (await a.locks()).map((l) => JSON.stringify([l.node, l.pid, l.kind, l.type, l.start.toString(), l.end.toString(), l.state, l.path])).sort();
}

t.test('the listing: each lock once, with its node, state and range, from the engine alone', { skip: noRedis }, async (t) => {
  const r = await runCli(['locks', '--store', server.url, '--namespace', NS]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, '', 'nothing to say: both nodes renew their sessions');
  const rows = r.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/));
  t.same(rows[0], ['NODE', 'PID', 'KIND', 'TYPE', 'START', 'END', 'STATE', 'MOUNT', 'PATH']);
  t.same(
    rows.slice(1),
    [
      ['a', '101', 'posix', 'write', '0', '9', 'granted', '-', '/f1'],
      ['b', '204', 'posix', 'write', '5', '14', 'waiting', 'host-b:/mnt/b', '/f1'],
      ['b', '202', 'posix', 'read', '100', 'EOF', 'granted', 'host-b:/mnt/b', '/f1'],
      ['a', '105', 'flock', 'write', '0', 'EOF', 'waiting', '-', '/f2'],
      ['b', '203', 'flock', 'write', '0', 'EOF', 'granted', 'host-b:/mnt/b', '/f2'],
    ],
    "by file, start, node: each once; MOUNT the node's recorded mount (host:mountpoint), '-' for a program's coordinator",
  );
  const bare = await runCli(['locks', '--store', server.url, '--namespace', NS, '--noheadings']);
  t.equal(bare.stdout, r.stdout.split('\n').slice(1).join('\n'), '--noheadings: the same lines without the heading');
});

t.test('--json parses and matches what the nodes list', { skip: noRedis }, async (t) => {
  const r = await runCli(['locks', '--json', '--store', server.url, '--namespace', NS]);
  t.equal(r.status, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { store: Record<string, unknown>; locks: Record<string, unknown>[]; lateSessions?: unknown };
  t.match(body.store, { engine: server.url.replace(/\/$/, ''), namespace: NS, incarnation: String, stale: false });
  t.notOk('lateSessions' in body, 'no late session');
  t.equal(body.locks.length, 5);
  const got = body.locks.map((l) => JSON.stringify([l.node, l.pid, l.kind, l.type, l.start, l.end, l.state, l.key])).sort();
  t.same(got, await expected(), "the nodes' own listing of the lock space, entry for entry");
  for (const l of body.locks) {
    t.match(l, { path: null, epoch: Number, owner: String }, 'the field names of a mount listing');
    t.same([l.mountpoint, l.host], l.node === 'b' ? ['/mnt/b', 'host-b'] : [null, null], "the node's recorded mount");
  }
  t.ok(body.locks.some((l) => l.end === OFFSET_MAX), 'EOF as OFFSET_MAX, a decimal string');
  t.ok(body.locks.filter((l) => l.state === 'waiting').every((l) => typeof l.waitingMs === 'number'), 'waiters say for how long');
});

t.test('the listing joins no lock space: no session, no write (MONITOR; keys and sessions unchanged)', { skip: noRedis }, async (t) => {
  const keys = async () => (await admin.keys(`{${NS}}:*`)).filter((k) => !/:(in:)/.test(k)).sort();
  const sessions = async () => (await admin.zrange(`{${NS}}:sessions`, 0, -1)).sort();
  const records = async () => Promise.all(['/f1', '/f2'].map((f) => admin.hgetall(`{${NS}}:r:${f}`)));
  const before = { keys: await keys(), sessions: await sessions(), records: await records() };
  // The connections up now are the nodes' and this file's: any other is the listing's.
  const known = new Set([...(await admin.client('LIST') as string).matchAll(/addr=(\S+)/g)].map((m) => m[1]!));
  // MONITOR on a plain socket: ioredis' monitor() can take a command relayed before MONITOR's own
  // reply for a reply of its queue ("Command queue state error", seen with the nodes renewing).
  const seen: { source: string; args: string[] }[] = [];
  const monitor = await rawMonitor(server.port, (source, args) => seen.push({ source, args }));
  const r = await runCli(['locks', '--store', server.url, '--namespace', NS]);
  // MONITOR relays each command as it runs: a PING sent after the listing ended comes after its commands.
  const mark = `mark-${randomUUID()}`;
  await admin.echo(mark);
  await waitFor(() => seen.some((c) => c.args[0]?.toLowerCase() === 'echo' && c.args[1] === mark) || undefined, 'MONITOR to relay the mark');
  monitor.destroy();
  t.equal(r.status, 0, r.stderr);
  const mine = seen.filter((c) => c.source !== 'lua' && !known.has(c.source) && !c.args.includes(mark) && c.args[0]?.toLowerCase() !== 'monitor');
  const names = mine.map((c) => c.args[0]!.toLowerCase());
  t.ok(names.includes('eval_ro'), `the records were read by EVAL_RO (a read-only script): ${names.join(' ')}`);
  t.same(
    names.filter((n) => !['hello', 'client', 'info', 'sscan', 'multi', 'time', 'zrange', 'get', 'exec', 'mget', 'eval_ro'].includes(n)),
    [],
    'only reads: no OPEN, RENEW, EVALSHA, run check or XREAD (inbox)',
  );
  const after = { keys: await keys(), sessions: await sessions(), records: await records() };
  t.same(after, before, 'the same keys, sessions (a and b only) and records');
});

t.test('errors: an engine that is not there, a malformed URL, --store with a mountpoint', { skip: noRedis }, async (t) => {
  // A port nothing listens on: taken and let go.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const gone = await runCli(['locks', '--store', `redis://127.0.0.1:${port}`]);
  t.equal(gone.status, 1);
  t.match(gone.stderr, new RegExp(`^locksmith locks: [^\\n]*redis://127\\.0\\.0\\.1:${port}\\b[^\\n]*\\n$`), 'one line naming the URL');
  t.match(gone.stderr, /nothing listens on that port/);
  t.equal(gone.stdout, '');
  const bad = await runCli(['locks', '--store', 'redis://u:secret@127.0.0.1:99999']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /^locksmith locks: malformed URL 'redis:\/\/u:\*\*\*@127\.0\.0\.1:99999'[^\n]*\n$/, 'named, its password hidden');
  // An engine that takes the connection and never answers: named once requestTimeoutMs (5 s) is out.
  const silent = createServer(() => {}).listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  t.teardown(() => silent.close());
  const quiet = await runCli(['locks', '--store', `redis://127.0.0.1:${(silent.address() as { port: number }).port}`]);
  t.equal(quiet.status, 1);
  t.match(quiet.stderr, /^locksmith locks: cannot reach redis:\/\/127\.0\.0\.1:\d+ within 5000 ms[^\n]*did not answer[^\n]*\n$/);
  const both = await runCli(['locks', '/mnt/x', '--store', server.url]);
  t.equal(both.status, 2);
  t.match(both.stderr, /--store .*not both.*Run 'locksmith locks --help'/);
  const alone = await runCli(['locks', '--namespace', NS]);
  t.equal(alone.status, 2);
  t.match(alone.stderr, /--namespace goes with --store/);
  const badNs = await runCli(['locks', '--store', server.url, '--namespace', 'a b']);
  t.equal(badNs.status, 2);
  t.match(badNs.stderr, /--namespace must be/);
  const none = await runCli(['locks', '--store', server.url, '--namespace', `${NS}-typo`]);
  t.equal(none.status, 0);
  t.equal(none.stdout, 'NODE PID KIND TYPE START END STATE MOUNT PATH\n');
  t.match(none.stderr, /has no data: no node has opened a session in it \(check --namespace\)/);
});

t.test('a large lock space is read a few hundred files per script (never one script blocking the engine for all of them)', { skip: noRedis }, async (t) => {
  const ns = `${NS}-many`;
  const c = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace: ns, node: 'm', sessionTtlMs: 3000 } });
  t.teardown(() => c.stop());
  const files = Array.from({ length: 600 }, (_, i) => `/many/${i}`);
  const got = await Promise.all(files.map((f, i) => c.lock(posix(f, 1000 + i, 1000 + i, 0, 1))));
  t.ok(got.every((g) => g.result === 0), 'node m holds one lock on each of 600 files');
  const calls = async () => Number(/cmdstat_eval_ro:calls=(\d+)/.exec((await admin.info('commandstats')) as string)?.[1] ?? 0);
  const before = await calls();
  const r = await runCli(['locks', '--json', '--store', server.url, '--namespace', ns]);
  t.equal(r.status, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { locks: { key: string; node: string; state: string }[] };
  t.same(body.locks.map((l) => l.key).sort(), [...files].sort(), 'every file listed once');
  t.ok(body.locks.every((l) => l.node === 'm' && l.state === 'granted'), 'each with its node and state');
  const scripts = (await calls()) - before;
  t.ok(scripts >= 3, `the records were read in ${scripts} read-only scripts (600 files, at most 256 a script)`);
});

t.test('data of an earlier run of the engine (restarted from a snapshot): listed, said to be stale, left as it is', { skip: noRedis }, async (t) => {
  await server.snapshot();
  // The nodes go (their sessions end on the engine as it is now); the snapshot keeps them live.
  await Promise.all([a.stop(), b.stop()]);
  await Promise.allSettled(waiting);
  admin.disconnect();
  await server.restart({ fromSnapshot: true });
  admin = await server.client();
  const r = await runCli(['locks', '--json', '--store', server.url, '--namespace', NS]);
  t.equal(r.status, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { store: { stale: boolean }; locks: unknown[] };
  t.equal(body.store.stale, true);
  t.equal(body.locks.length, 5, 'what the engine has is listed');
  t.match(r.stderr, /was written under another run of its server \(it restarted or failed over since\) and no node has used it since: what is listed may be older/);
  t.equal(await admin.exists(`{${NS}}:inc`), 1, 'the listing ran no run check: the data is left for the nodes to drop');
});
