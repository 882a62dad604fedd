/**
 * An owed release (its step got no reply; it runs again first in the file's next step) is not
 * run again once its step is shown applied: every Windows lock it removed is gone from the
 * engine's records (SharedFile.appliedBefore). These are the sequences where the same rule for
 * POSIX locks went wrong (an attempt taken back): another node's grant of this node's waiter,
 * or a lock step of the owner no longer tracked, replaced the lock a POSIX unlock targeted, so
 * its absence proved nothing, and an unlock that never applied was dropped; and a POSIX unlock
 * shown applied from the whole record set lost its notice. Each must still run, or tell, once.
 * Real SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is for an
 * answer, within a budget.
 */
import t from 'tap';
import { EAGAIN, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, lk, loseNext, memoryStore, node, overflowLog } from './lost-link.js';
import { grant, holds, owedCutOff, q2Unlock, stage, twoNodes, waiterBehindQ2, waits } from './stages.js';

t.test("an owed POSIX unlock that never applied, whose lock another node's grant of its owner's waiter merged into a new record: it still runs", async (t) => {
  const { engine, a, b } = await twoNodes(t);
  const waiter = await waiterBehindQ2(t, a, b, 10, 10);
  // a is cut off: p1's unlock of [0,10) never reaches the engine; answered, and owed.
  await owedCutOff(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock");
  // b's unlock grants p1's waiter: b's step merges it with p1's [0,10) (still held in the
  // engine) into one new record of [0,20), removing the record the owed unlock targets.
  await grant(t, q2Unlock(b), waiter, "p1's F_SETLKW of [10,20)", "granted by b's unlock");
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['a:held'], 'the engine: one record of p1 (the merge)');
  a.policy = () => 'pass';
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 4, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits (carrying the owed unlock, or not)");
  // The application was told p1 unlocked [0,10) before the grant: p1 holds [10,20) only.
  b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 3, "q3's lock of [0,10)"), { result: 0 }, "[0,10) is free: p1's owed unlock ran");
  b.sf.run(4, lk('q4', 4, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 4, "q4's lock of [10,20)"), { result: -EAGAIN }, 'p1 holds [10,20)');
  t.same(a.faults, [], 'nothing reported');
});

t.test("an owed POSIX unlock that never applied, whose lock another node's grant of its owner's waiter split (an upgrade inside it): it still runs", async (t) => {
  const { a, b } = await twoNodes(t);
  const upgrade = waits(a, 2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 5), "p1's upgrade of [5,10) queued (q2 reads it)");
  await stage(
    t,
    holds(b, 1, lk('q2', 2, F_RDLCK, F_SETLK, 5, 5), "q2's read lock of [5,10)", 'q2 reads [5,10)'),
    holds(a, 1, lk('p1', 1, F_RDLCK, F_SETLK, 0, 20), "p1's read lock of [0,20)", 'p1 reads [0,20)'),
    upgrade,
  );
  // a is cut off: p1's unlock of [15,20) never reaches the engine; answered, and owed.
  await owedCutOff(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 15, 5), "p1's unlock of [15,20)");
  // b's unlock grants the upgrade: b's step splits p1's [0,20) (the record the owed unlock
  // targets) into three new records.
  await grant(t, holds(b, 2, lk('q2', 2, F_UNLCK, F_SETLK, 5, 5), "q2's unlock"), upgrade, "p1's upgrade of [5,10)", "granted by b's unlock");
  a.policy = () => 'pass';
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 4, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits");
  b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 15, 5), b.target);
  t.match(await answered(b, 3, "q3's lock of [15,20)"), { result: 0 }, "[15,20) is free: p1's owed unlock ran");
  t.same(a.faults, [], 'nothing reported');
});

t.test("a POSIX unlock whose first try never applied, its resend fenced, and its lock merged meanwhile by another node's grant of its owner's waiter: decided again, not answered as that try", async (t) => {
  const { a, b } = await twoNodes(t);
  await waiterBehindQ2(t, a, b, 10, 10);
  // p1's unlock of [0,10): its first step never reaches the engine; while it is on its way b's
  // unlock grants p1's waiter (merged with [0,10)); the resend finds a fenced for a late
  // renewal, and the unlock is decided again.
  a.lostResend = 'fenced';
  let drops = 0;
  a.policy = (s) => (s.id === undefined && drops === 0 ? 'drop' : 'pass');
  a.afterDrop = async () => {
    drops++;
    a.lostIds.add(`a.dropped.${drops}`);
    b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
    t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
  };
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 3, "p1's unlock"), { result: 0 }, "p1's unlock answered");
  t.match(await answered(a, 2, "p1's F_SETLKW of [10,20)"), { result: 0 }, "granted by b's unlock");
  b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 3, "q3's lock of [0,10)"), { result: 0 }, '[0,10) is free: the unlock p1 was answered 0 for ran');
  t.same(a.faults, [], 'nothing reported');
});

for (const lose of ['giveup', 'fenced'] as const) {
  t.test(`a POSIX unlock's step applies, its reply is lost (${lose}), and the node learns it from the whole record set: its notice still fires once`, async (t) => {
    const engine = new MemoryEngine();
    const released: string[] = [];
    const a = await node(engine, 'a', 'default', 300, 0, {
      released: (family, e) => void released.push(`${family}:${String(e.lockStart)}+${String(e.lockLen)}`),
    });
    const b = await memoryStore({}, { engine, node: 'b', graceMs: 0 });
    t.teardown(() => Promise.all([a.store.close(), b.close()]));
    if (lose === 'fenced') a.lostResend = 'fenced';
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
    t.match(await answered(a, 1, "p1's lock"), { result: 0 }, 'p1 holds [0,10)');
    a.sf.run(9, lk('p9', 9, F_WRLCK, F_SETLK, 60), a.target);
    t.match(await answered(a, 9, "p9's lock"), { result: 0 }, 'p9 holds [60,70)');
    // The unlock's step removes p1's record and puts none; b then overruns the log.
    loseNext(a, () => overflowLog(engine, b));
    a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
    await answered(a, 2, "p1's unlock");
    a.sf.run(3, lk('p2', 2, F_WRLCK, F_SETLK, 20), a.target);
    t.match(await answered(a, 3, "p2's lock of [20,30)"), { result: 0 }, "p2's lock commits");
    t.ok(a.log.some((l) => l.endsWith('-> stale whole')), 'a stale reply with the whole record set');
    t.same(released, ['posix:0+10'], 'the unlock notice fired once');
    t.equal((await engine.load('/a')).records.length, 2, "the engine: p2's lock and p9's");
  });
}

t.test("an owed POSIX unlock that never applied, whose lock a lock request's step of the same owner merged (that step applied, its reply lost, tangled: it carried another owed release): it still runs", async (t) => {
  const { a, b } = await twoNodes(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 holds [0,10)');
  a.sf.run(2, lk('x1', 7, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 2, "x1's lock of [100,110)"), { result: 0 }, 'x1 holds [100,110)');
  // a is cut off: x1's unlock is owed. Then the first new step that puts a record (p1's lock of
  // [10,20), merged with [0,10), carrying x1's unlock) applies with its reply lost; nothing else
  // of a reaches the engine, p1's unlock of [0,10) neither.
  a.policy = (s) => (s.id === undefined && (s.put?.length ?? 0) > 0 ? 'lose' : 'drop');
  a.afterLose = async () => {
    a.policy = () => 'drop';
  };
  a.sf.run(3, lk('x1', 7, F_UNLCK, F_SETLK, 100, 10), a.target);
  await answered(a, 3, "x1's unlock (given up on)");
  a.sf.run(4, lk('p1', 1, F_WRLCK, F_SETLK, 10, 10), a.target);
  await answered(a, 4, "p1's lock of [10,20) (given up on: failed)");
  t.ok(a.lostIds.size === 1, "the lock's step applied, its reply lost");
  a.sf.run(5, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 5, "p1's unlock of [0,10) (given up on)");
  a.policy = () => 'pass';
  a.sf.run(6, lk('p6', 6, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 6, "p6's lock of [40,50)"), { result: 0 }, "a's next step commits");
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 1, "q1's lock of [0,10)"), { result: 0 }, "[0,10) is free: p1's owed unlock ran");
  b.sf.run(2, lk('q2', 2, F_WRLCK, F_SETLK, 100, 10), b.target);
  t.match(await answered(b, 2, "q2's lock of [100,110)"), { result: 0 }, "[100,110) is free: x1's unlock applied");
});

t.test("an owed POSIX unlock that never applied, whose lock a downgrade of the same owner replaced (that step applied, its reply lost, and could not be undone: another node reads the bytes since): it still runs", async (t) => {
  const { a, b } = await twoNodes(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's write lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  // p1 downgrades to a read lock: the step applies, its reply is lost (answered failed).
  loseNext(a);
  a.sf.run(2, lk('p1', 1, F_RDLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 2, "p1's downgrade (given up on)");
  // p1 unlocks [0,10): the step never reaches the engine; owed.
  await owedCutOff(a, 3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), "p1's unlock");
  // b reads [0,10): the engine has p1's read lock.
  b.sf.run(1, lk('q1', 1, F_RDLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 1, "q1's read lock of [0,10)"), { result: 0 }, 'q1 reads [0,10)');
  a.policy = () => 'pass';
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 4, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits");
  b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 2, "q1's unlock"), { result: 0 });
  b.sf.run(3, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.match(await answered(b, 3, "q2's write lock of [0,10)"), { result: 0 }, "[0,10) is free: p1's owed unlock ran");
});
