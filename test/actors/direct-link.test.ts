/**
 * A worker's own link to the engine (DirectLink) against a real redis-server this file starts:
 * a commit with no reply by its step's deadline (Step.deadline) is answered 'unreachable' then,
 * with its step id, as a lost reply is, not a whole command timeout (requestTimeoutMs) after it
 * was sent. Every wait is for an answer, within a budget.
 */
import t from 'tap';
import { DirectLink } from '../../src/actors/direct-link.js';
import { EVENT_BUDGET_MS, RedisServer, noRedis, within } from '../store/redis-server.js';

t.test("a commit the engine does not answer is 'unreachable' at its step's deadline, with its id", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  // requestTimeoutMs far past the budget: only the step's deadline can end the commit within it.
  const requestTimeoutMs = 2 * EVENT_BUDGET_MS;
  const lease = new Float64Array([Number.MAX_SAFE_INTEGER, 1, 0]);
  const link = new DirectLink({ url: server.url, namespace: 'dl', node: 'a', requestTimeoutMs }, 'a', lease, 1, 'no-such-incarnation', 'w0-', () => {});
  // Before the server stops (teardowns run last first): its client would reconnect for ever, and the file never end.
  t.teardown(() => link.close());
  // A first commit opens the link's connection (the engine answers it: not this incarnation).
  const first = await within(link.commit({ file: '/f', base: 0 }), EVENT_BUDGET_MS, 'the reply to a commit while the engine answers');
  t.equal(first.ok, false, `the first commit is answered (${first.ok ? 'ok' : first.reason})`);
  server.pause();
  try {
    const reply = await within(
      link.commit({ file: '/f', base: 0, deadline: performance.timeOrigin + performance.now() + 200 }),
      EVENT_BUDGET_MS,
      "the reply to a commit the engine does not answer, at its step's deadline (200 ms)",
    );
    t.same(reply.ok ? 'ok' : reply.reason, 'unreachable', "no reply by the deadline: 'unreachable'");
    t.match(!reply.ok && reply.reason === 'unreachable' ? reply.step : '', /^w0-s/, 'with the step id it was sent with (it may still apply)');
  } finally {
    server.resume();
  }
});
