/**
 * A close of a handle (closeHandle; release, the last close of an open file description) ends
 * every lock and every waiter of that handle, and its waiters end before it is answered
 * (SEMANTICS-WINDOWS.md §10: a request still waiting on the closing handle ends with 158). When
 * its step gets no reply (applied with the reply lost, or never applied), the close is owed and
 * answered all the same; if the engine then loses its data, the re-assertion settles it
 * (SharedFile.settleOwed) on the records about to go back. Unlike an owed unlock, an owed close
 * spares no grant of its handle's waiter: a lock another node granted that waiter is the
 * handle's, and the close takes it. Orderings checked, with the waiter behind another node's lock:
 * - the close answered, then the other node's unlock grants the waiter in the engine (the close's
 *   step never applied there): the caller was told the waiter ended, and is never told it was
 *   granted; that grant, a lock nobody holds, is not put back (nor left, without a reset);
 * - the waiter granted and told so, then the close: the close releases it;
 * - the grant's event while the close is in flight, and the reset too: the close releases it.
 * Such a grant is a record of the handle in the engine all the same: the close releases it, and
 * its release notice (onUnlockFile: one per released record) is told, once.
 * Invariants checked: after the settlement the engine holds nothing of the closed handle, the
 * other node's locks stay, no two conflicting locks; the other node's waiter gets the bytes at
 * the end of the grace period; every request is answered once. Real SharedFiles over a
 * MemoryEngine behind the lost-link harness; every wait is for an answer or an engine record,
 * within a budget.
 */
import t, { type Test } from 'tap';
import { EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseRelease, type Call } from '../../src/core/requests.js';
import { answered, ch, lf, lk, lw, uf, type TestNode } from './lost-link.js';
import { answersTo, conflicts, graceOver, held, nodes, owedRelease, resetBoth, until } from './reset-harness.js';
import { holds, owedCutOff, stage, waits } from './stages.js';

/** a reaches the engine again; its next step commits (request `id`: an UnlockFileEx of bytes handle 99 never locked). */
async function heal(t: Test, a: TestNode, id: number): Promise<void> {
  a.policy = () => 'pass';
  a.sf.run(id, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, id, "handle 99's unlock of nothing"), 158);
}

/**
 * b's handle 9 holds [20,30); a's handle 1 holds [0,10) and waits for [20,30) (request 4), a's
 * handle 2 holds [60,70); b's handle 8 waits for [20,30) too (b's request 2), queued after it.
 */
async function handleWaits(t: Test, policy: 'default' | 'fifo') {
  const n = await nodes(t, policy);
  const { a, b } = n;
  await stage(
    t,
    holds(b, 1, lf(9, 20, 10), "b's handle 9's lock of [20,30)"),
    holds(a, 1, lf(1, 0, 10), "handle 1's lock of [0,10)"),
    holds(a, 2, lf(2, 60, 10), "handle 2's lock of [60,70)"),
    waits(a, 4, lw(1, 20, 10), "handle 1's waiter for [20,30) queued"),
    waits(b, 2, lw(8, 20, 10), "b's handle 8's waiter for [20,30) queued"),
  );
  return n;
}

/** Handle 1's close (request 5) is owed: its step applied with the reply lost, or never applied (every step of a cut off from then on). */
async function owedClose(a: TestNode, how: 'applied' | 'never applied', call: Call = ch(1)): Promise<void> {
  if (how === 'applied') return owedRelease(a, 5, call, "handle 1's close");
  await owedCutOff(a, 5, call, "handle 1's close");
}

/** b's handle 9 unlocks [20,30); the inbox events it gives a are handed to a before this resolves (`granted`: one is due). */
async function bUnlocks(t: Test, a: TestNode, b: TestNode, granted: boolean): Promise<void> {
  a.held = [];
  await stage(t, holds(b, 3, uf(9, 20, 10), "b's handle 9's unlock of [20,30)"));
  if (granted) await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
  a.release();
}

for (const policy of ['default', 'fifo'] as const) {
  for (const how of ['applied', 'never applied'] as const) {
    // The close is answered with its step's fate unknown; its waiter ends with it, at once. Then
    // b's unlock frees [20,30): the engine gives it to a's waiter if the close never applied
    // there (that waiter is first in the queue), else to b's handle 8. A grant of a's waiter is a
    // lock of a closed handle, which nobody holds: the caller is not told of it, and the
    // settlement of the close does not put it back; b's handle 8 gets the bytes once the grace
    // period ends.
    t.test(`a close owed (${how}) when the engine loses its data, then another node granted its handle's waiter (${policy}): not told, not put back`, async (t) => {
      const { engine, a, b, released } = await handleWaits(t, policy);
      const told = answersTo(a, 4);
      await owedClose(a, how);
      t.same(told, [158], "handle 1's waiter ended with the close, before the close was answered (ERROR_NOT_LOCKED)");
      await bUnlocks(t, a, b, how === 'never applied');
      if (how === 'applied') {
        t.equal(await answered(b, 2, "b's handle 8's LockFileEx of [20,30)"), 0, "b's handle 8 granted by the unlock");
        t.same(await held(engine), ['a held write 2 60-69', 'b held write 8 20-29'], 'the engine: the close applied, b8 holds [20,30)');
      } else {
        t.same(await held(engine), ['a held write 1 0-9', 'a held write 1 20-29', 'a held write 2 60-69', 'b waiting write 8 20-29'], "the engine: the close never applied, b's unlock granted handle 1's waiter");
      }
      await resetBoth(engine, a, b);
      const right = await held(engine);
      t.same(right, ['a held write 2 60-69', how === 'applied' ? 'b held write 8 20-29' : 'b waiting write 8 20-29'], "right after the re-assertions: handle 2's lock and b's handle 8; nothing of handle 1");
      t.same(conflicts(right), [], 'no two conflicting locks');
      await heal(t, a, 6);
      t.same(await held(engine), right, "after a's next step: the same");
      await graceOver(engine, '/a', a, b);
      if (how === 'never applied') t.equal(await answered(b, 2, "b's handle 8's LockFileEx of [20,30)"), 0, "b's handle 8 granted at the grace period's end");
      t.same(await held(engine), ['a held write 2 60-69', 'b held write 8 20-29'], "the engine: handle 2's lock, b's handle 8's");
      t.same(told, [158], 'the waiter was told once, never granted');
      // The grant was a record of handle 1 in the engine that the caller was never told of: the close's release of it is not told either.
      t.same([...released].sort(), ['windows:1:0+10'], 'onUnlockFile once for the lock handle 1 was told it holds, never for the untold grant');
      a.sf.run(7, lf(3, 20, 10), a.target);
      t.equal(await answered(a, 7, "handle 3's lock of [20,30)"), 33, "b's handle 8 holds [20,30)");
      t.same(a.faults, [], 'nothing reported by a');
      t.same(b.faults, [], 'nothing reported by b');
    });
  }

  // As above, the close never applied, with no reset: a's next step carries it, releases the
  // grant and gives [20,30) to b's handle 8 in the same step.
  t.test(`a close owed (never applied), then another node granted its handle's waiter (${policy}): not told; the close's next step releases it`, async (t) => {
    const { engine, a, b, released } = await handleWaits(t, policy);
    const told = answersTo(a, 4);
    await owedClose(a, 'never applied');
    t.same(told, [158], "handle 1's waiter ended with the close, before the close was answered");
    await bUnlocks(t, a, b, true);
    await heal(t, a, 6);
    t.equal(await answered(b, 2, "b's handle 8's LockFileEx of [20,30)"), 0, "b's handle 8 granted by a's step");
    const after = await held(engine);
    t.same(after, ['a held write 2 60-69', 'b held write 8 20-29'], "the engine: handle 2's lock, b's handle 8's; nothing of handle 1");
    t.same(conflicts(after), [], 'no two conflicting locks');
    t.same(told, [158], 'the waiter was told once, never granted');
    t.same([...released].sort(), ['windows:1:0+10'], 'onUnlockFile once for the lock handle 1 was told it holds, never for the untold grant');
    t.same(a.faults, [], 'nothing reported');
  });

  for (const how of ['applied', 'never applied'] as const) {
    // b's unlock grants a's waiter and a is told so; then handle 1 closes, owed. The lock is the
    // handle's like any other: the settlement releases it, and b's handle 8 gets the bytes.
    t.test(`a waiter granted by another node and told so, then its handle's close owed (${how}) when the engine loses its data (${policy}): the close releases it`, async (t) => {
      const { engine, a, b, released } = await handleWaits(t, policy);
      const told = answersTo(a, 4);
      await bUnlocks(t, a, b, true);
      t.equal(await answered(a, 4, "handle 1's LockFileEx of [20,30)"), 0, "handle 1's waiter granted by b's unlock");
      await owedClose(a, how);
      if (how === 'applied') {
        t.equal(await answered(b, 2, "b's handle 8's LockFileEx of [20,30)"), 0, "b's handle 8 granted by the close's step");
        t.same(await held(engine), ['a held write 2 60-69', 'b held write 8 20-29'], 'the engine: the close applied');
      } else {
        t.same(await held(engine), ['a held write 1 0-9', 'a held write 1 20-29', 'a held write 2 60-69', 'b waiting write 8 20-29'], 'the engine: the close never applied');
      }
      await resetBoth(engine, a, b);
      const right = await held(engine);
      t.same(right, ['a held write 2 60-69', how === 'applied' ? 'b held write 8 20-29' : 'b waiting write 8 20-29'], "right after the re-assertions: nothing of handle 1, the grant neither");
      t.same(conflicts(right), [], 'no two conflicting locks');
      await heal(t, a, 6);
      t.same(await held(engine), right, "after a's next step: the same");
      await graceOver(engine, '/a', a, b);
      if (how === 'never applied') t.equal(await answered(b, 2, "b's handle 8's LockFileEx of [20,30)"), 0, "b's handle 8 granted at the grace period's end");
      t.same(await held(engine), ['a held write 2 60-69', 'b held write 8 20-29'], "the engine: handle 2's lock, b's handle 8's");
      t.same(told, [0], 'the waiter was told once: granted');
      t.same([...released].sort(), ['windows:1:0+10', 'windows:1:20+10'], 'onUnlockFile once for each of its locks');
      t.same(a.faults, [], 'nothing reported by a');
    });
  }
}

// The grant's event comes while the close's step is on its way (cut off, being sent again), and
// the engine loses its data then too: the close, in flight, is settled by the re-assertion on
// the records with the grant, and releases it. The grant came before the close was answered: the
// caller is told the waiter was granted (then the close released it).
t.test("a waiter granted by another node while its handle's close is in flight, and the engine loses its data: the close releases it", async (t) => {
  const { engine, a, b, released } = await handleWaits(t, 'default');
  const told = answersTo(a, 4);
  a.policy = () => 'drop';
  a.afterDrop = async () => {
    a.afterDrop = undefined;
    await bUnlocks(t, a, b, true);
    t.same(await held(engine), ['a held write 1 0-9', 'a held write 1 20-29', 'a held write 2 60-69', 'b waiting write 8 20-29'], "the engine: b's unlock granted handle 1's waiter");
    await resetBoth(engine, a, b);
  };
  a.sf.run(5, ch(1), a.target);
  await answered(a, 5, "handle 1's close");
  const right = await held(engine);
  t.same(right, ['a held write 2 60-69', 'b waiting write 8 20-29'], "once the close is answered (after the re-assertions): nothing of handle 1");
  t.same(conflicts(right), [], 'no two conflicting locks');
  await heal(t, a, 6);
  t.same(await held(engine), right, "after a's next step: the same");
  await graceOver(engine, '/a', a, b);
  t.equal(await answered(b, 2, "b's handle 8's LockFileEx of [20,30)"), 0, "b's handle 8 granted at the grace period's end");
  t.same(await held(engine), ['a held write 2 60-69', 'b held write 8 20-29'], "the engine: handle 2's lock, b's handle 8's");
  t.same(told, [0], 'the waiter was told once: granted (before the close was answered)');
  t.same([...released].sort(), ['windows:1:0+10', 'windows:1:20+10'], 'onUnlockFile once for each of its locks');
  t.same(a.faults, [], 'nothing reported');
});

// The POSIX side: the last close of an open file description (release) ends the waiters through
// it with EINTR and drops its locks. p1 holds [0,10) and waits for [20,30) through file handle 1
// (q9 of node b holds [20,30), q8 waits for it too); p2 holds [60,70) through file handle 2.
// The release never applied; b's unlock grants p1's waiter in the engine. As with a Windows
// close: the waiter was told EINTR, never granted, and the grant is not put back.
t.test("a release owed (never applied) when the engine loses its data, then another node granted its file handle's waiter: not told, not put back", async (t) => {
  const { engine, a, b } = await nodes(t, 'default', null);
  await stage(
    t,
    holds(b, 1, lk('q9', 9, F_WRLCK, F_SETLK, 20, 10), "q9's lock of [20,30)"),
    holds(a, 1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), "p1's lock of [0,10)"),
    holds(a, 2, lk('p2', 2, F_WRLCK, F_SETLK, 60, 10), "p2's lock of [60,70)"),
    waits(a, 4, lk('p1', 1, F_WRLCK, F_SETLKW, 20, 10), "p1's waiter for [20,30) queued"),
    waits(b, 2, lk('q8', 8, F_WRLCK, F_SETLKW, 20, 10), "q8's waiter for [20,30) queued"),
  );
  const told = answersTo(a, 4);
  await owedClose(a, 'never applied', parseRelease({ path: '/a', fileHandle: 1 }));
  t.match(told, [{ result: -EINTR }], "p1's waiter ended with the release, before the release was answered (EINTR)");
  a.held = [];
  await stage(t, holds(b, 3, lk('q9', 9, F_UNLCK, F_SETLK, 20, 10), "q9's unlock"));
  await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
  a.release();
  t.same(await held(engine), ['a held write p1 0-9', 'a held write p1 20-29', 'a held write p2 60-69', 'b waiting write q8 20-29'], "the engine: the release never applied, b's unlock granted p1's waiter");
  await resetBoth(engine, a, b);
  const right = await held(engine);
  t.same(right, ['a held write p2 60-69', 'b waiting write q8 20-29'], "right after the re-assertions: p2's lock and q8's waiter; nothing of file handle 1");
  t.same(conflicts(right), [], 'no two conflicting locks');
  await heal(t, a, 6);
  t.same(await held(engine), right, "after a's next step: the same");
  await graceOver(engine, '/a', a, b);
  t.match(await answered(b, 2, "q8's F_SETLKW of [20,30)"), { result: 0 }, 'q8 granted at the grace period\'s end');
  t.same(await held(engine), ['a held write p2 60-69', 'b held write q8 20-29'], "the engine: p2's lock, q8's");
  t.match(told, [{ result: -EINTR }], 'the waiter was told once, never granted');
  t.equal(told.length, 1, 'told once');
  t.same(a.faults, [], 'nothing reported');
});
