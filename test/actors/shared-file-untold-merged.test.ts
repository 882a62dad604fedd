/**
 * The untold rule (SharedFile.untold, markGrants) when another node's step grants a POSIX waiter
 * of this node next to a lock its owner holds already: the core merges them (fs/locks.c), so the
 * engine's record of the owner's lock after that step holds bytes the owner was told it holds and
 * the grant's bytes. p1 holds [0,5) and waits for [5,10) (q9 of node b holds them); b's unlock
 * grants the waiter, and the engine has one record, p1's [0,10). When the caller was never told
 * that grant (its handle's close ended the waiter first), a release of that lock is noticed for
 * the bytes the caller held only ([0,5)); when it was told, for all of them. The same for a
 * flush, and for a lock that stands for two grants through two handles, one told, one not, also
 * once this node's own step merged it with a lock its owner asked for (those bytes told). Real
 * SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is for an answer, an
 * inbox event or an engine record, within the harness's budget.
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, lk, type MemoryEngine, type TestNode } from './lost-link.js';
import { answersTo, conflicts, held } from './reset-harness.js';
import { close, closeOwed, endedOnce, flush, grantHeld, heal, inFlight, learnSettle, lkFh, mergedWaiter, twoGrants as twoGrantsStage } from './notice-stages.js';
import { holds, owedCutOff, stage, waits, type Req } from './stages.js';

// The stage (mergedWaiter, notice-stages.ts): q9 (node b) holds [5,10); p1 (node a) holds [0,5)
// and waits for [5,10) (request 4), both through file handle 1; `unlock` is q9's unlock (b's 3).

/** b's `unlock` grants a's waiter: its event waits in a's inbox (held back); the engine merged the grant with p1's [0,5). */
async function bGrants(t: Test, engine: MemoryEngine, a: TestNode, unlock: Req): Promise<void> {
  await grantHeld(t, a, unlock, 1);
  t.same(await held(engine), ['a held write p1 0-9'], "the engine merged the grant with p1's lock: one record");
}

for (const [learned, settled] of [
  ['inbox', 'next step'],
  ['inbox', 'engine reset'],
  ['stale reply', 'next step'],
] as const) {
  t.test(`a close owed (never applied), then another node grants its ended waiter next to the owner's lock, merged (learned from the ${learned}), the close settled by the ${settled}: the notice covers only the bytes the caller held`, async (t) => {
    const n = await mergedWaiter(t);
    const { engine, a, released, unlock } = n;
    const told = answersTo(a, 4);
    await closeOwed(t, a, told, 'the waiter ended with the close, before its answer');
    await bGrants(t, engine, a, unlock);
    await learnSettle(t, n, learned, settled, holds(a, 6, lk('p7', 7, F_WRLCK, F_SETLK, 80, 10), "p7's lock of [80,90)"));
    const after = (await held(engine)).filter((x) => !x.includes(' p7 80-89'));
    t.same(after, [], 'the engine: nothing of p1');
    endedOnce(t, told, 'the waiter was told once, never granted');
    t.same(released, ['posix:0+5'], "the close's notice for the bytes p1 held, told once; none for the grant's bytes it never held");
    t.same(a.faults, [], 'nothing reported');
  });
}

// The close's own step finds the waiter granted (stale: b's grant came first), is decided again on
// the merged record and commits before the grant's event is read: the waiter ends with the close.
t.test("a close whose step finds its handle's waiter granted by another node and merged with the owner's lock, before the grant's event: the notice covers only the bytes the caller held", async (t) => {
  const { engine, a, released, unlock } = await mergedWaiter(t);
  const told = answersTo(a, 4);
  await inFlight(a, close(1), () => bGrants(t, engine, a, unlock));
  t.same(await held(engine), [], 'the close committed: nothing of p1');
  a.release();
  await answered(a, 4, "p1's waiter");
  endedOnce(t, told, 'the waiter was told once, never granted');
  t.same(released, ['posix:0+5'], "the close's notice for the bytes p1 held; none for the grant's");
  t.same(a.faults, [], 'nothing reported');
});

// The same close, the grant's event read while its step is on its way (after the decision, before
// its reply): the close's answer tells the waiter granted (SharedFiles.endThrough), so the caller
// was told it held all of the merged lock the close released, and its notice covers all of it.
t.test("a close decided on its waiter's grant merged with the owner's lock, the grant's event read before the close's reply: the waiter told granted and the notice covers the whole merged lock", async (t) => {
  const { engine, a, released, unlock } = await mergedWaiter(t);
  const told = answersTo(a, 4);
  await inFlight(a, close(1), async () => {
    await bGrants(t, engine, a, unlock);
    a.onReply = (r) => {
      if (!r.ok) return;
      a.onReply = undefined;
      a.release();
    };
  });
  await answered(a, 4, "p1's waiter");
  t.same(await held(engine), [], 'the close committed: nothing of p1');
  t.match(told, [{ result: 0 }], 'the waiter: one answer, granted (its event read before the close was answered)');
  t.same(released, ['posix:0+10'], "the close's notice for all of the merged lock, once");
  t.same(a.faults, [], 'nothing reported');
});

// A close(2) of the last descriptor: FUSE sends the flush (p1's locks go, its waiters keep
// waiting), then the release (the handle's waiters end). Both owed, the grant comes after them:
// the flush leaves the grant alone (Run.spared), the release takes it, and neither tells it.
for (const learned of ['inbox', 'stale reply'] as const) {
  t.test(`a flush and the close of the waiter's handle owed, then another node grants the ended waiter, merged with the owner's lock (learned from the ${learned}): notices only for the bytes the caller held`, async (t) => {
    const n = await mergedWaiter(t);
    const { engine, a, released, unlock } = n;
    const told = answersTo(a, 4);
    await owedCutOff(a, 5, flush, "p1's flush");
    await closeOwed(t, a, told, 'the waiter ended with the close', close(1), undefined, 6);
    await bGrants(t, engine, a, unlock);
    await learnSettle(t, n, learned, 'next step', holds(a, 8, lk('p7', 7, F_WRLCK, F_SETLK, 80, 10), "p7's lock of [80,90)"));
    t.same((await held(engine)).filter((x) => !x.includes(' p7 80-89')), [], 'the engine: nothing of p1');
    endedOnce(t, told, 'the waiter was told once, never granted');
    t.same(released, ['posix:0+5'], "the flush's notice for the bytes p1 held; none for the grant's bytes");
    t.same(a.faults, [], 'nothing reported');
  });
}

// One step of b grants two waiters of p1 next to each other: [5,10) through handle 1, then
// [10,15) through handle 2, which the core merges into one lock through handle 2. Handle 1's
// close ended the first before (untold); the second is told (twoGrants, notice-stages.ts). p1's
// flush releases the merged lock: its notice covers the told grant's bytes only. `then`: what p1
// locks itself before the flush (none; [15,20), which this node's step merges with the grants'
// lock; the first grant's bytes [5,10), which it is then told it holds; [5,20) with a wait behind
// p7 of this node, whose unlock grants it in this node's step: told granted, all of it is p1's).
async function twoGrants(t: Test, then?: 'next' | 'again' | 'waits') {
  const { engine, a, released, to1 } = await twoGrantsStage(t, undefined, "handle 99's unlock of nothing");
  t.same(released, [], 'the owed close of handle 1 released nothing: the merged lock is through handle 2');
  if (then === 'waits') {
    await stage(t, holds(a, 10, lk('p7', 7, F_WRLCK, F_SETLK, 15, 5), "p7's lock of [15,20)"));
    const toW = answersTo(a, 9);
    await stage(t, waits(a, 9, lkFh(2, F_WRLCK, F_SETLKW, 5, 15), "p1's waiter for [5,20), behind p7"), holds(a, 11, lk('p7', 7, F_UNLCK, F_SETLK, 15, 5), "p7's unlock of [15,20)"));
    await answered(a, 9, "p1's lock of [5,20)");
    t.match(toW, [{ result: 0 }], "p1's waiter told granted");
    t.same(await held(engine), ['a held write p1 5-19'], "p1's lock merged with the grants'");
  } else if (then !== undefined) {
    // p1 locks bytes itself: this node's own step merges them with the lock that holds the grants.
    const [start, len] = then === 'next' ? [15, 5] : [5, 5];
    await stage(t, holds(a, 9, lkFh(2, F_WRLCK, F_SETLK, start, len), `p1's lock of [${start},${start + len})`));
    t.same(await held(engine), [then === 'next' ? 'a held write p1 5-19' : 'a held write p1 5-14'], "p1's lock merged with the grants'");
  }
  a.sf.run(8, flush, a.target);
  await answered(a, 8, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  t.same(conflicts(await held(engine)), [], 'no two conflicting locks');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  // ('waits': p7's unlock told its own notice first.)
  t.same(released, then === 'next' ? ['posix:10+10'] : then === 'again' ? ['posix:5+10'] : then === 'waits' ? ['posix:15+5', 'posix:5+15'] : ['posix:10+5'], "the flush's notice for the bytes the caller was told it holds; none for the first grant's unless it locked them itself");
  t.same(a.faults, [], 'nothing reported');
}

t.test("one step of another node grants an owner's two adjacent waiters through two handles, merged into one lock; the first ended untold by its handle's close: the owner's flush notices only the told grant's bytes", (t) => twoGrants(t));

// The marks of a grant's bytes follow the lock this node's own step merges it into (the merged
// lock has the request's origin, not the grant's), except for the bytes the request asked for and
// those of its owner's waiters the step granted: told.
t.test("the same, then the owner locks the next bytes itself, which this node's step merges with the grants' lock: the flush notices only the bytes the caller was told it holds", (t) => twoGrants(t, 'next'));
t.test("the same, then the owner locks the untold grant's bytes itself: told granted, they are its, and the flush notices all of the lock", (t) => twoGrants(t, 'again'));
t.test("the same, then the owner waits for the grants' bytes and more, granted by this node's step: told granted, the flush notices all of the lock", (t) => twoGrants(t, 'waits'));

// Beside them, what stays: a grant told to the caller (its event read while the request waited)
// is the owner's lock like any other, and the close's notice covers all of the merged lock.
for (const how of ['close', 'flush'] as const) {
  t.test(`a waiter granted by another node next to the owner's lock, merged, and told so, then an owed ${how}: the notice covers the whole merged lock`, async (t) => {
    const { engine, a, released, unlock } = await mergedWaiter(t);
    const told = answersTo(a, 4);
    await bGrants(t, engine, a, unlock);
    a.release();
    await answered(a, 4, "p1's waiter");
    t.match(told, [{ result: 0 }], 'told granted');
    await owedCutOff(a, 5, how === 'close' ? close(1) : flush, `p1's ${how}`);
    await heal(t, a, 7);
    t.same(await held(engine), [], 'the engine: nothing of p1');
    t.same(released, ['posix:0+10'], `the ${how}'s notice, for all of the merged lock, once`);
    t.same(a.faults, [], 'nothing reported');
  });
}
