/**
 * Review of issue 13: the engine paused (SIGSTOP) while b's hook judges b's waiter granted by a's
 * release; the hook answers (approval or veto) with the engine away, then the engine resumes. The
 * waiter ends, and what it was told agrees with what others may take: granted, the bytes stay
 * b's; refused, a's waiter behind it is granted.
 */
import t, { type Test } from 'tap';
import { F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles, waitFor } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

const lk = (c: LockCoordinator, path: string, owner: number, type: number, wait = false): Promise<number> => lock(c, path, owner, type, 0, 10, wait);
const path = '/e';

/**
 * a holds [0,10) of /e, b's owner 3 waits on it, then a's owner 4; a unlocks, which grants b's
 * waiter: resolves once b's hook is asked, its answer held back (`answer`). `fences`: owner 3's
 * hook events, as 'set F' or 'release F'. Sessions of `ttlMs`, well past the pause each test makes.
 */
async function judgedAtPause(t: Test, prefix: string, ttlMs: number) {
  const fences: string[] = [];
  let armed = false;
  const { promise: askedP, resolve: asked } = later();
  const { promise: hookP, resolve: answer } = later<number>();
  const { server, a, b } = await hookNodes(
    t,
    prefix,
    {
      onLock: (e: LockEvent) => {
        if (e.lockOwner === 3) fences.push(`${e.lockType === F_UNLCK ? 'release' : 'set'} ${e.fence}`);
        if (!armed || e.lockType === F_UNLCK || e.lockOwner !== 3) return 0;
        asked();
        return hookP;
      },
    },
    { store: { sessionTtlMs: ttlMs, requestTimeoutMs: 1000 } },
  );
  t.equal(await lk(a, path, 2, F_WRLCK), 0, 'a locks');
  const bWaits = lk(b, path, 3, F_WRLCK, true);
  await waiting(b, path, 1);
  const aWaits = lk(a, path, 4, F_WRLCK, true);
  await waiting(a, path, 2);
  armed = true;
  t.equal(await lk(a, path, 2, F_UNLCK), 0, "a unlocks: b's waiter is granted");
  await settles(askedP, "b's hook asked");
  return { server, a, b, bWaits, aWaits, answer, fences };
}

for (const verdict of [0, -13]) {
  t.test(`posix: the engine paused while b's hook judges a grant by a's release, the hook answers ${verdict}: b's waiter ends, and no two writers hold`, { skip: noRedis }, async (t) => {
    const { server, a, b, bWaits, aWaits, answer, fences } = await judgedAtPause(t, 'rheng', 8000);
    server.pause();
    answer(verdict);
    let code: number;
    try {
      code = await settles(bWaits, "b's waiter, the engine paused");
    } finally {
      server.resume();
    }
    t.ok(code === 0 || code === verdict || code === -37, `b's waiter ended with ${code}`);
    if (code === 0) {
      t.equal(await lk(a, path, 5, F_WRLCK), -11, "b's lock stands: a's try conflicts");
      t.equal(await lk(b, path, 3, F_UNLCK), 0, 'b unlocks');
      const set = fences.filter((f) => f.startsWith('set')).at(-1)!.slice(4);
      const released = async () => {
        while (!fences.some((f) => f.startsWith('release'))) await new Promise((r) => setImmediate(r));
      };
      await settles(released(), "b's release event");
      t.equal(fences.find((f) => f.startsWith('release'))!.slice(8), set, `b's release event tells the fence its approval was shown (${fences.join(', ')})`);
    }
    t.equal(await settles(aWaits, "a's waiter"), 0, "a's waiter behind is granted");
    t.equal(await lk(b, path, 6, F_WRLCK), -11, "a's lock stands: b's try conflicts");
  });
}

// The veto's release unwritten when b's worker dies: before the fix it was owed under no request,
// so b's caller kept nothing to send its replacement, and the grant stayed in the engine under
// b's session (a's waiter behind it was never granted while b lived).
t.test("posix: b's hook vetoes with the engine paused, and b's worker dies before the veto's release is written: the replacement releases the grant", { skip: noRedis }, async (t) => {
  // sessionTtlMs well past the pause and a worker's restart: the sessions live through them.
  const { server, a, b, bWaits, aWaits, answer } = await judgedAtPause(t, 'rhengd', 20_000);
  server.pause();
  // The replacement reads the node's files from the engine: it ends its start after the resume.
  let replaced: Promise<void> | undefined;
  try {
    answer(-13);
    t.equal(await settles(bWaits, "b's waiter, the engine paused"), -13, "b's waiter ends with its hook's veto");
    t.equal((await b.stats()).store?.owedReleases, 1, "b's caller keeps the request: the veto's release is owed");
    replaced = b.crashWorker(0);
  } finally {
    server.resume();
  }
  await settles(replaced!, "b's worker replaced");
  t.equal(await settles(aWaits, "a's waiter"), 0, "a's waiter behind is granted: the replacement released b's grant");
  t.equal(await lk(b, path, 6, F_WRLCK), -11, "a's lock stands: b's try conflicts");
  t.same((await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)}`), ['a 4'], 'only a owner 4 holds');
  t.ok(await waitFor(async () => (await b.stats()).store?.owedReleases === 0, "b's owed release written"), 'b owes no release');
});
