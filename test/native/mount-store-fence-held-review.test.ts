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
import { mounted, until } from './proc.js';
import { heldBacking, heldFence } from './store-mounts.js';

const h = heldBacking('test/native/mount-store-fence-held-review.test.ts', 'locksmith-fence-held-');
if (h !== undefined) {
  const { mnt, sys, syscallOf, threadsNamed: threads } = h;
  t.test("one file's held write-back does not keep the fence from another file's cached pages", async (t) => {
    const s = await heldFence(h, t, ['f']);
    const holder = s.holders[0]!;
    const heldIn = h.heldInvalidation;
    await until('P waiting in its unlock while an invalidation thread is in its notify', () => (syscallOf(holder.p.pid!, holder.p.pid!) === sys.fcntl && heldIn()) || undefined);
    await s.deadline();
    const fence = threads('locksmith-fence')[0];
    // Budget: g's drop takes milliseconds (f's waits behind f's held write-back), or never comes
    // (a watcher dropping files itself, held in f's notify).
    const dropped = await until("a drop done (g's), or the watcher held in a notify", () => (s.a.info().fenceDrops ?? 0) >= 1 || (fence !== undefined && syscallOf(process.pid, fence) === sys.writev && 'held'), 10_000);
    const fault = await s.readAfterDeadline();
    t.equal(fault, 7, `g's mapped page is dropped at the deadline: its read faults and is fenced, SIGBUS (the watcher: ${dropped === 'held' ? 'held in a notify' : 'not held'})`);

    await s.end();
    t.notOk(mounted(mnt), 'the store mount is gone');
    t.equal(threads('locksmith-fence').length, 0, 'its fence thread ended');
    t.match(await h.endInner(), { code: 0 }, 'the inner server unmounted and exited');
    h.remove();
  });
}
