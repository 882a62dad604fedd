/**
 * Found by review (native-drops: the fence watcher hands each file's page drop to the pool of
 * invalidation threads, kInvalThreads = 4, a file at a time each): four files whose write-back
 * cannot end (as mount-store-fence-held-review: a page dirtied through a shared mapping, its
 * unlock held in the invalidation's write-back into a backing directory whose FUSE server is
 * stopped) held every thread of the pool, and the drop of a fifth file at the lease's deadline
 * waited behind them: Q, which locked and mapped `g` before, read it on from the cache after the
 * deadline, while a read reaching the server gets EIO. Now a drop that no thread is free to take
 * goes to a short-lived drop thread ("locksmith-drop"), which ends once it has nothing to take.
 *
 * Skips only outside CI when a mount, redis-server or python3 cannot work here, saying why.
 */
import t from 'tap';
import { mounted, until } from './proc.js';
import { heldBacking, heldFence } from './store-mounts.js';

const h = heldBacking('test/native/mount-store-fence-pool-review.test.ts', 'locksmith-fence-pool-');
if (h !== undefined) {
  const { mnt, sys, syscallOf, threadsNamed: threads } = h;
  t.test("four files' held write-backs do not keep the fence from a fifth file's cached pages", async (t) => {
    // Six readers: each held write-back holds one in its WRITE, and Q's fault needs a free one to
    // be answered (fenced: EIO, SIGBUS); with the default four it would wait for the backing store.
    const s = await heldFence(h, t, ['f1', 'f2', 'f3', 'f4'], { threads: 6 });
    const held = () => threads('locksmith-inval').filter((tid) => syscallOf(process.pid, tid) === sys.writev).length;
    await until('every invalidation thread in a notify held by a write-back', () => held() === 4 || undefined);
    await s.deadline();
    // Budget: g's drop takes milliseconds once a thread takes it; with none free (every one
    // held), never.
    const dropped = await until("g's drop done", () => (s.a.info().fenceDrops ?? 0) >= 1 || undefined, 10_000).catch(() => false);
    const fault = await s.readAfterDeadline();
    t.equal(fault, 7, `g's mapped page is dropped at the deadline: its read faults and is fenced, SIGBUS (g's drop ${dropped ? 'done' : 'not done after 10 s'})`);
    // The drop thread ends once g's drop is done (f1-f4's drops wait behind their own threads).
    await until('the drop thread ended', () => threads('locksmith-drop').length === 0 || undefined);
    t.equal(held(), 4, 'the pool is still held in the four write-backs');

    await s.end();
    t.notOk(mounted(mnt), 'the store mount is gone');
    t.equal(threads('locksmith-fence').length + threads('locksmith-inval').length + threads('locksmith-drop').length, 0, 'its fence, invalidation and drop threads ended');
    t.match(await h.endInner(), { code: 0 }, 'the inner server unmounted and exited');
    h.remove();
  });
}
