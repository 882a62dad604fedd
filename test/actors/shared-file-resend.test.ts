/**
 * A step whose reply was lost, and whose resend got no reply that settles its fate either (the
 * engine refused the resend with an error; or found the node fenced, and the decision ran again):
 * once a later reply names the step as applied, what it decided stands, once. A POSIX unlock is
 * not run again (it would free bytes its owner was granted since by another node's grant of its
 * waiter), the waiter it granted is answered, and a Windows request whose first try applied is
 * answered as granted, not refused by its own lock. The model is the kernel: each call took
 * effect once. Real SharedFiles over a MemoryEngine behind the lost-link harness; every wait is
 * for an answer, within a budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { StoreLink } from '../../src/actors/shared-file.js';
import { MemoryEngine, answered, grantStands, lf, lk, loseNext, node, type S, type TestNode, waiterBehindRemote } from './lost-link.js';

/** The link the node's SharedFiles commit through (the harness's object: its methods can be wrapped). */
function linkOf(n: TestNode): { commit: StoreLink['commit'] } {
  return (n.sf as unknown as { link: { commit: StoreLink['commit'] } }).link;
}

t.test("a POSIX unlock applied with its reply lost, whose resend the engine refused (an error thrown, not a reply): once a reply names its step, it is not run again", async (t) => {
  const { a, b, released } = await waiterBehindRemote(t);
  // The engine refuses the resend's script (over maxmemory after the first send applied: an
  // error reply, which the Redis engine throws as 'the engine refused a script').
  const link = linkOf(a);
  const commit = link.commit;
  let refused = 0;
  link.commit = async (step: S) => {
    if (step.id !== undefined && a.lostIds.has(step.id)) {
      refused++;
      throw new Error("locksmith store: the engine refused a script: OOM command not allowed when used memory > 'maxmemory'.");
    }
    return commit(step);
  };
  loseNext(a, async () => {
    b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
    t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
  });
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 3, "p1's unlock (its resend refused)");
  t.equal(refused, 1, 'the resend was refused');
  t.match(await answered(a, 2, "p1's F_SETLKW of [5,15)"), { result: 0 }, "granted by b's unlock");
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 4, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits (its stale reply's log names the unlock's step)");
  await grantStands(t, b, 'the unlock did not run twice');
  t.same(released.filter((r) => r.startsWith('posix:0+')), ['posix:0+10'], 'the unlock notice fired once');
});

// The same path, seen from a waiter of this node: the unlock's step granted it (the wake-up pass),
// and what that step decided for other requests is kept nowhere (lostAnswers): once a reply
// names the step, the waiter's record is a lock in the engine's records, and its request is
// never answered.
t.test("a POSIX unlock whose step granted a waiter of the same node, applied with its reply lost and its resend refused by the engine: once a reply names the step, the waiter is answered", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 holds [0,10)');
  a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW, 0, 10), a.target);
  await answered(a, -2, "p2's waiter for [0,10) queued");
  const link = linkOf(a);
  const commit = link.commit;
  link.commit = async (step: S) => {
    if (step.id !== undefined && a.lostIds.has(step.id)) throw new Error('locksmith store: the engine refused a script: READONLY You can\'t write against a read only replica.');
    return commit(step);
  };
  loseNext(a);
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 3, "p1's unlock (its resend refused)");
  t.equal(a.lostIds.size, 1, "the unlock's step applied (granting p2), its reply lost");
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 4, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits (its stale reply's log names the unlock's step)");
  t.match(await answered(a, 2, "p2's F_SETLKW of [0,10), granted by the unlock's step"), { result: 0 }, 'p2 is answered: it holds [0,10)');
});

// A lock request's own try of unknown fate, within one decision: only the current try's resend is
// looked for among the missed changes (appliedAfterAll); an earlier try that applied (its reply
// lost, its resend fenced for a late renewal) is found by noticeApplied as an Unsure step. Having
// carried an owed release, it is tangled: not undone, only reported, and the request is decided
// again on records that hold its own lock. A Windows lock conflicts with its own handle's.
t.test("a Windows LockFileEx carrying an owed release, its first try applied with its reply lost and its resend fenced: decided again, it is not refused by its own lock", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  a.sf.run(1, lk('x1', 7, F_WRLCK, F_SETLK, 100, 10), a.target);
  t.match(await answered(a, 1, "x1's lock of [100,110)"), { result: 0 }, 'x1 holds [100,110)');
  // a is cut off: x1's unlock never reaches the engine; answered, and owed.
  a.policy = () => 'drop';
  a.sf.run(2, lk('x1', 7, F_UNLCK, F_SETLK, 100, 10), a.target);
  await answered(a, 2, "x1's unlock (given up on)");
  // Handle 5's LockFileEx of [0,10), carrying the owed unlock: its step applies with its reply
  // lost; its resend finds a fenced for a late renewal (lifted 50 ms later), and it is decided again.
  a.lostResend = 'fenced';
  loseNext(a);
  a.sf.run(3, lf(5, 0, 10), a.target);
  const got = await answered(a, 3, "handle 5's LockFileEx of [0,10)");
  t.equal(a.lostIds.size, 1, "the LockFileEx's first step applied, its reply lost");
  b.sf.run(1, lf(1, 0, 10), b.target);
  const held = await answered(b, 1, "b's handle 1's LockFileEx of [0,10)");
  t.equal(held, 33, "[0,10) is held (by a's handle 5: its step applied)");
  t.equal(got, 0, "handle 5's LockFileEx is answered as granted (it holds the lock), not refused by its own lock");
  t.same(a.faults, [], 'nothing reported');
});
