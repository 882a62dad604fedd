/**
 * Review of a dead worker's recovery (issue 13): b's waiter, granted by a's release while b's
 * approval hook judges the grant, is aborted (answered at once, the grant's release owed: the
 * caller keeps the request), b's worker dies, and its replacement dies as soon as it is launched:
 * the 'judged' and the request are queued there, the grant's release (a step of its own, an
 * engine round trip after it reads them) not written. The second replacement must release the
 * grant (a's waiting lock gets the bytes); the caller answered once (-EINTR), the hook not asked
 * again, b owner 3's earlier lock kept, nothing owed at the end.
 * Sessions of 10 s: two worker starts take tens of seconds at a load average near 20 on 2 cores,
 * and with 1 s b's session was sometimes lost meanwhile (its locks with it: another shape). An
 * engine paused over both starts (to hold the release unwritten) outlasted even a 30 s session there.
 */
import t from 'tap';
import { EINTR, F_SETLKW, F_UNLCK, F_WRLCK, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles, waitFor } from './helpers.js';
import { drop, firstHangs, hookNodes, take, twoDeaths, waiting } from './remote-hook-nodes.js';

t.test("posix: a cancelled judged waiter whose grant's release is owed when b's worker dies and then its replacement as it starts: released by the next, answered once", { skip: noRedis }, async (t) => {
  const { judge, arm, firstAsked, verdict, asked } = firstHangs(3, 0);
  const { a, b } = await hookNodes(
    t,
    'rhcowed2',
    { hookTimeoutMs: 120_000, onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge(e.lockOwner)) },
    { store: { sessionTtlMs: 10_000 } },
  );
  const path = '/crash-owed-twice';
  const events: string[] = [];
  b.onStoreSession((e) => events.push(e.kind));
  t.equal(await take(b, 'posix', path, 1, 0, false), 0, 'b locks (after the grace period)');
  t.equal(await drop(b, 'posix', path, 1, 0), 0, 'and unlocks');
  t.equal(await take(b, 'posix', path, 3, 10, false), 0, 'b owner 3 locks [10,20)');
  t.equal(await take(a, 'posix', path, 2, 0, false), 0, 'a locks [0,10)');
  const ac = new AbortController();
  const bWaits = take(b, 'posix', path, 3, 0, true, { signal: ac.signal });
  await waiting(b, path, 1);
  arm();
  t.equal(await drop(a, 'posix', path, 2, 0), 0, 'a unlocks: b owner 3 is granted [0,10) in its step');
  await settles(firstAsked, "b's hook asked for the grant by a's release");
  ac.abort();
  t.equal(await settles(bWaits, "b's waiter"), -EINTR, "b's caller is told -EINTR at once (the hook still judging)");
  t.equal((await b.stats()).store?.owedReleases, 1, "b's caller keeps the request until the grant's release is written");
  // The replacement dies at once: it has the 'judged' and the request queued, the release not written.
  await twoDeaths(b);
  verdict.resolve(0);
  // The grant's release is a step of the second replacement's: a's waiting lock is granted once it
  // is written (60 s: far above one engine step; a grant kept never frees the bytes).
  const a4 = a.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLKW, lockOwner: 4, timeoutMs: 60_000 }).then((r) => r.result);
  t.equal(await settles(a4, "a's waiting lock on [0,10)"), 0, `a gets the bytes: the grant to b owner 3 was released (b's session events: ${events.join(', ') || 'none'})`);
  const held = (await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)} ${e.start}-${e.end}`).sort();
  t.same(held, ['a 4 0-9', 'b 3 10-19'], `b owner 3 keeps its earlier lock [10,20), a owner 4 holds [0,10), nothing else (b's session events: ${events.join(', ') || 'none'})`);
  t.ok(await waitFor(async () => (await b.stats()).store?.owedReleases === 0, "b's owed release written"), 'b owes no release');
  t.equal((await b.stats()).operations.lock?.[String(-EINTR)], 1, 'the waiter counted once, as cancelled');
  t.equal(asked(), 1, "b's hook is not asked again for a request its caller was told ended");
});
