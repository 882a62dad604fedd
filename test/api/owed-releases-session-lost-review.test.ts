/**
 * Review of the caller's owed releases (issue 13): a release answered owed while the engine is
 * paused, then the session expires and a new one opens. What it released went with the lost
 * session: its worker must say 'written' (the caller forgets it), and nothing it owed is resent
 * later. Checked again after a worker crash: the replacement must not run a release of a lost
 * session over the new session's locks of the same handle.
 */
import t from 'tap';
import type { LockCoordinator } from '../../src/index.js';
import type { SessionEvent } from '../../src/store/types.js';
import { routeOf } from '../../src/wire/route.js';
import { noRedis } from '../store/redis-server.js';
import { twoNodes, unwin, win } from './two-nodes.js';

const owedOf = (c: LockCoordinator) => (c as unknown as { owedReleases: Map<number, unknown> }).owedReleases;

t.test('an owed unlock whose session is lost meanwhile: written (forgotten by the caller), never run over the new session', { skip: noRedis }, async (t) => {
  const { server, a, b } = await twoNodes(t, 'ol', { sessionTtlMs: 2000, requestTimeoutMs: 500 });
  const events: SessionEvent[] = [];
  const waits: { kind: string; go: () => void }[] = [];
  a.onStoreSession((e) => {
    events.push(e);
    for (const w of waits.filter((x) => x.kind === e.kind)) w.go();
  });
  const next = (kind: string) => new Promise<void>((go) => waits.push({ kind, go }));
  t.equal(await a.lockFile(win('/s', 1, 10, 10)), 0, "a's handle 1 locks [10,20) of /s");
  const expired = next('expired');
  server.pause();
  try {
    t.equal(await a.unlockFile(unwin('/s', 1, 10, 10)), 33, 'the unlock answered owed (engine paused)');
    t.equal(owedOf(a).size, 1, 'the caller keeps it');
    await expired;
  } finally {
    server.resume();
  }
  await next('lost');
  // The new session's lock of the same bytes through the same handle, then any step of /s.
  t.equal(await a.lockFile(win('/s', 1, 10, 10)), 0, "handle 1 locks [10,20) again under the new session");
  t.equal(await a.lockFile(win('/s', 2, 50, 10)), 0, "handle 2 locks [50,60): a step of /s");
  t.equal(owedOf(a).size, 0, `the caller keeps no owed release once its session is lost and a step of the file ran (events: ${events.map((e) => e.kind).join(',')})`);
  await a.crashWorker(routeOf('/s', 2));
  t.equal(await b.lockFile(win('/s', 7, 10, 10)), 33, "b is refused [10,20): handle 1 holds it under the new session (the lost session's unlock not run again)");
});
