/**
 * API.md "The engine unreachable": only a request that cannot reach the engine within
 * requestTimeoutMs completes with its family's generic code. A hot file on a healthy engine (it
 * answers every step, each after a few ms) whose mailbox is long, many F_SETLK at once: each must
 * get the engine's answer (0 for disjoint ranges), none -ENOLCK only because it waited its turn
 * behind the others longer than requestTimeoutMs.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { F_SETLK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, lk, node } from './lost-link.js';

t.test('many F_SETLK queued on one file of a healthy but slow engine: each answered by the engine, none with the generic code', async (t) => {
  const timeout = 200;
  const n = 50;
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', timeout);
  t.teardown(() => a.store.close());
  // Every step reaches the engine and is answered, 10 ms later (a busy engine or network): the
  // 50 queued steps take 500 ms in all, more than requestTimeoutMs.
  const commit = a.store.commit.bind(a.store);
  a.store.commit = async (s) => {
    await sleep(10);
    return commit(s);
  };
  for (let i = 1; i <= n; i++) a.sf.run(i, lk(`p${i}`, i, F_WRLCK, F_SETLK, i * 10, 10), a.target);
  for (let i = 1; i <= n; i++) await answered(a, i, `request ${i}`);
  const codes = [...a.got.entries()].sort((x, y) => x[0] - y[0]).map(([, r]) => (r as { result: number }).result);
  const failed = codes.filter((c) => c !== 0).length;
  t.equal(failed, 0, `every disjoint lock granted (${failed} of ${n} answered otherwise: ${[...new Set(codes)].join(',')})`);
  t.same((await engine.load('/a')).records.filter((r) => r.state === 'held').length, n, 'all held in the engine');
});
