/**
 * Review of issue 13 (a waiter's worker dies while its node's hook judges another node's grant):
 * the request's signal aborts as the worker dies. API.md: a request that ends while its hook
 * judges such a grant ends at once and the grant is released; whatever ends it, nothing may stay
 * granted to b's owner that its caller was told it did not get.
 */
import t from 'tap';
import { F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { firstHangs, hookNodes, lock, waiting } from './remote-hook-nodes.js';

/** a owner 4 waits for [0,10) (F_SETLKW), for 60 s at most. */
const lock4 = (a: LockCoordinator, path: string): Promise<number> =>
  a.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLKW, lockOwner: 4, timeoutMs: 60_000 }).then((r) => r.result);

for (const order of ['crash, then abort', 'abort, then crash', 'abort as the replacement takes the request'] as const) {
  t.test(`posix: b's waiter, granted by a's release while b's hook judges it, is aborted as b's worker dies (${order}): its caller gets EINTR and the bytes are free`, {
    skip: noRedis,
  }, async (t) => {
    const { judge, arm, firstAsked, verdict } = firstHangs(3, 0);
    const { a, b } = await hookNodes(t, 'rhcabort', { onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge(e.lockOwner)) });
    const path = '/crash-abort';
    t.equal(await lock(b, path, 1, F_WRLCK, 0, 10), 0, 'b locks (after the grace period)');
    t.equal(await lock(b, path, 1, F_UNLCK, 0, 10), 0, 'and unlocks');
    t.equal(await lock(a, path, 2, F_WRLCK, 0, 10), 0, 'a locks');
    const ac = new AbortController();
    const bWaits = lock(b, path, 3, F_WRLCK, 0, 10, true, ac.signal);
    await waiting(b, path, 1);
    arm();
    t.equal(await lock(a, path, 2, F_UNLCK, 0, 10), 0, 'a unlocks: b owner 3 is granted in its step');
    await settles(firstAsked, "b's hook asked for the grant by a's release");
    let crashed: Promise<void>;
    if (order === 'crash, then abort') {
      crashed = b.crashWorker(0);
      ac.abort();
    } else if (order === 'abort, then crash') {
      ac.abort();
      crashed = b.crashWorker(0);
    } else {
      // The warning is emitted as the dead worker's requests are resent to the replacement
      // (onWorkerEnd, recover): the cancel follows them, before the request's turn there.
      process.once('warning', (w) => {
        if (w.name === 'LocksmithWorkerWarning') ac.abort();
      });
      crashed = b.crashWorker(0);
    }
    t.equal(await settles(bWaits, "b's waiter"), -4, "b's caller is told EINTR (aborted)");
    verdict.resolve(0);
    await settles(crashed, "b's worker replaced");
    // The grant is released after the cancel's answer (a step of its own): a's waiting lock is
    // granted once it is. Its budget, 60 s, is far above that one engine step on a loaded machine
    // (a leaked grant never frees the bytes: it fails then, with the timeout's EAGAIN).
    t.equal(await settles(lock4(a, path), "a's waiting lock on the bytes"), 0, 'a gets the bytes: nothing stays granted to b owner 3');
    const held = (await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)} ${e.start}-${e.end}`);
    t.same(held, ['a 4 0-9'], 'only a owner 4 holds a lock on the file');
  });
}
