/**
 * The setting of the `locksmith locks --store` reviews: before the file's tests (nothing when this
 * machine has no redis-server), an engine of the file's own and one node over a namespace of its
 * own; after them, the node stopped, then what the file adds (`stop`), then the engine.
 */
import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import { F_SETLK, F_WRLCK, LockCoordinator } from '../../src/index.js';
import { SERVES } from '../../src/store/options.js';
import { RedisServer, noRedis } from '../store/redis-server.js';

/** The namespace (set at once), and the engine and the node (set before the file's tests). */
export type LockSpace = { readonly ns: string; server: RedisServer; node: LockCoordinator };

/**
 * Node `node` (one worker, sessionTtlMs 3000; recording that it serves `serves`, as a mount does)
 * in the namespace `${prefix}-<8 random hex>` on a redis-server started with `settings`. With
 * `held`, the node takes the write lock of owner 1 and process `held.pid` on [0,10) of `held.path`
 * (asserted granted); then `setup` runs.
 */
export function lockSpace(
  t: Test,
  o: {
    prefix: string;
    node: string;
    settings?: readonly string[];
    serves?: { host: string; mountpoint: string };
    held?: { path: string; pid: number };
    setup?: (s: LockSpace) => Promise<void>;
    stop?: () => Promise<void> | undefined;
  },
): LockSpace {
  const space = { ns: `${o.prefix}-${randomUUID().slice(0, 8)}` } as LockSpace;
  t.before(async () => {
    if (noRedis) return;
    space.server = await RedisServer.start(o.settings);
    const store = { url: space.server.url, namespace: space.ns, sessionTtlMs: 3000, node: o.node, ...(o.serves ? { [SERVES]: o.serves } : {}) };
    space.node = await LockCoordinator.start({ workers: 1, store });
    if (o.held) {
      const { path, pid } = o.held;
      t.equal((await space.node.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1, lockPid: pid })).result, 0);
    }
    await o.setup?.(space);
  });
  t.teardown(async () => {
    await space.node?.stop();
    await o.stop?.();
    await space.server?.stop();
  });
  return space;
}
