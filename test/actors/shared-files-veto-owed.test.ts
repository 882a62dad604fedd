/**
 * A live worker's veto of a judged grant whose release the engine does not answer (SharedFiles.ended,
 * SharedFile.confirmRemote, issue 13). Invariant: a request answered while its grant's release is
 * still owed was told 'owed' first, and is told 'written' only once that release is in the engine,
 * so that its caller keeps it until then and, if the worker dies, sends it to a replacement, which
 * releases the grant; the engine ends up without the grant and with what the owner held before.
 * Before the fix the veto's release was owed under no request: its caller was never told owed (a
 * vetoed request), or told written at once after the judgment (one that timed out while judged),
 * and a worker death before the release was written left the grant in the engine for no caller.
 * Model: nodes a and b on one MemoryEngine behind the lost-link harness (judged-stage); b's waiter
 * q5 (request 5) is granted by a's release; b's hook answers once b is cut off from the engine.
 * Shapes: POSIX with an adjacent lock of the owner before the grant, and a Windows LockFileEx with
 * another lock of its handle before; the hook vetoes, or approves after the request timed out.
 */
import t, { type Test } from 'tap';
import { EAGAIN, ERROR_LOCK_VIOLATION, F_SETLK, F_WRLCK } from '../../src/core/codes.js';
import { cancelResult } from '../../src/core/lock-table.js';
import { BUDGET_MS, answered, code, until, type S } from './lost-link.js';
import { engineIs, held } from './reset-harness.js';
import { P, recorder, shapes, stage, windows, windowsRecords, type Shape, type Stage } from './judged-stage.js';

const kinds = { posix: 'posix, an adjacent lock of the owner before', windows: 'windows, another lock of the handle before' } as const;

/** The shape of `kind`, with its Windows records as the engine writes them, and the records once the grant is released. */
async function shapeOf(kind: keyof typeof kinds): Promise<{ shape: Shape; after: string[] }> {
  const { shape, after } = shapes[kinds[kind]]!;
  if (kind === 'posix') return { shape, after };
  const s = { ...shape, granted: await windowsRecords(shape, true) };
  return { shape: s, after: await windowsRecords(shape, false) };
}

const vetoOf = (s: Shape): number => (windows(s) ? ERROR_LOCK_VIOLATION : -EAGAIN);

interface Judged {
  st: Stage;
  shape: Shape;
  after: string[];
  /** The hook's answer. */
  answer: (v: number) => void;
  /** Steps b sent while cut off. */
  cutOff: S[];
}

/** The stage: b's hook asked for q5's grant, its answer held back. */
async function judged(t: Test, kind: keyof typeof kinds): Promise<Judged> {
  const { shape, after } = await shapeOf(kind);
  let answer!: (v: number) => void;
  const verdict = new Promise<number>((r) => (answer = r));
  const st = await stage(t, shape, undefined, verdict);
  return { st, shape, after, answer, cutOff: [] };
}

/** b is cut off from the engine: every step it sends is dropped, and kept in `j.cutOff`. */
function cut(j: Judged): void {
  j.st.b.policy = (step) => {
    j.cutOff.push(step);
    return 'drop';
  };
}

/**
 * Resolves once b tried its owed release again after giving it up: a step with another deadline
 * than the first one cut off. The judgment's steps and its release share one deadline (the
 * release, overdue, is owed at once), so by then the judgment is over; the owed try comes on a timer.
 */
async function triedAgain(j: Judged): Promise<void> {
  await until(() => j.cutOff.length > 0 && j.cutOff.some((s) => s.deadline !== j.cutOff[0]!.deadline), BUDGET_MS, "b's owed release tried again");
}

/** The deadlines of the steps b sent while cut off, one each. */
const deadlines = (j: Judged): number => new Set(j.cutOff.map((s) => s.deadline)).size;

/** a's lock of [0,10) once the grant is gone: granted. */
async function aLocksFreed(t: Test, st: Stage): Promise<void> {
  st.a.sf.run(20, P('p3', 3, F_WRLCK, F_SETLK, 0, 10), st.a.target);
  t.equal(code(await answered(st.a, 20, "a's lock of the grant's bytes")), 0, "a locks the grant's bytes: the grant is gone");
}

for (const kind of ['posix', 'windows'] as const) {
  t.test(`${kind}: vetoed with the engine answering: neither owed nor written told, the grant released at once`, async (t) => {
    const j = await judged(t, kind);
    const veto = vetoOf(j.shape);
    j.answer(veto);
    t.equal(code(await answered(j.st.b, 5, 'request 5 vetoed')), veto, `request 5 answered the hook's ${veto}`);
    t.same(await held(j.st.engine), j.after, 'the grant released before the answer, what the owner held before kept');
    t.same(j.st.told, [`answer 5 ${veto}`], 'only the answer told');
    t.same(j.st.b.faults, [], 'no fault reported');
  });

  t.test(`${kind}: vetoed while cut off: told owed before the answer, written once the release is in the engine`, async (t) => {
    const j = await judged(t, kind);
    const veto = vetoOf(j.shape);
    cut(j);
    j.answer(veto);
    t.equal(code(await answered(j.st.b, 5, 'request 5 vetoed')), veto, `request 5 answered the hook's ${veto}`);
    t.same(j.st.told, ['owed 5', `answer 5 ${veto}`], 'told owed, then answered');
    t.equal(deadlines(j), 1, `the steps before the answer went for one deadline: the release, overdue with the judgment's step, was owed at once (${deadlines(j)} deadlines)`);
    await triedAgain(j);
    t.same(j.st.told, ['owed 5', `answer 5 ${veto}`], 'not told written while the release is owed');
    t.same(await held(j.st.engine), j.shape.granted, 'the grant still in the engine');
    j.st.b.policy = () => 'pass';
    await engineIs(j.st.engine, j.after, 'the grant released once the engine answers b again, what the owner held before kept');
    await until(() => j.st.told.includes('written 5'), BUDGET_MS, "request 5's release told written");
    t.same(j.st.told, ['owed 5', `answer 5 ${veto}`, 'written 5'], 'written told once, after the answer');
    await aLocksFreed(t, j.st);
    t.same(j.st.b.faults, [], 'no fault reported');
  });

  t.test(`${kind}: vetoed while cut off, then b's worker dies: resent 'judged' cancelled 'abort', the replacement releases the grant`, async (t) => {
    const j = await judged(t, kind);
    const veto = vetoOf(j.shape);
    cut(j);
    j.answer(veto);
    t.equal(code(await answered(j.st.b, 5, 'request 5 vetoed')), veto, `request 5 answered the hook's ${veto}`);
    t.same(j.st.told, ['owed 5', `answer 5 ${veto}`], 'told owed (its caller keeps it), then answered');
    // The worker dies with the release owed; the caller resends the request as coordinator
    // recover does an owed one: 'judged' with what the owner held before, cancelled 'abort'.
    const r = j.st.b.replaceWorker({ approve: () => 0 });
    j.st.b.policy = () => 'pass';
    const told: string[] = [];
    j.st.b.answers.delete(5);
    r.judged(5, j.st.before, 'abort');
    r.run(5, j.st.call, recorder(j.st.b, told));
    const aborted = cancelResult('abort', windows(j.shape));
    t.equal(code(await answered(j.st.b, 5, 'request 5 on the replacement')), aborted, `answered ${aborted} there (the caller drops it: answered already)`);
    await engineIs(j.st.engine, j.after, 'the grant released by the replacement, what the owner held before kept');
    t.same(told, [`answer 5 ${aborted}`], 'the replacement wrote the release before its answer: neither owed nor written told');
    t.notOk(j.st.told.includes('written 5'), 'the dead worker never told written');
    await aLocksFreed(t, j.st);
    t.same(j.st.b.faults, [], 'no fault reported');
  });

  t.test(`${kind}: timed out while judged, the hook approving after, cut off: written told only once the release is in the engine`, async (t) => {
    const j = await judged(t, kind);
    const timedOut = cancelResult('timeout', windows(j.shape));
    j.st.b.sf.cancel(5, 'timeout');
    t.equal(code(await answered(j.st.b, 5, 'request 5 timed out')), timedOut, `request 5 answered ${timedOut} at once`);
    t.same(j.st.told, ['owed 5', `answer 5 ${timedOut}`], 'told owed, then answered');
    cut(j);
    // Approved, but its request ended: the grant goes as a veto's (API.md).
    j.answer(0);
    await triedAgain(j);
    t.comment(JSON.stringify(j.cutOff.map((s) => [s.deadline, s.put?.length, s.remove?.length, s.id])), JSON.stringify(j.st.told));
    t.same(j.st.told, ['owed 5', `answer 5 ${timedOut}`], 'not told written while the release is owed');
    t.same(await held(j.st.engine), j.shape.granted, 'the grant still in the engine');
    j.st.b.policy = () => 'pass';
    await engineIs(j.st.engine, j.after, 'the grant released once the engine answers b again');
    await until(() => j.st.told.includes('written 5'), BUDGET_MS, "request 5's release told written");
    t.same(j.st.told, ['owed 5', `answer 5 ${timedOut}`, 'written 5'], 'written told once');
    await aLocksFreed(t, j.st);
    t.same(j.st.b.faults, [], 'no fault reported');
  });
}
