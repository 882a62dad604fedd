/**
 * Hook events' `fence` in a shared lock space, checked per file by the engine (Step.fence):
 * - a slow approval hook on one file is not asked again because another node granted on another
 *   file meanwhile (the design reverted in a2ffcb7 checked every number against the namespace's
 *   counter of versions: a hook on /A was asked 12 times during 22 grants on /B, its request never
 *   answered);
 * - after the engine restarted without its data (the tombstones gone with the rest), the next
 *   grant on a file holds a fence above every one given before (the time in µs from below; every
 *   grant waited out the grace period).
 * Two LockCoordinator nodes in this process over a real redis-server.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { F_SETLK, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';

let server: RedisServer | undefined;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

type Approve = (e: LockEvent) => number | Promise<number>;

async function nodes(t: Test, approveA: Approve, approveB: Approve, sessionTtlMs = 1000): Promise<[LockCoordinator, LockCoordinator]> {
  const namespace = `fence-${randomUUID().slice(0, 8)}`;
  const start = (node: string, onLock: Approve) =>
    // sessionTtlMs: the new namespace's grace period (which the first grant waits for) is that long.
    LockCoordinator.start({ workers: 1, store: { url: server!.url, namespace, node, sessionTtlMs }, onLock });
  const a = await start('a', approveA);
  const b = await start('b', approveB);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return [a, b];
}

const set = (c: LockCoordinator, path: string, owner: number, lockType: number, start = 0) => c.lock({ path, lockType, lockStart: start, lockLen: 10, cmd: F_SETLK, lockOwner: owner });

t.test("a slow approval hook on /A is asked once while another node grants 50 times on /B, and /A's request is granted", { skip: noRedis }, async (t) => {
  let asked = 0;
  let askedOnce!: () => void;
  const firstAsk = new Promise<void>((r) => (askedOnce = r));
  // b's grants on /B so far, and who waits for a count of them.
  let bGrants = 0;
  const reached: { n: number; go: () => void }[] = [];
  const granted = () => {
    bGrants++;
    for (const w of reached.filter((x) => x.n <= bGrants)) w.go();
  };
  const grantsReach = (n: number) => new Promise<void>((go) => (n <= bGrants ? go() : reached.push({ n, go })));
  const fences: number[] = [];
  const [a, b] = await nodes(
    t,
    (e) => {
      if (e.path !== '/A' || e.lockType !== F_WRLCK) return 0;
      asked++;
      fences.push(e.fence!);
      askedOnce();
      // Slow: each ask is approved once b granted 10 more times on /B (or made all 50).
      return grantsReach(Math.min(50, bGrants + 10)).then(() => 0);
    },
    () => 0,
  );
  // The grace period of the new namespace first (its grants are refused until it ends).
  t.equal((await set(a, '/warm', 1, F_WRLCK)).result, 0, 'a grants once the grace period ended');
  t.equal((await set(b, '/warm', 2, F_WRLCK, 100)).result, 0, 'so does b');
  const aLock = set(a, '/A', 3, F_WRLCK);
  await firstAsk;
  for (let i = 0; i < 50; i++) {
    if ((await set(b, '/B', 4, F_WRLCK)).result !== 0) return t.fail(`b's grant ${i + 1} on /B`);
    granted();
    if ((await set(b, '/B', 4, F_UNLCK)).result !== 0) return t.fail(`b's unlock ${i + 1} on /B`);
  }
  t.pass('b granted 50 times on /B while the hook on /A was pending');
  t.equal((await aLock).result, 0, "a's request on /A is granted");
  t.equal(asked, 1, `the hook on /A was asked once (asked ${asked} times; the reverted design: once per 10 of b's grants)`);
  t.ok(Number.isSafeInteger(fences[0]) && fences[0]! > 0, `with a fence (${fences[0]})`);
});

t.test('the engine restarts without its data: the next grant on a file holds a larger fence than every one before', { skip: noRedis }, async (t) => {
  const seen: Record<string, LockEvent[]> = { a: [], b: [] };
  // sessionTtlMs 6000: the sessions outlive the restart (several-nodes.test.ts RESTART_TTL_MS).
  const [a, b] = await nodes(
    t,
    (e) => {
      seen.a!.push(e);
      return 0;
    },
    (e) => {
      seen.b!.push(e);
      return 0;
    },
    6000,
  );
  const grantFence = (node: string) => seen[node]!.filter((e) => e.lockType === F_WRLCK).at(-1)!.fence!;
  t.equal((await set(a, '/f', 1, F_WRLCK)).result, 0, 'a writes /f');
  const before = grantFence('a');
  t.equal((await set(a, '/f', 1, F_UNLCK)).result, 0, 'a unlocks /f');
  t.equal((await set(b, '/f', 2, F_WRLCK)).result, 0, 'b writes /f');
  const beforeB = grantFence('b');
  t.ok(beforeB > before, `b's fence is above a's (${beforeB} > ${before})`);
  t.equal((await set(b, '/f', 2, F_UNLCK)).result, 0, 'b unlocks /f: no record left, its last fence in a tombstone');
  await server!.restart();
  // a, which has never seen b's grant, writes /f once the new incarnation's grace period ended.
  t.equal((await set(a, '/f', 1, F_WRLCK)).result, 0, 'a writes /f after the restart');
  const after = grantFence('a');
  t.ok(after > beforeB, `its fence is above every one before the restart (${after} > ${beforeB})`);
});
