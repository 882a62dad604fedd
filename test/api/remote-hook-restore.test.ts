/**
 * Issue 13: a veto of a grant by another node's step that merged with its owner's locks puts back
 * exactly what the owner held (bytes, mode and the fence its release event tells), frees the
 * granted bytes beyond, wakes whoever they held up in queue order, and changes no other owner's
 * lock.
 */
import t from 'tap';
import { F_RDLCK, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, lock, waiting } from './remote-hook-nodes.js';

t.test("posix: a vetoed extension granted by another node's release: the owner's earlier lock is back with its fence, the next waiters are granted in order, other locks stay", { skip: noRedis }, async (t) => {
  const seen: LockEvent[] = [];
  let vetoing = false;
  let asked = 0;
  const { a, b } = await hookNodes(t, 'rhrestore', {
    onLock: (e: LockEvent) => {
      seen.push(e);
      if (e.lockType === F_UNLCK || !vetoing || e.lockOwner !== 3) return 0;
      asked++;
      return -13;
    },
  });
  const path = '/r';
  const lk = (c: LockCoordinator, owner: number, type: number, start: number, len: number, wait = false) => lock(c, path, owner, type, start, len, wait);
  const held = async (c: LockCoordinator) =>
    (await c.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)} ${e.type} ${e.start}-${e.end}`).sort();

  t.equal(await lk(b, 3, F_WRLCK, 0, 10), 0, 'b owner 3 writes [0,10) (after the grace period)');
  const fence = seen.find((e) => e.lockOwner === 3 && e.lockType === F_WRLCK)?.fence ?? 0;
  t.ok(fence > 0, `with a fence (${fence})`);
  t.equal(await lk(b, 7, F_RDLCK, 40, 10), 0, 'b owner 7 reads [40,50)');
  t.equal(await lk(a, 6, F_RDLCK, 30, 10), 0, 'a owner 6 reads [30,40)');
  t.equal(await lk(a, 2, F_WRLCK, 10, 10), 0, 'a owner 2 writes [10,20)');
  const ext = lk(b, 3, F_WRLCK, 10, 10, true);
  await waiting(b, path, 1);
  const next = lk(a, 4, F_WRLCK, 10, 5, true);
  await waiting(a, path, 2);
  const behind = lk(a, 5, F_WRLCK, 12, 10, true);
  await waiting(a, path, 3);
  const after = lk(a, 8, F_WRLCK, 15, 5, true);
  await waiting(a, path, 4);
  const before = await held(a);
  vetoing = true;
  t.equal(await lk(a, 2, F_UNLCK, 10, 10), 0, 'a unlocks [10,20): b owner 3 is granted first (adjacent: merged with [0,10))');
  t.equal(await settles(ext, "b's extension"), -13, "b's extension gets its hook's code");
  t.equal(asked, 1, "b's hook was asked once");
  t.equal(await settles(next, "a owner 4's waiter"), 0, 'the freed bytes go to the next waiter (a owner 4 [10,15))');
  t.equal(await settles(after, "a owner 8's waiter"), 0, 'and to a owner 8 ([15,20), behind owner 5 which still conflicts with 4)');
  t.same(
    await held(a),
    [...before.filter((l) => !l.startsWith('a 2 ')), 'a 4 write 10-14', 'a 8 write 15-19'].sort(),
    "b owner 3 holds [0,10) as before; b owner 7's and a owner 6's locks are unchanged",
  );
  const from = seen.length;
  t.equal(await lk(b, 3, F_UNLCK, 0, 10), 0, 'b owner 3 unlocks [0,10)');
  t.equal(await lk(b, 9, F_WRLCK, 60, 1), 0, 'another lock (after the release event)');
  const rel = seen.slice(from).find((e) => e.lockOwner === 3 && e.lockType === F_UNLCK);
  t.equal(rel?.fence, fence, "its release event tells the fence of the lock it held before asking");
  t.equal(await lk(a, 4, F_UNLCK, 10, 5), 0, 'a owner 4 unlocks');
  t.equal(await lk(a, 8, F_UNLCK, 15, 5), 0, 'a owner 8 unlocks');
  t.equal(await settles(behind, "a owner 5's waiter"), 0, 'a owner 5 is granted once owners 4 and 8 are gone');
});
