/**
 * Issue 13, the waiter's worker dies while its node's hook judges another node's grant
 * (remote-hook-crash-review has the plain veto): the replacement judges the grant again from what
 * the caller's side kept of the owner's locks before it, exactly as the first worker would have.
 * An approval there fences the lock (its release event tells that fence); a veto puts back the
 * owner's earlier lock the grant merged with (bytes and fence), frees the rest and grants the next
 * waiters in order; a crash as the first verdict comes in ends with one consistent outcome.
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, waiting } from './remote-hook-nodes.js';

type Family = 'posix' | 'windows';

/**
 * Two nodes on one engine; b's approval hooks call `judge` for owner/handle 3 once armed, and
 * every event b's hooks see is kept (`seen`, with its owner and fence).
 */
async function nodes(t: Test, judge: (n: number) => number | Promise<number>) {
  const state = { armed: false, asked: 0 };
  const seen: { owner: unknown; release: boolean; fence: number | undefined }[] = [];
  let heard: () => void = () => {};
  const note = (e: { owner: unknown; release: boolean; fence: number | undefined }) => {
    seen.push(e);
    heard();
  };
  /** The release event of owner 3 heard since `from` (release events may come after the unlock's answer). */
  const released = async (from: number) => {
    for (;;) {
      const e = seen.slice(from).find((x) => x.owner === 3 && x.release);
      if (e !== undefined) return e;
      await new Promise<void>((r) => (heard = r));
    }
  };
  const ask = (owner: unknown): number | Promise<number> => {
    if (!state.armed || owner !== 3) return 0;
    return judge(++state.asked);
  };
  const { a, b } = await hookNodes(t, 'rhcrashj', {
    onLock: (e: LockEvent) => {
      note({ owner: e.lockOwner, release: e.lockType === F_UNLCK, fence: e.fence });
      return e.lockType === F_UNLCK ? 0 : ask(e.lockOwner);
    },
    onLockFile: (e: LockFileEvent) => {
      note({ owner: e.handle, release: false, fence: e.fence });
      return ask(e.handle);
    },
    onUnlockFile: (e) => {
      note({ owner: e.handle, release: true, fence: e.fence });
    },
  });
  return { a, b, state, seen, released };
}

function calls(f: Family, path: string) {
  const take = (c: LockCoordinator, owner: number, start: number, len: number, wait: boolean): Promise<number> =>
    f === 'posix'
      ? c.lock({ path, lockType: F_WRLCK, lockStart: start, lockLen: len, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner }).then((r) => r.result)
      : c.lockFile({ fileName: path, byteOffset: start, length: len, exclusiveLock: true, failImmediately: !wait, handle: owner });
  const drop = (c: LockCoordinator, owner: number, start: number, len: number): Promise<number> =>
    f === 'posix'
      ? c.lock({ path, lockType: F_UNLCK, lockStart: start, lockLen: len, cmd: F_SETLK, lockOwner: owner }).then((r) => r.result)
      : c.unlockFile({ fileName: path, byteOffset: start, length: len, handle: owner });
  return { take, drop };
}

/**
 * The scene both families' tests share: b locks and unlocks once (the grace period), a holds
 * [0,10), b's owner 3 waits for it; armed, a unlocks, which grants owner 3 in a's step, and b's
 * hook is asked (its first verdict hangs on `verdict`). Gives b's waiting request, wrapped (an
 * async function's returned promise would be awaited).
 */
async function grantJudged(t: Test, n: Awaited<ReturnType<typeof nodes>>, f: Family, path: string, firstAsked: Promise<void>): Promise<{ bWaits: Promise<number> }> {
  const { a, b, state } = n;
  const { take, drop } = calls(f, path);
  t.equal(await take(b, 1, 0, 10, false), 0, 'b locks (after the grace period)');
  t.equal(await drop(b, 1, 0, 10), 0, 'and unlocks');
  t.equal(await take(a, 2, 0, 10, false), 0, 'a locks');
  const bWaits = take(b, 3, 0, 10, true);
  await waiting(b, path, 1);
  state.armed = true;
  t.equal(await drop(a, 2, 0, 10), 0, 'a unlocks: b owner 3 is granted in its step');
  await settles(firstAsked, "b's hook asked for the grant by a's release");
  return { bWaits };
}

for (const f of ['posix', 'windows'] as const) {
  t.test(`${f}: b's worker dies while b's hook judges a grant by a's release; the hook run again approves: granted, with the fence it was shown`, { skip: noRedis }, async (t) => {
    const firstAsked = later();
    const verdict = later<number>();
    // The first approval hangs until answered (the worker dies meanwhile), the one run again approves.
    const n = await nodes(t, (k) => {
      if (k > 1) return 0;
      firstAsked.resolve();
      return verdict.promise;
    });
    const { a, b, state, seen, released } = n;
    const path = '/crash-approve';
    const { take, drop } = calls(f, path);
    const busy = f === 'posix' ? -11 : 33;
    const { bWaits } = await grantJudged(t, n, f, path, firstAsked.promise);
    await settles(b.crashWorker(0), "b's worker replaced");
    verdict.resolve(-13);
    t.equal(await settles(bWaits, "b's waiter"), 0, "b's caller is granted: the hook run again approved");
    t.equal(state.asked, 2, "b's hook was asked again for the request sent to the replacement");
    const approvals = seen.filter((e) => e.owner === 3 && !e.release);
    const fence = approvals[approvals.length - 1]!.fence;
    t.ok(fence !== undefined && approvals[0]!.fence !== undefined && fence > approvals[0]!.fence, `the approval run again was shown a higher fence (${approvals[0]!.fence} -> ${fence})`);
    t.equal(await take(a, 4, 0, 10, false), busy, "a cannot lock the bytes: b's owner holds them");
    const from = seen.length;
    t.equal(await drop(b, 3, 0, 10), 0, "b's owner unlocks");
    const rel = await settles(released(from), "owner 3's release event");
    t.equal(rel.fence, fence, 'its release event tells the fence of the approval run again');
    t.equal(await take(a, 4, 0, 10, false), 0, 'a locks the bytes now');
  });

  t.test(`${f}: b's worker dies as the first verdict (approve) comes in: one outcome, the hook's run last`, { skip: noRedis }, async (t) => {
    const firstAsked = later();
    const verdict = later<number>();
    const code = f === 'posix' ? -13 : 5;
    // The first approves once answered; one run again vetoes.
    const n = await nodes(t, (k) => {
      if (k > 1) return code;
      firstAsked.resolve();
      return verdict.promise;
    });
    const { a, b, state } = n;
    const path = '/crash-late';
    const { take } = calls(f, path);
    const busy = f === 'posix' ? -11 : 33;
    const { bWaits } = await grantJudged(t, n, f, path, firstAsked.promise);
    // The approval and the crash race: the fenced step may be written, or not, before the worker dies.
    verdict.resolve(0);
    await settles(b.crashWorker(0), "b's worker replaced");
    const r = await settles(bWaits, "b's waiter");
    if (state.asked === 1) {
      t.equal(r, 0, 'answered before the worker died: the first approval stands');
      t.equal(await take(a, 4, 0, 10, false), busy, "b's owner holds the bytes");
    } else {
      t.equal(state.asked, 2, 'asked again on the replacement');
      t.equal(r, code, "b's caller gets the veto of the hook run again, whatever the first worker wrote");
      t.equal(await take(a, 4, 0, 10, false), 0, 'nothing stays granted to b');
    }
  });
}

t.test("posix: b's worker dies while b's hook judges a grant that merged with its owner's lock; the veto run again puts that lock back with its fence and grants the next waiters in order", { skip: noRedis }, async (t) => {
  const firstAsked = later();
  const verdict = later<number>();
  const { a, b, state, seen, released } = await nodes(t, (n) => {
    if (n > 1) return -13;
    firstAsked.resolve();
    return verdict.promise;
  });
  const path = '/crash-merge';
  const { take, drop } = calls('posix', path);
  const held = async () =>
    (await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)} ${e.type} ${e.start}-${e.end}`).sort();
  t.equal(await take(b, 3, 0, 10, false), 0, 'b owner 3 writes [0,10) (after the grace period)');
  const fence = seen.find((e) => e.owner === 3 && !e.release)?.fence ?? 0;
  t.ok(fence > 0, `with a fence (${fence})`);
  t.equal(await take(a, 2, 10, 10, false), 0, 'a owner 2 writes [10,20)');
  const ext = take(b, 3, 10, 10, true);
  await waiting(b, path, 1);
  const next = take(a, 4, 10, 5, true);
  await waiting(a, path, 2);
  const behind = take(a, 5, 12, 10, true);
  await waiting(a, path, 3);
  const after = take(a, 8, 15, 5, true);
  await waiting(a, path, 4);
  state.armed = true;
  t.equal(await drop(a, 2, 10, 10), 0, 'a unlocks [10,20): b owner 3 is granted first (adjacent: merged with [0,10))');
  await settles(firstAsked.promise, "b's hook asked for the grant by a's release");
  await settles(b.crashWorker(0), "b's worker replaced");
  verdict.resolve(0);
  t.equal(await settles(ext, "b's extension"), -13, "b's extension gets the veto of the hook run again");
  t.equal(state.asked, 2, 'asked again on the replacement');
  const now = await held();
  // The rest waits on the bytes going back: without them it would hang, so it is not awaited then.
  if (!t.ok(!now.includes('b 3 write 0-19'), `b owner 3 no longer holds the merged [0,20) (${now.join(', ')})`)) return;
  t.equal(await settles(next, "a owner 4's waiter"), 0, 'the freed bytes go to the next waiter (a owner 4 [10,15))');
  t.equal(await settles(after, "a owner 8's waiter"), 0, 'and to a owner 8 ([15,20), behind owner 5 which still conflicts with 4)');
  t.same(await held(), ['a 4 write 10-14', 'a 8 write 15-19', 'b 3 write 0-9'], 'b owner 3 holds [0,10) as before');
  const from = seen.length;
  t.equal(await drop(b, 3, 0, 10), 0, 'b owner 3 unlocks [0,10)');
  const rel = await settles(released(from), "owner 3's release event");
  t.equal(rel.fence, fence, 'its release event tells the fence of the lock it held before asking');
  t.equal(await drop(a, 4, 10, 5), 0, 'a owner 4 unlocks');
  t.equal(await drop(a, 8, 15, 5), 0, 'a owner 8 unlocks');
  t.equal(await settles(behind, "a owner 5's waiter"), 0, 'a owner 5 is granted once owners 4 and 8 are gone');
});
