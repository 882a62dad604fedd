/**
 * A grant read from the inbox before the node's first step after the engine lost its data, then
 * released by that step (found by `locksmith stress --nodes 3 --workload blocking` with faults: a
 * FUSE process's F_SETLKW granted at the end of the grace period after an engine restart, its
 * unlock answered 0, and its lock still listed and blocking others minutes later).
 *
 * a's waiter goes back with the re-assertion (a's cache: just its own records, at version 0); at
 * the end of the grace period b's step grants it, and a reads the grant from its inbox before any
 * step of its own (a stand-in under the waiter's record id). The unlock's step is then stale, and
 * its reply replays the file's steps from version 0: the re-assertion that put the waiter back
 * (as waiting), then b's grant of it. The grant was read before the unlock was decided, so the
 * unlock releases it; before the fix the replay turned the stand-in back into a waiter, b's step
 * then looked like a grant that came after the unlock (spared by it), and the lock stayed held.
 * Property: after the unlock's answer the engine holds nothing of the owner. Real SharedFiles over
 * a MemoryEngine (reset-harness.ts); every wait is for an answer or a step, within a budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { Call } from '../../src/core/requests.js';
import { answered, code, lf, lk, lw, uf } from './lost-link.js';
import { graceOver, held, nodes, resetBoth } from './reset-harness.js';

const families: Record<string, { hold: Call; unlockB: Call; wait: Call; unlockA: Call }> = {
  posix: { hold: lk('p1', 1, F_WRLCK, F_SETLK), unlockB: lk('p1', 1, F_UNLCK, F_SETLK), wait: lk('p2', 2, F_WRLCK, F_SETLKW), unlockA: lk('p2', 2, F_UNLCK, F_SETLK) },
  windows: { hold: lf(1), unlockB: uf(1), wait: lw(2, 0, 10), unlockA: uf(2) },
};

for (const [family, c] of Object.entries(families)) {
  t.test(`${family}: a waiter put back after a reset, granted by another node's step before its node's first step, is released by its owner's unlock`, async (t) => {
    const { engine, a, b } = await nodes(t, 'default', null);
    b.sf.run(1, c.hold, b.target);
    t.equal(code(await answered(b, 1, "b's lock of [0,10)")), 0, 'b holds [0,10)');
    a.sf.run(1, c.wait, a.target);
    await answered(a, -1, "a's waiter for [0,10), queued");
    await resetBoth(engine, a, b);
    // In the grace period the release goes through; the grant it would give waits for its end.
    b.sf.run(2, c.unlockB, b.target);
    t.equal(code(await answered(b, 2, "b's unlock")), 0, 'b unlocks in the grace period');
    // The grace period ends; b's pass grants a's waiter (a takes no step of its own before).
    await graceOver(engine, '/a', b);
    t.equal(code(await answered(a, 1, "a's waiter, granted by b's step")), 0, "a's lock is granted");
    t.match(await held(engine), [/^a held write/], "the engine: a's lock");
    a.sf.run(2, c.unlockA, a.target);
    t.equal(code(await answered(a, 2, "a's unlock")), 0, 'a unlocks: its first step since the re-assertion');
    t.same(await held(engine), [], 'the engine holds nothing: the unlock released the grant');
    b.sf.run(3, c.hold, b.target);
    t.equal(code(await answered(b, 3, "b's lock of [0,10) again")), 0, 'b locks [0,10) again: nothing of a is left in its way');
    t.same([...a.faults, ...b.faults], [], 'nothing reported');
  });
}
