/**
 * Review of issue 13: two waiters of one b owner granted in one step of a's (read [0,15), then
 * write [5,20)); b's hook approves the read (with fence F) and vetoes the write. As a node alone,
 * the owner then holds read [0,15) with fence F, and its release event tells F (API.md: a release
 * event carries the fence of the lock it released).
 */
import t from 'tap';
import { F_RDLCK, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, lock, waiting } from './remote-hook-nodes.js';

t.test("posix: the approved read of two waiters granted in one step keeps its fence when the write after it is vetoed", { skip: noRedis }, async (t) => {
  const seen: LockEvent[] = [];
  let armed = false;
  const { a, b } = await hookNodes(t, 'rhfence', {
    onLock: (e: LockEvent) => {
      seen.push(e);
      return armed && e.lockOwner === 3 && e.lockType === F_WRLCK ? -13 : 0;
    },
  });
  const path = '/fr';
  const lk = (c: LockCoordinator, owner: number, type: number, start: number, len: number, wait = false) => lock(c, path, owner, type, start, len, wait);
  t.equal(await lk(b, 1, F_WRLCK, 100, 1), 0, 'b locks (after the grace period)');
  t.equal(await lk(a, 2, F_WRLCK, 0, 20), 0, 'a owner 2 writes [0,20)');
  const rd = lk(b, 3, F_RDLCK, 0, 15, true);
  await waiting(b, path, 1);
  const wr = lk(b, 3, F_WRLCK, 5, 15, true);
  await waiting(b, path, 2);
  armed = true;
  const from = seen.length;
  t.equal(await lk(a, 2, F_UNLCK, 0, 20), 0, 'a unlocks: both waiters granted in its step');
  t.equal(await settles(rd, 'the read'), 0, 'the read is approved');
  t.equal(await settles(wr, 'the write'), -13, 'the write is vetoed');
  const fence = seen.slice(from).find((e) => e.lockOwner === 3 && e.lockType === F_RDLCK)?.fence ?? 0;
  t.ok(fence > 0, `the read's approval had a fence (${fence})`);
  const at = seen.length;
  t.equal(await lk(b, 3, F_UNLCK, 0, 20), 0, 'owner 3 unlocks');
  t.equal(await lk(b, 9, F_WRLCK, 60, 1), 0, 'another lock (after the release event)');
  const rel = seen.slice(at).find((e) => e.lockOwner === 3 && e.lockType === F_UNLCK);
  t.equal(rel?.fence, fence, "the release event tells the read's fence");
});
