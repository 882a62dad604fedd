/**
 * The control channel's pieces in this process, without a mount (test/native/control.test.ts runs
 * them against one): the socket's directory and modes, the line protocol, stale sockets, the
 * mapping of lock keys back to paths, and the log level's routing of process warnings.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  controlDir,
  ensurePrivateDir,
  listSockets,
  probe,
  request,
  searchDirs,
  serveControl,
  socketName,
  toJson,
} from '../../src/control.js';
import { cleanDeadMount, deadMountCommand, isDeadMount } from '../../src/dead-mount.js';
import { createLogger, printWarnings, resolveLogLevel } from '../../src/log.js';
import { KeyPaths, parseKey } from '../../src/mount-control.js';
import { listed } from '../../src/locks-cli.js';
import { packageVersion } from '../../src/version.js';

const base = mkdtempSync(join(tmpdir(), 'locksmith-ctl-unit-'));
t.teardown(() => rmSync(base, { recursive: true, force: true }));

t.test('where sockets live', async (t) => {
  t.equal(controlDir({ LOCKSMITH_RUNTIME_DIR: 'rel/dir' }, 1000), join(process.cwd(), 'rel/dir'), 'LOCKSMITH_RUNTIME_DIR first');
  t.equal(controlDir({}, 0), '/run/locksmith', 'root');
  t.equal(controlDir({ XDG_RUNTIME_DIR: base }, 1000), join(base, 'locksmith'), '$XDG_RUNTIME_DIR/locksmith');
  t.equal(controlDir({ XDG_RUNTIME_DIR: join(base, 'missing') }, 1000), '/tmp/locksmith-1000', 'else /tmp/locksmith-<uid>');
  t.equal(controlDir({}, 1000), '/tmp/locksmith-1000');
  t.same(searchDirs({ LOCKSMITH_RUNTIME_DIR: base }, 0), [base], 'a chosen directory is the only place');
  t.same(searchDirs({}, 1000), ['/tmp/locksmith-1000'], 'a user looks in their own');
  t.equal(searchDirs({}, 0)[0], '/run/locksmith', "root looks in its own first, then users'");
  t.match(socketName('/mnt/data'), /^[0-9a-f]{24}\.sock$/);
  t.not(socketName('/mnt/data'), socketName('/mnt/data2'));
  t.equal(toJson({ a: 2n ** 63n - 1n, b: [1n] }), '{"a":"9223372036854775807","b":["1"]}', 'bigints as decimal strings');
});

t.test('the directory is made private, or refused', async (t) => {
  const d = join(base, 'a', 'b');
  ensurePrivateDir(d);
  t.equal(statSync(d).mode & 0o777, 0o700, 'created 0700');
  chmodSync(d, 0o755);
  ensurePrivateDir(d);
  t.equal(statSync(d).mode & 0o777, 0o700, 'ours with a wider mode: tightened');
  const link = join(base, 'link');
  symlinkSync(d, link);
  t.throws(() => ensurePrivateDir(link), /is not a directory \(or is a symlink\)/, 'a symlink is refused');
  const file = join(base, 'file');
  writeFileSync(file, '');
  t.throws(() => ensurePrivateDir(file), /cannot create the control directory|is not a directory/);
  if (process.getuid?.() === 0) {
    const theirs = join(base, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chmodSync(theirs, 0o700);
    (await import('node:fs')).chownSync(theirs, 65534, 65534);
    t.throws(() => ensurePrivateDir(theirs), /belongs to uid 65534/, "another user's directory is refused");
  }
});

t.test('the line protocol', async (t) => {
  const dir = join(base, 'run');
  let n = 0;
  const errors: string[] = [];
  const server = await serveControl({
    mountpoint: '/nowhere/mnt',
    dir,
    handlers: {
      info: () => ({ n: ++n, big: 2n ** 64n - 1n }),
      slow: async () => {
        await new Promise((r) => setTimeout(r, 50));
        return { slow: true };
      },
      broken: () => {
        throw new Error('it broke');
      },
    },
    onError: (cmd, e) => errors.push(`${cmd}: ${(e as Error).message}`),
  });
  t.equal(server.path, join(dir, socketName('/nowhere/mnt')));
  t.equal(statSync(server.path).mode & 0o777, 0o600, 'socket 0600');
  t.same(readdirSync(dir), [socketName('/nowhere/mnt')], 'no temporary name left');
  t.equal(await probe(server.path), 'live');

  t.match(await request(server.path, { cmd: 'info' }), { ok: true, protocol: 1, cmd: 'info', n: 1, big: '18446744073709551615' });
  await t.rejects(request(server.path, { cmd: 'broken' }), { message: 'it broke', code: 'failed' });
  t.same(errors, ['broken: it broke'], 'a failed handler is reported');
  await t.rejects(request(server.path, { cmd: 'toString' }), { message: /unknown command 'toString' \(known: info, slow, broken\)/ });
  await t.rejects(serveControl({ mountpoint: '/nowhere/mnt', dir, handlers: {} }), /another locksmith server already answers/);

  // several requests on one connection: answered in order, ids echoed, bad lines answered too
  const s = createConnection(server.path);
  const lines: string[] = [];
  createInterface({ input: s }).on('line', (l) => lines.push(l));
  s.write('{"cmd":"slow","id":1}\n\n{"cmd":"info","id":2}\nnot json\n');
  await new Promise<void>((r) => {
    const check = () => (lines.length >= 3 ? r() : setTimeout(check, 5));
    check();
  });
  const answers = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(answers, [{ ok: true, id: 1, slow: true }, { ok: true, id: 2, n: 2 }, { ok: false, error: /one JSON object per line/ }]);
  s.write(`${'x'.repeat(70 * 1024)}`);
  await new Promise((r) => s.once('close', r));
  t.match(lines.at(-1), /request line too long/, 'a line over 64 KiB ends the connection');

  await server.close();
  await server.close();
  t.throws(() => lstatSync(server.path), { code: 'ENOENT' }, 'close removes the socket');
  await t.rejects(request(server.path, { cmd: 'info' }), { code: 'absent' });
});

t.test('stale sockets: found, refused to connect, cleaned', async (t) => {
  const dir = join(base, 'stale');
  ensurePrivateDir(dir);
  const path = join(dir, socketName('/dead'));
  // a server killed the hard way leaves its socket file with nobody listening
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`], {
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  await new Promise((r) => child.once('exit', r));
  t.ok(lstatSync(path).isSocket(), 'left behind');
  t.equal(await probe(path), 'stale');
  await t.rejects(request(path, { cmd: 'info' }), { code: 'stale' });
  t.same(await listSockets([dir], false), [{ path, state: 'stale' }], 'listed as stale when not cleaning');
  t.same(await listSockets([dir, join(base, 'nothing-here')]), [], 'and removed when cleaning');
  t.throws(() => lstatSync(path), { code: 'ENOENT' });

  const again = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`], {
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  await new Promise((r) => again.once('exit', r));
  const server = await serveControl({ mountpoint: '/dead', dir, handlers: { info: () => ({}) } });
  t.match(await request(server.path, { cmd: 'info' }), { ok: true }, 'a new server replaces a stale socket');
  t.match(await listSockets([dir]), [{ path, state: 'live' }]);
  await server.close();
});

t.test('a stale socket replaced by a live one between the probe and the removal is kept', async (t) => {
  const dir = join(base, 'swapped');
  ensurePrivateDir(dir);
  const path = join(dir, socketName('/restarted'));
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`], {
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  await new Promise((r) => child.once('exit', r));
  const dead = lstatSync(path, { bigint: true });
  // The mount restarts right after the listing found its old socket stale, and before the listing
  // removes it: its new socket is renamed into place in between.
  let server: Awaited<ReturnType<typeof serveControl>> | undefined;
  t.teardown(() => server?.close());
  const found = await listSockets([dir], true, async (p, state) => {
    if (p !== path || state !== 'stale' || server !== undefined) return;
    server = await serveControl({ mountpoint: '/restarted', dir, handlers: { info: () => ({ up: true }) } });
  });
  t.ok(server !== undefined, 'the new server started between the probe and the removal');
  // ext4 gives the new socket the inode number the stale one freed: its times tell them apart.
  const now = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  t.ok(now !== undefined && (now.ino !== dead.ino || now.ctimeNs !== dead.ctimeNs), 'its socket replaced the stale one');
  // Before: the listing unlinked whatever was at the path once the old socket had been probed
  // stale: the live server's new socket was deleted, and the mount could no longer be asked.
  t.ok(lstatSync(path, { throwIfNoEntry: false })?.isSocket(), 'the live socket is still there');
  t.same(found, [{ path, state: 'live' }], 'and listed as live');
  t.match(await request(path, { cmd: 'info' }), { ok: true, up: true }, 'the restarted server answers');
});

t.test('lock keys back to paths: from the holder\'s descriptors, else a walk, else nothing', async (t) => {
  const dir = join(base, 'tree');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'sub', 'held'), '');
  writeFileSync(join(dir, 'walked'), '');
  const key = (p: string) => {
    const st = lstatSync(p, { bigint: true });
    return `fuse:${st.dev}:${st.ino}`;
  };
  t.same(parseKey(key(join(dir, 'walked'))), [lstatSync(join(dir, 'walked'), { bigint: true }).dev, lstatSync(join(dir, 'walked'), { bigint: true }).ino]);
  t.equal(parseKey('synth:3'), undefined);
  // this directory stands for both the mountpoint and the backing directory
  const paths = new KeyPaths(dir, dir);
  const fd = openSync(join(dir, 'sub', 'held'), 'r');
  try {
    const got = await paths.resolve(
      new Map([
        [key(join(dir, 'sub', 'held')), new Set([process.pid])],
        [key(join(dir, 'walked')), new Set([999_999_999])],
        [key(dir), new Set<number>()],
        ['fuse:1:1', new Set([process.pid])],
        ['synth:1', new Set<number>()],
      ]),
    );
    t.same(
      [...got.values()],
      ['sub/held', 'walked', '.', null, null],
      "the open descriptor's name, a walked name, the root, and nothing for what is not there",
    );
    const again = await paths.resolve(new Map([[key(join(dir, 'walked')), new Set<number>()]]));
    t.equal(again.get(key(join(dir, 'walked'))), 'walked', 'remembered');
  } finally {
    closeSync(fd);
  }
});

t.test('dead mounts', async (t) => {
  t.notOk(isDeadMount(base), 'a plain directory is not a dead mount');
  t.notOk(isDeadMount(join(base, 'missing')), 'nor a missing one');
  t.ok(cleanDeadMount(base), 'nothing to clean is usable');
  t.equal(deadMountCommand('/mnt/data'), 'fusermount3 -u -z /mnt/data');
  t.equal(deadMountCommand("/mnt/it's here"), `fusermount3 -u -z '/mnt/it'\\''s here'`, 'quoted for the shell');
});

t.test('log levels and warnings', async (t) => {
  t.equal(resolveLogLevel(undefined, {}), 'warn', 'default warn');
  t.equal(resolveLogLevel(undefined, { LOCKSMITH_LOG_LEVEL: 'DEBUG' }), 'debug', 'from the environment');
  t.equal(resolveLogLevel('error', { LOCKSMITH_LOG_LEVEL: 'debug' }), 'error', 'the flag wins');
  t.throws(() => resolveLogLevel('loud', {}), /--log-level must be one of error, warn, info, debug, got 'loud'/);
  t.throws(() => resolveLogLevel(undefined, { LOCKSMITH_LOG_LEVEL: 'x' }), /LOCKSMITH_LOG_LEVEL must be/);

  const emit = async (level: 'error' | 'warn' | 'info' | 'debug') => {
    const out: string[] = [];
    const restore = printWarnings(createLogger('locksmith mount', level, (l) => out.push(l)));
    try {
      process.emitWarning('locksmith: internal error in a worker: boom', 'LocksmithFaultWarning');
      process.emitWarning('locksmith: onLock hook failed: nope', 'LocksmithHookWarning');
      process.emitWarning('locksmith: worker 1 ended (x); rebuilding its files on a new worker', 'LocksmithWorkerWarning');
      await new Promise((r) => setImmediate(r));
    } finally {
      restore();
    }
    return out;
  };
  const errorOnly = await emit('error');
  t.equal(errorOnly.length, 1, 'error: faults only');
  t.match(errorOnly[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z locksmith mount error: internal error in a worker: boom \(LocksmithFaultWarning\)\n$/);
  const warn = await emit('warn');
  t.equal(warn.length, 3, 'warn: also hook failures and replaced workers');
  t.match(warn[1], / warn: onLock hook failed: nope \(LocksmithHookWarning\)/);
  t.match(warn[2], / warn: worker 1 ended/);
  t.ok((await emit('debug')).some((l) => / debug: LocksmithFaultWarning: /.test(l)), 'debug adds the stack');
  t.ok(process.listenerCount('warning') > 0, "Node's own printer is back after restore");
});

t.test('the version comes from package.json', async (t) => {
  t.match(packageVersion(), /^\d+\.\d+\.\d+/);
});

t.test('locks of one lock space reached by URLs written two ways: listed once', async (t) => {
  const lock = (node: string, pid: number) => ({ pid, kind: 'posix', type: 'write', start: '0', end: '9', state: 'granted', path: 'f', dev: null, ino: '7', key: 'ino:7', owner: '1', node });
  const answer = (mountpoint: string, engine: string, node: string, incarnation?: string) => ({
    mount: { mountpoint, backing: '/b', pid: 1, uid: 0, version: 'x', startedAt: '', uptimeMs: 0, workers: 1 },
    space: { engine, namespace: 'ns', node, ...(incarnation === undefined ? {} : { incarnation }) },
    locks: [lock('n1', 10), lock('n2', 20)],
  });
  // Each mount lists every node's locks: before, the two spellings made two lock spaces, and each
  // lock was listed twice.
  const one = listed([answer('/a', 'redis://localhost:6393', 'n1', 'inc-1'), answer('/b', 'redis://127.0.0.1:6393/0', 'n2', 'inc-1')]);
  t.same(one.map((l) => [l.lock.node, l.mountpoint]), [['n1', '/a'], ['n2', '/b']], 'one incarnation and namespace: each lock once, on its node\'s mount');
  const two = listed([answer('/a', 'redis://127.0.0.1:6393', 'n1', 'inc-1'), answer('/b', 'redis://127.0.0.1:6393', 'n2', 'inc-2')]);
  t.equal(two.length, 4, 'two incarnations: two lock spaces');
  const old = listed([answer('/a', 'redis://127.0.0.1:6393', 'n1'), answer('/b', 'redis://127.0.0.1:6393', 'n2')]);
  t.equal(old.length, 2, 'mounts that report no incarnation: grouped by the URL as before');
});
