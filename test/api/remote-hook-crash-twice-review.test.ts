/**
 * Review of issue 13 (a waiter's worker dies while its node's hook judges another node's grant):
 * the replacement dies too while its hook judges the grant again. The second replacement must
 * judge it once more from what the owner held before the grant (kept by the caller's thread),
 * the earlier verdicts dropped; two of b's waiters granted in one step of a's, the worker dying
 * while the first is judged, are both judged again in order.
 */
import t from 'tap';
import { F_RDLCK, F_UNLCK, F_WRLCK, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

const held = async (c: import('../../src/index.js').LockCoordinator, path: string) =>
  (await c.locks(path)).map((e) => `${e.state} ${e.node} ${String(e.owner)} ${e.type} ${e.start}-${e.end}`).sort();

for (const veto of [true, false]) {
  t.test(`posix: b's worker dies while its hook judges a grant by a's release, and its replacement dies while judging it again: the third run's ${veto ? 'veto puts back the read lock' : 'approval holds the write lock'}`, { skip: noRedis }, async (t) => {
    let armed = false;
    const asks = [later(), later()];
    const verdicts = [later<number>(), later<number>()];
    let asked = 0;
    const { a, b } = await hookNodes(t, 'rhctwice', {
      onLock: (e: LockEvent) => {
        if (e.lockType === F_UNLCK || !armed || e.lockOwner !== 3) return 0;
        const n = asked++;
        if (n < 2) {
          asks[n]!.resolve();
          return verdicts[n]!.promise;
        }
        return veto ? -13 : 0;
      },
    });
    const path = '/crash-twice';
    t.equal(await lock(b, path, 1, F_WRLCK, 100, 10), 0, 'b locks elsewhere (after the grace period)');
    t.equal(await lock(b, path, 3, F_RDLCK, 0, 10), 0, 'b owner 3 reads [0,10)');
    t.equal(await lock(a, path, 2, F_RDLCK, 5, 10), 0, 'a owner 2 reads [5,15)');
    const bWaits = lock(b, path, 3, F_WRLCK, 0, 20, true);
    await waiting(b, path, 1);
    armed = true;
    t.equal(await lock(a, path, 2, F_UNLCK, 5, 10), 0, "a unlocks: b owner 3's write [0,20) is granted in its step");
    await settles(asks[0]!.promise, "b's hook asked (first worker)");
    await settles(b.crashWorker(0), "b's worker replaced");
    await settles(asks[1]!.promise, "b's hook asked again (the replacement)");
    await settles(b.crashWorker(0), "b's replacement replaced");
    verdicts[0]!.resolve(veto ? 0 : -13);
    verdicts[1]!.resolve(veto ? 0 : -13);
    t.equal(await settles(bWaits, "b's waiter"), veto ? -13 : 0, "b's caller gets the verdict of the third run");
    t.equal(asked, 3, 'the hook was asked three times');
    t.same(await held(a, path), veto ? ['granted b 1 write 100-109', 'granted b 3 read 0-9'] : ['granted b 1 write 100-109', 'granted b 3 write 0-19'], 'b owner 3 holds what the verdict says');
  });
}

t.test("posix: two of b's waiters granted in one step of a's; b's worker dies while its hook judges the first: both are judged again, in order", { skip: noRedis }, async (t) => {
  let armed = false;
  const first = later();
  const verdict = later<number>();
  const seen: number[] = [];
  const { a, b } = await hookNodes(t, 'rhctwo', {
    onLock: (e: LockEvent) => {
      const o = e.lockOwner as number;
      if (e.lockType === F_UNLCK || !armed || (o !== 3 && o !== 4)) return 0;
      seen.push(o);
      if (seen.length === 1) {
        first.resolve();
        return verdict.promise;
      }
      // Run again: owner 3 vetoed, owner 4 approved.
      return o === 3 ? -13 : 0;
    },
  });
  const path = '/crash-two';
  t.equal(await lock(b, path, 1, F_WRLCK, 100, 10), 0, 'b locks elsewhere (after the grace period)');
  t.equal(await lock(a, path, 2, F_WRLCK, 0, 20), 0, 'a owner 2 writes [0,20)');
  const w3 = lock(b, path, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 1);
  const w4 = lock(b, path, 4, F_WRLCK, 10, 10, true);
  await waiting(b, path, 2);
  const w5 = lock(a, path, 5, F_WRLCK, 0, 5, true);
  await waiting([a, b], path, 3);
  armed = true;
  t.equal(await lock(a, path, 2, F_UNLCK, 0, 20), 0, 'a unlocks: b owners 3 and 4 are granted in its step');
  await settles(first.promise, "b's hook asked for owner 3's grant");
  await settles(b.crashWorker(0), "b's worker replaced");
  verdict.resolve(0);
  t.equal(await settles(w3, "b owner 3's waiter"), -13, 'owner 3 gets the veto run again');
  t.equal(await settles(w4, "b owner 4's waiter"), 0, 'owner 4 gets the approval run again');
  t.same(seen, [3, 3, 4], 'asked for owner 3, again for 3 on the replacement, then for 4');
  t.equal(await settles(w5, "a owner 5's waiter"), 0, "a's waiter on owner 3's bytes is granted after the veto");
  t.same(await held(a, path), ['granted a 5 write 0-4', 'granted b 1 write 100-109', 'granted b 4 write 10-19'], 'owner 4 holds [10,20), a owner 5 [0,5)');
});
