/**
 * An owed Windows release is not run again once every lock it removed is gone from the engine's
 * records (SharedFile.appliedBefore), except a lock another node granted to a waiter here: the
 * cache holds it under the waiter's record id (grantedRemotely) until the engine's records
 * replace it, so that id's absence proves nothing; such a release runs, and tells its notice
 * once. Also an owed unlock across an engine reset. Real SharedFiles over a MemoryEngine, behind
 * the lost-link harness; every wait is for an answer, within a budget.
 */
import t from 'tap';
import { parseLockFile, type Call } from '../../src/core/requests.js';
import { MemoryEngine, answered, ch, lf, loseNext, memoryStore, node, overflowLog, resetEngine, uf } from './lost-link.js';

/** A blocking Windows LockFileEx of [start, start+len) of /a through `handle` (process 1). */
const lw = (handle: number, start: number, len: number, exclusive = true): Call =>
  parseLockFile({ fileName: '/a', byteOffset: start, length: len, exclusiveLock: exclusive, failImmediately: false, handle, processId: 1 }) as Call;

// Another node's grant of a's Windows waiter puts a NEW record for the lock (its step mints one
// and removes the waiter's record), while a's cache only turns the waiter's record into a held
// one (grantedRemotely, same id; no reread for a Windows lock). A release decided on that cache
// targets the waiter's id; when it is owed and the next step's stale reply brings the engine's
// records, that id is gone, and appliedBefore takes the release for applied: it is dropped,
// though it never ran, and the lock stays held in the engine for ever.
for (const op of ['unlock', 'close'] as const) {
  t.test(`an owed Windows ${op} of a lock another node granted to a's waiter, that never applied: it still runs`, async (t) => {
    const engine = new MemoryEngine();
    const a = await node(engine, 'a');
    const b = await node(engine, 'b');
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    b.sf.run(1, lf(1, 0, 10), b.target);
    t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0);
    a.sf.run(1, lw(7, 0, 10), a.target);
    await answered(a, -1, "a's handle 7 waits for [0,10)");
    b.sf.run(2, uf(1, 0, 10), b.target);
    t.equal(await answered(b, 2, "b's handle 1 unlocks"), 0);
    t.equal(await answered(a, 1, "a's handle 7's LockFileEx of [0,10)"), 0, "granted by b's unlock");
    // a is cut off: the release never reaches the engine; answered, and owed.
    a.policy = () => 'drop';
    const before = a.log.length;
    a.sf.run(2, op === 'unlock' ? uf(7, 0, 10) : ch(7), a.target);
    await answered(a, 2, `handle 7's ${op} (given up on)`);
    t.ok(!a.log.slice(before).some((l) => !l.startsWith('drop')), 'nothing of it reached the engine');
    a.policy = () => 'pass';
    a.sf.run(3, lf(5, 40, 10), a.target);
    t.equal(await answered(a, 3, "a's handle 5 locks [40,50)"), 0, "a's next step commits (carrying the owed release)");
    t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['a:held'], "the engine: handle 5's lock only");
    b.sf.run(3, lf(2, 0, 10), b.target);
    t.equal(await answered(b, 3, "b's handle 2's LockFileEx of [0,10)"), 0, `[0,10) is free: handle 7's owed ${op} ran`);
    t.same(a.faults, [], 'nothing reported');
  });
}

// The same mismatch on the path of a release's own decision: its first try never reaches the
// engine, the resend of that try finds a fenced for a late renewal, and the unlock is decided
// again (tried). The stale reply removes the waiter's record the try targeted, so the unlock is
// answered as its try was (0) without ever being sent again: the lock stays.
t.test("a Windows unlock of a lock another node granted to a's waiter, its first try never applied and its resend fenced: decided again, it unlocks", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0);
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for [0,10)");
  b.sf.run(2, uf(1, 0, 10), b.target);
  t.equal(await answered(b, 2, "b's handle 1 unlocks"), 0);
  t.equal(await answered(a, 1, "a's handle 7's LockFileEx of [0,10)"), 0, "granted by b's unlock");
  a.lostResend = 'fenced';
  let drops = 0;
  a.policy = (s) => (s.id === undefined && drops === 0 ? 'drop' : 'pass');
  a.afterDrop = async () => {
    drops++;
    a.lostIds.add(`a.dropped.${drops}`);
  };
  a.sf.run(2, uf(7, 0, 10), a.target);
  t.equal(await answered(a, 2, "handle 7's unlock"), 0, 'answered 0');
  t.same((await engine.load('/a')).records, [], 'the engine: nothing held (the unlock a was answered 0 for ran)');
  b.sf.run(3, lf(2, 0, 10), b.target);
  t.equal(await answered(b, 3, "b's handle 2's LockFileEx of [0,10)"), 0, '[0,10) is free');
});

// Held: an owed Windows unlock whose step applied (its reply lost), then the engine loses its
// data. The cache still had the lock, so the re-assertion puts it back under the same record id:
// not shown applied, the owed unlock runs again and takes it; its notice fires once.
t.test('an owed Windows unlock whose step applied before the engine lost its data: the lock put back is released again, its notice once', async (t) => {
  const engine = new MemoryEngine();
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const released: string[] = [];
  const a = await node(engine, 'a', 'default', 300, 60_000, {
    released: (family, e) => void released.push(`${family}:${String(e.handle)}:${String(e.byteOffset)}+${String(e.length)}`),
  });
  t.teardown(() => a.store.close());
  await first.close();
  a.sf.run(1, lf(7, 0, 10), a.target);
  t.equal(await answered(a, 1, "handle 7's lock of [0,10)"), 0);
  a.sf.run(2, lf(9, 60, 10), a.target);
  t.equal(await answered(a, 2, "handle 9's lock of [60,70)"), 0);
  // The unlock's step applies, its reply is lost; nothing of a reaches the engine after it.
  loseNext(a, async () => {
    a.policy = () => 'drop';
  });
  a.sf.run(3, uf(7, 0, 10), a.target);
  await answered(a, 3, "handle 7's unlock (given up on)");
  t.same((await engine.load('/a')).records.length, 1, "the engine: handle 9's lock (the unlock applied)");
  const { old, epoch } = await resetEngine(engine, a);
  t.ok(epoch > old, 'the new session has a later number (the memory engine counts on)');
  a.lease[1] = epoch;
  a.policy = () => 'pass';
  a.sf.adopt(epoch, old, 60_000);
  // An unlock of bytes handle 5 never locked: its step carries the owed unlock.
  a.sf.run(4, uf(5, 40, 10), a.target);
  t.equal(await answered(a, 4, "handle 5's unlock of nothing"), 158);
  t.same((await engine.load('/a')).records.map((r) => r.data.includes('"h":9')), [true], "the engine: handle 9's lock only (handle 7's, put back, released again)");
  t.same(released, ['windows:7:0+10'], 'onUnlockFile fired once');
});

// The same, learned from the whole record set (the log overrun): Lost.released takes the
// waiter's record id, absent from it, for a lock a step given up on released (deliverLost), so
// onUnlockFile fires for an unlock that never applied, and appliedBefore drops it: the
// application is told the lock went, and it stays held. A fix must mend both.
t.test("an owed Windows unlock of a lock another node granted to a's waiter, that never applied, learned from the whole record set: it runs, its notice once", async (t) => {
  const engine = new MemoryEngine();
  const released: string[] = [];
  const a = await node(engine, 'a', 'default', 300, 0, {
    released: (family, e) => void released.push(`${family}:${String(e.handle)}:${String(e.byteOffset)}+${String(e.length)}`),
  });
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0);
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for [0,10)");
  b.sf.run(2, uf(1, 0, 10), b.target);
  t.equal(await answered(b, 2, "b's handle 1 unlocks"), 0);
  t.equal(await answered(a, 1, "a's handle 7's LockFileEx of [0,10)"), 0, "granted by b's unlock");
  a.policy = () => 'drop';
  a.sf.run(2, uf(7, 0, 10), a.target);
  await answered(a, 2, "handle 7's unlock (given up on)");
  await overflowLog(engine, b.store);
  a.policy = () => 'pass';
  a.sf.run(3, lf(5, 40, 10), a.target);
  t.equal(await answered(a, 3, "a's handle 5 locks [40,50)"), 0, "a's next step commits");
  t.ok(a.log.some((l) => l.endsWith('-> stale whole')), 'a stale reply with the whole record set');
  t.same((await engine.load('/a')).records.map((r) => r.data.includes('"h":5')), [true], "the engine: handle 5's lock only");
  t.same(released, ['windows:7:0+10'], 'onUnlockFile fired once');
});
