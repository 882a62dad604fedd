/**
 * An unlock waiting in its file's mailbox (behind an approval hook deciding another request) is
 * not ended there by its signal, nor when its worker dies: an unlock never waits, so it runs when
 * its turn comes, and what the journal says it did is what it did. Before, it was answered -EINTR
 * without running while the journal recorded the lock gone: the lock stayed held, and a worker
 * crash then lost it.
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_UNLCK, F_WRLCK, LockCoordinator, type LockReply } from '../../src/index.js';
import { settles } from './helpers.js';

/**
 * Owner 1 holds [0, 9] of `path`; owner 2's lock on [100, 109] waits for an onLock hook that does
 * not return until `open()`; owner 1's unlock, sent behind it, has its signal aborted, and the
 * worker has read that cancel (a later call on another file was answered) while the unlock waits.
 */
async function heldUnlock(t: Test, path: string) {
  let entered!: () => void;
  const inHook = new Promise<void>((r) => (entered = r));
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const c = await LockCoordinator.start({
    workers: 1,
    onLock: async (e) => {
      if (e.lockOwner === 2) {
        entered();
        await gate;
      }
      return 0;
    },
  });
  t.teardown(() => c.stop());
  const lock = (owner: number, lockType: number, extra: object = {}) => c.lock({ path, lockType, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: owner, lockPid: owner, ...extra });
  t.equal((await lock(1, F_WRLCK)).result, 0, 'owner 1 holds [0, 9]');
  const second = lock(2, F_WRLCK, { lockStart: 100 });
  await settles(inHook, "the hook deciding owner 2's lock to start");
  const ac = new AbortController();
  const unlock = lock(1, F_UNLCK, { signal: ac.signal });
  ac.abort();
  t.equal((await c.lock({ path: '/elsewhere', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 9 })).result, 0);
  const owners = async () => (await c.locks(path)).map((l) => `${String(l.owner)} ${l.start}-${l.end}`).sort();
  /** Lets the hook answer; the unlock must then have run. */
  const finish = async (): Promise<void> => {
    open();
    t.equal((await settles<LockReply>(second, "owner 2's lock")).result, 0, "owner 2's lock is granted");
    t.equal((await settles<LockReply>(unlock, 'the unlock')).result, 0, 'the unlock ran and answered 0');
    t.strictSame(await owners(), ['2 100-109'], "owner 1's lock is gone, owner 2's is held");
  };
  return { c, owners, finish };
}

t.test('a held unlock whose signal aborts: it runs, and a crash changes nothing', async (t) => {
  const { c, owners, finish } = await heldUnlock(t, '/held-unlock');
  await finish();
  const before = await owners();
  await c.crashWorker(0);
  t.strictSame(await owners(), before, 'the same locks after the worker is replaced');
});

t.test('the same unlock, its worker crashing while it waits: sent again, it runs', async (t) => {
  const { c, finish } = await heldUnlock(t, '/held-unlock-crash');
  await c.crashWorker(0);
  await finish();
});
