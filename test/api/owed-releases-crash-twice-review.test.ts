/**
 * Review of the caller's owed releases (issue 13): an unlock answered owed while the engine is
 * paused, its worker killed, then the replacement killed too before the engine answers again. The
 * unlock is resent to each replacement, written once the engine is back, and answered (counted)
 * once; the caller keeps nothing once it is written. The pause lasts two worker starts (seconds
 * each on a loaded machine): with a TTL of 8 s it outlasted the node's fence and its session in
 * most runs, and the lock answered 33 then was taken for a defect; with 30 s it stays within the
 * lease (the brand-new namespace's grace makes the first lock wait that long). What the node may
 * answer if it does not is judged by the session events it saw.
 */
import t from 'tap';
import { routeOf } from '../../src/wire/route.js';
import { noRedis } from '../store/redis-server.js';
import { settles, waitFor } from './helpers.js';
import { twoNodes, unwin, win } from './two-nodes.js';

const owedOf = (c: object) => (c as { owedReleases: Map<number, unknown> }).owedReleases;

t.test('an owed unlock, its worker and then the replacement killed while the engine is paused: written once it is back, counted once', { skip: noRedis }, async (t) => {
  const { server, a, b } = await twoNodes(t, 'o2', { sessionTtlMs: 30000, requestTimeoutMs: 1000 });
  t.equal(await a.lockFile(win('/t', 1, 10, 10)), 0, "a's handle 1 locks [10,20) of /t");
  const w = routeOf('/t', 2);
  const events: { kind: string; at: number }[] = [];
  a.onStoreSession((e) => events.push({ kind: e.kind, at: performance.now() }));
  server.pause();
  try {
    t.equal(await a.unlockFile(unwin('/t', 1, 10, 10)), 33, 'the unlock answered owed (engine paused)');
    t.equal((await a.stats()).store?.owedReleases, 1, 'stats() counts the release owed');
    await a.crashWorker(w);
    await a.crashWorker(w);
  } finally {
    server.resume();
  }
  // The pause outlasts two worker starts: on a loaded machine past the node's own fence (3/4 of
  // sessionTtlMs), even past its session's TTL. Fenced, a request that sees no renewed lease
  // within requestTimeoutMs is answered with the generic code, and with the session lost there is
  // none to grant under until a new one opens (API.md). Otherwise it is granted.
  const asked = performance.now();
  const nine = await a.lockFile(win('/t', 9, 90, 10));
  const why = `session events ${events.map((e) => `${e.kind}@${Math.round(e.at - asked)}ms`).join(', ') || 'none'}`;
  if (events.some((e) => e.kind === 'fenced')) t.ok(nine === 0 || nine === 33, `a's handle 9 locks [90,100): ${nine}, the node fenced by the long pause (${why})`);
  else t.equal(nine, 0, `a's handle 9 locks [90,100) of /t (${why})`);
  // b waits for [10,20): granted once the unlock is written (by the lock's step or by the file's
  // owed try, which comes by itself: SharedFiles.retryOwed), or, if a's session expired during
  // the pause, once a reaper removed what it held.
  t.equal(await settles(b.lockFile({ ...win('/t', 5, 10, 10), failImmediately: false }), "b's waiting lock of [10,20)"), 0, `b is granted [10,20): the unlock was written (${why})`);
  t.ok(await waitFor(() => owedOf(a).size === 0, "a's owed unlock written or dropped with its session"), 'the caller keeps no owed release');
  t.equal((await a.stats()).store?.owedReleases, 0, 'stats() counts none owed');
  t.same((await a.stats()).operations.unlockFile, { 33: 1 }, 'the unlock counted once');
});
