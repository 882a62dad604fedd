/**
 * Review of issue 13: b's worker dies (crashWorker) while b's approval hook judges a grant of b's
 * waiter by a's release. API.md: "If a worker dies while a hook decides a lock, the request is
 * sent again to the replacement and its hook runs again (the first verdict is dropped)". A veto
 * by the hook run again must be the caller's result, and nothing may stay granted to b.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { firstHangs, hookNodes, waiting } from './remote-hook-nodes.js';

for (const f of ['posix', 'windows'] as const) {
  t.test(`${f}: b's worker dies while b's hook judges a grant by a's release: the hook runs again and its veto stands`, {
    skip: noRedis,
  }, async (t) => {
    const code = f === 'posix' ? -13 : 5;
    // Owner 3's approvals once armed: the first hangs until answered (the worker dies meanwhile), later ones veto at once.
    const { judge, arm, firstAsked, verdict, asked } = firstHangs(3, code);
    const { a, b } = await hookNodes(t, 'rhcrash', {
      onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge(e.lockOwner)),
      onLockFile: (e: LockFileEvent) => judge(e.handle),
      onUnlockFile: () => {},
    });
    const path = '/crash';
    const take = (c: LockCoordinator, owner: number, wait: boolean): Promise<number> =>
      f === 'posix'
        ? c.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner }).then((r) => r.result)
        : c.lockFile({ fileName: path, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: !wait, handle: owner });
    const drop = (c: LockCoordinator, owner: number): Promise<number> =>
      f === 'posix'
        ? c.lock({ path, lockType: F_UNLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: owner }).then((r) => r.result)
        : c.unlockFile({ fileName: path, byteOffset: 0, length: 10, handle: owner });
    t.equal(await take(b, 1, false), 0, 'b locks (after the grace period)');
    t.equal(await drop(b, 1), 0, 'and unlocks');
    t.equal(await take(a, 2, false), 0, 'a locks');
    const bWaits = take(b, 3, true);
    await waiting(b, path, 1);
    arm();
    t.equal(await drop(a, 2), 0, 'a unlocks: b owner 3 is granted in its step');
    await settles(firstAsked, "b's hook asked for the grant by a's release");
    await settles(b.crashWorker(0), "b's worker replaced");
    verdict.resolve(0);
    const r = await settles(bWaits, "b's waiter");
    t.ok(asked() >= 2, `b's hook ran again for the request sent to the replacement (asked ${asked()} times)`);
    t.equal(r, code, "b's caller gets the veto of the hook run again");
    t.equal(await take(a, 4, false), 0, 'a can lock the bytes: nothing stays granted to b');
  });
}
