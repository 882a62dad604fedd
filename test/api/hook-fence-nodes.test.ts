/**
 * Hook events' `fence` in a shared lock space (API.md "Fencing"): two nodes over a real
 * redis-server take turns on one file, which is left with no records between turns (version 0
 * again), and every approval's number is above all the ones before, whichever node gave them. A
 * waiter woken by another node's release holds a number above the lock it waited for (its release
 * event says which). The engine checks every number in the step that grants against the file's
 * last (test/store/fence.test.ts).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';

t.test('fences across two nodes on one file', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const namespace = `fence-${randomUUID().slice(0, 8)}`;
  const events: Record<string, (LockEvent | LockFileEvent)[]> = { a: [], b: [] };
  // Release events come through the hooks' own channel, not always before the unlock's answer.
  let heard: () => void = () => {};
  const push = (node: string, e: LockEvent | LockFileEvent) => {
    events[node]!.push(e);
    heard();
  };
  const releaseOf = async (node: string, from: number): Promise<LockEvent> => {
    for (;;) {
      const e = events[node]!.slice(from).find((x) => 'lockType' in x && x.lockType === F_UNLCK);
      if (e !== undefined) return e as LockEvent;
      await new Promise<void>((r) => (heard = r));
    }
  };
  const start = (node: 'a' | 'b') =>
    LockCoordinator.start({
      workers: 2,
      // sessionTtlMs 1000: the new namespace's grace period, which the first grant waits for, is 1 s.
      store: { url: server.url, namespace, node, sessionTtlMs: 1000 },
      onLock: (e) => void push(node, e),
      onLockFile: (e) => void push(node, e),
      onUnlockFile: (e) => void push(node, e as LockFileEvent),
    });
  const a = await start('a');
  const b = await start('b');
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const set = (c: LockCoordinator, path: string, owner: number, lockType: number, cmd = F_SETLK) => c.lock({ path, lockType, lockStart: 0, lockLen: 10, cmd, lockOwner: owner });
  const turns: [LockCoordinator, 'a' | 'b'][] = [[a, 'a'], [b, 'b'], [a, 'a'], [b, 'b'], [b, 'b'], [a, 'a']];
  const fences: number[] = [];
  for (const [c, name] of turns) {
    t.equal((await set(c, '/f', 1, F_WRLCK)).result, 0, `${name} writes /f`);
    const approval = events[name]!.filter((e) => 'lockType' in e && e.lockType === F_WRLCK).at(-1)!;
    fences.push(approval.fence!);
    const from = events[name]!.length;
    t.equal((await set(c, '/f', 1, F_UNLCK)).result, 0, `${name} unlocks /f (no record left)`);
    t.equal((await releaseOf(name, from)).fence, approval.fence, "its release event carries the grant's fence");
  }
  t.ok(fences.every((f) => Number.isSafeInteger(f) && f > 0), `every approval carries a fence (${fences.join(', ')})`);
  t.ok(fences.every((f, i) => i === 0 || f > fences[i - 1]!), 'each turn a larger one, whichever node gave the one before');

  // A waiter on b granted by a's release.
  t.equal((await set(a, '/g', 2, F_WRLCK)).result, 0, 'a writes /g');
  const aFence = (events.a!.at(-1) as LockEvent).fence!;
  const waiter = set(b, '/g', 3, F_WRLCK, F_SETLKW);
  await b.locks('/g').then(function poll(l): Promise<unknown> | undefined {
    // Waits for b's waiter to be queued (listed), then a unlocks.
    return l.some((e) => e.state === 'waiting') ? undefined : new Promise((r) => setImmediate(r)).then(() => b.locks('/g').then(poll));
  });
  t.equal((await set(a, '/g', 2, F_UNLCK)).result, 0, 'a unlocks /g');
  t.equal((await waiter).result, 0, "b's waiter is granted");
  const from = events.b!.length;
  t.equal((await set(b, '/g', 3, F_UNLCK)).result, 0, 'b unlocks /g');
  const bRelease = await releaseOf('b', from);
  t.ok(bRelease.fence! > aFence, `the lock a's release gave b holds a larger fence (${bRelease.fence} > ${aFence})`);

  // Windows too.
  t.equal(await a.lockFile({ fileName: '/w', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 1 }), 0, 'a Windows lock on a');
  const winFence = (events.a!.at(-1) as LockFileEvent).fence!;
  t.ok(winFence > bRelease.fence!, 'its fence is above every one before');

});
