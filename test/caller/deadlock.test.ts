/**
 * Deadlock detection through the public API (SEMANTICS-POSIX.md §6): classic POSIX owners only,
 * exact cycles over a wait-for graph that spans files on different worker threads, no depth limit,
 * never a false EDEADLK, never for OFD (or flock, or Windows) owners.
 */
import t from 'tap';
import { LockCoordinator, EAGAIN, EDEADLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { HANG_MS, settles, sleep, stillPending, waitFor, within, isPending } from '../api/helpers.js';

type Req = Record<string, unknown>;
type Reply = { result: number; lockType: number; lockStart: bigint; lockLen: bigint; lockPid: number };

const WORKERS = 2;
// One coordinator for the whole file (starting workers under tap's loader is slow); every test
// uses its own files and owners.
const c = await LockCoordinator.start({ workers: WORKERS });
t.teardown(() => c.stop());

let fileSeq = 0;
/** A fresh path that lives on worker `w`. */
function fileOn(w: number): string {
  for (;;) {
    const p = `/dl/${++fileSeq}`;
    if (routeOf(p, WORKERS) === w) return p;
  }
}

let ownerSeq = 1000;
function owner(): number {
  return ++ownerSeq;
}

function px(over: Req): Req {
  return { lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, ...over };
}

async function hold(path: string, lockOwner: number, over: Req = {}): Promise<void> {
  const r = await c.lock(px({ path, lockOwner, ...over }));
  if (r.result !== 0) throw new Error(`setup: ${lockOwner} could not lock ${path}: ${r.result}`);
}

function waitLock(path: string, lockOwner: number, over: Req = {}): Promise<Reply> {
  return c.lock(px({ path, lockOwner, cmd: F_SETLKW, ...over })) as Promise<Reply>;
}

async function waiting(path: string, n: number): Promise<void> {
  await waitFor(async () => (await c.locks(path)).filter((e) => e.state === 'waiting').length === n, `${n} waiter(s) on ${path}`);
}

function unlock(path: string, lockOwner: number, over: Req = {}): Promise<Reply> {
  return c.lock(px({ path, lockOwner, lockType: F_UNLCK, lockStart: 0, lockLen: 0, ...over })) as Promise<Reply>;
}

/** Of two waiting requests, the first to be answered and its result: [name, result]. */
function firstAnswered(a: [string, Promise<Reply>], b: [string, Promise<Reply>]): Promise<readonly [string, number]> {
  const named = ([n, p]: [string, Promise<Reply>]) => p.then((r) => [n, r.result] as const);
  return settles(Promise.race([named(a), named(b)]), `an answer for ${a[0]} or ${b[0]}`);
}

async function listing(path: string): Promise<string[]> {
  return (await c.locks(path)).map((e) => `${e.kind} ${e.type} ${e.start}-${e.end} ${String(e.owner)} ${e.state}`).sort();
}

t.test('routeOf spreads the chosen paths over both workers', async (t) => {
  t.equal(routeOf(fileOn(0), WORKERS), 0);
  t.equal(routeOf(fileOn(1), WORKERS), 1);
});

for (const [name, wa, wb] of [
  ['files on different workers (0 and 1)', 0, 1],
  ['files on the same worker (0)', 0, 0],
  ['files on the same worker (1)', 1, 1],
] as const) {
  t.test(`2-owner cycle, ${name}: the request closing it gets -EDEADLK, nothing queued, locks stay`, async (t) => {
    const fa = fileOn(wa);
    const fb = fileOn(wb);
    const A = owner();
    const B = owner();
    await hold(fa, A);
    await hold(fb, B);
    const aWaits = waitLock(fb, A, { lockPid: 1 });
    await waiting(fb, 1);
    const bWaits = waitLock(fa, B, { lockPid: 2, lockStart: 5, lockLen: 3 });
    const r = await settles(bWaits, "B's request closing the cycle");
    t.strictSame(r, { result: -EDEADLK, lockType: F_WRLCK, lockStart: 5n, lockLen: 3n, lockPid: 2 }, 'B closes the cycle: -EDEADLK');
    t.ok(await stillPending(aWaits), 'A keeps waiting');
    t.strictSame(await listing(fa), [`posix write 0-9 ${A} granted`], 'B is not queued; A keeps its lock');
    t.strictSame(await listing(fb), [`posix write 0-9 ${A} waiting`, `posix write 0-9 ${B} granted`], "B's lock stays");
    t.equal((await unlock(fb, B)).result, 0);
    t.equal((await aWaits).result, 0, 'A is granted once B unlocks');
    await unlock(fa, A);
    await unlock(fb, A);
  });
}

t.test('both halves of a cycle issued at once: exactly one request gets -EDEADLK (20 rounds per layout)', async (t) => {
  for (const [wa, wb] of [[0, 1], [1, 1]] as const) {
    let bad = 0;
    for (let i = 0; i < 20; i++) {
      const fa = fileOn(wa);
      const fb = fileOn(wb);
      const A = owner();
      const B = owner();
      await hold(fa, A);
      await hold(fb, B);
      const a = waitLock(fb, A);
      const b = waitLock(fa, B);
      // One of the two must be answered (a hang fails after HANG_MS); then the other must still be
      // waiting (a second answer within 100 ms is the failure; load only makes it rarer, never false).
      await settles(Promise.race([a, b]), 'an answer to either half of the cycle');
      const [ra, rb] = await Promise.all([within(a, 100), within(b, 100)]);
      const failed = [ra, rb].filter((r) => !isPending(r) && (r as Reply).result === -EDEADLK).length;
      const other = [ra, rb].filter((r) => !isPending(r) && (r as Reply).result !== -EDEADLK).length;
      if (failed !== 1 || other !== 0) {
        bad++;
        t.fail(`workers ${wa}/${wb} round ${i}: ${failed} EDEADLK, ${other} other results (want exactly one EDEADLK, the other waiting)`);
      }
      // Unwind: the owner whose request failed unlocks, the other is granted.
      if (!isPending(ra) && isPending(rb)) {
        await unlock(fb, A);
        await unlock(fa, A);
        t.equal((await b).result, 0);
      } else if (isPending(ra) && !isPending(rb)) {
        await unlock(fa, B);
        await unlock(fb, B);
        t.equal((await a).result, 0);
      }
      for (const [f, o] of [[fa, A], [fb, A], [fa, B], [fb, B]] as const) await unlock(f, o);
    }
    t.equal(bad, 0, `workers ${wa}/${wb}: one EDEADLK per cycle`);
  }
});

t.test('2-owner cycle inside one file', async (t) => {
  const f = fileOn(1);
  const A = owner();
  const B = owner();
  await hold(f, A, { lockStart: 0, lockLen: 10 });
  await hold(f, B, { lockStart: 10, lockLen: 10 });
  const a = waitLock(f, A, { lockStart: 10, lockLen: 10 });
  await waiting(f, 1);
  t.equal((await settles(waitLock(f, B, { lockStart: 0, lockLen: 10 }), "B's request closing the cycle")).result, -EDEADLK);
  t.ok(await stillPending(a));
  t.equal((await unlock(f, B)).result, 0);
  t.equal((await a).result, 0);
  await unlock(f, A);
});

t.test('3-owner cycle over 3 files on both workers', async (t) => {
  const f1 = fileOn(0);
  const f2 = fileOn(1);
  const f3 = fileOn(0);
  const [A, B, C] = [owner(), owner(), owner()];
  await hold(f1, A);
  await hold(f2, B);
  await hold(f3, C);
  const a = waitLock(f2, A); // A -> B (worker 1)
  await waiting(f2, 1);
  const b = waitLock(f3, B); // B -> C (worker 0)
  await waiting(f3, 1);
  const r = await settles(waitLock(f1, C), "C's request closing the cycle"); // C -> A closes it (worker 0)
  t.equal(r.result, -EDEADLK, 'C gets -EDEADLK');
  t.ok(await stillPending(a), 'A still waits');
  t.ok(await stillPending(b), 'B still waits');
  t.strictSame(await listing(f1), [`posix write 0-9 ${A} granted`]);
  // Unwind: C goes, B gets f3, B goes, A gets f2.
  await unlock(f3, C);
  t.equal((await b).result, 0);
  await c.flush({ path: f2, lockOwner: B });
  t.equal((await a).result, 0);
  for (const [f, o] of [[f1, A], [f2, A], [f3, B]] as const) await unlock(f, o);
});

t.test('a 12-owner cycle is detected: no depth limit', async (t) => {
  const n = 12;
  const files = Array.from({ length: n }, (_, i) => fileOn(i % 2));
  const owners = Array.from({ length: n }, () => owner());
  for (let i = 0; i < n; i++) await hold(files[i]!, owners[i]!);
  const waits: Promise<Reply>[] = [];
  for (let i = 0; i < n - 1; i++) {
    waits.push(waitLock(files[i + 1]!, owners[i]!));
    await waiting(files[i + 1]!, 1);
  }
  const r = await settles(waitLock(files[0]!, owners[n - 1]!), "the last owner's request closing the cycle");
  t.equal(r.result, -EDEADLK, 'the last owner closes a 12-step cycle');
  for (const w of waits) t.ok(await stillPending(w, 5), 'the others still wait');
  // Unwind from the end of the chain.
  await unlock(files[n - 1]!, owners[n - 1]!);
  for (let i = n - 2; i >= 0; i--) {
    t.equal((await waits[i]!).result, 0);
    await c.flush({ path: files[i]!, lockOwner: owners[i]! });
  }
  for (let i = 0; i < n; i++) {
    await c.flush({ path: files[i]!, lockOwner: owners[i]! });
    await c.flush({ path: files[(i + 1) % n]!, lockOwner: owners[i]! });
  }
  for (const f of files) t.strictSame(await c.locks(f), []);
});

t.test('a waiter whose blockers change so that it closes a cycle fails with -EDEADLK', async (t) => {
  // Owner A has two waiting requests (two threads of one process): A1 on f1 behind C, A2 on f2
  // behind B. B waits on f1 behind C too. When C unlocks, A1 is granted first (arrival order), so
  // B now waits for A while A (A2) waits for B: B fails.
  const f1 = fileOn(0);
  const f2 = fileOn(1);
  const [A, B, C] = [owner(), owner(), owner()];
  await hold(f1, C);
  await hold(f2, B);
  const a1 = waitLock(f1, A);
  await waiting(f1, 1);
  const b = waitLock(f1, B);
  await waiting(f1, 2);
  const a2 = waitLock(f2, A);
  await waiting(f2, 1);
  await sleep(50);
  t.ok(await stillPending(b), 'no cycle yet: B waits for C only');
  await unlock(f1, C);
  t.equal((await a1).result, 0, 'A1 granted');
  t.equal((await settles(b, "B's request, once blocked by A")).result, -EDEADLK, 'B, now blocked by A, closes a cycle');
  t.ok(await stillPending(a2), 'A2 still waits for B');
  await unlock(f2, B);
  t.equal((await a2).result, 0);
  await unlock(f1, A);
  await unlock(f2, A);
});

t.test('no false EDEADLK: a long chain without a cycle waits, then unwinds', async (t) => {
  const f1 = fileOn(0);
  const f2 = fileOn(1);
  const f3 = fileOn(0);
  const [A, B, C, D] = [owner(), owner(), owner(), owner()];
  await hold(f1, A);
  await hold(f2, B);
  await hold(f3, C);
  const a = waitLock(f2, A); // A -> B
  const b = waitLock(f3, B); // B -> C
  const d = waitLock(f1, D); // D -> A
  await waiting(f1, 1);
  await waiting(f2, 1);
  await waiting(f3, 1);
  // C is not waiting, so there is no cycle, whatever else C does.
  const fx = fileOn(1);
  await hold(fx, C);
  await sleep(150);
  t.ok(await stillPending(a), 'A waits');
  t.ok(await stillPending(b), 'B waits');
  t.ok(await stillPending(d), 'D waits');
  await unlock(f3, C);
  t.equal((await b).result, 0);
  await unlock(f2, B);
  await unlock(f3, B);
  t.equal((await a).result, 0);
  await unlock(f1, A);
  await unlock(f2, A);
  t.equal((await d).result, 0);
  await unlock(f1, D);
  await unlock(fx, C);
});

t.test('no false EDEADLK from a stale edge: a timed-out or aborted waiter leaves the graph', async (t) => {
  for (let i = 0; i < 10; i++) {
    const fa = fileOn(0);
    const fb = fileOn(1);
    const A = owner();
    const B = owner();
    await hold(fa, A);
    await hold(fb, B);
    if (i % 2 === 0) {
      t.equal((await waitLock(fb, A, { timeoutMs: 20 })).result, -EAGAIN, 'A times out');
    } else {
      const ac = new AbortController();
      const a = waitLock(fb, A, { signal: ac.signal });
      await waiting(fb, 1);
      ac.abort();
      await a;
    }
    const b = waitLock(fa, B);
    const r = await within(b, 150);
    t.ok(isPending(r), `round ${i}: B waits for A (A waits for nothing): ${JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    await unlock(fa, A);
    t.equal((await b).result, 0);
    await unlock(fa, B);
    await unlock(fb, B);
  }
});

t.test('no false EDEADLK right after a grant across workers (30 rounds)', async (t) => {
  let falsePositives = 0;
  for (let i = 0; i < 30; i++) {
    const fa = fileOn(i % 2);
    const fb = fileOn((i + 1) % 2);
    const A = owner();
    const B = owner();
    await hold(fa, A);
    await hold(fb, B);
    const a = waitLock(fb, A); // A -> B
    await waiting(fb, 1);
    // B unlocks fb: A is granted in that same step. Only then does B wait for A, who waits for nothing.
    t.equal((await unlock(fb, B)).result, 0);
    const b = waitLock(fa, B);
    const ra = await a;
    if (ra.result !== 0) t.fail(`round ${i}: A not granted: ${ra.result}`);
    const rb = await within(b, 100);
    if (!isPending(rb)) {
      falsePositives++;
      t.fail(`round ${i}: B did not wait: ${(rb as Reply).result}`);
    }
    await unlock(fa, A);
    await unlock(fb, A);
    t.equal((await b).result, 0);
    await unlock(fa, B);
  }
  t.equal(falsePositives, 0, 'never a false EDEADLK');
});

t.test('OFD owners never get EDEADLK (different workers and same worker)', async (t) => {
  for (const [wa, wb] of [[0, 1], [0, 0]] as const) {
    const fa = fileOn(wa);
    const fb = fileOn(wb);
    const A = owner();
    const B = owner();
    await hold(fa, A, { kind: 'ofd' });
    await hold(fb, B, { kind: 'ofd' });
    const a = waitLock(fb, A, { kind: 'ofd', timeoutMs: 300 });
    await waiting(fb, 1);
    const b = waitLock(fa, B, { kind: 'ofd', timeoutMs: 200 });
    t.equal((await b).result, -EAGAIN, 'B waits until its timeout (no EDEADLK)');
    t.equal((await a).result, -EAGAIN, 'A waits until its timeout (no EDEADLK)');
    await unlock(fa, A, { kind: 'ofd' });
    await unlock(fb, B, { kind: 'ofd' });
  }
});

t.test('mixed POSIX/OFD and flock cycles carry no edges: no EDEADLK', async (t) => {
  // posix A holds fa; OFD owner with the same number holds fb. A's wait on fb goes through an OFD
  // owner (no edge), so the OFD owner's wait on fa closes no POSIX cycle.
  const fa = fileOn(0);
  const fb = fileOn(1);
  const A = owner();
  await hold(fa, A);
  await hold(fb, A, { kind: 'ofd' });
  const a = waitLock(fb, A, { timeoutMs: 300 });
  await waiting(fb, 1);
  const o = waitLock(fa, A, { kind: 'ofd', timeoutMs: 200 });
  t.equal((await o).result, -EAGAIN, 'the OFD owner times out');
  t.equal((await a).result, -EAGAIN, 'posix owner A (another owner than OFD A) times out');
  // flock: whole-file locks never deadlock-detect.
  const fc = fileOn(0);
  const fd = fileOn(1);
  const F1 = owner();
  const F2 = owner();
  await hold(fc, F1, { kind: 'flock' });
  await hold(fd, F2, { kind: 'flock' });
  const f1 = waitLock(fd, F1, { kind: 'flock', timeoutMs: 300 });
  await waiting(fd, 1);
  const f2 = waitLock(fc, F2, { kind: 'flock', timeoutMs: 200 });
  t.equal((await f2).result, -EAGAIN);
  t.equal((await f1).result, -EAGAIN);
  // Windows waiters carry no edges either: a posix owner waiting behind a Windows lock.
  const fe = fileOn(0);
  const ff = fileOn(1);
  const P = owner();
  await hold(fe, P);
  t.equal(await c.lockFile({ fileName: ff, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: P }), 0);
  const p = waitLock(ff, P, { timeoutMs: 300 });
  await waiting(ff, 1);
  const w = c.lockFile({ fileName: fe, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: false, handle: P, timeoutMs: 200 });
  t.equal(await w, 33, 'the Windows waiter times out');
  t.equal((await p).result, -EAGAIN);
  for (const [f, o, k] of [[fa, A, 'posix'], [fb, A, 'ofd'], [fc, F1, 'flock'], [fd, F2, 'flock'], [fe, P, 'posix']] as const) {
    await unlock(f, o, { kind: k });
  }
  await c.closeHandle({ fileName: ff, handle: P });
});

t.test("'fifo' across workers: a hold-back that would close a cycle through another worker gives way", async (t) => {
  // Under 'fifo' a request queues behind an earlier conflicting waiter, unless that waiter
  // already waits for its owner (the hold-back would make a deadlock the kernel never has). Here
  // that knowledge spans workers: B waits for A on X (worker 0), A waits for C on Y (worker 1),
  // then C asks X for bytes only B's waiting request wants. Held back behind B, C would wait for B
  // -> A -> C forever; the coordinator's graph sees the cycle and lets C pass.
  const f = await LockCoordinator.start({ workers: WORKERS, policy: 'fifo' });
  t.teardown(() => f.stop());
  const X = fileOn(0);
  const Y = fileOn(1);
  const [A, B, C] = [owner(), owner(), owner()];
  const lock = (path: string, lockOwner: number, start: number, len: number, cmd = F_SETLK, over: Req = {}): Promise<Reply> =>
    f.lock({ path, lockOwner, lockType: F_WRLCK, lockStart: start, lockLen: len, cmd, ...over }) as Promise<Reply>;
  t.equal((await lock(X, A, 0, 1)).result, 0, 'A holds X[0]');
  t.equal((await lock(Y, C, 0, 1)).result, 0, 'C holds Y[0]');
  const b = lock(X, B, 0, 2, F_SETLKW);
  await waitFor(async () => (await f.locks(X)).some((e) => e.state === 'waiting'), 'B waits on X');
  const a = lock(Y, A, 0, 1, F_SETLKW);
  await waitFor(async () => (await f.locks(Y)).some((e) => e.state === 'waiting'), 'A waits on Y');
  // No granted lock stands in C's way on X[1]: only B's earlier waiting request does.
  // Held back, C would wait forever: its timeout (minutes, so a slow machine never reaches it)
  // turns that into -EAGAIN and a failure here.
  const cx = lock(X, C, 1, 1, F_SETLKW, { timeoutMs: HANG_MS });
  t.equal((await cx).result, 0, 'C passes B instead of waiting for its own waiter chain (not -EAGAIN from the timeout)');
  t.ok(await stillPending(a), 'A still waits for C on Y');
  t.ok(await stillPending(b), 'B still waits for A on X');
  t.equal((await lock(Y, C, 0, 0, F_SETLK, { lockType: F_UNLCK })).result, 0);
  t.equal((await a).result, 0, 'C gone from Y: A gets it');
  t.equal((await lock(X, C, 0, 0, F_SETLK, { lockType: F_UNLCK })).result, 0);
  t.equal((await lock(X, A, 0, 0, F_SETLK, { lockType: F_UNLCK })).result, 0);
  t.equal((await b).result, 0, 'A and C gone from X: B gets it');
  t.equal((await f.stats()).crossWorkerDeadlocks, 0, 'no EDEADLK: a fifo-made cycle is never a deadlock');
});

t.test('one release puts two waiters on a cycle through another worker: the later one fails, as on one table', async (t) => {
  // f1 on worker 0, f2 on worker 1. D holds f1[2] and waits on f2 for B (an edge only worker 1
  // has). A holds f1[0,1] and f1[3]; waiting on f1 in this order: C1 for [1], E1 for [3], B2 reads
  // [1], C2 for [2,3] (blocked by A and D). A's release grants C1 and E1: B2 now waits for C and
  // C2 for D and E, both new blockers. Checked in arrival order, B2 first while C2 waits for
  // nobody (a woken Linux waiter that has not slept again): no cycle. Then C2: C -> D -> B -> C.
  // The later waiter, C2, fails, as one table decides (test/core/deadlock.test.ts), though the
  // cycle is seen only on the caller's thread; C2's old edge to D must not make B2 the victim.
  const f1 = fileOn(0);
  const f2 = fileOn(1);
  const [A, B, C, D, E] = [owner(), owner(), owner(), owner(), owner()];
  await hold(f1, A, { lockStart: 0, lockLen: 2 });
  await hold(f1, A, { lockStart: 3, lockLen: 1 });
  await hold(f1, D, { lockStart: 2, lockLen: 1 });
  await hold(f2, B);
  const dw = waitLock(f2, D);
  await waiting(f2, 1);
  const c1 = waitLock(f1, C, { lockStart: 1, lockLen: 1 });
  await waiting(f1, 1);
  const e1 = waitLock(f1, E, { lockStart: 3, lockLen: 1 });
  await waiting(f1, 2);
  const b2 = waitLock(f1, B, { lockStart: 1, lockLen: 1, lockType: F_RDLCK });
  await waiting(f1, 3);
  const c2 = waitLock(f1, C, { lockStart: 2, lockLen: 2 });
  await waiting(f1, 4);
  t.ok(await stillPending(b2), 'no cycle yet: B2 waits for A, C2 for A and D');
  t.equal((await unlock(f1, A)).result, 0);
  t.equal((await c1).result, 0, 'C1 granted');
  t.equal((await e1).result, 0, 'E1 granted');
  // One of the two fails (the cycle is real); which one is the question.
  const first = await firstAnswered(['C2', c2], ['B2', b2]);
  t.strictSame(first, ['C2', -EDEADLK], 'C2, the later, fails');
  t.ok(await stillPending(b2), 'B2, the earlier, still waits for C');
  t.ok(await stillPending(dw), 'D still waits for B on f2');
  await unlock(f1, C);
  t.equal((await b2).result, 0, 'C gone: B2 granted');
  await unlock(f2, B);
  t.equal((await dw).result, 0, 'B gone from f2: D granted');
  for (const o of [B, D, E]) await unlock(f1, o);
  await unlock(f2, D);
});

t.test("'fifo' across workers: an earlier waiter on a 'fifo' cycle is not failed for the hard cycle a later one closes through it", async (t) => {
  // f1 on worker 0, f2 and f3 on worker 1. On f3 P holds [0], S waits for it, Q queues behind S
  // (soft). On f2 X holds [0] and Q waits for it. On f1 A holds [0,2]; waiting there in this
  // order: Q [0], P [2], G1 (P, [0]), G2 (X, [2]). A's release grants Q [0] and P [2]: G1 now
  // waits for Q, which closes P -> Q ~> S -> P (a 'fifo' cycle: Q passes S, as one table lets
  // it), and G2 for P, which closes X -> P -> Q -> X, a hard one. One table checks G1 (no hard
  // cycle), then G2: G2 fails. The caller's thread meets G1's edges first, but G2's closed the
  // hard cycle: G2 fails there too, and G1 waits.
  const f = await LockCoordinator.start({ workers: WORKERS, policy: 'fifo' });
  t.teardown(() => f.stop());
  const f1 = fileOn(0);
  const f2 = fileOn(1);
  const f3 = fileOn(1);
  const [A, P, Q, S, X] = [owner(), owner(), owner(), owner(), owner()];
  const lock = (path: string, lockOwner: number, start: number, len: number, cmd = F_SETLK, lockType = F_WRLCK): Promise<Reply> =>
    f.lock({ path, lockOwner, lockType, lockStart: start, lockLen: len, cmd }) as Promise<Reply>;
  const waitingOn = (path: string, n: number): Promise<void> =>
    waitFor(async () => (await f.locks(path)).filter((e) => e.state === 'waiting').length === n, `${n} waiter(s) on ${path}`);
  t.equal((await lock(f1, A, 0, 3)).result, 0, 'A holds f1[0,2]');
  t.equal((await lock(f3, P, 0, 1)).result, 0, 'P holds f3[0]');
  t.equal((await lock(f2, X, 0, 1)).result, 0, 'X holds f2[0]');
  /** F_SETLKW that queues, as the `n`th waiter of `path`: its answer, once it is listed. */
  const queue = async (path: string, lockOwner: number, start: number, len: number, n: number): Promise<{ answer: Promise<Reply> }> => {
    const answer = lock(path, lockOwner, start, len, F_SETLKW);
    await waitingOn(path, n);
    return { answer };
  };
  const { answer: s3 } = await queue(f3, S, 0, 2, 1);
  const { answer: q3 } = await queue(f3, Q, 1, 1, 2);
  const { answer: q2 } = await queue(f2, Q, 0, 1, 1);
  const { answer: q1 } = await queue(f1, Q, 0, 1, 1);
  const { answer: p1 } = await queue(f1, P, 2, 1, 2);
  const { answer: g1 } = await queue(f1, P, 0, 1, 3);
  const { answer: g2 } = await queue(f1, X, 2, 1, 4);
  t.equal((await lock(f1, A, 0, 0, F_SETLK, F_UNLCK)).result, 0, 'A releases f1');
  t.equal((await q1).result, 0, 'Q gets f1[0]');
  t.equal((await p1).result, 0, 'P gets f1[2]');
  const first = await firstAnswered(['G1', g1], ['G2', g2]);
  t.strictSame(first, ['G2', -EDEADLK], 'G2, the later, fails');
  t.equal((await settles(q3, "Q's f3 request, let past S")).result, 0, "Q passes S on f3: nothing granted stands in its way");
  t.ok(await stillPending(g1), 'G1, the earlier, still waits for Q');
  t.ok(await stillPending(s3), 'S still waits for P on f3');
  t.ok(await stillPending(q2), 'Q still waits for X on f2');
  t.equal((await lock(f2, X, 0, 0, F_SETLK, F_UNLCK)).result, 0);
  t.equal((await q2).result, 0, 'X gone from f2: Q gets it');
  for (const [p, o] of [[f1, Q], [f2, Q], [f3, Q]] as const) t.equal((await lock(p, o, 0, 0, F_SETLK, F_UNLCK)).result, 0);
  t.equal((await g1).result, 0, 'Q gone from f1: G1 granted');
  t.equal((await lock(f3, P, 0, 0, F_SETLK, F_UNLCK)).result, 0);
  t.equal((await s3).result, 0, 'P gone from f3: S granted');
  for (const [p, o] of [[f1, P], [f1, X], [f3, S]] as const) await lock(p, o, 0, 0, F_SETLK, F_UNLCK);
  t.equal((await f.stats()).crossWorkerDeadlocks, 1, 'one EDEADLK across workers, not two');
});
