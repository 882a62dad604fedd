/**
 * Review of a dead worker's recovery (issue 13): a request resent 'judged' (its grant by another
 * node's step was being judged by its node's approval hook when its worker died) waits in its
 * file's mailbox on the replacement behind an earlier request judged again there, whose hook takes
 * longer than the store's requestTimeoutMs. API.md: a request that cannot reach the engine within
 * requestTimeoutMs completes with the family's generic code. If it so ends before its turn, the
 * grant another node's step gave it (in the engine, under b's session) must go with it: no caller
 * believes it holds that lock, and a's waiter on the bytes must be granted. Sessions of 10 s: a
 * worker start takes tens of seconds at a load average near 20 on 2 cores, and with 1 s the
 * node's session was sometimes lost meanwhile (another shape).
 */
import t from 'tap';
import { EAGAIN, ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles, waitFor, within } from './helpers.js';
import { JUDGED_STEP_MS, holdsTwice, hookNodes, lock, waiting } from './remote-hook-nodes.js';

/** How long owner 5's hook on the replacement holds the mailbox: far above requestTimeoutMs (JUDGED_STEP_MS); its end is what the test waits for first. */
const HOOK_HOLDS_MS = 30_000;

t.test("posix: a resent judged waiter ended by requestTimeoutMs behind an earlier judged request's slow hook: its grant is released", {
  skip: noRedis,
}, async (t) => {
  const { judge, arm, asked, heldAsked: fiveAsked, verdict: fiveVerdict } = holdsTwice(5, 3);
  const { a, b } = await hookNodes(
    t,
    'rhcrto',
    { hookTimeoutMs: 120_000, onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge(e.lockOwner as number)) },
    { store: { sessionTtlMs: 10_000, requestTimeoutMs: JUDGED_STEP_MS } },
  );
  const path = '/crash-request-timeout';
  t.equal(await lock(b, path, 1, F_WRLCK, 100, 10), 0, 'b locks elsewhere (after the grace period)');
  t.equal(await lock(b, path, 1, F_UNLCK, 100, 10), 0, 'and unlocks');
  t.equal(await lock(a, path, 2, F_WRLCK, 50, 10), 0, 'a owner 2 writes [50,60)');
  t.equal(await lock(a, path, 2, F_WRLCK, 0, 10), 0, 'a owner 2 writes [0,10)');
  const w5 = lock(b, path, 5, F_WRLCK, 50, 10, true);
  await waiting(b, path, 1);
  const w3 = lock(b, path, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 2);
  arm();
  t.equal(await lock(a, path, 2, F_UNLCK, 0, 60), 0, "a unlocks [0,60): b owners 5 and 3 are granted in its step");
  await settles(fiveAsked[0]!.promise, "b's hook asked for owner 5's grant");
  await settles(b.crashWorker(0), "b's worker replaced");
  await settles(fiveAsked[1]!.promise, "b's hook asked again for owner 5 (the replacement), owner 3's request behind it");
  // Owner 3 may wait its turn (then it is judged and approved), or end by requestTimeoutMs.
  const early = await within(w3, HOOK_HOLDS_MS);
  fiveVerdict[0]!.resolve(0);
  fiveVerdict[1]!.resolve(0);
  t.equal(await settles(w5, "b owner 5's waiter"), 0, 'owner 5 is approved');
  const r3 = await settles(w3, "b owner 3's waiter");
  t.ok(r3 === 0 || r3 === -ENOLCK, `owner 3 is approved, or ends with the generic code (${r3}; ${typeof early === 'number' ? 'ended while owner 5 was judged' : 'waited its turn'})`);
  // Its grant goes with it if it ended: a's waiting lock on [0,10) is granted once b released
  // it (60 s: far above one engine step; a grant kept never frees the bytes). If it holds the
  // lock, a's non-waiting attempt fails.
  const a4 = a.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: r3 === 0 ? F_SETLK : F_SETLKW, lockOwner: 4, ...(r3 === 0 ? {} : { timeoutMs: 60_000 }) });
  t.equal((await settles(a4, "a's lock on [0,10)")).result, r3 === 0 ? -EAGAIN : 0, r3 === 0 ? 'a cannot take [0,10): b owner 3 holds it' : "a gets [0,10): owner 3's grant went with its request");
  const held = (await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)} ${e.start}-${e.end}`).sort();
  t.same(held, r3 === 0 ? ['b 3 0-9', 'b 5 50-59'] : ['a 4 0-9', 'b 5 50-59'], 'each lock is held by the owner told it holds it');
  t.ok(await waitFor(async () => (await b.stats()).store?.owedReleases === 0, "b's owed releases written"), 'b owes no release');
  t.same(asked.filter((o) => o === 5).length, 2, "owner 5's hook asked twice (once per worker)");
});
