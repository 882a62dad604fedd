/**
 * A real redis-server per test file: driver/redis-server.ts (its own free loopback port and
 * temporary directory, no persistence but a snapshot a test asks for, started and restarted with
 * nothing kept or from that snapshot by its "Ready to accept connections" line, killed in
 * teardown), and what these tests do on a machine without one.
 */
import type { Redis } from 'ioredis';
import { type RedisServer, redisUnavailable, within } from '../../driver/redis-server.js';

export { RedisServer, START_BUDGET_MS, until, within } from '../../driver/redis-server.js';

/** How long a test waits for an event that must come (a hang fails here, saying what it waited for). */
export const EVENT_BUDGET_MS = 60_000;

/**
 * Why this machine cannot run the tests that need a real engine, or false. In CI a missing
 * redis-server fails the file at once (.ci/run installs it); elsewhere each such test is skipped
 * (`t.test(name, { skip: noRedis }, ...)`), and the reason is printed where nobody can miss it.
 */
export const noRedis: string | false = (() => {
  const missing = redisUnavailable();
  if (missing === undefined) return false;
  const why = `${missing}: the store tests need a real engine`;
  if (process.env.CI) throw new Error(why);
  process.stderr.write(`\n*** SKIPPING: ${why} ***\n\n`);
  return why;
})();

/** Settings for a server that replicates: a full sync at once (the default waits 5 s for more replicas to join a diskless transfer). */
export const FAST_SYNC = ['--repl-diskless-sync-delay', '0'];

/** Resolves once `replica` (a client of one server) has loaded `primary`'s data and follows it (INFO replication says so). */
export async function replicate(replica: Redis, primary: RedisServer): Promise<void> {
  await replica.replicaof('127.0.0.1', primary.port);
  await within(
    (async () => {
      for (;;) {
        const info = await replica.info('replication');
        if (/master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info)) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    })(),
    EVENT_BUDGET_MS,
    `port ${(replica.options.port ?? 0).toString()} to load its primary's data`,
  );
}
