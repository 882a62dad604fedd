/**
 * A file's actor over a shared engine whose reply to a step is lost after the step applied (the
 * engine ran it; the node heard nothing): what that step decided for other requests (here, the
 * grant of a waiter of the same node) must still reach them once the node learns the step
 * applied, whether the decision then gave up, decided again (fenced for a late renewal), learned
 * it from the whole record set (the log no longer reaching back), or had no request behind it
 * (a reaping step). Before, that waiter waited for ever. The same for a waiter such a step ended
 * (a timeout's cancel) when only the whole record set is left to tell: its record is gone and no
 * grant by another node explains it. Real SharedFiles over a MemoryEngine;
 * the link in between loses the chosen reply. Every wait is for an answer, within a budget.
 */
import t, { type Test } from 'tap';
import { endedByFile, type StoreLink } from '../../src/actors/shared-file.js';
import { SharedFiles } from '../../src/actors/shared-files.js';
import type { ReplyTarget } from '../../src/actors/reply-target.js';
import { EAGAIN, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseLock, type Call } from '../../src/core/requests.js';
import { MemoryEngine, memoryStore, type CommitReply, type InboxEvent, type NodeStore, type Step } from '../../src/store/index.js';
import { within } from '../../driver/redis-server.js';

/** How long an answer may take on a loaded machine: the actor's own retries come within a second. */
const BUDGET_MS = 30_000;

type Lose = 'giveup' | 'fenced' | 'full';

interface TestNode {
  store: NodeStore;
  sf: SharedFiles;
  lease: Float64Array;
  /** The next new step's reply is lost once it applied (and `then` runs before the loss is told). */
  trap?: { then?: () => Promise<void> };
  lost?: string;
  /** How the lost step's resends fare: 'fenced' = the first finds a late renewal. */
  lose?: Lose;
  /** Every step is refused as 'unreachable' and not applied (the node cut off). */
  drop?: boolean;
  /** Called with each step refused while cut off (drop). */
  onDropped?: (step: Step & { id?: string }) => void;
  /** Called with each reply to a step that reached the engine. */
  onReply?: (r: CommitReply) => void;
  /** Inbox events held back while set (the node's reader slow), delivered by release(). */
  held?: InboxEvent[];
  release(): void;
  answers: Map<number, Promise<unknown>>;
  /** Request `id`'s answer (-id: its waiter queued). */
  answer(id: number): Promise<unknown>;
  target: ReplyTarget;
}

async function node(engine: MemoryEngine, name: string): Promise<TestNode> {
  let sf!: SharedFiles;
  const deliver = (es: readonly InboxEvent[]) => {
    for (const [p, e] of endedByFile(es)) sf.ended(p, e);
  };
  const store = await memoryStore({ onEvents: (es) => (n.held !== undefined ? n.held.push(...es) : deliver(es)) }, { engine, node: name, graceMs: 0 });
  const lease = new Float64Array(new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT));
  lease[0] = Number.POSITIVE_INFINITY;
  lease[1] = store.session().epoch;
  const n = { store, lease, answers: new Map(), target: undefined as unknown as ReplyTarget } as TestNode;
  n.release = () => {
    const es = n.held ?? [];
    n.held = undefined;
    deliver(es);
  };
  let dropped = 0;
  const link: StoreLink = {
    commit: async (step: Step & { id?: string }): Promise<CommitReply> => {
      if (n.drop === true) {
        n.onDropped?.(step);
        return { ok: false, reason: 'unreachable', step: step.id ?? `${name}.dropped.${++dropped}`, error: 'cut off' };
      }
      const trap = n.trap;
      if (trap !== undefined && step.id === undefined) {
        const r = await store.commit(step);
        if (!r.ok) return r;
        n.trap = undefined;
        n.lost = r.step;
        await trap.then?.();
        return { ok: false, reason: 'unreachable', step: r.step, error: 'the reply was lost' };
      }
      if (step.id !== undefined && step.id === n.lost) {
        if (n.trap === undefined && n.lose === 'fenced') {
          // Its resend finds the node fenced for a late renewal, which comes soon after.
          lease[0] = performance.timeOrigin + performance.now() - 1;
          setTimeout(() => (lease[0] = Number.POSITIVE_INFINITY), 50);
          return { ok: false, reason: 'fenced' };
        }
        return { ok: false, reason: 'unreachable', step: step.id, error: 'the reply was lost' };
      }
      const r = await store.commit(step);
      n.onReply?.(r);
      return r;
    },
    reassert: (f, records, edges) => store.reassert(f, records, edges),
    reaches: (pairs) => store.reaches(pairs, false),
  };
  sf = new SharedFiles(link, { node: name, policy: 'default', requestTimeoutMs: 300, lease: lease.buffer as SharedArrayBuffer, epoch: store.session().epoch }, {}, () => {});
  n.sf = sf;
  const waiting = new Map<number, (v: unknown) => void>();
  n.answer = (id: number) => {
    let p = n.answers.get(id);
    if (p === undefined) {
      p = new Promise((r) => waiting.set(id, r));
      n.answers.set(id, p);
    }
    return p;
  };
  n.target = {
    answer: (id: number, _path: string, res: unknown) => {
      void n.answer(id);
      waiting.get(id)?.(res);
    },
    queued: (id: number) => {
      void n.answer(-id);
      waiting.get(-id)?.('queued');
    },
  } as unknown as ReplyTarget;
  return n;
}

const answered = (n: TestNode, id: number, what: string) => within(n.answer(id), BUDGET_MS, what);

/** Nodes a and b over one engine: b's owner q1 holds [0,10) of /a, a's p2 waits for it (F_SETLKW). */
async function bHoldsAWaits(t: Test): Promise<{ engine: MemoryEngine; a: TestNode; b: TestNode }> {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lock('q1', 1, F_WRLCK, F_SETLK), b.target);
  t.match(await answered(b, 1, "b's lock"), { result: 0 }, 'b holds [0,10)');
  a.sf.run(2, lock('p2', 2, F_WRLCK, F_SETLKW), a.target);
  await answered(a, -2, "a's waiter queued");
  return { engine, a, b };
}

/** `store` makes more steps on /a than the engine's log keeps (each record it puts it removes). */
async function overflowLog(engine: MemoryEngine, store: NodeStore): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const put = await store.commit({ file: '/a', base: (await engine.load('/a')).version, put: [{ id: `x${i}`, state: 'held', data: 'removed in the next step' }] });
    const rm = await store.commit({ file: '/a', base: (await engine.load('/a')).version, remove: [`x${i}`] });
    if (!put.ok || !rm.ok) throw new Error(`the steps that fill the log: ${JSON.stringify([put, rm])}`);
  }
}
const lock = (owner: string, pid: number, type: number, cmd: number): Call => parseLock({ path: '/a', lockType: type, cmd, lockOwner: owner, lockStart: 0, lockLen: 10, lockPid: pid, fileHandle: pid });

for (const lose of ['giveup', 'fenced', 'full'] as const) {
  t.test(`a release's step applies, its reply is lost (${lose}): the waiter of the same node it granted is answered`, async (t) => {
    const engine = new MemoryEngine();
    const a = await node(engine, 'a');
    t.teardown(() => a.store.close());
    a.lose = lose;
    a.sf.run(1, lock('p1', 1, F_WRLCK, F_SETLK), a.target);
    t.match(await answered(a, 1, "p1's lock"), { result: 0 }, 'p1 holds [0,10)');
    a.sf.run(2, lock('p2', 2, F_WRLCK, F_SETLKW), a.target);
    await answered(a, -2, "p2's waiter queued");
    let then: (() => Promise<void>) | undefined;
    if (lose === 'full') {
      // Another node makes more steps on the file than the engine's log keeps: the node learns of
      // them from the whole record set, which names no step.
      const b = await memoryStore({}, { engine, node: 'b', graceMs: 0 });
      t.teardown(() => b.close());
      then = () => overflowLog(engine, b);
    }
    a.trap = { then };
    a.sf.run(3, lock('p1', 1, F_UNLCK, F_SETLK), a.target);
    await answered(a, 3, "p1's unlock");
    t.same((await engine.load('/a')).records.map((r) => r.state), ['held'], "the engine: p2's waiter turned into the lock (the step applied)");
    t.match(await answered(a, 2, "p2's F_SETLKW"), { result: 0 }, "p2's F_SETLKW is granted");
  });
}

t.test("a reaping step applies, its reply is lost: the waiter of the reaping node it granted is answered, with no request behind it", async (t) => {
  const { engine, a, b } = await bHoldsAWaits(t);
  const s = b.store.session();
  await engine.endSession({ node: 'b', epoch: s.epoch, incarnation: s.incarnation });
  a.trap = {};
  await a.sf.reap('/a', [{ node: 'b', epoch: s.epoch }]);
  t.match(await answered(a, 2, "a's F_SETLKW"), { result: 0 }, "a's F_SETLKW is granted once a learns that its reaping step applied");
});

t.test("a cancel's step that never applied, its waiter granted by another node meanwhile: the whole record set proves nothing, the grant's answer stands", async (t) => {
  const { engine, a, b } = await bHoldsAWaits(t);
  // a is cut off, its inbox reader slow: its cancel of p2's waiter (a timeout) never applies.
  a.drop = true;
  a.held = [];
  // The cancel's step, sent again by id until its deadline; then given up on, the file owes a
  // step, which comes by itself as a new one: the second new step seen.
  let fresh = 0;
  const gaveUp = new Promise<void>((r) => (a.onDropped = (step) => step.id === undefined && ++fresh === 2 && r()));
  a.sf.cancel(2, 'timeout');
  await within(gaveUp, BUDGET_MS, 'the cancel given up on, and the owed step after it');
  t.equal(a.answers.has(2), false, "p2's timeout is not answered: its step got no reply");
  // b's unlock grants p2's waiter; then more steps on the file than the engine's log keeps.
  b.sf.run(3, lock('q1', 1, F_UNLCK, F_SETLK), b.target);
  t.match(await answered(b, 3, "b's unlock"), { result: 0 }, "b's unlock grants a's waiter");
  await overflowLog(engine, b.store);
  // a reaches the engine again: its owed step learns the whole record set (p2's waiter gone,
  // granted) before its inbox hands it b's event.
  const healed = new Promise<CommitReply>((r) => (a.onReply = (x) => !x.ok && x.reason === 'stale' && x.records !== undefined && r(x)));
  a.drop = false;
  await within(healed, BUDGET_MS, "a's stale reply with the whole record set");
  // A step of a commits before the event comes: the cancel given up on can no longer apply, yet
  // the waiter it ended is gone because b granted it (p2 holds new bytes), not because it did.
  a.sf.run(4, parseLock({ path: '/a', lockType: F_WRLCK, cmd: F_SETLK, lockOwner: 'p3', lockStart: 20, lockLen: 10, lockPid: 3, fileHandle: 3 }), a.target);
  t.match(await answered(a, 4, "p3's lock on [20,30)"), { result: 0 }, "a's next step commits");
  t.equal(a.answers.has(2), false, "p2's F_SETLKW is not answered before its grant's event");
  a.release();
  t.match(await answered(a, 2, "p2's F_SETLKW"), { result: 0 }, "p2's F_SETLKW is answered granted (it holds the lock), not with its timeout's code");
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['a:held', 'a:held'], 'the engine: p2 holds [0,10), p3 [20,30)');
});

t.test("a cancel's step applies, its reply is lost, and the log no longer reaches back: the request is answered with its timeout's code", async (t) => {
  const { engine, a, b } = await bHoldsAWaits(t);
  // The cancel's step (a timeout) removes p2's waiter and nothing else: no record it minted can
  // show that it applied. Meanwhile b makes more steps on the file than the engine's log keeps.
  a.lose = 'full';
  const then = (): Promise<void> => overflowLog(engine, b.store);
  a.trap = { then };
  a.sf.cancel(2, 'timeout');
  t.match(await answered(a, 2, "p2's F_SETLKW"), { result: -EAGAIN }, "p2's F_SETLKW ends with its timeout's code once a learns its waiter is gone");
  t.same((await engine.load('/a')).records.map((r) => `${r.node}:${r.state}`), ['b:held'], "the engine: only b's lock; p2's waiter went with the cancel");
  // The file serves on: b's unlock, then a's new lock.
  b.sf.run(3, lock('q1', 1, F_UNLCK, F_SETLK), b.target);
  t.match(await answered(b, 3, "b's unlock"), { result: 0 });
  a.sf.run(4, lock('p2', 2, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 4, "p2's new lock"), { result: 0 }, 'p2 locks [0,10) again');
});
