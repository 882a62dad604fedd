/**
 * Found by a new user's trial (issue 13): the fixed contract (shared/design/API.md, "One lock
 * space across machines", Fencing) says "Hook events carry `fence`, a number that grows with
 * every grant on the file, for applications that write to storage of their own". Neither
 * LockFileEvent nor LockEvent has it (with or without a store), and docs/API.md does not mention
 * it: an application propagating locks to its own storage (the hooks' purpose) has no token to
 * reject a write from a node that lost its lock. Marked todo until the events carry it.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { F_SETLK, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';

let server: RedisServer | undefined;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const fenceOf = (e: LockEvent | LockFileEvent): unknown => (e as unknown as Record<string, unknown>).fence;

t.test('hook events carry a fence that grows with every grant on the file (shared lock space)', { skip: noRedis }, async (t) => {
  const posix: LockEvent[] = [];
  const win: LockFileEvent[] = [];
  const c = await LockCoordinator.start({
    workers: 1,
    // sessionTtlMs 1000: the new namespace's grace period, which every first grant waits for, is 1 s.
    store: { url: server!.url, namespace: `fence-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 1000 },
    onLock: (e) => { posix.push(e); return 0; },
    onLockFile: (e) => { win.push(e); return 0; },
    onUnlockFile: () => {},
  });
  t.teardown(() => c.stop());
  const set = (lockType: number) => c.lock({ path: 'ino:1', lockType, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1 });
  t.equal((await set(F_WRLCK)).result, 0, 'first grant');
  t.equal((await set(F_UNLCK)).result, 0, 'unlocked');
  t.equal((await set(F_WRLCK)).result, 0, 'second grant');
  const sets = posix.filter((e) => e.lockType === F_WRLCK);
  t.equal(sets.length, 2, 'onLock saw both sets');
  t.type(fenceOf(sets[0]!), 'number', 'the first set event carries a numeric fence');
  t.ok((fenceOf(sets[1]!) as number) > (fenceOf(sets[0]!) as number), 'the second grant has a larger fence');
  t.equal(await c.lockFile({ fileName: 'ino:1', byteOffset: 100, length: 1, exclusiveLock: true, failImmediately: true, handle: 1 }), 0, 'a Windows grant');
  t.type(fenceOf(win[0]!), 'number', 'onLockFile carries a fence too');
});

