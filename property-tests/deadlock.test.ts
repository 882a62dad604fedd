// Deadlock detection among classic POSIX owners on several files, model = the wait-for graph read off locks() (edge A -> B when a waiting 'posix' request of A conflicts with a granted 'posix' lock of B) plus the reference model (model.ts); invariant: F_SETLKW gets EDEADLK exactly when its edges would close a cycle, a waiter is failed with EDEADLK only while it is on a cycle, and the graph is acyclic after every step.
import t from 'tap';
import fc from 'fast-check';
import { modelRun, runs } from './harness.js';
import { cancelCommand, flushCommand, mix, posixCommands, releaseCommand } from './arbitraries.js';

const paths = ['/a', '/b', '/c'];
const owners = [1, 2, 3, 4];
const commands = mix(
  { weight: 14, arbitrary: posixCommands(paths, { kinds: ['posix'], owners, smallCells: 3 }) },
  { weight: 2, arbitrary: flushCommand(paths, owners) },
  { weight: 1, arbitrary: releaseCommand(paths, owners) },
  { weight: 2, arbitrary: cancelCommand },
);

t.test('deadlock detection is exact (default policy, compared with the model)', (t) => {
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 60, size: 'max' }), (cmds) => {
      modelRun({ policy: 'default', paths, graphChecks: true }, cmds);
    }),
    { numRuns: runs(5000) },
  );
  t.pass('no counterexample');
  t.end();
});

// Under 'fifo' the documents fix only that 'fifo' must not create deadlocks (SEMANTICS-POSIX.md §6),
// so no model comparison here: the graph of waits on granted locks stays acyclic, EDEADLK answers
// match it exactly, and the listing invariants hold.
t.test("deadlock detection under 'fifo' keeps the invariants", (t) => {
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 60, size: 'max' }), (cmds) => {
      modelRun({ policy: 'fifo', paths, graphChecks: true, exact: false }, cmds);
    }),
    { numRuns: runs(3000) },
  );
  t.pass('no counterexample');
  t.end();
});
