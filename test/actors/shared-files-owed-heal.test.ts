/**
 * An owed release waits out a backoff (SharedFiles.retryOwed: 100 ms, doubling up to 5 s) while
 * its node cannot reach the engine, and the engine keeps the lock meanwhile: another node's waiter
 * stays blocked by a lock its owner was told is gone. Once the node knows the engine answers again
 * (a step of another file got its reply, or a renewal came, late or not), the owed try runs at once, not
 * at the end of the wait its failed tries grew to; while the engine keeps not answering the tries
 * back off, and a heal cuts a wait short once. The backoff is the node's owedDelay: here it gives
 * the real delays' tries at once, and a wait that never runs out from the first multi-second one,
 * so a try after that came from the heal, not from a timer. Real SharedFiles over a MemoryEngine,
 * behind the lost-link harness; every wait is for an answer or an event, within the harness's
 * budget.
 */
import t, { type Test } from 'tap';
import { ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, lk, type S, type TestNode } from './lost-link.js';
import { held, until } from './reset-harness.js';
import { holds, owedCutOff, stage, twoNodes, waits } from './stages.js';

/** The longest wait a timer takes: it never runs out in a test. */
const NEVER = 2 ** 31 - 1;
/** The backoff's first multi-second wait (its sixth): from it on, a's waits never run out. */
const BACKED_OFF_MS = 3200;

/**
 * p1 (node a) holds /a [0,10); q2 (node b, request 1) waits for it. a is cut off and p1's unlock
 * is owed; its tries fail until the backoff reaches BACKED_OFF_MS, a wait that never runs out.
 * `cut` says which of a's steps are dropped from the unlock's answer on (all by default; it may
 * also act on a). Returns the nodes and the real delays a's owed tries asked for, in order.
 */
async function backedOff(t: Test, cut: (s: S, a: TestNode) => boolean = () => true): Promise<{ a: TestNode; b: TestNode; asked: number[] }> {
  const { engine, a, b } = await twoNodes(t);
  const asked: number[] = [];
  const real = a.sf.owedDelay;
  a.sf.owedDelay = (tries) => {
    const ms = real(tries);
    asked.push(ms);
    return ms >= BACKED_OFF_MS ? NEVER : 1;
  };
  const waiter = waits(b, 1, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10), "q2's waiter for [0,10) queued");
  await stage(t, holds(a, 1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), "p1's lock of [0,10)", 'p1 holds [0,10)'), waiter);
  await owedCutOff(a, 2, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)");
  a.policy = (s) => (cut(s, a) ? 'drop' : 'pass');
  await until(() => asked.includes(BACKED_OFF_MS), `a's owed tries backing off to a ${BACKED_OFF_MS} ms wait`);
  t.same(asked, [100, 200, 400, 800, 1600, 3200], 'the tries backed off, one wait per failed try');
  t.same(await held(engine), ['a held write p1 0-9', 'b waiting write q2 0-9'], "the engine still has p1's lock: q2 waits");
  t.notOk(b.got.has(1), 'q2 is not answered');
  return { a, b, asked };
}

/** Asserts that b's q2 (request 1) is granted: a's owed unlock committed. */
async function q2Granted(t: Test, b: TestNode, what: string): Promise<void> {
  t.match(await answered(b, 1, `q2's waiter, granted once a's owed unlock commits (${what})`), { result: 0 }, `q2 granted: ${what}`);
}

t.test("an answer to a step of another file, after the owed try failed: the owed unlock runs at once, and q2 is granted", async (t) => {
  const { a, b, asked } = await backedOff(t);
  a.policy = () => 'pass';
  a.sf.run(3, lk('p3', 3, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  t.match(await answered(a, 3, "p3's lock of /c"), { result: 0 }, "a's step on /c commits: the engine answers again");
  await q2Granted(t, b, 'the heal cut the never-ending wait short');
  t.same(asked, [100, 200, 400, 800, 1600, 3200], 'no wait asked since: the owed try that ran committed');
  t.same(a.faults, [], 'nothing reported');
});

t.test("a's late renewal comes (the lease moves on): the owed unlock runs at once, and q2 is granted", async (t) => {
  const { a, b, asked } = await backedOff(t, (_, a) => {
    // Late: the renewal did not come in time; the session lives (its steps are cut off here).
    a.lease[0] = performance.timeOrigin + performance.now() - 1;
    return true;
  });
  t.ok(a.sf.late(), 'a is late');
  a.policy = () => 'pass';
  a.lease[0] = Number.POSITIVE_INFINITY;
  await q2Granted(t, b, 'the renewal cut the never-ending wait short');
  t.same(asked, [100, 200, 400, 800, 1600, 3200], 'no wait asked since: the owed try that ran committed');
  t.same(a.faults, [], 'nothing reported');
});

t.test("a quiet node that was never late: its renewal comes again (the lease moves on) and the owed unlock runs at once, and q2 is granted", async (t) => {
  // A real node's lease: its last answered renewal plus its fence, ahead of now while it renews.
  // An outage shorter than the fence never makes it late, and no other step of a's is sent.
  const ahead = (): number => performance.timeOrigin + performance.now() + 3_600_000;
  const { a, b, asked } = await backedOff(t, (_, a) => {
    a.lease[0] = ahead();
    return true;
  });
  t.notOk(a.sf.late(), 'a was never late');
  a.policy = () => 'pass';
  // The renewal the engine answered after the owed try failed: the lease moves on.
  a.lease[0] = ahead() + 1000;
  await q2Granted(t, b, 'the renewal cut the never-ending wait short');
  t.same(asked, [100, 200, 400, 800, 1600, 3200], 'no wait asked since: the owed try that ran committed');
  t.same(a.faults, [], 'nothing reported');
});

t.test("answers to steps of another file while the owed file's steps keep failing: one try per wait that ran out, the backoff goes on", async (t) => {
  const onA = (s: S) => s.file === '/a';
  const { a, b, asked } = await backedOff(t, onA);
  // Another file's steps are answered: the first after the owed try failed cuts its wait short.
  a.sf.run(3, lk('p3', 3, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  t.match(await answered(a, 3, "p3's lock of /c"), { result: 0 }, "a's step on /c commits");
  await until(() => asked.length === 7, "the owed try the answer cut short fails, and asks for its next wait");
  t.same(asked, [100, 200, 400, 800, 1600, 3200, 5000], 'the backoff went on from where it was (not reset by the cut-short try)');
  // More answers: the wait was cut short once since the last one that ran out; no try now.
  a.sf.run(4, lk('p3', 3, F_UNLCK, F_SETLK, 0, 10, '/c'), a.target);
  t.match(await answered(a, 4, "p3's unlock of /c"), { result: 0 }, "a's next step on /c commits");
  a.sf.run(5, lk('p3', 3, F_WRLCK, F_SETLK, 0, 10, '/c'), a.target);
  t.match(await answered(a, 5, "p3's second lock of /c"), { result: 0 }, "and the next");
  // A request on /a after them: a try the answers started would be ahead of it in /a's mailbox,
  // and would ask for a wait when it failed, before this request's step goes out.
  a.sf.run(6, lk('p9', 9, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 6, "p9's lock of /a [100,110) (cut off: failed)"), { result: -ENOLCK }, "p9's lock fails: a cannot reach /a");
  t.same(asked.length, 7, "no owed try ran between the answers and p9's request");
  t.notOk(b.got.has(1), 'q2 still waits (a cannot reach /a)');
  // /a reachable again: the next answered step on /c after p9's failed one does not cut the
  // owed wait short (it was, since the last that ran out), but p9's own next request carries it.
  a.policy = () => 'pass';
  a.sf.run(7, lk('p9', 9, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 7, "p9's lock of /a [100,110)"), { result: 0 }, "p9's step carries the owed unlock");
  await q2Granted(t, b, "carried by a's next step on /a");
  t.same(a.faults, [], 'nothing reported');
});
