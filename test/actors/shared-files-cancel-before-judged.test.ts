/**
 * A cancel of a waiter whose grant by another node's step this node's approval hook is to judge,
 * arriving after the grant was read from the inbox (stood in) but before the judgment's turn in the
 * file's mailbox (SharedFiles.ended, cancel; issue 13). Invariant: such a request counts as judged
 * from the moment its grant is read: the cancel ends it at once (told owed first, as a cancel while
 * judged is), its hook is never asked, and at the judgment's turn the grant goes as a veto's
 * (released, 'written' told after). Before the fix it counted as judged only from its turn: the
 * cancel waited for every job ahead (another waiter's hook, a step the engine does not answer),
 * then the hook was asked for an ended request and the request answered its verdict, not the cancel.
 * Model: nodes a and b on one MemoryEngine (lost-link harness); b's mailbox on /a is held by b's
 * own request 8, whose step waits at the link until the test lets it go; b's waiter q5 (request 5)
 * is granted by a's release meanwhile. The cancel (a timeout) comes after the grant is read, or
 * before it (queued in the mailbox then); a POSIX waiter, and a Windows LockFileEx.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { Call } from '../../src/core/requests.js';
import { cancelResult } from '../../src/core/lock-table.js';
import { BUDGET_MS, MemoryEngine, STEP_MS, answered, code, holdAtLink, lf, lw, node, uf, until, within } from './lost-link.js';
import { engineIs, held } from './reset-harness.js';
import { P, recorder } from './judged-stage.js';

/** Each family's calls: a's lock and release of [0,10), b's waiter on it (request 5) and b's request 8 on [50,60), a's later lock of [0,10); `owner`: how the hook's event names the waiter's owner. */
const families: Record<'posix' | 'windows', { aLock: Call; aRelease: Call; wait: Call; other: Call; aLater: Call; owner: (e: Readonly<Record<string, unknown>>) => string; waiter: string; granted: string; rest: string }> = {
  posix: {
    aLock: P('p1', 1, F_WRLCK, F_SETLK, 0, 10),
    aRelease: P('p1', 1, F_UNLCK, F_SETLK, 0, 10),
    wait: P('q5', 5, F_WRLCK, F_SETLKW, 0, 10),
    other: P('q8', 8, F_WRLCK, F_SETLK, 50, 10),
    aLater: P('p3', 3, F_WRLCK, F_SETLK, 0, 10),
    owner: (e) => String(e.lockOwner),
    waiter: 'q5',
    granted: 'b held write q5 0-9',
    rest: 'b held write q8 50-59',
  },
  windows: { aLock: lf(1, 0, 10), aRelease: uf(1, 0, 10), wait: lw(7, 0, 10), other: lf(8, 50, 10), aLater: lf(3, 0, 10), owner: (e) => String(e.handle), waiter: '7', granted: 'b held write 7 0-9', rest: 'b held write 8 50-59' },
};

for (const [family, when] of (['posix', 'windows'] as const).flatMap((f) => (['after', 'before'] as const).map((w) => [f, w] as const))) {
  t.test(`${family}: a timeout ${when} b reads the grant of its waiter, its judgment behind a job that holds the mailbox: answered at once, the hook not asked, the grant released`, async (t) => {
    const c = families[family];
    const windows = family === 'windows';
    const engine = new MemoryEngine();
    const asked: string[] = [];
    const a = await node(engine, 'a', 'default', STEP_MS, 0);
    const b = await node(engine, 'b', 'default', STEP_MS, 0, {
      approve: (_family, e) => {
        asked.push(c.owner(e));
        return 0;
      },
    });
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    a.sf.run(1, c.aLock, a.target);
    t.equal(code(await answered(a, 1, "a's lock")), 0, 'a locks [0,10)');
    const told: string[] = [];
    b.sf.run(5, c.wait, recorder(b, told));
    t.equal(await answered(b, -5, "q5's waiter queued"), 'queued', "b's request 5 waits");
    // b's request 8 holds the mailbox: its step waits at the link until `release`.
    const { atLink, release } = holdAtLink(b);
    b.sf.run(8, c.other, b.target);
    await within(atLink, BUDGET_MS, "b's request 8 at the link");
    b.held = [];
    a.sf.run(9, c.aRelease, a.target);
    t.equal(code(await answered(a, 9, "a's release")), 0, "a's release grants b's waiter");
    await until(() => (b.held?.length ?? 0) > 0, BUDGET_MS, "b's inbox has the grant");
    t.same(await held(engine), [c.granted], 'the engine holds the grant');
    asked.length = 0;
    if (when === 'before') b.sf.cancel(5, 'timeout');
    b.release();
    if (when === 'after') b.sf.cancel(5, 'timeout');
    const timedOut = cancelResult('timeout', windows);
    try {
      t.equal(code(await answered(b, 5, "request 5's timeout, request 8 still at the link")), timedOut, `request 5 answered the timeout's ${timedOut}`);
      t.notOk(b.got.has(8), 'before the job ahead of its judgment ended');
      t.same(told, ['owed 5', `answer 5 ${timedOut}`], 'told owed, then answered');
    } finally {
      release();
    }
    t.equal(code(await answered(b, 8, "b's request 8")), 0, "b's request 8 granted once the link lets it go");
    await engineIs(engine, [c.rest], "the waiter's grant released at its judgment's turn: only request 8's lock left");
    await until(() => told.includes('written 5'), BUDGET_MS, "request 5's release told written");
    t.same(told, ['owed 5', `answer 5 ${timedOut}`, 'written 5'], 'written told once, after the answer');
    t.notOk(asked.some((o) => o.includes(c.waiter)), "the waiter's grant never shown to the hook");
    a.sf.run(20, c.aLater, a.target);
    t.equal(code(await answered(a, 20, "a's lock of the grant's bytes")), 0, "a locks the grant's bytes: the grant is gone");
    t.same(b.faults, [], 'no fault reported');
  });
}
