/**
 * Stress run sb-7 (issue 13, seed 1269950673): after an engine reset, a waiter this node put back
 * is granted at the end of the grace period by another node's step, and its owner unlocks the
 * bytes as soon as it is told. The unlock's step finds the file changed (stale) and the missed
 * changes it brings start at the new incarnation: the first is this node's own re-assertion, which
 * put the waiter's record back as 'waiting' over the cache's stand-in for the grant
 * (grantedRemotely) before the fix; the next, the other node's grant, removed it, and apply() took that for a
 * grant that came while the unlock was in flight (grantedIn, spare): the unlock spared it, was
 * answered 0 and released nothing. The lock stayed in the engine and in this node's cache, is put
 * back by every later reset, and whoever waits for its bytes waits until its owner unlocks them
 * again; through those waiters' edges the owner's later F_SETLKW get EDEADLK that no cycle the
 * owner knows of explains (the run's 7 false-deadlock violations: docs/SEMANTICS-POSIX.md §6
 * "never a false EDEADLK from stale data"). Now apply() keeps the stand-in granted (the grant was
 * read after the re-assertion's step): the unlock releases it. test/actors/shared-file-reset-grant-unlock.test.ts
 * is the same defect for POSIX and Windows with one ordering; this one adds the EDEADLK it led to.
 * Real SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is for an answer,
 * a re-assertion or the end of the grace period, within the harness's budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, answered, code, lk, within } from './lost-link.js';
import { graceOver, held, nodes, resetBoth } from './reset-harness.js';

for (const order of ['b', 'b then a'] as const) {
  t.test(
    `a waiter put back after a reset and granted by another node's pass at the grace period's end (${order} looking): its owner's unlock right after the grant releases it`,
    {},
    async (t) => {
      const { engine, a, b } = await nodes(t);
      // q1 holds [0,10) and q3 [20,30) on b (q3 keeps b putting records back); p1 on a waits for [0,10).
      b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
      t.match(await answered(b, 1, "q1's lock of [0,10)"), { result: 0 }, 'q1 holds [0,10)');
      b.sf.run(2, lk('q3', 3, F_WRLCK, F_SETLK, 20, 10), b.target);
      t.match(await answered(b, 2, "q3's lock of [20,30)"), { result: 0 }, 'q3 holds [20,30)');
      a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10), a.target);
      await answered(a, -1, "p1's waiter for [0,10) queued");
      // The engine loses its data; both nodes put their records back; q1 unlocks in the grace period.
      await resetBoth(engine, a, b);
      b.sf.run(3, lk('q1', 1, F_UNLCK, F_SETLK, 0, 10), b.target);
      t.match(await answered(b, 3, "q1's unlock"), { result: 0 }, 'q1 unlocks in the grace period');
      t.same(await held(engine), ['a waiting write p1 0-9', 'b held write q3 20-29'], "the engine: p1's waiter, put back, and q3's lock");
      // p1 unlocks [0,10) as soon as it is told granted.
      const granted = answered(a, 1, "p1's write lock of [0,10)").then((r) => {
        a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
        return r;
      });
      if (order === 'b') await graceOver(engine, '/a', b);
      else await graceOver(engine, '/a', b, a);
      t.match(await granted, { result: 0 }, "p1 is granted [0,10) by b's pass");
      t.match(await answered(a, 2, "p1's unlock of [0,10)"), { result: 0 }, 'the unlock is answered 0');
      t.same(await held(engine), ['b held write q3 20-29'], 'the engine: p1 holds nothing');
      // q3 (holding [20,30)) asks [0,10) and waits if p1's lock stayed; p1 then asks [20,30) and
      // waits for q3: a cycle only through the lock p1 no longer holds (the run's EDEADLK).
      b.sf.run(4, lk('q3', 3, F_WRLCK, F_SETLKW, 0, 10), b.target);
      const q3 = await within(Promise.race([b.answer(-4).then(() => 'queued'), b.answer(4).then(code)]), BUDGET_MS, "q3's write of [0,10): granted or queued");
      t.equal(q3, 0, '[0,10) is free: q3 is granted it at once');
      a.sf.run(3, lk('p1', 1, F_WRLCK, F_SETLKW, 20, 10), a.target);
      const p1 = await within(Promise.race([a.answer(-3).then(() => 'queued'), a.answer(3).then(code)]), BUDGET_MS, "p1's write of [20,30): queued or answered");
      t.equal(p1, 'queued', `p1 waits for q3, not refused EDEADLK: q3 waits for nothing of p1 (got ${String(p1)})`);
      // Every waiter ends: q3 lets go of [0,30).
      b.sf.run(5, lk('q3', 3, F_UNLCK, F_SETLK, 0, 30), b.target);
      t.match(await answered(b, 5, "q3's unlock of [0,30)"), { result: 0 }, 'q3 unlocks');
      if (p1 === 'queued') t.match(await answered(a, 3, "p1's write of [20,30)"), { result: 0 }, 'p1 is granted [20,30)');
      if (q3 === 'queued') {
        // Without the fix: p1's unlock of [0,10), again, is what lets q3's waiter end.
        a.sf.run(4, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
        await answered(a, 4, "p1's second unlock of [0,10)");
        await answered(b, 4, "q3's write of [0,10), once p1 unlocked again");
      }
      t.same(a.faults, [], 'nothing reported');
    },
  );
}
