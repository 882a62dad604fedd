/**
 * stop() ends at once, whatever waits: every waiter is answered 995 / -EINTR by its host, requests
 * held by a hook that never answers end the same way, and a worker dying during stop takes nothing
 * down. hookTimeoutMs is an hour in every test here, so a stop that waited for a hook's timeout (as
 * it once did) would outlive tap's file timeout and fail; none of these checks reads a clock.
 */
import t from 'tap';
import { LockCoordinator, F_SETLK, F_SETLKW, F_WRLCK, F_RDLCK, EINTR, ERROR_OPERATION_ABORTED } from '../../src/index.js';
import { waitFor } from './helpers.js';

const HOUR = 3_600_000;

/** Granted locks of both families on several files over 2 workers, and a waiter of each family on each file. */
async function loaded(c: LockCoordinator, files: string[]) {
  const waiters: Promise<unknown>[] = [];
  for (const f of files) {
    t.equal(await c.lockFile({ fileName: f, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: 1 }), 0);
    t.equal((await c.lock({ path: `${f}.p`, lockType: F_RDLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1 })).result, 0);
    waiters.push(c.lockFile({ fileName: f, byteOffset: 0, length: 10, exclusiveLock: false, failImmediately: false, handle: 2 }));
    waiters.push(c.lock({ path: `${f}.p`, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLKW, lockOwner: 2 }).then((r) => r.result));
  }
  await waitFor(async () => (await c.locks()).filter((e) => e.state === 'waiting').length === waiters.length, `${waiters.length} waiters queued`);
  return waiters;
}

const expected = (files: string[]) => files.flatMap(() => [ERROR_OPERATION_ABORTED, -EINTR]);

t.test('stop() with waiters of both families on both workers: every waiter answered, three rounds', async (t) => {
  const files = ['/a', '/b', '/c', '/d'];
  for (let round = 0; round < 3; round++) {
    const c = await LockCoordinator.start({ workers: 2, hookTimeoutMs: HOUR });
    const waiters = await loaded(c, files);
    const order: string[] = [];
    const all = Promise.all(waiters).then((codes) => {
      order.push('waiters');
      return codes;
    });
    await c.stop().then(() => order.push('stop'));
    t.strictSame(await all, expected(files), `round ${round}: 995 / -EINTR for each waiter`);
    t.strictSame(order, ['waiters', 'stop'], `round ${round}: the waiters were answered before stop() resolved`);
    await t.rejects(c.lockFile({ fileName: '/a', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 9 }), /stopped/);
  }
});

t.test('stop() while a hook never answers: the request in the hook and the one queued behind it end with 995', async (t) => {
  let entered!: () => void;
  const inHook = new Promise<void>((r) => (entered = r));
  const c = await LockCoordinator.start({
    workers: 1,
    hookTimeoutMs: HOUR,
    onLockFile: () => {
      entered();
      return new Promise<number>(() => {});
    },
    onUnlockFile: () => {},
  });
  const held = c.lockFile({ fileName: '/h', byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: false, handle: 1 });
  await inHook;
  const behind = c.lockFile({ fileName: '/h', byteOffset: 20, length: 10, exclusiveLock: true, failImmediately: true, handle: 2 });
  const posix = c.lock({ path: '/h', lockType: F_WRLCK, lockStart: 40, lockLen: 1, cmd: F_SETLKW, lockOwner: 3 });
  await c.stop();
  t.equal(await held, ERROR_OPERATION_ABORTED, 'the request inside the hook');
  t.equal(await behind, ERROR_OPERATION_ABORTED, 'the request queued behind it in the file mailbox');
  t.equal((await posix).result, -EINTR, 'a POSIX request queued behind it');
});

t.test('a worker crash racing stop(): no uncaught error, stop() resolves, every waiter answered', async (t) => {
  const files = ['/a', '/b', '/c', '/d'];
  for (let round = 0; round < 2; round++) {
    const c = await LockCoordinator.start({ workers: 2, hookTimeoutMs: HOUR });
    const waiters = await loaded(c, files);
    const drill = c.crashWorker(round % 2).catch(() => undefined);
    await c.stop();
    await drill;
    const codes = await Promise.all(waiters);
    t.equal(codes.length, 8, `round ${round}: all eight waiters answered`);
    t.ok(codes.every((x) => x === ERROR_OPERATION_ABORTED || x === -EINTR), `round ${round}: each with its family's stop code`);
  }
});

t.test('locks() and stats() in flight when stop() runs reject as stopped instead of hanging', async (t) => {
  const c = await LockCoordinator.start({ workers: 2, hookTimeoutMs: HOUR });
  await loaded(c, ['/x']);
  const listing = c.locks().then(
    () => 'answered',
    (e: Error) => e.message,
  );
  const stats = c.stats().then(
    () => 'answered',
    (e: Error) => e.message,
  );
  await c.stop();
  t.match(await listing, /answered|stopped/);
  t.match(await stats, /answered|stopped/);
});
