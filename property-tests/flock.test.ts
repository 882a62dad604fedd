// flock(2) locks, model = one whole-file lock per owner in its own space plus an arrival-ordered queue (model.ts); invariant: every reply (conversion drops the old lock first), waiter end and locks() equals the model's, flock and fcntl locks never see each other, at most one flock lock per owner, and no waiter stays queued while it fits.
import t from 'tap';
import fc from 'fast-check';
import { modelRun, runs } from './harness.js';
import { cancelCommand, flockCommands, mix, posixCommands, releaseCommand } from './arbitraries.js';

const paths = ['/a', '/b'];
const commands = mix(
  { weight: 10, arbitrary: flockCommands(paths) },
  // A few byte-range locks on the same files: they must neither block nor be blocked by flock.
  { weight: 2, arbitrary: posixCommands(paths, { kinds: ['ofd'], smallCells: 4 }) },
  { weight: 2, arbitrary: releaseCommand(paths) },
  { weight: 1, arbitrary: cancelCommand },
);

for (const policy of ['default', 'fifo'] as const) {
  t.test(`flock locks agree with the reference model ('${policy}' policy)`, (t) => {
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 50, size: 'max' }), (cmds) => {
        modelRun({ policy, paths }, cmds);
      }),
      { numRuns: runs(3000) },
    );
    t.pass('no counterexample');
    t.end();
  });
}
