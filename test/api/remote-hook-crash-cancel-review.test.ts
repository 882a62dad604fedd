/**
 * Issue 13: a waiter whose grant by another node's step its node's hook judges is cancelled as its
 * worker dies (remote-hook-crash-abort-review has the scene's first three orders). Two more, each
 * certain to take one of the fix's two paths, for both families, the owner holding a lock beside
 * the bytes it asked (the grant merges with it, POSIX):
 * - 'answered, then crash': the live worker answers the cancel at once (its hook still judging,
 *   the grant's release not written yet) and dies: its caller kept the request (the host's
 *   'owed'), and the replacement releases the grant;
 * - 'abort as the death is reported': the cancel goes to the dead worker only; the caller answers
 *   the request itself on recovery and sends it, cancelled, to the replacement, which releases it.
 * And the replacement of the first dying too ('answered, then crash twice', POSIX): the request,
 * kept until the release is written, is sent again to the next one. Either way: the cancel's code once, the hook not asked again, the owner's earlier lock kept, the
 * rest of the grant freed for a's waiting lock.
 */
import t, { type Test } from 'tap';
import { F_UNLCK, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { drop, firstHangs, hookNodes, take, waiting } from './remote-hook-nodes.js';

/** Calls `then` synchronously as the coordinator reports a worker's end (onWorkerEnd, before recover), once. */
function onDeathReported(t: Test, then: () => void): void {
  const original = process.emitWarning;
  const restore = (): void => {
    process.emitWarning = original;
  };
  t.teardown(restore);
  process.emitWarning = function (this: unknown, ...args: unknown[]) {
    if (String(args[0]).includes('rebuilding its files on a new worker')) {
      restore();
      then();
    }
    return (original as (...a: unknown[]) => void).apply(process, args);
  } as typeof process.emitWarning;
}

for (const f of ['posix', 'windows'] as const) {
  for (const order of ['answered, then crash', 'abort as the death is reported', 'answered, then crash twice'] as const) {
    if (order === 'answered, then crash twice' && f === 'windows') continue;
    t.test(`${f}: b's waiter, granted by a's release while b's hook judges it, is aborted as b's worker dies (${order}): cancelled once, the grant released, the owner's earlier lock kept`, { skip: noRedis }, async (t) => {
      const cancelled = f === 'posix' ? -4 : 995;
      const { judge, arm, firstAsked, verdict, asked } = firstHangs(3, 0);
      const { a, b } = await hookNodes(t, 'rhccancel', {
        onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge(e.lockOwner)),
        onLockFile: (e: LockFileEvent) => judge(e.handle),
        onUnlockFile: () => {},
      });
      const path = '/crash-cancel';
      t.equal(await take(b, f, path, 1, 0, false), 0, 'b locks (after the grace period)');
      t.equal(await drop(b, f, path, 1, 0), 0, 'and unlocks');
      t.equal(await take(b, f, path, 3, 10, false), 0, 'b owner 3 locks [10,20)');
      t.equal(await take(a, f, path, 2, 0, false), 0, 'a locks [0,10)');
      const ac = new AbortController();
      const bWaits = take(b, f, path, 3, 0, true, { signal: ac.signal });
      await waiting(b, path, 1);
      arm();
      t.equal(await drop(a, f, path, 2, 0), 0, 'a unlocks: b owner 3 is granted [0,10) in its step');
      await settles(firstAsked, "b's hook asked for the grant by a's release");
      let crashed: Promise<void>;
      if (order !== 'abort as the death is reported') {
        ac.abort();
        t.equal(await settles(bWaits, "b's waiter"), cancelled, "b's caller is told the cancel's code at once (the hook still judges)");
        crashed = b.crashWorker(0);
        // The replacement dies too, before or after it released the grant: sent again if not.
        if (order === 'answered, then crash twice') crashed = crashed.then(() => b.crashWorker(0));
      } else {
        onDeathReported(t, () => ac.abort());
        crashed = b.crashWorker(0);
        t.equal(await settles(bWaits, "b's waiter"), cancelled, "b's caller is told the cancel's code");
      }
      await settles(crashed, "b's worker replaced");
      verdict.resolve(0);
      // The grant's release is a step of the replacement's own: a's waiting lock is granted once
      // it is written (60 s: far above one engine step; a grant kept never frees the bytes).
      t.equal(await settles(take(a, f, path, 4, 0, true, { timeoutMs: 60_000 }), "a's waiting lock on [0,10)"), 0, 'a gets the bytes: the grant to b owner 3 was released');
      t.equal(asked(), 1, "b's hook is not asked again for a request its caller was told ended");
      const held = (await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${e.start}-${e.end}`).sort();
      t.same(held, ['a 0-9', 'b 10-19'], "b owner 3 keeps its earlier lock [10,20), a owner 4 holds [0,10), nothing else");
    });
  }
}
