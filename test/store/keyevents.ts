/**
 * Test support: the engine's own key events (expiry of a session key, each renewal's SET) as a
 * Feed, so that a test waits for "the engine let the session go" instead of sleeping past a TTL.
 * The store itself never uses notifications (they are lost across a reconnect); tests may.
 */
import { Redis } from 'ioredis';
import { Feed } from './fixture.js';
import type { RedisServer } from './redis-server.js';

export interface KeyEvent {
  event: string;
  key: string;
}

export async function keyEvents(server: RedisServer, onEvent?: (e: KeyEvent) => void): Promise<{ feed: Feed<KeyEvent>; close: () => void }> {
  const admin = await server.client();
  await admin.config('SET', 'notify-keyspace-events', 'Ex$');
  const feed = new Feed<KeyEvent>();
  const sub = new Redis(server.url, { lazyConnect: true, disableClientInfo: true });
  sub.on('error', () => {});
  await sub.connect();
  sub.on('pmessage', (_p: string, channel: string, key: string) => {
    const e = { event: channel.slice(channel.lastIndexOf(':') + 1), key };
    onEvent?.(e);
    feed.push(e);
  });
  await sub.psubscribe('__keyevent@*__:*');
  return { feed, close: () => sub.disconnect() };
}
