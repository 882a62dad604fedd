/**
 * Review of the release deadline: releases queued on a file while the engine is paused are now
 * answered (the generic code, "owed": written by the file's next step) while still queued in their
 * worker's mailbox. If that worker dies before their turn, the caller holds no unanswered request
 * to give its replacement (ARCHITECTURE.md "A dead worker": it gets the unanswered requests again),
 * and the owed releases lived only in the dead worker: the locks stay held in the engine by node a,
 * though a's caller was told they would be written. Before the change the queued ones were still
 * unanswered at the death (the k-th was answered k x requestTimeoutMs after it came), so they were
 * resent to the replacement and applied. Now the caller keeps a release answered before it was
 * written (the host's 'owed') until its worker says 'written', and sends it to the replacement
 * with the unanswered requests, in order of arrival, answered once.
 */
import t from 'tap';
import { replacementLaunched } from './helpers.js';
import { routeOf } from '../../src/wire/route.js';
import { noRedis } from '../store/redis-server.js';
import { twoNodes, unwin, win } from './two-nodes.js';


t.test('unlocks answered while queued, the engine paused, then their worker dies: still written once the engine answers again', { skip: noRedis }, async (t) => {
  const { server, a, b } = await twoNodes(t, 'rr', { sessionTtlMs: 8000, requestTimeoutMs: 1000 });
  const handles = [1, 2, 3, 4];
  t.same(await Promise.all(handles.map((h) => a.lockFile(win('/w', h, h * 10, 10)))), [0, 0, 0, 0], "a's handles 1-4 lock [10,50) of /w");
  server.pause();
  let res: unknown[];
  try {
    const unlocks = handles.map((h) => a.unlockFile(unwin('/w', h, h * 10, 10)));
    // Each is answered (owed) a requestTimeoutMs after it came, the first at its turn, the others
    // while queued behind it; then the worker dies, the engine still paused.
    res = await Promise.all(unlocks);
    t.same(res, [33, 33, 33, 33], 'each unlock answered with the generic code (owed) while the engine is paused');
    // The engine answers again once the worker is gone, before its replacement needs it (the
    // replacement's first reads would otherwise wait out requestTimeoutMs, and on a loaded
    // machine the session's TTL: seen once at load 15).
    const gone = replacementLaunched("the replacement of /w's worker");
    const crashed = a.crashWorker(routeOf('/w', 2));
    await gone;
    server.resume();
    await crashed;
  } finally {
    server.resume();
  }
  // a's next step on /w (other bytes) carries what it owes, if anything still owes it.
  t.equal(await a.lockFile(win('/w', 9, 90, 10)), 0, "a's handle 9 locks [90,100) of /w");
  const got = await b.lockFile(win('/w', 20, 20, 30));
  t.equal(
    got,
    0,
    `b locks [20,50): the unlocks queued behind the first (answered while queued) were written (got ${String(got)})`,
  );
  t.equal(await b.lockFile(win('/w', 21, 10, 10)), 0, 'b locks [10,20): the first unlock (owed when its worker died) was written');
  // Run again on the replacement, each unlock was answered there too: its caller heard once.
  t.same((await a.stats()).operations.unlockFile, { 33: 4 }, "a's stats count each unlock once");
});
