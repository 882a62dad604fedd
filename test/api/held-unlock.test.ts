/**
 * An unlock waiting in its file's mailbox (behind an approval hook deciding another request) is
 * not ended there by its signal: an unlock never waits, so it runs when its turn comes, and what
 * the journal says it did is what it did. Before, it was answered -EINTR without running while the
 * journal recorded the lock gone: the lock stayed held, and a worker crash then lost it.
 */
import t from 'tap';
import { F_SETLK, F_UNLCK, F_WRLCK, LockCoordinator } from '../../src/index.js';
import { settles } from './helpers.js';

t.test('a held unlock whose signal aborts: it runs, and a crash changes nothing', async (t) => {
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
  const path = '/held-unlock';
  const lock = (owner: number, lockType: number, extra: object = {}) => c.lock({ path, lockType, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: owner, lockPid: owner, ...extra });

  t.equal((await lock(1, F_WRLCK)).result, 0, 'owner 1 holds [0, 9]');
  const second = lock(2, F_WRLCK, { lockStart: 100 });
  await settles(inHook, "the hook deciding owner 2's lock to start");
  const ac = new AbortController();
  const unlock = lock(1, F_UNLCK, { signal: ac.signal });
  ac.abort();
  // A call on another file, sent after the unlock and its cancel on the same port: once it is
  // answered, the worker has read the cancel while the unlock waited in the mailbox.
  t.equal((await c.lock({ path: '/elsewhere', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 9 })).result, 0);
  open();
  t.equal((await settles(second, "owner 2's lock")).result, 0, "owner 2's lock is granted");
  t.equal((await settles(unlock, 'the unlock')).result, 0, 'the unlock ran and answered 0');

  const owners = async () => (await c.locks(path)).map((l) => `${String(l.owner)} ${l.start}-${l.end}`).sort();
  const before = await owners();
  t.strictSame(before, ['2 100-109'], "only owner 2's lock is left");
  await c.crashWorker(0);
  t.strictSame(await owners(), before, 'the same locks after the worker is replaced');
});

t.test('the same unlock, its worker crashing while it waits: sent again, it runs', async (t) => {
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
  const path = '/held-unlock-crash';
  const lock = (owner: number, lockType: number, extra: object = {}) => c.lock({ path, lockType, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: owner, lockPid: owner, ...extra });

  t.equal((await lock(1, F_WRLCK)).result, 0, 'owner 1 holds [0, 9]');
  const second = lock(2, F_WRLCK, { lockStart: 100 });
  await settles(inHook, "the hook deciding owner 2's lock to start");
  const ac = new AbortController();
  const unlock = lock(1, F_UNLCK, { signal: ac.signal });
  ac.abort();
  t.equal((await c.lock({ path: '/elsewhere', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 9 })).result, 0);
  await c.crashWorker(0);
  open();
  t.equal((await settles(second, "owner 2's lock")).result, 0, "owner 2's lock is granted");
  t.equal((await settles(unlock, 'the unlock')).result, 0, 'the unlock was sent again and ran');
  t.strictSame(
    (await c.locks(path)).map((l) => `${String(l.owner)} ${l.start}-${l.end}`),
    ['2 100-109'],
    "owner 1's lock is gone, owner 2's is held",
  );
});
