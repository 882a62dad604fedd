/**
 * API.md "The engine unreachable": only a request that cannot reach the engine within
 * requestTimeoutMs gets its family's generic code. A healthy engine (a live redis-server) and a
 * hot file: many F_SETLK of disjoint ranges on one file at once, so many that the mailbox takes
 * longer than requestTimeoutMs (1,500 steps: several seconds, against 1 s; one step alone stays
 * well under it on a loaded machine, where 200 ms did not). Each
 * reaches the engine in its turn and is granted; none is answered -ENOLCK only because the file's
 * mailbox was long. LOCKSMITH_HOT_N / LOCKSMITH_HOT_TIMEOUT_MS change the load (measurements).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { F_SETLK, F_SETLKW, F_WRLCK } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Node, event } from './node-procs.js';

const setlk = (path: string, owner: number, start: number, cmd = F_SETLK) => ({ path, lockType: F_WRLCK, lockStart: start, lockLen: 1, cmd, lockOwner: owner, lockPid: owner });

t.test('a hot file on a healthy engine: every F_SETLK of a free range granted, however long the mailbox', { skip: noRedis }, async (t) => {
  const own = await RedisServer.start();
  t.teardown(() => own.stop());
  const n = Number(process.env.LOCKSMITH_HOT_N ?? 1500);
  const timeout = Number(process.env.LOCKSMITH_HOT_TIMEOUT_MS ?? 1000);
  // The session's lifetime is not what is tested: long enough that its renewals stay on time on a
  // loaded machine. A start is refused when the engine's first reply takes over requestTimeoutMs
  // (API.md), which a loaded machine can make happen: started again then, a few times.
  const store = { url: own.url, namespace: `n-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 5000, requestTimeoutMs: timeout };
  let a!: Node;
  for (let tries = 1; ; tries++) {
    const node = new Node(store);
    t.teardown(() => node.kill());
    try {
      await node.ready();
      a = node;
      break;
    } catch (e) {
      if (tries === 5 || !/cannot reach .* did not answer/.test(String(e))) throw e;
      await node.kill();
    }
  }
  // The new namespace's grace period (sessionTtlMs) ends: a blocking request granted after it.
  t.equal((await event(a.call('lock', setlk('/hot', 1, 1_000_000, F_SETLKW)), 'the first grant')).result, 0, 'first grant, after the grace period');
  const rounds: string[] = [];
  let failed = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    const codes: number[] = await event(
      Promise.all([...Array(n).keys()].map(async (i) => (await a.call('lock', setlk('/hot', 10 + round * n + i, round * n + i))).result as number)),
      `round ${round}'s answers`,
    );
    const bad = codes.filter((c) => c !== 0);
    failed += bad.length;
    rounds.push(`round ${round}: ${n} in ${Math.round(performance.now() - t0)} ms, ${bad.length} not granted (${[...new Set(bad)].join(',')})`);
  }
  t.comment(rounds.join('; '));
  t.equal(failed, 0, `every free range granted (requestTimeoutMs ${timeout}, ${n} at once, 3 rounds): ${rounds.join('; ')}`);
});
