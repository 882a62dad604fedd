/**
 * The undo of a lock request's step (applied with its reply lost, the request answered as failed:
 * SharedFile.Unsure) whose waiter another node's step granted meanwhile, merged with the owner's
 * lock holding an untold grant's bytes (grantedAway): the undo puts that lock back, and it keeps
 * its marks (Unsure.marks), as the undo of a step that replaced it itself does. twoGrants
 * (notice-stages.ts). Likewise a waiter whose cancel was answered before its removal committed
 * (cancelAnswered), granted so. twoGrants: p1 holds [5,15), one lock, the bytes [5,10) of a grant never told (its
 * handle's close came first), [10,15) of one told. Real SharedFiles over a MemoryEngine, behind
 * the lost-link harness; every wait is for an answer, a step or an engine record, within the
 * harness's budget.
 */
import t from 'tap';
import { EAGAIN, ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, lk, loseNext, uf } from './lost-link.js';
import { held } from './reset-harness.js';
import { cancelCut, endedOnce, faults, flush, lkFh, ownTryDone, twoGrants } from './notice-stages.js';
import { holds, stage, waits } from './stages.js';

// q9 (b) holds [15,20); p1's blocking lock of it queues a waiter, its step's reply lost (a then cut
// off): the request is answered as failed. b's unlock grants the waiter, merged with p1's lock:
// [5,20). a's next step finds the waiter's step applied and granted elsewhere, and undoes the
// grant: p1's lock of [5,15) goes back, with its marks.
t.test("a waiter's step applied with its reply lost, its request answered as failed, then granted by another node merged with a lock holding untold bytes: the lock the undo puts back keeps the marks", async (t) => {
  const { engine, a, b, released, to1 } = await twoGrants(t);
  await stage(t, holds(b, 10, lk('q9', 9, F_WRLCK, F_SETLK, 15, 5), "q9's lock of [15,20)"));
  await ownTryDone(a);
  loseNext(a, async () => {
    a.policy = () => 'drop';
  });
  a.sf.run(11, lkFh(2, F_WRLCK, F_SETLKW, 15, 5), a.target);
  t.match(await answered(a, 11, "p1's lock of [15,20) (its reply lost: answered as failed)"), { result: -ENOLCK }, 'answered as failed: the generic code');
  t.same(await held(engine), ['a held write p1 5-14', 'a waiting write p1 15-19', 'b held write q9 15-19'], "the waiter's step applied");
  await stage(t, holds(b, 12, lk('q9', 9, F_UNLCK, F_SETLK, 15, 5), "q9's unlock of [15,20)"));
  t.same(await held(engine), ['a held write p1 5-19'], "b's step granted p1's waiter, merged with p1's lock");
  a.policy = () => 'pass';
  a.sf.run(13, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 13, "handle 99's unlock of nothing (a's next step: the undo)"), 158);
  t.same(await held(engine), ['a held write p1 5-14'], "the grant undone: p1 holds what it held");
  faults(t, a, [/another node granted its waiter; undone$/], 'the step found applied, its waiter granted elsewhere, undone');
  a.sf.run(14, flush, a.target);
  await answered(a, 14, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:10+5'], "the flush's notice for the told grant's bytes only");
});

// The same with a cancel: p1's waiter for [15,20) queued (its step committed); a cut off, its
// timeout is answered at once (the removal owed: cancelAnswered); b's unlock grants it in the
// engine, merged with p1's lock. a's next step undoes the grant (never told): p1's lock of [5,15)
// goes back, with its marks.
t.test("a waiter whose timeout was answered before its removal committed, granted by another node merged with a lock holding untold bytes: the lock the undo puts back keeps the marks", async (t) => {
  const { engine, a, b, released, to1 } = await twoGrants(t);
  await stage(t, holds(b, 10, lk('q9', 9, F_WRLCK, F_SETLK, 15, 5), "q9's lock of [15,20)"), waits(a, 11, lkFh(2, F_WRLCK, F_SETLKW, 15, 5), "p1's waiter for [15,20)"));
  const told = await cancelCut(t, a, 11, 'timeout', -EAGAIN, "the timeout of p1's waiter, while a is cut off", 'answered at once');
  await stage(t, holds(b, 12, lk('q9', 9, F_UNLCK, F_SETLK, 15, 5), "q9's unlock of [15,20)"));
  t.same(await held(engine), ['a held write p1 5-19'], "b's step granted p1's waiter, merged with p1's lock");
  a.policy = () => 'pass';
  a.sf.run(13, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 13, "handle 99's unlock of nothing (a's next step: the undo)"), 158);
  t.same(await held(engine), ['a held write p1 5-14'], 'the grant undone: p1 holds what it held');
  a.sf.run(14, flush, a.target);
  await answered(a, 14, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.equal(told.length, 1, 'the cancelled waiter was told once');
  t.same(released, ['posix:10+5'], "the flush's notice for the told grant's bytes only");
  t.same(a.faults, [], 'nothing reported');
});
