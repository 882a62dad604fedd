/**
 * A step of this node given up on (its reply lost) that leaves part of a lock holding an untold
 * grant's bytes (SharedFile.Lost.marked), then, before this node hears of it, another node's step
 * that grants a waiter of the same owner next to that part, merged with it (the core merges an
 * owner's locks of one mode that touch). This node's next step gets a stale reply whose missed
 * changes show both: the lost step's marks must be known when the other node's change is read
 * (apply, markGrants), or the merged lock takes the untold bytes for bytes its owner was told it
 * holds. twoGrants (notice-stages.ts): p1 holds [5,15), one lock, the bytes [5,10) of a grant
 * never told. Real SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is
 * for an answer, a step or an engine record, within the harness's budget.
 */
import t from 'tap';
import { ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, lk, loseNext, uf, type TestNode } from './lost-link.js';
import { answersTo, held } from './reset-harness.js';
import { endedOnce, flush, lines, lkFh, ownTryDone, twoGrants } from './notice-stages.js';
import { holds, stage, waits } from './stages.js';

/** The records a's cache of /a keeps an origin of (SharedFile.origins) that it no longer has. */
function gone(a: TestNode): string[] {
  const sf = (a.sf as unknown as { files: Map<string, unknown> }).files.get('/a') as { origins: Map<string, unknown>; records: { id: string }[] };
  return [...sf.origins.keys()].filter((id) => !sf.records.some((r) => r.id === id));
}

t.test("a lost unlock of part of a lock holding untold bytes, then another node's step merging what is left with a grant: the flush notices only told bytes", async (t) => {
  const { engine, a, b, released, to1 } = await twoGrants(t);
  await stage(t, holds(b, 10, lk('q9', 9, F_WRLCK, F_SETLK, 15, 5), "q9's lock of [15,20)"));
  const to11 = answersTo(a, 11);
  await stage(t, waits(a, 11, lkFh(2, F_WRLCK, F_SETLKW, 15, 5), "p1's waiter for [15,20)"));
  await ownTryDone(a);
  const at = a.log.length;
  // The unlock's step applies, its reply is lost, and a is cut off: every resend gets none.
  loseNext(a, async () => {
    a.policy = () => 'drop';
  });
  a.sf.run(12, lkFh(2, F_UNLCK, F_SETLK, 5, 2), a.target);
  t.match(await answered(a, 12, "p1's unlock of [5,7) (its reply lost)"), { result: -ENOLCK }, 'no reply: the generic code, its release owed');
  lines(t, a.log.slice(at), [/^lose \{"put":\["[^"]+"\],"remove":\["[^"]+"\]\} -> ok$/], "the unlock's step, its reply lost");
  // b's unlock grants p1's waiter: b's step merges it with what the unlock left of p1's lock.
  await stage(t, holds(b, 13, lk('q9', 9, F_UNLCK, F_SETLK, 15, 5), "q9's unlock of [15,20)"));
  t.same(await held(engine), ['a held write p1 7-19'], "b's step granted p1's waiter, merged with what the unlock left");
  t.match(await answered(a, 11, "p1's waiter for [15,20)"), { result: 0 }, 'the waiter told granted');
  t.same(to11.length, 1, 'one answer');
  a.policy = () => 'pass';
  a.sf.run(14, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 14, "handle 99's unlock of nothing (a's next step)"), 158);
  lines(t, a.log.slice(at + 1), [/ -> stale missed$/], "a's next step: a stale reply whose missed changes show the unlock's step and b's");
  t.same(gone(a), [], "a keeps no origin of a record gone (the lost step's, the waiter's: b's step removed them)");
  a.sf.run(15, flush, a.target);
  await answered(a, 15, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:5+2', 'posix:10+10'], "the unlock's own notice (delivered once its step shows applied), then the flush's for the told bytes only: the told grant's and the waiter's");
  t.same(a.faults, [], 'nothing reported');
});
