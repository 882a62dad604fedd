/**
 * A waiter of this node that a step given up on ended (no reply came) is settled once a later
 * step commits (SharedFile.settleEnds): when two lost steps ended the same waiter, the later
 * one's answer is the one that can have applied; and a grant is never inferred from a record's
 * absence, since another node may have granted or failed that waiter (EDEADLK) with its inbox
 * event still on the way: the settling step leaves a mark in this node's inbox, and the waiter
 * is answered from whichever comes first, that event or the mark. Real SharedFiles over a
 * MemoryEngine; the link between them drops steps or loses their replies as each case chooses.
 * Every wait is for an answer or a step, within a budget.
 */
import t from 'tap';
import { EAGAIN, EDEADLK, ENOLCK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answersTo } from './reset-harness.js';
import { MemoryEngine, answered, lk, node, overflowLog, within, BUDGET_MS, type S } from './lost-link.js';

t.test('two lost steps ended the same waiter (a grant that never applied, then a timeout that did): the timeout is answered', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, 'p1 lock'), { result: 0 });
  a.sf.run(2, lk('p2', 2, F_RDLCK, F_SETLKW), a.target);
  await answered(a, -2, 'p2 queued');
  // p1 downgrades to read, which grants p2's read: a is cut off, the step never applies.
  a.policy = () => 'drop';
  a.sf.run(3, lk('p1', 1, F_RDLCK, F_SETLK), a.target);
  t.match(await answered(a, 3, 'p1 downgrade'), { result: -ENOLCK }, 'the downgrade is answered failed (no reply)');
  t.equal(a.got.has(2), false, 'p2 still waits');
  // p2's timeout: its cancel's step applies and its reply is lost; then b overruns the log.
  let cancelSeen = false;
  a.policy = (s: S) => {
    if (!cancelSeen && s.id === undefined && (s.remove?.length ?? 0) > 0 && (s.put?.length ?? 0) === 0) {
      cancelSeen = true;
      return 'lose';
    }
    return cancelSeen ? 'pass' : 'drop';
  };
  a.afterLose = async () => {
    a.policy = () => 'drop';
    await overflowLog(engine, b.store);
  };
  // Given up on, the file owes a step, which comes by itself as a new one (dropped while cut off).
  const gaveUp = new Promise<void>((r) => (a.afterDrop = async (s: S) => (cancelSeen && s.id === undefined ? r() : undefined)));
  a.sf.cancel(2, 'timeout');
  await within(gaveUp, BUDGET_MS, "the cancel given up on, and the owed step after it");
  // Its cancel's step got no reply: p2 is answered at once with the timeout's code, its
  // waiter's removal owed; what settles the two lost steps later tells it nothing more.
  t.equal(a.got.has(2), true, "p2 is answered at once (its cancel's step got no reply)");
  t.match(await answered(a, 2, "p2's F_SETLKW"), { result: -EAGAIN }, "p2 is answered with its timeout's code, not granted");
  const told = answersTo(a, 2);
  a.policy = () => 'pass';
  // a's next step commits (an unlock of bytes no one locked), settling what was lost.
  a.sf.run(4, lk('p9', 9, F_UNLCK, F_SETLK, 50, 10), a.target);
  t.match(await answered(a, 4, "p9's unlock of [50,60)"), { result: 0 });
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['a:held'], 'only p1 holds');
  t.same(told, [], 'p2 is told nothing more');
  t.same(a.faults, [], 'nothing reported');
});

for (const flood of [false, true]) {
  t.test(`a lost unlock granted a waiter that another node then failed with EDEADLK (log overrun: ${flood}): the event answers it, no grant is inferred`, async (t) => {
    const engine = new MemoryEngine();
    const a = await node(engine, 'a');
    const b = await node(engine, 'b');
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    // On /g: a's p2 holds, b's q1 waits for it. On /a: a's p1 holds read, p2 waits for write.
    a.sf.run(1, lk('p2', 2, F_WRLCK, F_SETLK, 0, 10, '/g'), a.target);
    t.match(await answered(a, 1, 'p2 on /g'), { result: 0 });
    b.sf.run(2, lk('q1', 1, F_WRLCK, F_SETLKW, 0, 10, '/g'), b.target);
    await answered(b, -2, 'q1 queued on /g');
    a.sf.run(3, lk('p1', 1, F_RDLCK, F_SETLK), a.target);
    t.match(await answered(a, 3, 'p1 read on /a'), { result: 0 });
    a.sf.run(4, lk('p2', 2, F_WRLCK, F_SETLKW), a.target);
    await answered(a, -4, 'p2 queued on /a');
    // a is cut off, its inbox held: p1's unlock (which grants p2) never applies.
    a.policy = () => 'drop';
    a.held = [];
    a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
    await answered(a, 5, "p1's unlock");
    // b's q1 takes read on /a: p2 -> q1 -> p2 is a cycle, so b fails p2 with EDEADLK.
    b.sf.run(6, lk('q1', 1, F_RDLCK, F_SETLK), b.target);
    t.match(await answered(b, 6, 'q1 read on /a'), { result: 0 });
    if (flood) await overflowLog(engine, b.store);
    a.policy = () => 'pass';
    // a's next step commits before the event: p2's record is gone, yet nothing says it was granted.
    a.sf.run(7, lk('p9', 9, F_WRLCK, F_SETLK, 50, 10), a.target);
    t.match(await answered(a, 7, 'p9 on [50,60)'), { result: 0 });
    t.equal(a.got.has(4), false, "p2 is not answered before its event");
    a.release();
    t.match(await answered(a, 4, "p2's F_SETLKW"), { result: -EDEADLK }, 'p2 fails with EDEADLK, as b decided, not granted');
  });
}

// The grant's record may be split by the owner's own requests before a's next step commits: no
// single record covers the waiter's bytes then, yet they are its. The grant's event comes before
// the settling step's mark and answers the request. This needs a cancel not answered at once (a
// cancel whose step gets no reply is answered at once, and a grant after it undone): p2 waits for
// [50,60) too (another thread's F_SETLKW), and a cancel whose waiter's owner has another waiter on
// the file keeps that rule (a grant of one could not be told from the other's).
for (const [name, call] of [
  ['a read over [0,5)', lk('p2', 2, F_RDLCK, F_SETLK, 0, 5)],
  ['an unlock of [4,5)', lk('p2', 2, F_UNLCK, F_SETLK, 4, 1)],
] as const) {
  t.test(`a lost cancel; another node grants the waiter; then its owner's ${name} splits that lock before the event: the request is answered granted`, async (t) => {
    const engine = new MemoryEngine();
    const a = await node(engine, 'a');
    const b = await node(engine, 'b');
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK), b.target);
    t.match(await answered(b, 1, "q1's lock"), { result: 0 });
    b.sf.run(5, lk('q1', 1, F_WRLCK, F_SETLK, 50, 10), b.target);
    t.match(await answered(b, 5, "q1's lock of [50,60)"), { result: 0 });
    a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW), a.target);
    await answered(a, -2, 'p2 queued');
    a.sf.run(6, lk('p2', 2, F_WRLCK, F_SETLKW, 50, 10), a.target);
    await answered(a, -6, "p2's other waiter, for [50,60), queued");
    // a is cut off, its inbox held: p2's timeout's cancel never applies.
    a.policy = () => 'drop';
    a.held = [];
    const gaveUp = new Promise<void>((r) => (a.afterDrop = async () => r()));
    a.sf.cancel(2, 'timeout');
    await within(gaveUp, BUDGET_MS, "the cancel's step dropped");
    // b's unlock grants p2 (the event held in a's inbox).
    b.sf.run(3, lk('q1', 1, F_UNLCK, F_SETLK), b.target);
    t.match(await answered(b, 3, "q1's unlock"), { result: 0 });
    // a is back, but the cancel's resends stay dropped; p2's own request (another thread) commits first.
    a.policy = (s: S) => ((s.put?.length ?? 0) === 0 && (s.remove?.length ?? 0) > 0 && s.id !== undefined ? 'drop' : 'pass');
    // After the cancel's tries (until its deadline): a read queued behind them is answered with
    // the generic code if still queued requestTimeoutMs after it came.
    await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "the cancel's tries");
    a.sf.run(4, call, a.target);
    t.match(await answered(a, 4, `p2's ${name}`), { result: 0 });
    t.equal(a.got.has(2), false, "p2's F_SETLKW is not answered before its grant's event");
    a.release();
    t.match(await answered(a, 2, "p2's F_SETLKW"), { result: 0 }, 'granted, as b decided: p2 holds those bytes');
    // q1 releases [50,60): p2's other waiter is granted.
    b.sf.run(7, lk('q1', 1, F_UNLCK, F_SETLK, 50, 10), b.target);
    t.match(await answered(b, 7, "q1's unlock of [50,60)"), { result: 0 });
    t.match(await answered(a, 6, "p2's F_SETLKW for [50,60)"), { result: 0 }, "p2's other waiter is granted");
    t.same(a.faults, [], 'nothing reported (a)');
    t.same(b.faults, [], 'nothing reported (b)');
  });
}
