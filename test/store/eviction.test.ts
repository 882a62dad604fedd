/**
 * An engine that may evict keys (maxmemory with a policy other than noeviction) drops a lock's
 * record, a session key or the grace period's key without a trace when it fills up, and the
 * bytes may then be granted twice: opening a store on one says so in a process warning
 * (LocksmithEngineWarning) naming the URL and the policy. The default (no maxmemory) and
 * noeviction say nothing.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { openStore } from '../../src/store/index.js';
import { RedisServer, noRedis } from './redis-server.js';

/** The process warnings emitted while `f` runs. */
async function warningsOf(f: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = [];
  const on = (w: Error) => seen.push(w);
  process.on('warning', on);
  try {
    await f();
    // process.emitWarning delivers on the next tick.
    await new Promise<void>((r) => process.nextTick(r));
  } finally {
    process.off('warning', on);
  }
  return seen.filter((w) => w.name === 'LocksmithEngineWarning');
}

async function openOn(server: RedisServer): Promise<void> {
  const s = await openStore({ url: server.url, namespace: `ev-${randomUUID().slice(0, 8)}`, node: 'a', requestTimeoutMs: 10_000 }, {}, { graceMs: 0 });
  await s.close();
}

t.test('maxmemory with allkeys-lru: a warning naming the URL, the limit and the policy', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start(['--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lru']);
  t.teardown(() => server.stop());
  const ws = await warningsOf(() => openOn(server));
  t.equal(ws.length, 1, 'one warning');
  t.match(ws[0]?.message, new RegExp(`${server.url.replace(/[.:/]/g, '\\$&')}.*maxmemory 104857600 bytes, maxmemory-policy allkeys-lru.*granted twice.*noeviction`));
});

t.test('a volatile policy evicts session keys: warned too', { skip: noRedis }, async (t) => {
  const server = await RedisServer.start(['--maxmemory', '100mb', '--maxmemory-policy', 'volatile-ttl']);
  t.teardown(() => server.stop());
  const ws = await warningsOf(() => openOn(server));
  t.match(ws.map((w) => w.message), [/maxmemory-policy volatile-ttl/]);
});

t.test('no maxmemory (the default), or noeviction: no warning', { skip: noRedis }, async (t) => {
  const plain = await RedisServer.start();
  t.teardown(() => plain.stop());
  t.same(await warningsOf(() => openOn(plain)), [], 'the default');
  const safe = await RedisServer.start(['--maxmemory', '100mb', '--maxmemory-policy', 'noeviction']);
  t.teardown(() => safe.stop());
  t.same(await warningsOf(() => openOn(safe)), [], 'maxmemory with noeviction');
  // A policy that evicts, without a limit, never evicts.
  const unlimited = await RedisServer.start(['--maxmemory-policy', 'allkeys-lru']);
  t.teardown(() => unlimited.stop());
  t.same(await warningsOf(() => openOn(unlimited)), [], 'an evicting policy with no maxmemory');
});
