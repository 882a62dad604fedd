// Windows, POSIX, OFD and flock locks on the same files, model = the shared per-cell model (model.ts) where Windows and POSIX/OFD locks are other owners to each other (shared ~ read, exclusive ~ write) and flock is apart; invariant: every result, waiter end and locks() equals the model's, no two conflicting locks of any families are granted, F_GETLK reports a real conflicting lock (Windows holders included), and no waiter stays queued while it fits.
import t from 'tap';
import fc from 'fast-check';
import { modelRun, runs } from './harness.js';
import { cancelCommand, flockCommands, flushCommand, mix, posixCommands, releaseCommand, windowsCommands } from './arbitraries.js';

const paths = ['/a', '/b'];
const commands = (blockingPosix: boolean) =>
  mix(
    ...windowsCommands(paths),
    { weight: 10, arbitrary: posixCommands(paths, { blockingPosix, smallCells: 5 }) },
    { weight: 2, arbitrary: flockCommands(paths) },
    { weight: 1, arbitrary: flushCommand(paths) },
    { weight: 1, arbitrary: releaseCommand(paths) },
    { weight: 1, arbitrary: cancelCommand },
  );

t.test('mixed Windows and POSIX files agree with the reference model (default policy)', (t) => {
  fc.assert(
    fc.property(fc.commands(commands(true), { maxCommands: 50, size: 'max' }), (cmds) => {
      modelRun({ policy: 'default', paths, graphChecks: true }, cmds);
    }),
    { numRuns: runs(2000) },
  );
  t.pass('no counterexample');
  t.end();
});

// Classic POSIX requests do not wait under 'fifo' here (see model.ts and deadlock.test.ts).
t.test("mixed Windows and POSIX files agree with the reference model ('fifo' policy)", (t) => {
  fc.assert(
    fc.property(fc.commands(commands(false), { maxCommands: 50, size: 'max' }), (cmds) => {
      modelRun({ policy: 'fifo', paths }, cmds);
    }),
    { numRuns: runs(2000) },
  );
  t.pass('no counterexample');
  t.end();
});
