/**
 * A release answered before it was written (owed: the engine paused) is kept by the caller until
 * its worker says it was written, and sent again to a replacement of that worker with the
 * unanswered requests, in their order of arrival: a later lock of the same handle, unanswered
 * when the worker died, is decided after the unlock there, not before it. Resent the other way
 * round, the lock is answered granted (its step, which carried the owed unlock, was at the paused
 * engine when the worker died, and applies once it answers: grantedBefore) and then the unlock
 * run again removes it: another node is granted bytes the handle was told it holds. (Without the
 * caller keeping owed releases this case holds too, for that step; the unlocks the review test
 * engine-gone-releases-replaced-review resends had no step of theirs at the engine.)
 */
import t from 'tap';
import { replacementLaunched } from './helpers.js';
import { routeOf } from '../../src/wire/route.js';
import { noRedis } from '../store/redis-server.js';
import { twoNodes, unwin, win } from './two-nodes.js';


t.test("an unlock owed (the engine paused), then its handle's lock of the same bytes, then the worker dies: the replacement decides the lock after the unlock", { skip: noRedis }, async (t) => {
  const { server, a, b } = await twoNodes(t, 'ro', { sessionTtlMs: 8000, requestTimeoutMs: 1000 });
  t.equal(await a.lockFile(win('/o', 1, 10, 10)), 0, "a's handle 1 locks [10,20) of /o");
  server.pause();
  let relock: Promise<number>;
  try {
    t.equal(await a.unlockFile(unwin('/o', 1, 10, 10)), 33, 'the unlock answered with the generic code (owed) while the engine is paused');
    // Asked right after, unanswered when the worker dies (its deadline is a requestTimeoutMs away).
    relock = a.lockFile(win('/o', 1, 10, 10));
    // The engine answers again once the worker is gone (its requests resent), before its
    // replacement needs it: the replacement's first connection would otherwise wait out a
    // requestTimeoutMs, and the lock its own deadline.
    const gone = replacementLaunched("the replacement of /o's worker");
    const crashed = a.crashWorker(routeOf('/o', 2));
    await gone;
    server.resume();
    await crashed;
  } finally {
    server.resume();
  }
  t.equal(await relock, 0, "handle 1's lock of [10,20) again: granted, decided after its unlock on the replacement");
  t.equal(await b.lockFile(win('/o', 5, 10, 10)), 33, "b's handle 5 is refused [10,20): handle 1 holds it");
  t.same((await a.stats()).operations.unlockFile, { 33: 1 }, 'the unlock counted once (its caller heard once)');
});
