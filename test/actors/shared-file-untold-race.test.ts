/**
 * The untold rule (SharedFile.untold) against the inbox: a close whose own step finds its
 * handle's waiter granted by another node (stale: the grant came first) is decided again, and
 * the grant's event is read while that step is on its way (after the decision, before its reply).
 * The close's answer then tells the waiter the event's result (SharedFiles.endThrough: granted),
 * so the caller was told it held the lock the close released: its release notice is told too. A
 * waiter told granted and a notice withheld, or a notice told for a waiter told ended, would each
 * contradict the other. Real SharedFiles over a MemoryEngine, behind the lost-link harness; every
 * wait is for an answer or an inbox event, within the harness's budget.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseLockFile, parseRelease, type Call } from '../../src/core/requests.js';
import { answered, ch, lf, lk, uf } from './lost-link.js';
import { answersTo, held, nodes, until } from './reset-harness.js';

/** A blocking Windows LockFileEx of [start, start+len) of /a through `handle` (process 1). */
const lw = (handle: number, start: number, len: number): Call =>
  parseLockFile({ fileName: '/a', byteOffset: start, length: len, exclusiveLock: true, failImmediately: false, handle, processId: 1 }) as Call;

for (const family of ['windows', 'posix'] as const) {
  t.test(`${family}: a close decided on its waiter's grant, the grant's event read before the close's reply: the waiter told granted and the notice of its lock told, or neither`, async (t) => {
    const { engine, a, b, released } = await nodes(t, 'default');
    if (family === 'windows') {
      b.sf.run(1, lf(9, 20, 10), b.target);
      t.equal(await answered(b, 1, "b's handle 9's lock of [20,30)"), 0);
      a.sf.run(4, lw(1, 20, 10), a.target);
      await answered(a, -4, "handle 1's waiter for [20,30) queued");
    } else {
      b.sf.run(1, lk('q9', 9, F_WRLCK, F_SETLK, 20, 10), b.target);
      t.match(await answered(b, 1, "q9's lock of [20,30)"), { result: 0 });
      a.sf.run(4, lk('p1', 1, F_WRLCK, F_SETLKW, 20, 10), a.target);
      await answered(a, -4, "p1's waiter for [20,30) queued");
    }
    const told = answersTo(a, 4);
    a.policy = () => 'drop';
    a.held = [];
    a.afterDrop = async () => {
      a.afterDrop = undefined;
      // b's unlock grants a's waiter; its event waits in a's inbox (held back).
      b.sf.run(3, family === 'windows' ? uf(9, 20, 10) : lk('q9', 9, F_UNLCK, F_SETLK, 20, 10), b.target);
      await answered(b, 3, "b's unlock of [20,30)");
      await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
      a.policy = () => 'pass';
      // The close's step decided again (stale: the grant) applies; before its reply reaches the
      // actor, a's inbox reader hands over the grant's event.
      a.onReply = (r) => {
        if (!r.ok) return;
        a.onReply = undefined;
        a.release();
      };
    };
    a.sf.run(5, family === 'windows' ? ch(1) : parseRelease({ path: '/a', fileHandle: 1 }), a.target);
    await answered(a, 5, "handle 1's close");
    await answered(a, 4, "handle 1's waiter");
    t.same(await held(engine), [], 'the close committed: nothing of handle 1');
    t.equal(told.length, 1, 'the waiter: one answer');
    const granted = family === 'windows' ? told[0] === 0 : (told[0] as { result: number }).result === 0;
    const notice = family === 'windows' ? 'windows:1:20+10' : 'posix:20+10';
    t.same(released, granted ? [notice] : [], `the waiter told ${granted ? 'granted' : 'ended'}: the close's notice of the grant ${granted ? 'told' : 'not told'}`);
    t.same(a.faults, [], 'nothing reported');
  });
}
