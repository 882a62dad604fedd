/**
 * Review of the early-answered cancel (SharedFile.cancelAnswered): cases the first test file
 * (shared-file-cancel-owed) leaves out. A cancel whose step applied with its reply lost; a waiter
 * of another request queued behind the cancelled one ('fifo' and default), on b or on a; a POSIX
 * owner whose grant merged two of its locks; a close of the handle while the removal is owed and
 * b's grant was read from the inbox; POSIX, OFD and flock upgrades; an engine reset with the
 * grant's undo decided but not committed; an unlock of the owner with no reply (owed) carried
 * with the owed removal (fails: the owner keeps [5,10)). Real SharedFiles over a MemoryEngine, behind the lost-link
 * harness; every wait is for an answer or an engine state, within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, ENOLCK, ERROR_LOCK_VIOLATION, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, ch, endGrace, lf, lk, loseNext, lw, uf, within, type TestNode } from './lost-link.js';
import { answersTo, conflicts, engineIs, held, nodes, resetBoth, until } from './reset-harness.js';
import { cancelCut, grantHeld } from './notice-stages.js';
import { holds, q2Unlock, stage, twoNodes, waits } from './stages.js';
import { parseLock, type Call } from '../../src/core/requests.js';

/** Resolves once `n` has an inbox event held back (its reader slow: TestNode.held). */
const inboxHolds = (n: TestNode, what: string): Promise<void> => until(() => (n.held?.length ?? 0) > 0, what);

/** Nodes a and b (`policy`): b's handle 1 holds [0,10), a's handle 7 waits for it (a's request 1); `release` is b's unlock of [0,10) (its request 2). */
async function windowsWaiter(t: Test, policy: 'default' | 'fifo') {
  const n = await twoNodes(t, {}, policy);
  const { a, b } = n;
  await stage(t, holds(b, 1, lf(1, 0, 10), "b's handle 1 locks [0,10)"), waits(a, 1, lw(7, 0, 10), "a's handle 7 waits for [0,10)"));
  return { ...n, release: holds(b, 2, uf(1, 0, 10), "b's release") };
}

/**
 * q2 (node b) holds [10,20); p1 (node a) holds [0,10) and waits for [5,15) (request 2); a cut
 * off, the waiter's timeout is answered at once (its removal owed); b's unlock of [10,20) grants
 * the waiter in the engine, merged with p1's [0,10), its event held back in a's inbox. Resolves
 * with the answers to the waiter from the timeout on.
 */
async function cancelledThenGranted(t: Test, a: TestNode, b: TestNode): Promise<unknown[]> {
  await stage(
    t,
    holds(b, 1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), "q2's lock of [10,20)"),
    holds(a, 1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), "p1's lock of [0,10)"),
    waits(a, 2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 10), "p1's waiter for [5,15)"),
  );
  const told = await cancelCut(t, a, 2, 'timeout', -EAGAIN, 'the timeout, while a is cut off');
  await grantHeld(t, a, q2Unlock(b));
  return told;
}

t.test("windows: a cancel whose step applied, its reply lost (and every resend's): answered once, the waiter gone, nothing reported", async (t) => {
  const { engine, a, b, release } = await windowsWaiter(t, 'default');
  const told = answersTo(a, 1);
  loseNext(a);
  a.sf.cancel(1, 'timeout');
  t.equal(await answered(a, 1, "the timeout of a's waiter, its step's reply lost"), ERROR_LOCK_VIOLATION, 'answered with the timeout code');
  await engineIs(engine, ['b held write 1 0-9'], "a's waiter gone from the engine");
  // After the cancel's tries (until its deadline): a lock request queued behind them is answered
  // with the generic code if still queued requestTimeoutMs after it came.
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "the cancel's tries");
  a.sf.run(10, lf(5, 40, 10), a.target);
  t.equal(await answered(a, 10, "a's lock of [40,50)"), 0);
  await stage(t, release, holds(b, 3, lf(2, 0, 10), "b's handle 2 locks [0,10)", "[0,10) free: a's handle 7 holds none of it"));
  t.equal(told.length, 1, 'the caller was told once');
  t.same(a.faults, [], 'nothing reported (a)');
  t.same(b.faults, [], 'nothing reported (b)');
});

for (const policy of ['default', 'fifo'] as const) {
  t.test(`windows (${policy}): b's waiter queued behind a's cancelled waiter is granted once the grant of a's waiter is undone`, async (t) => {
    const { engine, a, b, release } = await windowsWaiter(t, policy);
    await stage(t, waits(b, 3, lw(2, 0, 10, 2), "b's handle 2 waits for [0,10), behind a's"));
    const told = await cancelCut(t, a, 1, 'abort', 995, "the abort of a's waiter, while a is cut off", 'answered at once');
    await grantHeld(t, a, release);
    const lines = await held(engine);
    t.ok(lines.includes('a held write 7 0-9'), "b's release granted a's waiter in the engine (first in line)");
    a.policy = () => 'pass';
    a.sf.run(10, lf(5, 40, 10), a.target);
    t.equal(await answered(a, 10, "a's lock of [40,50), carrying the owed removal"), 0);
    t.equal(await answered(b, 3, "b's handle 2, once a's grant is undone"), 0, "b's waiter granted");
    await engineIs(engine, ['a held write 5 40-49', 'b held write 2 0-9'], 'a holds [40,50), b handle 2 [0,10)');
    a.release();
    t.same(conflicts(await held(engine)), []);
    t.equal(told.length, 1, 'the caller was told once');
    t.same(a.faults, [], 'nothing reported (a)');
    t.same(b.faults, [], 'nothing reported (b)');
  });
}

t.test("posix: p1's waiter for [5,25) between its [0,10) and [20,30), cancelled; b's grant merges them into [0,30): the undo puts both back", async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'default');
  await stage(
    t,
    holds(b, 1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), "q2's lock of [10,20)"),
    holds(a, 1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), "p1's [0,10)"),
    holds(a, 2, lk('p1', 1, F_WRLCK, F_SETLK, 20, 10), "p1's [20,30)"),
    waits(a, 3, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 20), "p1's waiter for [5,25)"),
  );
  const told = await cancelCut(t, a, 3, 'timeout', -EAGAIN, 'the timeout, while a is cut off');
  await grantHeld(t, a, q2Unlock(b));
  t.same(await held(engine), ['a held write p1 0-29'], 'the grant merged p1 into [0,30)');
  a.policy = () => 'pass';
  a.sf.run(10, lk('p3', 3, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 10, "p3's [40,50), carrying the owed removal"), { result: 0 });
  t.same(await held(engine), ['a held write p1 0-9', 'a held write p1 20-29', 'a held write p3 40-49'], "p1 holds what it held, and nothing of [10,20)");
  a.release();
  t.equal(told.length, 1);
  t.same(a.faults, [], 'nothing reported (a)');
});

t.test("posix: a's p5 waits behind a's cancelled p1 waiter; b's grant of p1 undone: p5 granted, told once", async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'fifo');
  await stage(
    t,
    holds(b, 1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10), "q2's [0,10)"),
    waits(a, 1, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10), "p1's waiter"),
    waits(a, 2, lk('p5', 5, F_WRLCK, F_SETLKW, 0, 10), "p5's waiter, behind p1's"),
  );
  const told5 = answersTo(a, 2);
  const told = await cancelCut(t, a, 1, 'abort', -4, "p1's abort, while a is cut off");
  await grantHeld(t, a, holds(b, 2, lk('q2', 2, F_UNLCK, F_SETLK, 0, 10), "q2's unlock"));
  t.same(await held(engine), ['a held write p1 0-9', 'a waiting write p5 0-9'], "the engine granted p1's waiter");
  a.policy = () => 'pass';
  a.sf.run(10, lk('p3', 3, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 10, "p3's [40,50)"), { result: 0 });
  t.match(await answered(a, 2, "p5's answer"), { result: 0 }, 'p5 granted');
  a.release();
  await engineIs(engine, ['a held write p3 40-49', 'a held write p5 0-9'], 'p5 and p3 hold');
  t.equal(told.length, 1);
  t.equal(told5.length, 1);
  t.same(a.faults, [], 'nothing reported (a)');
});

t.test("windows: the handle closed while the removal is owed and b's grant was read from the inbox: nothing of handle 7 stays", async (t) => {
  const { engine, a, b, release } = await windowsWaiter(t, 'default');
  const told = await cancelCut(t, a, 1, 'timeout', ERROR_LOCK_VIOLATION, 'the timeout, while a is cut off');
  await grantHeld(t, a, release, 1);
  a.release();
  a.sf.run(10, ch(7), a.target);
  await answered(a, 10, 'the close of handle 7, while a is cut off');
  a.policy = () => 'pass';
  await engineIs(engine, [], 'nothing of handle 7 in the engine');
  b.sf.run(3, lf(2, 0, 10), b.target);
  t.equal(await answered(b, 3, "b's handle 2 locks [0,10)"), 0);
  t.equal(told.length, 1, 'the caller was told once');
  t.same(a.faults, [], 'nothing reported (a)');
});


/** A lock call of `kind` by `owner` on [start, start+len) of /a (flock: the whole file). */
const kl = (kind: 'posix' | 'ofd' | 'flock', owner: string, type: number, cmd: number, start = 0, len = 10): Call =>
  parseLock({ path: '/a', kind, lockType: type, cmd, lockOwner: owner, lockPid: 1, fileHandle: 1, ...(kind === 'flock' ? {} : { lockStart: start, lockLen: len }) }) as Call;

/**
 * An upgrade (read to write) of a's owner o1 waiting behind b's read lock, then cancelled; b
 * releases. `cut`: a is cut off when the cancel comes (answered at once, b's grant undone
 * later); otherwise the cancel commits as before. Returns the engine's records at the end.
 */
async function upgrade(t: Test, kind: 'posix' | 'ofd' | 'flock', cut: boolean): Promise<string[]> {
  const { engine, a, b } = await twoNodes(t, {}, 'default');
  await stage(
    t,
    holds(a, 1, kl(kind, 'o1', F_RDLCK, F_SETLK), "o1's read lock"),
    holds(b, 1, kl(kind, 'q2', F_RDLCK, F_SETLK), "q2's read lock"),
    waits(a, 2, kl(kind, 'o1', F_WRLCK, F_SETLKW), "o1's upgrade waits behind q2"),
  );
  const told = answersTo(a, 2);
  if (cut) a.policy = () => 'drop';
  a.sf.cancel(2, 'abort');
  t.match(await answered(a, 2, "the upgrade's abort"), { result: -4 });
  if (cut) a.held = [];
  b.sf.run(2, kl(kind, 'q2', F_UNLCK, F_SETLK), b.target);
  t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
  if (cut) {
    a.policy = () => 'pass';
    a.sf.run(10, lk('p3', 3, F_WRLCK, F_SETLK, 40, 10, '/b'), a.target);
    t.match(await answered(a, 10, 'a step on another file'), { result: 0 });
    a.sf.run(11, kl('posix', 'p9', F_UNLCK, F_SETLK, 1000, 1), a.target);
    t.match(await answered(a, 11, "a step on /a, carrying the owed removal"), { result: 0 });
    a.release();
  }
  t.equal(told.length, 1, 'told once');
  t.same(a.faults, [], 'nothing reported (a)');
  return held(engine);
}

for (const kind of ['posix', 'ofd', 'flock'] as const) {
  t.test(`${kind}: a cancelled upgrade (read to write) answered at once leaves what a committed cancel leaves`, async (t) => {
    let asBefore: string[] = [];
    await t.test('reference: the cancel committed', async (t) => {
      asBefore = await upgrade(t, kind, false);
    });
    let early: string[] = [];
    await t.test('a cut off: answered at once, the grant undone', async (t) => {
      early = await upgrade(t, kind, true);
    });
    t.same(early, asBefore, 'the same locks in the engine');
  });
}

t.test("posix: b's grant of the cancelled waiter learned from a stale reply (its undo not committed), then the engine loses its data: only p1's [0,10) goes back", async (t) => {
  const { engine, a, b } = await nodes(t, 'default', null);
  const told = await cancelledThenGranted(t, a, b);
  t.same(await held(engine), ['a held write p1 0-14'], "b's release granted p1's waiter, merged");
  // One step of a reaches the engine (stale: it learns the grant); the undo decided next gets no reply.
  const at = a.log.length;
  a.policy = () => (a.log.length === at ? 'pass' : 'drop');
  a.sf.run(10, lk('p3', 3, F_WRLCK, F_SETLK, 40, 10), a.target);
  await answered(a, 10, "p3's lock, its second step cut off");
  t.ok(a.log.slice(at).some((l) => l.includes('-> stale')), 'a step of a got a stale reply');
  t.same(await held(engine), ['a held write p1 0-14'], 'the undo did not reach the engine');
  await resetBoth(engine, a, b, true, false);
  t.same(await held(engine), ['a held write p1 0-9'], "what goes back: p1's [0,10), nothing of the waiter's grant");
  a.policy = () => 'pass';
  a.sf.run(11, lk('p9', 9, F_UNLCK, F_SETLK, 1000, 1), a.target);
  t.match(await answered(a, 11, "a's unlock of nothing after the re-assertion"), { result: 0 });
  await endGrace(engine, a, b);
  b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 3, "q3's lock of [10,20)"), { result: 0 }, '[10,20) is free');
  a.release();
  const lines = await held(engine);
  t.same(conflicts(lines), [], 'no two conflicting locks');
  t.equal(told.length, 1, 'the caller was told once');
  t.same(a.faults, [], 'nothing reported (a)');
});

for (const learn of ['inbox', 'stale'] as const) {
  t.test(`posix: p1's unlock of [0,10) owed (no reply) after its waiter's cancel was answered, b's grant of the waiter in between (${learn}): the owed steps leave p1 nothing, no notice of the grant`, async (t) => {
    const { engine, a, b, released } = await nodes(t, 'default');
    const told = await cancelledThenGranted(t, a, b);
    t.same(await held(engine), ['a held write p1 0-14'], "b's release granted p1's waiter, merged");
    if (learn === 'inbox') {
      await inboxHolds(a, "the grant's event in a's inbox");
      a.release();
    }
    const before = released.length;
    a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
    // Answered as failed with no reply: the release is owed to the file's next step (ARCHITECTURE
    // "No reply"), carried with the cancelled waiter's owed removal once a reaches the engine.
    t.match(await answered(a, 3, "p1's unlock of [0,10), while a is cut off: no reply"), { result: -ENOLCK }, 'no reply: its release owed');
    a.policy = () => 'pass';
    await engineIs(engine, [], 'nothing of p1 in the engine');
    b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 0, 20), b.target);
    t.match(await answered(b, 3, "q3's lock of [0,20)"), { result: 0 }, '[0,20) is free');
    if (learn === 'stale') a.release();
    t.same(released.slice(before).filter((n) => n !== 'posix:0+10'), [], 'no release notice but the unlock of [0,10)');
    t.equal(told.length, 1, 'the caller was told once');
    t.same(a.faults, [], 'nothing reported (a)');
  });
}
