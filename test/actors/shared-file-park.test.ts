/**
 * Requests of one node that wait out a grace period (after the engine lost its data) run again
 * in the order they came, once it ends, and a close of their handle ends them until that run
 * starts. A request that would grant and comes after them waits behind them, unsent, also when
 * it comes once the period ended by the engine's count but before this node ran them again (the
 * few ms of its margin): before, it was sent, granted, and passed them. A close queued in the
 * file's mailbox before their timer fired ends them too: before, the timer took them off the
 * list the close looks in, and the request was granted to a closed handle. Real SharedFiles over
 * a MemoryEngine whose clock the test moves; the parked requests run again on this node's own
 * timer. And stop() answers each parked request with a result of its kind. Every wait is for an
 * answer, a reply or a step, within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, EINTR, ERROR_OPERATION_ABORTED, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseCheckIo, parseRelease, type Call } from '../../src/core/requests.js';
import type { CommitReply } from '../../src/store/index.js';
import { MemoryEngine, answered, attemptedAgain, holdAtLink, lk, node, within, BUDGET_MS, type TestNode } from './lost-link.js';

/**
 * p1's F_SETLKW of free bytes [0,10) on node a's /a (fileHandle 1), refused twice for the grace
 * period (decided again with the wake-up pass held, refused again), then parked. The engine's
 * first session starts a grace period of `graceMs` on its clock; a runs its parked requests again
 * that long (and its margin) later on the real one.
 */
async function parkP1(t: Test, graceMs: number): Promise<{ engine: MemoryEngine; a: TestNode; endGrace: () => void }> {
  let clock = 0;
  const engine = new MemoryEngine({ now: () => clock });
  const a = await node(engine, 'a', 'default', 5_000, graceMs);
  t.teardown(() => a.store.close());
  let refusals = 0;
  let refused!: () => void;
  const twice = new Promise<void>((r) => (refused = r));
  a.onReply = (r: CommitReply) => {
    if (!r.ok && r.reason === 'grace' && ++refusals === 2) refused();
  };
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW), a.target);
  await within(twice, BUDGET_MS, "p1's two refusals for the grace period");
  a.onReply = undefined;
  return { engine, a, endGrace: () => (clock = graceMs) };
}

const held = async (engine: MemoryEngine) => (await engine.load('/a')).records.map((r) => r.state);

t.test('a request that would grant, made after the grace period ended but before the parked ones ran again, waits behind them', async (t) => {
  const { engine, a, endGrace } = await parkP1(t, 1_000);
  // The period ends by the engine's count; p1 has not run again yet.
  endGrace();
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 2, "p2's F_SETLK"), { result: -EAGAIN }, 'p2, which came after it, finds its lock (before: granted, and p1 queued behind it)');
  t.match(await answered(a, 1, "p1's F_SETLKW"), { result: 0 }, 'p1, parked first, was granted before it');
  t.same(await held(engine), ['held'], "only p1's lock stands");
});

t.test('a close queued before the parked request ran again ends it, though the grace period ended first', async (t) => {
  const { engine, a, endGrace } = await parkP1(t, 200);
  // When the parked request's timer fires: its new run is queued in the file's mailbox.
  const resumed = attemptedAgain(a, 1);
  // The mailbox busy: another owner's unlock, whose step waits at the link until released.
  const link = holdAtLink(a);
  a.sf.run(2, lk('p5', 5, F_UNLCK, F_SETLK, 20), a.target);
  await within(link.atLink, BUDGET_MS, "the unlock's step at the link");
  // p1's handle closes (queued behind the unlock); then the period ends, and p1's timer fires.
  a.sf.run(3, parseRelease({ path: '/a', fileHandle: 1 }), a.target);
  endGrace();
  await within(resumed, BUDGET_MS, "p1's timer, its new run queued after the close");
  link.release();
  await answered(a, 2, "p5's unlock");
  await answered(a, 3, "the close of p1's handle");
  t.match(await answered(a, 1, "p1's F_SETLKW"), { result: -EINTR }, 'p1 is ended by the close of its handle, as a waiter through it is (before: granted, to a closed handle)');
  // A later step of the file: whatever p1's new run could still do, it did.
  a.sf.run(4, lk('p6', 6, F_WRLCK, F_SETLK, 40), a.target);
  t.match(await answered(a, 4, "p6's lock of [40,50)"), { result: 0 });
  t.same(await held(engine), ['held'], "only p6's lock stands: nothing is held through the closed handle");
});

t.test('stop() answers every parked request with a result of its kind: a checkIo with 995, not undefined', async (t) => {
  const { a } = await parkP1(t, 60_000);
  // A write check of the same free bytes, after p1: it waits behind it (or is refused for the period).
  a.sf.run(2, parseCheckIo({ fileName: '/a', handle: 2, processId: 2, byteOffset: 0, length: 10, write: true }) as Call, a.target);
  await within(
    (async () => {
      while (a.sf.parkedBehind === 0) await new Promise((r) => setImmediate(r));
    })(),
    BUDGET_MS,
    'the checkIo parked behind p1',
  );
  await a.sf.stop();
  t.equal(await answered(a, 2, 'the parked checkIo at stop()'), ERROR_OPERATION_ABORTED, 'the checkIo ends with 995');
  t.match(await answered(a, 1, "p1's F_SETLKW at stop()"), { result: -EINTR }, "p1's F_SETLKW ends as a stopped wait does");
});
