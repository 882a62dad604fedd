/**
 * The caller's journal compacts a file only after as many new entries as its last snapshot held
 * locks (at least MIN_ENTRIES), so a snapshot's cost per step is constant however many locks the
 * file holds; a snapshot replaces everything before it; an idle file's journal is dropped.
 */
import t from 'tap';
import { Journal, MIN_ENTRIES } from '../../src/caller/journal.js';
import type { Lock } from '../../src/core/file-locks.js';
import { flockDropEntry } from '../../src/wire/journal-entry.js';

const entry = (i: number) => flockDropEntry('/a', i);
const locks = (n: number) => Array.from({ length: n }, (_, i) => ({ start: BigInt(i) }) as unknown as Lock);

t.test('compaction follows the size of the last snapshot', async (t) => {
  const asked: string[] = [];
  const j = new Journal((path) => asked.push(path));
  for (let i = 0; i < MIN_ENTRIES - 1; i++) j.record('/a', entry(i));
  t.strictSame(asked, [], 'not before MIN_ENTRIES');
  j.record('/a', entry(0));
  t.strictSame(asked, ['/a'], 'asked once at MIN_ENTRIES');
  for (let i = 0; i < 10; i++) j.record('/a', entry(i));
  t.strictSame(asked, ['/a'], 'not asked again while one is under way');
  j.snapshot('/a', locks(5000));
  t.equal(j.entriesOf('/a').length, 1, 'the snapshot replaces the entries before it');
  for (let i = 0; i < 4998; i++) j.record('/a', entry(i));
  t.equal(asked.length, 1, 'a file of 5,000 locks is not compacted before 5,000 entries');
  j.record('/a', entry(0));
  t.equal(asked.length, 2, 'and is at 5,000');
  j.snapshot('/a', locks(10));
  for (let i = 0; i < MIN_ENTRIES - 1; i++) j.record('/a', entry(i));
  t.equal(asked.length, 3, 'a small snapshot brings the threshold back to MIN_ENTRIES');
});

t.test('forget drops an idle file; abandonCompactions lets a replacement compact again', async (t) => {
  const asked: string[] = [];
  const j = new Journal((path) => asked.push(path));
  for (let i = 0; i < MIN_ENTRIES; i++) j.record('/b', entry(i));
  t.equal(asked.length, 1);
  j.abandonCompactions((p) => p === '/b');
  j.record('/b', entry(0));
  t.equal(asked.length, 2, 'asked again after the worker asked first died');
  j.forget('/b');
  t.strictSame([...j.entries()], [], 'nothing left to rebuild');
  j.record('/b', entry(1));
  t.strictSame([...j.entries()].map(([p, e]) => [p, e.length]), [['/b', 1]]);
});
