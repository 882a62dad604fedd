/**
 * Review of issue 13: a waiter granted by another node's release whose own node's approval hook
 * throws, hangs past hookTimeoutMs, or is still running when its node stops. Every waiter ends,
 * and the bytes go on to the next waiter.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';

async function nodes(t: Test, hook: (e: LockEvent) => number | Promise<number>, hookTimeoutMs = 60_000) {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const namespace = `rhend-${randomUUID().slice(0, 8)}`;
  const store = (node: string) => ({ url: server.url, namespace, node, sessionTtlMs: 1000 });
  const a = await LockCoordinator.start({ workers: 1, store: store('a') });
  const b = await LockCoordinator.start({ workers: 1, store: store('b'), hookTimeoutMs, onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : hook(e)) });
  let bStopped = false;
  t.teardown(() => Promise.all([a.stop(), bStopped ? undefined : b.stop()]));
  return { a, b, stopB: () => {
      bStopped = true;
      return b.stop();
    }, };
}

async function waiting(c: LockCoordinator, path: string, n: number): Promise<void> {
  while ((await c.locks(path)).filter((e) => e.state === 'waiting').length < n) await new Promise((r) => setImmediate(r));
}

const lk = (c: LockCoordinator, path: string, owner: number, type: number, wait = false, signal?: AbortSignal): Promise<number> =>
  c.lock({ path, lockType: type, lockStart: 0, lockLen: 10, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner, ...(signal ? { signal } : {}) }).then((r) => r.result);

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
  let asked: () => void = () => {};
  const askedP = new Promise<void>((r) => (asked = r));
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
