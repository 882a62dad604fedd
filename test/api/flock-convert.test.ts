/**
 * flock(2) conversion is decided as Linux decides it, in one step under the file's lock
 * [fs/locks.c flock_lock_inode]: the owner's old lock is removed, the new one is decided against
 * what is granted (granted, refused, or queued), and only then do the waiters the removal woke try
 * again. Found by a user review, checked on a local file of this machine's kernel: a downgrade
 * LOCK_EX -> LOCK_SH|LOCK_NB with a LOCK_EX waiter is granted (locksmith granted the waiter first
 * and refused the downgrade, leaving its owner nothing), and of two LOCK_SH holders converting to
 * LOCK_EX the second one is granted at once while the first waits (locksmith granted the first).
 * On one coordinator and across two nodes of one Redis lock space (the waiter on the other node).
 */
import t from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator, type LockReply } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles, stillPending } from './helpers.js';
import { SETTINGS, flock, waiting } from './flock-nodes.js';

const shape = async (c: LockCoordinator): Promise<string[]> => (await c.locks('/f')).map((l) => `${String(l.owner)} ${l.type} ${l.state}`).sort();

for (const [where, make] of SETTINGS) {
  t.test(`${where}: a LOCK_EX -> LOCK_SH|LOCK_NB downgrade with a LOCK_EX waiter is granted, and the waiter keeps waiting`, { skip: where === 'two nodes' && noRedis }, async (t) => {
    const { first, second, stop } = await make();
    t.teardown(stop);
    t.equal((await flock(first, 1, F_WRLCK, F_SETLK)).result, 0, 'p1 LOCK_EX');
    const p2 = flock(second, 2, F_WRLCK, F_SETLKW);
    await waiting(second, 1);
    t.equal((await flock(first, 1, F_RDLCK, F_SETLK)).result, 0, "p1's downgrade is granted (Linux: the old lock goes and the new one is decided in one step)");
    t.ok(await stillPending(p2), "p2's LOCK_EX still waits, now for p1's LOCK_SH");
    t.same(await shape(first), ['1 read granted', '2 write waiting'], 'p1 holds LOCK_SH, p2 waits');
    t.equal((await flock(first, 1, F_UNLCK, F_SETLK)).result, 0, 'p1 unlocks');
    t.equal((await settles(p2, "p2's LOCK_EX")).result, 0, 'p2 is granted once p1 unlocked');
  });

  t.test(`${where}: of two LOCK_SH holders converting to LOCK_EX, the second is granted at once and the first waits for it`, { skip: where === 'two nodes' && noRedis }, async (t) => {
    const { first, second, stop } = await make();
    t.teardown(stop);
    t.equal((await flock(first, 1, F_RDLCK, F_SETLK)).result, 0, 'p1 LOCK_SH');
    t.equal((await flock(second, 2, F_RDLCK, F_SETLK)).result, 0, 'p2 LOCK_SH');
    let p1Done: LockReply | undefined;
    const p1 = flock(first, 1, F_WRLCK, F_SETLKW).then((r) => (p1Done = r));
    await waiting(first, 1);
    t.same(await shape(first), ['1 write waiting', '2 read granted'], "p1's LOCK_SH is gone and its LOCK_EX waits for p2's");
    const p2 = await settles(flock(second, 2, F_WRLCK, F_SETLKW), "p2's LOCK_EX");
    t.equal(p2.result, 0, "p2's LOCK_EX is granted at once");
    t.ok(await stillPending(p1), "p1's LOCK_EX still waits, now for p2's LOCK_EX");
    t.equal(p1Done, undefined);
    t.equal((await flock(second, 2, F_UNLCK, F_SETLK)).result, 0, 'p2 unlocks');
    t.equal((await settles(p1, "p1's LOCK_EX")).result, 0, 'p1 is granted once p2 unlocked');
  });

  t.test(`${where}: a conversion that must wait does not pass a waiter blocked on another holder's lock (Linux: p3 blocked on p1's, first in its list)`, { skip: where === 'two nodes' && noRedis }, async (t) => {
    const { first, second, stop } = await make();
    t.teardown(stop);
    t.equal((await flock(first, 1, F_RDLCK, F_SETLK)).result, 0, 'p1 LOCK_SH');
    t.equal((await flock(second, 2, F_RDLCK, F_SETLK)).result, 0, 'p2 LOCK_SH');
    const p3 = flock(second, 3, F_WRLCK, F_SETLKW);
    await waiting(second, 1);
    const p2 = flock(second, 2, F_WRLCK, F_SETLKW);
    await waiting(second, 2);
    t.equal((await flock(first, 1, F_UNLCK, F_SETLK)).result, 0, 'p1 unlocks');
    t.equal((await settles(p3, "p3's LOCK_EX")).result, 0, 'p3, queued first, is granted');
    t.ok(await stillPending(p2), 'p2 waits for p3');
    t.equal((await flock(second, 3, F_UNLCK, F_SETLK)).result, 0, 'p3 unlocks');
    t.equal((await settles(p2, "p2's LOCK_EX")).result, 0, 'then p2');
  });
}
