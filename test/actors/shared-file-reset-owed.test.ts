/**
 * Model: a release answered to its caller (a POSIX unlock, a Windows unlock, a close) happened,
 * once, whatever became of its step; so when the engine loses its data while that release is
 * still owed (its step applied with the reply lost, or never), the node's re-assertion puts back
 * only what the release left, and tells its notices once. Invariant checked: right after both
 * nodes' re-assertions, before any later step, the engine never holds two conflicting locks (the
 * released lock and the one another node took of the bytes it freed). Real SharedFiles over a
 * MemoryEngine behind the lost-link harness; every wait is for an answer or an engine record,
 * within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseLockFile, type Call } from '../../src/core/requests.js';
import { answered, ch, endGrace, lf, lk, uf, type TestNode } from './lost-link.js';
import { held, nodes, owedRelease, resetBoth, until } from './reset-harness.js';

/**
 * a reaches the engine again; its next step commits (request `id`: an UnlockFileEx of bytes
 * handle 99 never locked, which tells no notice).
 */
async function heal(t: Test, a: TestNode, id: number): Promise<void> {
  a.policy = () => 'pass';
  a.sf.run(id, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, id, "handle 99's unlock of nothing, after the re-assertion"), 158);
}

/** A blocking Windows LockFileEx of [start, start+len) of /a through `handle` (process 1). */
const lw = (handle: number, start: number, len: number): Call =>
  parseLockFile({ fileName: '/a', byteOffset: start, length: len, exclusiveLock: true, failImmediately: false, handle, processId: 1 }) as Call;

// The reviewer's scenario. p1 (node a) unlocks [0,10): the step applies, its reply is lost, the
// unlock is owed. b's q1 is granted [0,10). The engine loses its data: b puts back q1's lock, and
// a put back p1's (still in its cache), so both were in the engine until a's owed unlock
// committed after the re-assertion. p1 was told its unlock was done: it does not get its lock back.
for (const policy of ['default', 'fifo'] as const) {
  t.test(`an unlock owed when the engine loses its data (${policy}): the lock it released is not put back over the one another node took since`, async (t) => {
    const { engine, a, b, released } = await nodes(t, policy);
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
    t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
    a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLK, 20, 10), a.target);
    t.match(await answered(a, 2, "p2's lock of [20,30)"), { result: 0 }, 'p2 writes [20,30)');
    await owedRelease(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)");
    t.same(await held(engine), ['a held write p2 20-29'], 'the engine: the unlock applied');
    b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
    t.match(await answered(b, 1, "q1's lock of [0,10)"), { result: 0 }, 'q1 writes [0,10)');
    await resetBoth(engine, a, b);
    t.same(await held(engine), ['a held write p2 20-29', 'b held write q1 0-9'], "right after the re-assertions: p2's lock and q1's, not p1's");
    await heal(t, a, 4);
    t.same(await held(engine), ['a held write p2 20-29', 'b held write q1 0-9'], "after a's next step: the same");
    t.same(released, ['posix:0+10'], "p1's unlock notice, told once");
    await endGrace(engine, a, b);
    a.sf.run(5, lk('p3', 3, F_WRLCK, F_SETLK, 0, 10), a.target);
    t.match(await answered(a, 5, "p3's lock of [0,10)"), { result: -EAGAIN }, 'q1 holds [0,10)');
    b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK, 0, 10), b.target);
    t.match(await answered(b, 2, "q1's unlock"), { result: 0 });
    a.sf.run(6, lk('p3', 3, F_WRLCK, F_SETLK, 0, 10), a.target);
    t.match(await answered(a, 6, "p3's lock of [0,10), again"), { result: 0 }, '[0,10) is free: p1 holds none of it');
    t.same(a.faults, [], 'nothing reported');
  });
}

// p1 holds [0,10) and unlocks [0,5): owed as above; b's q1 takes [0,5). After the reset p1 holds
// [5,10), the part the unlock left (a new record), and not [0,5).
t.test('a partial unlock owed when the engine loses its data: what it left goes back, not what it released', async (t) => {
  const { engine, a, b, released } = await nodes(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  await owedRelease(a, 2, lk('p1', 1, F_UNLCK, F_SETLK, 0, 5), "p1's unlock of [0,5)");
  t.same(await held(engine), ['a held write p1 5-9'], 'the engine: the unlock applied');
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 5), b.target);
  t.match(await answered(b, 1, "q1's lock of [0,5)"), { result: 0 }, 'q1 writes [0,5)');
  await resetBoth(engine, a, b);
  t.same(await held(engine), ['a held write p1 5-9', 'b held write q1 0-4'], "right after the re-assertions: p1's [5,10) and q1's [0,5)");
  await heal(t, a, 3);
  t.same(await held(engine), ['a held write p1 5-9', 'b held write q1 0-4'], "after a's next step: the same");
  t.same(released, ['posix:0+5'], "p1's unlock notice, told once");
  await endGrace(engine, a, b);
  a.sf.run(4, lk('p3', 3, F_WRLCK, F_SETLK, 5, 5), a.target);
  t.match(await answered(a, 4, "p3's lock of [5,10)"), { result: -EAGAIN }, 'p1 holds [5,10)');
  b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK, 0, 5), b.target);
  t.match(await answered(b, 2, "q1's unlock"), { result: 0 });
  a.sf.run(5, lk('p3', 3, F_WRLCK, F_SETLK, 0, 5), a.target);
  t.match(await answered(a, 5, "p3's lock of [0,5)"), { result: 0 }, '[0,5) is free: p1 holds none of it');
  a.sf.run(6, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 6, "p1's unlock of [0,10)"), { result: 0 });
  t.same(await held(engine), ['a held write p3 0-4'], "the engine: p3's [0,5) alone (p1's [5,10) was p1's to release)");
  t.same(a.faults, [], 'nothing reported');
});

// a's handle 1 holds [0,10) and [40,50); handle 2 holds [20,30). Handle 1's UnlockFileEx of [0,10)
// is owed; b's handle 5 takes [0,10). After the reset handle 1 holds [40,50) alone: the unlock
// took its one exact lock.
t.test('a Windows unlock owed when the engine loses its data: its one lock is not put back, the handle keeps the others', async (t) => {
  const { engine, a, b, released } = await nodes(t);
  a.sf.run(1, lf(1, 0, 10), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of [0,10)"), 0);
  a.sf.run(2, lf(1, 40, 10), a.target);
  t.equal(await answered(a, 2, "handle 1's lock of [40,50)"), 0);
  a.sf.run(3, lf(2, 20, 10), a.target);
  t.equal(await answered(a, 3, "handle 2's lock of [20,30)"), 0);
  await owedRelease(a, 4, uf(1, 0, 10), "handle 1's UnlockFileEx of [0,10)");
  t.same(await held(engine), ['a held write 1 40-49', 'a held write 2 20-29'], 'the engine: the unlock applied');
  b.sf.run(1, lf(5, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 5's lock of [0,10)"), 0, "b's handle 5 locks [0,10)");
  await resetBoth(engine, a, b);
  const after = ['a held write 1 40-49', 'a held write 2 20-29', 'b held write 5 0-9'];
  t.same(await held(engine), after, "right after the re-assertions: handle 1's [40,50), handle 2's, b's handle 5's; not handle 1's [0,10)");
  await heal(t, a, 5);
  t.same(await held(engine), after, "after a's next step: the same");
  t.same(released, ['windows:1:0+10'], 'onUnlockFile told once');
  await endGrace(engine, a, b);
  a.sf.run(6, uf(1, 0, 10), a.target);
  t.equal(await answered(a, 6, "handle 1's unlock of [0,10), again"), 158, 'handle 1 holds no lock of [0,10)');
  a.sf.run(7, uf(1, 40, 10), a.target);
  t.equal(await answered(a, 7, "handle 1's unlock of [40,50)"), 0, 'handle 1 held [40,50)');
  t.same(released, ['windows:1:0+10', 'windows:1:40+10'], 'each notice once');
  t.same(a.faults, [], 'nothing reported');
});

// a's handle 1 holds [0,10) and [40,50) and waits for [20,30) (b's handle 9 holds it); handle 2
// holds [60,70). Handle 1's close is owed; b's handle 5 takes [0,10). After the reset nothing of
// handle 1 is back, neither its locks nor its waiter, whose request is answered once as the close
// ends it (ERROR_NOT_LOCKED).
t.test('a close owed when the engine loses its data: none of its handle\'s locks or waiters is put back', async (t) => {
  const { engine, a, b, released } = await nodes(t);
  b.sf.run(1, lf(9, 20, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 9's lock of [20,30)"), 0);
  a.sf.run(1, lf(1, 0, 10), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of [0,10)"), 0);
  a.sf.run(2, lf(1, 40, 10), a.target);
  t.equal(await answered(a, 2, "handle 1's lock of [40,50)"), 0);
  a.sf.run(3, lf(2, 60, 10), a.target);
  t.equal(await answered(a, 3, "handle 2's lock of [60,70)"), 0);
  a.sf.run(4, lw(1, 20, 10), a.target);
  await answered(a, -4, "handle 1's waiter for [20,30) queued");
  await owedRelease(a, 5, ch(1), "handle 1's close");
  t.same(await held(engine), ['a held write 2 60-69', 'b held write 9 20-29'], 'the engine: the close applied');
  b.sf.run(2, lf(5, 0, 10), b.target);
  t.equal(await answered(b, 2, "b's handle 5's lock of [0,10)"), 0, "b's handle 5 locks [0,10)");
  await resetBoth(engine, a, b);
  const after = ['a held write 2 60-69', 'b held write 5 0-9', 'b held write 9 20-29'];
  t.same(await held(engine), after, "right after the re-assertions: handle 2's lock, b's; nothing of handle 1");
  await heal(t, a, 6);
  t.same(await held(engine), after, "after a's next step: the same");
  t.equal(await answered(a, 4, "handle 1's waiter"), 158, 'its waiter ended by the close (ERROR_NOT_LOCKED)');
  t.same([...released].sort(), ['windows:1:0+10', 'windows:1:40+10'], 'onUnlockFile told once for each of its locks');
  await endGrace(engine, a, b);
  a.sf.run(7, lf(3, 40, 10), a.target);
  t.equal(await answered(a, 7, "handle 3's lock of [40,50)"), 0, '[40,50) is free');
  t.same(a.faults, [], 'nothing reported');
});

// q2 (node b) holds [10,20); p1 (node a) holds [0,10) and waits for [5,15). p1's unlock of [0,10)
// is owed: its step applied with the reply lost, or never applied (`how`), and every later step
// of a is cut off. Then b's unlock of q2 grants p1's waiter [5,15) on the engine's records, and
// p1 is told so. The engine loses its data with the unlock still owed. The unlock was answered
// before the grant, and no step of a carrying it was decided on records that had the grant: it
// did not touch the grant's bytes, and p1 holds [5,15) after the reset, as the engine held it
// either way (the unlock applied before the grant, or never).
for (const how of ['applied', 'never applied'] as const) {
  t.test(`an unlock owed when the engine loses its data (${how}), then another node granted its owner's waiter: the grant's bytes go back`, async (t) => {
    const { engine, a, b, released } = await nodes(t);
    b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
    t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 }, 'q2 writes [10,20)');
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
    t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
    a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 10), a.target);
    await answered(a, -2, "p1's waiter for [5,15) queued");
    if (how === 'applied') await owedRelease(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock of [0,10)");
    else {
      a.policy = () => 'drop';
      a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
      await answered(a, 3, "p1's unlock of [0,10) (given up on: owed)");
    }
    const p1Before = how === 'applied' ? [] : ['a held write p1 0-9'];
    t.same(await held(engine), [...p1Before, 'a waiting write p1 5-14', 'b held write q2 10-19'].sort(), `the engine: the unlock ${how}`);
    b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
    t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
    t.match(await answered(a, 2, "p1's F_SETLKW of [5,15)"), { result: 0 }, "p1's waiter granted by b's unlock");
    t.same(await held(engine), [how === 'applied' ? 'a held write p1 5-14' : 'a held write p1 0-14'], 'the engine: the grant');
    await resetBoth(engine, a, b, true);
    t.same(await held(engine), ['a held write p1 5-14'], "right after a's re-assertion: p1's [5,15), the grant's bytes");
    await heal(t, a, 4);
    t.same(await held(engine), ['a held write p1 5-14'], "after a's next step: the same");
    t.same(released, ['posix:0+10'], "p1's unlock notice, told once");
    await endGrace(engine, a, b);
    b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 5, 5), b.target);
    t.match(await answered(b, 3, "q3's lock of [5,10)"), { result: -EAGAIN }, 'p1 holds [5,10) (the grant)');
    b.sf.run(4, lk('q4', 4, F_WRLCK, F_SETLK, 0, 5), b.target);
    t.match(await answered(b, 4, "q4's lock of [0,5)"), { result: 0 }, '[0,5) is free (the unlock)');
    t.same(a.faults, [], 'nothing reported');
  });
}

// As above, the unlock never applied; but a step of a after the grant reaches the engine: stale,
// its reply brings the grant's records (p1's [0,15), under b's step's id), and the unlock, decided
// again on them, goes out in steps that are cut off. The reply showed b's step removing p1's
// waiter (a grant), so every step that carried the unlock since left [5,15) alone (spareOf), and so
// does the settlement: p1 holds [5,15), as it was told. (Before: the unlock released [0,10), and a
// fault said p1 may hold less than it was told.)
t.test("an unlock owed when the engine loses its data, decided again on a granted lock's records: the grant's bytes stay (the unlock leaves them to their owner), nothing reported", async (t) => {
  const { engine, a, b, released } = await nodes(t);
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 }, 'q2 writes [10,20)');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 10), a.target);
  await answered(a, -2, "p1's waiter for [5,15) queued");
  // Cut off, but for the first new step of a once b's unlock applied (stale: a had not seen it).
  let granted = false;
  let passed = false;
  a.policy = (s) => {
    if (!granted || passed || s.id !== undefined) return 'drop';
    passed = true;
    return 'pass';
  };
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 3, "p1's unlock of [0,10) (given up on: owed)");
  b.onReply = (r) => void (r.ok && (granted = true));
  b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
  t.match(await answered(a, 2, "p1's F_SETLKW of [5,15)"), { result: 0 }, "p1's waiter granted by b's unlock");
  t.same(await held(engine), ['a held write p1 0-14'], 'the engine: the grant, merged with the lock the unlock never released');
  await until(() => a.log.some((l) => l.startsWith('pass ') && l.includes('-> stale')), "a's step after the grant, stale");
  await resetBoth(engine, a, b, true);
  // The grant came after the unlock was answered, and the stale reply showed it (p1's waiter's
  // record gone by b's step): the unlock leaves [5,15) to p1 (spareOf), as it was told it holds.
  t.same(await held(engine), ['a held write p1 5-14'], "right after a's re-assertion: p1's [5,15), the grant's bytes");
  await heal(t, a, 4);
  t.same(await held(engine), ['a held write p1 5-14'], "after a's next step: the same");
  t.same(released, ['posix:0+10'], "p1's unlock notice, told once");
  t.same(a.faults, [], 'nothing reported: p1 holds what it was told');
});

// p1 (node a) holds [0,10), p3 [40,50); every step of a is cut off (never applied). p1's unlock of [0,10) is
// owed; p2's lock of [20,30) carries it in a step of unknown fate (the request answered as
// failed). The engine loses its data. p1 was told its unlock was done: it holds nothing, as it was
// told, and its unlock notice is told once; nothing is reported (only a lock request's owner, told
// its request failed, may hold less than it was told, and p2 held nothing before).
t.test("an unlock owed when the engine loses its data, carried in another owner's lock step of unknown fate: settled, nothing reported", async (t) => {
  const { engine, a, b, released } = await nodes(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  a.sf.run(5, lk('p3', 3, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 5, "p3's lock of [40,50)"), { result: 0 }, 'p3 writes [40,50)');
  a.policy = () => 'drop';
  a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 2, "p1's unlock of [0,10) (given up on: owed)");
  a.sf.run(3, lk('p2', 2, F_WRLCK, F_SETLK, 20, 10), a.target);
  t.notMatch(await answered(a, 3, "p2's lock of [20,30) (given up on)"), { result: 0 }, "p2's lock answered as failed");
  t.same(await held(engine), ['a held write p1 0-9', 'a held write p3 40-49'], 'the engine: nothing of a applied');
  await resetBoth(engine, a, b, true);
  t.same(await held(engine), ['a held write p3 40-49'], "right after a's re-assertion: p3's lock, nothing of p1 (nor of p2)");
  await heal(t, a, 4);
  t.same(await held(engine), ['a held write p3 40-49'], "after a's next step: the same");
  t.same(released, ['posix:0+10'], "p1's unlock notice, told once");
  t.same(a.faults, [], 'nothing reported');
});
