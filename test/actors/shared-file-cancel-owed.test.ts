/**
 * A waiting request of node a (a blocking LockFileEx, an F_SETLKW) whose timeout or signal comes
 * while a is cut off from the engine (its steps get no reply) or fenced (a renewal late): it is
 * answered at once (timeout 33 / -EAGAIN, abort 995 / -EINTR), not when a reaches the engine
 * again, and its waiter's removal is owed to the file's next step that reaches the engine, carried
 * by a request of a or by the owed-retry timer alone. A grant of that waiter by node b that comes
 * after the answer (read from a's inbox, or learned from a stale reply's changes or the whole
 * record set) is never told and is undone by the owed step; an engine reset while it is owed does
 * not put the waiter or its grant back. When the waiter's owner has another waiter on the file,
 * the old rule is kept for that cancel (a grant of one could not be told from the other's): it is
 * answered once its removal commits, and a grant that comes first stands and is told. Real SharedFiles over a MemoryEngine, behind the lost-link
 * harness; every wait is for an answer or an engine state, within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, EINTR, ERROR_LOCK_VIOLATION, ERROR_OPERATION_ABORTED, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { CancelReason } from '../../src/core/lock-table.js';
import type { CommitReply, Step } from '../../src/store/types.js';
import { BUDGET_MS, answered, endGrace, lf, lk, lw, overflowLog, uf, within, type TestNode } from './lost-link.js';
import { answersTo, conflicts, engineIs, held, nodes, resetBoth, until } from './reset-harness.js';
import { twoNodes } from './stages.js';

type Family = 'windows' | 'posix';
/** How a is cut off: its steps get no reply ('drop'), or the node is fenced, its renewal late ('fenced'). */
type Cut = 'drop' | 'fenced';
/** Whether b grants a's waiter after the answer, and how a learns of it. */
type Grant = 'none' | 'inbox' | 'stale' | 'whole';
/** What carries the owed removal once a reaches the engine again: a request of a, or the owed-retry timer alone. */
type Carry = 'step' | 'timer';

/** Cuts a off as `cut` says; returns what heals it (every step passes again, the lease moves on). */
function cutOff(a: TestNode, cut: Cut): () => void {
  a.policy = () => 'drop';
  if (cut === 'drop') return () => (a.policy = () => 'pass');
  // Fenced for a late renewal: the lease is past, and the node's own fence refuses every step.
  a.lease[0] = performance.timeOrigin + performance.now() - 1;
  const link = a.sf.link as { commit: (s: Step) => Promise<CommitReply> };
  const inner = link.commit;
  let fenced = true;
  link.commit = (s) => (fenced ? Promise.resolve({ ok: false, reason: 'fenced' }) : inner(s));
  return () => {
    fenced = false;
    a.policy = () => 'pass';
    a.lease[0] = Number.POSITIVE_INFINITY;
  };
}

const code = (family: Family, reason: CancelReason): unknown =>
  family === 'windows' ? (reason === 'timeout' ? ERROR_LOCK_VIOLATION : ERROR_OPERATION_ABORTED) : { result: reason === 'timeout' ? -EAGAIN : -EINTR };

/**
 * Windows: b's handle 1 holds [0,10), a's handle 7 waits for it (a's request 1). POSIX: b's q2
 * holds [10,20), a's p1 holds [0,10) and waits for [5,15) (a's request 2). Returns the waiter's id.
 */
async function setUp(t: Test, a: TestNode, b: TestNode, family: Family): Promise<number> {
  if (family === 'windows') {
    b.sf.run(1, lf(1, 0, 10), b.target);
    t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0);
    a.sf.run(1, lw(7, 0, 10), a.target);
    await answered(a, -1, "a's handle 7 waits for [0,10)");
    return 1;
  }
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 });
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 });
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 10), a.target);
  await answered(a, -2, "p1's waiter for [5,15)");
  return 2;
}

/** b's release of what a's waiter waits behind (b's request 2). */
async function bReleases(t: Test, b: TestNode, family: Family): Promise<void> {
  b.sf.run(2, family === 'windows' ? uf(1, 0, 10) : lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 2, "b's release"), family === 'windows' ? 0 : { result: 0 }, "b's release is answered");
}

/** a's lock of [40,50) (request 10), which carries what a owes. */
const aLater = (family: Family) => (family === 'windows' ? lf(5, 40, 10) : lk('p3', 3, F_WRLCK, F_SETLK, 40, 10));

/**
 * What b finds: a's waiter took nothing (Windows: b's handle 2 gets [0,10); POSIX: b's q3 gets
 * [10,20), and q4 is refused [0,10), which p1 holds as before).
 */
async function bFinds(t: Test, b: TestNode, family: Family): Promise<void> {
  if (family === 'windows') {
    b.sf.run(3, lf(2, 0, 10), b.target);
    t.equal(await answered(b, 3, "b's handle 2 locks [0,10)"), 0, "[0,10) is free: a's handle 7 holds none of it");
    return;
  }
  b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 3, "q3's lock of [10,20)"), { result: 0 }, '[10,20) is free: p1 holds none of [10,15)');
  b.sf.run(4, lk('q4', 4, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 4, "q4's lock of [0,10)"), { result: -EAGAIN }, 'p1 still holds [0,10)');
}

/** The engine's records of a once healed: p1's [0,10) (POSIX), and a's later lock if a request carried the owed step. */
function aHolds(family: Family, carry: Carry): string[] {
  const later = carry === 'step' ? [family === 'windows' ? 'a held write 5 40-49' : 'a held write p3 40-49'] : [];
  return family === 'windows' ? later : ['a held write p1 0-9', ...later];
}

/** What b holds once it released (grant) or not. */
function bHolds(family: Family, released: boolean): string[] {
  if (released) return [];
  return [family === 'windows' ? 'b held write 1 0-9' : 'b held write q2 10-19'];
}

async function scenario(t: Test, family: Family, reason: CancelReason, cut: Cut, grant: Grant, carry: Carry): Promise<void> {
  const { engine, a, b } = await twoNodes(t);
  const id = await setUp(t, a, b, family);
  const told = answersTo(a, id);
  const heal = cutOff(a, cut);
  const sent = a.log.length;
  a.sf.cancel(id, reason);
  t.match(await answered(a, id, `the ${reason} of a's waiter, while a is cut off`), code(family, reason), `answered at once with its ${reason} code`);
  t.equal(a.log.length, sent, 'while a is still cut off: no step of a reached the engine since');
  t.ok((await held(engine)).some((l) => l.startsWith('a waiting')), "the engine still holds a's waiter (its removal owed)");
  if (grant !== 'none') {
    a.held = [];
    await bReleases(t, b, family);
    t.ok((await held(engine)).some((l) => l.startsWith('a held') && (family === 'windows' ? l === 'a held write 7 0-9' : l === 'a held write p1 0-14')), "b's release granted a's waiter in the engine");
    if (grant === 'inbox') {
      await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
      a.release();
    }
    if (grant === 'whole') await overflowLog(engine, b.store);
  }
  heal();
  if (carry === 'step') {
    a.sf.run(10, aLater(family), a.target);
    t.match(await answered(a, 10, "a's lock of [40,50), carrying the owed removal"), family === 'windows' ? 0 : { result: 0 });
    t.same(await held(engine), [...aHolds(family, carry), ...bHolds(family, grant !== 'none')].sort(), "the engine: no waiter of a, nothing its grant gave");
  } else {
    await engineIs(engine, [...aHolds(family, carry), ...bHolds(family, grant !== 'none')].sort(), 'the owed removal, carried by the owed-retry timer');
  }
  if (grant !== 'none' && grant !== 'inbox') a.release();
  if (grant === 'none') await bReleases(t, b, family);
  await bFinds(t, b, family);
  const lines = await held(engine);
  t.same(conflicts(lines), [], 'no two conflicting locks');
  t.notOk(lines.some((l) => l.startsWith('a waiting')), 'no waiter of a');
  t.equal(told.length, 1, 'the caller was told once');
  t.match(told[0], code(family, reason), 'never granted');
  t.same(a.faults, [], 'nothing reported (a)');
  t.same(b.faults, [], 'nothing reported (b)');
}

const cases: [Family, CancelReason, Cut, Grant, Carry][] = [
  ['windows', 'timeout', 'drop', 'none', 'timer'],
  ['windows', 'abort', 'drop', 'inbox', 'step'],
  ['windows', 'timeout', 'drop', 'stale', 'step'],
  ['windows', 'abort', 'drop', 'whole', 'timer'],
  ['windows', 'timeout', 'fenced', 'none', 'step'],
  ['windows', 'abort', 'fenced', 'inbox', 'timer'],
  ['posix', 'timeout', 'drop', 'none', 'step'],
  ['posix', 'abort', 'drop', 'inbox', 'timer'],
  ['posix', 'timeout', 'fenced', 'stale', 'step'],
  ['posix', 'abort', 'drop', 'whole', 'step'],
];
for (const [family, reason, cut, grant, carry] of cases) {
  t.test(`${family}: a waiter's ${reason} while a is ${cut === 'drop' ? 'cut off' : 'fenced'}, ${grant === 'none' ? 'no grant' : `b's grant after the answer (${grant})`}, owed removal carried by ${carry === 'step' ? 'the next step' : 'the retry timer'}`, (t) =>
    scenario(t, family, reason, cut, grant, carry),
  );
}

// An engine reset while the removal is owed: neither the waiter nor what b's grant gave it goes back.
for (const [family, reason, grant] of [
  ['windows', 'timeout', 'none'],
  ['windows', 'abort', 'inbox'],
  ['posix', 'timeout', 'inbox'],
] as [Family, CancelReason, Grant][]) {
  t.test(`${family}: a waiter's ${reason} answered while a is cut off, ${grant === 'none' ? 'no grant' : "b's grant read from the inbox"}, then the engine loses its data: nothing of it goes back`, async (t) => {
    const { engine, a, b } = await nodes(t, 'default', null);
    const id = await setUp(t, a, b, family);
    const told = answersTo(a, id);
    a.policy = () => 'drop';
    const sent = a.log.length;
    a.sf.cancel(id, reason);
    t.match(await answered(a, id, `the ${reason} of a's waiter, while a is cut off`), code(family, reason), `answered at once with its ${reason} code`);
    t.equal(a.log.length, sent, 'while a is still cut off');
    if (grant === 'inbox') {
      a.held = [];
      await bReleases(t, b, family);
      await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
      a.release();
    }
    // a puts back p1's [0,10) (POSIX) and nothing of its waiter; b its lock, unless it released it.
    const aSends = family === 'posix';
    const bSends = grant === 'none';
    await resetBoth(engine, a, b, !bSends, !aSends);
    const back = await held(engine);
    t.notOk(back.some((l) => l.startsWith('a waiting')), "a's waiter is not put back");
    t.same(back, [...(family === 'posix' ? ['a held write p1 0-9'] : []), ...bHolds(family, grant !== 'none')].sort(), 'what goes back: nothing of the waiter or its grant');
    // a reaches the engine again: its next step (an unlock of bytes it never locked; a lock would
    // wait out the grace period) commits.
    a.policy = () => 'pass';
    a.sf.run(10, family === 'windows' ? uf(99, 1000, 1) : lk('p9', 9, F_UNLCK, F_SETLK, 1000, 1), a.target);
    t.match(await answered(a, 10, "a's unlock of nothing after the re-assertion"), family === 'windows' ? 158 : { result: 0 });
    await endGrace(engine, a, b);
    if (grant === 'none') await bReleases(t, b, family);
    await bFinds(t, b, family);
    const lines = await held(engine);
    t.same(conflicts(lines), [], 'no two conflicting locks');
    t.notOk(lines.some((l) => l.startsWith('a waiting')), 'no waiter of a');
    t.equal(told.length, 1, 'the caller was told once');
  t.match(told[0], code(family, reason), 'never granted');
    t.same(a.faults, [], 'nothing reported (a)');
    t.same(b.faults, [], 'nothing reported (b)');
  });
}

// The owner has another waiter on the file (a's handle 7 waits for [0,10) and for [20,30)): a
// grant of the cancelled one could not be told apart from the other's in the engine's records,
// nor undone, so the old rule is kept for that cancel: it is not answered at once; b's grant,
// which comes first, stands and is told, once.
t.test("windows: a waiter's timeout while a is cut off, its owner waiting here for other bytes too, b's grant before the cancel applies: the old rule, the grant stands and is told once", async (t) => {
  const { engine, a, b } = await twoNodes(t);
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0);
  b.sf.run(5, lf(1, 20, 10), b.target);
  t.equal(await answered(b, 5, "b's handle 1 locks [20,30)"), 0);
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for [0,10)");
  a.sf.run(2, lw(7, 20, 10), a.target);
  await answered(a, -2, "a's handle 7 waits for [20,30)");
  const told = answersTo(a, 1);
  a.policy = () => 'drop';
  a.held = [];
  const gaveUp = new Promise<void>((r) => (a.afterDrop = async () => r()));
  a.sf.cancel(1, 'timeout');
  await within(gaveUp, BUDGET_MS, "the cancel's step dropped");
  await bReleases(t, b, 'windows');
  t.ok((await held(engine)).includes('a held write 7 0-9'), "b's release granted a's waiter in the engine");
  t.equal(told.length, 0, 'the timeout is not answered while a is cut off (another waiter of its owner: the old rule)');
  a.policy = () => 'pass';
  a.release();
  t.equal(await answered(a, 1, "a's request 1"), 0, 'answered granted, as b decided: the grant stands');
  // b releases [20,30): a's other waiter is granted.
  b.sf.run(6, uf(1, 20, 10), b.target);
  t.equal(await answered(b, 6, "b's release of [20,30)"), 0);
  t.equal(await answered(a, 2, "a's request 2"), 0, "a's other waiter is granted");
  const lines = await held(engine);
  t.same(lines, ['a held write 7 0-9', 'a held write 7 20-29'], 'the engine: a holds both ranges');
  t.same(conflicts(lines), [], 'no two conflicting locks');
  t.equal(told.length, 1, 'the caller was told once');
  t.same(a.faults, [], 'nothing reported (a)');
  t.same(b.faults, [], 'nothing reported (b)');
});
