/**
 * Review of a resent judged request ended by requestTimeoutMs before its turn on the replacement
 * (the shape of remote-hook-crash-request-timeout-review.test.ts), in what that test does not try:
 * the Windows family (a waiting LockFileEx: ERROR_LOCK_VIOLATION), a caller's abort arriving after
 * the deadline's answer, and the replacement dying too after that answer, before the turn (the
 * caller sends it again as owed: the next replacement releases the grant). Each time the request
 * settles once, a's waiter then gets the bytes, and b owes no release in the end.
 */
import t from 'tap';
import { EAGAIN, ENOLCK, F_UNLCK, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles, waitFor, within } from './helpers.js';
import { JUDGED_STEP_MS, drop, holdsTwice, hookNodes, lock, take, type Family } from './remote-hook-nodes.js';

/** Far above requestTimeoutMs (JUDGED_STEP_MS): owner 5's hook on the replacement holds the mailbox until the test lets it go. */
const HOOK_HOLDS_MS = 30_000;

type Variant = 'plain' | 'abort after the answer' | 'replacement dies after the answer';

const cases: [Family, Variant][] = [
  ['windows', 'plain'],
  ['posix', 'abort after the answer'],
  ['windows', 'abort after the answer'],
  ['posix', 'replacement dies after the answer'],
  ['windows', 'replacement dies after the answer'],
];

for (const [f, variant] of cases) {
  t.test(`${f}, ${variant}: a resent judged waiter ended by requestTimeoutMs before its turn settles once and its grant is released`, { skip: noRedis }, async (t) => {
    const { judge, arm, asked, heldAsked: fiveAsked, verdict: fiveVerdict } = holdsTwice(5, 3);
    const { a, b } = await hookNodes(
      t,
      'rhcrtv',
      {
        hookTimeoutMs: 120_000,
        onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge(e.lockOwner as number)),
        onLockFile: (e: LockFileEvent) => judge(e.handle as number),
        onUnlockFile: () => {},
      },
      { store: { sessionTtlMs: 10_000, requestTimeoutMs: JUDGED_STEP_MS } },
    );
    const path = '/crash-request-timeout-variants';
    const generic = f === 'posix' ? -ENOLCK : 33;
    const op = f === 'posix' ? 'lock' : 'lockFile';
    t.equal(await take(b, f, path, 1, 100, false), 0, 'b locks elsewhere (after the grace period)');
    t.equal(await drop(b, f, path, 1, 100), 0, 'and unlocks');
    t.equal(await take(a, f, path, 2, 50, false), 0, 'a owner 2 takes [50,60)');
    t.equal(await take(a, f, path, 2, 0, false), 0, 'a owner 2 takes [0,10)');
    const w5 = take(b, f, path, 5, 50, true);
    await waitFor(async () => (await b.locks(path)).filter((e) => e.state === 'waiting').length >= 1, "b's owner 5 waiting");
    const ac = new AbortController();
    const w3 = take(b, f, path, 3, 0, true, variant === 'abort after the answer' ? { signal: ac.signal } : {});
    await waitFor(async () => (await b.locks(path)).filter((e) => e.state === 'waiting').length >= 2, "b's owner 3 waiting");
    arm();
    if (f === 'posix') t.equal(await lock(a, path, 2, F_UNLCK, 0, 60), 0, 'a unlocks [0,60): b owners 5 and 3 are granted in its step');
    else t.same(await Promise.all([drop(a, f, path, 2, 50), drop(a, f, path, 2, 0)]), [0, 0], "a unlocks [50,60) and [0,10): b's handles 5 and 3 are granted");
    await settles(fiveAsked[0]!.promise, "b's hook asked for owner 5's grant");
    await settles(b.crashWorker(0), "b's worker replaced");
    await settles(fiveAsked[1]!.promise, "b's hook asked again for owner 5 (the replacement), owner 3's request behind it");
    const early = await within(w3, HOOK_HOLDS_MS);
    const ended = typeof early === 'number';
    t.comment(ended ? `owner 3 ended while owner 5 was judged (${early})` : 'owner 3 waited its turn');
    if (ended) t.equal(early, generic, 'owner 3 is answered the generic code by its deadline');
    if (variant === 'abort after the answer') ac.abort();
    if (variant === 'replacement dies after the answer') {
      t.ok(ended, 'owner 3 was answered before the second crash (else this case is not the one meant)');
      t.ok(((await b.stats()).store?.owedReleases ?? 0) >= 1, "b owes owner 3's release while its turn has not come");
      await settles(b.crashWorker(0), "b's replacement replaced in turn");
    }
    fiveVerdict[0]!.resolve(0);
    fiveVerdict[1]!.resolve(0);
    t.equal(await settles(w5, "b owner 5's waiter"), 0, 'owner 5 is approved');
    const r3 = await settles(w3, "b owner 3's waiter");
    t.ok(r3 === 0 || r3 === generic, `owner 3 approved or the generic code (${r3})`);
    // a's waiter on [0,10) is granted once b's owner 3 released it (60 s: far above one engine step).
    const a4 = take(a, f, path, 4, 0, r3 !== 0, r3 === 0 ? {} : { timeoutMs: 60_000 });
    t.equal(await settles(a4, "a's lock on [0,10)"), r3 === 0 ? (f === 'posix' ? -EAGAIN : 33) : 0, r3 === 0 ? 'a cannot take [0,10): b owner 3 holds it' : "a gets [0,10): owner 3's grant went with its request");
    const held = (await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)} ${e.start}-${e.end}`).sort();
    t.same(held, r3 === 0 ? ['b 3 0-9', 'b 5 50-59'] : ['a 4 0-9', 'b 5 50-59'], 'each lock is held by the owner told it holds it');
    if (r3 !== 0) t.notOk(asked.includes(3), "owner 3's grant released without asking b's hook (as a cancel's)");
    t.ok(await waitFor(async () => (await b.stats()).store?.owedReleases === 0, "b's owed releases written"), 'b owes no release');
    const ops = (await b.stats()).operations[op] as Record<string, number>;
    t.equal(Object.values(ops).reduce((s, n) => s + n, 0), f === 'posix' ? 4 : 3, `b's ${op} calls counted once each: owner 1's (and, posix, its unlock), 5's, 3's (${JSON.stringify(ops)})`);
  });
}
