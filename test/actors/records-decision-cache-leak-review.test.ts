/**
 * Review of DecodedRecords in SharedFile (e9d8f73): its entries are swept in build() only, but
 * the readers of a step (decode: coveredBefore, restorable, ownerLocks, ...) add one for each
 * record they read, and a node alone on a file keeps its table across its steps (no build): so
 * a long run on one file kept every record's decoding it ever read. Node a alone takes and
 * releases locks of three owners over [0,40) at random beside a lock kept all along (each step
 * replacing records under new ids); the file's decodings never exceed twice the most records it
 * had + 64 (the sweep's own bound). Real SharedFiles over a MemoryEngine (lost-link
 * harness); every wait is for an answer within its budget.
 */
import t from 'tap';
import { F_RDLCK, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, lk } from './lost-link.js';
import { twoNodes } from './stages.js';

t.test('a alone, 1000 random locks and unlocks beside a lock kept all along: the file’s decodings stay bounded by its records', async (t) => {
  const { a } = await twoNodes(t);
  const file = () => (a.sf as unknown as { files: Map<string, { records: unknown[]; decoded: { size: number } }> }).files.get('/a')!;
  a.sf.run(1, lk('keep', 999, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 1, "keep's lock of [100,110)"), { result: 0 });
  let seed = 777;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let most = 0;
  let records = 0;
  for (let i = 0; i < 1000; i++) {
    const owner = rnd(3);
    const type = [F_RDLCK, F_WRLCK, F_UNLCK][rnd(3)]!;
    a.sf.run(10 + i, lk(`p${owner}`, 10 + owner, type, F_SETLK, rnd(40), 1 + rnd(12)), a.target);
    await answered(a, 10 + i, `op ${i}`);
    const f = file();
    most = Math.max(most, f.decoded.size);
    records = Math.max(records, f.records.length);
  }
  // Records may go after the last sweep (a step removing them reads nothing more): the bound is the most the file had.
  t.ok(most <= 2 * records + 64, `the decodings stay within 2 x the most records (${records}) + 64: ${most}`);
  t.same(a.faults, [], 'nothing reported');
});
