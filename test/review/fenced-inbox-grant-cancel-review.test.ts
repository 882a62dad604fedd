/**
 * Review: a waiter's timeout, signal or interrupt "while the node is fenced ... is answered at once"
 * (docs/API.md "Sessions"). A grant by another node's step, read from the inbox while the node is
 * fenced, is now told only after a renewal (SharedFiles.ended, unfenced); until then its caller
 * still waits. A cancel in that window must be answered at once, as for any waiter while fenced,
 * and the grant released (owed), never told.
 *
 * It is not: the grant already stands in the cache as held (grantedRemotely), so the cancel's
 * at-once answer (SharedFile.cancelAnswered: only a waiter still 'waiting') gives up, and the
 * cancel queues in the file's mailbox behind the ended() job, which waits for the renewal (or the
 * session's loss). The caller hears nothing until then (through a mount: a process killed in
 * F_SETLKW stays until then), and is then told 0 after its timeout.
 *
 * Real SharedFiles over a MemoryEngine (lost-link harness, no hooks); the test sets a's lease.
 *
 * Todo, not fixed: the wait is bounded (the fence ends, or the session counts as lost at most
 * sessionTtlMs / 4 + 250 ms after the fence began, ending the waiter), and docs/API.md says so.
 * The fix's likely shape: a grant read while fenced goes through the judged path of a node with
 * an approval hook (its owner's locks before the grant kept, the request counted as judged so a
 * cancel ends it at once, the grant confirmed by a fenced step or released as a veto's).
 */
import t from 'tap';
import { ERROR_LOCK_VIOLATION } from '../../src/core/codes.js';
import { answered, lf, lw, uf, until } from '../actors/lost-link.js';
import { engineIs } from '../actors/reset-harness.js';
import { twoNodes } from '../actors/stages.js';

t.test("a timeout while a's grant read from the inbox waits for a renewal is answered at once; the grant is not told", { todo: 'not fixed: answered when the fence ends or the session counts as lost (bounded; docs/API.md)' }, async (t) => {
  const { engine, a, b } = await twoNodes(t);
  b.sf.run(1, lf(1, 0, 10), b.target);
  t.equal(await answered(b, 1, "b's handle 1 locks [0,10)"), 0, 'b holds [0,10)');
  a.sf.run(1, lw(7, 0, 10), a.target);
  await answered(a, -1, "a's handle 7 waits for [0,10)");
  // a's inbox reader is slow: b's grant of a's waiter is read later.
  a.held = [];
  b.sf.run(2, uf(1, 0, 10), b.target);
  t.equal(await answered(b, 2, "b's unlock"), 0, "b's unlock grants a's waiter");
  await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
  // a stalls past its fence (its renewal late), then reads the event.
  a.lease[0] = performance.timeOrigin + performance.now() - 1;
  a.release();
  t.equal(a.got.has(1), false, 'fenced: the grant is not told');
  // The request's timeout comes while a is fenced: answered at once (within the call).
  a.sf.cancel(1, 'timeout');
  t.equal(a.got.get(1), ERROR_LOCK_VIOLATION, 'the timeout is answered at once (33) while a is fenced');
  // The renewal comes.
  a.lease[0] = Number.POSITIVE_INFINITY;
  t.equal(await answered(a, 1, "a's request 1"), ERROR_LOCK_VIOLATION, 'told 33, never 0');
  await engineIs(engine, [], "the grant of a's cancelled waiter is released");
});
