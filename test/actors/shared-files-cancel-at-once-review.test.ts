/**
 * Review of "a cancel is answered at once while the engine does not answer" (SharedFiles.cancel,
 * answerCancels, SharedFile.cancelAnswered(rid, now)): node-wide silence learned on another file,
 * a grant by another node of the waiter answered cancelled, a decision of the same file whose step
 * is out (rebuild), and the silence ending once the engine answers again. Real SharedFiles over a
 * MemoryEngine behind the lost-link harness; a's requestTimeoutMs is a minute, so a step held
 * back outlasts every wait here (each waits for an answer or an engine state, within BUDGET_MS).
 */
import t from 'tap';
import { ERROR_OPERATION_ABORTED } from '../../src/core/codes.js';
import type { S, TestNode } from './lost-link.js';
import { answered, lf, lw, uf } from './lost-link.js';
import { conflicts, engineIs, held, until } from './reset-harness.js';
import { twoNodes } from './stages.js';

const MINUTE = 60_000;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** a reaches the engine again for /x: its owed unlock of /x commits (the file's decisions end). */
async function healX(a: TestNode, never: { open: () => void }): Promise<void> {
  a.policy = () => 'pass';
  never.open();
  await until(() => a.log.some((l) => l.includes('"remove"') && l.endsWith('-> ok')), "a's owed unlock of /x, committed");
  await answered(a, 3, "a's unlock of /x");
}

/** Records every answer a's target gives, by request id. */
function recordTold(target: { answer: (...a: never[]) => void }): Map<number, unknown[]> {
  const told = new Map<number, unknown[]>();
  const tgt = target as unknown as { answer: (i: number, ...rest: unknown[]) => void };
  const answer = tgt.answer.bind(tgt);
  tgt.answer = (i: number, ...rest: unknown[]) => {
    told.set(i, [...(told.get(i) ?? []), rest[1]]);
    answer(i, ...rest);
  };
  return told;
}

t.test("a step of another file got no reply: a cancel on /a is answered at once; b's unlock grants a's waiter in the engine meanwhile: never told, released, /a ends clean", async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'default', MINUTE);
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks /a [0,10)"), 0, 'b holds [0,10)');
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for /a [0,10)");
  a.sf.run(2, lf(9, 0, 10, true, '/x'), a.target);
  t.equal(await answered(a, 2, "a's handle 9 locks /x [0,10)"), 0, 'a holds /x');
  const told = recordTold(a.target);
  // Steps of /x get no reply: the first at once, every later one held back (never answered here).
  const never = gate();
  let xDrops = 0;
  a.policy = (s: S) => (s.file === '/x' ? 'drop' : 'pass');
  a.afterDrop = async (s: S) => {
    if (s.file === '/x' && ++xDrops > 1) await never.wait;
  };
  t.teardown(() => never.open());
  a.sf.run(3, uf(9, 0, 10, '/x'), a.target);
  await until(() => xDrops >= 2, "a's unlock of /x: its step got no reply (sent again, held back)");
  // The cancel of the /a waiter: /a's own path is fine.
  a.sf.cancel(1, 'abort');
  t.equal(await answered(a, 1, "the abort of a's /a waiter"), ERROR_OPERATION_ABORTED, 'answered with its abort code');
  // b's unlock: the engine may grant a's waiter (if a's removal is not in yet).
  b.sf.run(2, uf(1, 0, 10), b.target);
  t.equal(await answered(b, 2, "b's unlock"), 0, "b's unlock");
  t.comment(`engine after b's unlock: ${JSON.stringify(await held(engine))}`);
  await engineIs(engine, [], '/a free: a holds nothing, waits for nothing');
  b.sf.run(3, lf(2, 0, 10), b.target);
  t.equal(await answered(b, 3, "b's handle 2 locks /a [0,10)"), 0, '/a [0,10) free for b');
  t.same(conflicts(await held(engine)), [], 'no two conflicting locks');
  t.same(told.get(1), [ERROR_OPERATION_ABORTED], 'request 1: told once, never granted');
  await healX(a, never);
  t.same(a.faults, [], 'nothing reported (a)');
  t.same(b.faults, [], 'nothing reported (b)');
});

t.test('a cancel answered while a decision of the same file has its step out (not of that waiter): the next decision leaves the waiter out; its removal carried, never granted', async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'default', MINUTE);
  // a's handle 5 holds /a [0,10); a's handle 7 waits for it (request 1).
  a.sf.run(10, lf(5, 0, 10), a.target);
  t.equal(await answered(a, 10, "a's handle 5 locks /a [0,10)"), 0, 'a holds [0,10)');
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for /a [0,10)");
  a.sf.run(2, lf(9, 0, 10, true, '/x'), a.target);
  t.equal(await answered(a, 2, "a's handle 9 locks /x"), 0, 'a holds /x');
  const told = recordTold(a.target);
  const never = gate();
  let xDrops = 0;
  a.policy = (s: S) => (s.file === '/x' ? 'drop' : 'pass');
  a.afterDrop = async (s: S) => {
    if (s.file === '/x' && ++xDrops > 1) await never.wait;
  };
  t.teardown(() => never.open());
  a.sf.run(3, uf(9, 0, 10, '/x'), a.target);
  await until(() => xDrops >= 2, "a's unlock of /x: its step got no reply (sent again, held back)");
  // /a's next step held back at the engine until `go`.
  const go = gate();
  let heldSteps = 0;
  const commit = a.store.commit.bind(a.store);
  a.store.commit = async (s) => {
    if (s.file === '/a' && heldSteps++ === 0) await go.wait;
    return commit(s);
  };
  // a's handle 6 locks /a [20,30): its step is out (held).
  a.sf.run(11, lf(6, 20, 10), a.target);
  await until(() => heldSteps === 1, "a's step for handle 6, held at the engine");
  a.sf.cancel(1, 'abort');
  t.equal(await answered(a, 1, "the abort of a's waiter, while /a's step is out"), ERROR_OPERATION_ABORTED, 'answered at once');
  // Behind: a's unlock of handle 5 (would grant handle 7 if it still waited).
  a.sf.run(12, uf(5, 0, 10), a.target);
  go.open();
  t.equal(await answered(a, 11, "a's handle 6 lock"), 0, 'handle 6 granted');
  t.equal(await answered(a, 12, "a's unlock of handle 5"), 0, 'handle 5 unlocked');
  await engineIs(engine, ['a held write 6 20-29'], "a's waiter removed, handle 5's lock gone, handle 7 granted nothing");
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks /a [0,10)"), 0, '[0,10) free for b');
  t.same(told.get(1), [ERROR_OPERATION_ABORTED], 'request 1: told once, never granted');
  await healX(a, never);
  t.same(a.faults, [], 'nothing reported (a)');
});

t.test("once a's steps are answered again, a cancel is answered after its removal commits (the silence ended)", async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'default', MINUTE);
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks /a [0,10)"), 0, 'b holds [0,10)');
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for /a [0,10)");
  a.sf.run(2, lf(9, 0, 10, true, '/x'), a.target);
  t.equal(await answered(a, 2, "a's handle 9 locks /x"), 0, 'a holds /x');
  // One step of /x gets no reply; every later one passes.
  let drops = 0;
  a.policy = (s: S) => (s.file === '/x' && drops++ === 0 ? 'drop' : 'pass');
  a.sf.run(3, uf(9, 0, 10, '/x'), a.target);
  await answered(a, 3, "a's unlock of /x (owed)");
  // The owed unlock reaches the engine: a step of a answered since.
  await until(() => a.log.some((l) => l.includes('"remove"') && l.endsWith('-> ok')), "a's owed unlock of /x, committed");
  let atAnswer: string[] | undefined;
  const answer = a.target.answer.bind(a.target);
  a.target.answer = (i, path, res, waitedMs, flockDrop, getlk) => {
    if (i === 1) void held(engine).then((h) => (atAnswer = h));
    answer(i, path, res, waitedMs, flockDrop, getlk);
  };
  a.sf.cancel(1, 'abort');
  t.equal(await answered(a, 1, "the abort of a's waiter"), ERROR_OPERATION_ABORTED, 'abort code');
  await until(() => atAnswer !== undefined, 'the engine read at the answer');
  t.same(atAnswer, ['b held write 1 0-9'], "the waiter's removal committed when its cancel was answered");
  t.same(a.faults, [], 'nothing reported (a)');
});

t.test("a's unlock that grants its own waiter applies unseen (reply lost), then a is cut off: the waiter's cancel is told once, and the engine ends as told", async (t) => {
  const { engine, a } = await twoNodes(t);
  a.sf.run(10, lf(5, 0, 10), a.target);
  t.equal(await answered(a, 10, "a's handle 5 locks /a [0,10)"), 0, 'a holds [0,10)');
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for /a [0,10)");
  const told = recordTold(a.target);
  // The unlock's step applies (handle 7 granted in the engine), its reply lost; every later step of a is cut off.
  let n = 0;
  a.policy = () => (n++ === 0 ? 'lose' : 'drop');
  a.sf.run(11, uf(5, 0, 10), a.target);
  await answered(a, 11, "a's unlock of handle 5 (its reply lost: answered at its deadline)");
  t.same(await held(engine), ['a held write 7 0-9'], "the engine granted handle 7 (a does not know)");
  a.sf.cancel(1, 'abort');
  const first = await answered(a, 1, "request 1's answer (its cancel, or its grant)");
  t.comment(`request 1 told ${JSON.stringify(first)} while cut off`);
  // a reaches the engine again.
  a.lostIds.clear();
  a.policy = () => 'pass';
  await until(() => a.log.length > 2, 'a step of a reaching the engine again');
  const want = first === 0 ? ['a held write 7 0-9'] : [];
  await engineIs(engine, want, `the engine as request 1 was told (${JSON.stringify(first)})`);
  t.same(told.get(1), [first], 'request 1: told once');
  t.same(a.faults, [], 'nothing reported (a)');
});

t.test("a fenced (its renewal late): a cancel is answered at once; b's unlock grants a's waiter meanwhile; once renewed, the grant is undone, never told", async (t) => {
  const { engine, a, b } = await twoNodes(t, {}, 'default', MINUTE);
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks /a [0,10)"), 0, 'b holds [0,10)');
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for /a [0,10)");
  const told = recordTold(a.target);
  a.lease[0] = performance.timeOrigin + performance.now() - 1;
  a.sf.cancel(1, 'abort');
  t.equal(await answered(a, 1, "the abort of a's waiter while fenced"), ERROR_OPERATION_ABORTED, 'answered at once');
  b.sf.run(2, uf(1, 0, 10), b.target);
  t.equal(await answered(b, 2, "b's unlock"), 0, "b's unlock");
  t.comment(`engine after b's unlock: ${JSON.stringify(await held(engine))}`);
  a.lease[0] = Number.POSITIVE_INFINITY;
  await engineIs(engine, [], '/a free once a is renewed');
  t.same(told.get(1), [ERROR_OPERATION_ABORTED], 'request 1: told once, never granted');
  t.same(a.faults, [], 'nothing reported (a)');
  t.same(b.faults, [], 'nothing reported (b)');
});
