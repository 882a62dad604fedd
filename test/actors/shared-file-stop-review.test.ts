/**
 * Review of stop() (SharedFile.stopAll) where the application approves its lock requests (onLock:
 * an approval hook that answers with a Promise). The stop ends this node's waiters one after the
 * other; ending one may let another of its waiters in ('fifo': it queued behind the first), whose
 * approval is asked then and answered later. That pass must not run: the stop ends the second
 * waiter too, and the pass would grant it all the same once approved (the core's grant after an
 * approval does not look again), its request told EINTR. Approved before the stop's step is made,
 * the lock goes to the engine with it and stays there until the session ends; approved after,
 * the table holds a lock no record stands for. As the core's stop (cancelAll): every waiter of
 * the node ends first, then its locks go, then one pass for the other nodes' waiters.
 *
 * b holds [0,10); a's p1 waits for [0,20), a's p2 for [10,20) (free, but queued behind p1's
 * waiter: 'fifo'); a stops. Real SharedFiles over a MemoryEngine (lost-link harness); every wait
 * is for an answer within its budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_WRLCK } from '../../src/core/codes.js';
import type { Lock } from '../../src/core/file-locks.js';
import { answered, lk } from './lost-link.js';
import { held } from './reset-harness.js';
import { twoNodes } from './stages.js';

for (const when of ['at once', 'a turn later'] as const) {
  t.test(`fifo, an approval hook answering with a Promise (resolved ${when}): a stop leaves nothing of a in the engine or its table, both waiters ended by the stop`, async (t) => {
    let asked = 0;
    const approve = async (): Promise<number> => {
      asked++;
      if (when === 'a turn later') await Promise.resolve();
      return 0;
    };
    const { engine, a, b } = await twoNodes(t, { approve }, 'fifo');
    b.sf.run(1, lk('q1', 1, F_WRLCK, F_SETLK, 0, 10), b.target);
    t.match(await answered(b, 1, "q1's lock of [0,10)"), { result: 0 });
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLKW, 0, 20), a.target);
    await answered(a, -1, "p1's waiter for [0,20) queued");
    a.sf.run(2, lk('p2', 2, F_WRLCK, F_SETLKW, 10, 10), a.target);
    await answered(a, -2, "p2's waiter for [10,20) queued behind p1's");
    t.same(await held(engine), ['a waiting write p1 0-19', 'a waiting write p2 10-19', 'b held write q1 0-9'], 'the stage');
    const before = asked;
    await a.sf.stop();
    t.same(await held(engine), ['b held write q1 0-9'], "nothing of a left in the engine; b's lock stays");
    t.match(a.got.get(1), { result: -4 }, "p1's request ended by the stop (EINTR)");
    t.match(a.got.get(2), { result: -4 }, "p2's request ended by the stop (EINTR)");
    const f = (a.sf as unknown as { files: Map<string, { table: { fileLocks(p: string): { granted(): Lock[] } | undefined } }> }).files.get('/a');
    const mine = (f?.table.fileLocks('/a')?.granted() ?? []).filter((l) => l.owner.endsWith('@a')).map((l) => `${l.owner} ${l.start}-${l.end}`);
    t.same(mine, [], "a's table holds no lock of a");
    t.equal(asked, before, 'no approval asked by the stop');
    t.same(a.faults, [], 'nothing reported');
  });
}
