/**
 * stop() (SharedFile.stopAll) drops this node's locks of the file's table: all of those the table
 * holds, and only those. A lock an earlier committed step of this node replaced or removed (an
 * unlock, a merge, a split) is gone from the table, and the core's removal of a lock it does not
 * hold is not a no-op: it mends indexes that may have been swept since. Once enough entries
 * emptied (64 handles, owners or Windows ranges, core/swept-map.ts), the index entry of such a
 * lock is gone and the removal throws: the stop's decision fails, nothing of this node is
 * released in the engine (its locks stay until its session ends), another node's waiter behind
 * them is not granted, and a fault is reported. And a release owed that the stop's decision runs
 * first may split a lock into parts that have no record yet: they must go too.
 *
 * Node a keeps the file's actor alive with a lock of its own, then 70 locks are taken and released
 * through their own handles (POSIX: 70 processes; Windows: 70 ranges of one handle), each step
 * committed with no rebuild of a's table; a holds [0,10), b waits for it; a stops. Real SharedFiles
 * over a MemoryEngine, behind the lost-link harness; every wait is for an answer, within its
 * budget (b's only once a's locks are gone from the engine).
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { type MemoryEngine, type TestNode, answered, lf, lk, lw, uf } from './lost-link.js';
import { held } from './reset-harness.js';
import { owedCutOff, twoNodes } from './stages.js';

const N = 70;

/** a stops: nothing reported, nothing of a left in the engine (`what`), and then b's waiter (request 1) is answered `granted`. */
async function stopsClean(t: Test, engine: MemoryEngine, a: TestNode, b: TestNode, what: string, granted: unknown): Promise<void> {
  await a.sf.stop();
  t.same(a.faults, [], 'nothing reported');
  const left = await held(engine);
  t.same(
    left.filter((x) => x.startsWith('a ')),
    [],
    what,
  );
  // Only once a's locks are gone (else it would wait for the budget).
  if (left.every((x) => !x.startsWith('a '))) t.match(await answered(b, 1, "b's waiter granted by a's stop"), granted);
}

for (const kind of ['posix', 'windows'] as const) {
  t.test(`${kind}: a stop after ${N} locks taken and released (the core's indexes swept): this node's locks go, the other node's waiter is granted, nothing reported`, async (t) => {
    const { engine, a, b } = await twoNodes(t);
    const posix = kind === 'posix';
    // Keeps a's actor of /a (a file with no record goes).
    a.sf.run(1, posix ? lk('keep', 999, F_WRLCK, F_SETLK, 100000, 10) : lf(999, 100000, 10), a.target);
    t.match(await answered(a, 1, "a's lock of [100000,100010)"), posix ? { result: 0 } : 0);
    for (let i = 0; i < N; i++) {
      const start = 1000 + 10 * i;
      a.sf.run(10 + 2 * i, posix ? lk(`p${i}`, 10 + i, F_WRLCK, F_SETLK, start, 10) : lf(1, start, 10), a.target);
      t.match(await answered(a, 10 + 2 * i, `lock ${i}`), posix ? { result: 0 } : 0);
      a.sf.run(11 + 2 * i, posix ? lk(`p${i}`, 10 + i, F_UNLCK, F_SETLK, start, 10) : uf(1, start, 10), a.target);
      t.match(await answered(a, 11 + 2 * i, `unlock ${i}`), posix ? { result: 0 } : 0);
    }
    a.sf.run(2, posix ? lk('p0', 10, F_WRLCK, F_SETLK, 0, 10) : lf(1, 0, 10), a.target);
    t.match(await answered(a, 2, "a's lock of [0,10)"), posix ? { result: 0 } : 0);
    b.sf.run(1, posix ? lk('q1', 1, F_WRLCK, F_SETLKW, 0, 10) : lw(1, 0, 10, 2), b.target);
    await answered(b, -1, "b's waiter for [0,10) queued");
    await stopsClean(t, engine, a, b, "a's stop released all of a's locks in the engine", posix ? { result: 0 } : 0);
  });
}

// The stop's decision runs the releases owed first (answered, their steps given up on), on the same
// table: what they split or removed there is no longer the lock a record stood for when the
// decision began. p1 holds [0,30); its unlock of [10,20) is owed (a cut off), leaving two parts
// in a's table only; a reaches the engine again, b waits for [0,10), and a stops: both parts go.
t.test('a stop that carries an owed unlock splitting a lock: both parts go, the waiter behind one is granted, nothing reported', async (t) => {
  const { engine, a, b } = await twoNodes(t);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 30), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,30)"), { result: 0 });
  await owedCutOff(a, 2, lk('p1', 1, F_UNLCK, F_SETLK, 10, 10), "p1's unlock of [10,20)");
  a.policy = () => 'pass';
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLKW, 0, 10), b.target);
  await answered(b, -1, "b's waiter for [0,10) queued");
  await stopsClean(t, engine, a, b, "a's stop released all of p1's lock in the engine", { result: 0 });
});

// What the table's locks were, by record id (SharedFile.lockIds), keeps the locks committed steps
// replaced until the table is rebuilt, which a node alone on a file never needs: one entry per
// lock ever granted there, for as long as the actor lives. Swept once they could be half of it.
t.test("a node alone on a file, 1,000 locks taken and released with no rebuild of its table: the file's map of locks to record ids does not grow with them", async (t) => {
  const { a } = await twoNodes(t);
  a.sf.run(1, lk('keep', 999, F_WRLCK, F_SETLK, 100000, 10), a.target);
  t.match(await answered(a, 1, "a's lock of [100000,100010)"), { result: 0 });
  let refused = 0;
  for (let i = 0; i < 1000; i++) {
    a.sf.run(10 + 2 * i, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
    if (((await answered(a, 10 + 2 * i, `lock ${i}`)) as { result: number }).result !== 0) refused++;
    a.sf.run(11 + 2 * i, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
    if (((await answered(a, 11 + 2 * i, `unlock ${i}`)) as { result: number }).result !== 0) refused++;
  }
  t.equal(refused, 0, 'every lock and unlock answered 0');
  const f = (a.sf as unknown as { files: Map<string, { lockIds: Map<unknown, string> }> }).files.get('/a');
  t.ok(f !== undefined, "a's actor of /a");
  t.ok(f!.lockIds.size <= 100, `at most 100 entries for one lock held (${f!.lockIds.size})`);
  t.same(a.faults, [], 'nothing reported');
});
