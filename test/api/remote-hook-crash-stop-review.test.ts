/**
 * Review of issue 13 (a waiter's worker dies while its node's hook judges another node's grant):
 * b stops while the replacement's hook judges the grant again. stop() ends the waiter (EINTR) and
 * resolves although the hook never answers; b's session ends with its locks: a gets the bytes.
 */
import t from 'tap';
import { F_UNLCK, F_WRLCK, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

t.test("posix: b stops while its replacement worker's hook judges again a grant by a's release: the waiter ends with EINTR, a gets the bytes", { skip: noRedis }, async (t) => {
  let armed = false;
  const asks = [later(), later()];
  let asked = 0;
  const { a, b, stopB } = await hookNodes(t, 'rhcstop', {
    onLock: (e: LockEvent) => {
      if (e.lockType === F_UNLCK || !armed || e.lockOwner !== 3) return 0;
      asks[Math.min(asked++, 1)]!.resolve();
      // Never answers.
      return new Promise<number>(() => {});
    },
  });
  const path = '/crash-stop';
  t.equal(await lock(b, path, 1, F_WRLCK, 100, 10), 0, 'b locks elsewhere (after the grace period)');
  t.equal(await lock(a, path, 2, F_WRLCK, 0, 10), 0, 'a owner 2 writes [0,10)');
  const w3 = lock(b, path, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 1);
  armed = true;
  t.equal(await lock(a, path, 2, F_UNLCK, 0, 10), 0, 'a unlocks: b owner 3 is granted in its step');
  await settles(asks[0]!.promise, "b's hook asked (first worker)");
  await settles(b.crashWorker(0), "b's worker replaced");
  await settles(asks[1]!.promise, "b's hook asked again (the replacement)");
  const stopped = stopB();
  t.equal(await settles(w3, "b owner 3's waiter"), -4, "b owner 3's waiter ends with EINTR");
  await settles(stopped, "b's stop()");
  t.equal(await settles(lock(a, path, 4, F_WRLCK, 0, 10, true), "a's waiting lock on the bytes"), 0, 'a gets the bytes');
});
