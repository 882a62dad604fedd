/**
 * The moment a late node renews: the engine trusts its edges again at once, but the steps it owes
 * (the close that ended its waiter while it was cut off) commit only after its renewal was
 * answered (SharedFiles.watchRenewal, retryOwed). A waiter of another node whose check was put
 * off for it (SharedFile.deferred), checked in between, finds the cycle through that ended
 * waiter's edge, which is not there any more for its node: it must not be ended EDEADLK for it
 * then. Here a's steps stay lost until b's first check after the renewal was answered (the window
 * made as wide as that check), then pass; b's steps on /b that check a waiter are lost from that
 * first check until a's close is in the engine (so that b's next check comes after it). Real SharedFiles over a MemoryEngine, behind the
 * lost-link harness; every wait is for an answer, an engine record, a step's reply or the
 * engine's view of a session, within the harness's budget.
 */
import t from 'tap';
import { EDEADLK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { CommitReply } from '../../src/store/types.js';
import { BUDGET_MS, answered, lk, within } from './lost-link.js';
import { engineIs } from './reset-harness.js';
import { checkDone, cutNodes, cutOff, lateIs, p1CloseOwed, p1WaitsForQ2 } from './overdue-stages.js';

t.test("a put-off waiter checked right after the late node renewed, before its owed close committed, is not ended EDEADLK through that node's ended waiter", async (t) => {
  const { engine, a, b } = await cutNodes(t);
  await p1WaitsForQ2(t, a, b);
  await p1CloseOwed(t, a, undefined, "p1's waiter ended with the close (owed)");
  await cutOff(engine, a);
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -2, "q2's write of /b queued, its check put off for a's late session");
  // a's renewals arrive again; its steps (the owed close) are still lost until b checked q2 once.
  let holdChecks = false;
  b.policy = (s) => (holdChecks && s.file === '/b' && (s.edges ?? []).some((e) => e.check === true) ? 'drop' : 'pass');
  const first = new Promise<CommitReply>((resolve) => {
    b.onReply = (r, step) => {
      if (step.file !== '/b' || !(step.edges ?? []).some((e) => e.check === true) || (!r.ok && r.reason === 'overdue')) return;
      b.onReply = undefined;
      holdChecks = true;
      resolve(r);
    };
  });
  engine.cut.delete('a');
  a.store.nudge();
  await lateIs(engine, 'a', false, "a's renewal on the engine");
  const r = await within(first, BUDGET_MS, "b's first check of q2's edges after a renewed");
  t.match(r, { ok: false, reason: 'deadlock' }, "the engine sees q2 -> p1 -> q2 through p1's ended waiter's edge (a's close not committed yet)");
  // a's steps pass again: its owed close commits (with its next step), and p1's edge goes.
  a.policy = () => 'pass';
  a.sf.run(4, lk('p5', 5, F_WRLCK, F_SETLK, 0, 10, '/d'), a.target);
  t.match(await answered(a, 4, "p5's write of /d"), { result: 0 });
  await engineIs(engine, ['b held write q2 0-9'], "a's owed close committed: p1's ended waiter gone from /a");
  t.notOk(b.got.has(2), `q2 is not ended (${String((b.got.get(2) as { result?: number } | undefined)?.result)}; EDEADLK is -${EDEADLK})`);
  const next = checkDone(b, '/b');
  holdChecks = false;
  t.match(await within(next, BUDGET_MS, "b's next check of q2's edges"), { ok: true }, 'no cycle once p1 went');
  t.notOk(b.got.has(2), 'q2 still waits');
  a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10, '/b'), a.target);
  await answered(a, 5, "p1's unlock of /b");
  t.match(await answered(b, 2, "q2's write of /b"), { result: 0 }, 'granted once p1 unlocked');
  t.same(b.faults, [], 'nothing reported by b');
});
