/**
 * A file's actor whose step is malformed (a bug of ours: the step's own checks or the engine
 * refuse it by throwing, never a reply). The fault is reported once, and nothing of the step is
 * owed: before, a release whose step threw was owed to the file's next step, which carried it,
 * threw again and reported again, and a step came by itself for ever (retryOwed), the actor never
 * idle. Real SharedFiles over a MemoryEngine; the link in between (lost-link.ts) throws on the
 * steps chosen. Every wait is for an answer, within a budget.
 */
import t from 'tap';
import { ENOLCK, F_GETLK, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, lk, node } from './lost-link.js';

t.test("a release whose step throws is reported once and not owed: the file's next step does not carry it, and the actor is not left busy", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
  t.match(await answered(a, 1, "p1's lock"), { result: 0 }, 'p1 holds [0,10)');
  // Every step that removes a record is malformed, as a bug would make it.
  let thrown = 0;
  a.policy = (step) => {
    if ((step.remove?.length ?? 0) > 0) {
      thrown++;
      throw new TypeError('step.remove[0] must be a non-empty string, got number');
    }
    return 'pass';
  };
  a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
  t.match(await answered(a, 2, "p1's unlock"), { result: -ENOLCK }, "p1's unlock gets the generic code");
  t.equal(a.faults.length, 1, 'the fault is reported');
  // The file's next step: before, it carried the owed release, which threw again (a second fault,
  // and this F_GETLK answered with the generic code too).
  a.sf.run(3, lk('p2', 2, F_WRLCK, F_GETLK), a.target);
  t.match(await answered(a, 3, "p2's F_GETLK"), { result: 0, lockType: F_WRLCK, lockPid: 1 }, "p2's F_GETLK is decided, and reports p1's lock (its release was never written)");
  t.equal(thrown, 1, 'the release was not carried by a later step');
  t.equal(a.faults.length, 1, 'reported once');
  // The F_GETLK's job ends right after its answer (the mailbox's last turn).
  await new Promise((r) => setImmediate(r));
  t.same(a.sf.counts(), { files: 1, locks: 1, waiters: 0, busy: 0 }, 'the actor keeps p1\'s lock and has no work in hand: nothing owed, nothing queued');
  // p1 can still release it, once steps are well-formed again.
  a.policy = () => 'pass';
  a.sf.run(4, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
  t.match(await answered(a, 4, "p1's unlock again"), { result: 0 }, "p1's second unlock is written");
  t.same((await engine.load('/a')).records, [], 'the engine holds nothing of /a');
});
