/**
 * A hook that makes a request on the file whose lock it is deciding: that file's requests wait for
 * the hook's verdict, so the request is refused at once with an Error that says so (before, it held
 * the file for hookTimeoutMs and then vetoed). hookTimeoutMs is an hour here: the old behaviour
 * would outlive tap's file timeout, so these tests need no clock.
 */
import t from 'tap';
import { LockCoordinator, F_SETLK, F_WRLCK } from '../../src/index.js';

const HOUR = 3_600_000;

t.test('onLockFile calling lockFile on its own file is refused at once; on another file it runs', async (t) => {
  const seen: string[] = [];
  let c!: LockCoordinator;
  c = await LockCoordinator.start({
    workers: 2,
    hookTimeoutMs: HOUR,
    onLockFile: async (e) => {
      if (e.fileName !== '/own') return 0;
      try {
        await c.lockFile({ fileName: '/own', byteOffset: 100, length: 1, exclusiveLock: true, failImmediately: true, handle: 9 });
        seen.push('own: answered');
      } catch (err) {
        seen.push(`own: ${(err as Error).message}`);
      }
      seen.push(`other: ${await c.lockFile({ fileName: '/other', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 9 })}`);
      return 0;
    },
    onUnlockFile: () => {},
  });
  t.teardown(() => c.stop());
  t.equal(await c.lockFile({ fileName: '/own', byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: false, handle: 1 }), 0, 'the outer lock is granted');
  t.equal(seen.length, 2);
  t.match(seen[0], /lockFile on '\/own' was called from inside the onLockFile hook/);
  t.match(seen[0], /after the hook has returned/);
  t.equal(seen[1], 'other: 0', 'a request on another file from inside the hook is decided normally');
  t.strictSame((await c.locks('/own')).map((e) => [e.start, e.state]), [[0n, 'granted']], 'the refused request left nothing behind');
});

t.test('onLock calling lock on its own file is refused; the same call made after the hook returned runs', async (t) => {
  const seen: string[] = [];
  let later: Promise<unknown> | undefined;
  let c!: LockCoordinator;
  c = await LockCoordinator.start({
    workers: 1,
    hookTimeoutMs: HOUR,
    onLock: async (e) => {
      if (e.path !== '/p' || e.lockType !== F_WRLCK || e.lockOwner !== 1) return 0;
      const call = () => c.lock({ path: '/p', lockType: F_WRLCK, lockStart: 50, lockLen: 1, cmd: F_SETLK, lockOwner: 2 });
      await call().then(
        (r) => seen.push(`inside: ${r.result}`),
        (err: Error) => seen.push(`inside: ${err.message}`),
      );
      // Deferred past the hook's return: the file is free again by then.
      later = new Promise((resolve) => setTimeout(resolve, 0)).then(call);
      return 0;
    },
  });
  t.teardown(() => c.stop());
  t.equal((await c.lock({ path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1 })).result, 0);
  t.match(seen[0], /lock on '\/p' was called from inside the onLock hook/);
  t.equal(((await later) as { result: number }).result, 0, 'the same request made after the hook returned is granted');
});

t.test('requests held behind a running approval hook still end by their own timeout or signal', async (t) => {
  let answer!: (v: number) => void;
  let entered!: () => void;
  const inHook = new Promise<void>((r) => (entered = r));
  const c = await LockCoordinator.start({
    workers: 1,
    hookTimeoutMs: HOUR,
    onLockFile: (e) => {
      if (e.handle !== 1) return 0;
      entered();
      return new Promise<number>((r) => (answer = r));
    },
    onUnlockFile: () => {},
  });
  t.teardown(() => c.stop());
  const outer = c.lockFile({ fileName: '/q', byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: false, handle: 1 });
  await inHook;
  const ac = new AbortController();
  const winTimeout = c.lockFile({ fileName: '/q', byteOffset: 20, length: 1, exclusiveLock: true, failImmediately: false, handle: 2, timeoutMs: 10 });
  const winAbort = c.lockFile({ fileName: '/q', byteOffset: 30, length: 1, exclusiveLock: true, failImmediately: false, handle: 3, signal: ac.signal });
  const posixTimeout = c.lock({ path: '/q', lockType: F_WRLCK, lockStart: 40, lockLen: 1, cmd: F_SETLK, lockOwner: 4, timeoutMs: 10 });
  const posixAbort = c.lock({ path: '/q', lockType: F_WRLCK, lockStart: 50, lockLen: 1, cmd: F_SETLK, lockOwner: 5, signal: ac.signal });
  ac.abort();
  // The four end while the hook still holds the file: nothing here answers the hook first.
  t.equal(await winTimeout, 33, 'lockFile: its timeout ends it with ERROR_LOCK_VIOLATION');
  t.equal(await winAbort, 995, 'lockFile: its signal ends it with ERROR_OPERATION_ABORTED');
  t.equal((await posixTimeout).result, -11, 'lock: its timeout ends it with -EAGAIN');
  t.equal((await posixAbort).result, -4, 'lock: its signal ends it with -EINTR');
  answer(0);
  t.equal(await outer, 0, 'the request in the hook is granted when the hook answers');
  t.strictSame((await c.locks('/q')).map((e) => e.start), [0n], 'none of the cancelled requests holds a lock');
});
