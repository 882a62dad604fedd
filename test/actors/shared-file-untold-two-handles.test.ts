/**
 * The untold rule (SharedFile.untold, markGrants) when ONE step of another node grants two waiters
 * of one POSIX owner through two file handles: a write waiter through handle 1 and a read waiter
 * inside it through handle 2 (the owner's locks after that step: the read's bytes in read mode,
 * through handle 2; the rest in write mode, through handle 1). Learned from a stale reply before
 * the inbox. Handle 1's close ends the write waiter before its grant is told (its locks' notices
 * are not told); the read waiter is told granted from its event; handle 2's close then releases
 * the read lock the caller was told it holds through handle 2, and its notice is told. Real
 * SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is for an answer or
 * an inbox event, within the harness's budget.
 */
import t from 'tap';
import { EINTR, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { answered, lk } from './lost-link.js';
import { answersTo, conflicts, held, nodes } from './reset-harness.js';
import { close, grantHeld, lkFh as p1 } from './notice-stages.js';
import { holds, stage, waits } from './stages.js';

t.test("one step of another node grants an owner's write waiter (handle 1) and a read waiter inside it (handle 2), learned from a stale reply; handle 1's close ends the write waiter untold: handle 2's close still tells the read lock's notice", async (t) => {
  const { engine, a, b, released } = await nodes(t, 'default');
  await stage(t, holds(b, 1, lk('q2', 2, F_WRLCK, F_SETLK, 0, 100), "q2's write of [0,100)"));
  const toW = answersTo(a, 2);
  const toR = answersTo(a, 3);
  await stage(
    t,
    waits(a, 2, p1(1, F_WRLCK, F_SETLKW, 0, 100), "p1's write waiter for [0,100) through handle 1"),
    waits(a, 3, p1(2, F_RDLCK, F_SETLKW, 10, 10), "p1's read waiter for [10,20) through handle 2"),
  );
  // a's inbox reader is slow: the grants are learned from a's next step's stale reply first.
  await grantHeld(t, a, holds(b, 2, lk('q2', 2, F_UNLCK, F_SETLK, 0, 100), "q2's unlock of [0,100)"), 2);
  t.same(await held(engine), ['a held read p1 10-19', 'a held write p1 0-9', 'a held write p1 20-99'], "b's one step granted both waiters");
  await stage(t, holds(a, 5, lk('p4', 4, F_WRLCK, F_SETLK, 500, 10), "p4's lock of [500,510)"));
  t.ok(a.log.some((l) => l.endsWith('stale missed')), "a's step was stale: it learned the grants from the changes");
  // Handle 1 closes before the grants' events are read: its write waiter ends with the close.
  a.sf.run(6, close(1), a.target);
  await answered(a, 6, "handle 1's close");
  t.equal(toW.length, 1, 'the write waiter: one answer');
  t.match(toW[0], { result: -EINTR }, 'the write waiter ended with the close, never told granted');
  t.same(released, [], "no notice for the write grant's locks, which the caller never held");
  t.same(await held(engine), ['a held read p1 10-19', 'a held write p4 500-509'], "the engine: handle 1's locks gone, the read lock through handle 2 stays");
  // The events come: the read waiter is told granted.
  a.release();
  await answered(a, 3, "p1's read of [10,20) through handle 2");
  t.equal(toR.length, 1, 'the read waiter: one answer');
  t.match(toR[0], { result: 0 }, 'the read waiter told granted');
  // Handle 2 closes: it releases the read lock the caller was told it holds, and says so.
  a.sf.run(7, close(2), a.target);
  await answered(a, 7, "handle 2's close");
  t.same(await held(engine), ['a held write p4 500-509'], 'the engine: nothing of p1');
  t.same(released, ['posix:10+10'], "handle 2's close tells the release of the read lock the caller was told granted");
  t.same(conflicts(await held(engine)), [], 'no two conflicting locks');
  t.same(a.faults, [], 'nothing reported');
});
