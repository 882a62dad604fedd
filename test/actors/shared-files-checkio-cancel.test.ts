/**
 * A checkIo cancelled (an abort: 995) while it is queued in its file's mailbox ends with its cancel
 * code, as one cancelled while it waits out a grace period does (SharedFiles.cancel), whichever
 * comes first: its deadline with the engine not answering (answered from outside the mailbox,
 * SharedFiles.attempt; before: 33, the generic code) or its turn (before: it ran, and answered what
 * it found). Nothing is sent for it. Real SharedFiles over a MemoryEngine behind the lost-link
 * harness.
 */
import t, { type Test } from 'tap';
import { ENOLCK, ERROR_OPERATION_ABORTED } from '../../src/core/codes.js';
import { parseCheckIo, type Call } from '../../src/core/requests.js';
import { BUDGET_MS, MemoryEngine, answered, code, countAnswers, headAtLink, nodeFor, within } from './lost-link.js';

const TIMEOUT = 300;
const check = (handle: number): Call => parseCheckIo({ fileName: '/a', handle, byteOffset: 0, length: 10, write: true }) as Call;

/**
 * Node a's checkIo 2, cancelled (abort) while queued behind request 1, a lock request of other
 * bytes whose step waits at the link (`hold.release()` lets it pass); `done()` checks the end.
 */
async function cancelledBehindHead(t: Test) {
  const a = await nodeFor(t, new MemoryEngine(), 'a', TIMEOUT);
  const counts = countAnswers(a);
  const hold = await headAtLink(a, 1);
  a.sf.run(2, check(2), a.target);
  a.sf.cancel(2, 'abort');
  const done = async () => {
    await within(a.sf.mailboxPassed('/a'), BUDGET_MS, "a's queued jobs");
    t.equal(counts.get(2), 1, 'the checkIo answered once');
    t.same(a.faults, [], 'nothing reported');
  };
  return { a, hold, done };
}

t.test('a checkIo cancelled while queued, the engine not answering until its deadline: ended with its cancel code at the deadline', async (t) => {
  const { a, hold, done } = await cancelledBehindHead(t);
  t.equal(await answered(a, 2, 'the cancelled checkIo'), ERROR_OPERATION_ABORTED, 'the cancel code (995), not the generic 33');
  t.notOk(a.got.has(1), 'answered while the head step still holds the mailbox');
  hold.release();
  t.equal(code(await answered(a, 1, 'the head request')), -ENOLCK, 'the head request: past its deadline, the generic code');
  await done();
});

t.test('a checkIo cancelled while queued, its turn coming once the engine answers again: ended with its cancel code, not run', async (t) => {
  const { a, hold, done } = await cancelledBehindHead(t);
  // The engine answers again before the checkIo's deadline: the head's step is sent again and commits.
  hold.release();
  t.equal(code(await answered(a, 1, 'the head request')), 0, 'the head request: granted');
  t.equal(await answered(a, 2, 'the cancelled checkIo'), ERROR_OPERATION_ABORTED, 'the cancel code (995), as at its deadline (not the 0 it would find)');
  await done();
});
