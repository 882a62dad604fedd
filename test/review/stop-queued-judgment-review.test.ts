/**
 * Review: stop() ends this node's waiters (995 / -EINTR) and takes a judgment still waiting for
 * its approval hook as a veto (FileSpace.onStop). A request "that ends before its hook was asked
 * is not asked" (SharedFile.judge: waits()). A second grant of this node's waiters by another
 * node's step, read while the first one's hook was judging, is judged next in the file's mailbox:
 * its turn comes after stop() answered its request 995. Its hook must not be asked then (its
 * request ended; the hook would be asked, and the fence given, for a lock nobody will hold).
 *
 * It was asked: stop() leaves the request in `waits`, which is what waits() looked at, so the
 * judgment behind ran the hook after stop() (its verdict then dropped). Fixed: stop counts as the request's end in waits().
 *
 * Real SharedFiles over a MemoryEngine (lost-link harness); a's approval hook is the test's.
 */
import t from 'tap';
import { ERROR_OPERATION_ABORTED } from '../../src/core/codes.js';
import { BUDGET_MS, answered, lf, lw, node, MemoryEngine, uf, until, within } from '../actors/lost-link.js';
import { engineIs } from '../actors/reset-harness.js';

t.test("a.stop() while a's hook judges one grant, with another judged next: the second's hook is not asked", async (t) => {
  const engine = new MemoryEngine();
  const asked: number[] = [];
  let armed = false;
  let firstAsked!: () => void;
  const first = new Promise<void>((r) => (firstAsked = r));
  const a = await node(engine, 'a', 'default', undefined, 0, {
    approve: (_family, e) => {
      if (!armed) return 0;
      asked.push(Number(e.byteOffset));
      if (Number(e.byteOffset) === 0) {
        firstAsked();
        return new Promise<number>(() => {});
      }
      return Promise.resolve(0);
    },
  });
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0, 'b holds [0,10)');
  b.sf.run(2, lf(2, 20, 10), b.target);
  t.equal(await answered(b, 2, "b's handle 2 locks [20,30)"), 0, 'b holds [20,30)');
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for [0,10)");
  a.sf.run(2, lw(8, 20, 10), a.target);
  await answered(a, -2, "a's handle 8 waits for [20,30)");
  const judging = new Set<number>();
  const tell = a.sf.judging.bind(a.sf);
  a.sf.judging = (id, before) => {
    judging.add(id);
    tell(id, before);
  };
  armed = true;
  b.sf.run(3, uf(1, 0, 10), b.target);
  t.equal(await answered(b, 3, "b's unlock of [0,10)"), 0, "b's unlock grants a's handle 7");
  await within(first, BUDGET_MS, "a's hook asked for handle 7's grant");
  b.sf.run(4, uf(2, 20, 10), b.target);
  t.equal(await answered(b, 4, "b's unlock of [20,30)"), 0, "b's unlock grants a's handle 8");
  await until(() => judging.has(2), "a read handle 8's grant (its judgment queued behind handle 7's)");
  await within(a.sf.stop(), BUDGET_MS, 'a.stop()');
  t.equal(await answered(a, 1, "a's request 1"), ERROR_OPERATION_ABORTED, 'request 1 ended by the stop (995)');
  t.equal(await answered(a, 2, "a's request 2"), ERROR_OPERATION_ABORTED, 'request 2 ended by the stop (995)');
  t.same(asked, [0], "a's hook was not asked for handle 8's grant after stop() ended its request");
  await engineIs(engine, [], 'nothing of a is held once its stop() resolved');
});
