/**
 * Stages for the 'overdue' tests (a wait-for cycle only through edges of late sessions): a
 * MemoryEngine whose renewals from a cut-off node do not arrive, waits for the engine to count a
 * session late (or not), and the usual stage: q2 (node b) holds /a [0,10), p1 (node a, file
 * handle 1) holds /b [0,10) and waits for /a (p1 -> q2), its handle's close owed while a is cut
 * off. Every wait is for an answer, an engine record or a counter, within the harness's budget.
 */
import type { Test } from 'tap';
import { EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseRelease } from '../../src/core/requests.js';
import { lateAfterMs } from '../../src/store/options.js';
import type { CommitReply, Renewed, SessionRef } from '../../src/store/types.js';
import { BUDGET_MS, MemoryEngine, answered, lk, memoryStore, node, within, type TestNode } from './lost-link.js';
import { resetBoth } from './reset-harness.js';

/** A MemoryEngine whose renewals from the nodes in `cut` do not arrive (the node is cut off from it). */
export class CutEngine extends MemoryEngine {
  readonly cut = new Set<string>();
  override renewSync(s: SessionRef, ttlMs: number, inboxAck: string): Renewed {
    if (this.cut.has(s.node)) throw new Error(`${s.node} is cut off`);
    return super.renewSync(s, ttlMs, inboxAck);
  }
}

export type Nodes = { engine: CutEngine; a: TestNode; b: TestNode };

/** Whether the engine counts `name`'s session late: alive, not renewed for longer than lateAfterMs of its TTL. */
export async function lateOnEngine(engine: MemoryEngine, name: string): Promise<boolean> {
  const read = await engine.sessions();
  const s = read.sessions.find((x) => x.node === name && x.ttlMs !== undefined);
  return s !== undefined && s.ttlMs !== undefined && s.deadline > read.now && s.ttlMs - (s.deadline - read.now) > lateAfterMs(s.ttlMs);
}

/** Resolves once the engine's view of `name`'s session is `late` (checked every 20 ms), within the budget. */
export async function lateIs(engine: MemoryEngine, name: string, late: boolean, what = `${name}'s session ${late ? 'late' : 'renewed'} on the engine`): Promise<void> {
  let over = false;
  try {
    await within(
      (async () => {
        while (!over && (await lateOnEngine(engine, name)) !== late) await new Promise((r) => setTimeout(r, 20));
      })(),
      BUDGET_MS,
      what,
    );
  } finally {
    over = true;
  }
}

/** Cuts a off (its steps and renewals), and resolves once the engine counts its session late. */
export async function cutOff(engine: CutEngine, a: TestNode, what = "a's session late on the engine"): Promise<void> {
  a.policy = () => 'drop';
  engine.cut.add('a');
  await lateIs(engine, 'a', true, what);
}

/** a reaches the engine again: its renewals and steps pass; resolves once the engine no longer counts it late. */
export async function heal(engine: CutEngine, a: TestNode, what = "a's renewal on the engine"): Promise<void> {
  engine.cut.delete('a');
  a.policy = () => 'pass';
  a.store.nudge();
  await lateIs(engine, 'a', false, what);
}

/**
 * Nodes a and b over a CutEngine, closed with the test. `resetGraceMs`: the grace period an
 * incarnation after an engine reset starts with (the engine's first session, 'z', starts this one
 * with none); none by default.
 */
export async function cutNodes(t: Test, policy: 'default' | 'fifo' = 'default', resetGraceMs = 0): Promise<Nodes> {
  const engine = new CutEngine();
  const first = resetGraceMs > 0 ? await memoryStore({}, { engine, node: 'z', graceMs: 0 }) : undefined;
  const a = await node(engine, 'a', policy, 300, resetGraceMs);
  const b = await node(engine, 'b', policy, 300, resetGraceMs);
  await first?.close();
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  return { engine, a, b };
}

/** q2 (b, request 1) writes /a [0,10); p1 (a, request 1, file handle 1) writes /b [0,10). `range` ends the waits' names. */
export async function twoLocks(t: Test, a: TestNode, b: TestNode, range = ' [0,10)'): Promise<void> {
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10, '/a'), b.target);
  t.match(await answered(b, 1, `q2's write of /a${range}`), { result: 0 });
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10, '/b'), a.target);
  t.match(await answered(a, 1, `p1's write of /b${range}`), { result: 0 });
}

/**
 * Resolves with the reply to node `n`'s next step on `file` that checks a waiter's edges for a
 * cycle (EdgeInput.check) and is not refused 'overdue': a check put off for a late session
 * (SharedFile.deferred) that was done. Takes over `n.onReply` until then.
 */
export function checkDone(n: TestNode, file: string): Promise<CommitReply> {
  return new Promise((resolve) => {
    n.onReply = (r, step) => {
      if (step.file !== file || !(step.edges ?? []).some((e) => e.check === true) || (!r.ok && r.reason === 'overdue')) return;
      n.onReply = undefined;
      resolve(r);
    };
  });
}

/** p1 (a, request 2) waits for q2's /a [0,10) (its edge: p1 -> q2). */
export async function p1Waits(a: TestNode, what = "p1's waiter for /a [0,10) queued"): Promise<void> {
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10, '/a'), a.target);
  await answered(a, -2, what);
}

/** twoLocks, then p1Waits: p1 -> q2. */
export async function p1WaitsForQ2(t: Test, a: TestNode, b: TestNode, range = ' [0,10)'): Promise<void> {
  await twoLocks(t, a, b, range);
  await p1Waits(a, `p1's waiter for /a${range} queued`);
}

/**
 * a's steps are lost from now on: p1's handle 1's close of /a (request 3) is given up on (owed),
 * and p1's waiter (request 2) is answered EINTR before it (`says`, if given, names that
 * assertion); its record and edge stay in the engine.
 */
export async function p1CloseOwed(t: Test, a: TestNode, what = "p1's handle 1's close of /a (given up on: owed)", says?: string): Promise<void> {
  a.policy = () => 'drop';
  a.sf.run(3, parseRelease({ path: '/a', fileHandle: 1 }), a.target);
  await answered(a, 3, what);
  if (says === undefined) t.match(a.got.get(2), { result: -EINTR });
  else t.match(a.got.get(2), { result: -EINTR }, says);
}

/**
 * After an engine loss: the engine's first session ('z') starts its incarnation with no grace
 * period; a's and b's own (60 s) is for the incarnation after the reset, so q2's edges stay to be
 * checked whole through it. q2 (b) writes /a, p1 (a) writes /b, q2 waits for p1's /b lock
 * (q2 -> p1); the engine loses everything and both put their records back, q2's waiter without
 * edges (recheck). Behind the re-assertions in the files' mailboxes: unlocks of bytes nobody
 * holds (none by b on /b: q2's waiter is there without edges until b's next step on /b writes
 * them, checked).
 */
export async function putBack(t: Test): Promise<Nodes> {
  const { engine, a, b } = await cutNodes(t, 'default', 60_000);
  await twoLocks(t, a, b, '');
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLKW, 0, 10, '/b'), b.target);
  await answered(b, -2, "q2's waiter for /b queued");
  await resetBoth(engine, a, b);
  b.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/a'), b.target);
  t.match(await answered(b, 3, "b's unlock of nothing on /a, after the re-assertion"), { result: 0 });
  a.sf.run(9, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1, '/b'), a.target);
  t.match(await answered(a, 9, "a's unlock of nothing on /b, after the re-assertion"), { result: 0 });
  return { engine, a, b };
}
