/**
 * Review of the untold rule by bytes (SharedFile.untold, markGrants, carried): what the tests of
 * shared-file-untold-merged.test.ts do not look at. One step of node b grants p1 (node a) two
 * adjacent waiters through two handles, merged into one lock [5,15); the first ended untold (its
 * handle's close came first). Then p1's own steps, each committed with no rebuild of a's table in
 * between (the decided table stays the file's): the marks of the untold bytes must follow only
 * the locks that still hold them, never a lock an earlier step of a already replaced. And a
 * wake-up pass of a's own that grants many waiters while a grant is marked in the file must cost
 * what it costs with none (no pass over every waiter per granted waiter). Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness; every wait is for an answer, an inbox event or an
 * engine record, within the harness's budget.
 */
import t from 'tap';
import { ENOLCK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { SharedFile } from '../../src/actors/shared-file.js';
import { answered, lk, overflowLog, uf } from './lost-link.js';
import { answersTo, held, nodes } from './reset-harness.js';
import { closeOwed, dropAfter, endedOnce, faults, flush, grantHeld, heal, lines, lkFh, locks, mergedWaiter, replyLost, twoGrants } from './notice-stages.js';
import { grant, holds, stage, waits } from './stages.js';

// twoGrants (notice-stages.ts), as in shared-file-untold-merged: p1 holds [5,15), one lock; the
// bytes [5,10) of a grant never told.

// p1 locks the untold bytes itself (told: they are its now), then, in a's next step (no rebuild in
// between), the bytes after its lock, which the core merges with it: all of [5,20) is p1's, told.
t.test("the owner locks the untold grant's bytes itself, then the next bytes in a later step of this node: the flush notices all of the lock", async (t) => {
  const { engine, a, released, to1 } = await twoGrants(t);
  await locks(t, a, 8, lkFh(2, F_WRLCK, F_SETLK, 5, 5), "p1's lock of [5,10)");
  await locks(t, a, 9, lkFh(2, F_WRLCK, F_SETLK, 15, 5), "p1's lock of [15,20)");
  t.same(await held(engine), ['a held write p1 5-19'], 'one lock of p1');
  a.sf.run(10, flush, a.target);
  await answered(a, 10, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:5+15'], "the flush's notice for all of p1's lock: the caller locked each byte of it");
  t.same(a.faults, [], 'nothing reported');
});

// The same with a downgrade: p1 read-locks all of its lock (told: [5,15) read is its), then the
// next bytes, read, merged with it in a later step.
t.test("the owner read-locks all of its lock (the untold bytes among them), then the next bytes in a later step of this node: the flush notices all of the lock", async (t) => {
  const { engine, a, released, to1 } = await twoGrants(t);
  await locks(t, a, 8, lkFh(2, F_RDLCK, F_SETLK, 5, 10), "p1's read lock of [5,15)");
  await locks(t, a, 9, lkFh(2, F_RDLCK, F_SETLK, 15, 5), "p1's read lock of [15,20)");
  t.same(await held(engine), ['a held read p1 5-19'], 'one read lock of p1');
  a.sf.run(10, flush, a.target);
  await answered(a, 10, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:5+15'], "the flush's notice for all of p1's lock");
  t.same(a.faults, [], 'nothing reported');
});

// Cost: a grant marked in the file (p1's, told), and K readers of a waiting behind p0's write lock:
// p0's unlock grants them all in one wake-up pass of a's. Each lock that pass makes is looked at
// for grants' bytes it carries (SharedFile.carried); that must not look for each waiter the pass
// granted among all the waiters (waiterOf, a walk over them), for each lock: K^2 walks of K
// waiters (about a minute of a blocked thread for K = 2000, against 50 ms without a mark). Counted
// here (a clock would not see it: the thread is blocked, so no timer fires before the answers).
t.test('a wake-up pass of this node granting many of its waiters while a grant is marked in the file: no walk over the waiters per waiter granted', async (t) => {
  const K = 300;
  const { a, b } = await nodes(t, 'default');
  const waiter = waits(a, 1, lk('p1', 1, F_WRLCK, F_SETLKW, 100000, 10), "p1's waiter queued");
  await stage(t, holds(b, 1, lk('q9', 9, F_WRLCK, F_SETLK, 100000, 10), "q9's lock of [100000,100010)"), waiter);
  await grant(t, holds(b, 2, lk('q9', 9, F_UNLCK, F_SETLK, 100000, 10), "q9's unlock"), waiter, "p1's waiter granted by b's step");
  await stage(t, holds(a, 2, lk('p0', 2, F_WRLCK, F_SETLK, 0, 100), "p0's lock of [0,100)"));
  for (let i = 0; i < K; i++) a.sf.run(10 + i, lk(`r${i}`, 10 + i, F_RDLCK, F_SETLKW, 0, 100), a.target);
  for (let i = 0; i < K; i++) await answered(a, -(10 + i), `r${i}'s waiter queued`);
  const proto = SharedFile.prototype as unknown as { waiterOf: (id: string) => unknown };
  const waiterOf = proto.waiterOf;
  let walks = 0;
  proto.waiterOf = function (this: unknown, id: string) {
    walks++;
    return waiterOf.call(this, id);
  };
  t.teardown(() => void (proto.waiterOf = waiterOf));
  a.sf.run(5, lk('p0', 2, F_UNLCK, F_SETLK, 0, 100), a.target);
  t.match(await answered(a, 5, "p0's unlock"), { result: 0 });
  const locks = await Promise.all(Array.from({ length: K }, (_, i) => answered(a, 10 + i, `r${i}'s lock`)));
  t.match(locks, Array.from({ length: K }, () => ({ result: 0 })), 'every reader granted');
  t.ok(walks < K, `fewer walks over the waiters than waiters granted (${walks})`);
  t.same(a.faults, [], 'nothing reported');
});

// The merged grant learned from the engine's whole record set (a stale reply whose log no longer
// reaches back: SharedFile.replace), not from the changes or the inbox: p1 holds [0,5) and waits
// for [5,10) behind q9 of node b; handle 1's close, owed, ends the waiter; b's unlock grants it,
// merged with p1's [0,5); b's steps then overflow the log; a's next step learns the grant from the
// whole record set, before the grant's event. The close's notice: only the bytes p1 held.
t.test("an untold grant merged with its owner's lock, learned from the whole record set: the close's notice covers only the bytes the caller held", async (t) => {
  const { engine, a, b, released, unlock } = await mergedWaiter(t);
  const told = answersTo(a, 4);
  await closeOwed(t, a, told, 'the waiter ended with the close');
  await grantHeld(t, a, unlock, 1);
  t.same(await held(engine), ['a held write p1 0-9'], "the engine merged the grant with p1's lock");
  await overflowLog(engine, b.store);
  a.policy = () => 'pass';
  a.sf.run(6, lk('p7', 7, F_WRLCK, F_SETLK, 80, 10), a.target);
  t.match(await answered(a, 6, "p7's lock of [80,90)"), { result: 0 });
  t.ok(a.log.some((l) => l.endsWith('stale whole')), "a's step was refused stale with the whole record set");
  a.release();
  await heal(t, a, 7);
  t.same((await held(engine)).filter((x) => !x.includes(' p7 80-89')), [], 'the engine: nothing of p1');
  endedOnce(t, told, 'the waiter was told once, never granted');
  t.same(released, ['posix:0+5'], "the close's notice for the bytes p1 held; none for the grant's");
  t.same(a.faults, [], 'nothing reported');
});

// Three runs in one lock: p1's own [0,5) (through handle 3), an untold grant [5,10) (handle 1,
// closed first) and a told one [10,15) (handle 2), granted in one step of b and merged with p1's
// lock. The caller holds [0,5) and [10,15): two locks to it, and the flush gives two notices, in
// the order of their bytes (as two locks of the non-store path would).
// 'middle': p1 first unlocks [3,12), the middle of the lock (its notice is the unlock's own, as
// the caller asked it, as in the non-store path): two locks are left, [0,3) and [12,15), each
// noticed whole by the flush (the untold bytes went with the unlock).
for (const middle of [false, true]) {
t.test(`an owner's lock merged with an untold grant and a told one${middle ? ', its middle unlocked' : ''}: the flush notices the owner's bytes and the told grant's, two notices in order`, async (t) => {
  const { engine, a, released, to1 } = await twoGrants(t, { call: lkFh(3, F_WRLCK, F_SETLK, 0, 5), says: "p1's lock of [0,5) through handle 3" });
  if (middle) {
    await locks(t, a, 9, lkFh(3, F_UNLCK, F_SETLK, 3, 9), "p1's unlock of [3,12)");
    t.same(await held(engine), ['a held write p1 0-2', 'a held write p1 12-14'], 'two locks of p1 left');
  }
  a.sf.run(8, flush, a.target);
  await answered(a, 8, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, middle ? ['posix:3+9', 'posix:0+3', 'posix:12+3'] : ['posix:0+5', 'posix:10+5'], "the flush's notices: p1's own bytes, then the told grant's; none for the untold grant's");
  t.same(a.faults, [], 'nothing reported');
});
}

// The owner unlocks the start of a lock that holds an untold grant's bytes; that step applies but
// its reply is lost, and every resend of it gets none: the unlock is answered with the generic
// code, its release owed (API.md: an engine that does not answer), and a's next step's stale
// reply shows it applied (not run again). What it left of the lock, a record this node's lost
// step put, keeps the marks. The loss falls on the unlock's step: a's owed try after twoGrants'
// heal is waited for first (ownTryDone), and the log shows it.
t.test('an unlock of part of a lock holding untold bytes, applied with its reply lost: the flush notices only the told bytes of what is left', async (t) => {
  const { engine, a, released, to1 } = await twoGrants(t);
  const { at, got } = await replyLost(a, 8, lkFh(2, F_UNLCK, F_SETLK, 5, 2), "p1's unlock of [5,7) (its reply lost)");
  t.match(got, { result: -ENOLCK }, 'no reply: the generic code, its release owed');
  lines(t, a.log.slice(at), [/^lose \{"put":\["[^"]+"\],"remove":\["[^"]+"\]\} -> ok$/], "the one step that reached the engine since: the unlock's (one record for what is left, one removed), its reply lost");
  t.same(await held(engine), ['a held write p1 7-14'], 'the unlock applied');
  a.sf.run(9, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 9, "handle 99's unlock of nothing (a's next step)"), 158);
  lines(t, a.log.slice(at + 1), [/ -> stale missed$/], "a's next step: a stale reply naming the unlock's step (the release not run again)");
  a.sf.run(10, flush, a.target);
  await answered(a, 10, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:5+2', 'posix:10+5'], "the unlock's own notice, then the flush's for the told grant's bytes only");
  t.same(a.faults, [], 'nothing reported');
});

// The owner locks the next bytes (this node's step merges them with the lock that holds the
// untold bytes); that step applies but its reply is lost, and the request is answered as failed:
// the next step undoes it, putting back the lock it merged (SharedFile.remember, Unsure), and
// reports that (a fault: a step applied after its request was answered as failed). That lock
// keeps its marks: the flush notices only the told grant's bytes. The loss falls on the lock
// request's step (ownTryDone, and the log shows it).
t.test("a lock request merged with a lock holding untold bytes, applied with its reply lost and undone: the lock put back keeps the marks", async (t) => {
  const { engine, a, released, to1 } = await twoGrants(t);
  // Its reply lost, then a cut off: every later try of it fails, and the request times out.
  const { at, got } = await replyLost(a, 8, lkFh(2, F_WRLCK, F_SETLK, 15, 5), "p1's lock of [15,20) (its reply lost: answered as failed)", dropAfter(a));
  const r = got as { result: number };
  t.equal(r.result, -ENOLCK, 'answered as failed: the generic code');
  lines(t, a.log.slice(at), [/^lose \{"put":\["[^"]+"\],"remove":\["[^"]+"\]\} -> ok$/], "the one step that reached the engine since: the lock request's (the merged lock put, the lock it merged removed), its reply lost");
  t.same(await held(engine), ['a held write p1 5-19'], 'the lock request applied');
  a.policy = () => 'pass';
  a.sf.run(9, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 9, "handle 99's unlock of nothing (a's next step: the undo)"), 158);
  lines(t, a.log.slice(at + 1), [/ -> stale missed$/, /^pass \{"put":\["[^"]+"\],"remove":\["[^"]+"\]\} -> ok$/], "a's next step: a stale reply naming the lock request's step, then the undo (the lock put back, the merged one removed)");
  t.same(await held(engine), ['a held write p1 5-14'], 'the lock request undone: p1 holds what it held');
  a.sf.run(10, flush, a.target);
  await answered(a, 10, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:10+5'], "the flush's notice for the told grant's bytes only");
  faults(t, a, [/had applied after all; undone$/], 'the lock request found applied and undone: reported');
});

// An OFD owner (one open file description, file handle 1): o1 holds [0,5) and waits for [5,10)
// behind q9 of node b; the close of handle 1, owed, ends the waiter and releases o1's locks; b's
// unlock grants the waiter, merged with o1's [0,5); the close, settled by a's next step,
// notices the bytes o1 held only.
t.test("an OFD owner's untold grant merged with its lock, then the close of its handle settled: the notice covers only the bytes the caller held", async (t) => {
  const { engine, a, released, unlock } = await mergedWaiter(t, 'o1', "o1's lock of [0,5)");
  const told = answersTo(a, 4);
  await closeOwed(t, a, told, 'the waiter ended with the close');
  await grantHeld(t, a, unlock, 1);
  t.equal((await held(engine)).length, 1, "the engine merged the grant with o1's lock: one record");
  a.release();
  await heal(t, a, 7);
  t.same(await held(engine), [], 'the engine: nothing of o1');
  endedOnce(t, told, 'the waiter was told once, never granted');
  t.same(released, ['posix:0+5'], "the close's notice for the bytes o1 held; none for the grant's");
  t.same(a.faults, [], 'nothing reported');
});

// A downgrade of part of the lock, over the untold bytes and the told ones: the core splits it
// (write [5,7) and [12,15), each keeping the lock's marks) and converts [7,12) to read (the
// owner's request: told). The flush notices the read lock and the told write bytes.
t.test('the owner read-locks bytes across the untold and the told grants: the flush notices the read lock and the told bytes left of the write lock', async (t) => {
  const { engine, a, released, to1 } = await twoGrants(t);
  await locks(t, a, 8, lkFh(2, F_RDLCK, F_SETLK, 7, 5), "p1's read lock of [7,12)");
  t.same(await held(engine), ['a held read p1 7-11', 'a held write p1 12-14', 'a held write p1 5-6'], 'split and converted');
  a.sf.run(10, flush, a.target);
  await answered(a, 10, "p1's flush");
  t.same(await held(engine), [], 'the engine: nothing of p1');
  endedOnce(t, to1, 'the first waiter was told once, never granted');
  t.same(released, ['posix:7+5', 'posix:12+3'], "the flush's notices: the read lock, the told write bytes; none for [5,7)");
  t.same(a.faults, [], 'nothing reported');
});
