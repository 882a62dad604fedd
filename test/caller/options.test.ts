/**
 * One rule for `workers` wherever a user gives it (API, mountFuse, runSynthetic, `locksmith mount
 * --workers`, `locksmith stress --workers`): an integer from 1 to 256, and an error that names the
 * field as the user typed it and says what it got. Options nobody knows are refused, not ignored.
 */
import t from 'tap';
import { MAX_WORKERS, checkWorkers, workersArg } from '../../src/caller/options.js';
import { LockCoordinator, mountFuse, runSynthetic } from '../../src/index.js';

t.test('checkWorkers: 1 to 256, the field named, the wrong type said', async (t) => {
  t.equal(MAX_WORKERS, 256);
  t.equal(checkWorkers(1, 'options.workers'), 1);
  t.equal(checkWorkers(256, 'options.workers'), 256);
  for (const [v, got] of [
    [0, 'got 0'],
    [257, 'got 257'],
    [2.5, 'got 2.5'],
    ['2', "got the string '2'"],
    [2n, 'got the bigint 2n'],
    [undefined, 'got undefined'],
  ] as const) {
    t.throws(() => checkWorkers(v, 'options.workers'), { name: 'TypeError', message: `options.workers must be an integer from 1 to 256, ${got}` });
  }
});

t.test('--workers on a command line: the text as typed', async (t) => {
  t.equal(workersArg('8'), 8);
  t.throws(() => workersArg('two'), { message: "--workers must be an integer from 1 to 256, got 'two'" });
  t.throws(() => workersArg('-1'), { message: "--workers must be an integer from 1 to 256, got '-1'" });
  t.throws(() => workersArg('500'), { message: '--workers must be an integer from 1 to 256, got 500' });
});

t.test('every entry point applies it, and refuses an option it does not know', async (t) => {
  await t.rejects(LockCoordinator.start({ workers: 300 }), { message: 'options.workers must be an integer from 1 to 256, got 300' });
  await t.rejects(mountFuse({ backing: '/tmp', mountpoint: '/nonexistent', workers: 0 }), { message: 'workers must be an integer from 1 to 256, got 0' });
  await t.rejects(runSynthetic({ workers: 1000, opsPerThread: 1 }), { message: 'workers must be an integer from 1 to 256, got 1000' });
  await t.rejects(mountFuse({ backing: '/tmp', mountpoint: '/nonexistent', workerz: 2 } as never), { name: 'TypeError', message: /unknown field 'workerz' in mountFuse options/ });
  await t.rejects(mountFuse({ backing: '/tmp', mountpoint: '/nonexistent', locks: 'no' } as never), { name: 'TypeError', message: "locks must be a boolean, got the string 'no'" });
  await t.rejects(runSynthetic({ workers: 1 } as never), { name: 'TypeError', message: 'opsPerThread must be a positive integer, got undefined' });
  await t.rejects(runSynthetic({ workers: 1, opsPerThread: 1, wat: 1 } as never), { name: 'TypeError', message: /unknown field 'wat' in runSynthetic options/ });
});
