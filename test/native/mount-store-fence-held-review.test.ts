/**
 * Found by review (the fence watcher, Passthrough::fenceWatch, dropped the pages of every file
 * locked here itself, one file after the other, each notify blocking until the kernel was done):
 * one file whose write-back cannot end (as mount-store-inval-pool: P's page of `f` dirtied through
 * a shared mapping, its unlock held in the invalidation's write-back into a backing directory whose
 * FUSE server is stopped) held the watcher in that file's notify, and the other locked files'
 * cached pages were never dropped: Q, which locked and mapped `g` before, read it on from the
 * cache after the deadline, while a read reaching the server gets EIO. The watcher now hands each
 * drop to the invalidation threads (a file at a time each): f's drop waits behind f, g's is done.
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

const h = heldBacking('test/native/mount-store-fence-held-review.test.ts', 'locksmith-fence-held-');
if (h !== undefined) {
  const { mnt, backing, sys, python, syscallOf, threadsNamed: threads } = h;

  /** The signal a process exiting was killed by (PF_EXITING in flags, field 9 of stat; exit_code, field 52), else undefined. */
  const exitSignal = (pid: number) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      return (Number(f[9 - 3]) & 0x4) !== 0 ? Number(f[52 - 3]) & 0x7f : undefined;
    } catch {
      return undefined;
    }
  };
  t.test("one file's held write-back does not keep the fence from another file's cached pages", async (t) => {
    // f first: the lower inode number, the watcher's first file (its table is ordered by it).
    await h.startInner({ f: 'AAAA', g: 'GGGG' });
    const server = await RedisServer.start();
    t.teardown(async () => {
      server.resume();
      await server.stop();
    });
    const TTL = 2000;
    const a: FuseMount = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { url: server.url, namespace: `p-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: TTL } });
    t.teardown(async () => {
      h.resumeInner();
      server.resume();
      await a.unmount();
    });
    // Q: g locked and mapped, its page faulted in (cached and mapped) while everything answers. A
    // mapped page is read without any request (a read(2) would ask for the attributes, which wait
    // for the stopped backing store); once dropped, the fault's READ is fenced: SIGBUS.
    const other = python(
      [
        'import fcntl, mmap, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, 'g'))}, os.O_RDWR)`,
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        'm = mmap.mmap(fd, 4, prot=mmap.PROT_READ)',
        'm[0:4]',
        "print('locked', flush=True)",
        'sys.stdin.readline()',
        "print('read ok', m[0:4].decode(), flush=True)",
        'sys.stdin.readline()',
      ].join('\n'),
    );
    await until("Q's line: g locked and read", () => other.lines.includes('locked'));
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
    await h.stopInner();
    holder.p.stdin!.write('go\n');
    const heldIn = h.heldInvalidation;
    await until('P waiting in its unlock while an invalidation thread is in its notify', () => (syscallOf(holder.p.pid!, holder.p.pid!) === sys.fcntl && heldIn()) || undefined);
    // The lease runs out: the engine answers nothing.
    const before = a.info().fenceDeadlines ?? 0;
    server.pause();
    await until('the fence watcher at the deadline', () => (a.info().fenceDeadlines ?? 0) > before || undefined, 3 * TTL);
    const fence = threads('locksmith-fence')[0];
    // Budget: g's drop takes milliseconds (f's waits behind f's held write-back), or never comes
    // (a watcher dropping files itself, held in f's notify).
    const dropped = await until("a drop done (g's), or the watcher held in a notify", () => (a.info().fenceDrops ?? 0) >= 1 || (fence !== undefined && syscallOf(process.pid, fence) === sys.writev && 'held'), 10_000);
    other.p.stdin!.write('read\n');
    // Killed by SIGBUS, Q cannot end yet: its exit closes g, whose FLUSH closes a backing descriptor
    // on the stopped inner mount. Its signal is read while it exits (PF_EXITING, exit_code).
    const fault = await until("Q's read of its mapping after the deadline (a line, or its exit begun)", () => other.lines.find((l) => l.startsWith('read')) ?? exitSignal(other.p.pid!));
    t.equal(fault, 7, `g's mapped page is dropped at the deadline: its read faults and is fenced, SIGBUS (the watcher: ${dropped === 'held' ? 'held in a notify' : 'not held'})`);

    server.resume();
    h.resumeInner();
    await until("P's unlock answered once the backing store is back", () => holder.lines.includes('unlocked') || undefined);
    other.p.stdin!.end();
    await holder.exited;
    await other.exited;
    await a.unmount();
    t.notOk(mounted(mnt), 'the store mount is gone');
    t.equal(threads('locksmith-fence').length, 0, 'its fence thread ended');
    t.match(await h.endInner(), { code: 0 }, 'the inner server unmounted and exited');
    h.remove();
  });
}
