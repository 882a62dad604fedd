// Malformed and out-of-range requests interleaved with valid ones, model = the reference model's decoding (model.ts); invariant: a wrong type throws a TypeError naming the field, an out-of-range value gives the documented code (87, 307, -EINVAL, -EOVERFLOW), and neither changes locks() or ends a waiter.
import t from 'tap';
import fc from 'fast-check';
import { modelRun, runs } from './harness.js';
import { cancelCommand, flockCommands, garbageCommands, mix, posixCommands, windowsCommands } from './arbitraries.js';

// Windows and POSIX valid requests on separate files: how the two families meet is mixed.test.ts's
// business, and this property should fail only for bad input.
const paths = ['/w', '/p'];
const commands = mix(
  ...windowsCommands(['/w']),
  { weight: 8, arbitrary: posixCommands(['/p'], { smallCells: 5 }) },
  { weight: 2, arbitrary: flockCommands(['/p']) },
  { weight: 1, arbitrary: cancelCommand },
  { weight: 16, arbitrary: garbageCommands(paths) },
);

t.test('bad input is refused without touching any lock', (t) => {
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 50, size: 'max' }), (cmds) => {
      modelRun({ policy: 'default', paths, graphChecks: true }, cmds);
    }),
    { numRuns: runs(3000) },
  );
  t.pass('no counterexample');
  t.end();
});
