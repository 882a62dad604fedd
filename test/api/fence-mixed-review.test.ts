/**
 * Review of the per-file fence (Step.fence): a namespace of mixed nodes, `a` with no hooks and `b`
 * with an approval and a release hook. API.md "Fencing": b's hook events carry a fence that grows
 * with every grant on the file. a's release grants b's waiter (a decides it): b's events must still
 * carry a fence, the same in the approval and the release event, above b's earlier ones, and a
 * lock split by an unlock keeps its fence in the release events of its pieces.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { hookNodes, waiting } from './remote-hook-nodes.js';

t.test('mixed nodes: the hooked node’s events carry growing fences, also for a waiter granted by the unhooked node’s release', {
  skip: noRedis,
}, async (t) => {
  const seen: LockEvent[] = [];
  let heard: () => void = () => {};
  const push = (e: LockEvent) => {
    seen.push(e);
    heard();
  };
  const next = async (from: number, pred: (e: LockEvent) => boolean): Promise<LockEvent> => {
    for (;;) {
      const e = seen.slice(from).find(pred);
      if (e !== undefined) return e;
      await new Promise<void>((r) => (heard = r));
    }
  };
  const { a, b } = await hookNodes(t, 'fmix', {
    onLock: (e) => {
      push(e);
      return 0;
    },
  });
  const set = (c: LockCoordinator, path: string, owner: number, lockType: number, cmd = F_SETLK, start = 0, len = 10) => c.lock({ path, lockType, lockStart: start, lockLen: len, cmd, lockOwner: owner });
  const isGrant = (e: LockEvent) => e.lockType === F_WRLCK;
  const isUnlock = (e: LockEvent) => e.lockType === F_UNLCK;

  t.equal((await set(b, '/g', 1, F_WRLCK)).result, 0, 'b writes /g (after the grace period)');
  const first = seen.filter(isGrant).at(-1)!.fence!;
  t.ok(Number.isSafeInteger(first) && first > 0, `b's grant carries a fence (${first})`);
  t.equal((await set(b, '/g', 1, F_UNLCK)).result, 0, 'b unlocks /g');

  t.equal((await set(a, '/g', 2, F_WRLCK)).result, 0, 'a (no hooks) writes /g');
  let from = seen.length;
  const waiter = set(b, '/g', 3, F_WRLCK, F_SETLKW);
  await waiting(b, '/g', 1);
  t.equal((await set(a, '/g', 2, F_UNLCK)).result, 0, 'a unlocks /g');
  t.equal((await waiter).result, 0, "b's waiter is granted");
  // The grant is a's decision (a has no hooks, gives no fence); b asks its hook then (before its
  // caller is told) and numbers the lock's fence in a step of its own. Its waiter's first try,
  // decided on a cache that did not know a's lock yet, also asked (refused stale): the last
  // approval is the one that stands.
  await next(from, isGrant);
  const grant = seen.slice(from).filter(isGrant).at(-1)!;
  t.ok(Number.isSafeInteger(grant.fence) && grant.fence! > first, `its approval carries a fence above b's earlier one (${grant.fence} > ${first})`);
  from = seen.length;
  t.equal((await set(b, '/g', 3, F_UNLCK)).result, 0, 'b unlocks /g');
  const rel = await next(from, isUnlock);
  t.ok(Number.isSafeInteger(rel.fence) && rel.fence! > first, `its release event carries the fence of the grant, above b's earlier one (${rel.fence} > ${first})`);
  t.equal(rel.fence, grant.fence, 'the fence its approval was shown');
});

t.test('one hooked node: an unlock that splits a lock, and the unlock of the pieces, tell the grant\'s fence', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const seen: LockEvent[] = [];
  const b = await LockCoordinator.start({
    workers: 1,
    store: { url: server.url, namespace: `fsplit-${randomUUID().slice(0, 8)}`, node: 'b', sessionTtlMs: 1000 },
    onLock: (e) => {
      seen.push(e);
      return 0;
    },
  });
  t.teardown(() => b.stop());
  const set = (owner: number, lockType: number, start = 0, len = 10) => b.lock({ path: '/s', lockType, lockStart: start, lockLen: len, cmd: F_SETLK, lockOwner: owner });
  t.equal((await set(1, F_WRLCK)).result, 0, 'b writes [0,10)');
  const f = seen.at(-1)!.fence!;
  t.equal((await set(1, F_WRLCK, 10, 10)).result, 0, 'and [10,20) (merged)');
  const g = seen.at(-1)!.fence!;
  t.ok(g > f, 'a larger fence');
  t.equal((await set(1, F_UNLCK, 3, 2)).result, 0, 'unlocks [3,5)');
  t.equal((await set(1, F_UNLCK, 0, 20)).result, 0, 'unlocks the rest');
  // Release events come through the hooks' channel: both within the budget of the next request.
  t.equal((await set(2, F_WRLCK, 100, 1)).result, 0, 'another grant (the hooks ran in order)');
  const unlocks = seen.filter((e) => e.lockType === F_UNLCK).map((e) => e.fence);
  t.equal(unlocks.length, 2, 'two release events');
  t.ok(unlocks[0] === f || unlocks[0] === g, `the split's tells a grant's fence of those bytes (${unlocks[0]}: ${f} or ${g})`);
  t.equal(unlocks[1], g, 'the rest tells the highest of the pieces');
});
