/**
 * Review of issue 13: the owner acts on the file (another thread of the same process) while a
 * grant of its waiter by another node's step waits for its judgment. Here the owner's unlock,
 * queued in b's mailbox before the inbox event of the grant (b's mailbox is held by another
 * owner's slow hook meanwhile), finds the grant in the cache (a stale reply brought it) and
 * removes it; the waiter's judgment then finds no grant and answers 0 without asking the hook.
 * API.md: the approval hook fires before a grant, and its veto is the caller's result.
 */
import t from 'tap';
import { F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

t.test("posix: an unlock by the waiter's owner queued before the grant's event: the grant is not told without its hook", { skip: noRedis }, async (t) => {
  let armed = false;
  const asked: number[] = [];
  const { promise: nine, resolve: nineAsked } = later();
  const { promise: verdict9, resolve: release9 } = later<number>();
  const { a, b } = await hookNodes(t, 'rhowner', {
    onLock: (e: LockEvent) => {
      if (e.lockType === F_UNLCK || !armed) return 0;
      asked.push(Number(e.lockOwner));
      if (e.lockOwner === 9 && asked.filter((x) => x === 9).length === 1) {
        nineAsked();
        return verdict9;
      }
      return e.lockOwner === 3 ? -13 : 0;
    },
  });
  const path = '/own';
  const lk = (c: LockCoordinator, owner: number, type: number, start: number, len: number, wait = false) => lock(c, path, owner, type, start, len, wait);
  t.equal(await lk(b, 1, F_WRLCK, 100, 1), 0, 'b locks (after the grace period)');
  t.equal(await lk(a, 2, F_WRLCK, 0, 10), 0, 'a owner 2 writes [0,10)');
  const w = lk(b, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 1);
  armed = true;
  const n9 = lk(b, 9, F_WRLCK, 50, 10);
  await settles(nine, "b's hook asked for owner 9 (held: b's mailbox for the file is busy)");
  const un = lk(b, 3, F_UNLCK, 0, 10);
  t.equal(await lk(a, 2, F_UNLCK, 0, 10), 0, "a unlocks: b owner 3's waiter is granted in a's step");
  release9(0);
  t.equal(await settles(n9, "owner 9's lock"), 0, 'owner 9 is granted');
  t.equal(await settles(un, "owner 3's unlock"), 0, "owner 3's unlock (another thread) is answered");
  const r = await settles(w, "owner 3's waiter");
  t.ok(r !== 0 || asked.includes(3), `told 0 only once its hook approved (result ${r}, hook asked for owner 3: ${asked.includes(3)})`);
  t.equal(r, -13, 'as a node alone: the grant after the unlock is asked of the hook, which vetoes');
});
