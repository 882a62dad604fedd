/**
 * Two nodes, a and b, over one lock space on a redis-server of the test's own (a free loopback
 * port, a temporary directory), each a coordinator with two workers; stopped at the test's end.
 * `win`/`unwin` build the Windows lock and unlock requests the owed-release tests send.
 */
import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { RedisServer } from '../store/redis-server.js';

export const win = (fileName: string, handle: number, start: number, length: number) => ({ fileName, byteOffset: start, length, exclusiveLock: true, failImmediately: true, handle, processId: 1 });
export const unwin = (fileName: string, handle: number, start: number, length: number) => ({ fileName, byteOffset: start, length, handle, processId: 1 });

export async function twoNodes(t: Test, prefix: string, o: { sessionTtlMs: number; requestTimeoutMs: number }): Promise<{ server: RedisServer; a: LockCoordinator; b: LockCoordinator }> {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const store = { url: server.url, namespace: `${prefix}-${randomUUID().slice(0, 8)}`, ...o };
  const a = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'a' } });
  const b = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'b' } });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return { server, a, b };
}
