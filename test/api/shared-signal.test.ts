/**
 * One AbortSignal shared by many waiting requests (one per session, or one for shutdown, as
 * applications use them): no MaxListenersExceededWarning, every waiter sharing it ends with its
 * family's abort code when it aborts, and a signal whose requests all ended keeps no listener.
 */
import t from 'tap';
import { getEventListeners } from 'node:events';
import { EINTR, ERROR_OPERATION_ABORTED, F_SETLK, F_SETLKW, F_WRLCK, LockCoordinator } from '../../src/index.js';
import { settles, waitFor } from './helpers.js';

t.test('forty waiters on one signal: no warning, all end on abort', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const c = await LockCoordinator.start({ workers: 2 });
  t.teardown(() => c.stop());

  const files = ['/s/a', '/s/b', '/s/c', '/s/d'];
  for (const [i, f] of files.entries()) {
    t.equal(await c.lockFile({ fileName: f, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: 1, processId: 1 }), 0);
    t.equal((await c.lock({ path: `${f}.p`, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLK, lockOwner: 100 + i })).result, 0);
  }
  const ac = new AbortController();
  const waiting: Promise<number>[] = [];
  for (let k = 0; k < 20; k++) {
    const f = files[k % files.length]!;
    waiting.push(c.lockFile({ fileName: f, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: false, handle: 10 + k, processId: 2, signal: ac.signal }));
    waiting.push(c.lock({ path: `${f}.p`, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLKW, lockOwner: 200 + k, signal: ac.signal }).then((r) => r.result));
  }
  await waitFor(async () => ((await c.stats()).waiting === 40 ? true : undefined), 'forty requests queued');
  t.ok(getEventListeners(ac.signal, 'abort').length <= 1, 'the shared signal carries one listener, not forty');
  ac.abort();
  const codes = await settles(Promise.all(waiting), 'the aborted waiters to end');
  t.strictSame(codes, waiting.map((_, k) => (k % 2 === 0 ? ERROR_OPERATION_ABORTED : -EINTR)), 'each ends with its family’s abort code');
  t.strictSame(warnings.filter((w) => w.includes('MaxListeners')), [], 'no MaxListenersExceededWarning');
});

t.test('a signal whose requests ended keeps no listener', async (t) => {
  const c = await LockCoordinator.start({ workers: 1 });
  t.teardown(() => c.stop());
  const ac = new AbortController();
  t.equal(await c.lockFile({ fileName: '/h', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: false, handle: 1, processId: 1 }), 0);
  const w = c.lockFile({ fileName: '/h', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: false, handle: 2, processId: 1, signal: ac.signal });
  const granted = c.lockFile({ fileName: '/g', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: false, handle: 3, processId: 1, signal: ac.signal });
  t.equal(await granted, 0, 'a request granted at once');
  await c.unlockFile({ fileName: '/h', byteOffset: 0, length: 1, handle: 1, processId: 1 });
  t.equal(await settles(w, 'the waiter to be granted'), 0, 'the waiter is granted');
  t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'no listener left on the signal');
});
