/**
 * A file's actor over a shared engine whose reply to a step is lost after the step applied (the
 * engine ran it; the node heard nothing): what that step decided for other requests (here, the
 * grant of a waiter of the same node) must still reach them once the node learns the step
 * applied, whether the decision then gave up, decided again (fenced for a late renewal), learned
 * it from the whole record set (the log no longer reaching back), or had no request behind it
 * (a reaping step). Before, that waiter waited for ever. The same for a waiter such a step ended
 * (a timeout's cancel) when only the whole record set is left to tell: its record is gone and no
 * grant by another node explains it (none came through the inbox before the mark the settling
 * step left there), also when its owner took some of its bytes meanwhile. And a lock request's own step, learned applied from the
 * whole record set (a record it minted is there): granted as it stands, not undone and decided
 * again. Real SharedFiles over a MemoryEngine; the link in between
 * (lost-link.ts) loses the chosen reply. Every wait is for an answer or a step, within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseLockFile, type Call } from '../../src/core/requests.js';
import type { CommitReply } from '../../src/store/index.js';
import { answersTo } from './reset-harness.js';
import { MemoryEngine, answered, ch, lf, lk, loseNext, memoryStore, node, overflowLog, uf, within, BUDGET_MS, type TestNode } from './lost-link.js';

/** Nodes a and b over one engine: b's owner q1 holds [0,10) of /a, a's p2 waits for it (F_SETLKW of [0,waitLen)). */
async function bHoldsAWaits(t: Test, waitLen = 10): Promise<{ engine: MemoryEngine; a: TestNode; b: TestNode }> {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "b's lock"), { result: 0 }, 'b holds [0,10)');
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW, 0, waitLen), a.target);
  await answered(a, -2, "a's waiter queued");
  return { engine, a, b };
}

for (const lose of ['giveup', 'fenced', 'full'] as const) {
  t.test(`a release's step applies, its reply is lost (${lose}): the waiter of the same node it granted is answered`, async (t) => {
    const engine = new MemoryEngine();
    const a = await node(engine, 'a');
    t.teardown(() => a.store.close());
    if (lose === 'fenced') a.lostResend = 'fenced';
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
    t.match(await answered(a, 1, "p1's lock"), { result: 0 }, 'p1 holds [0,10)');
    a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW), a.target);
    await answered(a, -2, "p2's waiter queued");
    let then: (() => Promise<void>) | undefined;
    if (lose === 'full') {
      // Another node makes more steps on the file than the engine's log keeps: the node learns of
      // them from the whole record set, which names no step.
      const b = await memoryStore({}, { engine, node: 'b', graceMs: 0 });
      t.teardown(() => b.close());
      then = () => overflowLog(engine, b);
    }
    loseNext(a, then);
    a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
    await answered(a, 3, "p1's unlock");
    t.same((await engine.load('/a')).records.map((r) => r.state), ['held'], "the engine: p2's waiter turned into the lock (the step applied)");
    t.match(await answered(a, 2, "p2's F_SETLKW"), { result: 0 }, "p2's F_SETLKW is granted");
  });
}

t.test("a reaping step applies, its reply is lost: the waiter of the reaping node it granted is answered, with no request behind it", async (t) => {
  const { engine, a, b } = await bHoldsAWaits(t);
  const s = b.store.session();
  await engine.endSession({ node: 'b', epoch: s.epoch, incarnation: s.incarnation });
  loseNext(a);
  await a.sf.reap('/a', [{ node: 'b', epoch: s.epoch }]);
  t.match(await answered(a, 2, "a's F_SETLKW"), { result: 0 }, "a's F_SETLKW is granted once a learns that its reaping step applied");
});

t.test("a cancel's step that never applied, its waiter granted by another node meanwhile: the whole record set proves nothing; the cancel, answered at once, stands and the grant is undone", async (t) => {
  const { engine, a, b } = await bHoldsAWaits(t);
  const told = answersTo(a, 2);
  // a is cut off, its inbox reader slow: its cancel of p2's waiter (a timeout) never applies.
  a.policy = () => 'drop';
  a.held = [];
  // The cancel's step, sent again by id until its deadline; then given up on, the file owes a
  // step, which comes by itself as a new one: the second new step seen.
  let fresh = 0;
  const gaveUp = new Promise<void>((r) => (a.afterDrop = async (step) => {
      if (step.id === undefined && ++fresh === 2) r();
    }));
  a.sf.cancel(2, 'timeout');
  await within(gaveUp, BUDGET_MS, 'the cancel given up on, and the owed step after it');
  // Its step got no reply: the timeout is answered at once, the waiter's removal owed.
  t.equal(a.got.has(2), true, "p2's timeout is answered at once: its step got no reply");
  t.match(a.got.get(2), { result: -EAGAIN }, "p2's F_SETLKW is answered with its timeout's code");
  // b's unlock grants p2's waiter; then more steps on the file than the engine's log keeps.
  b.sf.run(3, lk('q1', 1, F_UNLCK, F_SETLK), b.target);
  t.match(await answered(b, 3, "b's unlock"), { result: 0 }, "b's unlock grants a's waiter");
  await overflowLog(engine, b.store);
  // a reaches the engine again: its owed step learns the whole record set (p2's waiter gone,
  // granted) before its inbox hands it b's event.
  const healed = new Promise<CommitReply>((r) => (a.onReply = (x) => !x.ok && x.reason === 'stale' && x.records !== undefined && r(x)));
  a.policy = () => 'pass';
  await within(healed, BUDGET_MS, "a's stale reply with the whole record set");
  // A step of a commits before the event comes: the cancel given up on can no longer apply, yet
  // the waiter it ended is gone because b granted it (p2 holds new bytes), not because it did;
  // that grant came after the cancel was answered, so the owed step undoes it.
  a.sf.run(4, lk('p3', 3, F_WRLCK, F_SETLK, 20, 10), a.target);
  t.match(await answered(a, 4, "p3's lock on [20,30)"), { result: 0 }, "a's next step commits");
  a.release();
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['a:held'], 'the engine: p3 holds [20,30); nothing of the grant to p2 is left');
  // b's new lock of [0,10) is granted: p2 holds none of it.
  b.sf.run(5, lk('q5', 5, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 5, "q5's lock of [0,10)"), { result: 0 }, '[0,10) is free: p2 holds none of it');
  t.equal(told.length, 1, "p2's F_SETLKW was answered once");
  t.match(told[0], { result: -EAGAIN }, 'with its timeout, never granted');
  t.same(a.faults, [], 'nothing reported (a)');
  t.same(b.faults, [], 'nothing reported (b)');
});

t.test("a cancel's step applies, its reply is lost, and the log no longer reaches back: the request is answered with its timeout's code", async (t) => {
  const { engine, a, b } = await bHoldsAWaits(t);
  // The cancel's step (a timeout) removes p2's waiter and nothing else: no record it minted can
  // show that it applied. Meanwhile b makes more steps on the file than the engine's log keeps.
  loseNext(a, () => overflowLog(engine, b.store));
  a.sf.cancel(2, 'timeout');
  t.match(await answered(a, 2, "p2's F_SETLKW"), { result: -EAGAIN }, "p2's F_SETLKW ends with its timeout's code once a learns its waiter is gone");
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['b:held'], "the engine: only b's lock; p2's waiter went with the cancel");
  // The file serves on: b's unlock, then a's new lock.
  b.sf.run(3, lk('q1', 1, F_UNLCK, F_SETLK), b.target);
  t.match(await answered(b, 3, "b's unlock"), { result: 0 });
  // After the cancel's tries (until its deadline): a lock request queued behind them is answered
  // with the generic code if still queued requestTimeoutMs after it came.
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "the cancel's tries");
  a.sf.run(4, lk('p2', 2, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 4, "p2's new lock"), { result: 0 }, 'p2 locks [0,10) again');
});

t.test("a cancel's step applies, its reply is lost, the log no longer reaches back, and the waiter's owner took some of its bytes meanwhile: the request is answered with its timeout's code", async (t) => {
  // p2 waits for [0,20): b's lock blocks its first half.
  const { engine, a, b } = await bHoldsAWaits(t, 20);
  // The cancel's step (a timeout) removes p2's waiter and nothing else; b overruns the log.
  loseNext(a, () => overflowLog(engine, b.store));
  a.sf.cancel(2, 'timeout');
  // Another thread of p2 locks [15,20), part of the waiter's bytes, in the next step of a, which
  // learns the whole record set (the waiter gone) and commits. p2 now holds bytes of its
  // waiter's it did not hold before, as if b had granted it: before, the waiter was left to an
  // inbox event that no node sent, and waited for ever. Made after the cancel's tries (until its
  // deadline): a lock request queued behind them is answered with the generic code if still
  // queued requestTimeoutMs after it came.
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "the cancel's tries");
  a.sf.run(5, lk('p2', 2, F_WRLCK, F_SETLK, 15, 5), a.target);
  t.match(await answered(a, 5, "p2's lock on [15,20)"), { result: 0 }, "p2's other lock is granted");
  t.match(await answered(a, 2, "p2's F_SETLKW"), { result: -EAGAIN }, "p2's F_SETLKW ends with its timeout's code");
  t.same(a.faults, [], 'nothing reported');
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['b:held', 'a:held'], "the engine: b's lock and p2's [15,20); the waiter went with the cancel");
});

t.test("a lock's step applies, its reply is lost, and its resend finds the log overrun: the whole record set holds the lock the step minted, so it applied; granted, nothing undone", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await memoryStore({}, { engine, node: 'b', graceMs: 0 });
  t.teardown(() => Promise.all([a.store.close(), b.close()]));
  // The first step's reply is lost; b then overruns the log, and the resend reaches the engine.
  loseNext(a, async () => {
    await overflowLog(engine, b);
    a.lostIds.clear();
  });
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's lock"), { result: 0 }, 'p1 is granted');
  t.ok(
    a.log.some((l) => l.includes('-> stale whole')),
    `the resend was answered with the whole record set (${a.log.filter((l) => !l.includes('"x')).join('; ')})`,
  );
  // Before it was recognised, the step counted as unsure: undone (reported), and decided again.
  t.same(a.faults, [], 'nothing reported: the step was recognised as applied, not undone');
  t.equal((await engine.load('/a')).records.length, 1, 'one lock stands');
});

t.test("a lock's step of unknown fate (the resend found the log overrun, no record of it there) that never applied: the request's waiter, queued again and granted, is not taken for its", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', 'default', 2_000);
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "b's lock"), { result: 0 }, 'b holds [0,10)');
  a.sf.run(9, lk('p9', 9, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 9, "a's F_SETLK"), { result: -EAGAIN }, "a learns of b's lock");
  // a's next step (p2 queues) never reaches the engine; b then overruns the log, and the resend
  // is answered with the whole record set, which holds nothing of it: its fate is unknown.
  let first = true;
  a.policy = () => (first ? 'drop' : 'pass');
  a.afterDrop = async () => {
    first = false;
    await overflowLog(engine, b.store);
  };
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW), a.target);
  await answered(a, -2, "p2's waiter queued (decided again)");
  t.ok(a.log.some((l) => l.includes('-> stale whole')), 'the resend was answered with the whole record set');
  b.sf.run(3, lk('q1', 1, F_UNLCK, F_SETLK), b.target);
  await answered(b, 3, "b's unlock");
  t.match(await answered(a, 2, "p2's F_SETLKW"), { result: 0 }, 'p2 is granted by b (its inbox event)');
  // A later stale reply on a: b changes the file, then a decides on its older copy.
  b.sf.run(4, lk('q1', 1, F_WRLCK, F_SETLK, 20), b.target);
  t.match(await answered(b, 4, "b's lock of [20,30)"), { result: 0 });
  a.sf.run(5, lk('p3', 3, F_WRLCK, F_SETLK, 40), a.target);
  t.match(await answered(a, 5, "p3's lock of [40,50)"), { result: 0 });
  // Before, p2's grant was taken for the first step's waiter granted elsewhere: "could not be undone".
  t.same(a.faults, [], "nothing reported: the first step never applied, and nothing of it is left to undo");
  t.same(
    (await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`).sort(),
    ['a:held', 'a:held', 'b:held'],
    "p2's lock, p3's and b's new one stand",
  );
});

/**
 * Node a, whose application is told of each released Windows record (onUnlockFile: the table's
 * `released` hook), as handle:offset+length; and a second node's store, b, to overrun the log.
 */
async function unlockHooked(t: Test): Promise<{ engine: MemoryEngine; a: TestNode; b: Awaited<ReturnType<typeof memoryStore>>; released: string[] }> {
  const engine = new MemoryEngine();
  const released: string[] = [];
  const a = await node(engine, 'a', 'default', 300, 0, {
    released: (family, e) => {
      if (family === 'windows') released.push(`${String(e.handle)}:${String(e.byteOffset)}+${String(e.length)}`);
    },
  });
  const b = await memoryStore({}, { engine, node: 'b', graceMs: 0 });
  t.teardown(() => Promise.all([a.store.close(), b.close()]));
  a.sf.run(1, lf(7, 0, 10), a.target);
  t.equal(await answered(a, 1, "handle 7's lock of [0,10)"), 0, 'handle 7 locks [0,10)');
  a.sf.run(2, lf(7, 20, 5), a.target);
  t.equal(await answered(a, 2, "handle 7's lock of [20,25)"), 0, 'handle 7 locks [20,25)');
  // A lock that stays: the file never empties (the engine would then answer with its whole record set, none).
  a.sf.run(9, lf(9, 60, 10), a.target);
  t.equal(await answered(a, 9, "handle 9's lock of [60,70)"), 0, 'handle 9 locks [60,70)');
  return { engine, a, b, released };
}

for (const op of ['unlock', 'close'] as const) {
  for (const learn of ['missed', 'whole'] as const) {
    for (const lose of ['giveup', 'fenced'] as const) {
      t.test(`a Windows ${op}'s step applies, its reply is lost (${lose}), and the node learns it from ${learn === 'whole' ? 'the whole record set' : 'the missed changes'}: onUnlockFile fires once per released record, with its range`, async (t) => {
        const { engine, a, b, released } = await unlockHooked(t);
        if (lose === 'fenced') a.lostResend = 'fenced';
        // The step removes records and puts none: only the missed changes can name it, and the
        // whole record set (b overruns the log) shows no record it minted.
        loseNext(a, learn === 'whole' ? () => overflowLog(engine, b) : undefined);
        a.sf.run(3, op === 'unlock' ? uf(7, 0, 10) : ch(7), a.target);
        await answered(a, 3, `handle 7's ${op}`);
        // A later request commits: what the lost step did is known by then (its step is stale
        // until the node learned it), and nothing of it is owed any more.
        a.sf.run(4, lf(8, 40, 10), a.target);
        t.equal(await answered(a, 4, "handle 8's lock of [40,50)"), 0, "handle 8's lock commits");
        t.ok(
          a.log.some((l) => l.endsWith(`-> stale ${learn}`)),
          `a stale reply with the ${learn === 'whole' ? 'whole record set' : 'missed changes'} (${a.log.filter((l) => !l.includes('"x')).join('; ')})`,
        );
        t.same(released.sort(), op === 'unlock' ? ['7:0+10'] : ['7:0+10', '7:20+5'], 'onUnlockFile fired once for each record the step released, with its range');
        t.equal((await engine.load('/a')).records.length, op === 'unlock' ? 3 : 2, `the engine: ${op === 'unlock' ? "handle 7's [20,25), " : ''}handle 8's and handle 9's locks`);
      });
    }
  }
}

for (const learn of ['ok', 'whole'] as const) {
  t.test(`a Windows unlock's step that never applied (no reply, given up on; the next step ${learn === 'whole' ? 'learns the whole record set' : 'commits'}): onUnlockFile fires once, from the owed unlock run again`, async (t) => {
    const { engine, a, b, released } = await unlockHooked(t);
    // a is cut off until its unlock was given up on.
    a.policy = () => 'drop';
    a.sf.run(3, uf(7, 0, 10), a.target);
    await answered(a, 3, "handle 7's unlock, given up on");
    t.same(released, [], 'no hook yet: nothing was released');
    if (learn === 'whole') await overflowLog(engine, b);
    a.policy = () => 'pass';
    a.sf.run(4, lf(8, 40, 10), a.target);
    t.equal(await answered(a, 4, "handle 8's lock of [40,50)"), 0, "handle 8's lock commits, with the owed unlock");
    if (learn === 'whole') t.ok(a.log.some((l) => l.endsWith('-> stale whole')), 'a stale reply with the whole record set');
    t.same(released, ['7:0+10'], 'onUnlockFile fired once, with the range the owed unlock released');
    t.equal((await engine.load('/a')).records.length, 3, "the engine: handle 7's [20,25), handle 8's and handle 9's locks");
  });
}

t.test("a Windows unlock's step applies, its reply is lost, the next step (the owed unlock run again in it) gets no reply either, then the whole record set: onUnlockFile fires once", async (t) => {
  const { engine, a, b, released } = await unlockHooked(t);
  loseNext(a);
  a.sf.run(3, uf(7, 0, 10), a.target);
  await answered(a, 3, "handle 7's unlock");
  // The next request's step carries the owed unlock (its notice again) and never reaches the
  // engine: two steps given up on released the same record, and only the first applied.
  a.policy = () => 'drop';
  a.sf.run(4, lf(8, 40, 10), a.target);
  await answered(a, 4, "handle 8's lock, given up on");
  await overflowLog(engine, b);
  a.policy = () => 'pass';
  a.sf.run(5, lf(8, 40, 10), a.target);
  t.equal(await answered(a, 5, "handle 8's lock of [40,50)"), 0, "handle 8's lock commits");
  t.ok(a.log.some((l) => l.endsWith('-> stale whole')), 'a stale reply with the whole record set');
  t.same(released, ['7:0+10'], 'onUnlockFile fired once, with the range released');
  t.equal((await engine.load('/a')).records.length, 3, "the engine: handle 7's [20,25), handle 8's and handle 9's locks");
});

/** Node a, whose application hears of each release (the table's `released` hook) as family:offset+length. */
async function releaseHooked(t: Test, engine = new MemoryEngine()): Promise<{ engine: MemoryEngine; a: TestNode; released: string[] }> {
  const released: string[] = [];
  const a = await node(engine, 'a', 'default', 300, 0, {
    released: (family, e) => {
      released.push(family === 'windows' ? `windows:${String(e.handle)}:${String(e.byteOffset)}+${String(e.length)}` : `posix:${String(e.lockStart)}+${String(e.lockLen)}`);
    },
  });
  t.teardown(() => a.store.close());
  return { engine, a, released };
}

t.test("a Windows unlock of one of a handle's two identical shared locks applies, its reply is lost: the owed unlock does not release the other", async (t) => {
  const { engine, a, released } = await releaseHooked(t);
  a.sf.run(1, lf(7, 0, 10, false), a.target);
  t.equal(await answered(a, 1, "handle 7's first shared lock of [0,10)"), 0, 'handle 7 locks [0,10) shared');
  a.sf.run(2, lf(7, 0, 10, false), a.target);
  t.equal(await answered(a, 2, "handle 7's second shared lock of [0,10)"), 0, 'and again: two identical locks');
  loseNext(a);
  a.sf.run(3, uf(7, 0, 10), a.target);
  // Given up on: answered with the generic code.
  await answered(a, 3, "handle 7's unlock");
  a.sf.run(4, lf(8, 40, 10), a.target);
  t.equal(await answered(a, 4, "handle 8's lock of [40,50)"), 0, "handle 8's lock commits");
  t.ok(a.log.some((l) => l.endsWith('-> stale missed')), 'a stale reply with the missed changes');
  t.same(released, ['windows:7:0+10'], 'onUnlockFile fired once');
  t.equal((await engine.load('/a')).records.length, 2, "the engine: one of handle 7's locks, and handle 8's");
  // Before, the owed unlock ran again and released the second lock: the handle had none left.
  a.sf.run(5, uf(7, 0, 10), a.target);
  t.equal(await answered(a, 5, "handle 7's second unlock"), 0, 'handle 7 still holds one lock of [0,10)');
  a.sf.run(6, uf(7, 0, 10), a.target);
  t.equal(await answered(a, 6, "handle 7's third unlock"), 158, 'and only one');
});

t.test("a Windows unlock's step applies, its reply is lost, and its resend finds the node fenced for a late renewal: answered 0 (it unlocked), not decided again", async (t) => {
  const { engine, a, released } = await releaseHooked(t);
  a.lostResend = 'fenced';
  a.sf.run(1, lf(7, 0, 10), a.target);
  t.equal(await answered(a, 1, "handle 7's lock of [0,10)"), 0, 'handle 7 locks [0,10)');
  a.sf.run(2, lf(9, 60, 10), a.target);
  t.equal(await answered(a, 2, "handle 9's lock of [60,70)"), 0, 'handle 9 locks [60,70)');
  loseNext(a);
  a.sf.run(3, uf(7, 0, 10), a.target);
  // Before, decided again on the file after its own step: nothing to unlock, 158.
  t.equal(await answered(a, 3, "handle 7's unlock"), 0, 'the unlock is answered 0: its step unlocked');
  t.ok(a.log.some((l) => l.endsWith('-> stale missed')), 'a stale reply with the missed changes');
  t.same(released, ['windows:7:0+10'], 'onUnlockFile fired once');
  t.same((await engine.load('/a')).records.length, 1, "the engine: handle 9's lock");
});

for (const learn of ['missed', 'whole'] as const) {
  for (const applied of ['first', 'second'] as const) {
    t.test(`a Windows unlock of one of two identical locks, given up on, and the next step carrying it, given up on too; only the ${applied} applied, learned from ${learn === 'whole' ? 'the whole record set' : 'the missed changes'}: the other lock stays`, async (t) => {
      const { engine, a, released } = await releaseHooked(t);
      const b = await memoryStore({}, { engine, node: 'b', graceMs: 0 });
      t.teardown(() => b.close());
      a.sf.run(1, lf(7, 0, 10, false), a.target);
      t.equal(await answered(a, 1, "handle 7's first shared lock of [0,10)"), 0, 'handle 7 locks [0,10) shared');
      a.sf.run(2, lf(7, 0, 10, false), a.target);
      t.equal(await answered(a, 2, "handle 7's second shared lock of [0,10)"), 0, 'and again: two identical locks');
      // The unlock's step, then the next request's (the owed unlock run first in it): one of
      // them applies with its reply lost, the other never reaches the engine (nor do its
      // resends); then no step of a does (the file's own retries) until the test lets them.
      const outcomes: ('lose' | 'drop')[] = applied === 'first' ? ['lose', 'drop'] : ['drop', 'lose'];
      const cut = (s: { id?: string }) => s.id?.startsWith('a.dropped.') === true;
      let sent!: () => void;
      const bothSent = new Promise<void>((r) => (sent = r));
      const next = () => {
        outcomes.shift();
        if (outcomes.length === 0) sent();
      };
      a.policy = (s) => (s.id === undefined ? (outcomes[0] ?? 'drop') : cut(s) ? 'drop' : 'pass');
      a.afterLose = async () => next();
      a.afterDrop = async (s) => void (s.id === undefined && outcomes.length > 0 && next());
      a.sf.run(3, uf(7, 0, 10), a.target);
      await answered(a, 3, "handle 7's unlock (given up on)");
      a.sf.run(4, lf(8, 40, 10, false), a.target);
      await answered(a, 4, "handle 8's lock (given up on)");
      await within(bothSent, BUDGET_MS, 'both steps sent');
      if (learn === 'whole') await overflowLog(engine, b);
      a.policy = (s) => (cut(s) ? 'drop' : 'pass');
      a.sf.run(5, lf(9, 60, 10), a.target);
      t.equal(await answered(a, 5, "handle 9's lock of [60,70)"), 0, "handle 9's lock commits");
      t.ok(a.log.some((l) => l.endsWith(`-> stale ${learn}`)), `a stale reply with the ${learn === 'whole' ? 'whole record set' : 'missed changes'}`);
      t.same(released, ['windows:7:0+10'], 'onUnlockFile fired once');
      t.same((await engine.load('/a')).records.length, applied === 'first' ? 2 : 3, `the engine: one of handle 7's locks, handle 9's${applied === 'first' ? '' : ", and handle 8's (its step applied)"}`);
      a.sf.run(6, uf(7, 0, 10), a.target);
      t.equal(await answered(a, 6, "handle 7's second unlock"), 0, 'handle 7 still holds one lock of [0,10)');
      a.sf.run(7, uf(7, 0, 10), a.target);
      t.equal(await answered(a, 7, "handle 7's third unlock"), 158, 'and only one');
    });
  }
}

t.test("a POSIX lock merged with its owner's lock applies, its reply lost (answered failed); the owner's unlock of the old lock never reaches the engine; the whole record set, without that old lock, does not count as the unlock's: it still runs", async (t) => {
  const engine = new MemoryEngine();
  const { a, released } = await releaseHooked(t, engine);
  const b = await memoryStore({}, { engine, node: 'b', graceMs: 0 });
  t.teardown(() => b.close());
  a.sf.run(9, lk('p9', 9, F_WRLCK, F_SETLK, 60), a.target);
  t.match(await answered(a, 9, "p9's lock of [60,70)"), { result: 0 }, 'p9 holds [60,70)');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 holds [0,10)');
  // p1's lock of [10,20) merges with [0,10) into one new record; it applies, its reply is lost.
  loseNext(a);
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLK, 10, 10), a.target);
  await answered(a, 2, "p1's lock of [10,20) (given up on)");
  // p1 unlocks [0,10): the step (it removes the old record of [0,10)) never reaches the engine.
  const cut = (s: { id?: string }) => s.id === undefined || s.id.startsWith('a.dropped.');
  a.policy = (s) => (cut(s) ? 'drop' : 'pass');
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
  await answered(a, 3, "p1's unlock (given up on)");
  await overflowLog(engine, b);
  a.policy = (s) => (s.id?.startsWith('a.dropped.') === true ? 'drop' : 'pass');
  // The whole record set: the merged lock (the lock request's: undone), the old [0,10) gone.
  a.sf.run(4, lk('p3', 3, F_WRLCK, F_SETLK, 40), a.target);
  t.match(await answered(a, 4, "p3's lock of [40,50)"), { result: 0 }, "a's next step commits");
  t.ok(a.log.some((l) => l.endsWith('-> stale whole')), 'a stale reply with the whole record set');
  a.sf.run(5, lk('p5', 5, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 5, "p5's lock of [0,10)"), { result: 0 }, "[0,10) is free: p1's unlock ran (its old lock's absence was the merge's)");
  t.same(released, ['posix:0+10'], 'the unlock notice fired once');
});

/** A blocking Windows LockFileEx of [start, start+len) of /a through `handle` (process 1). */
const lw = (handle: number, start: number, len: number): Call =>
  parseLockFile({ fileName: '/a', byteOffset: start, length: len, exclusiveLock: true, failImmediately: false, handle, processId: 1 }) as Call;

// An owed release whose step never reached the engine is not taken for applied because its locks'
// neighbours changed: another node granted a waiter of a's (a record of the same owner or handle
// next to the bytes), while the step that carried the release was given up on too.
t.test('an owed POSIX unlock that never applied runs, though another node granted a waiter of its node meanwhile', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 1, "q1's lock"), { result: 0 }, 'q1 holds [0,10)');
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 2, "q2's lock"), { result: 0 }, 'q2 holds [10,20)');
  a.sf.run(1, lk('x1', 7, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 1, "x1's lock"), { result: 0 }, 'x1 holds [100,110)');
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 10, 10), a.target);
  await answered(a, -2, "p1's waiter for [10,20) queued");
  // a is cut off: x1's unlock is given up on (owed); p1's F_SETLKW of [0,10), whose step carries
  // the owed unlock, never reaches the engine either.
  a.policy = () => 'drop';
  const before = a.log.length;
  a.sf.run(3, lk('x1', 7, F_UNLCK, F_SETLK, 100, 10), a.target);
  await answered(a, 3, "x1's unlock (given up on)");
  a.sf.run(4, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10), a.target);
  await answered(a, 4, "p1's F_SETLKW of [0,10) (given up on)");
  t.ok(!a.log.slice(before).some((l) => !l.startsWith('drop')), 'nothing of a reached the engine');
  b.sf.run(3, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 3, "q2's unlock"), { result: 0 });
  t.match(await answered(a, 2, "p1's F_SETLKW of [10,20)"), { result: 0 }, "granted by b's unlock");
  a.policy = () => 'pass';
  a.sf.run(5, lk('p5', 5, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 5, "p5's lock"), { result: 0 }, "a's next step commits");
  // Waits until x1's owed unlock has run: answered only if it did.
  b.sf.run(4, lk('q3', 3, F_WRLCK, F_SETLKW, 100, 10), b.target);
  t.match(await answered(b, 4, "q3's F_SETLKW of [100,110)"), { result: 0 }, "[100,110) is freed: x1's owed unlock ran");
});

t.test('an owed Windows unlock that never applied runs, though another node granted a waiter of its node meanwhile', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0);
  b.sf.run(2, lf(2, 10, 10), b.target);
  t.equal(await answered(b, 2, "b's handle 2 locks [10,20)"), 0);
  a.sf.run(1, lf(9, 100, 10), a.target);
  t.equal(await answered(a, 1, "a's handle 9 locks [100,110)"), 0);
  a.sf.run(2, lw(7, 10, 10), a.target);
  await answered(a, -2, "a's handle 7 waits for [10,20)");
  a.policy = () => 'drop';
  a.sf.run(3, uf(9, 100, 10), a.target);
  await answered(a, 3, "handle 9's unlock (given up on)");
  a.sf.run(4, lw(7, 0, 10), a.target);
  await answered(a, 4, "handle 7's LockFileEx of [0,10) (given up on)");
  b.sf.run(3, uf(2, 10, 10), b.target);
  t.equal(await answered(b, 3, "b's handle 2 unlocks"), 0);
  t.equal(await answered(a, 2, "handle 7's LockFileEx of [10,20)"), 0, "granted by b's unlock");
  a.policy = () => 'pass';
  a.sf.run(5, lf(5, 40, 10), a.target);
  t.equal(await answered(a, 5, "a's handle 5 locks [40,50)"), 0, "a's next step commits");
  b.sf.run(4, lw(3, 100, 10), b.target);
  t.equal(await answered(b, 4, "b's handle 3's LockFileEx of [100,110)"), 0, "[100,110) is freed: handle 9's owed unlock ran");
});

t.test("a lock request decided again after its resend was fenced, whose first try never applied, waits in the engine and is granted", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 1, "q1's lock"), { result: 0 }, 'q1 holds [0,10)');
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 2, "q2's lock"), { result: 0 }, 'q2 holds [10,20)');
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 10, 10), a.target);
  await answered(a, -2, "p1's waiter for [10,20) queued");
  // p1's F_SETLKW of [0,10): its first step never reaches the engine, its resend finds a fenced
  // for a late renewal (then decided again). Meanwhile b unlocks [10,20): p1's first waiter is
  // granted, a record of p1 next to [0,10).
  a.lostResend = 'fenced';
  a.held = [];
  let drops = 0;
  a.policy = (s) => (s.id === undefined && drops === 0 ? 'drop' : 'pass');
  a.afterDrop = async () => {
    drops++;
    a.lostIds.add(`a.dropped.${drops}`);
    b.sf.run(3, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
    await answered(b, 3, "q2's unlock");
  };
  a.sf.run(4, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10), a.target);
  await answered(a, -4, "p1's F_SETLKW of [0,10) queued");
  a.release();
  t.match(await answered(a, 2, "p1's F_SETLKW of [10,20)"), { result: 0 }, "granted by b's unlock");
  t.ok((await engine.load('/a')).records.some((r) => r.node === 'a' && r.state === 'waiting'), 'the engine holds the waiter of the F_SETLKW of [0,10)');
  b.sf.run(5, lk('q1', 1, F_UNLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 5, "q1's unlock"), { result: 0 });
  t.match(await answered(a, 4, "p1's F_SETLKW of [0,10)"), { result: 0 }, "granted once q1 unlocks");
});
