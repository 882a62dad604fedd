/**
 * Corners of what an owed release leaves to its owner (Run.spared, SharedFile.spareOf,
 * grantedIn): grants another node's ONE step gave two waiters of the same owner, the second a
 * read inside the first's write (the owner's locks after that step have the read's bytes in read
 * mode, the rest in write mode), learned from a stale reply's changes or its whole record set
 * before the inbox: the owed unlock leaves the owner every byte it was granted after the unlock
 * was answered, and no other owner is granted a conflicting lock over them. Real SharedFiles over
 * a MemoryEngine, behind the lost-link harness; every wait is for an answer, within a budget.
 */
import t from 'tap';
import { EAGAIN, ENOLCK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, lk, node, overflowLog } from './lost-link.js';
import { conflicts, held } from './reset-harness.js';

for (const how of ['changes', 'whole record set'] as const) {
  t.test(`an owed unlock, then one step of another node grants its owner's write waiter and a read waiter inside it (learned from a stale reply's ${how}): every granted byte stays`, async (t) => {
    const engine = new MemoryEngine();
    const a = await node(engine, 'a');
    const b = await node(engine, 'b');
    t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
    b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 100), b.target);
    t.match(await answered(b, 1, "q2's write of [0,100)"), { result: 0 });
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 100, 10), a.target);
    t.match(await answered(a, 1, "p1's write of [100,110)"), { result: 0 });
    a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 100), a.target);
    await answered(a, -2, "p1's write waiter for [0,100)");
    a.sf.run(3, lk('p1', 1, F_RDLCK, F_SETLKW, 10, 10), a.target);
    await answered(a, -3, "p1's read waiter for [10,20)");
    // Cut off: p1's unlock of [0,110) is answered for want of a reply, and owed.
    a.policy = () => 'drop';
    a.sf.run(4, lk('p1', 1, F_UNLCK, F_SETLK, 0, 110), a.target);
    t.match(await answered(a, 4, "p1's unlock of [0,110) (given up on: owed)"), { result: -ENOLCK });
    // a's inbox reader is slow: the grants are learned from a's next step's stale reply first.
    a.held = [];
    b.sf.run(2, lk('q2', 2, F_UNLCK, F_SETLK, 0, 100), b.target);
    t.match(await answered(b, 2, "q2's unlock of [0,100)"), { result: 0 });
    t.same(await held(engine), ['a held read p1 10-19', 'a held write p1 0-9', 'a held write p1 20-109'], "b's one step granted both waiters (merged with p1's [100,110))");
    if (how === 'whole record set') await overflowLog(engine, b.store);
    a.policy = () => 'pass';
    a.sf.run(5, lk('p4', 4, F_WRLCK, F_SETLK, 500, 10), a.target);
    t.match(await answered(a, 5, "p4's lock of [500,510)"), { result: 0 }, "a's next step commits, carrying the owed unlock");
    t.ok(a.log.some((l) => l.endsWith(how === 'changes' ? 'stale missed' : 'stale whole')), `a's step was stale, with the ${how}`);
    a.release();
    t.match(await answered(a, 2, "p1's write of [0,100)"), { result: 0 }, 'granted after the unlock was answered');
    t.match(await answered(a, 3, "p1's read of [10,20)"), { result: 0 }, 'granted after the unlock was answered');
    t.same(
      (await held(engine)).filter((x) => x.includes(' p1 ')),
      ['a held read p1 10-19', 'a held write p1 0-9', 'a held write p1 20-99'],
      'the engine: p1 holds every byte it was granted ([0,10) and [20,100) write, [10,20) read); the owed unlock freed only [100,110)',
    );
    b.sf.run(3, lk('q3', 3, F_WRLCK, F_SETLK, 0, 10), b.target);
    t.match(await answered(b, 3, "q3's write of [0,10)"), { result: -EAGAIN }, 'p1 writes [0,10)');
    b.sf.run(4, lk('q4', 4, F_WRLCK, F_SETLK, 50, 10), b.target);
    t.match(await answered(b, 4, "q4's write of [50,60)"), { result: -EAGAIN }, 'p1 writes [50,60)');
    b.sf.run(5, lk('q5', 5, F_WRLCK, F_SETLK, 10, 10), b.target);
    t.match(await answered(b, 5, "q5's write of [10,20)"), { result: -EAGAIN }, 'p1 reads [10,20)');
    b.sf.run(6, lk('q6', 6, F_WRLCK, F_SETLK, 100, 10), b.target);
    t.match(await answered(b, 6, "q6's write of [100,110)"), { result: 0 }, '[100,110) is free: the owed unlock ran');
    t.same(conflicts(await held(engine)), [], 'no two conflicting locks in the engine');
    t.same(a.faults, [], 'nothing reported');
  });
}
