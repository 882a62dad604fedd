// Windows (LockFileEx) family, model = records in grant order over the model's byte cells (model.ts); invariant: every lockFile/unlockFile/checkIo result (0, 33, 158, 87, 307), every waiter's end and locks() equal the model's, no two conflicting locks are ever granted, grants follow arrival order, and no waiter stays queued while it fits.
import t from 'tap';
import fc from 'fast-check';
import { modelRun, runs } from './harness.js';
import { mix, windowsCommands } from './arbitraries.js';

const paths = ['/a', '/b'];
const commands = mix(...windowsCommands(paths));

for (const policy of ['default', 'fifo'] as const) {
  t.test(`Windows byte-range locks agree with the reference model ('${policy}' policy)`, (t) => {
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
