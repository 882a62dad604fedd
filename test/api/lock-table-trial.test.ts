/**
 * Found by a new user's trial (issue 13). docs/API.md "The synchronous core": LockTable "takes the
 * same request objects as the coordinator". Two differences a user embedding it meets:
 * - an unknown field (a misspelled `timeoutMS`) is silently accepted, where the coordinator rejects
 *   it with a TypeError naming it and the closest known name ("Both families");
 * - `signal` (and `timeoutMs`) are accepted and ignored: a request with a signal already aborted
 *   is queued as a Pending, where the coordinator answers 995 / -EINTR "before anything else", and
 *   a wait with timeoutMs stays queued for ever. Either honour them or reject them with a TypeError
 *   saying the embedder ends waits with cancel(pending, reason).
 * Now: an unknown field or option is a TypeError naming it; timeoutMs and signal are refused with
 * a TypeError that says how the embedder ends a wait (cancel).
 */
import t from 'tap';
import { ERROR_LOCK_VIOLATION, ERROR_OPERATION_ABORTED, EINTR, type Pending, F_SETLK, F_SETLKW, F_WRLCK, LockTable } from '../../src/index.js';

const winReq = { fileName: 'a', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 1 };

t.test('an unknown field of a LockTable request is a TypeError naming it, as on the coordinator', async (t) => {
  const table = new LockTable();
  t.throws(() => table.lockFile({ ...winReq, timeoutMS: 5 }), { name: 'TypeError', message: /timeoutMS/ }, 'lockFile: timeoutMS');
  t.throws(() => table.lock({ path: 'p', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 1, lockowner: 2 }), { name: 'TypeError', message: /lockowner/ }, 'lock: lockowner');
  t.same(table.locks(), [], 'and nothing was locked');
  t.throws(() => new LockTable({ polcy: 'fifo' } as never), { name: 'TypeError', message: /polcy/ }, 'an unknown option too');
});

t.test('a LockTable request with timeoutMs is refused, saying how a wait ends', async (t) => {
  const table = new LockTable();
  t.equal(table.lockFile(winReq), 0, 'handle 1 holds byte 0');
  t.throws(() => table.lockFile({ ...winReq, handle: 2, failImmediately: false, timeoutMs: 10 }), { name: 'TypeError', message: /timeoutMs.*cancel\(pending, 'timeout'\)/ }, 'lockFile with timeoutMs');
  t.throws(() => table.lock({ path: 'p', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLKW, lockOwner: 3, timeoutMs: 10 }), { name: 'TypeError', message: /timeoutMs/ }, 'lock with timeoutMs');
  t.equal(table.locks('a').length, 1, 'only the first lock, nothing queued');
  let code: number | undefined;
  const p = table.lockFile({ ...winReq, handle: 2, failImmediately: false, timeoutMs: undefined }, (c) => (code = c));
  t.ok(typeof p === 'object' && p !== null && 'waiter' in p, 'timeoutMs: undefined is no timeout: the request queues');
  table.cancel(p as Pending, 'timeout');
  t.equal(code, ERROR_LOCK_VIOLATION, 'and cancel ends it as a timeout would (33)');
});

t.test('a LockTable request whose signal is already aborted is not queued', async (t) => {
  const table = new LockTable();
  t.equal(table.lockFile(winReq), 0, 'handle 1 holds byte 0');
  const aborted = AbortSignal.abort();
  let answered: unknown;
  let r: unknown;
  try {
    r = table.lockFile({ ...winReq, handle: 2, failImmediately: false, signal: aborted }, (code) => { answered = code; });
  } catch (e) {
    r = e; // a TypeError saying LockTable takes no signal would also do
  }
  t.ok(r === ERROR_OPERATION_ABORTED || answered === ERROR_OPERATION_ABORTED || r instanceof TypeError, `lockFile answers 995 or refuses the signal (got ${typeof r === 'object' && r !== null ? Object.keys(r).join(',') : String(r)})`);
  t.equal(table.locks('a').filter((e) => e.state === 'waiting').length, 0, 'nothing left queued');
  let p: unknown;
  try {
    p = table.lock({ path: 'p', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLKW, lockOwner: 3, signal: aborted });
  } catch (e) {
    p = e;
  }
  t.ok(p instanceof TypeError || (p as { result?: number }).result === -EINTR, 'lock answers -EINTR or refuses the signal');
});
