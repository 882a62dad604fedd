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
import t, { type Test } from 'tap';
import { EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseLockFile, parseRelease, type Call } from '../../src/core/requests.js';
import { answered, ch, lf, lk, uf, type TestNode } from './lost-link.js';
import { answersTo, conflicts, held, nodes, resetBoth, until } from './reset-harness.js';

/** A blocking Windows LockFileEx of [start, start+len) of /a through `handle` (process 1). */
const lw = (handle: number, start: number, len: number): Call =>
  parseLockFile({ fileName: '/a', byteOffset: start, length: len, exclusiveLock: true, failImmediately: false, handle, processId: 1 }) as Call;

/** a reaches the engine again; its next step commits (request `id`: an UnlockFileEx of bytes handle 99 never locked). */
async function heal(t: Test, a: TestNode, id: number): Promise<void> {
  a.policy = () => 'pass';
  a.sf.run(id, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, id, "handle 99's unlock of nothing"), 158);
}

type Family = 'windows' | 'posix';

/**
 * b holds [20,30) (handle 9, or q9); a's handle 1 (or p1 through file handle 1) holds [0,10) and
 * waits for [20,30) (request 4), a's handle 2 (or p2) holds [60,70).
 */
async function stage(t: Test, family: Family) {
  const n = await nodes(t, 'default');
  const { a, b } = n;
  if (family === 'windows') {
    b.sf.run(1, lf(9, 20, 10), b.target);
    t.equal(await answered(b, 1, "b's handle 9's lock of [20,30)"), 0);
    a.sf.run(1, lf(1, 0, 10), a.target);
    t.equal(await answered(a, 1, "handle 1's lock of [0,10)"), 0);
    a.sf.run(2, lf(2, 60, 10), a.target);
    t.equal(await answered(a, 2, "handle 2's lock of [60,70)"), 0);
    a.sf.run(4, lw(1, 20, 10), a.target);
    await answered(a, -4, "handle 1's waiter for [20,30) queued");
  } else {
    b.sf.run(1, lk('q9', 9, F_WRLCK, F_SETLK, 20, 10), b.target);
    t.match(await answered(b, 1, "q9's lock of [20,30)"), { result: 0 });
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
    t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 });
    a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLK, 60, 10), a.target);
    t.match(await answered(a, 2, "p2's lock of [60,70)"), { result: 0 });
    a.sf.run(4, lk('p1', 1, F_WRLCK, F_SETLKW, 20, 10), a.target);
    await answered(a, -4, "p1's waiter for [20,30) queued");
  }
  return n;
}

const close = (family: Family): Call => (family === 'windows' ? ch(1) : parseRelease({ path: '/a', fileHandle: 1 }));
const ended = (family: Family): unknown => (family === 'windows' ? 158 : { result: -EINTR });
/** The answers `told` are one: the close's code (158; EINTR), never granted. */
function endedOnce(t: Test, told: unknown[], family: Family, what: string): void {
  t.equal(told.length, 1, `${what}: one answer`);
  t.match(told[0], ended(family), what);
}
const notice0 = (family: Family): string => (family === 'windows' ? 'windows:1:0+10' : 'posix:0+10');
const who = (family: Family): [string, string] => (family === 'windows' ? ['1', '2'] : ['p1', 'p2']);

/** b unlocks [20,30) (request 3): the engine grants a's waiter; its event waits in a's inbox (held back). */
async function bGrants(t: Test, a: TestNode, b: TestNode, family: Family): Promise<void> {
  a.held = [];
  b.sf.run(3, family === 'windows' ? uf(9, 20, 10) : lk('q9', 9, F_UNLCK, F_SETLK, 20, 10), b.target);
  t.match(await answered(b, 3, "b's unlock of [20,30)"), family === 'windows' ? 0 : { result: 0 });
  await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
}

for (const family of ['windows', 'posix'] as const) {
  const [h1, h2] = who(family);
  // An engine reset loses the grant with everything else: only the inbox can tell of it then.
  for (const [learned, settled] of [
    ['inbox', 'next step'],
    ['inbox', 'engine reset'],
    ['stale reply', 'next step'],
  ] as const) {
    t.test(`${family}: a close owed (never applied), then another node grants its ended waiter (learned from the ${learned}), the close settled by the ${settled}: no notice for the grant`, async (t) => {
      const { engine, a, b, released } = await stage(t, family);
      const told = answersTo(a, 4);
      a.policy = () => 'drop';
      a.sf.run(5, close(family), a.target);
      await answered(a, 5, "handle 1's close (given up on: owed)");
      endedOnce(t, told, family, 'the waiter ended with the close, before its answer');
      await bGrants(t, a, b, family);
      t.same(await held(engine), [`a held write ${h1} 0-9`, `a held write ${h1} 20-29`, `a held write ${h2} 60-69`], "the engine: the close never applied, b's unlock granted the ended waiter");
      if (learned === 'inbox') a.release();
      if (settled === 'engine reset') {
        await resetBoth(engine, a, b, true, true);
        a.policy = () => 'pass';
      }
      if (learned === 'stale reply') {
        // a's next step learns the grant from the changes it missed, before the event.
        a.policy = () => 'pass';
        a.sf.run(6, lf(3, 80, 10), a.target);
        t.equal(await answered(a, 6, "handle 3's lock of [80,90)"), 0);
        a.release();
      }
      await heal(t, a, 7);
      const after = (await held(engine)).filter((x) => !x.includes(' 3 80-89'));
      t.same(after, [`a held write ${h2} 60-69`], 'the engine: nothing of handle 1, the grant neither');
      t.same(conflicts(after), [], 'no two conflicting locks');
      endedOnce(t, told, family, 'the waiter was told once, never granted');
      t.same(released, [notice0(family)], "the close's notice for the lock handle 1 held, told once; none for the grant it never held");
      t.same(a.faults, [], 'nothing reported');
    });
  }

  // The close's own step finds the waiter granted (stale: b's grant came first), is decided again
  // and commits before the grant's event is read: the waiter ends with the close.
  t.test(`${family}: a close whose step finds its handle's waiter granted by another node, before the grant's event: no notice for the grant`, async (t) => {
    const { engine, a, b, released } = await stage(t, family);
    const told = answersTo(a, 4);
    a.policy = () => 'drop';
    a.held = [];
    a.afterDrop = async () => {
      a.afterDrop = undefined;
      await bGrants(t, a, b, family);
      a.policy = () => 'pass';
    };
    a.sf.run(5, close(family), a.target);
    await answered(a, 5, "handle 1's close");
    t.same(await held(engine), [`a held write ${h2} 60-69`], 'the close committed: nothing of handle 1, the grant neither');
    a.release();
    await answered(a, 4, "handle 1's waiter");
    endedOnce(t, told, family, 'the waiter was told once, never granted');
    t.same(released, [notice0(family)], "the close's notice for the lock handle 1 held; none for the grant it never held");
    t.same(a.faults, [], 'nothing reported');
  });
}

// Beside them, what stays: a grant told to the caller (its event read while the request waited)
// is the handle's lock like any other, and the close's notice of it is told.
for (const family of ['windows', 'posix'] as const) {
  t.test(`${family}: a waiter granted by another node and told so, then its handle's close owed: both notices told`, async (t) => {
    const { engine, a, b, released } = await stage(t, family);
    const told = answersTo(a, 4);
    await bGrants(t, a, b, family);
    a.release();
    await answered(a, 4, "handle 1's waiter");
    t.match(told, [family === 'windows' ? 0 : { result: 0 }], 'told granted');
    a.policy = () => 'drop';
    a.sf.run(5, close(family), a.target);
    await answered(a, 5, "handle 1's close (given up on: owed)");
    await heal(t, a, 7);
    t.same(await held(engine), [`a held write ${who(family)[1]} 60-69`], 'the engine: nothing of handle 1');
    t.same([...released].sort(), [notice0(family), family === 'windows' ? 'windows:1:20+10' : 'posix:20+10'], "the close's notices, for both locks, once");
    t.same(a.faults, [], 'nothing reported');
  });
}
