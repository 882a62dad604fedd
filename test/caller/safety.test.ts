/**
 * Multi-worker safety: many clients of both families hammer a few files through `workers: 2` with
 * the stress runner's seeded 'dense' workload (test/caller/load.ts: F_SETLK / F_SETLKW / unlock /
 * F_GETLK / flock / close (flush, release) / lockFile / unlockFile / unlock-all / closeHandle, every
 * wait ended by a short timeout or a cancel), checked by the runner's oracle (driver/oracle.ts, no
 * code from src/):
 * - no two conflicting locks were ever observed held at once (monotonic stamps: a grant after its
 *   answer, a release before the call that ends it), every request was answered with an answer it
 *   can have, every EDEADLK names a possible cycle and every F_GETLK answer was true;
 * - no locks() snapshot taken while the load runs lists a conflicting pair;
 * - at the end, locks() lists exactly what the clients know they hold, and nothing waits; after the
 *   clients close everything, nothing is listed.
 */
import t from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { Oracle, type LogEvent, type LockRecord } from '../../driver/oracle.js';
import { ClientObserver, Ids } from '../../driver/observer.js';
import { listingConflicts, listingLines } from '../../driver/targets/api.js';
import { HANG_MS, within, isPending, sleep } from '../api/helpers.js';
import { Load, violations } from './load.js';

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

// The 'fifo' wake-up policy (SEMANTICS-WINDOWS.md §9, an extra option) changes which waiter goes
// first, never what may be held together: one run under it as well.
const fifo = await LockCoordinator.start({ workers: WORKERS, policy: 'fifo' });
t.teardown(() => fifo.stop());

for (const [seed, policy] of [[1, 'default'], [2, 'default'], [3, 'default'], [4, 'default'], [5, 'fifo']] as const) {
  t.test(`16 clients (10 POSIX, 6 Windows) on 4 files over 2 workers, seed ${seed}, policy ${policy}`, async (t) => {
    const c = policy === 'fifo' ? fifo : dflt;
    const files = filesOn(`/safety${seed}`, 2);
    t.strictSame(files.map((f) => routeOf(f, WORKERS)).sort(), [0, 0, 1, 1], 'two files per worker');
    let running = true;
    const snapshotProblems: string[] = [];
    let snapshots = 0;
    let sawGranted = 0;
    const sampler = (async () => {
      while (running) {
        const l = await within(c.locks(), HANG_MS);
        if (isPending(l)) {
          snapshotProblems.push(`locks() did not answer within ${HANG_MS / 1000} s`);
          return;
        }
        const mine = (l as Awaited<ReturnType<typeof c.locks>>).filter((e) => files.includes(e.path));
        snapshots++;
        sawGranted = Math.max(sawGranted, mine.filter((e) => e.state === 'granted').length);
        for (const p of listingConflicts(mine)) snapshotProblems.push(`snapshot ${snapshots}: ${p}`);
        await sleep(10);
      }
    })();
    const t0 = Date.now();
    const load = new Load(c, { files, clients: 16, seed, workers: WORKERS, ops: 2400 });
    const ended = await load.ended();
    running = false;
    await sampler;
    t.ok(ended, 'every client stopped: no request hung');
    const personalities = load.stage.streams.map((s) => s.personality);
    t.equal(personalities.filter((p) => p === 'windows').length, 6, 'six of the clients are Windows processes');
    const a = load.stage.metrics.answers;
    t.comment(
      `seed ${seed}: ${load.answered} ops, answers ${JSON.stringify(a)}, ${load.stage.oracle.summary().getlks} F_GETLK, ` +
        `${snapshots} snapshots, ${Date.now() - t0} ms`,
    );
    t.ok((a.granted ?? 0) > 200 && (a.conflict ?? 0) + (a.timeout ?? 0) > 50, 'the load produced both grants and conflicts');
    t.ok((a.timeout ?? 0) + (a.cancelled ?? 0) > 0, 'and waits that ended early');
    t.ok(snapshots >= 5 && sawGranted > 0, 'snapshots were taken while locks were held');
    t.strictSame(snapshotProblems, [], 'no locks() snapshot lists a conflicting pair');
    const final = (await c.locks()).filter((e) => files.includes(e.path));
    t.strictSame(final.filter((e) => e.state === 'waiting'), [], 'nothing is left waiting');
    t.strictSame(listingLines(final), load.expected(), 'locks() lists exactly what the clients know they hold');
    t.ok(load.expected().length > 0, 'and they hold something');
    t.strictSame(listingConflicts(final), []);
    t.ok(ended && (await load.cleanup()), 'the clients closed every descriptor and handle');
    t.strictSame((await c.locks()).filter((e) => files.includes(e.path)), [], 'after which nothing is listed');
    const summary = load.close();
    t.ok(summary.grants > 200 && summary.requests >= load.answered, `the oracle checked ${summary.requests} requests and ${summary.grants} grants`);
    t.strictSame(violations(summary), [], 'the oracle found no violation: no conflicting locks observed held at once, every answer possible');
    t.strictSame(load.wrong, [], 'no wait bounded only by its timeout was interrupted');
  });
}

t.test('the checks can fail', async (t) => {
  // The oracle over small logs: a lock held from its grant to its release.
  let ids = 0;
  const held = (t0: number, t1: number, c: Partial<LockRecord>): LogEvent[] => {
    const lock: LockRecord = { file: '/x', owner: 'p1', kind: 'posix', write: true, start: 0, end: 9, pids: [1], id: ++ids, req: -1, ...c };
    return [
      { t: t0, ev: 'grant', lock },
      { t: t1, ev: 'release', lock: lock.id, req: -1 },
    ];
  };
  const judge = (...logs: LogEvent[][]) => Oracle.check(logs.flat(), { deadlockKinds: ['posix'], cycleTolerance: 3e9 }).byKind.conflict ?? 0;
  t.equal(judge(held(1, 5, {}), held(4, 8, { kind: 'windows', owner: 'w', write: false })), 1, 'write vs shared overlapping in time');
  t.equal(judge(held(1, 5, {}), held(5, 8, { owner: 'p2' })), 0, 'back-to-back in time is fine (a release and a grant at one stamp)');
  t.equal(judge(held(1, 5, { kind: 'windows', owner: 'w' }), held(2, 3, { kind: 'windows', owner: 'w' })), 1, 'two exclusive records of one Windows owner');
  t.equal(judge(held(1, 5, { kind: 'windows', owner: 'w' }), held(2, 3, { kind: 'windows', owner: 'w', write: false })), 0, 'a shared record stacked on its own exclusive one');
  t.equal(judge(held(1, 5, { kind: 'flock', owner: 'f1', end: Infinity }), held(2, 3, { owner: 'p2' })), 0, 'flock is a separate space');

  // A client's OFD and classic locks are two owners: what the client is told it got is checked as such.
  const log: LogEvent[] = [];
  const obs = new ClientObserver(1, { file: (i) => `/f${i}`, classicPids: () => [1], ofdPids: () => [-1], windowsPids: () => [], closeDropsClassic: false }, new Ids(), (e) => log.push(e));
  obs.begin({ op: 'lock', role: 'ofd', file: 0, type: 1, start: 0, len: 10, wait: false }, 1);
  obs.end(2, 0);
  obs.begin({ op: 'lock', role: 'posix', file: 0, type: 1, start: 5, len: 10, wait: false }, 3);
  obs.end(4, 0);
  t.equal(judge(log), 1, "a client's OFD and classic write locks over one byte: a conflict");
  t.strictSame(
    obs.held().map((l) => `${l.owner} ${l.start}-${l.end}`),
    ['p1 5-14', 'o1.0 0-9'],
    'what the client knows it holds',
  );

  // Listings: the same rules over locks() entries, whose owners are identities.
  const e = (over: Record<string, unknown>) => ({ path: '/x', kind: 'posix', type: 'write', start: 0n, end: 9n, owner: 1, pid: 1, state: 'granted', ...over });
  t.equal(listingConflicts([e({ kind: 'ofd' }), e({})]).length, 1, 'ofd 1 and posix 1 are different owners');
  t.equal(listingConflicts([e({ kind: 'flock', end: (1n << 63n) - 1n }), e({ owner: 2 })]).length, 0, 'flock is a separate space');
  t.equal(listingConflicts([e({ kind: 'windows', type: 'shared', start: 100n, end: 99n, processId: 0 }), e({ owner: 2, start: 99n, end: 100n })]).length, 1, 'a zero-length Windows lock at 100 is overlapped by [99, 100]');
  t.equal(listingConflicts([e({ kind: 'windows', type: 'shared', start: 100n, end: 99n, processId: 0 }), e({ owner: 2, start: 100n, end: 104n })]).length, 0, 'but not by [100, 104]');
  t.equal(listingConflicts([e({ kind: 'windows', type: 'exclusive', owner: 'h', processId: 0 }), e({ kind: 'windows', type: 'exclusive', owner: 'h', processId: 0 })]).length, 1, 'two exclusive records of one Windows owner');
  t.equal(listingConflicts([e({ kind: 'windows', type: 'exclusive', owner: 'h', processId: 0 }), e({ kind: 'windows', type: 'shared', owner: 'h', processId: 0 })]).length, 0, 'an exclusive and a shared one may be stacked');
  t.equal(listingConflicts([e({ kind: 'windows', type: 'exclusive', owner: 'h', processId: 1 }), e({ kind: 'windows', type: 'shared', owner: 'h', processId: 2 })]).length, 1, 'one handle in two processes is two owners');
  t.equal(listingConflicts([e({ owner: 5 }), e({ owner: 5n })]).length, 0, '5 and 5n are one owner');
  t.equal(listingConflicts([e({ owner: 5 }), e({ owner: '5', type: 'read' })]).length, 1, "'5' is another owner");
  t.equal(listingConflicts([e({ owner: 5 }), e({ owner: 6, state: 'waiting' })]).length, 0, 'waiters are not held locks');
});
