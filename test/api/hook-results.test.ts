/**
 * What an approval hook may answer (API.md "Starting and stopping"): 0 or nothing grants; a Win32
 * code (1 to 0xFFFFFFFF) from onLockFile, a negative errno from onLock, is the request's result;
 * anything else vetoes with the family's generic code (33, -ENOLCK), is counted in hookErrors and
 * reported with a warning that shows the answer's type (found by the new user's trial: -1 and 2^40
 * were passed on as Win32 codes, and '33' was shown as 33).
 */
import t from 'tap';
import { ENOLCK, F_SETLK, F_WRLCK, LockCoordinator } from '../../src/index.js';

t.test('approval answers outside the family’s codes veto with the generic code and say what they were', async (t) => {
  let answer: unknown = 0;
  const warnings: string[] = [];
  const onWarning = (w: Error) => {
    if (w.name === 'LocksmithHookWarning') warnings.push(w.message);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const c = await LockCoordinator.start({ workers: 1, onLockFile: () => answer as number, onUnlockFile: () => {}, onLock: () => answer as number });
  t.teardown(() => c.stop());
  const win = (handle: number) => c.lockFile({ fileName: '/r', byteOffset: handle, length: 1, exclusiveLock: true, failImmediately: true, handle });
  let handle = 0;
  for (const [a, result] of [[0, 0], [5, 5], [0xffffffff, 0xffffffff], [-1, 33], [2 ** 40, 33], ['33', 33], [33n, 33], [true, 33], [1.5, 33]] as const) {
    answer = a;
    t.equal(await win(++handle), result, `onLockFile answering ${typeof a} ${String(a)}: ${result}`);
  }
  const errors = (await c.stats()).hookErrors;
  t.equal(errors, 6, 'six answers were not Win32 codes: each counted');
  for (const [a, result] of [[-13, -13], [13, -ENOLCK], [0x10, -ENOLCK]] as const) {
    answer = a;
    t.equal((await c.lock({ path: '/p', lockType: F_WRLCK, lockStart: handle, lockLen: 1, cmd: F_SETLK, lockOwner: ++handle })).result, result, `onLock answering ${a}: ${result}`);
  }
  t.equal((await c.stats()).hookErrors, errors + 2, 'two answers were not negative errnos');
  await new Promise((r) => setImmediate(r));
  t.ok(warnings.some((w) => w.includes('the string "33"')), `a string answer is shown as a string (${warnings.join(' | ')})`);
  t.ok(warnings.some((w) => w.includes('the bigint 33n')), 'a bigint as a bigint');
  t.ok(warnings.some((w) => w.includes('-1, which is not a Win32 code')), '-1 named');
});
