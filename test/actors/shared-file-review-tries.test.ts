/**
 * Sequences from a review of "a release where this node has nothing is answered without the
 * engine" (nothingOfMine) and of the tries of one decision (an earlier try adopted, others left).
 * Model: the kernel, where a close releases every lock its owner holds on the file, and no two
 * conflicting locks are ever granted. Invariant looked at: once this node answered a close, none
 * of the closing owner's locks is held in the engine. Real SharedFiles over a MemoryEngine behind
 * the lost-link harness; every wait is for an answer or a step, within a budget.
 */
import t, { type Test } from 'tap';
import { EAGAIN, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseFlush, parseRelease, type Call } from '../../src/core/requests.js';
import type { StoreLink } from '../../src/actors/shared-file.js';
import type { ReassertReply } from '../../src/store/types.js';
import { BUDGET_MS, MemoryEngine, answered, endGrace, lk, memoryStore, node, resetEngine, within, type TestNode } from './lost-link.js';

const flush = (owner: string, path = '/a'): Call => parseFlush({ path, lockOwner: owner });
const release = (fh: number, path = '/a'): Call => parseRelease({ path, fileHandle: fh, lockOwner: `fl${fh}` });

/** The engine's records of `path`: node|session, state, mode, holder and bytes. */
async function held(engine: MemoryEngine, path = '/a'): Promise<string[]> {
  return (await engine.load(path)).records.map((r) => {
    const d = JSON.parse(r.data) as { w: number; h: { s: string } | number; s: string; e: string };
    return `${r.node}|${r.epoch} ${r.state} ${d.w === 1 ? 'write' : 'read'} ${typeof d.h === 'number' ? d.h : d.h.s} ${d.s}-${d.e}`;
  });
}

/** Nodes on an engine whose first incarnation has no grace period (a's own, 60 s, is for the one after a reset). */
async function nodes(t: Test, ...names: string[]): Promise<{ engine: MemoryEngine; ns: TestNode[] }> {
  return nodesTimed(t, 300, ...names);
}

/** As nodes(), with requestTimeoutMs `timeoutMs`. */
async function nodesTimed(t: Test, timeoutMs: number, ...names: string[]): Promise<{ engine: MemoryEngine; ns: TestNode[] }> {
  const engine = new MemoryEngine();
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const ns: TestNode[] = [];
  for (const n of names) ns.push(await node(engine, n, 'default', timeoutMs, 60_000));
  t.teardown(() => Promise.all(ns.map((n) => n.store.close())));
  await first.close();
  return { engine, ns };
}

/** The node's link, whose re-assertions a test wraps. */
const linkOf = (n: TestNode): { reassert: StoreLink['reassert'] } => n.sf.link as unknown as { reassert: StoreLink['reassert'] };

// p1 holds [0,10) on a when the engine loses its data. a's re-assertion applies, but its reply
// is lost; the engine's grace period ends before a's next try, which is refused ('late'). a
// counts p1's lock lost (its handle's I/O fails until it closes), yet the engine holds it, under
// a's live session. p1 closes the file. Before the change every close asked the engine, and the
// close released the lock; now the re-assertion marked the cache exact (ownExact) and the close
// is answered without the engine: the lock stays held in the engine for as long as a's session
// lives, and no other node can ever take [0,10). The kernel: after close(), nothing of p1 is held.
t.test("a re-assertion whose reply is lost and whose retry comes too late: p1's close leaves its lock held in the engine", async (t) => {
  const { engine, ns } = await nodes(t, 'a', 'b');
  const [a, b] = ns as [TestNode, TestNode];
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's write lock of [0,10)"), { result: 0 }, 'p1 writes [0,10)');
  const link = linkOf(a);
  const orig = link.reassert.bind(link);
  let tries = 0;
  let second!: (r: ReassertReply) => void;
  const secondReply = new Promise<ReassertReply>((r) => (second = r));
  link.reassert = async (f, records, edges) => {
    const r = await orig(f, records, edges);
    if (++tries === 1) {
      // Applied; the reply is lost, and the grace period ends before the next try.
      engine.endGrace();
      return { ok: false, reason: 'unreachable', error: 'the reply was lost' };
    }
    second(r);
    return r;
  };
  const bWas = b.store.session().epoch;
  const { old, epoch } = await resetEngine(engine, a, b);
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  b.lease[1] = b.store.session().epoch;
  b.sf.adopt(b.store.session().epoch, bWas, 60_000);
  t.match(await within(secondReply, BUDGET_MS, "a's second re-assertion"), { ok: false, reason: 'late' }, 'the retry is refused: too late');
  await endGrace(engine, a, b);
  t.same(await held(engine), [`a|${epoch} held write p1 0-9`], "the engine holds p1's lock under a's live session (the first try applied)");
  // p1 closes the file: its flush and its release.
  a.sf.run(2, flush('p1'), a.target);
  await answered(a, 2, "p1's flush");
  a.sf.run(3, release(1), a.target);
  await answered(a, 3, "p1's release");
  t.same(await held(engine), [], "p1's close leaves nothing of p1 in the engine");
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "q1's write lock of [0,10)"), { result: 0 }, 'q1 writes [0,10) once p1 closed (EAGAIN: the leak)');
});

// One decision, three tries (86b933d): p1's F_SETLKW of [0,10), which b's q1 holds, on a.
// - try 1 queues waiter W1: it applies, its reply is lost, and its resend finds a fenced for a
//   late renewal, which comes 50 ms later: decided again (Unsure U1, kept in `tries`).
// - try 2 queues waiter W2: it is cut off (never applies), and its resend finds a fenced again:
//   decided again (Unsure U2, in `tries`).
// - try 3 is stale: the missed changes name try 1, which is adopted as the decision's outcome
//   (W1 waits, the request is answered queued) and U1 dropped; U2 stays, though try 2, decided on
//   the same base as try 1, can no longer apply.
// Then q1 unlocks and b's step grants W1: p1's request is answered granted. a's next step learns
// of p1's lock from a stale reply, and takes it for U2's waiter granted elsewhere (grantedAway:
// p1's locks over W2's bytes that p1 did not hold when try 2 was sent): "undone", p1's lock is
// removed, and b's q2 is granted [0,10) while p1 holds it. The kernel: p1's lock is p1's until it
// unlocks.
t.test("a decision's earlier try adopted (86b933d): a later try of unknown fate left behind undoes the grant of the adopted waiter", async (t) => {
  const { ns } = await nodesTimed(t, 2000, 'a', 'b');
  const [a, b] = ns as [TestNode, TestNode];
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "q1's write lock of [0,10)"), { result: 0 }, 'q1 writes [0,10)');
  // a learns of q1's lock first (its copy of /a is the engine's from here).
  a.sf.run(9, lk('p9', 9, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 9, "p9's lock of [100,110)"), { result: 0 });
  let news = 0;
  a.lostResend = 'fenced';
  // The id the harness gives the first step it cuts off: its resend finds a fenced too.
  a.lostIds.add('a.dropped.1');
  a.policy = (s) => (s.id !== undefined ? 'pass' : ++news === 1 ? 'lose' : news === 2 ? 'drop' : 'pass');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW), a.target);
  t.equal(await answered(a, -1, "p1's F_SETLKW queued"), 'queued', "p1's request waits");
  t.equal(news, 3, 'three tries: the first applied (reply lost), the second cut off, the third stale');
  t.same(a.faults, [], 'nothing reported');
  b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK), b.target);
  t.match(await answered(b, 2, "q1's unlock"), { result: 0 });
  t.match(await answered(a, 1, "p1's F_SETLKW, granted by q1's unlock"), { result: 0 }, 'p1 holds [0,10)');
  // a's next step on the file: it learns of p1's lock.
  a.sf.run(2, lk('p8', 8, F_WRLCK, F_SETLK, 200, 10), a.target);
  t.match(await answered(a, 2, "p8's lock of [200,210)"), { result: 0 });
  b.sf.run(3, lk('q2', 2, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 3, "q2's write lock of [0,10)"), { result: -EAGAIN }, 'q2 is refused: p1 holds [0,10)');
  t.same(a.faults, [], 'nothing undone');
});

// p1's F_SETLKW of [0,10), which b's q1 holds: a's first try is cut off (it never reaches the
// engine) and its resend finds a fenced for a late renewal; decided again, the second try commits
// (W2 waits). q1 unlocks, b's step grants W2, and a's next step learns of p1's lock: it is taken
// for the first try's waiter granted elsewhere (grantedAway), and a fault says a step "had applied
// after all, and another node granted its waiter; it could not be undone ... its owner may hold
// them until it closes the file", of a step that never applied. Nothing is undone (the committed
// try tangled it), but the application is told of a fault that did not happen.
t.test("a try cut off, then a try that commits: the grant of the committed try's waiter is not reported as a step that applied after all", async (t) => {
  const { ns } = await nodesTimed(t, 2000, 'a', 'b');
  const [a, b] = ns as [TestNode, TestNode];
  b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "q1's write lock of [0,10)"), { result: 0 }, 'q1 writes [0,10)');
  a.sf.run(9, lk('p9', 9, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 9, "p9's lock of [100,110)"), { result: 0 });
  let news = 0;
  a.lostResend = 'fenced';
  a.lostIds.add('a.dropped.1');
  a.policy = (s) => (s.id !== undefined ? 'pass' : ++news === 1 ? 'drop' : 'pass');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW), a.target);
  t.equal(await answered(a, -1, "p1's F_SETLKW queued"), 'queued', "p1's request waits");
  b.sf.run(2, lk('q1', 1, F_UNLCK, F_SETLK), b.target);
  t.match(await answered(b, 2, "q1's unlock"), { result: 0 });
  t.match(await answered(a, 1, "p1's F_SETLKW, granted by q1's unlock"), { result: 0 }, 'p1 holds [0,10)');
  a.sf.run(2, lk('p8', 8, F_WRLCK, F_SETLK, 200, 10), a.target);
  t.match(await answered(a, 2, "p8's lock of [200,210)"), { result: 0 });
  t.same(a.faults, [], 'no step is reported applied that never reached the engine');
});
