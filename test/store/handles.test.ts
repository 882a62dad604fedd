/**
 * A start that fails leaves nothing of the store in the event loop, nor does a stop: a program
 * that catches LockCoordinator.start's rejection, or awaits stop(), and does nothing else exits
 * at once. Before, the store's client left a timer behind (2 s: its disconnect timer, waiting for
 * the close of a socket that had already closed, or for a live one to close) and its sockets.
 * Each case runs in its own process (./start-child.ts), which lists the event loop's resources
 * right after the rejection or the stop, then must exit by itself.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { openStore } from '../../src/store/index.js';
import { RedisServer, noRedis } from './redis-server.js';
import { leftBehind, runStartChild, type Outcome } from './start-in.js';

/** Runs start-child.ts against `url` and waits for it to exit by itself. */
function startIn(url: string, requestTimeoutMs: number, what: string, more: { node?: string; sessionTtlMs?: number } = {}): Promise<Outcome> {
  return runStartChild({ url, requestTimeoutMs, ...more }, what);
}

/** A loopback port that was free a moment ago: nothing listens there. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

t.test('an engine nothing listens on (refused)', async (t) => {
  const port = await closedPort();
  const o = await startIn(`redis://u:s3cret@127.0.0.1:${port}`, 5_000, 'a closed port');
  t.match(o.error, `127.0.0.1:${port}`, `start rejected, naming the engine (${o.error})`);
  leftBehind(t, o, 'the rejection');
});

t.test('a wrong password', { skip: noRedis }, async (t) => {
  const redis = await RedisServer.start(['--requirepass', 's3cret']);
  t.teardown(() => redis.stop());
  const o = await startIn(`redis://:wr0ng@127.0.0.1:${redis.port}`, 5_000, 'a Redis with another password');
  t.match(o.error, /WRONGPASS/, `start rejected: the engine refused the password (${o.error})`);
  leftBehind(t, o, 'the rejection');
});

t.test('a server that is not Redis', async (t) => {
  const sockets = new Set<Socket>();
  const http = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    // Answers as an HTTP server does, and keeps the connection open.
    s.write('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    http.close();
  });
  const o = await startIn(`redis://127.0.0.1:${(http.address() as AddressInfo).port}`, 5_000, 'an HTTP server');
  t.match(o.error, /does not answer as Redis/, `start rejected: not Redis (${o.error})`);
  leftBehind(t, o, 'the rejection');
});

t.test('a Redis with TLS only, reached through redis://', { skip: noRedis }, async (t) => {
  const redis = await RedisServer.start([], { tls: true });
  t.teardown(() => redis.stop());
  const o = await startIn(`redis://127.0.0.1:${redis.port}`, 5_000, 'a Redis with TLS only');
  t.match(o.error, `redis://127.0.0.1:${redis.port}`, `start rejected (${o.error})`);
  leftBehind(t, o, 'the rejection');
});

t.test('an engine that accepts connections and never answers', { skip: noRedis }, async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  redis.pause();
  const o = await startIn(redis.url, 1_000, 'a paused Redis');
  t.match(o.error, `cannot reach ${redis.url} within 1000 ms`, `start rejected after requestTimeoutMs (${o.error})`);
  leftBehind(t, o, 'the rejection');
});

t.test("a node name another live process's session holds (refused after its TTL)", { skip: noRedis }, async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  // The session is opened and renewed here; the child's start is refused once it has seen it
  // renewed for a TTL and a renewal, after it had connected.
  const holder = await openStore({ url: redis.url, node: 'taken', sessionTtlMs: 1_000 });
  t.teardown(() => holder.close());
  const o = await startIn(redis.url, 5_000, 'a Redis where its node name is live', { node: 'taken', sessionTtlMs: 1_000 });
  t.match(o.error, /node name 'taken' is in use/, `start rejected: the name is in use (${o.error})`);
  leftBehind(t, o, 'the rejection');
});

t.test('a start that succeeds, then stop()', { skip: noRedis }, async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  const o = await startIn(redis.url, 5_000, 'a Redis');
  t.equal(o.error, undefined, 'started');
  t.equal(o.stopped, true, 'stopped');
  leftBehind(t, o, 'stop() resolved');
});
