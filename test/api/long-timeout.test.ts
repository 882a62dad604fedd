/**
 * timeoutMs of 2^31 ms or more: Node's setTimeout would clamp it to 1 ms and end the wait at once.
 * Such a waiter must stay queued (it is listed as waiting after several round trips) and still end
 * by its grant or its signal.
 */
import t from 'tap';
import { LockCoordinator, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, ERROR_OPERATION_ABORTED } from '../../src/index.js';
import { waitFor } from './helpers.js';

t.test('timeouts of 2^31 ms, 30 days and Number.MAX_SAFE_INTEGER keep the request waiting', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const c = await LockCoordinator.start({ workers: 1 });
  t.teardown(() => c.stop());
  t.equal(await c.lockFile({ fileName: '/w', byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: 1 }), 0);
  t.equal((await c.lock({ path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1 })).result, 0);
  const ac = new AbortController();
  const timeouts = [2 ** 31, 30 * 24 * 3600 * 1000, Number.MAX_SAFE_INTEGER];
  const win = timeouts.map((timeoutMs, i) =>
    c.lockFile({ fileName: '/w', byteOffset: 0, length: 10, exclusiveLock: false, failImmediately: false, handle: 10 + i, timeoutMs, signal: ac.signal }),
  );
  const posix = timeouts.map((timeoutMs, i) => c.lock({ path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLKW, lockOwner: 10 + i, timeoutMs }));
  await waitFor(async () => (await c.locks()).filter((e) => e.state === 'waiting').length === 6, 'six waiters queued');
  // A clamped timer fires after 1 ms: give it many turns of the event loop and round trips.
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal((await c.locks()).filter((e) => e.state === 'waiting').length, 6, 'all six still wait');
  t.notOk(warnings.includes('TimeoutOverflowWarning'), 'no timer was clamped');
  ac.abort();
  t.strictSame(await Promise.all(win), [ERROR_OPERATION_ABORTED, ERROR_OPERATION_ABORTED, ERROR_OPERATION_ABORTED], 'Windows waiters end by their signal');
  t.equal((await c.lock({ path: '/p', lockType: F_UNLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1 })).result, 0);
  const first = await posix[0]!;
  t.equal(first.result, 0, 'the first POSIX waiter is granted when the lock goes');
});

t.test('a short timeout still expires', async (t) => {
  const c = await LockCoordinator.start({ workers: 1 });
  t.teardown(() => c.stop());
  t.equal((await c.lock({ path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1 })).result, 0);
  t.equal((await c.lock({ path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLKW, lockOwner: 2, timeoutMs: 20 })).result, -11);
});
