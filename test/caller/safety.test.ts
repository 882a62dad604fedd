/**
 * Multi-worker safety: many owners of every byte-range kind (posix, ofd, windows) hammer a few
 * files through `workers: 2` with random F_SETLK / F_SETLKW / unlock / flush / release / lockFile /
 * unlockFile / unlock-all / closeHandle sequences (seeded PRNG, bounded counts, every wait with a
 * timeoutMs). An independent checker (checker.ts, no code from src/) verifies that
 * - no two conflicting locks were ever known held at once (caller-side time order),
 * - no locks() snapshot taken while the load runs lists a conflicting pair,
 * - at the end, locks() lists exactly what the callers believe they hold, and nothing waits.
 */
import t from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { snapshotConflicts, historyConflicts } from '../api/checker.js';
import { HANG_MS, within, isPending, sleep } from '../api/helpers.js';
import { runWorkload, listingLines, type OwnerSpec, type Api } from '../api/workload.js';

const WORKERS = 2;
const dflt = await LockCoordinator.start({ workers: WORKERS });
t.teardown(() => dflt.stop());

function filesOn(prefix: string, perWorker: number): string[] {
  const out: string[] = [];
  const count = [0, 0];
  for (let i = 0; out.length < perWorker * WORKERS; i++) {
    const p = `${prefix}/${i}`;
    const w = routeOf(p, WORKERS);
    if (count[w]! < perWorker) {
      count[w]!++;
      out.push(p);
    }
  }
  return out;
}

function owners(posix: number, ofd: number, windows: number): OwnerSpec[] {
  const out: OwnerSpec[] = [];
  let id = 1;
  for (let i = 0; i < posix; i++) out.push({ kind: 'posix', id: id++ });
  for (let i = 0; i < ofd; i++) out.push({ kind: 'ofd', id: id++ });
  for (let i = 0; i < windows; i++) out.push({ kind: 'windows', id: id++ });
  return out;
}

// The 'fifo' wake-up policy (SEMANTICS-WINDOWS.md §9, an extra option) changes which waiter goes
// first, never what may be held together: one run under it as well.
const fifo = await LockCoordinator.start({ workers: WORKERS, policy: 'fifo' });
t.teardown(() => fifo.stop());

for (const [seed, policy] of [[1, 'default'], [2, 'default'], [3, 'default'], [4, 'default'], [5, 'fifo']] as const) {
  t.test(`16 owners (6 posix, 4 ofd, 6 windows) on 4 files over 2 workers, seed ${seed}, policy ${policy}`, async (t) => {
    const c = policy === 'fifo' ? fifo : dflt;
    const files = filesOn(`/safety${seed}`, 2);
    t.strictSame(files.map((f) => routeOf(f, WORKERS)).sort(), [0, 0, 1, 1], 'two files per worker');
    let running = true;
    const snapshotProblems: string[] = [];
    let snapshots = 0;
    let sawGranted = 0;
    const checker = (async () => {
      while (running) {
        const l = await within(c.locks(), HANG_MS);
        if (isPending(l)) {
          snapshotProblems.push(`locks() did not answer within ${HANG_MS / 1000} s`);
          return;
        }
        const mine = (l as Awaited<ReturnType<typeof c.locks>>).filter((e) => files.includes(e.path));
        snapshots++;
        sawGranted = Math.max(sawGranted, mine.filter((e) => e.state === 'granted').length);
        for (const p of snapshotConflicts(mine)) snapshotProblems.push(`snapshot ${snapshots}: ${p}`);
        await sleep(10);
      }
    })();
    const t0 = Date.now();
    const r = await runWorkload({
      api: c as unknown as Api,
      files,
      owners: owners(6, 4, 6),
      opsPerOwner: 150,
      seed,
      bytes: 32,
    });
    running = false;
    await checker;
    t.comment(
      `seed ${seed}: ${r.ops} ops, ${r.grants} grants, ${r.refusals} refusals/timeouts, ${r.deadlocks} EDEADLK, ` +
        `${r.waits} waiting requests, ${r.spans.length} held spans, ${snapshots} snapshots, ${Date.now() - t0} ms`,
    );
    t.strictSame(r.errors, [], 'every request settled with an expected result');
    t.ok(r.grants > 200 && r.refusals > 50, 'the load produced both grants and conflicts');
    t.ok(snapshots >= 5 && sawGranted > 0, 'snapshots were taken while locks were held');
    t.strictSame(snapshotProblems, [], 'no locks() snapshot lists a conflicting pair');
    t.strictSame(historyConflicts(r.spans), [], 'no two conflicting locks were known held at the same time');
    const final = (await c.locks()).filter((e) => files.includes(e.path));
    t.strictSame(final.filter((e) => e.state === 'waiting'), [], 'nothing is left waiting');
    t.strictSame(listingLines(final), r.expected, 'locks() lists exactly what the callers hold');
    t.strictSame(snapshotConflicts(final), []);
  });
}

t.test('the checker itself flags conflicts (it can fail)', async (t) => {
  const base = { path: '/x', start: 0n, end: 9n };
  t.equal(historyConflicts([
    { ...base, kind: 'posix', write: true, owner: 'posix|1', from: 1, to: 5 },
    { ...base, kind: 'windows', write: false, owner: 'windows|h|0', from: 4, to: 8 },
  ]).length, 1, 'write vs shared overlapping in time');
  t.equal(historyConflicts([
    { ...base, kind: 'posix', write: true, owner: 'posix|1', from: 1, to: 5 },
    { ...base, kind: 'posix', write: true, owner: 'posix|2', from: 5, to: 8 },
  ]).length, 0, 'back-to-back in time is fine');
  t.equal(historyConflicts([
    { ...base, kind: 'windows', write: true, owner: 'windows|h|0', from: 1, to: 5 },
    { ...base, kind: 'windows', write: true, owner: 'windows|h|0', from: 2, to: 3 },
  ]).length, 1, 'two exclusive records of one Windows owner');
  t.equal(historyConflicts([
    { ...base, kind: 'ofd', write: true, owner: 'ofd|1', from: 1, to: 5 },
    { ...base, kind: 'posix', write: true, owner: 'posix|1', from: 2, to: 3 },
  ]).length, 1, 'ofd 1 and posix 1 are different owners');
  t.equal(historyConflicts([
    { ...base, kind: 'flock', write: true, owner: 'flock|1', from: 1, to: 5 },
    { ...base, kind: 'posix', write: true, owner: 'posix|2', from: 2, to: 3 },
  ]).length, 0, 'flock is a separate space');
  t.equal(snapshotConflicts([
    { path: '/x', kind: 'windows', type: 'shared', start: 100n, end: 99n, owner: 1, state: 'granted', processId: 0 },
    { path: '/x', kind: 'posix', type: 'write', start: 99n, end: 100n, owner: 2, state: 'granted' },
  ]).length, 1, 'a zero-length Windows lock at 100 is overlapped by [99, 100]');
  t.equal(snapshotConflicts([
    { path: '/x', kind: 'windows', type: 'shared', start: 100n, end: 99n, owner: 1, state: 'granted', processId: 0 },
    { path: '/x', kind: 'posix', type: 'write', start: 100n, end: 104n, owner: 2, state: 'granted' },
  ]).length, 0, 'but not by [100, 104]');
  t.equal(snapshotConflicts([
    { path: '/x', kind: 'posix', type: 'write', start: 0n, end: 9n, owner: 5, state: 'granted' },
    { path: '/x', kind: 'posix', type: 'write', start: 0n, end: 9n, owner: 5n, state: 'granted' },
  ]).length, 0, '5 and 5n are one owner');
  t.equal(snapshotConflicts([
    { path: '/x', kind: 'posix', type: 'write', start: 0n, end: 9n, owner: 5, state: 'granted' },
    { path: '/x', kind: 'posix', type: 'read', start: 0n, end: 9n, owner: '5', state: 'granted' },
  ]).length, 1, "'5' is another owner");
});
