/**
 * Issue 13 (user review, test/review/actor-sweep-user-review.test.ts): a node refused, or made to
 * wait, by another node's lock kept the file's actor for good once everything was released: its
 * cache still held the other node's record, which only the other node's steps change, and the
 * actor went only with an empty cache. `stats().files` ("files with live actors", API.md) only grew.
 * Each case here ends with nothing held or waiting anywhere, and then neither node has an actor
 * of the file left. An actor with nothing of its node's goes at once after its last job; one whose
 * cache still holds another node's records goes on a timer, SharedFiles.foreignLingerMs (2 s)
 * after its node's last job on the file: the test waits for that with a generous named budget.
 * Then the file is used again: the next actor, which starts empty, still decides from the engine.
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles, waitFor } from './helpers.js';
import { hookNodes, lock, waiting, type NodeOptions } from './remote-hook-nodes.js';

const EAGAIN = -11;
const EINTR = -4;
/** ERROR_LOCK_VIOLATION: a Windows lock refused at once. */
const LOCK_VIOLATION = 33;
/** The sweep comes 2 s (foreignLingerMs) after a node's last job; only a hang (the defect: for good) reaches this. */
const SWEEP_BUDGET_MS = 30_000;

const skip = noRedis || false;

async function swept(t: Test, c: LockCoordinator, node: string): Promise<void> {
  const files = await waitFor(
    async () => ((await c.stats()).files === 0 ? 'none' : undefined),
    `node ${node}'s actor of the file swept`,
    SWEEP_BUDGET_MS,
  ).catch(async () => `${(await c.stats()).files}`);
  t.equal(files, 'none', `node ${node} has no actor left`);
}

async function bothSwept(t: Test, a: LockCoordinator, b: LockCoordinator, path: string): Promise<void> {
  t.same(await a.locks(path), [], 'nothing held or waiting in the lock space');
  await swept(t, a, 'a');
  await swept(t, b, 'b');
}

/** After the sweep: a holds again, b's fresh actor learns it from the engine and is refused; then b gets it once a released. */
async function usedAgain(t: Test, a: LockCoordinator, b: LockCoordinator, path: string): Promise<void> {
  t.equal(await lock(a, path, 1, F_WRLCK, 0, 10), 0, 'a locks the file again');
  t.equal(await lock(b, path, 2, F_WRLCK, 5, 10), EAGAIN, "b's next actor is refused: it learned a's lock from the engine");
  t.equal(await lock(a, path, 1, F_UNLCK, 0, 10), 0, 'a unlocks');
  t.equal(await lock(b, path, 2, F_WRLCK, 5, 10), 0, 'b locks once a released');
  t.equal(await lock(b, path, 2, F_UNLCK, 5, 10), 0, 'b unlocks');
  await bothSwept(t, a, b, path);
}

for (const hooks of [false, true]) {
  const bOptions: NodeOptions = hooks ? { onLock: () => 0, onLockFile: () => 0, onUnlockFile: () => {} } : {};
  const with_ = hooks ? ' (b with approval hooks)' : '';

  t.test(`refused by F_SETLK: b's actor goes once a released${with_}`, { skip }, async (t) => {
    const { a, b } = await hookNodes(t, 'sweep-refused', bOptions);
    const path = '/refused';
    t.equal(await lock(a, path, 1, F_WRLCK, 0, 10), 0, 'a holds [0,10)');
    t.equal(await lock(b, path, 2, F_WRLCK, 5, 10), EAGAIN, "b's F_SETLK is refused");
    t.equal(await lock(a, path, 1, F_UNLCK, 0, 10), 0, 'a unlocks');
    await bothSwept(t, a, b, path);
    await usedAgain(t, a, b, path);
  });

  t.test(`refused by LockFileEx failImmediately: b's actor goes once a closed its handle${with_}`, { skip }, async (t) => {
    const { a, b } = await hookNodes(t, 'sweep-refused-win', bOptions);
    const fileName = '/refused-win';
    t.equal(await a.lockFile({ fileName, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: 1, processId: 1 }), 0, 'a holds [0,10)');
    t.equal(await b.lockFile({ fileName, byteOffset: 5, length: 10, exclusiveLock: true, failImmediately: true, handle: 2, processId: 2 }), LOCK_VIOLATION, "b's request is refused at once");
    await a.closeHandle({ fileName, handle: 1 });
    await b.closeHandle({ fileName, handle: 2 });
    await bothSwept(t, a, b, fileName);
    await usedAgain(t, a, b, fileName);
  });

  t.test(`waited, then cancelled: b's actor goes once a released${with_}`, { skip }, async (t) => {
    const { a, b } = await hookNodes(t, 'sweep-cancelled', bOptions);
    const path = '/cancelled';
    t.equal(await lock(a, path, 1, F_WRLCK, 0, 10), 0, 'a holds [0,10)');
    const ac = new AbortController();
    const bWaits = lock(b, path, 2, F_WRLCK, 5, 10, true, ac.signal);
    await settles(waiting(b, path, 1), "b's waiter listed");
    ac.abort();
    t.equal(await settles(bWaits, "b's aborted waiter"), EINTR, "b's waiter ends with EINTR");
    t.equal(await lock(a, path, 1, F_UNLCK, 0, 10), 0, 'a unlocks');
    await bothSwept(t, a, b, path);
    await usedAgain(t, a, b, path);
  });

  t.test(`waited, granted by a's release, released: neither node keeps an actor${with_}`, { skip }, async (t) => {
    const { a, b } = await hookNodes(t, 'sweep-granted', bOptions);
    const path = '/granted';
    t.equal(await lock(a, path, 1, F_WRLCK, 0, 10), 0, 'a holds [0,10)');
    const bWaits = b.lock({ path, lockType: F_WRLCK, lockStart: 5, lockLen: 10, cmd: F_SETLKW, lockOwner: 2 }).then((r) => r.result);
    await settles(waiting(b, path, 1), "b's waiter listed");
    t.equal(await lock(a, path, 1, F_UNLCK, 0, 10), 0, 'a unlocks');
    t.equal(await settles(bWaits, "b's waiter granted"), 0, "a's release grants b's waiter");
    t.equal(await b.lock({ path, lockType: F_UNLCK, lockStart: 5, lockLen: 10, cmd: F_SETLK, lockOwner: 2 }).then((r) => r.result), 0, 'b unlocks');
    await bothSwept(t, a, b, path);
    await usedAgain(t, a, b, path);
  });
}

t.test("b's actor stays while b waits, and while b holds beside a", { skip }, async (t) => {
  const { a, b } = await hookNodes(t, 'sweep-kept', {});
  const path = '/kept';
  t.equal(await lock(a, path, 1, F_WRLCK, 0, 10), 0, 'a holds [0,10)');
  const bWaits = lock(b, path, 2, F_WRLCK, 5, 10, true);
  await settles(waiting(b, path, 1), "b's waiter listed");
  t.equal((await b.stats()).files, 1, "b keeps the actor of its waiter's file");
  t.equal(await lock(b, path, 3, F_WRLCK, 20, 10), 0, 'b holds [20,30) too');
  t.equal(await lock(a, path, 1, F_UNLCK, 0, 10), 0, 'a unlocks');
  t.equal(await settles(bWaits, "b's waiter granted"), 0, "b's waiter is granted");
  t.equal((await b.stats()).files, 1, 'b keeps the actor while it holds locks there');
  t.equal(await lock(b, path, 2, F_UNLCK, 0, 0), 0, 'b unlocks owner 2');
  t.equal(await lock(b, path, 3, F_UNLCK, 0, 0), 0, 'b unlocks owner 3');
  await bothSwept(t, a, b, path);
});
