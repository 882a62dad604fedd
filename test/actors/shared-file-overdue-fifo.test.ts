/**
 * 'fifo' and a request parked for a late session ('overdue'): it has no waiter in the engine while
 * parked, so a later request for the same bytes (of its own node here) queues first and is
 * granted first. Shown as it stands (todo): SharedFiles.parkedAhead lets every later request pass
 * an overdue-parked one by design, so that it holds nothing up. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness; every wait is for an answer, an engine record or a
 * counter, within the harness's budget.
 */
import t from 'tap';
import { EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseRelease } from '../../src/core/requests.js';
import { lateAfterMs } from '../../src/store/options.js';
import type { Renewed, SessionRef } from '../../src/store/types.js';
import { BUDGET_MS, MemoryEngine, answered, lk, node, within } from './lost-link.js';
import { until } from './reset-harness.js';

class CutEngine extends MemoryEngine {
  readonly cut = new Set<string>();
  override renewSync(s: SessionRef, ttlMs: number, inboxAck: string): Renewed {
    if (this.cut.has(s.node)) throw new Error(`${s.node} is cut off`);
    return super.renewSync(s, ttlMs, inboxAck);
  }
}

async function lateIs(engine: MemoryEngine, name: string, late: boolean): Promise<void> {
  let over = false;
  const check = async () => {
    const read = await engine.sessions();
    const s = read.sessions.find((x) => x.node === name && x.ttlMs !== undefined);
    return s !== undefined && s.ttlMs !== undefined && s.deadline > read.now && s.ttlMs - (s.deadline - read.now) > lateAfterMs(s.ttlMs);
  };
  await within(
    (async () => {
      while (!over && (await check()) !== late) await new Promise((r) => setTimeout(r, 20));
    })(),
    BUDGET_MS,
    `${name}'s session ${late ? 'late' : 'renewed'} on the engine`,
  ).finally(() => (over = true));
}

t.test("'fifo': a request parked for a late session is granted before a later request of its node for the same bytes", { todo: 'by design for now: an overdue-parked request keeps no place in the queue' }, async (t) => {
  const engine = new CutEngine();
  const a = await node(engine, 'a', 'fifo');
  const b = await node(engine, 'b', 'fifo');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10, '/a'), b.target);
  t.match(await answered(b, 1, "q2's write of /a"), { result: 0 });
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10, '/b'), a.target);
  t.match(await answered(a, 1, "p1's write of /b"), { result: 0 });
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10, '/a'), a.target);
  await answered(a, -2, "p1's waiter for /a queued");
  a.policy = () => 'drop';
  a.sf.run(3, parseRelease({ path: '/a', fileHandle: 1 }), a.target);
  await answered(a, 3, "p1's close of /a (owed)");
  t.match(a.got.get(2), { result: -EINTR });
  engine.cut.add('a');
  await lateIs(engine, 'a', true);
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await until(() => b.sf.parkedOverdue > 0 || b.got.has(2), "q2's write of /b parked, or answered");
  b.sf.run(3, lk('q5', 5, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -3, "q5's write of /b queued (behind p1's lock)");
  engine.cut.delete('a');
  a.policy = () => 'pass';
  a.store.nudge();
  await lateIs(engine, 'a', false);
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  await answered(a, 4, "a's step on /c (its owed close commits with it)");
  await answered(b, -2, "q2's write of /b queued once p1's ended waiter's edge went");
  a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10, '/b'), a.target);
  const first = await within(Promise.race([b.answer(2).then(() => 'q2'), b.answer(3).then(() => 'q5')]), BUDGET_MS, 'the first of q2 and q5 granted');
  t.equal(first, 'q2', 'q2, which asked first, is granted first');
});
