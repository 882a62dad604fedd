/**
 * A lock request's step that applied with its reply lost (the request answered as failed:
 * SharedFile.Unsure) and cannot be undone: what it put stays, and the locks it put that hold
 * bytes of an untold grant keep their marks (Unsure.marked), as a lost step's shown applied do
 * (Lost.marked). Here the undo is still pending when the engine loses its data, and the
 * re-assertion cannot do it (pendingUndos: a downgrade's write lock would go back over bytes its
 * owner no longer held as such). twoGrants (notice-stages.ts): p1 holds [5,15), one lock, the
 * bytes [5,10) of a grant never told (its handle's close came first), [10,15) of one told. Real
 * SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is for an answer, a
 * step or a re-assertion, within the harness's budget.
 */
import t from 'tap';
import { F_RDLCK, F_SETLK } from '../../src/core/codes.js';
import { answered } from './lost-link.js';
import { held, resetBoth } from './reset-harness.js';
import { endedOnce, faults, flush, lines, lkFh, twoGrants, undoCut } from './notice-stages.js';

// p1 read-locks [12,15) (a downgrade: the step removes its lock and puts [5,12) write, [12,15)
// read); the step applies, its reply is lost, the request is answered as failed. a's next step's
// stale reply shows it applied; the undo decided then is cut off. The engine loses its data with
// the undo pending, and the re-assertion cannot do it: what the step put stays, [5,12) with the
// untold bytes' marks.
t.test("a downgrade of a lock holding untold bytes, applied with its reply lost, its undo pending at an engine reset and not done: the write lock left keeps the marks", async (t) => {
  const { engine, a, b, released, to1 } = await twoGrants(t);
  const at = await undoCut(t, a, lkFh(2, F_RDLCK, F_SETLK, 12, 3), "p1's read lock of [12,15) (its reply lost: answered as failed)");
  lines(t, a.log.slice(at), [/^lose \{"put":\["[^"]+","[^"]+"\],"remove":\["[^"]+"\]\} -> ok$/, / -> stale missed$/], "the downgrade's step lost, then a's owed try's stale reply naming it");
  t.same(await held(engine), ['a held read p1 12-14', 'a held write p1 5-11'], 'the engine: the downgrade (the undo never reached it)');
  await resetBoth(engine, a, b, true);
  a.policy = () => 'pass';
  t.same(await held(engine), ['a held read p1 12-14', 'a held write p1 5-11'], 'put back: what the downgrade left (its undo not done)');
  faults(t, a, [/had applied after all; undone$/, /it could not be undone when the engine lost its data/], 'the step found applied, then its undo given up at the reset');
  a.sf.run(10, flush, a.target);
  await answered(a, 10, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:10+2', 'posix:12+3'], "the flush's notices: the told grant's bytes of the write lock, and the read lock p1 asked for");
});
