/**
 * Review of issue 13: a waiter granted by another node's release whose own node's approval hook
 * throws, hangs past hookTimeoutMs, or is still running when its node stops. Every waiter ends,
 * and the bytes go on to the next waiter.
 */
import t, { type Test } from 'tap';
import { F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

const nodes = (t: Test, hook: (e: LockEvent) => number | Promise<number>, hookTimeoutMs = 60_000) =>
  hookNodes(t, 'rhend', { hookTimeoutMs, onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : hook(e)) });

const lk = (c: LockCoordinator, path: string, owner: number, type: number, wait = false): Promise<number> => lock(c, path, owner, type, 0, 10, wait);

/** a holds; b's owner 3 waits, then a's owner 4 behind it; arms the hook, a unlocks. */
async function scene(a: LockCoordinator, b: LockCoordinator, path: string, arm: () => void) {
  if ((await lk(a, path, 2, F_WRLCK)) !== 0) throw new Error('a locks');
  const bWaits = lk(b, path, 3, F_WRLCK, true);
  await waiting(b, path, 1);
  const aWaits = lk(a, path, 4, F_WRLCK, true);
  await waiting(a, path, 2);
  arm();
  if ((await lk(a, path, 2, F_UNLCK)) !== 0) throw new Error('a unlocks');
  return { bWaits, aWaits };
}

t.test("posix: b's hook throws for a grant by a's release: b's caller gets ENOLCK, a's waiter behind is granted", { skip: noRedis }, async (t) => {
  let armed = false;
  const { a, b } = await nodes(t, (e) => {
    if (armed && e.lockOwner === 3) throw new Error('hook broke');
    return 0;
  });
  const { bWaits, aWaits } = await scene(a, b, '/throw', () => (armed = true));
  t.equal(await settles(bWaits, "b's waiter"), -37, "b's waiter ends with ENOLCK");
  t.equal(await settles(aWaits, "a's waiter"), 0, "a's waiter behind it is granted");
});

t.test("posix: b's hook hangs past hookTimeoutMs for a grant by a's release: b's caller gets ENOLCK, a's waiter behind is granted", { skip: noRedis }, async (t) => {
  let armed = false;
  const { a, b } = await nodes(t, (e) => (armed && e.lockOwner === 3 ? new Promise<number>(() => {}) : 0), 300);
  const { bWaits, aWaits } = await scene(a, b, '/hang', () => (armed = true));
  t.equal(await settles(bWaits, "b's waiter"), -37, "b's waiter ends with ENOLCK");
  t.equal(await settles(aWaits, "a's waiter"), 0, "a's waiter behind it is granted");
});

t.test("posix: b stops while its hook judges a grant by a's release: stop ends, b's waiter ends, a's waiter behind is granted", { skip: noRedis }, async (t) => {
  let armed = false;
  const { promise: askedP, resolve: asked } = later();
  const { a, b, stopB } = await nodes(t, (e) => {
    if (!armed || e.lockOwner !== 3) return 0;
    asked();
    return new Promise<number>(() => {});
  });
  const { bWaits, aWaits } = await scene(a, b, '/stop', () => (armed = true));
  await settles(askedP, "b's hook asked");
  const stopped = stopB();
  const code = await settles(bWaits, "b's waiter");
  t.not(code, 0, `b's waiter is not granted (${code})`);
  await settles(stopped, 'b.stop()');
  t.equal(await settles(aWaits, "a's waiter"), 0, "a's waiter behind it is granted");
});
