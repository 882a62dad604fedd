/**
 * The release notices (the `released` hook: onUnlockFile, a POSIX close's notice per lock) of a
 * close of a handle whose waiter another node granted after that waiter was ended with the close
 * (SharedFiles.endThrough: 158, EINTR) or, in the close's own decision, before its grant was told:
 * the caller was never told that lock granted, never held it, and hears no notice of its release.
 * Its other locks' notices are told, once. Orderings: the close owed (never applied), the grant
 * then read from the inbox at once or learned from a stale reply first, the owed close carried by
 * the next step or settled at an engine reset; and the close in flight, whose step finds the
 * waiter granted (a stale reply) and commits before the grant's event is read. Real SharedFiles
 * over a MemoryEngine, behind the lost-link harness; every wait is for an answer or an engine
 * record, within the harness's budget.
 */
import t from 'tap';
import { EINTR } from '../../src/core/codes.js';
import { parseRelease, type Call } from '../../src/core/requests.js';
import { answered, ch, lf } from './lost-link.js';
import { answersTo, conflicts, held } from './reset-harness.js';
import { closeOwed, closeStage, endedOnce, grantHeld, heal, inFlight, learnSettle, type Family } from './notice-stages.js';
import { holds, owedCutOff } from './stages.js';

// The stage (closeStage, notice-stages.ts): b holds [20,30) (handle 9, or q9); a's handle 1 (or p1
// through file handle 1) holds [0,10) and waits for [20,30) (request 4), a's handle 2 (or p2) holds
// [60,70); `unlock` is b's unlock of [20,30) (its request 3), which grants a's waiter.

const close = (family: Family): Call => (family === 'windows' ? ch(1) : parseRelease({ path: '/a', fileHandle: 1 }));
/** The close's code to a waiter it ends (158; EINTR). */
const ended = (family: Family): unknown => (family === 'windows' ? 158 : { result: -EINTR });
const notice0 = (family: Family): string => (family === 'windows' ? 'windows:1:0+10' : 'posix:0+10');
const who = (family: Family): [string, string] => (family === 'windows' ? ['1', '2'] : ['p1', 'p2']);

for (const family of ['windows', 'posix'] as const) {
  const [h1, h2] = who(family);
  // An engine reset loses the grant with everything else: only the inbox can tell of it then.
  for (const [learned, settled] of [
    ['inbox', 'next step'],
    ['inbox', 'engine reset'],
    ['stale reply', 'next step'],
  ] as const) {
    t.test(`${family}: a close owed (never applied), then another node grants its ended waiter (learned from the ${learned}), the close settled by the ${settled}: no notice for the grant`, async (t) => {
      const n = await closeStage(t, family);
      const { engine, a, released, unlock } = n;
      const told = answersTo(a, 4);
      await closeOwed(t, a, told, 'the waiter ended with the close, before its answer', close(family), ended(family));
      await grantHeld(t, a, unlock, 1);
      t.same(await held(engine), [`a held write ${h1} 0-9`, `a held write ${h1} 20-29`, `a held write ${h2} 60-69`], "the engine: the close never applied, b's unlock granted the ended waiter");
      await learnSettle(t, n, learned, settled, holds(a, 6, lf(3, 80, 10), "handle 3's lock of [80,90)"));
      const after = (await held(engine)).filter((x) => !x.includes(' 3 80-89'));
      t.same(after, [`a held write ${h2} 60-69`], 'the engine: nothing of handle 1, the grant neither');
      t.same(conflicts(after), [], 'no two conflicting locks');
      endedOnce(t, told, 'the waiter was told once, never granted', ended(family));
      t.same(released, [notice0(family)], "the close's notice for the lock handle 1 held, told once; none for the grant it never held");
      t.same(a.faults, [], 'nothing reported');
    });
  }

  // The close's own step finds the waiter granted (stale: b's grant came first), is decided again
  // and commits before the grant's event is read: the waiter ends with the close.
  t.test(`${family}: a close whose step finds its handle's waiter granted by another node, before the grant's event: no notice for the grant`, async (t) => {
    const { engine, a, released, unlock } = await closeStage(t, family);
    const told = answersTo(a, 4);
    await inFlight(a, close(family), () => grantHeld(t, a, unlock, 1));
    t.same(await held(engine), [`a held write ${h2} 60-69`], 'the close committed: nothing of handle 1, the grant neither');
    a.release();
    await answered(a, 4, "handle 1's waiter");
    endedOnce(t, told, 'the waiter was told once, never granted', ended(family));
    t.same(released, [notice0(family)], "the close's notice for the lock handle 1 held; none for the grant it never held");
    t.same(a.faults, [], 'nothing reported');
  });
}

// Beside them, what stays: a grant told to the caller (its event read while the request waited)
// is the handle's lock like any other, and the close's notice of it is told.
for (const family of ['windows', 'posix'] as const) {
  t.test(`${family}: a waiter granted by another node and told so, then its handle's close owed: both notices told`, async (t) => {
    const { engine, a, released, unlock } = await closeStage(t, family);
    const told = answersTo(a, 4);
    await grantHeld(t, a, unlock, 1);
    a.release();
    await answered(a, 4, "handle 1's waiter");
    t.match(told, [family === 'windows' ? 0 : { result: 0 }], 'told granted');
    await owedCutOff(a, 5, close(family), "handle 1's close");
    await heal(t, a, 7);
    t.same(await held(engine), [`a held write ${who(family)[1]} 60-69`], 'the engine: nothing of handle 1');
    t.same([...released].sort(), [notice0(family), family === 'windows' ? 'windows:1:20+10' : 'posix:20+10'], "the close's notices, for both locks, once");
    t.same(a.faults, [], 'nothing reported');
  });
}
