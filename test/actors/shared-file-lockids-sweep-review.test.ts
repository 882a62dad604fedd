/**
 * Review guard of the sweep of SharedFile.lockIds (committed): the entries of locks the table no
 * longer holds go once they could be half of the map; the table's own locks keep theirs, so a
 * lock kept across steps keeps its record (a step that lost its id would put it again, a
 * duplicate, and remove its record, or leave a record no lock stands for). Node a alone takes
 * and releases read and write locks of three owners over [0,40) at random (merges, splits,
 * conversions, each step replacing some of them) with one lock kept all along; after each answer
 * the engine's records of /a are the table's locks, one record each. Then b waits for the kept
 * lock and is granted by its unlock. Real SharedFiles over a MemoryEngine (lost-link harness);
 * every wait is for an answer within its budget. Before the sweep (2ae662b) the records matched
 * too, and the map's bound failed (311 entries).
 */
import t from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { Lock } from '../../src/core/file-locks.js';
import { answered, lk } from './lost-link.js';
import { held } from './reset-harness.js';
import { twoNodes } from './stages.js';

t.test('a alone, 600 random locks and unlocks of three owners beside a lock kept all along: the engine has the table’s locks after each, one record each; the kept lock still blocks and frees b', async (t) => {
  const { engine, a, b } = await twoNodes(t);
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  a.sf.run(1, lk('keep', 999, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 1, "keep's lock of [100,110)"), { result: 0 });
  const f = () => (a.sf as unknown as { files: Map<string, { table: { fileLocks(p: string): { granted(): Lock[] } | undefined }; lockIds: Map<Lock, string> }> }).files.get('/a')!;
  let mismatches = 0;
  let first = '';
  let maxIds = 0;
  for (let i = 0; i < 600; i++) {
    const owner = rnd(3);
    const start = rnd(40);
    const len = 1 + rnd(12);
    const type = [F_RDLCK, F_WRLCK, F_UNLCK][rnd(3)]!;
    a.sf.run(10 + i, lk(`p${owner}`, 10 + owner, type, F_SETLK, start, len), a.target);
    await answered(a, 10 + i, `op ${i}`);
    const table = (f().table.fileLocks('/a')?.granted() ?? []).map((l) => `a held ${l.write ? 'write' : 'read'} ${l.origin.holder} ${l.start}-${l.end}`).sort();
    const eng = await held(engine);
    maxIds = Math.max(maxIds, f().lockIds.size);
    if (JSON.stringify(table) !== JSON.stringify(eng)) {
      if (mismatches++ === 0) first = `op ${i}: table ${JSON.stringify(table)} engine ${JSON.stringify(eng)}`;
    }
  }
  t.equal(mismatches, 0, `the engine's records are the table's locks after every answer${first === '' ? '' : ` (first: ${first})`}`);
  t.ok(maxIds <= 2 * 40 + 64 + 1, `lockIds bounded (${maxIds})`);
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLKW, 100, 10), b.target);
  await answered(b, -1, "b's waiter for [100,110) queued behind the kept lock");
  a.sf.run(2, lk('keep', 999, F_UNLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 2, "keep's unlock"), { result: 0 });
  t.match(await answered(b, 1, "b's waiter granted by keep's unlock"), { result: 0 });
  t.same(a.faults, [], 'nothing reported');
  t.same(b.faults, [], 'nothing reported on b');
});
