/**
 * Review of three changes of the shared lock space (98b93f9 stop() answers waiters at once,
 * a96d33c the unanswered 'fifo' reach question, 1bce9a9 a commit ends at its step's deadline),
 * from a user's side: nodes in their own processes (node-child.ts, real worker threads) over a
 * real redis-server this file starts. Every wait is for an event within HANG_MS; durations are
 * measured and compared with requestTimeoutMs and half of it as slack, as the neighbours do.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { EINTR, ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Node, type Reply, event, until } from './node-procs.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const SHORT_MS = 1000;
const W = F_WRLCK;
const setlk = (path: string, owner: number, pid: number, start: number, len: number, cmd = F_SETLK, lockType = W) => ({ path, lockType, lockStart: start, lockLen: len, cmd, lockOwner: owner, lockPid: pid });

function cluster(t: Test, names: string[], ttl: number, extra: Record<string, unknown>, policy?: 'default' | 'fifo'): Node[] {
  const namespace = `n-${randomUUID().slice(0, 8)}`;
  const nodes = names.map((node) => new Node({ url: server.url, namespace, node, sessionTtlMs: ttl, ...extra }, policy));
  for (const n of nodes) t.teardown(() => n.kill());
  return nodes;
}

t.test("'fifo' with the engine not answering: a request beside waiters gets its generic code within requestTimeoutMs, not after the reach question's timeout and then its own", { skip: noRedis }, async (t) => {
  // askReach waits for DirectLink.fileReach, which no deadline ends: the client's command timeout
  // (requestTimeoutMs). The commit that follows finds the request's deadline past and sends its
  // step until requestTimeoutMs from then (SharedFile.decide: sendBy): about twice
  // requestTimeoutMs in all. a96d33c only stopped reporting the first timeout as a fault.
  const [a, b] = cluster(t, ['a', 'b'], 8000, { requestTimeoutMs: SHORT_MS }, 'fifo');
  await Promise.all([a!.ready(), b!.ready()]);
  t.equal((await a!.call('lock', setlk('/f', 1, 1, 0, 10))).result, 0, 'a holds /f (once the grace period is over)');
  const waiters = [b!.call('lock', setlk('/f', 2, 2, 0, 10, F_SETLKW)), b!.call('lock', setlk('/f', 3, 3, 0, 10, F_SETLKW))];
  await until(() => b!.call('stats'), (s: Reply) => s.waiting === 2, "b's two waiters, queued");
  server.pause();
  let took: number;
  try {
    const t0 = performance.now();
    t.equal((await event(b!.call('lock', setlk('/f', 4, 4, 20, 10)), 'an answer to an F_SETLK on /f')).result, -ENOLCK, 'an F_SETLK beside the waiters: -ENOLCK');
    took = performance.now() - t0;
  } finally {
    server.resume();
  }
  t.ok(took < SHORT_MS * 1.5, `answered within requestTimeoutMs (${SHORT_MS} ms) and its slack: ${Math.round(took)} ms`);
  t.equal((await a!.call('lock', setlk('/f', 1, 1, 0, 10, F_SETLK, F_UNLCK))).result, 0, 'a unlocks');
  t.equal((await event(waiters[0]!, "b's first waiter")).result, 0, "b's first waiter is granted once the engine answers again");
});

t.test("stop() racing another node's grant of its waiter: the waiter is answered once, and the stopped node holds nothing once stop() resolved", { skip: noRedis }, async (t) => {
  // 98b93f9: stop() answers the waiter 995 at once, whatever the engine did meanwhile (a's
  // unlock may have granted it already). The grant must then be released by stop's own steps
  // (stopAll), not left to the session's end.
  for (let round = 0; round < 4; round++) {
    const [a, b] = cluster(t, ['a', 'b'], 4000, { requestTimeoutMs: 5000 });
    await Promise.all([a!.ready(), b!.ready()]);
    await until(() => a!.call('lock', setlk('/g', 1, 1, 0, 10)), (r: Reply) => r.result === 0, 'a holds /g (once the grace period is over)');
    const waiter = b!.call('lock', setlk('/g', 2, 2, 0, 10, F_SETLKW));
    await until(() => b!.call('stats'), (s: Reply) => s.waiting === 1, "b's waiter, queued");
    // Sent together: a's unlock may grant b's waiter in the engine before or after b's stop()
    // reaches its worker, and b may read the grant's inbox event before or after that.
    const unlock = a!.call('lock', setlk('/g', 1, 1, 0, 10, F_SETLK, F_UNLCK));
    const stopped = b!.call('stop');
    t.equal((await event(unlock, "a's unlock")).result, 0, `round ${round}: a unlocks`);
    const r = (await event(waiter, "the answer to b's waiter")).result;
    t.ok(r === 0 || r === -EINTR, `round ${round}: b's waiter answered ${r} (granted, or ended by the stop)`);
    await event(stopped, "b's stop()");
    const listed: Reply[] = await a!.call('locks', '/g');
    t.same(
      listed.filter((e) => e.node === 'b'),
      [],
      `round ${round}: nothing of b listed on /g once its stop() resolved (${JSON.stringify(listed, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))})`,
    );
    t.equal((await a!.call('lock', setlk('/g', 3, 3, 0, 10))).result, 0, `round ${round}: another owner of a takes /g at once`);
    await a!.kill();
    await b!.kill();
  }
});

t.test('stop() with the engine paused, then the process gone: once the engine answers again, its locks go when its session expires, as a crashed node\'s (API.md)', { skip: noRedis }, async (t) => {
  // API.md said at first that a resumed engine runs the releases stop() sent, even after the
  // process exited: the releases carry their step's deadline and a resumed engine refuses them past
  // it ('late'), so the locks go with the session, within sessionTtlMs plus one second of its last
  // renewal (before the pause). sessionTtlMs 15 s: far past the pause (about 1 s plus
  // requestTimeoutMs), and the first grant waits out a new namespace's grace period of as long.
  const [a, b] = cluster(t, ['a', 'b'], 15_000, { requestTimeoutMs: SHORT_MS });
  await Promise.all([a!.ready(), b!.ready()]);
  await until(() => a!.call('lock', setlk('/d', 1, 1, 0, 10)), (r: Reply) => r.result === 0, 'a holds /d (once the grace period is over)');
  t.equal((await b!.call('lock', setlk('/d', 2, 2, 0, 10))).result !== 0, true, 'b is refused /d while a holds it');
  server.pause();
  try {
    await event(a!.call('stop'), "a's stop() with the engine paused");
    await a!.kill();
  } finally {
    server.resume();
  }
  const t0 = performance.now();
  await until(() => b!.call('lock', setlk('/d', 2, 2, 0, 10)), (r: Reply) => r.result === 0, 'b granted /d');
  const took = performance.now() - t0;
  // The pause lasted at least requestTimeoutMs: a's last renewal was before it.
  t.ok(took < 15_000 + 1_000, `b granted /d ${Math.round(took)} ms after the engine resumed: within a's sessionTtlMs plus a second`);
});
