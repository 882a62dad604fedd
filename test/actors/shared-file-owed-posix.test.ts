/**
 * A POSIX unlock whose step applied with its reply lost is not run again once a later reply
 * names that step (the change log since the node's version, or, when the log no longer reaches
 * back, the engine's last applied step of this node on the file). Run again, it would take bytes
 * its owner was granted since (another node's grant of the owner's waiter), and tell its notice
 * again. The model is the kernel: the unlock happened once, before the grant, and the owner holds
 * what the grant gave. Real SharedFiles over a MemoryEngine behind the lost-link harness; every
 * wait is for an answer, within a budget.
 */
import t, { type Test } from 'tap';
import { F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, grantStands, lk, loseNext, overflowLog, waiterBehindRemote } from './lost-link.js';

/**
 * q2 (node b) holds [10,20); p1 (node a) holds [0,10) and waits for [5,15). p1's unlock of [0,10)
 * applies with its reply lost (`how`); while a does not know, b's unlock grants p1's waiter
 * [5,15) on the engine's records (p1's [0,10) gone). Then a's next step learns it all.
 */
async function unlockThenRemoteGrant(t: Test, how: 'giveup' | 'fenced', overflow: boolean) {
  const { engine, a, b, released } = await waiterBehindRemote(t);
  if (how === 'fenced') a.lostResend = 'fenced';
  loseNext(a, async () => {
    b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), b.target);
    t.match(await answered(b, 2, "q2's unlock"), { result: 0 });
    if (overflow) await overflowLog(engine, b.store);
  });
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  await answered(a, 3, "p1's unlock");
  t.match(await answered(a, 2, "p1's F_SETLKW of [5,15)"), { result: 0 }, "granted by b's unlock");
  a.sf.run(4, lk('p4', 4, F_WRLCK, F_SETLK, 40, 10), a.target);
  t.match(await answered(a, 4, "p4's lock of [40,50)"), { result: 0 }, "a's next step commits");
  if (overflow) t.ok(a.log.some((l) => l.endsWith('-> stale whole')), 'a stale reply with the whole record set');
  return { a, b, released };
}

for (const how of ['giveup', 'fenced'] as const) {
  for (const overflow of [false, true]) {
    const from = overflow ? 'the whole record set (the log overrun)' : 'the change log';
    t.test(`a POSIX unlock applied with its reply lost (${how}), then another node granted its owner's waiter: learned from ${from}, it is not run again`, async (t) => {
      const { a, b, released } = await unlockThenRemoteGrant(t, how, overflow);
      await grantStands(t, b, from);
      t.same(released.filter((r) => r.startsWith('posix:0+')), ['posix:0+10'], 'the unlock notice fired once');
      t.same(a.faults, [], 'nothing reported');
    });
  }
}
