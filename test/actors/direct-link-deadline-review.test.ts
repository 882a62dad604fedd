/**
 * Review of DirectLink's deadline (1bce9a9), against a real redis-server this file starts: a
 * commit answered 'unreachable' because its step's deadline passed is answered no earlier than
 * that deadline. The file's actor (SharedFile.decide) sends the same step again while
 * `performance.now() < sendBy` (the step's deadline): a reply that comes a fraction of a
 * millisecond early (a timer of Math.ceil(ms) can fire up to a millisecond before the clock reads
 * the deadline) makes it send a try past the deadline, which byDeadline no longer races (its
 * deadline is past) and which then waits for the client's own command timeout, requestTimeoutMs:
 * the request is answered about twice requestTimeoutMs after it came, as before the change. Many
 * commits with short deadlines, each waited for (an event), and the time each was answered at
 * compared with its deadline.
 */
import t from 'tap';
import { DirectLink } from '../../src/actors/direct-link.js';
import { resolveOptions } from '../../src/store/options.js';
import { RedisEngine } from '../../src/store/redis.js';
import { EVENT_BUDGET_MS, RedisServer, noRedis, within } from '../store/redis-server.js';

t.test("a commit answered 'unreachable' at its step's deadline is answered no earlier than that deadline", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const lease = new Float64Array([Number.MAX_SAFE_INTEGER, 1, 0]);
  const link = new DirectLink({ url: server.url, namespace: 'dlr', node: 'a', requestTimeoutMs: 2 * EVENT_BUDGET_MS }, 'a', lease, 1, 'no-such-incarnation', 'w0-', () => {});
  t.teardown(() => link.close());
  const first = await within(link.commit({ file: '/f', base: 0 }), EVENT_BUDGET_MS, 'the reply to a commit while the engine answers');
  t.equal(first.ok, false, 'the first commit is answered (the link is open)');
  server.pause();
  const early: string[] = [];
  let unreachable = 0;
  try {
    // Sequential, each a few ms: the timer's rounding shows in about 1 in 100 (400 give it a
    // chance of about 98%).
    for (let i = 0; i < 400; i++) {
      const deadline = performance.timeOrigin + performance.now() + 2 + Math.random() * 3;
      const reply = await within(link.commit({ file: `/f${i}`, base: 0, deadline }), EVENT_BUDGET_MS, `the reply to commit ${i}, at its step's deadline`);
      const at = performance.timeOrigin + performance.now();
      if (!reply.ok && reply.reason === 'unreachable') unreachable++;
      if (at < deadline) early.push(`#${i} ${(deadline - at).toFixed(3)} ms early`);
    }
  } finally {
    server.resume();
  }
  t.equal(unreachable, 400, "every commit 'unreachable' (the engine paused)");
  t.same(early, [], 'none answered before its deadline (the actor would send it again past the deadline)');
});

t.test("a commit answered 'unreachable' at its deadline leaves its command pending: its late reply is never taken for the next commit's", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const opts = { url: server.url, namespace: 'dlq', node: 'a', requestTimeoutMs: 2 * EVENT_BUDGET_MS };
  const engine = await within(RedisEngine.connect(resolveOptions(opts)), EVENT_BUDGET_MS, 'a connection of the session');
  t.teardown(() => engine.shutdown());
  const o = await within(engine.open('a', 60_000, 0), EVENT_BUDGET_MS, "a's session");
  if (!('epoch' in o)) throw new Error('the session was taken');
  const lease = new Float64Array([Number.MAX_SAFE_INTEGER, o.epoch, 0]);
  const link = new DirectLink(opts, 'a', lease, o.epoch, o.incarnation, 'w0-', () => {});
  t.teardown(() => link.close());
  const first = await within(link.commit({ file: '/q', base: 0 }), EVENT_BUDGET_MS, 'the reply to a commit while the engine answers');
  t.equal(first.ok, true, 'an empty step at version 0 commits (the link is open)');
  server.pause();
  let second: Awaited<ReturnType<DirectLink['commit']>>;
  let late: string;
  try {
    const r = await within(link.commit({ file: '/q', base: 0, deadline: performance.timeOrigin + performance.now() + 100 }), EVENT_BUDGET_MS, "the reply at the step's deadline");
    t.equal(r.ok ? 'ok' : r.reason, 'unreachable', "no reply by the deadline: 'unreachable'");
    late = !r.ok && r.reason === 'unreachable' ? (r.step ?? '') : '';
    // The next commit goes out behind the first, still pending on the same connection.
    const next = link.commit({ file: '/q', base: 0 });
    server.resume();
    second = await within(next, EVENT_BUDGET_MS, 'the reply to the next commit once the engine answers again');
  } finally {
    server.resume();
  }
  t.equal(second.ok, true, 'the next commit commits');
  t.not(second.ok ? second.step : '', late, "its reply names its own step, not the first one's");
  t.match(second.ok ? second.step : '', /^w0-s/, 'a step of this link');
});

t.test("a commit whose deadline passes while it is being sent (this thread paused between the check and the send) is answered 'unreachable' at once, not after a command timeout", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const lease = new Float64Array([Number.MAX_SAFE_INTEGER, 1, 0]);
  const link = new DirectLink({ url: server.url, namespace: 'dlp', node: 'a', requestTimeoutMs: 2 * EVENT_BUDGET_MS }, 'a', lease, 1, 'no-such-incarnation', 'w0-', () => {});
  t.teardown(() => link.close());
  await within(link.commit({ file: '/f', base: 0 }), EVENT_BUDGET_MS, 'the reply to a commit while the engine answers');
  // The pause: the link's connection is asked for (synchronously, inside the send) only once the
  // step's deadline has passed, as when the thread is preempted or collects garbage right there.
  const l = link as unknown as { connect: () => Promise<unknown> };
  const connect = l.connect.bind(link);
  let deadline = 0;
  l.connect = () => {
    while (performance.timeOrigin + performance.now() <= deadline);
    return connect();
  };
  server.pause();
  try {
    deadline = performance.timeOrigin + performance.now() + 5;
    const reply = await within(link.commit({ file: '/g', base: 0, deadline }), EVENT_BUDGET_MS, "the reply to a commit whose deadline passed while it was sent");
    t.equal(reply.ok ? 'ok' : reply.reason, 'unreachable', "'unreachable', as at its deadline (it may still apply)");
  } finally {
    server.resume();
  }
});
