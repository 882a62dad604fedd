/**
 * Requests answered from outside the mailbox at their deadline (SharedFiles.attempt) meet the other
 * ways a queued request ends: a stop, a cancel, and the engine answering again at their turn. Each
 * is answered exactly once, and one answered so leaves nothing: no waiter counted, nothing in the
 * engine; an unlock of the same owner ahead of it still runs, in order.
 */
import t from 'tap';
import { EINTR, ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, MemoryEngine, answered, countAnswers, lk, node, within } from './lost-link.js';

const TIMEOUT = 300;

const code = (r: unknown) => (typeof r === 'number' ? r : (r as { result: number }).result);

t.test('a stop while a waiter is queued behind a step that gets no reply: answered once', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', TIMEOUT);
  t.teardown(() => a.store.close());
  const counts = countAnswers(a);
  a.policy = () => 'drop';
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW, 0, 10), a.target);
  const stopped = a.sf.stop();
  const r2 = await answered(a, 2, 'the queued waiter');
  await within(stopped, BUDGET_MS, 'the stop');
  // Past the queued waiter's deadline, where its timer would fire again.
  await new Promise((r) => setTimeout(r, TIMEOUT * 2));
  t.equal(counts.get(2), 1, `the waiter answered once (${code(r2)})`);
  t.equal(counts.get(1), 1, 'the head request answered once');
  t.ok([-ENOLCK, -EINTR].includes(code(r2)), 'with the generic code or the stop code');
});

t.test('a cancel of a waiter queued behind a step that gets no reply: answered once with its cancel code', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', TIMEOUT);
  t.teardown(() => a.store.close());
  const counts = countAnswers(a);
  a.policy = () => 'drop';
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW, 0, 10), a.target);
  a.sf.cancel(2, 'abort');
  t.equal(code(await answered(a, 2, 'the cancelled waiter')), -EINTR, 'the cancel code');
  a.policy = () => 'pass';
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  t.equal(counts.get(2), 1, 'answered once');
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), [], 'nothing of a in the engine');
});

t.test('a waiter answered at its deadline while queued, its turn when the engine answers again: nothing sent, nothing held, no waiter', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', TIMEOUT);
  const b = await node(engine, 'b', 'default', TIMEOUT);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  const counts = countAnswers(a);
  a.policy = () => 'drop';
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW, 20, 10), a.target);
  // The head's step: its tries end at its deadline, which the waiter's (it came in the same turn) matches.
  t.equal(code(await answered(a, 2, 'the queued waiter')), -ENOLCK, 'the generic code');
  a.policy = () => 'pass';
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  t.equal(counts.get(2), 1, 'answered once');
  t.equal(a.sf.counts().waiters, 0, 'no waiter counted');
  t.notOk(a.log.some((l) => !l.includes('"put":[]') && l.endsWith('-> ok')), `no lock request applied once the engine answered: ${a.log.join(' | ')}`);
  t.same((await engine.load('/a')).records.filter((r) => r.node === 'a').length, 0, 'nothing of a in the engine');
  b.sf.run(10, lk('q1', 1, F_WRLCK, F_SETLK, 0, 40), b.target);
  t.equal(code(await answered(b, 10, "b's lock")), 0, 'b takes the range');
});

t.test("an F_SETLK queued behind its own owner's unlock with the engine gone: both answered -ENOLCK, the unlock applied after, the lock never held", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', TIMEOUT);
  const b = await node(engine, 'b', 'default', TIMEOUT);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  const counts = countAnswers(a);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.equal(code(await answered(a, 1, 'the first lock')), 0, 'held');
  a.policy = () => 'drop';
  const order: number[] = [];
  const answer = a.target.answer.bind(a.target);
  a.target.answer = (id, ...rest) => {
    order.push(id);
    answer(id, ...rest);
  };
  a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  a.sf.run(3, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  const r2 = code(await answered(a, 2, 'the unlock'));
  const r3 = code(await answered(a, 3, 'the lock behind it'));
  // API.md: a release that could not be written gets the generic code, and is written by the file's next step.
  t.equal(r2, -ENOLCK, 'the unlock: the generic code (owed)');
  t.equal(r3, -ENOLCK, 'the lock: the generic code');
  a.policy = () => 'pass';
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  // The owed unlock goes with the file's next step (or its owed try).
  a.sf.run(4, lk('p9', 9, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.equal(code(await answered(a, 4, 'a step after')), 0, 'a later step');
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  t.same((await engine.load('/a')).records.filter((r) => r.node === 'a' && r.start < 10).length, 0, 'nothing of a in [0,10) in the engine');
  t.equal(counts.get(2), 1, 'unlock answered once');
  t.equal(counts.get(3), 1, 'lock answered once');
  t.comment(`answer order: ${order.join(',')}`);
  b.sf.run(10, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 10, "b's lock")), 0, 'b takes [0,10)');
});
