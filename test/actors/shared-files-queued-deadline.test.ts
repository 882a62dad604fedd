/**
 * API.md "The engine unreachable": a new request that cannot reach the engine within
 * requestTimeoutMs completes with its family's generic code. Requests that never wait (F_SETLK,
 * LockFileEx with failImmediately, F_GETLK), several on one file at once while the node is cut
 * off from the engine: each is answered within requestTimeoutMs of its arrival, also while it is
 * still queued behind the others in the file's mailbox (before: the k-th about k x
 * requestTimeoutMs after it came). One answered so, before its turn, sends nothing at its turn:
 * once the engine answers again, none of them holds anything.
 */
import t from 'tap';
import { ENOLCK, ERROR_LOCK_VIOLATION, F_GETLK, F_SETLK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, MemoryEngine, answered, lf, lk, node, within } from './lost-link.js';

t.test('requests that never wait, queued on one file while the engine is unreachable: each answered with the generic code within requestTimeoutMs of its arrival, and none holds anything after', async (t) => {
  const timeout = 300;
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', timeout);
  const b = await node(engine, 'b', 'default', timeout);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  // a is cut off: every step of it is dropped (no reply, nothing applied).
  a.policy = () => 'drop';
  const calls = [lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), lf(2, 10, 10), lk('p3', 3, F_WRLCK, F_SETLK, 20, 10), lf(4, 30, 10), lk('p5', 5, F_WRLCK, F_GETLK, 0, 40)];
  const took: number[] = [];
  const results = await Promise.all(
    calls.map(async (call, i) => {
      const t0 = performance.now();
      a.sf.run(i + 1, call, a.target);
      const r = await answered(a, i + 1, `request ${i + 1}`);
      took.push(Math.round(performance.now() - t0));
      return typeof r === 'number' ? r : (r as { result: number }).result;
    }),
  );
  t.same(results, [-ENOLCK, ERROR_LOCK_VIOLATION, -ENOLCK, ERROR_LOCK_VIOLATION, -ENOLCK], 'the generic codes');
  // Budget: requestTimeoutMs and half of it from each request's own arrival, the half for a
  // loaded machine (timers and the first request's tries every 20 ms).
  t.ok(took.every((ms) => ms < timeout * 1.5), `each answered within requestTimeoutMs (${timeout} ms) of its arrival, and its slack: ${took.join(', ')} ms`);
  // The engine answers again: once a's mailbox ran what was queued, nothing of a is in the file,
  // and b takes every byte the requests asked for.
  a.policy = () => 'pass';
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), [], 'nothing of a in the engine');
  b.sf.run(10, lk('q1', 1, F_WRLCK, F_SETLK, 0, 40), b.target);
  t.match(await answered(b, 10, "b's lock of [0,40)"), { result: 0 }, 'b locks [0,40): none of the answered requests holds any of it');
  t.same(a.faults, [], 'nothing reported (a)');
});
