/**
 * User review (issue 13): LockFileEx semantics across two nodes of one Redis lock space, compared
 * with one coordinator without a store making the same calls (distinct handle numbers on the two
 * sides, so both settings have the same owners). Every result is also checked against
 * docs/SEMANTICS-WINDOWS.md (section named at each step), so a rule broken in both settings fails
 * too. The review found no difference: this file keeps it so. Both policies; 'fifo' differs only where §9
 * says it does.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { settles, waitFor } from '../api/helpers.js';
import { noRedis, RedisServer } from '../store/redis-server.js';

type C = LockCoordinator;
type Two = { a: C; b: C; stop: () => Promise<unknown> };
const M = 2n ** 64n - 1n;

async function one(policy: 'default' | 'fifo'): Promise<Two> {
  const c = await LockCoordinator.start({ workers: 2, policy });
  return { a: c, b: c, stop: () => c.stop() };
}

async function twoNodes(policy: 'default' | 'fifo'): Promise<Two> {
  const server = await RedisServer.start();
  const namespace = `winrev-${randomUUID().slice(0, 8)}`;
  const store = (node: string) => ({ url: server.url, namespace, node, sessionTtlMs: 1000 });
  const a = await LockCoordinator.start({ workers: 2, policy, store: store('a') }).catch(async (e: unknown) => {
    await server.stop();
    throw e;
  });
  const b = await LockCoordinator.start({ workers: 2, policy, store: store('b') }).catch(async (e: unknown) => {
    await a.stop();
    await server.stop();
    throw e;
  });
  return { a, b, stop: () => Promise.all([a.stop(), b.stop()]).finally(() => server.stop()) };
}

const lk = (c: C, f: string, handle: number, byteOffset: bigint | number, length: bigint | number, exclusiveLock: boolean, failImmediately = true, extra: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
  c.lockFile({ fileName: f, byteOffset, length, exclusiveLock, failImmediately, handle, processId: 1, ...extra });
const ul = (c: C, f: string, handle: number, byteOffset: bigint | number, length: bigint | number, processId = 1) =>
  c.unlockFile({ fileName: f, byteOffset, length, handle, processId });
/** Resolves once `c` lists `n` waiting requests on `f` (with a store: every node's). */
const waiting = (c: C, f: string, n: number) =>
  waitFor(async () => (await c.locks(f)).filter((e) => e.state === 'waiting').length >= n, `${n} waiter(s) listed on ${f}`);

for (const policy of ['default', 'fifo'] as const) {
  for (const [where, make] of [['one coordinator', one], ['two nodes', twoNodes]] as const) {
    t.test(`${policy}, ${where}: LockFileEx rules hold as on one coordinator`, { skip: where === 'two nodes' && noRedis }, async (t) => {
      const { a, b, stop } = await make(policy);
      t.teardown(stop);

      // §4 and §6: a handle's own overlapping exclusive is refused, shared stacks on it, unlock names a record exactly.
      let f = '/own';
      t.equal(await lk(a, f, 1, 0, 10, true), 0, 'A1 exclusive (0,10)');
      t.equal(await lk(a, f, 1, 5, 10, true), 33, "A1's overlapping exclusive refused (§4)");
      t.equal(await lk(a, f, 1, 0, 10, false), 0, 'A1 shared on its own exclusive (§4)');
      t.equal(await lk(a, f, 1, 0, 10, false), 0, 'A1 shared again (stacks)');
      t.equal(await lk(b, f, 11, 0, 10, false), 33, "B11 shared conflicts with A1's exclusive");
      t.equal(await ul(a, f, 1, 0, 5), 158, 'a sub-range unlock gives 158 (§6)');
      t.equal(await ul(a, f, 1, 0, 20), 158, 'a super-range unlock gives 158 (§6)');
      t.equal(await ul(a, f, 1, 0, 10), 0, 'unlock (0,10) removes the exclusive first (§6)');
      t.equal(await lk(b, f, 11, 0, 10, false), 0, "B11 shared now fits A1's shared records");
      t.equal(await ul(a, f, 1, 0, 10), 0, 'A1 first shared record');
      t.equal(await ul(a, f, 1, 0, 10), 0, 'A1 second shared record');
      t.equal(await ul(a, f, 1, 0, 10), 158, 'one unlock too many gives 158 (§6)');
      t.equal(await ul(b, f, 11, 0, 10), 0, 'B11 unlocks');
      t.equal(await lk(b, f, 11, 0, 10, true), 0, 'B11 exclusive (0,10)');
      t.equal(await lk(b, f, 11, 10, 10, true), 0, 'B11 adjacent exclusive (10,10)');
      t.equal(await ul(b, f, 11, 0, 20), 158, 'an unlock spanning two adjacent records gives 158 (§6)');
      t.equal(await ul(a, f, 1, 0, 10), 158, "A1 cannot unlock B11's record");
      t.equal(await ul(b, f, 11, 0, 10, 2), 158, 'another processId cannot either (§1)');

      // §2 zero-length ranges.
      f = '/zero';
      t.equal(await lk(a, f, 1, 100, 0, true), 0, 'A1 zero-length at 100');
      t.equal(await lk(b, f, 11, 99, 2, true), 33, '(99,2) overlaps it');
      t.equal(await lk(b, f, 11, 95, 5, true), 0, '(95,5) does not');
      t.equal(await lk(b, f, 11, 100, 5, true), 0, '(100,5) does not');
      t.equal(await lk(b, f, 11, 100, 0, true), 0, 'two zero-length ranges never overlap');
      t.equal(await lk(a, f, 1, 0, 0, true), 0, 'A1 (0,0)');
      t.equal(await lk(b, f, 12, 0, 1, true), 0, '(0,0) overlaps nothing');
      t.equal(await lk(b, f, 13, 0, 200, true), 33, "(0,200) overlaps A1's zero-length lock at 100");
      t.equal(await b.checkIo({ fileName: f, handle: 13, processId: 1, byteOffset: 100, length: 0, write: true }), 0, 'zero-length I/O is always allowed (§5)');

      // §3 the 64-bit edges.
      f = '/edges';
      t.equal(await lk(a, f, 1, M, 1, true), 0, 'A1 (2^64-1, 1)');
      t.equal(await lk(b, f, 11, M, 1, true), 33, 'B11 (2^64-1, 1) conflicts');
      t.equal(await lk(b, f, 11, M - 1n, 2, true), 33, 'B11 (2^64-2, 2) conflicts');
      t.equal(await lk(b, f, 11, M, 0, true), 0, 'B11 (2^64-1, 0) fits');
      t.equal(await lk(a, f, 1, M, 2, true), 307, '(2^64-1, 2) wraps: 307');
      t.equal(await lk(a, f, 1, 0, M + 1n, true), 87, 'a length of 2^64 gives 87');
      t.equal(await lk(a, f, 1, -1, -1, true), 307, '(-1, -1) is an invalid range for lockFile');
      t.equal(await lk(a, f, 2, -2, 1, true), 0, '(-2, 1) is (2^64-2, 1)');
      t.equal(await lk(b, f, 12, 2n ** 63n, 1, true), 0, 'B12 (2^63, 1)');
      t.equal(await lk(a, f, 3, 2n ** 63n - 1n, 2, false), 33, 'A3 shared across 2^63 conflicts');
      t.equal(await b.checkIo({ fileName: f, handle: 11, processId: 1, byteOffset: M, length: 1, write: false }), 33, "a read of byte 2^64-1 meets A1's exclusive");
      t.equal(await ul(a, f, 1, -1, -1), 0, 'unlock-all of A1 (§10)');
      t.equal(await lk(b, f, 11, M, 1, true), 0, 'B11 (2^64-1, 1) now fits');

      // §8 and §10 across nodes: unlock of a waiter's range, close ending waiters, timeout, abort, wake-up order.
      f = '/wait';
      t.equal(await lk(a, f, 1, 0, 10, true), 0, 'A1 exclusive (0,10)');
      const w11 = lk(b, f, 11, 0, 10, true, false);
      await waiting(a, f, 1);
      t.equal(await ul(b, f, 11, 0, 10), 158, "unlocking a waiting request's range gives 158 (§8)");
      await b.closeHandle({ fileName: f, handle: 11 });
      t.equal(await settles(w11, "B11's waiter after its close"), 158, 'closeHandle ends its waiter with 158 (§10)');
      t.equal(await lk(b, f, 12, 0, 10, true, false, { timeoutMs: 50 }), 33, 'a timed-out waiter gets 33 (§8)');
      const ac = new AbortController();
      const w13 = lk(b, f, 13, 0, 10, false, false, { signal: ac.signal });
      await waiting(a, f, 1);
      ac.abort();
      t.equal(await settles(w13, 'the aborted waiter'), 995, 'an aborted waiter gets 995 (§8)');
      const order: string[] = [];
      const queue = [
        ['B14', b, 14],
        ['A2', a, 2],
        ['B15', b, 15],
      ] as const;
      const ws: Promise<unknown>[] = [];
      for (const [name, c, h] of queue) {
        ws.push(lk(c, f, h, 0, 10, true, false).then((r) => order.push(`${name}=${r}`)));
        await waiting(a, f, ws.length);
      }
      await a.closeHandle({ fileName: f, handle: 1 });
      for (const [i, [name, c, h]] of queue.entries()) {
        await waitFor(() => order.length > i, `${name}'s grant (${i + 1} of ${queue.length})`);
        await c.closeHandle({ fileName: f, handle: h });
      }
      await settles(Promise.all(ws), 'every waiter');
      t.same(order, ['B14=0', 'A2=0', 'B15=0'], 'same-range waiters on both nodes are granted in arrival order (§9)');

      // §9 policies: a new shared request beside a queued exclusive waiter.
      f = '/policy';
      t.equal(await lk(a, f, 1, 0, 10, false), 0, 'A1 shared (0,10)');
      const w11b = lk(b, f, 11, 0, 10, true, false);
      await waiting(a, f, 1);
      t.equal(await lk(b, f, 12, 0, 10, false), policy === 'fifo' ? 33 : 0, `B12 shared, fail-immediately: ${policy === 'fifo' ? '33 behind the queued writer' : 'granted over the waiter'}`);
      t.equal(await lk(a, f, 1, 0, 10, false), 0, 'A1 stacks a shared lock (the owner exemption under fifo)');
      await a.closeHandle({ fileName: f, handle: 1 });
      await b.closeHandle({ fileName: f, handle: 12 });
      t.equal(await settles(w11b, "B11's exclusive"), 0, 'the writer is granted once the readers closed');
    });
  }
}
