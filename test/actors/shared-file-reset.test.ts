/**
 * The engine loses its data (a reset) while a node has unfinished business on a file; the node
 * puts its records back in the grace period (SharedFile.beginReassert). An undo of a lock
 * request's step that applied though its request was answered as failed (Unsure), pending at the
 * reset: the owner's locks that step removed go back with the rest, as the kernel would have left
 * them (or, when they can no longer all go back, what the step put stays), once, and only those
 * of the session the engine lost; no record of an earlier, lost session goes back. And a Windows
 * lock another node granted to a waiter here (a stand-in under the waiter's record id), put back
 * under that id: evidence again for a release of it whose reply is lost. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness; every wait is for an answer or a step, within a
 * budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseLockFile, type Call } from '../../src/core/requests.js';
import { BUDGET_MS, MemoryEngine, answered, endGrace, lf, lk, loseNext, memoryStore, node, resetEngine, uf, until, within, type S, type TestNode } from './lost-link.js';

/** The engine's records of /a: session, state, mode, holder (POSIX owner or Windows handle) and bytes. */
async function held(engine: MemoryEngine): Promise<string[]> {
  return (await engine.load('/a')).records.map((r) => {
    const d = JSON.parse(r.data) as { w: number; h: { s: string } | number; s: string; e: string };
    return `${r.node}|${r.epoch} ${r.state} ${d.w === 1 ? 'write' : 'read'} ${typeof d.h === 'number' ? d.h : d.h.s} ${d.s}-${d.e}`;
  });
}

/**
 * Node a (timeout 300 ms, a grace period after a reset), alone on an engine whose incarnation
 * started without one.
 */
async function alone(t: Test): Promise<{ engine: MemoryEngine; a: TestNode }> {
  const engine = new MemoryEngine();
  // The engine's first session starts its incarnation with no grace period; a's own (60 s) is
  // for the incarnation after a reset, which a opens.
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const a = await node(engine, 'a', 'default', 300, 60_000);
  t.teardown(() => a.store.close());
  await first.close();
  return { engine, a };
}

/**
 * p1 (request 1) reads [0,10) on a and asks a write lock of it (request 2): the step (it replaces
 * the read lock) applies, its reply is lost, and the request is answered as failed. The next
 * step's stale reply shows it applied; every new step of a after that is cut off, the undo's
 * first (it would remove the write lock and put the read lock back): resolves then. The link is
 * left cutting a off.
 */
async function undoPending(t: Test, engine: MemoryEngine, a: TestNode): Promise<void> {
  a.sf.run(1, lk('p1', 1, F_RDLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's read lock of [0,10)"), { result: 0 }, 'p1 reads [0,10)');
  let stale = false;
  a.onReply = (r) => {
    if (!r.ok && r.reason === 'stale') stale = true;
  };
  let undoCut!: () => void;
  const cut = new Promise<void>((r) => (undoCut = r));
  loseNext(a, async () => {
    a.policy = () => (stale ? 'drop' : 'pass');
    a.afterDrop = async (s: S) => {
      if (s.id === undefined) undoCut();
    };
  });
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.notMatch(await answered(a, 2, "p1's write lock of [0,10) (given up on)"), { result: 0 }, 'answered as failed');
  await within(cut, BUDGET_MS, "the undo's step, cut off");
  t.match(a.faults, [/had applied after all; undone/], 'the step was found applied, to be undone');
  t.same(await held(engine), [`a|${a.store.session().epoch} held write p1 0-9`], "the engine: p1's write lock (the undo never reached it)");
}

/** a reaches the engine again. */
function heal(a: TestNode): void {
  a.policy = () => 'pass';
  a.afterDrop = undefined;
  a.onReply = undefined;
}

// p1 holds a POSIX read lock on [0,10) and asks a write lock on the same bytes; the step applies,
// the request is answered as failed, and its undo is pending (undoPending) when the engine loses
// its data. What the kernel leaves p1 after a failed F_SETLK is its read lock: the re-assertion
// puts it back (under the new session, a new record), and not the write lock the undo removes.
// Before, the re-assertion left out the write lock (being undone) and forgot the undo: p1 held
// nothing.
t.test('an undo pending when the engine loses its data: the locks it would put back go back with the re-assertion, what it removes does not', async (t) => {
  const { engine, a } = await alone(t);
  await undoPending(t, engine, a);
  // The engine loses its data; a opens a new session and puts its records back.
  const { old, epoch } = await resetEngine(engine, a);
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  heal(a);
  // Behind the re-assertion in the file's mailbox: an unlock of bytes nobody holds.
  a.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1), a.target);
  t.match(await answered(a, 3, 'an unlock of nothing, after the re-assertion'), { result: 0 });
  t.same(await held(engine), [`a|${epoch} held read p1 0-9`], "the engine: p1's read lock under the new session (the one the failed request replaced), not the write lock the undo removes");
  // The grace period ends (a grant in it would wait it out: for ever here).
  await endGrace(engine, a);
  a.sf.run(4, lk('p2', 2, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 4, "p2's write lock of [0,10)"), { result: -EAGAIN }, "p2's write lock is refused: p1 reads [0,10)");
  a.sf.run(5, lk('p2', 2, F_WRLCK, F_GETLK), a.target);
  t.match(await answered(a, 5, "p2's F_GETLK of a write lock on [0,10)"), { lockType: F_RDLCK, lockPid: 1 }, "F_GETLK reports p1's read lock");
  a.sf.run(6, lk('p3', 3, F_RDLCK, F_SETLK), a.target);
  t.match(await answered(a, 6, "p3's read lock of [0,10)"), { result: 0 }, 'another reader is let in');
  // The lock put back is p1's to release: once p1 and p3 unlock, p2 writes.
  a.sf.run(7, lk('p2', 2, F_WRLCK, F_SETLKW), a.target);
  a.sf.run(8, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
  t.match(await answered(a, 8, "p1's unlock"), { result: 0 });
  a.sf.run(9, lk('p3', 3, F_UNLCK, F_SETLK), a.target);
  t.match(await answered(a, 9, "p3's unlock"), { result: 0 });
  t.match(await answered(a, 7, "p2's F_SETLKW"), { result: 0 }, 'p2 writes [0,10)');
  t.equal(a.faults.length, 1, 'nothing more reported');
});

// p1 holds a write lock on [0,10) and downgrades it to a read lock: the step applies, its reply is
// lost, and the request is answered as failed; the next step's stale reply shows it applied, and
// the undo (put the write lock back) is cut off. Then b's q1 reads [0,10) (the engine has p1's
// read lock), and a learns of it in a stale reply: the write lock can no longer go back. The
// engine loses its data with the undo still pending: the re-assertion puts back p1's read lock
// (what the step put stays, as when the conflict is seen first, noticeApplied), never the write
// lock, which with q1's read lock put back by b would be a conflict no kernel allows. Before, the
// re-assertion left out the read lock (being undone) and forgot the undo: p1 held nothing.
t.test('an undo pending when the engine loses its data, whose locks would grant bytes its owner no longer held (another node reads them since, unknown to its node): what its step put goes back instead', async (t) => {
  const engine = new MemoryEngine();
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const a = await node(engine, 'a', 'default', 300, 60_000);
  const b = await node(engine, 'b', 'default', 300, 60_000);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  await first.close();
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's write lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  // The downgrade's step applies, its reply is lost; the next step's stale reply shows it
  // applied, and every new step after that is cut off, the undo's first.
  let stale = 0;
  a.onReply = (r) => {
    if (!r.ok && r.reason === 'stale') stale++;
  };
  let undoCut!: () => void;
  const undoPending = new Promise<void>((r) => (undoCut = r));
  loseNext(a, async () => {
    a.policy = () => (stale > 0 ? 'drop' : 'pass');
    a.afterDrop = async (s: S) => {
      if (s.id === undefined) undoCut();
    };
  });
  a.sf.run(2, lk('p1', 1, F_RDLCK, F_SETLK), a.target);
  t.notMatch(await answered(a, 2, "p1's downgrade (given up on)"), { result: 0 }, 'answered as failed');
  await within(undoPending, BUDGET_MS, "the undo's step, cut off");
  t.match(a.faults, [/had applied after all; undone/], 'the step was found applied, to be undone');
  // q1 reads [0,10): the engine has p1's read lock.
  b.sf.run(1, lk('q1', 1, F_RDLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "q1's read lock of [0,10)"), { result: 0 }, 'q1 reads [0,10)');
  // a does not learn of q1's lock before the engine loses its data (every step of a is cut off).
  const was = a.store.session().epoch;
  const bWas = b.store.session().epoch;
  t.same(
    (await held(engine)).sort(),
    [`a|${was} held read p1 0-9`, `b|${bWas} held read q1 0-9`],
    "the engine: p1's read lock (the undo never reached it), q1's",
  );
  const { old, epoch } = await resetEngine(engine, a, b);
  const bEpoch = b.store.session().epoch;
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  b.lease[1] = bEpoch;
  b.sf.adopt(bEpoch, bWas, 60_000);
  heal(a);
  // Behind the re-assertions in the files' mailboxes: unlocks of bytes nobody holds.
  a.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1), a.target);
  t.match(await answered(a, 3, "a's unlock of nothing, after the re-assertion"), { result: 0 });
  b.sf.run(2, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1), b.target);
  t.match(await answered(b, 2, "b's unlock of nothing, after the re-assertion"), { result: 0 });
  t.same(
    (await held(engine)).sort(),
    [`a|${epoch} held read p1 0-9`, `b|${bEpoch} held read q1 0-9`],
    "the engine: p1's read lock (what the step put) and q1's; no write lock",
  );
  t.match(a.faults, [/undone/, /could not be undone when the engine lost its data/], 'the fault says the step stays');
  await endGrace(engine, a, b);
  a.sf.run(4, lk('p2', 2, F_RDLCK, F_SETLK), a.target);
  t.match(await answered(a, 4, "p2's read lock of [0,10)"), { result: 0 }, 'another reader is let in');
  a.sf.run(5, lk('p3', 3, F_WRLCK, F_GETLK), a.target);
  t.match(await answered(a, 5, "p3's F_GETLK of a write lock on [0,10)"), { lockType: F_RDLCK }, 'a write lock would wait for the readers');
});

// As the first test, but the undo's own step applies too, its reply lost, and the next step's
// stale reply shows it (p1's read lock back, under a record the undo minted); nothing commits
// after it before the engine loses its data, so the undo is still pending (Unsure). The
// re-assertion puts back p1's read lock once: the one the undo put, not a second one for the
// lock the undo would put back, which p1 holds already (as build() decides: coveredBefore).
t.test('an undo pending when the engine loses its data, whose step applied though its reply was lost: the lock it put back goes back once', async (t) => {
  const engine = new MemoryEngine();
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const a = await node(engine, 'a', 'default', 300, 60_000);
  t.teardown(() => a.store.close());
  await first.close();
  a.sf.run(1, lk('p1', 1, F_RDLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's read lock of [0,10)"), { result: 0 }, 'p1 reads [0,10)');
  // a's new steps after the write lock's (lost): the first passes (its stale reply shows the
  // write lock applied), the second (the undo) applies with its reply lost, the third passes
  // (its stale reply shows the undo applied); every step after them is cut off.
  let k = 0;
  let cutOff!: () => void;
  const settled = new Promise<void>((r) => (cutOff = r));
  loseNext(a, async () => {
    a.policy = (s) => {
      if (s.id !== undefined) return k >= 4 ? 'drop' : 'pass';
      k++;
      return k === 2 ? 'lose' : k >= 4 ? 'drop' : 'pass';
    };
    a.afterDrop = async () => cutOff();
  });
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.notMatch(await answered(a, 2, "p1's write lock of [0,10) (given up on)"), { result: 0 }, 'answered as failed');
  await within(settled, BUDGET_MS, "the undo's step applied, a stale reply shows it, and a's next step is cut off");
  t.equal(k, 4, "a's fourth new step is the first cut off");
  t.ok(a.log.filter((l) => l.startsWith('pass ') && l.endsWith('-> stale missed')).length === 2, 'two stale replies');
  const was = a.store.session().epoch;
  t.same(await held(engine), [`a|${was} held read p1 0-9`], "the engine: p1's read lock (the undo applied)");
  const { old, epoch } = await resetEngine(engine, a);
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  a.policy = () => 'pass';
  a.afterDrop = undefined;
  a.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1), a.target);
  t.match(await answered(a, 3, 'an unlock of nothing, after the re-assertion'), { result: 0 });
  t.same(await held(engine), [`a|${epoch} held read p1 0-9`], "the engine: p1's read lock, once");
  t.match(a.faults, [/had applied after all; undone/], 'nothing more reported');
});

/**
 * a's session expires (its locks go with it, and a is told so) and a opens another; then the
 * engine loses its data while that one lives, and a puts its records back: resolves once that
 * re-assertion was answered, a reaching the engine again.
 */
async function lostThenReset(t: Test, engine: MemoryEngine, a: TestNode): Promise<void> {
  const lost = a.store.session().epoch;
  engine.expire('a');
  await until(() => ![lost, 0].includes(a.store.session().epoch), BUDGET_MS, "a's session after the lost one");
  const second = a.store.session().epoch;
  a.lease[1] = second;
  a.sf.adopt(second, 0, 0);
  const { old, epoch } = await resetEngine(engine, a);
  t.equal(old, second, 'the session the engine lost is the second one');
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  heal(a);
  // Behind the re-assertion in the file's mailbox: an unlock of bytes nobody holds.
  a.sf.run(99, lk('nobody', 8, F_UNLCK, F_SETLK, 100, 1), a.target);
  t.match(await answered(a, 99, 'an unlock of nothing, after the re-assertion'), { result: 0 });
}

// The undo of the first test is pending, a cut off, when the session it was of is lost, and the
// engine loses its data under the next one, before any step of a on the file committed: the
// lock the undo would put back went with the lost session, and does not go back.
t.test('an undo pending when its session is lost, and the engine loses its data under the next one: the lock it would put back does not go back', async (t) => {
  const { engine, a } = await alone(t);
  await undoPending(t, engine, a);
  await lostThenReset(t, engine, a);
  t.same(await held(engine), [], 'the engine: nothing (what p1 held went with the first session)');
});

// a's session expires (p9's lock goes with it, and a is told so: I/O through its handle fails
// until it closes); a opens another, and the engine loses its data while that one lives, before
// any step of a on the file: a's cache still has p9's record (a step would remove it). The
// re-assertion puts back only what the session the engine lost held: p9's lock stays lost.
// Before, it came back under the newest session, and held the bytes against everyone.
t.test('a lock of a session lost before the one the engine lost does not come back with the re-assertion', async (t) => {
  const { engine, a } = await alone(t);
  a.sf.run(9, lk('p9', 9, F_WRLCK, F_SETLK, 20, 10), a.target);
  t.match(await answered(a, 9, "p9's lock of [20,30)"), { result: 0 }, 'p9 writes [20,30)');
  await lostThenReset(t, engine, a);
  t.same(await held(engine), [], 'the engine: nothing (p9 held its lock under the first session)');
  await endGrace(engine, a);
  a.sf.run(10, lk('p2', 2, F_WRLCK, F_SETLK, 20, 10), a.target);
  t.match(await answered(a, 10, "p2's lock of [20,30)"), { result: 0 }, 'p2 writes [20,30)');
});

/** A blocking Windows LockFileEx of [start, start+len) of /a through `handle` (process 1). */
const lw = (handle: number, start: number, len: number, exclusive: boolean): Call =>
  parseLockFile({ fileName: '/a', byteOffset: start, length: len, exclusiveLock: exclusive, failImmediately: false, handle, processId: 1 }) as Call;

// a's handle 7 waits for a shared lock of [0,10); b's unlock grants it. a's cache holds the grant
// under the waiter's record id (a stand-in: the engine's record of it has an id b's step minted),
// and a makes no step before the engine loses its data. The re-assertion puts the lock back under
// the waiter's id: the engine's record has that id now, so it is evidence again (beginReassert
// clears standIns). Then handle 7's unlock of it: the step applies, its reply is lost, and the
// unlock is owed. Property: a's next step, whatever its stale reply tells, neither runs the
// unlock again nor leaves its notice untold (onUnlockFile once):
// - 'second lock': handle 7 took a second, identical shared lock of [0,10) first; the unlock
//   removes the one put back. The reply names the lost step (shownApplied), and the record it
//   removed is gone (appliedBefore: the unlock's targets are that record): run again, the unlock
//   would release the second lock and tell its notice twice.
// - 'emptied': the unlock empties the file, whose keys go with it (its log, and this node's last
//   step there): the reply, the empty record set, names no step. Only the record's absence tells
//   that the unlock applied (appliedBefore; deliverLost, from Lost.released): as a stand-in it
//   proves nothing, the unlock runs again on nothing, and the notice is never told.
// (A close is the same as the unlock here: it takes what the unlock takes, and tells the same.)
for (const kind of ['second lock', 'emptied'] as const) {
  t.test(`a Windows lock another node granted to a's waiter, put back after the engine lost its data: an unlock of it whose reply is lost (${kind}) is not run again, its notice told once`, async (t) => {
    const engine = new MemoryEngine();
    const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
    const released: string[] = [];
    const a = await node(engine, 'a', 'default', 300, 60_000, {
      released: (family, e) => void released.push(`${family}:${String(e.handle)}:${String(e.byteOffset)}+${String(e.length)}`),
    });
    const b = await node(engine, 'b', 'default', 300, 60_000);
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    await first.close();
    b.sf.run(1, lf(1, 0, 10), b.target);
    t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0);
    a.sf.run(1, lw(7, 0, 10, false), a.target);
    await answered(a, -1, "a's handle 7 waits for a shared lock of [0,10)");
    b.sf.run(2, uf(1, 0, 10), b.target);
    t.equal(await answered(b, 2, "b's handle 1 unlocks"), 0);
    t.equal(await answered(a, 1, "a's handle 7's LockFileEx of [0,10)"), 0, "granted by b's unlock");
    t.match((await engine.load('/a')).records.map((r) => r.id), [/^b\./], "the engine's record of it has an id of b's step");
    // b is done: closed before the reset (it would open the next incarnation itself).
    await b.store.close();
    const { old, epoch } = await resetEngine(engine, a);
    a.lease[1] = epoch;
    a.sf.adopt(epoch, old, 60_000);
    // Behind the re-assertion: the second identical lock (no grant of new bytes: the grace period
    // does not refuse it), or an unlock of bytes handle 5 never locked.
    if (kind === 'second lock') {
      a.sf.run(2, lf(7, 0, 10, false), a.target);
      t.equal(await answered(a, 2, "handle 7's second shared lock of [0,10)"), 0);
    } else {
      a.sf.run(2, uf(5, 40, 10), a.target);
      t.equal(await answered(a, 2, "handle 5's unlock of nothing"), 158);
    }
    const back = (await engine.load('/a')).records.map((r) => r.id);
    t.equal(back.length, kind === 'second lock' ? 2 : 1, `the engine: ${kind === 'second lock' ? 'two records' : 'one record'} of handle 7`);
    t.match(back[0], /^a\./, "the lock b granted was put back under a's waiter's id");
    const at = a.log.length;
    loseNext(a);
    a.sf.run(3, uf(7, 0, 10), a.target);
    await answered(a, 3, "handle 7's unlock (its reply lost, given up on)");
    t.equal((await engine.load('/a')).records.length, kind === 'second lock' ? 1 : 0, 'the engine: the unlock applied');
    // a's next step (it carries the owed unlock, or finds it applied; or the owed step's retry
    // comes first): an unlock of bytes handle 5 never locked.
    a.sf.run(4, uf(5, 40, 10), a.target);
    t.equal(await answered(a, 4, "handle 5's unlock of nothing"), 158);
    t.ok(
      a.log.slice(at).some((l) => l.endsWith(kind === 'second lock' ? '-> stale missed' : '-> stale whole')),
      kind === 'second lock' ? 'a stale reply with the missed changes' : 'a stale reply with the whole record set (empty)',
    );
    const left = (await engine.load('/a')).records.filter((r) => r.data.includes('"h":7'));
    t.equal(left.length, kind === 'second lock' ? 1 : 0, kind === 'second lock' ? "the engine: handle 7's second lock of [0,10) stands" : 'the engine: nothing');
    t.same(released, ['windows:7:0+10'], 'onUnlockFile told once');
    if (kind === 'second lock') {
      a.sf.run(5, uf(7, 0, 10), a.target);
      t.equal(await answered(a, 5, "handle 7's second unlock"), 0, 'handle 7 still held one lock of [0,10)');
      t.same(released, ['windows:7:0+10', 'windows:7:0+10'], "its notice, once");
    }
    a.sf.run(6, uf(7, 0, 10), a.target);
    t.equal(await answered(a, 6, "handle 7's last unlock"), 158, 'handle 7 holds nothing');
    // The grace period ends: [0,10) is granted to another handle (new bytes for it).
    await endGrace(engine, a);
    a.sf.run(7, lf(9, 0, 10), a.target);
    t.equal(await answered(a, 7, "handle 9's exclusive lock of [0,10)"), 0, '[0,10) is free');
    t.same(a.faults, [], 'nothing reported');
  });
}

// p1's downgrade (write to read of [0,10)) applies, its reply lost, and a is cut off: a does not
// know whether it applied (answered as failed). b's q1 reads [0,10) (the engine has p1's read
// lock). The engine loses its data: a may put back only what p1 held either way, its read lock,
// never the write lock over q1's read lock (from a review: both were in the engine after it).
t.test('a downgrade of unknown fate when the engine loses its data: the re-assertion puts back what p1 held either way (read), not its write lock over another node\'s read lock', async (t) => {
  const engine = new MemoryEngine();
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const a = await node(engine, 'a', 'default', 300, 60_000);
  const b = await node(engine, 'b', 'default', 300, 60_000);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  await first.close();
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's write lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  loseNext(a, async () => {
    a.policy = () => 'drop';
  });
  a.sf.run(2, lk('p1', 1, F_RDLCK, F_SETLK), a.target);
  t.notMatch(await answered(a, 2, "p1's downgrade (given up on)"), { result: 0 }, 'answered as failed');
  const was = a.store.session().epoch;
  t.same(await held(engine), [`a|${was} held read p1 0-9`], "the engine: p1's read lock (the downgrade applied)");
  b.sf.run(1, lk('q1', 1, F_RDLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "q1's read lock of [0,10)"), { result: 0 }, 'q1 reads [0,10)');
  const bWas = b.store.session().epoch;
  const { old, epoch } = await resetEngine(engine, a, b);
  const bEpoch = b.store.session().epoch;
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  b.lease[1] = bEpoch;
  b.sf.adopt(bEpoch, bWas, 60_000);
  a.policy = () => 'pass';
  // Behind the re-assertions in the files' mailboxes: unlocks of bytes nobody holds.
  a.sf.run(3, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1), a.target);
  t.match(await answered(a, 3, "a's unlock of nothing, after its re-assertion"), { result: 0 });
  b.sf.run(2, lk('nobody', 9, F_UNLCK, F_SETLK, 100, 1), b.target);
  t.match(await answered(b, 2, "b's unlock of nothing, after its re-assertion"), { result: 0 });
  t.same((await held(engine)).sort(), [`a|${epoch} held read p1 0-9`, `b|${bEpoch} held read q1 0-9`], "the engine: p1's read lock and q1's; no write lock");
  t.match(a.faults.join('\n'), /may have applied when the engine lost its data/, 'the fault says p1 may hold less than it was told');
  await endGrace(engine, a, b);
  b.sf.run(3, lk('q2', 2, F_RDLCK, F_SETLK), b.target);
  t.match(await answered(b, 3, "q2's read lock of [0,10)"), { result: 0 }, 'another reader is let in');
  b.sf.run(4, lk('q3', 3, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 4, "q3's write lock of [0,10)"), { result: -EAGAIN }, 'a writer is not');
});

// x1's unlock of [100,110) is owed (a cut off); p1 extends its lock of [0,10) to [0,20): the step
// (carrying x1's unlock) applies, its reply lost, and a is cut off again. The engine loses its
// data: p1 held [0,10) either way (the step only extended it), so it goes back; x1's lock, which
// the owed unlock releases either way, does not. Owner by owner: x1's unlock in the same step
// does not cost p1 its lock.
t.test("a lock request's step of unknown fate that carried another owner's owed unlock, when the engine loses its data: each owner keeps what it held either way", async (t) => {
  const { engine, a } = await alone(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 holds [0,10)');
  a.sf.run(2, lk('x1', 7, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 2, "x1's lock of [100,110)"), { result: 0 }, 'x1 holds [100,110)');
  a.policy = (s) => (s.id === undefined && (s.put?.length ?? 0) > 0 ? 'lose' : 'drop');
  a.afterLose = async () => {
    a.policy = () => 'drop';
  };
  a.sf.run(3, lk('x1', 7, F_UNLCK, F_SETLK, 100, 10), a.target);
  await answered(a, 3, "x1's unlock (given up on: owed)");
  a.sf.run(4, lk('p1', 1, F_WRLCK, F_SETLK, 0, 20), a.target);
  t.notMatch(await answered(a, 4, "p1's extension (given up on)"), { result: 0 }, 'answered as failed');
  const was = a.store.session().epoch;
  t.same(await held(engine), [`a|${was} held write p1 0-19`], "the engine: p1's [0,20) (the step applied, x1's unlock with it)");
  const { old, epoch } = await resetEngine(engine, a);
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  heal(a);
  a.sf.run(5, lk('nobody', 9, F_UNLCK, F_SETLK, 200, 1), a.target);
  t.match(await answered(a, 5, "a's unlock of nothing, after its re-assertion"), { result: 0 });
  t.same(await held(engine), [`a|${epoch} held write p1 0-9`], "the engine: p1's [0,10), held either way; x1's lock gone");
});
