/**
 * Review of 15ddae6 (issue 13: a waiter cancelled as its worker dies while its node's hook judges
 * another node's grant releases the grant). The scene of remote-hook-crash-cancel-review: b owner 3
 * holds [10,20) and waits for [0,10) behind a owner 2; a unlocks, its step grants b owner 3, b's
 * hook is asked and hangs (firstHangs). Then one neighbour of the fixed shape:
 * - 'timeout': the request ends by its timeoutMs (not a signal) while the hook judges, then b's
 *   worker dies;
 * - 'close racing': the request is aborted (answered at once) and owner 3's close (flush / the
 *   handle's closeHandle) is sent as b's worker is killed;
 * - 'stop': the request is aborted, then b.stop() with the hook still judging;
 * - 'paused engine': the request is aborted, the engine paused (SIGSTOP), the hook approves (the
 *   live worker's release step goes to the paused engine), b's worker dies, the engine resumes.
 * Each time: the cancel's code once, the grant released (a's waiting lock gets [0,10) within 60 s),
 * the hook not asked again, and b's stats().store.owedReleases back to 0 once the release is
 * written (not for 'stop': b is gone). All held when written (review of stop 44).
 */
import t, { type Test } from 'tap';
import { F_UNLCK, type LockCoordinator, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles, waitFor } from './helpers.js';
import { drop, firstHangs, hookNodes, take, waiting, type Family } from './remote-hook-nodes.js';

const close = (c: LockCoordinator, f: Family, path: string, owner: number): Promise<void> =>
  f === 'posix' ? c.flush({ path, lockOwner: owner }) : c.closeHandle({ fileName: path, handle: owner });

/** b's owedReleases (0 when b reports no store stats). */
const owed = async (c: LockCoordinator): Promise<number> => ((await c.stats()) as { store?: { owedReleases?: number } }).store?.owedReleases ?? 0;

async function scene(t: Test, f: Family, o: { signal?: AbortSignal; timeoutMs?: number }) {
  const h = firstHangs(3, 0);
  const nodes = await hookNodes(t, 'rhcnb', {
    onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : h.judge(e.lockOwner)),
    onLockFile: (e: LockFileEvent) => h.judge(e.handle),
    onUnlockFile: () => {},
  });
  const { a, b } = nodes;
  const path = '/crash-neighbours';
  t.equal(await take(b, f, path, 1, 0, false), 0, 'b locks (after the grace period)');
  t.equal(await drop(b, f, path, 1, 0), 0, 'and unlocks');
  t.equal(await take(b, f, path, 3, 10, false), 0, 'b owner 3 locks [10,20)');
  t.equal(await take(a, f, path, 2, 0, false), 0, 'a locks [0,10)');
  let answers = 0;
  const bWaits = take(b, f, path, 3, 0, true, o).then((r) => {
    answers++;
    return r;
  });
  await waiting(b, path, 1);
  h.arm();
  t.equal(await drop(a, f, path, 2, 0), 0, 'a unlocks: b owner 3 is granted [0,10) in its step');
  await settles(h.firstAsked, "b's hook asked for the grant by a's release");
  return { ...h, ...nodes, path, bWaits, answers: () => answers };
}

for (const f of ['posix', 'windows'] as const) {
  const cancelled = f === 'posix' ? -4 : 995;
  const timedOut = f === 'posix' ? -11 : 33;

  t.test(`${f}: b's judged waiter times out, then b's worker dies: timed out once, the grant released, owedReleases back to 0`, { skip: noRedis }, async (t) => {
    // 5 s: far above the scene's few steps, so the timeout falls while the hook judges.
    const s = await scene(t, f, { timeoutMs: 5000 });
    t.equal(await settles(s.bWaits, "b's waiter (timeout)"), timedOut, "b's caller is told the timeout's code (the hook still judges)");
    await settles(s.b.crashWorker(0), "b's worker replaced");
    s.verdict.resolve(0);
    t.equal(await settles(take(s.a, f, s.path, 4, 0, true, { timeoutMs: 60_000 }), "a's waiting lock"), 0, 'a gets [0,10): the grant was released');
    t.equal(s.asked(), 1, "b's hook not asked again");
    await waitFor(async () => (await owed(s.b)) === 0, "b's owedReleases back to 0");
    const held = (await s.a.locks(s.path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${e.start}-${e.end}`).sort();
    t.same(held, ['a 0-9', 'b 10-19'], 'b owner 3 keeps [10,20), a owner 4 holds [0,10)');
    t.equal(s.answers(), 1, 'answered once');
  });

  t.test(`${f}: b's judged waiter aborted, then owner 3's close races b's worker's death: the grant and [10,20) released, owedReleases back to 0`, { skip: noRedis }, async (t) => {
    const ac = new AbortController();
    const s = await scene(t, f, { signal: ac.signal });
    ac.abort();
    t.equal(await settles(s.bWaits, "b's waiter (abort)"), cancelled, "b's caller is told the cancel's code");
    const crashed = s.b.crashWorker(0);
    const closed = close(s.b, f, s.path, 3);
    await settles(crashed, "b's worker replaced");
    s.verdict.resolve(0);
    await settles(closed, "owner 3's close");
    t.equal(await settles(take(s.a, f, s.path, 4, 0, true, { timeoutMs: 60_000 }), "a's waiting lock"), 0, 'a gets [0,10)');
    t.equal(await settles(take(s.a, f, s.path, 5, 10, true, { timeoutMs: 60_000 }), "a's waiting lock on [10,20)"), 0, 'a gets [10,20): the close released it');
    t.equal(s.asked(), 1, "b's hook not asked again");
    await waitFor(async () => (await owed(s.b)) === 0, "b's owedReleases back to 0");
    const held = (await s.a.locks(s.path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${e.start}-${e.end}`).sort();
    t.same(held, ['a 0-9', 'a 10-19'], 'only a holds');
    t.equal(s.answers(), 1, 'answered once');
  });

  t.test(`${f}: b's judged waiter aborted, then b stops with the hook still judging: stop ends, the bytes freed`, { skip: noRedis }, async (t) => {
    const ac = new AbortController();
    const s = await scene(t, f, { signal: ac.signal });
    ac.abort();
    t.equal(await settles(s.bWaits, "b's waiter (abort)"), cancelled, "b's caller is told the cancel's code");
    const stopped = s.stopB();
    s.verdict.resolve(0);
    await settles(stopped, "b's stop");
    t.equal(await settles(take(s.a, f, s.path, 4, 0, true, { timeoutMs: 60_000 }), "a's waiting lock"), 0, 'a gets [0,10) (b gone)');
    t.equal(s.answers(), 1, 'answered once');
  });
  t.test(`${f}: b's judged waiter aborted, the hook approves and its release step goes to a paused engine as b's worker dies: the grant released, owedReleases back to 0`, { skip: noRedis }, async (t) => {
    const ac = new AbortController();
    const s = await scene(t, f, { signal: ac.signal });
    ac.abort();
    t.equal(await settles(s.bWaits, "b's waiter (abort)"), cancelled, "b's caller is told the cancel's code");
    s.server.pause();
    t.teardown(() => s.server.resume());
    s.verdict.resolve(0);
    // The live worker's release step (after the verdict) meets the paused engine: in flight.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    const crashed = s.b.crashWorker(0);
    s.server.resume();
    await settles(crashed, "b's worker replaced");
    t.equal(await settles(take(s.a, f, s.path, 4, 0, true, { timeoutMs: 60_000 }), "a's waiting lock"), 0, 'a gets [0,10): the grant was released');
    t.equal(s.asked(), 1, "b's hook not asked again");
    await waitFor(async () => (await owed(s.b)) === 0, "b's owedReleases back to 0");
    const held = (await s.a.locks(s.path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${e.start}-${e.end}`).sort();
    t.same(held, ['a 0-9', 'b 10-19'], 'b owner 3 keeps [10,20), a owner 4 holds [0,10)');
    t.equal(s.answers(), 1, 'answered once');
  });
}
