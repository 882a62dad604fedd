/**
 * A store mount answers a grant or an unlock only after the kernel wrote back and dropped the
 * file's cached pages (fuse_session.cc, the invalidation threads). That invalidation waits for WRITE
 * requests to this very server; here one of them is held: the backing directory is itself a FUSE
 * mount whose server (a `locksmith mount` child) is stopped (SIGSTOP), so the backing write that
 * laundering a dirty mmap page needs cannot end. The store mount is unmounted while one of its
 * invalidation threads is held in that notify, and another process locks another file (answered
 * by another of those threads, or at the unmount if decided late: mount-store-inval-pool): the unmount
 * ends (it aborts the connection, as for any busy mount), and every process on the mount gets an
 * answer. The held process resumes the stopped server itself once its unlock returned, so nothing
 * here waits on a clock while this file's event loop is inside unmount().
 *
 * Skips only outside CI when a mount, redis-server or python3 cannot work here, saying why.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { mountFuse, type FuseMount } from '../../src/index.js';
import { RedisServer } from '../store/redis-server.js';
import { mounted, until } from './proc.js';
import { heldBacking } from './store-mounts.js';

const h = heldBacking('test/native/mount-store-inval-unmount.test.ts', 'locksmith-inval-unmount-');
if (h !== undefined) {
  const { mnt, backing, sys, python, syscallOf, threadsNamed } = h;

  t.test('unmounting a store mount while its invalidation thread waits for a write the mount must serve', async (t) => {
    await h.startInner({ f: 'AAAA', g: 'AAAA' });
    const server = await RedisServer.start();
    t.teardown(() => server.stop());
    const a: FuseMount = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { url: server.url, namespace: `u-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 1000 } });

    // P dirties a page through a shared mapping under a lock, then (told to) unlocks: the unlock's
    // answer waits for that page's write-back, which the stopped inner server holds. Once its
    // unlock returned (answered, or failed as the connection was aborted), P resumes that server.
    const holder = python(
      [
        'import fcntl, mmap, os, signal, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_RDWR)`,
        'm = mmap.mmap(fd, 4)',
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        "m[0:4] = b'MMMM'",
        "print('dirty', flush=True)",
        'sys.stdin.readline()',
        'try:',
        "    fcntl.lockf(fd, fcntl.LOCK_UN); print('unlocked', flush=True)",
        'except OSError as e:',
        "    print('unlock failed', flush=True)",
        `os.kill(${h.innerPid}, signal.SIGCONT)`,
      ].join('\n'),
    );
    await until("P's line: a page dirtied under its lock", () => holder.lines.includes('dirty'));
    t.ok(threadsNamed('locksmith-inval').length > 0, 'a store mount has its invalidation threads');
    const heldIn = h.heldInvalidation;
    // Q opens another file now: with the inner server stopped, an open would wait for it.
    const queued = python(
      [
        'import fcntl, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'g'))}, os.O_RDWR)`,
        "print('opened', flush=True)",
        'sys.stdin.readline()',
        'try:',
        "    fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True)",
        'except OSError as e:',
        "    print('lock failed', flush=True)",
      ].join('\n'),
    );
    await until("Q's line: the file opened", () => queued.lines.includes('opened'));
    await h.stopInner();
    // Held: P in its unlock (fcntl) and the invalidation thread in its notify (writev to /dev/fuse)
    // at once: the grant's invalidation ended before P printed, so this one is the unlock's.
    holder.p.stdin!.write('go\n');
    await until("P waiting in its unlock while the invalidation thread is in its notify", () => (syscallOf(holder.p.pid!, holder.p.pid!) === sys.fcntl && heldIn()) || undefined);
    // Q locks another file: its grant is answered by another invalidation thread, or (decided
    // late) at the unmount.
    queued.p.stdin!.write('go\n');
    await until("Q's lock request on the mount", () => syscallOf(queued.p.pid!, queued.p.pid!) === sys.fcntl || queued.lines.length > 1 || undefined);
    t.ok(heldIn(), 'an invalidation thread is still held in its notify');

    await a.unmount();
    t.notOk(mounted(mnt), 'the store mount is gone');
    t.equal(threadsNamed('locksmith-inval').length, 0, 'its invalidation threads ended');
    t.equal(await holder.exited, 0, 'P exited');
    t.equal(holder.lines[1]?.startsWith('unlock'), true, `P's unlock was answered: ${holder.lines[1]}`);
    t.equal(await queued.exited, 0, 'Q exited');
    t.equal(queued.lines.length, 2, `Q's lock was answered: ${queued.lines[1]}`);

    t.match(await h.endInner(), { code: 0 }, 'the inner server unmounted and exited');
    t.notOk(mounted(h.innerMnt), 'the inner mount is gone');
    h.remove();
  });
}
