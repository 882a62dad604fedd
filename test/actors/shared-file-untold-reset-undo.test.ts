/**
 * The marks of an untold grant's bytes (SharedFile.grantOf, grantOrigin) when an undo of a lock
 * request's step (applied with its reply lost, the request answered as failed: Unsure) is still
 * pending as the engine loses its data, and the re-assertion does it (SharedFile.beginReassert,
 * pendingUndos). twoGrants (notice-stages.ts): p1 holds [5,15), one lock, the bytes [5,10) of a
 * grant never told (its handle's close came first), [10,15) of one told. The lock put back keeps
 * the marks, and the flush after notices only the told bytes. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness; every wait is for an answer, a step or a
 * re-assertion, within the harness's budget.
 */
import t from 'tap';
import { F_SETLK, F_WRLCK } from '../../src/core/codes.js';
import { answered } from './lost-link.js';
import { held, resetBoth } from './reset-harness.js';
import { endedOnce, faults, flush, lines, lkFh, twoGrants, undoCut } from './notice-stages.js';

// p1 locks [15,20) (merged with its lock: the step removes the lock holding the untold bytes and
// puts [5,20)); the step applies, its reply is lost, the request is answered as failed. a's next
// step's stale reply shows it applied; the undo decided then (put [5,15) back) is cut off. The
// engine loses its data with the undo pending: the re-assertion does it (pendingUndos), putting
// [5,15) back as a new record. That lock keeps the marks.
t.test('a lock request merged with a lock holding untold bytes, applied with its reply lost, its undo pending at an engine reset: the lock put back keeps the marks', async (t) => {
  const { engine, a, b, released, to1 } = await twoGrants(t);
  const at = await undoCut(t, a, lkFh(2, F_WRLCK, F_SETLK, 15, 5), "p1's lock of [15,20) (its reply lost: answered as failed)");
  lines(t, a.log.slice(at), [/^lose \{"put":\["[^"]+"\],"remove":\["[^"]+"\]\} -> ok$/, / -> stale missed$/], "the lock request's step lost, then a's owed try's stale reply naming it");
  faults(t, a, [/had applied after all; undone$/], 'the step found applied, to be undone');
  t.same(await held(engine), ['a held write p1 5-19'], 'the engine: the merged lock (the undo never reached it)');
  await resetBoth(engine, a, b, true);
  a.policy = () => 'pass';
  t.same(await held(engine), ['a held write p1 5-14'], 'put back: the lock the request merged (the undo done by the re-assertion)');
  a.sf.run(10, flush, a.target);
  await answered(a, 10, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:10+5'], "the flush's notice for the told grant's bytes only");
  faults(t, a, [/had applied after all; undone$/], 'that fault, nothing more');
});
