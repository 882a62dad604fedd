/**
 * What an unlock answered before another node granted its owner's waiter leaves to that owner
 * when it runs later (Run.spared, SharedFile.spareOf): the granted bytes, of that owner only, and
 * only for a grant (not a waiter failed by another node's step), whichever way the grant is
 * learned (the inbox, a stale reply's changes, a stale reply's whole record set). A release issued
 * after the grant was told spares nothing; a release shown applied is not run again. Also a flush
 * (a POSIX close: all of the owner's locks go, its waiters keep waiting) and a Windows unlockAll,
 * owed, then a grant of a waiter of that owner or handle: the grant stays. Real SharedFiles over a
 * MemoryEngine, behind the lost-link harness; every wait is for an answer, within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, EDEADLK, ENOLCK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseFlush, parseLock, parseUnlockFile, type Call } from '../../src/core/requests.js';
import { answered, lf, lk, lw, overflowLog, uf, type TestNode } from './lost-link.js';
import { held, nodes, resetBoth, until } from './reset-harness.js';
import { grant, granted, holds, owedCutOff, q2Unlock, stage, twoNodes, waiterBehindQ2, waits } from './stages.js';

/** An OFD or flock lock call of `owner` through file handle `fh` on [start, start+len) of /a. */
const lkk = (kind: 'ofd' | 'flock', owner: string, fh: number, type: number, cmd: number, start = 0, len = 10): Call =>
  parseLock({ path: '/a', kind, lockType: type, cmd, lockOwner: owner, lockStart: start, lockLen: len, lockPid: fh, fileHandle: fh }) as Call;

const flush = (owner: string): Call => parseFlush({ path: '/a', lockOwner: owner });

/** IRP_MN_UNLOCK_ALL of `handle` (process 1) on /a. */
const unlockAll = (handle: number): Call => parseUnlockFile({ fileName: '/a', byteOffset: 2n ** 64n - 1n, length: 2n ** 64n - 1n, handle, processId: 1 }) as Call;

/** Request `id` of b: a write lock of [start, start+len) for a fresh owner, answered as `want`. */
async function probe(t: Test, b: TestNode, id: number, start: number, len: number, want: number, what: string): Promise<void> {
  b.sf.run(id, lk(`z${id}`, 100 + id, F_WRLCK, F_SETLK, start, len), b.target);
  t.match(await answered(b, id, `a write lock of [${start},${start + len})`), { result: want }, what);
}

/** a reaches the engine again; its next step (request `id`: p4's lock of [40,50)) carries what is owed. */
async function heal(t: Test, a: TestNode, id: number): Promise<void> {
  a.policy = () => 'pass';
  a.sf.run(id, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, id, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits, carrying what is owed");
}

for (const kind of ['ofd', 'flock'] as const) {
  t.test(`an owed ${kind} unlock, then a grant of the same owner's waiter: the owner keeps the grant`, async (t) => {
    const { a, b } = await twoNodes(t);
    // flock: b's f2 holds the whole file, a's f1 waits for it (holding nothing: a conversion drops
    // the old lock first). OFD: f1 holds [0,10) and waits for [5,20), which f2 holds [10,20) of.
    const [s, n] = kind === 'flock' ? [0, 0] : [10, 10];
    const waiter = waits(a, 2, lkk(kind, 'f1', 1, F_WRLCK, F_SETLKW, 5, 15), "f1's waiter queued");
    const f1Holds = kind === 'ofd' ? [holds(a, 1, lkk(kind, 'f1', 1, F_WRLCK, F_SETLK, 0, 10), "f1's lock of [0,10)")] : [];
    await stage(t, holds(b, 1, lkk(kind, 'f2', 2, F_WRLCK, F_SETLK, s, n), "f2's lock"), ...f1Holds, waiter);
    t.match(await owedCutOff(a, 3, lkk(kind, 'f1', 1, F_UNLCK, F_SETLK, 0, 10), "f1's unlock"), { result: -ENOLCK });
    await grant(t, holds(b, 2, lkk(kind, 'f2', 2, F_UNLCK, F_SETLK, s, n), "f2's unlock"), waiter, "f1's waiter", "granted by b's unlock, after f1's unlock was answered");
    await heal(t, a, 4);
    b.sf.run(3, lkk(kind, 'f3', 3, F_WRLCK, F_SETLK, 5, 5), b.target);
    t.match(await answered(b, 3, "f3's lock"), { result: -EAGAIN }, 'f1 still holds what it was granted after its unlock');
    if (kind === 'ofd') await probe(t, b, 4, 0, 5, 0, '[0,5) is free: the owed unlock ran');
    t.same(a.faults, [], 'nothing reported');
  });
}

t.test('an owed unlock of [0,30), then grants of two waiters of its owner, [5,10) and [20,25): both stay, the rest goes', async (t) => {
  const { a, b } = await twoNodes(t);
  const first = waits(a, 2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 5), "p1's write waiter for [5,10)");
  const second = waits(a, 3, lk('p1', 1, F_WRLCK, F_SETLKW, 20, 5), "p1's write waiter for [20,25)");
  await stage(
    t,
    holds(b, 1, lk('q2', 2, F_RDLCK, F_SETLK, 5, 5), "q2's read of [5,10)"),
    holds(b, 2, lk('q3', 3, F_RDLCK, F_SETLK, 20, 5), "q3's read of [20,25)"),
    holds(a, 1, lk('p1', 1, F_RDLCK, F_SETLK, 0, 30), "p1's read of [0,30)"),
    first,
    second,
  );
  t.match(await owedCutOff(a, 4, lk('p1', 1, F_UNLCK, F_SETLK, 0, 30), "p1's unlock of [0,30)"), { result: -ENOLCK });
  await stage(t, holds(b, 3, lk('q2', 2, F_UNLCK, F_SETLK, 5, 5), "q2's unlock"), holds(b, 4, lk('q3', 3, F_UNLCK, F_SETLK, 20, 5), "q3's unlock"));
  await granted(t, first, "p1's [5,10)", 'granted');
  await granted(t, second, "p1's [20,25)", 'granted');
  await heal(t, a, 5);
  await probe(t, b, 5, 5, 5, -EAGAIN, 'p1 holds [5,10)');
  await probe(t, b, 6, 20, 5, -EAGAIN, 'p1 holds [20,25)');
  await probe(t, b, 7, 0, 5, 0, '[0,5) is free');
  await probe(t, b, 8, 10, 10, 0, '[10,20) is free');
  await probe(t, b, 9, 25, 5, 0, '[25,30) is free');
  t.same(a.faults, [], 'nothing reported');
});

t.test("an owed unlock of p1's [0,10), then a grant of ANOTHER owner's waiter over [5,20): p1's bytes all go", async (t) => {
  const { a, b } = await twoNodes(t);
  const waiter = waits(a, 2, lk('p5', 5, F_RDLCK, F_SETLKW, 5, 15), "p5's read waiter for [5,20)");
  await stage(t, holds(b, 1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), "q2's write of [10,20)"), holds(a, 1, lk('p1', 1, F_RDLCK, F_SETLK, 0, 10), "p1's read of [0,10)"), waiter);
  t.match(await owedCutOff(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)"), { result: -ENOLCK });
  await grant(t, q2Unlock(b), waiter, "p5's read of [5,20)", 'granted');
  await heal(t, a, 4);
  a.sf.run(5, lk('p5', 5, F_UNLCK, F_SETLK, 5, 15), a.target);
  t.match(await answered(a, 5, "p5's unlock"), { result: 0 });
  await probe(t, b, 3, 0, 10, 0, "[0,10) is free: p1's unlock released it all");
  t.same(a.faults, [], 'nothing reported');
});

for (const inbox of ['read at once', 'read late'] as const) {
  t.test(`an unlock in flight (not owed) when another node grants its owner's waiter (inbox ${inbox}): decided again, it leaves the grant`, async (t) => {
    const { a, b } = await twoNodes(t);
    const waiter = await waiterBehindQ2(t, a, b, 5, 15);
    // The unlock's first send is cut off; while it is out, b's unlock grants p1's waiter. Its
    // resend (same step) is then stale, and it is decided again with the grant known.
    let once = false;
    a.policy = (s) => (s.id === undefined && !once ? 'drop' : 'pass');
    a.afterDrop = async () => {
      once = true;
      if (inbox === 'read late') a.held = [];
      await stage(t, q2Unlock(b));
    };
    a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
    t.match(await answered(a, 3, "p1's unlock"), { result: 0 }, 'answered 0, before the grant was told');
    t.notOk(a.got.has(2), 'the grant not told yet');
    if (inbox === 'read late') a.release();
    await granted(t, waiter, "p1's waiter", 'granted');
    await probe(t, b, 3, 5, 5, -EAGAIN, 'p1 holds [5,10)');
    await probe(t, b, 4, 0, 5, 0, '[0,5) is free');
    t.same(a.faults, [], 'nothing reported');
  });
}

t.test('an owed unlock spares the grant; an unlock of the same owner issued after the grant was told releases it', async (t) => {
  const { a, b } = await twoNodes(t);
  const waiter = await waiterBehindQ2(t, a, b, 5, 15);
  t.match(await owedCutOff(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)"), { result: -ENOLCK });
  await grant(t, q2Unlock(b), waiter, "p1's waiter", 'granted, and told');
  // Issued after the grant was told, still cut off: owed behind the first.
  t.match(await owedCutOff(a, 4, lk('p1', 1, F_UNLCK, F_SETLK, 5, 10), "p1's unlock of [5,15)"), { result: -ENOLCK });
  await heal(t, a, 5);
  await probe(t, b, 3, 0, 15, 0, '[0,15) is free: the second unlock released what it reached of the grant');
  await probe(t, b, 4, 15, 5, -EAGAIN, 'p1 holds [15,20)');
  t.same(a.faults, [], 'nothing reported');
});

t.test('an owed unlock whose carrying step applied (reply lost) before the grant: not run again after it', async (t) => {
  const { engine, a, b } = await twoNodes(t);
  const waiter = await waiterBehindQ2(t, a, b, 5, 15);
  t.match(await owedCutOff(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)"), { result: -ENOLCK });
  // a's next step carries it, applies, and its reply is lost (p6's lock is answered as failed).
  a.policy = (s) => (s.id === undefined ? 'lose' : 'pass');
  a.sf.run(4, lk('p6', 6, F_WRLCK, F_SETLK, 60, 10), a.target);
  t.notMatch(await answered(a, 4, "p6's lock (reply lost)"), { result: 0 });
  t.same(await held(engine), ['a held write p6 60-69', 'a waiting write p1 5-19', 'b held write q2 10-19'], 'the engine: the unlock applied');
  a.policy = () => 'pass';
  await grant(t, q2Unlock(b), waiter, "p1's waiter", 'granted (on the records the unlock left)');
  await heal(t, a, 5);
  await probe(t, b, 3, 5, 5, -EAGAIN, 'p1 holds [5,10): the unlock did not run again');
  await probe(t, b, 4, 0, 5, 0, '[0,5) is free');
});

t.test("an owed unlock, then a grant learned from a stale reply's whole record set (the log no longer reaching back): the grant stays", async (t) => {
  const { engine, a, b } = await twoNodes(t);
  const waiter = await waiterBehindQ2(t, a, b, 5, 15);
  t.match(await owedCutOff(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)"), { result: -ENOLCK });
  a.held = [];
  await stage(t, q2Unlock(b));
  await overflowLog(engine, b.store);
  await heal(t, a, 4);
  t.ok(a.log.some((l) => l.endsWith('stale whole')), "a's step was stale, with the whole record set");
  a.release();
  await granted(t, waiter, "p1's waiter", 'granted');
  await probe(t, b, 3, 5, 5, -EAGAIN, 'p1 holds [5,10), which it was granted after the unlock');
  await probe(t, b, 4, 0, 5, 0, '[0,5) is free: the owed unlock ran');
  t.same(a.faults, [], 'nothing reported');
});

// p1 reads [0,10) (r1 too) and waits to write it; q2 waits for p1's [100,110). q2's read of
// [0,10) gives p1's waiter a blocker that closes a cycle: b's step ends it with EDEADLK. That
// removal is no grant: p1's owed unlock of [0,10) must release it all.
t.test("an owed unlock, then another node's step fails the owner's waiter (EDEADLK), learned from a stale reply: nothing is spared", async (t) => {
  const { a, b } = await twoNodes(t);
  await stage(
    t,
    holds(b, 1, lk('r1', 11, F_RDLCK, F_SETLK, 0, 10), "r1's read of [0,10)"),
    holds(a, 1, lk('p1', 1, F_RDLCK, F_SETLK, 0, 10), "p1's read of [0,10)"),
    holds(a, 2, lk('p1', 1, F_WRLCK, F_SETLK, 100, 10), "p1's write of [100,110)"),
    waits(b, 2, lk('q2', 2, F_WRLCK, F_SETLKW, 100, 10), "q2's waiter for [100,110) (p1 holds it)"),
    waits(a, 3, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 10), "p1's write waiter for [0,10) (r1 reads it)"),
  );
  t.match(await owedCutOff(a, 4, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)"), { result: -ENOLCK });
  a.held = [];
  await stage(t, holds(b, 3, lk('q2', 2, F_RDLCK, F_SETLK, 0, 10), "q2's read of [0,10)"));
  await heal(t, a, 5);
  a.release();
  t.match(await answered(a, 3, "p1's write waiter"), { result: -EDEADLK }, "ended by b's step");
  await stage(t, holds(b, 4, lk('q2', 2, F_UNLCK, F_SETLK, 0, 10), "q2's unlock of [0,10)"), holds(b, 5, lk('r1', 11, F_UNLCK, F_SETLK, 0, 10), "r1's unlock"));
  await probe(t, b, 6, 0, 10, 0, "[0,10) is free: p1's owed unlock released it");
});

// A flush (close(2) of another descriptor: all of p1's POSIX locks go, its waiter keeps waiting),
// answered before the grant, leaves the grant to p1 when it runs later. Its release notices: one
// per lock it removes, for the part it removes.
for (const inbox of ['read at once', 'read late'] as const) {
  t.test(`an owed flush, then another node grants its owner's waiter (inbox ${inbox}): the grant stays`, async (t) => {
    const released: string[] = [];
    const { a, b } = await twoNodes(t, { released: (family, e) => void released.push(`${family}:${String(e.lockStart ?? e.byteOffset)}+${String(e.lockLen ?? e.length)}`) });
    const waiter = waits(a, 3, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 15), "p1's waiter for [5,20)");
    await stage(
      t,
      holds(b, 1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), "q2's lock of [10,20)"),
      holds(a, 1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), "p1's lock of [0,10)"),
      holds(a, 2, lk('p1', 1, F_WRLCK, F_SETLK, 30, 5), "p1's lock of [30,35)"),
      waiter,
    );
    await owedCutOff(a, 4, flush('p1'), "p1's flush");
    if (inbox === 'read late') a.held = [];
    await stage(t, q2Unlock(b));
    if (inbox === 'read at once') await granted(t, waiter, "p1's waiter", 'granted after the flush was answered');
    await heal(t, a, 5);
    if (inbox === 'read late') {
      a.release();
      await granted(t, waiter, "p1's waiter", 'granted');
    }
    await probe(t, b, 3, 5, 15, -EAGAIN, 'p1 holds [5,20), granted after the flush');
    await probe(t, b, 4, 0, 5, 0, '[0,5) is free: the flush ran');
    await probe(t, b, 5, 30, 5, 0, '[30,35) is free: the flush ran');
    t.same(released.sort(), ['posix:0+5', 'posix:30+5'], 'one notice per lock the flush removed, for the part it removed');
    t.same(a.faults, [], 'nothing reported');
  });
}

t.test('an owed unlockAll of a Windows handle, then another node grants that handle a waiter: the grant stays', async (t) => {
  const { a, b } = await twoNodes(t);
  const waiter = waits(a, 2, lw(7, 20, 10), "a's handle 7 waits for [20,30)");
  await stage(t, holds(b, 1, lf(1, 20, 10), "b's handle 1 locks [20,30)"), holds(a, 1, lf(7, 0, 10), "a's handle 7 locks [0,10)"), waiter);
  await owedCutOff(a, 3, unlockAll(7), "handle 7's unlockAll");
  await grant(t, holds(b, 2, uf(1, 20, 10), "b's handle 1 unlocks"), waiter, "handle 7's LockFileEx of [20,30)", 'granted after the unlockAll was answered');
  await heal(t, a, 4);
  b.sf.run(3, lf(2, 20, 10), b.target);
  t.equal(await answered(b, 3, "b's handle 2's LockFileEx of [20,30)"), 33, 'handle 7 holds [20,30), granted after the unlockAll');
  b.sf.run(4, lf(2, 0, 10), b.target);
  t.equal(await answered(b, 4, "b's handle 2's LockFileEx of [0,10)"), 0, '[0,10) is free: the unlockAll ran');
  t.same(a.faults, [], 'nothing reported');
});

// At an engine reset (settleOwed): an owed flush, then a grant of its owner's waiter, learned
// from the inbox (the cache stands it in: kept out of the flush's table) or also from a stale
// reply of a's step after it (the engine's records replace the stand-in: the flush leaves the
// grant's bytes, spareOf). Either way p1 holds [5,15) after the reset, nothing reported (before,
// with the stand-in replaced, the flush took the grant too, and a fault said so).
for (const how of ['stood in', 'replaced by a stale reply'] as const) {
  t.test(`a flush owed when the engine loses its data, its owner's waiter granted since (${how}): the grant's bytes stay, nothing reported`, async (t) => {
    const { engine, a, b, released } = await nodes(t);
    const waiter = await waiterBehindQ2(t, a, b, 5, 10);
    // Cut off; with 'replaced', but for the first new step of a once b's unlock applied (stale).
    let unlocked = false;
    let passed = how === 'stood in';
    a.policy = (s) => {
      if (!unlocked || passed || s.id !== undefined) return 'drop';
      passed = true;
      return 'pass';
    };
    a.sf.run(3, flush('p1'), a.target);
    await answered(a, 3, "p1's flush (given up on: owed)");
    b.onReply = (r) => void (r.ok && (unlocked = true));
    await grant(t, q2Unlock(b), waiter, "p1's waiter", 'granted after the flush was answered');
    if (how !== 'stood in') await until(() => a.log.some((l) => l.startsWith('pass ') && l.includes('-> stale')), "a's step after the grant, stale");
    else {
      a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
      await answered(a, 4, "p4's lock (cut off)");
    }
    t.same(await held(engine), ['a held write p1 0-14'], 'the engine: the grant, merged with the lock the flush never released');
    // a may have nothing to put back (if the flush took the grant too): its next step waits for
    // its re-assertion, if any.
    await resetBoth(engine, a, b, true, true);
    a.policy = () => 'pass';
    a.sf.run(5, uf(99, 1000, 1), a.target);
    t.equal(await answered(a, 5, "handle 99's unlock of nothing, after the re-assertion"), 158);
    t.same(await held(engine), ['a held write p1 5-14'], "after a's re-assertion and next step: p1's [5,15), the grant's bytes");
    // Stood in, the grant is out of the flush's table: it removes p1's [0,10) whole. Replaced, it
    // removes what the merged [0,15) has outside the grant.
    t.same(released, [how === 'stood in' ? 'posix:0+10' : 'posix:0+5'], "the flush's notice, for what it removed, told once");
    t.same(a.faults, [], 'nothing reported');
  });
}
