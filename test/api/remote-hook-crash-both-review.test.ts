/**
 * Review of issue 13 (a waiter's worker dies while its node's hook judges another node's grant):
 * a and b both with approval hooks. b's worker dies while b's hook judges owner 3's grant by a's
 * release; the veto run again on the replacement frees the bytes, which grants a's waiter in b's
 * step: a's own hook judges that grant (another node's step), once, and a's waiter gets its
 * verdict; its veto frees the bytes for the next waiter.
 */
import t from 'tap';
import { F_UNLCK, F_WRLCK, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

for (const aVeto of [false, true]) {
  t.test(`posix: b's veto run again after its worker died grants a's waiter, which a's hook ${aVeto ? 'vetoes: the next waiter is granted' : 'approves'}`, { skip: noRedis }, async (t) => {
    let armed = false;
    const first = later();
    const verdict = later<number>();
    let bAsked = 0;
    const aSeen: { owner: number; fence: number | undefined }[] = [];
    const { a, b } = await hookNodes(
      t,
      'rhcboth',
      {
        onLock: (e: LockEvent) => {
          if (e.lockType === F_UNLCK || !armed || e.lockOwner !== 3) return 0;
          if (++bAsked > 1) return -13;
          first.resolve();
          return verdict.promise;
        },
      },
      {
        a: {
          onLock: (e: LockEvent) => {
            if (e.lockType === F_UNLCK || !armed) return 0;
            aSeen.push({ owner: e.lockOwner as number, fence: e.fence });
            return aVeto && e.lockOwner === 5 ? -13 : 0;
          },
        },
      },
    );
    const path = '/crash-both';
    t.equal(await lock(b, path, 1, F_WRLCK, 100, 10), 0, 'b locks elsewhere (after the grace period)');
    t.equal(await lock(a, path, 2, F_WRLCK, 0, 10), 0, 'a owner 2 writes [0,10)');
    const w3 = lock(b, path, 3, F_WRLCK, 0, 10, true);
    await waiting(b, path, 1);
    const w5 = lock(a, path, 5, F_WRLCK, 0, 10, true);
    await waiting([a, b], path, 2);
    const w6 = lock(a, path, 6, F_WRLCK, 0, 10, true);
    await waiting([a, b], path, 3);
    armed = true;
    t.equal(await lock(a, path, 2, F_UNLCK, 0, 10), 0, 'a unlocks: b owner 3 is granted in its step');
    await settles(first.promise, "b's hook asked for owner 3's grant");
    await settles(b.crashWorker(0), "b's worker replaced");
    verdict.resolve(0);
    t.equal(await settles(w3, "b owner 3's waiter"), -13, "b owner 3 gets the veto run again");
    t.equal(await settles(w5, "a owner 5's waiter"), aVeto ? -13 : 0, "a owner 5 gets a's hook's verdict on the grant by b's step");
    t.same(aSeen.filter((x) => x.owner === 5).length, 1, "a's hook was asked once for owner 5");
    if (aVeto) {
      t.equal(await settles(w6, "a owner 6's waiter"), 0, 'a owner 6 is granted after the veto');
    } else {
      t.equal(await lock(a, path, 5, F_UNLCK, 0, 10), 0, 'a owner 5 unlocks');
      t.equal(await settles(w6, "a owner 6's waiter"), 0, 'a owner 6 is granted then');
    }
    const held = (await a.locks(path)).map((e) => `${e.state} ${e.node} ${String(e.owner)} ${e.start}-${e.end}`).sort();
    t.same(held, ['granted a 6 0-9', 'granted b 1 100-109'], 'a owner 6 holds the bytes');
  });
}
