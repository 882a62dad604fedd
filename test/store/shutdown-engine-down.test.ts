/**
 * A store's stop (RedisEngine.shutdown, closeNow) against a real redis-server this
 * file starts: what its connections leave behind when the engine is down. Every wait is for an
 * event, within a budget.
 */
import t from 'tap';
import { RedisEngine } from '../../src/store/redis.js';
import { resolveOptions } from '../../src/store/options.js';
import { EVENT_BUDGET_MS, RedisServer, noRedis, within } from './redis-server.js';

// The engine goes away (nothing listens any more) and the client waits to reconnect; a call made
// then waits in the client's queue, with its command timer (requestTimeoutMs). shutdown() must
// settle it: before, the call stayed pending, its timer held the process for requestTimeoutMs
// after the stop, and the client never ended.
t.test('shutdown while the engine is down settles the calls waiting for the reconnect, and leaves no timer', { skip: noRedis }, async (t) => {
  const redis = await RedisServer.start();
  let stopped = false;
  t.teardown(() => (stopped ? undefined : redis.stop()));
  // A requestTimeoutMs past the waits below: only the call's own timer would settle it then.
  const engine = await RedisEngine.connect(resolveOptions({ url: redis.url, namespace: 'lr', node: 'a', requestTimeoutMs: EVENT_BUDGET_MS }));
  const reconnecting = new Promise<void>((r) => engine.client.once('reconnecting', () => r()));
  await redis.stop();
  stopped = true;
  await within(reconnecting, EVENT_BUDGET_MS, 'the client waiting to reconnect after the engine went away');
  let outcome = 'pending';
  void engine.files().then(
    () => (outcome = 'answered'),
    (e: Error) => (outcome = `rejected: ${e.message}`),
  );
  await within(engine.shutdown(), EVENT_BUDGET_MS, 'shutdown() with the engine down');
  // A turn for the rejection's callbacks.
  await new Promise((r) => setImmediate(r));
  t.match(outcome, /^rejected/, `the call made while reconnecting is settled by the shutdown (${outcome})`);
  t.equal(engine.client.status, 'end', 'the client has ended');
});
