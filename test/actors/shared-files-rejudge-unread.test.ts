/**
 * A replacement worker judges again a grant its predecessor died judging (SharedFiles 'judged',
 * SharedFile.rejudge; issue 13), and its first read of the file gets no reply from the engine.
 * Model: nodes a and b on one MemoryEngine behind the lost-link harness; b's approval hook judges
 * grants of its waiters by other nodes' steps. b's waiter q5 is granted [0,10) by a's unlock; b's
 * hook never answers; b's worker dies and its replacement, cut off from the engine, is asked q5
 * again ('judged'). Invariant: whatever the replacement answers q5, the engine ends up holding the
 * lock only if q5 was told it holds it: a grant whose request was answered a failure is released
 * once the engine answers again, so a's next lock of the bytes is not refused for ever.
 */
import t from 'tap';
import { EINTR, ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { BUDGET_MS, MemoryEngine, STEP_MS, answered, code, lk, node, until, within } from './lost-link.js';
import { engineIs, held } from './reset-harness.js';

for (const cancelled of [false, true]) {
  t.test(`the replacement's re-read of a judged grant gets no reply${cancelled ? ', the request told ended' : ''}: its grant goes once the engine answers`, async (t) => {
    const engine = new MemoryEngine();
    // Armed once q5 waits: b's hook approves b's own decisions before (on a cache not yet read, q5's
    // first decision grants it, and its step is refused as stale), and never answers after.
    let armed = false;
    let asked!: () => void;
    const hookAsked = new Promise<void>((r) => (asked = r));
    const a = await node(engine, 'a', 'default', STEP_MS, 0);
    const b = await node(engine, 'b', 'default', STEP_MS, 0, {
      approve: () => {
        if (!armed) return 0;
        asked();
        return new Promise<number>(() => {});
      },
    });
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
    t.equal(code(await answered(a, 1, "p1's lock of [0,10)")), 0, 'a p1 writes [0,10)');
    b.sf.run(5, lk('q5', 5, F_WRLCK, F_SETLKW), b.target);
    t.equal(await answered(b, -5, "q5's waiter queued"), 'queued', 'b q5 waits for [0,10)');
    armed = true;
    a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
    t.equal(code(await answered(a, 2, "p1's unlock")), 0, 'a p1 unlocks: its step grants q5');
    await within(hookAsked, BUDGET_MS, "b's hook asked for q5's grant");
    t.same(await held(engine), ['b held write q5 0-9'], "the engine holds q5's grant");

    // b's worker dies while its hook judges; the replacement's steps get no reply. What it tells
    // the caller of q5 besides the answer (SharedFiles.tellOwed, written), in order.
    const told: string[] = [];
    const target = Object.assign(Object.create(b.target) as typeof b.target, {
      answer: (...args: Parameters<typeof b.target.answer>) => {
        told.push(`answer ${code(args[2])}`);
        b.target.answer(...args);
      },
      owed: (id: number) => void told.push(`owed ${id}`),
      written: (id: number) => void told.push(`written ${id}`),
    });
    b.policy = () => 'drop';
    const replacement = b.replaceWorker({ approve: () => 0 });
    replacement.judged(5, [], cancelled ? 'abort' : undefined);
    replacement.run(5, lk('q5', 5, F_WRLCK, F_SETLKW), target);
    const want = cancelled ? -EINTR : -ENOLCK;
    t.equal(code(await answered(b, 5, 'q5 asked of the replacement')), want, `q5 is answered ${cancelled ? 'as cancelled' : 'the generic code'}: the grant could not be read`);
    t.same(told, ['owed 5', `answer ${want}`], "told owed before its answer: its caller keeps it for another replacement until the grant's release is written");
    t.same(await held(engine), ['b held write q5 0-9'], 'the engine still holds the grant, for no caller');

    b.policy = () => 'pass';
    await engineIs(engine, [], "q5's grant released once the engine answers b again");
    await until(() => told.includes('written 5'), BUDGET_MS, "q5's release told written");
    t.same(told, ['owed 5', `answer ${want}`, 'written 5'], 'then told written');
    a.sf.run(3, lk('p3', 3, F_WRLCK, F_SETLK), a.target);
    t.equal(code(await answered(a, 3, "p3's lock of [0,10)")), 0, "a p3 writes [0,10): the bytes are free, not held for nobody");
    t.same(b.faults, [], 'no fault reported');
  });
}
