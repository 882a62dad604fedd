/**
 * API.md "The engine unreachable": a request gets its family's generic code after
 * requestTimeoutMs; a release that could not be written is answered (with that code) and written
 * by the file's next step. Releases (unlock, UnlockFileEx, close, flush) several on one file at
 * once while the engine does not answer: each is answered within requestTimeoutMs of its arrival
 * (before: each had requestTimeoutMs from its turn, the k-th about k x requestTimeoutMs after it
 * came), also while still queued behind a job that holds the mailbox longer (answered from
 * outside it, SharedFiles.attempt). Each is still applied once the engine answers again, in the
 * mailbox's order: a later request of the same bytes is decided after it. Real SharedFiles over a
 * MemoryEngine behind the lost-link harness.
 */
import t, { type Test } from 'tap';
import { EAGAIN, ENOLCK, ERROR_LOCK_VIOLATION, ERROR_NOT_LOCKED, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseFlush, type Call } from '../../src/core/requests.js';
import { BUDGET_MS, MemoryEngine, answered, ch, code, countAnswers, headAtLink, lf, lk, lw, node, nodeFor, uf, within, type TestNode } from './lost-link.js';

const TIMEOUT = 300;
const flush = (owner: string): Call => parseFlush({ path: '/a', lockOwner: owner }) as Call;

/** a's locks on /a: p1..p2 (POSIX, [0,10) and [10,20)), handle 3 (Windows, [20,30)), handle 4 (Windows, [30,40)), p5 (POSIX, [40,50)). */
async function fiveLocks(t: Test, a: TestNode): Promise<void> {
  const locks: [number, Call][] = [
    [1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10)],
    [2, lk('p2', 2, F_WRLCK, F_SETLK, 10, 10)],
    [3, lf(3, 20, 10)],
    [4, lf(4, 30, 10)],
    [5, lk('p5', 5, F_WRLCK, F_SETLK, 40, 10)],
  ];
  for (const [id, call] of locks) {
    a.sf.run(id, call, a.target);
    t.equal(code(await answered(a, id, `lock ${id}`)), 0, `lock ${id} held`);
  }
}

/** The releases of fiveLocks' locks, one of each kind, with their ids and the answer each gets while the engine does not answer. */
const releases: [number, Call, unknown][] = [
  [11, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), -ENOLCK],
  [12, flush('p2'), undefined],
  [13, uf(3, 20, 10), ERROR_LOCK_VIOLATION],
  [14, ch(4), undefined],
  [15, lk('p5', 5, F_UNLCK, F_SETLK, 40, 10), -ENOLCK],
];

/** Makes the releases now; resolves with each one's answer and its time from its arrival. */
function releaseAll(a: TestNode): Promise<{ res: unknown[]; took: number[] }> {
  const took: number[] = [];
  return Promise.all(
    releases.map(async ([id, call]) => {
      const t0 = performance.now();
      a.sf.run(id, call, a.target);
      const r = await answered(a, id, `release ${id}`);
      took[id - 11] = Math.round(performance.now() - t0);
      return code(r);
    }),
  ).then((res) => ({ res, took }));
}

/** Once the engine answers again: a's next step on /a carries what it owes, and node b then takes every byte a held ([0,50)). */
async function allFree(t: Test, engine: MemoryEngine, a: TestNode, b: TestNode): Promise<void> {
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  a.sf.run(30, lk('p8', 8, F_WRLCK, F_SETLK, 60, 10), a.target);
  t.equal(code(await answered(a, 30, "p8's lock of [60,70)")), 0, "a's next step commits");
  t.same((await engine.load('/a')).records.filter((r) => r.node === 'a').length, 1, "a holds one lock in the engine: p8's");
  b.sf.run(100, lk('q1', 1, F_WRLCK, F_SETLK, 0, 50), b.target);
  t.equal(code(await answered(b, 100, "b's lock of [0,50)")), 0, 'b takes [0,50): every release applied');
}

t.test('releases of every kind on one file at once, the engine gone: each answered with its generic code within requestTimeoutMs of its arrival, each applied once the engine is back', async (t) => {
  const engine = new MemoryEngine();
  const a = await nodeFor(t, engine, 'a', TIMEOUT);
  const b = await nodeFor(t, engine, 'b', TIMEOUT);
  await fiveLocks(t, a);
  const counts = countAnswers(a);
  a.policy = () => 'drop';
  const { res, took } = await releaseAll(a);
  t.same(res, releases.map(([, , r]) => r), 'the generic codes (void for flush and close)');
  // Budget: requestTimeoutMs and half of it from each one's own arrival, the half for a loaded machine.
  t.ok(took.every((ms) => ms < TIMEOUT * 1.5), `each answered within requestTimeoutMs (${TIMEOUT} ms) of its arrival, and its slack: ${took.join(', ')} ms`);
  t.same(
    (await engine.load('/a')).records.map((r) => r.state),
    ['held', 'held', 'held', 'held', 'held'],
    'while the engine does not answer, it keeps every lock (nobody else can be granted them)',
  );
  a.policy = () => 'pass';
  await allFree(t, engine, a, b);
  t.ok(releases.every(([id]) => counts.get(id) === 1), 'each release answered once');
  t.same(a.faults, [], 'nothing reported');
});

t.test('releases queued behind a step held at the link past their deadline: answered from outside the mailbox at requestTimeoutMs after they came, applied in order once it passes', async (t) => {
  const engine = new MemoryEngine();
  const a = await nodeFor(t, engine, 'a', TIMEOUT);
  const b = await nodeFor(t, engine, 'b', TIMEOUT);
  await fiveLocks(t, a);
  const counts = countAnswers(a);
  // A lock request of other bytes holds the mailbox: its step waits at the link until released.
  const hold = await headAtLink(a, 9);
  const { res, took } = await releaseAll(a);
  t.same(res, releases.map(([, , r]) => r), 'the generic codes (void for flush and close)');
  t.ok(took.every((ms) => ms < TIMEOUT * 1.5), `each answered within requestTimeoutMs (${TIMEOUT} ms) of its arrival, the head step still held: ${took.join(', ')} ms`);
  t.notOk(a.got.has(9), 'the head request is not answered yet (it holds the mailbox)');
  // p1 locks [0,10) again, and b's q2 asks for [10,20): both come after the releases, and are decided after them.
  a.sf.run(20, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  hold.release();
  t.equal(code(await answered(a, 20, "p1's lock of [0,10) again")), 0, 'p1 locks [0,10) again, after its unlock');
  t.equal(code(await answered(a, 9, 'the head request')), -ENOLCK, 'the head request: past its deadline, the generic code');
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  b.sf.run(101, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 101, "b's lock of [0,10)")), -EAGAIN, "p1's new lock stands: the unlock was not applied after it");
  b.sf.run(102, lk('q1', 1, F_WRLCK, F_SETLK, 10, 40), b.target);
  t.equal(code(await answered(b, 102, "b's lock of [10,50)")), 0, 'b takes [10,50): every other release applied');
  t.ok(releases.every(([id]) => counts.get(id) === 1), 'each release answered once');
  t.same(a.faults, [], 'nothing reported');
});

t.test("a release whose deadline passes while it is decided (the approval of the waiter it wakes outlasts it), the engine gone: owed at once, not sent with requestTimeoutMs more; applied once the engine is back", async (t) => {
  const engine = new MemoryEngine();
  let gate: Promise<number> | undefined;
  const a = await node(engine, 'a', 'default', TIMEOUT, 0, { approve: () => gate ?? 0 });
  t.teardown(() => a.store.close());
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.equal(code(await answered(a, 1, "p1's lock")), 0, 'p1 holds [0,10)');
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW, 0, 10), a.target);
  await answered(a, -2, "p2's waiter queued");
  // The engine gone; the approval of p2's grant waits until a request that came after p1's unlock
  // was answered at its own deadline (so past the unlock's too).
  a.policy = () => 'drop';
  let open!: (v: number) => void;
  gate = new Promise<number>((r) => (open = r));
  const t0 = performance.now();
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  a.sf.run(4, lf(9, 90, 10), a.target);
  t.equal(await answered(a, 4, 'the request queued behind the unlock'), ERROR_LOCK_VIOLATION, 'the request behind it: the generic code at its deadline');
  open(0);
  t.equal(code(await answered(a, 3, "p1's unlock")), -ENOLCK, "p1's unlock: the generic code (owed)");
  const took = Math.round(performance.now() - t0);
  t.ok(took < TIMEOUT * 1.5, `the unlock answered within requestTimeoutMs (${TIMEOUT} ms) of its arrival, and its slack: ${took} ms`);
  // The engine back: the owed unlock is written, and p2's waiter granted.
  a.policy = () => 'pass';
  t.equal(code(await answered(a, 2, "p2's waiter")), 0, "p2 granted once p1's owed unlock is written");
  t.same(a.faults, [], 'nothing reported');
});

t.test('a close answered at its deadline while queued: the waiter through its handle ends first (158), and the close still removes it once the engine is back', async (t) => {
  const engine = new MemoryEngine();
  const a = await nodeFor(t, engine, 'a', TIMEOUT);
  const b = await nodeFor(t, engine, 'b', TIMEOUT);
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 1, "q1's lock")), 0, 'q1 (node b) holds [0,10)');
  a.sf.run(1, lw(5, 0, 10), a.target);
  await answered(a, -1, "handle 5's waiter queued");
  const order: number[] = [];
  const answer = a.target.answer.bind(a.target);
  a.target.answer = (id, ...rest) => {
    order.push(id);
    answer(id, ...rest);
  };
  const hold = await headAtLink(a, 9);
  const t0 = performance.now();
  a.sf.run(2, ch(5), a.target);
  t.equal(await answered(a, 2, 'the close of handle 5'), undefined, 'the close answered (void)');
  const took = Math.round(performance.now() - t0);
  t.ok(took < TIMEOUT * 1.5, `within requestTimeoutMs (${TIMEOUT} ms) of its arrival, the head step still held: ${took} ms`);
  t.equal(a.got.get(1), ERROR_NOT_LOCKED, "the handle's waiter ended with 158");
  t.same(order, [1, 2], 'the waiter answered before the close');
  t.same(
    (await engine.load('/a')).records.filter((r) => r.node === 'a').map((r) => r.state),
    ['waiting'],
    "the waiter's record stays in the engine meanwhile",
  );
  hold.release();
  await answered(a, 9, 'the head request');
  await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
  a.sf.run(3, lk('p8', 8, F_WRLCK, F_SETLK, 60, 10), a.target);
  t.equal(code(await answered(a, 3, "p8's lock")), 0, "a's next step commits");
  t.same((await engine.load('/a')).records.filter((r) => r.node === 'a' && r.state === 'waiting').length, 0, "the waiter's record is gone: the close applied");
  b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 2, "q1's unlock")), 0, 'q1 unlocks');
  b.sf.run(3, lk('q2', 2, F_WRLCK, F_SETLK, 0, 10), b.target);
  t.equal(code(await answered(b, 3, "q2's lock")), 0, 'q2 takes [0,10): nothing of the closed handle holds it');
  t.equal(order.filter((id) => id === 1).length, 1, 'the waiter answered once');
  t.same(a.faults, [], 'nothing reported');
});
