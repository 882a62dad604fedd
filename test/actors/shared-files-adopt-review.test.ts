/**
 * SharedFiles.adopt's promise for a session carried over an engine reset (the host says
 * 'adopted' once it settles true): true once every file's records are back or told lost, false
 * when a newer session comes first. Two nodes on a MemoryEngine (reset-harness); every wait is for
 * an event or an answer, within BUDGET_MS.
 */
import t from 'tap';
import { ERROR_LOCK_VIOLATION } from '../../src/core/codes.js';
import { parseCheckIo, type Call } from '../../src/core/requests.js';
import type { ReassertReply } from '../../src/store/index.js';
import { BUDGET_MS, answered, endGrace, lf, resetEngine, within } from './lost-link.js';
import { nodes } from './reset-harness.js';

const io = (handle: number, path: string): Call => parseCheckIo({ fileName: path, handle, processId: 1, byteOffset: 0, length: 10, write: true }) as Call;

// The grace period is over when the re-assertion arrives: refused 'late', the lock is told lost,
// and the wait ends (true): the host says 'adopted'.
t.test('a put-back refused too late: told lost, and the carried session is adopted', async (t) => {
  const { engine, a, b } = await nodes(t);
  a.sf.run(1, lf(1, 0, 10, true, '/p'), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of /p"), 0, 'handle 1 locks /p');
  const { old, epoch } = await resetEngine(engine, a, b);
  await endGrace(engine, a, b);
  a.lease[1] = epoch;
  const back = a.sf.adopt(epoch, old, 60_000);
  t.ok(back !== undefined, 'a carried session with a record to put back: a promise');
  t.equal(await within(back!, BUDGET_MS, 'the put-back settled'), true, 'settles true');
  a.sf.run(2, io(1, '/p'), a.target);
  t.equal(await answered(a, 2, 'checkIo through handle 1'), ERROR_LOCK_VIOLATION, 'handle 1 told lost (33)');
});

// The re-assertion is held; a newer session, not carried, comes first: false (not adopted), and
// the newer one's adopt needs no wait.
t.test('a newer session before the put-back settled: false', async (t) => {
  const { engine, a, b } = await nodes(t);
  a.sf.run(1, lf(1, 0, 10, true, '/p'), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of /p"), 0, 'handle 1 locks /p');
  const { old, epoch } = await resetEngine(engine, a, b);
  let release!: (r: ReassertReply) => void;
  const reassert = a.store.reassert.bind(a.store);
  a.store.reassert = () => new Promise<ReassertReply>((r) => (release = r));
  t.teardown(() => {
    a.store.reassert = reassert;
  });
  a.lease[1] = epoch;
  const back = a.sf.adopt(epoch, old, 60_000);
  t.ok(back !== undefined, 'a promise');
  t.equal(a.sf.adopt(epoch, old, 60_000), back, 'the same session again: the same promise');
  a.lease[1] = epoch + 1;
  t.equal(a.sf.adopt(epoch + 1, 0, 0), undefined, 'a newer session, lost: no wait');
  t.equal(await within(back!, BUDGET_MS, 'the older wait settled'), false, 'the carried one settles false');
  release({ ok: false, reason: 'fenced' });
});

// Telling the caller of the lost handles throws (a mount's mark, the caller's port): the wait
// ends all the same (true), or the carried session would never be confirmed.
t.test('a put-back told lost whose telling throws: the carried session is adopted all the same', async (t) => {
  const { engine, a, b } = await nodes(t);
  a.sf.run(1, lf(1, 0, 10, true, '/p'), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of /p"), 0, 'handle 1 locks /p');
  const { old, epoch } = await resetEngine(engine, a, b);
  await endGrace(engine, a, b);
  // Fault injection: the private telling callback throws once.
  const sf = a.sf as unknown as { tell: (m: unknown) => void };
  const tell = sf.tell;
  let threw = 0;
  sf.tell = () => {
    threw++;
    sf.tell = tell;
    throw new Error('telling failed');
  };
  a.lease[1] = epoch;
  const back = a.sf.adopt(epoch, old, 60_000);
  t.ok(back !== undefined, 'a promise');
  t.equal(await within(back!, BUDGET_MS, 'the put-back settled'), true, 'settles true');
  t.equal(threw, 1, 'the telling threw once');
});
