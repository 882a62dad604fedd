/**
 * A waiter granted by another node's release asks its own node's approval hook (API.md: onLock,
 * onLockFile fire before a lock is granted), with a fence above every fence the file had, and its
 * release event tells that fence. A veto is the caller's result and frees the bytes for others.
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent, type LockFileEvent, type UnlockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, waiting } from './remote-hook-nodes.js';

type Ev = (LockEvent | LockFileEvent | UnlockFileEvent) & { node: string; what: 'set' | 'release' };
const ownerOf = (e: Ev): unknown => ('lockOwner' in e ? e.lockOwner : e.handle);

async function nodes(t: Test, aHooks: boolean, veto: (e: Ev) => number | Promise<number>) {
  const seen: Ev[] = [];
  const hooks = (node: string, v: (e: Ev) => number | Promise<number>) => ({
    onLock: (e: LockEvent) => {
      const ev: Ev = { ...e, node, what: e.lockType === F_UNLCK ? 'release' : 'set' };
      seen.push(ev);
      return e.lockType === F_UNLCK ? 0 : v(ev);
    },
    onLockFile: (e: LockFileEvent) => {
      const ev: Ev = { ...e, node, what: 'set' };
      seen.push(ev);
      return v(ev);
    },
    onUnlockFile: (e: UnlockFileEvent) => {
      seen.push({ ...e, node, what: 'release' });
    },
  });
  const { a, b } = await hookNodes(t, 'rhook', hooks('b', veto), aHooks ? { a: hooks('a', () => 0) } : {});
  return { a, b, seen };
}

const fam = ['posix', 'windows'] as const;
type Fam = (typeof fam)[number];

/** A write lock of `owner` on [0, 10) of `path`, waiting if `wait`; and its unlock. Results as numbers. */
const take = (c: LockCoordinator, f: Fam, path: string, owner: number, wait: boolean): Promise<number> =>
  f === 'posix'
    ? c.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner }).then((r) => r.result)
    : c.lockFile({ fileName: path, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: !wait, handle: owner });
const drop = (c: LockCoordinator, f: Fam, path: string, owner: number): Promise<number> =>
  f === 'posix' ? c.lock({ path, lockType: F_UNLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: owner }).then((r) => r.result) : c.unlockFile({ fileName: path, byteOffset: 0, length: 10, handle: owner });

/** b locks and unlocks `path` (waiting out the grace period of the fresh lock space), then a's owner 2 holds it. */
async function aHolds(t: Test, a: LockCoordinator, b: LockCoordinator, f: Fam, path: string): Promise<void> {
  t.equal(await take(b, f, path, 1, false), 0, 'b locks (after the grace period)');
  t.equal(await drop(b, f, path, 1), 0, 'and unlocks');
  t.equal(await take(a, f, path, 2, false), 0, 'a locks');
}

for (const f of fam) {
  for (const aHooks of [false, true]) {
    t.test(`${f}: b's waiter granted by a's release (a ${aHooks ? 'with' : 'without'} hooks) asks b's hook, with a higher fence`, { skip: noRedis }, async (t) => {
      const { a, b, seen } = await nodes(t, aHooks, () => 0);
      const path = '/g';
      await aHolds(t, a, b, f, path);
      const waiter = take(b, f, path, 3, true);
      await waiting(b, path, 1);
      const from = seen.length;
      const before = Math.max(...seen.map((e) => e.fence ?? 0));
      t.ok(before > 0, `the file had fences (${before})`);
      t.equal(await drop(a, f, path, 2), 0, 'a unlocks');
      t.equal(await settles(waiter, "b's waiter"), 0, "b's waiter is granted");
      const asked = seen.slice(from).filter((e) => e.node === 'b' && e.what === 'set' && ownerOf(e) === 3);
      t.equal(asked.length, 1, "b's hook was asked once for its waiter after a's release");
      const fence = asked[0]?.fence ?? 0;
      t.ok(Number.isSafeInteger(fence) && fence > before, `with a fence above every fence the file had (${fence} > ${before})`);
      const at = seen.length;
      t.equal(await drop(b, f, path, 3), 0, 'b unlocks');
      // Release events come through the hooks' channel, in order: answered before the next approval.
      t.equal(await take(b, f, '/other', 9, false), 0, 'another lock (after the release event)');
      const rel = seen.slice(at).find((e) => e.node === 'b' && e.what === 'release');
      t.equal(rel?.fence, fence, "b's release event tells the grant's fence");
    });
  }

  t.test(`${f}: a veto of b's hook for a waiter granted by a's release is the caller's result, and the bytes go to the next waiter`, { skip: noRedis }, async (t) => {
    let vetoing = false;
    const code = f === 'posix' ? -13 : 5;
    const { a, b, seen } = await nodes(t, false, () => (vetoing ? code : 0));
    const path = '/v';
    await aHolds(t, a, b, f, path);
    const bWaits = take(b, f, path, 3, true);
    await waiting(b, path, 1);
    const aWaits = take(a, f, path, 4, true);
    await waiting(a, path, 2);
    vetoing = true;
    const from = seen.length;
    t.equal(await drop(a, f, path, 2), 0, 'a unlocks');
    t.equal(await settles(bWaits, "b's waiter"), code, "b's caller gets its hook's code");
    t.ok(seen.slice(from).some((e) => e.node === 'b' && e.what === 'set' && ownerOf(e) === 3), "b's hook was asked after a's release");
    t.equal(await settles(aWaits, "a's waiter behind b's"), 0, "a's waiter behind it is granted");
    const held = (await b.locks(path)).filter((e) => e.state === 'granted');
    t.equal(held.length, 1, 'one lock is held');
    t.notOk(seen.slice(from).some((e) => e.node === 'b' && e.what === 'release'), 'b tells no release of a lock its caller never had');
    t.equal(await drop(a, f, path, 4), 0, "a's waiter unlocks");
    t.same(await b.locks(path), [], 'nothing is left of b (as b sees the file)');
  });
}

t.test("posix: b's waiter aborted while b's hook judges its grant by a's release ends at once, and the grant is released", { skip: noRedis }, async (t) => {
  let hang = false;
  const { promise: askedP, resolve: asked } = later();
  const { promise: verdict, resolve: answer } = later<number>();
  let count = 0;
  // b's hook hangs for owner 3 once armed (the approval of its grant by a's release).
  const { a, b } = await nodes(t, false, (e) => {
    if (!hang || ownerOf(e) !== 3) return 0;
    count++;
    asked();
    return verdict;
  });
  const path = '/c';
  await aHolds(t, a, b, 'posix', path);
  const ac = new AbortController();
  const bWaits = b.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLKW, lockOwner: 3, signal: ac.signal }).then((r) => r.result);
  await waiting(b, path, 1);
  const aWaits = take(a, 'posix', path, 4, true);
  await waiting(a, path, 2);
  hang = true;
  t.equal(await drop(a, 'posix', path, 2), 0, 'a unlocks');
  await settles(askedP, "b's hook asked for its waiter");
  ac.abort();
  t.equal(await settles(bWaits, "b's aborted waiter"), -4, "b's waiter ends with EINTR while its hook still runs");
  answer(0);
  t.equal(await settles(aWaits, "a's waiter behind b's"), 0, "the grant is released once the hook answers: a's waiter behind it is granted");
  t.equal(count, 1, 'the hook was asked once');
  t.equal(await drop(a, 'posix', path, 4), 0, "a's waiter unlocks");
  t.same(await b.locks(path), [], 'nothing is left of b');
});
