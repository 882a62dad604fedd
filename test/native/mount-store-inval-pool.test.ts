/**
 * A store mount's invalidations (before a grant's answer, before an unlock goes on) run on a small
 * pool of threads, a file at a time each (fuse_session.cc invalidationLoop): one file whose
 * write-back cannot end holds its own requests only. Here P's unlock of `f` is held in its
 * invalidation, which must write back a page P dirtied through a shared mapping into a backing
 * directory that is itself a FUSE mount whose server (a `locksmith mount` child) is stopped
 * (SIGSTOP); meanwhile Q's lock of another file `g` is granted and answered. With one invalidation
 * thread per mount Q's answer waited behind P's until the backing store came back.
 * Then the backing server resumes, P's unlock is answered, and the mount unmounts as usual.
 *
 * Skips only outside CI when a mount, redis-server or python3 cannot work here, saying why.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountFuse, type FuseMount } from '../../src/index.js';
import { RedisServer } from '../store/redis-server.js';
import { mounted, until } from './proc.js';
import { heldBacking } from './store-mounts.js';

const h = heldBacking('test/native/mount-store-inval-pool.test.ts', 'locksmith-inval-pool-');
if (h !== undefined) {
  const { mnt, backing, sys, python, syscallOf } = h;
  const invalThreads = () => h.threadsNamed('locksmith-inval');

  t.test("one file's held write-back does not hold another file's grant", async (t) => {
    await h.startInner({ f: 'AAAA', g: 'AAAA' });
    const server = await RedisServer.start();
    t.teardown(() => server.stop());
    const a: FuseMount = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { url: server.url, namespace: `p-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 10_000 } });
    t.teardown(async () => {
      h.resumeInner();
      await a.unmount();
    });

    const holder = python(
      [
        'import fcntl, mmap, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_RDWR)`,
        'm = mmap.mmap(fd, 4)',
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        "m[0:4] = b'MMMM'",
        "print('dirty', flush=True)",
        'sys.stdin.readline()',
        "fcntl.lockf(fd, fcntl.LOCK_UN); print('unlocked', flush=True)",
      ].join('\n'),
    );
    await until("P's line: a page dirtied under its lock", () => holder.lines.includes('dirty'));
    t.ok(invalThreads().length > 1, `a store mount has a pool of invalidation threads (${invalThreads().length})`);
    // Q opens g now: with the inner server stopped, an open would wait for it.
    const other = python(
      [
        'import fcntl, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'g'))}, os.O_RDWR)`,
        "print('opened', flush=True)",
        'sys.stdin.readline()',
        "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
    );
    await until("Q's line: the file opened", () => other.lines.includes('opened'));
    await h.stopInner();
    holder.p.stdin!.write('go\n');
    const heldIn = h.heldInvalidation;
    await until('P waiting in its unlock while an invalidation thread is in its notify', () => (syscallOf(holder.p.pid!, holder.p.pid!) === sys.fcntl && heldIn()) || undefined);
    other.p.stdin!.write('go\n');
    // Budget: a grant on a quiet mount takes milliseconds; waited behind P's, it never comes while
    // the inner server is stopped.
    await until("Q's grant of g answered while P's unlock of f is held", () => other.lines.includes('locked') || undefined, 30_000);
    t.ok(heldIn(), "P's invalidation is still held in its notify");
    t.equal(syscallOf(holder.p.pid!, holder.p.pid!), sys.fcntl, 'P still waits in its unlock');
    t.notOk(holder.lines.includes('unlocked'), "P's unlock is not answered yet");

    h.resumeInner();
    await until("P's unlock answered once the backing store is back", () => holder.lines.includes('unlocked') || undefined);
    t.equal(readFileSync(join(h.innerBacking, 'dir', 'f'), 'utf8'), 'MMMM', "P's mapped write reached the backing store before its unlock was answered");
    other.p.stdin!.end();
    t.equal(await holder.exited, 0, 'P exited');
    t.equal(await other.exited, 0, 'Q exited');
    await a.unmount();
    t.notOk(mounted(mnt), 'the store mount is gone');
    t.equal(invalThreads().length, 0, 'its invalidation threads ended');
    t.match(await h.endInner(), { code: 0 }, 'the inner server unmounted and exited');
    h.remove();
  });
}
