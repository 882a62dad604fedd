/**
 * Found by review (neighbour of d09fcdc, no engine reset needed): an UnlockFileEx through a handle
 * whose blocking LockFileEx is granted by another node's step, decided before that grant's inbox
 * event is read. b's handle 1 holds [0,10); a's handle 2 waits for it; a's inbox is held back
 * (a.held); b unlocks, its step grants a's waiter (the event waits in a's inbox); a's handle 2
 * unlocks [0,10): its step is stale, decided again on the re-read that shows the grant. Before the
 * fix it removed it (answered 0); then the event was read and the waiter told 0 (granted): the
 * caller believed handle 2 held [0,10), the engine held nothing, and b's lock of [0,10) was
 * granted (two holders as the callers see it). POSIX in the same shape spares the grant (the
 * unlock came before it; the lock stays, b is refused), and now so does an UnlockFileEx
 * (SharedFile.spareOf, LockTable.unlockSparing: answered 158).
 * Property: the engine as the answers say (told the grant after the unlock: the lock held; told it
 * before: nothing held), and b's lock refused while a holds. Real SharedFiles over a MemoryEngine.
 */
import t from 'tap';
import { EAGAIN, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, code, lf, lk, lw, uf } from './lost-link.js';
import { answerOrder, held, nodes, until } from './reset-harness.js';

for (const f of ['posix', 'windows'] as const) {
  t.test(`${f}: an unlock decided before its owner's waiter's remote grant is read`, async (t) => {
    const { engine, a, b } = await nodes(t, 'default', null);
    b.sf.run(1, f === 'posix' ? lk('p1', 1, F_WRLCK, F_SETLK) : lf(1), b.target);
    t.equal(code(await answered(b, 1, "b's lock of [0,10)")), 0, 'b holds [0,10)');
    a.sf.run(1, f === 'posix' ? lk('p2', 2, F_WRLCK, F_SETLKW) : lw(2, 0, 10), a.target);
    await answered(a, -1, "a's waiter queued");
    a.held = [];
    b.sf.run(2, f === 'posix' ? lk('p1', 1, F_UNLCK, F_SETLK) : uf(1), b.target);
    t.equal(code(await answered(b, 2, "b's unlock")), 0, 'b unlocks: its step grants a');
    await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox (held back)");
    const order = answerOrder(a);
    a.sf.run(2, f === 'posix' ? lk('p2', 2, F_UNLCK, F_SETLK) : uf(2), a.target);
    await answered(a, 2, "a's unlock");
    a.release();
    t.equal(code(await answered(a, 1, "a's waiter")), 0, "a's waiter told granted");
    const grantFirst = order.indexOf(1) < order.indexOf(2);
    const mine = f === 'posix' ? 'a held write p2 0-9' : 'a held write 2 0-9';
    t.same(await held(engine), grantFirst ? [] : [mine], `the engine as the answers say (${grantFirst ? 'grant, then unlock' : 'unlock, then grant'})`);
    b.sf.run(3, f === 'posix' ? lk('p1', 1, F_WRLCK, F_SETLK) : lf(1), b.target);
    t.equal(code(await answered(b, 3, "b's lock of [0,10) again")), grantFirst ? 0 : f === 'posix' ? -EAGAIN : 33, "b's lock again: as a's answers say");
    t.same([...a.faults, ...b.faults], [], 'nothing reported');
  });
}
