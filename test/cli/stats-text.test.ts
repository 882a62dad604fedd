/**
 * What `locksmith stats` prints for one mount (statsText, src/locks-cli.ts), from a control
 * socket's answer: the lines of a mount alone, and the store line of a mount sharing its lock
 * space (--store), which only --json showed before. test/native/control.test.ts runs the command
 * against a real mount.
 */
import t from 'tap';
import { statsText, type Answer } from '../../src/locks-cli.js';

const store = {
  engine: 'redis',
  node: 'fs-a',
  namespace: 'vol1',
  session: { epoch: 1733300000000042, fenced: false, grace: false },
  roundTrips: 120,
  commits: 40,
  stale: 3,
  fencedLocally: 1,
  graceWaits: 2,
  renewals: 30,
  failedRenewals: 4,
  sessions: 1,
  owedReleases: 2,
};

function answer(withStore: boolean, session = store.session): Answer {
  return {
    mount: { mountpoint: '/mnt/a', backing: '/srv/a', pid: 42, uid: 0, version: '1.0.0', startedAt: '', uptimeMs: 61_000, workers: 2 },
    stats: {
      operations: { lock: { '0': 3, '-11': 1 } },
      waiting: 1,
      inFlight: 1,
      waits: { count: 2, totalMs: 30, maxMs: 20 },
      files: 1,
      workers: [
        { index: 0, files: 1, locks: 2, waiters: 1, calls: 4, restarts: 0 },
        { index: 1, files: 0, locks: 0, waiters: 0, calls: 0, restarts: 0 },
      ],
      hookErrors: 0,
      faults: 0,
      workerRestarts: 0,
      crossWorkerDeadlocks: 0,
      ...(withStore ? { store: { ...store, session } } : {}),
    },
    session: { events: 5, replied: 4, outstanding: 1, interrupts: 0, posixLocks: true, flockLocks: true },
  };
}

t.test('a mount alone: no store line', async (t) => {
  const text = statsText(answer(false));
  t.match(text, /^ {2}locks {8}2 granted, 1 waiting, on 1 file\n/m);
  t.notMatch(text, /store/);
});

t.test("a mount sharing its lock space: a store line (engine, namespace, node, session, renewals, round trips), and the lock counts named as the node's", async (t) => {
  const text = statsText(answer(true));
  t.match(text, /^ {2}locks {8}2 granted, 1 waiting, on 1 file \(node fs-a's\)\n/m);
  t.match(
    text,
    /^ {2}store {8}redis namespace vol1, node fs-a, session 1733300000000042 \(1 opened\); 30 renewals, 4 failed; 120 round trips, 40 commits, 3 stale, 1 fenced locally, 2 grace waits, 2 releases owed\n/m,
  );
  t.match(text, /problems .*\n {2}store .*\n {2}fuse /, 'after the problems, before the fuse line');
  t.match(statsText(answer(true, { epoch: 7, fenced: true, grace: true })), /session 7, fenced, in a grace period \(1 opened\)/, 'a fenced session in a grace period says so');
  t.match(statsText(answer(true, { epoch: 0, fenced: true, grace: false })), /session none open \(1 opened\)/, 'no session open');
});
