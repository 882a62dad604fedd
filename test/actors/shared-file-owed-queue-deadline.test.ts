/**
 * With the engine gone, a file's owed step (the undo of a lock request answered as failed whose
 * step may have applied, sent again by itself: SharedFiles.retryOwed) holds the file's mailbox for
 * its whole try, requestTimeoutMs. A request that came meanwhile waited behind it, then had a whole
 * requestTimeoutMs of its own (its deadline ran from its turn): answered up to twice
 * requestTimeoutMs after it came, and three times behind two owed tries (each give-up scheduled the
 * next while one was still in the mailbox). Now a request that comes while the file's owed try is
 * in the mailbox has its deadline from when it came, and one owed try at a time is there.
 *
 * The link here is the engine gone as a worker's connection meets it (DirectLink over a client
 * whose reconnects fail): every step waits for its own deadline, then comes back 'unreachable'.
 * Nothing is timed: each request's answer is checked against the deadlines of the steps that went
 * out between its arrival and its answer (none may run past arrival + requestTimeoutMs, give or
 * take a turn of the event loop).
 */
import t from 'tap';
import { ERROR_LOCK_VIOLATION } from '../../src/core/codes.js';
import { BUDGET_MS, MemoryEngine, answered, lf, node, within, type S } from './lost-link.js';

const TIMEOUT_MS = 400;
/** How far past its due time a step's deadline may be and still count as the request's own (a step behind an owed try's was TIMEOUT_MS past it). */
const SLACK_MS = TIMEOUT_MS / 4;
const now = () => performance.timeOrigin + performance.now();

t.test('with the engine gone, a request queued behind an owed try is answered by its own deadline (requestTimeoutMs from when it came)', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', TIMEOUT_MS);
  t.teardown(() => a.store.close());
  // Owed tries at once: the tries of the outage follow each other with no pause.
  a.sf.owedDelay = () => 0;
  /** Every step that reached the link: whether it puts a record (a lock request's), and its deadline. */
  const sent: { put: boolean; deadline: number }[] = [];
  const listeners: (() => void)[] = [];
  a.policy = () => 'drop';
  a.afterDrop = async (s: S) => {
    sent.push({ put: (s.put?.length ?? 0) > 0, deadline: s.deadline! });
    for (const l of listeners.splice(0)) l();
    // The engine gone: the step waits in the client's queue until its deadline (DirectLink's byDeadline).
    while (now() < s.deadline!) await new Promise((r) => setTimeout(r, Math.max(1, s.deadline! - now())));
  };
  /** Resolves once a step of an owed try (it puts nothing) has gone out after the first `k` steps. */
  const owedOut = (k: number, what: string) =>
    within(
      new Promise<void>((resolve) => {
        const look = () => (sent.slice(k).some((x) => !x.put) ? resolve() : listeners.push(look));
        look();
      }),
      BUDGET_MS,
      what,
    );
  /** Request `id` (a LockFileEx of its own bytes of /a), made now: answered with 33, and no step that went out meanwhile runs past its deadline. */
  const request = async (id: number, what: string) => {
    const k = sent.length;
    a.sf.run(id, lf(id, id * 10, 10), a.target);
    // The request came before this (run hands it to the file's mailbox at once).
    const dueBy = now() + TIMEOUT_MS;
    t.equal(await answered(a, id, what), ERROR_LOCK_VIOLATION, `${what}: the generic code`);
    // Its own step's deadline may be a turn of the loop later than measured here: within SLACK_MS.
    const late = sent.slice(k).filter((x) => x.deadline > dueBy + SLACK_MS);
    t.same(late.map((x) => Math.round(x.deadline - dueBy)), [], `${what}: no step that went out before its answer runs past requestTimeoutMs after it came (ms past it)`);
  };
  // 1: its step gets no reply; it may have applied, so its undo is owed.
  await request(1, 'the first request');
  const k1 = sent.length;
  await owedOut(k1, 'the owed try after the first request');
  // 2: comes while the owed try waits for its step's deadline, half of it in (a pause to stage it,
  // not a check: it leaves the request time for a step of its own once its turn comes, and its
  // give-up then schedules the next owed try while the one that comes before that is still queued).
  await new Promise((r) => setTimeout(r, TIMEOUT_MS / 2));
  await request(2, 'a request behind the owed try');
  // 3: comes while the next owed try waits for its step's deadline: behind it alone, not behind a
  // third one queued meanwhile.
  await owedOut(sent.length, 'the next owed try');
  // A few turns of the loop: the owed try the last give-up scheduled (at once, owedDelay) is due
  // first (staged so, not checked).
  await new Promise((r) => setTimeout(r, 20));
  await request(3, 'a request behind the next owed try');
  // The engine back: the undos are sent and the file settles; a lock is granted.
  a.policy = () => 'pass';
  a.afterDrop = undefined;
  a.sf.run(9, lf(9, 90, 10), a.target);
  t.equal(await answered(a, 9, 'a request once the engine is back'), 0, 'granted once the engine is back');
  t.same(
    (await engine.load('/a')).records.map((r) => r.state),
    ['held'],
    'the engine holds only that lock: nothing answered as failed is held',
  );
  t.same(a.faults, [], 'nothing reported');
});
