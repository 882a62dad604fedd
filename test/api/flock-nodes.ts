/**
 * The setting of the flock conversion tests: one coordinator (first = second), or two nodes of
 * one Redis lock space (a redis-server of the test's own, a fresh namespace), and flock requests
 * on '/f' by numbered owners.
 */
import { randomUUID } from 'node:crypto';
import { LockCoordinator, type LockReply } from '../../src/index.js';
import { RedisServer } from '../store/redis-server.js';
import { waitFor } from './helpers.js';

export type Two = { first: LockCoordinator; second: LockCoordinator; stop: () => Promise<unknown> };

export async function one(): Promise<Two> {
  const c = await LockCoordinator.start({ workers: 1 });
  return { first: c, second: c, stop: () => c.stop() };
}

export async function twoNodes(): Promise<Two> {
  const server = await RedisServer.start();
  const namespace = `flock-${randomUUID().slice(0, 8)}`;
  const store = (node: string) => ({ url: server.url, namespace, node, sessionTtlMs: 1000 });
  const first = await LockCoordinator.start({ workers: 1, store: store('a') });
  // A second start that fails leaves nothing running (the test would never end).
  const second = await LockCoordinator.start({ workers: 1, store: store('b') }).catch(async (e: unknown) => {
    await first.stop();
    await server.stop();
    throw e;
  });
  return { first, second, stop: () => Promise.all([first.stop(), second.stop()]).finally(() => server.stop()) };
}

/** Both settings, by name. */
export const SETTINGS = [['one coordinator', one], ['two nodes', twoNodes]] as const;

/** A flock request of `owner` on '/f' (lockPid = owner). */
export const flock = (c: LockCoordinator, owner: number, lockType: number, cmd: number): Promise<LockReply> =>
  c.lock({ path: '/f', kind: 'flock', lockType, cmd, lockOwner: owner, lockPid: owner });

/** Resolves once `c` lists `n` waiting requests on '/f'. */
export const waiting = (c: LockCoordinator, n: number): Promise<boolean> =>
  waitFor(async () => (await c.locks('/f')).filter((e) => e.state === 'waiting').length >= n, `${n} waiter(s) listed`);
