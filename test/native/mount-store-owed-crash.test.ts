/**
 * Issue 13 through a mount: a close answered early (owed: the engine paused, so its step cannot be
 * written within requestTimeoutMs) whose worker then dies before the engine has it. The kernel was
 * told the locks are gone; the engine still holds them under the node's live session. The caller's
 * side must send the release again to the replacement worker, as it does for the API's owed
 * releases, so that another node's waiter is granted without waiting for the node's session to end
 * (the mount lives on: without the resend that waiter waits until the unmount).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { F_SETLKW, F_WRLCK, LockCoordinator, fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { settles, waitFor } from '../api/helpers.js';
import { forceUnmount, mountEnvironmentMissing, until } from './proc.js';

const owedOf = (c: object) => (c as { owedReleases: Map<number, unknown> }).owedReleases;

const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined);
if (why !== undefined && !process.env.CI) {
  console.error(`\n!! SKIPPING mount-store-owed-crash: ${why} (in CI, with CI set, this is a failure)\n`);
  t.plan(0, `FUSE or redis-server unavailable: ${why}`);
} else {
  t.test("a close answered owed through a mount, its worker killed before the engine has it: another node's waiter is granted", async (t) => {
    if (why !== undefined) t.fail(`FUSE and redis-server are required in CI but unavailable: ${why}`);
    const base = mkdtempSync(join(tmpdir(), 'lsm-owed-'));
    const backing = join(base, 'backing');
    const mnt = join(base, 'a');
    for (const d of [backing, mnt]) mkdirSync(d);
    writeFileSync(join(backing, 'f'), 'data');
    process.on('exit', () => forceUnmount(mnt));
    const server = await RedisServer.start();
    let m: FuseMount | undefined;
    let b: LockCoordinator | undefined;
    t.teardown(async () => {
      server.resume();
      await b?.stop();
      await m?.unmount();
      forceUnmount(mnt);
      await server.stop();
      rmSync(base, { recursive: true, force: true });
    });
    // The pause below lasts a close's requestTimeoutMs and a worker's restart (seconds each on
    // a loaded machine): the session's TTL is a minute, so that the node is neither fenced nor
    // loses its session meanwhile (its locks would then go with the session, written or not). A
    // new namespace's grace lasts its first node's TTL: a node of a short one opens it.
    const store = { url: server.url, namespace: `owed-${randomUUID().slice(0, 8)}`, sessionTtlMs: 60000, requestTimeoutMs: 500 };
    const opener = await LockCoordinator.start({ workers: 1, store: { ...store, node: 'opener', sessionTtlMs: 1000 } });
    await opener.stop();
    m = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { ...store, node: 'a' } });
    b = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'b' } });
    const key = `ino:${statSync(join(backing, 'f')).ino}`;

    const py = [
      'import fcntl, os, sys',
      `fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_RDWR)`,
      'fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)',
      'print("locked", flush=True)',
      'sys.stdin.readline()',
      'os.close(fd)',
      'print("closed", flush=True)',
    ].join('\n');
    const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => p.kill('SIGKILL'));
    const lines: string[] = [];
    createInterface({ input: p.stdout }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    await until('the process on the mount locked its file', () => lines.includes('locked') || undefined);
    t.match(await m.coordinator.locks(key), [{ node: 'a', state: 'granted' }], "the engine holds the process's lock");

    const counted = async () => {
      const ops = (await m!.coordinator.stats()).operations;
      return Object.values(ops.flush ?? {}).reduce((n, k) => n + k, 0) >= 1 && Object.values(ops.release ?? {}).reduce((n, k) => n + k, 0) >= 1;
    };
    // The node's session lives on throughout (else its locks would go with it, owed or not).
    const events: string[] = [];
    m.coordinator.onStoreSession((e) => events.push(e.kind));
    server.pause();
    try {
      p.stdin.end('\n');
      t.equal(await settles(exited, 'the process to close its file and exit'), 0, 'the close returned while the engine was paused (answered owed)');
      t.ok(await waitFor(counted, "the mount's flush and release answered"), 'flush and release answered before their steps were written');
      t.ok(owedOf(m.coordinator).size >= 1, "the caller's side keeps the mount's releases answered owed");
      // The file's worker dies: nothing it owed can be written by it any more.
      await m.coordinator.crashWorker(routeOf(key, 2));
    } finally {
      server.resume();
    }
    t.same(events, [], "the node's session lived throughout: no fence, loss or expiry");
    const granted = b.lock({ path: key, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLKW, lockOwner: 77, lockPid: 77 });
    t.equal((await settles(granted, "node b's waiting lock of the file the process closed")).result, 0, "b is granted: the close was sent again to the replacement and written");
    t.ok(await waitFor(() => owedOf(m!.coordinator).size === 0, "the mount's owed releases written"), 'the mount keeps no owed release');
    t.match(await b.locks(key), [{ node: 'b', state: 'granted' }], 'only b holds the file');
    const ops = (await m.coordinator.stats()).operations;
    t.same([ops.flush, ops.release], [{ 0: 1 }, { 0: 1 }], 'the flush and the release counted once each (not again when resent)');
  });
}
