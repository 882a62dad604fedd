/**
 * Stress run (nodes, blocking, seed 1278275319; results vary with timing): after an engine restart
 * that kept nothing, a FUSE process's F_SETLKW F_RDLCK on node n1, asked just before the kill, was
 * answered 0 in the grace period; right after the grace period another node was granted an
 * exclusive LockFileEx over the same bytes while n1's process still held its lock (the oracle's
 * conflict). The re-assertion was the engine's only copy of n1's locks, and the locks a node
 * re-asserts stay its own (API.md, the engine losing its data while the node was live).
 *
 * Just before the kill, b's unlock granted a's waiter in the engine, and an event went to a's
 * inbox. The engine then lost that grant with its data. a's re-assertion put the waiter back as
 * a waiter (its cache had not stood the grant in yet). Then a's file actor applied the event of
 * the lost incarnation anyway: the cache turned the re-asserted waiter into a held lock and the
 * caller was told 0, while the engine still had only a waiter. At the end of the grace period a's
 * own pass found nothing to grant (its cache said held), no other node had a pass due on the
 * file, and b's exclusive lock of those bytes was granted over a lock a's caller was told it holds.
 *
 * Two ways the event reaches the actor after the re-assertion:
 * - read before it, when the waiter's own step had not replied yet (so not stood in at once):
 *   stood in at its turn in the file's mailbox, behind decisions that waited out the outage (the
 *   run's order: two waits of n1 on the file answered at 35030 ms, then this one at 35033 ms);
 * - handed to the actor only after the re-assertion (the inbox reader's hook slow).
 * Property: a lock answered 0 is held in the engine until its owner unlocks it: another node's
 * conflicting lock is refused. Every waiter ends. Real SharedFiles over a MemoryEngine behind the
 * lost-link harness; every wait is for an answer, a step or a re-assertion, within its budget.
 */
import t from 'tap';
import { ERROR_LOCK_VIOLATION, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { CommitReply } from '../../src/store/index.js';
import { BUDGET_MS, answered, code, holdAtLink, lf, lk, resetEngine, within, type TestNode } from './lost-link.js';
import { answersTo, graceOver, held, nodes, until } from './reset-harness.js';

/** The engine loses its data; a and b open new sessions, adopt them, and put their records back. */
async function reset(engine: Parameters<typeof resetEngine>[0], a: TestNode, b: TestNode): Promise<void> {
  const bWas = b.store.session().epoch;
  const from = a.log.length;
  const { old, epoch } = await resetEngine(engine, a, b);
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  const bEpoch = b.store.session().epoch;
  b.lease[1] = bEpoch;
  b.sf.adopt(bEpoch, bWas, 60_000);
  await until(() => a.log.slice(from).some((l) => l.startsWith('reassert ')), "a's re-assertion");
}

for (const how of ['read before the re-assertion, stood in at its mailbox turn', 'handed to the actor after the re-assertion'] as const) {
  t.test(`a grant of the lost incarnation, ${how}: the lock its caller is told of is the engine's`, async (t) => {
    const { engine, a, b } = await nodes(t, 'default', null);
    const early = how.startsWith('read before');
    // b's q5 holds [405,438) for write; a's p7 waits for a read of [418,426).
    b.sf.run(1, lk('q5', 5, F_WRLCK, F_SETLK, 405, 33), b.target);
    t.equal(code(await answered(b, 1, "q5's write lock of [405,438)")), 0, 'q5 holds [405,438)');
    const p7 = answersTo(a, 1);
    a.held = [];
    let replyGate: (() => void) | undefined;
    let committed: Promise<void> | undefined;
    if (early) {
      // p7's step applies, its reply waits (the node loaded): a's cache has no record of it yet.
      const commit = a.store.commit.bind(a.store);
      let atGate!: () => void;
      committed = new Promise<void>((r) => (atGate = r));
      const gate = new Promise<void>((r) => (replyGate = r));
      a.store.commit = async (step): Promise<CommitReply> => {
        const r = await commit(step);
        // The first try is stale (a's cache did not have q5's lock): the one that applies waits.
        if (!r.ok) return r;
        a.store.commit = commit;
        atGate();
        await gate;
        return r;
      };
    }
    a.sf.run(1, lk('p7', 7, F_RDLCK, F_SETLKW, 418, 8), a.target);
    let hold: ReturnType<typeof holdAtLink> | undefined;
    if (early) {
      await within(committed!, BUDGET_MS, "p7's step applied");
      // p13's request queues in a's mailbox behind p7's decision; its step will wait out the outage.
      hold = holdAtLink(a);
      a.sf.run(2, lk('p13', 13, F_WRLCK, F_SETLKW, 274, 7), a.target);
    } else {
      await answered(a, -1, "p7's waiter for [418,426) queued");
    }
    // q5 unlocks: the engine grants p7's waiter, and an event goes to a's inbox (held back).
    b.sf.run(2, lk('q5', 5, F_UNLCK, F_SETLK, 405, 33), b.target);
    t.equal(code(await answered(b, 2, "q5's unlock")), 0, 'q5 unlocks');
    t.same(await held(engine), ['a held read p7 418-425'], "the engine granted p7's waiter");
    await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
    if (early) {
      // Read now, before p7's reply: not stood in at once (no record of p7 in the cache), queued in the mailbox.
      a.release();
      replyGate!();
      await answered(a, -1, "p7's waiter queued (its step's reply)");
      await within(hold!.atLink, BUDGET_MS, "p13's step at the link");
    }
    // The engine loses its data (and the grant with it); a puts p7's waiter back.
    await reset(engine, a, b);
    t.same(await held(engine), ['a waiting read p7 418-425'], "the re-assertion put p7's waiter back as a waiter");
    if (early) hold!.release();
    else a.release();
    // Each node's pass at the end of the grace period (b has none due on the file: it put nothing back).
    await graceOver(engine, '/a', a);
    await answered(a, 1, "p7's read lock of [418,426)");
    t.same(p7.map(code), [0], 'p7 is told granted, once');
    // b asks an exclusive lock over p7's bytes: p7 holds them, so it is refused.
    b.sf.run(3, lf(14, 410, 53), b.target);
    t.equal(code(await answered(b, 3, "b's exclusive LockFileEx of [410,463)")), ERROR_LOCK_VIOLATION, "p7's lock is held in the engine: b's exclusive lock of its bytes is refused");
    t.ok((await held(engine)).includes('a held read p7 418-425'), 'the engine holds p7');
    // Every waiter ends: p7 lets go.
    a.sf.run(3, lk('p7', 7, F_UNLCK, F_SETLK, 418, 8), a.target);
    t.equal(code(await answered(a, 3, "p7's unlock")), 0, 'p7 unlocks');
    t.notOk((await held(engine)).some((l) => l.includes(' p7 ')), 'the engine has nothing of p7 after its unlock');
    if (early) t.equal(code(await answered(a, 2, "p13's write lock of [274,281)")), 0, 'p13 is granted after the grace period');
    t.same(a.faults, [], 'nothing reported');
  });
}
