/**
 * Review: `stop()` releases this node's locks at once (API.md "One lock space across machines";
 * docs/API.md: "stop() releases this node's locks and ends its waiters before it ends the
 * session"). A grant that another node's release gave one of b's waiters, held on the engine
 * while b's approval hook judges it, is one of b's locks there: once b.stop() has resolved, a
 * must find the bytes free. It found them held by b's owner (listed 'granted', refused with
 * EAGAIN / 33) until another node's renewal reaped b's ended session: stop()'s steps queued
 * behind the judgment, which waited for the hook. The judgment now takes stop() as a veto
 * (FileSpace.onStop), so the grant's release runs first.
 */
import t from 'tap';
import { F_UNLCK } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from '../api/helpers.js';
import { type Family, drop, hookNodes, later, take, waiting } from '../api/remote-hook-nodes.js';

for (const f of ['posix', 'windows'] as Family[]) {
  t.test(`${f}: b.stop() while b's hook judges its waiter's grant by a's release: the bytes are free once stop() resolves`, { skip: noRedis }, async (t) => {
    let armed = false;
    const { promise: askedP, resolve: asked } = later();
    // b's hook never answers for owner 3 once armed (the approval of its grant by a's release).
    const judge = (owner: unknown): number | Promise<number> => {
      if (!armed || owner !== 3) return 0;
      asked();
      return new Promise<number>(() => {});
    };
    const { a, b, stopB } = await hookNodes(t, 'rvstopjudged', {
      hookTimeoutMs: 600_000,
      onLock: (e) => (e.lockType === F_UNLCK ? 0 : judge(e.lockOwner)),
      onLockFile: (e) => judge(e.handle),
      onUnlockFile: () => {},
    });
    const path = `/stop-${f}`;
    t.equal(await take(a, f, path, 2, 0, false), 0, 'a holds [0,10)');
    const bWaits = take(b, f, path, 3, 0, true);
    await waiting(b, path, 1);
    armed = true;
    t.equal(await drop(a, f, path, 2, 0), 0, "a unlocks: its step grants b's waiter");
    await settles(askedP, "b's hook asked to approve the grant");
    await settles(stopB(), 'b.stop()');
    t.not(await settles(bWaits, "b's waiter"), 0, "b's waiter is not granted");
    const listed = (await a.locks(path)).map((e) => `${e.node} ${e.owner} ${e.state}`);
    t.same(listed, [], 'nothing of b is listed once its stop() resolved');
    t.equal(await take(a, f, path, 4, 0, false), 0, 'a takes the bytes b never had, at once');
  });
}
