/**
 * User review (issue 13): `locksmith stats` on a --store mount said "locks 0 granted, 0 waiting,
 * on 5 files (node b's)" minutes after every process had closed every file: each file on which
 * mount b was refused (or waited, or was interrupted) because of another node's lock keeps its
 * actor for good. Through one mount, or on the holder's mount, the count goes back to 0 once the
 * processes close (SharedFiles.sweep runs after a step of this node; the file is not idle while
 * its cache still has the other node's record, and nothing of this node runs on it again).
 * A file server in front of a large volume keeps one actor per file ever contended from another
 * node: memory that only grows, and a `files` count (API.md: "files with live actors") that
 * tells a user something is still there.
 *
 * Two --store mounts in this process, as test/native/store-mounts.ts makes them.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { forceUnmount, mountEnvironmentMissing, until } from '../native/proc.js';

const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined);

const python = (program: string) =>
  new Promise<string>((resolve, reject) => {
    const p = spawn('python3', ['-c', program], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`python3 exited with ${code}`))));
  });

t.test(
  "a file mount b was refused on because of mount a's lock has no actor left on b once every process closed it",
  { skip: why ?? false },
  async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'locksmith-actor-sweep-review-'));
    const backing = join(base, 'backing');
    const mntA = join(base, 'a');
    const mntB = join(base, 'b');
    for (const d of [backing, mntA, mntB]) mkdirSync(d);
    writeFileSync(join(backing, 'f'), 'x');
    const server = await RedisServer.start();
    const namespace = `sw-${randomUUID().slice(0, 8)}`;
    let a: FuseMount | undefined;
    let b: FuseMount | undefined;
    t.teardown(async () => {
      await a?.unmount();
      await b?.unmount();
      forceUnmount(mntA);
      forceUnmount(mntB);
      await server.stop();
      rmSync(base, { recursive: true, force: true });
    });
    a = await mountFuse({ backing, mountpoint: mntA, workers: 1, store: { url: server.url, namespace, node: 'a', sessionTtlMs: 2000 } });
    b = await mountFuse({ backing, mountpoint: mntB, workers: 1, store: { url: server.url, namespace, node: 'b', sessionTtlMs: 2000 } });
    const out = await python(
      [
        'import fcntl, os',
        `fa = os.open(${JSON.stringify(join(mntA, 'f'))}, os.O_RDWR)`,
        'fcntl.lockf(fa, fcntl.LOCK_EX)',
        `fb = os.open(${JSON.stringify(join(mntB, 'f'))}, os.O_RDWR)`,
        'try:',
        '    fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB); print("granted")',
        'except BlockingIOError:',
        '    print("refused")',
        'os.close(fb); os.close(fa)',
      ].join('\n'),
    );
    t.equal(out, 'refused', "b's request is refused: a holds the file");
    const mA = a;
    const mB = b;
    await until("mount a's actor of the file swept once the holder closed it", async () => (await mA.coordinator.stats()).files === 0, 60_000);
    t.equal((await mA.coordinator.locks()).length, 0, 'nothing held or waiting anywhere');
    // Generous: the sweep comes 2 s (SharedFiles.foreignLingerMs) after b's last job; the defect keeps the actor for good (minutes seen).
    const swept = await until("mount b's actor of the file swept", async () => (await mB.coordinator.stats()).files === 0, 20_000).catch(() => false);
    t.ok(swept, `mount b has no actor left (files: ${(await mB.coordinator.stats()).files})`);
  },
);
