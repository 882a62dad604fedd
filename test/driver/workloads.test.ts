/** The same seed gives the same operation streams (a failure can be replayed); another seed does not. */
import t from 'tap';
import { WORKLOADS, streamsFor, type Op } from '../../driver/workloads.js';

function take(workload: string, seed: number, n = 2000): Op[][] {
  return streamsFor({ workload, seed, clients: 6, files: 3, manyLocks: 1000 }).map((s) => [...Array.from({ length: n }, () => s.next()), ...s.cleanup()]);
}

for (const { name } of WORKLOADS) {
  t.test(name, async (t) => {
    // Compared as text: tap's deep comparison of 12,000 operations is slow.
    const a = take(name, 1234);
    const text = JSON.stringify(a);
    t.equal(JSON.stringify(take(name, 1234)), text, 'same seed, same streams');
    t.not(JSON.stringify(take(name, 4321)), text, 'another seed, other streams');
    t.not(JSON.stringify(a[0]), JSON.stringify(a[1]), 'clients get different streams');
    const s = streamsFor({ workload: name, seed: 1, clients: 2, files: 3, manyLocks: 10 })[0]!;
    const used = new Set(Array.from({ length: 500 }, () => s.next()).map((op) => `${op.role}:${op.file}`));
    const closes = s.cleanup();
    t.ok(closes.every((op) => op.op === 'close'), 'the cleanup only closes');
    t.same(new Set(closes.map((op) => `${op.role}:${op.file}`)), used, 'it closes every descriptor and handle the stream used');
  });
}

t.test('only classic POSIX waits go without a timeout or cancel', async (t) => {
  for (const { name } of WORKLOADS) {
    for (const stream of take(name, 99)) {
      for (const op of stream) {
        if (!('wait' in op) || !op.wait || (op.op === 'lock' && op.role === 'posix')) continue;
        if (op.timeoutMs === undefined && op.cancelMs === undefined) t.fail(`${name}: unbounded ${JSON.stringify(op)}`);
      }
    }
  }
  t.pass('checked every workload');
});

t.test('dense ends every wait by a timeout or a cancel (the caller tests rely on it)', async (t) => {
  const waits = take('dense', 7).flat().filter((op) => 'wait' in op && op.wait);
  t.ok(waits.length > 1000, `${waits.length} waits`);
  t.ok(waits.every((op) => ('timeoutMs' in op && op.timeoutMs !== undefined) || ('cancelMs' in op && op.cancelMs !== undefined)), 'none unbounded');
  t.ok(new Set(take('dense', 7).map((s) => s.find((op) => op.op === 'winlock') ? 'windows' : 'posix')).size === 2, 'both families');
});

t.test('the many workload holds its locks first', async (t) => {
  const streams = streamsFor({ workload: 'many', seed: 1, clients: 4, files: 1, manyLocks: 100 });
  const firsts = streams.flatMap((s) => Array.from({ length: 25 }, () => s.next()));
  t.equal(new Set(firsts.map((op) => ('start' in op ? op.start : -1))).size, 100, '100 distinct single-byte locks');
  t.ok(firsts.every((op) => (op.op === 'lock' || op.op === 'winlock') && op.len === 1 && !op.wait));
});
