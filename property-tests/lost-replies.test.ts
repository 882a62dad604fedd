// Lost replies, model = no table at all but what the nodes answered (each request's answer: granted, failed, queued) and the fault schedule fast-check chose, while 2-3 nodes (SharedFiles over one MemoryEngine, each behind a link that loses a step's reply after it applied, cuts the node off, holds its inbox back; a flood node overruns the 64-entry log) run random POSIX/OFD, flock and Windows calls, cancels and closes on 2 files with small ranges; invariant: (1) after every step the engine applies no two granted records conflict (core conflicts() both ways), (2) once the faults heal and every handle is closed and every waiter aborted, every request is answered within a budget, and (3) once settled every waiting record stands for a request still waiting, every held byte lies in a request of its owner answered granted (same mode), and once everything is released the engine holds no record, except where a node reported a step that could not be undone (counted and printed, not failed).
import t from 'tap';
import fc from 'fast-check';
import { F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../src/core/codes.js';
import { fileHandleOf } from './arbitraries.js';
import { runs, show } from './harness.js';
import { excusedSamples, PATHS, runScenario, tally, type Cmd, type LROp } from './lost-replies.js';

const path = fc.oneof({ weight: 3, arbitrary: fc.constant(PATHS[0]!) }, { weight: 1, arbitrary: fc.constant(PATHS[1]!) });
/** Small ranges over bytes 0..7: requests meet. */
const range = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 3 }));
const cmd = fc.constantFrom(F_SETLK, F_SETLKW, F_SETLKW, F_SETLKW, F_GETLK);
const type = fc.constantFrom(F_RDLCK, F_WRLCK, F_WRLCK, F_UNLCK);
const owner = fc.constantFrom(1, 2);

const posix = fc.record({ path, kind: fc.constantFrom('posix', 'ofd'), o: owner, cmd, type, r: range }).map(
  ({ path, kind, o, cmd, type, r }): LROp => ({
    t: 'call',
    method: 'lock',
    input: { path, kind, lockType: type, cmd, lockStart: r[0], lockLen: r[1], lockOwner: o, lockPid: kind === 'posix' ? 100 + o - 1 : 0, fileHandle: fileHandleOf(kind as 'posix' | 'ofd', o - 1) },
  }),
);
const flock = fc.record({ path, o: owner, cmd, type }).map(
  ({ path, o, cmd, type }): LROp => ({ t: 'call', method: 'lock', input: { path, kind: 'flock', lockType: type, cmd, lockOwner: o, lockPid: 300 + o - 1, fileHandle: fileHandleOf('flock', o - 1) } }),
);
const lockFile = fc.record({ path, h: fc.constantFrom(1, 2), r: range, x: fc.boolean(), fi: fc.boolean() }).map(
  ({ path, h, r, x, fi }): LROp => ({ t: 'call', method: 'lockFile', input: { fileName: path, byteOffset: r[0], length: r[1], exclusiveLock: x, failImmediately: fi, handle: h } }),
);
const closeHandle = fc.record({ path, h: fc.constantFrom(1, 2) }).map(({ path, h }): LROp => ({ t: 'call', method: 'closeHandle', input: { fileName: path, handle: h } }));
const release = fc.record({ path, kind: fc.constantFrom('posix', 'ofd'), o: owner }).map(
  ({ path, kind, o }): LROp => ({ t: 'call', method: 'release', input: kind === 'ofd' ? { path, fileHandle: fileHandleOf('ofd', o - 1), lockOwner: o } : { path, fileHandle: fileHandleOf('posix', o - 1) } }),
);
const flush = fc.record({ path, o: owner }).map(({ path, o }): LROp => ({ t: 'call', method: 'flush', input: { path, lockOwner: o } }));

const op: fc.Arbitrary<LROp> = fc.oneof(
  { weight: 8, arbitrary: posix },
  { weight: 2, arbitrary: flock },
  { weight: 4, arbitrary: lockFile },
  { weight: 2, arbitrary: fc.nat(7).map((k): LROp => ({ t: 'unlockPrev', k })) },
  { weight: 1, arbitrary: closeHandle },
  { weight: 1, arbitrary: release },
  { weight: 1, arbitrary: flush },
  { weight: 3, arbitrary: fc.record({ k: fc.nat(7), reason: fc.constantFrom<'abort' | 'timeout'>('abort', 'timeout') }).map((c): LROp => ({ t: 'cancel', ...c })) },
  // The fault schedule.
  { weight: 2, arbitrary: fc.record({ resends: fc.constantFrom(0, 1, 3, 1000), flood: fc.boolean() }).map((c): LROp => ({ t: 'lose', ...c })) },
  { weight: 1, arbitrary: fc.constant<LROp>({ t: 'cut' }) },
  { weight: 3, arbitrary: fc.constant<LROp>({ t: 'heal' }) },
  { weight: 3, arbitrary: fc.constant<LROp>({ t: 'hold' }) },
  { weight: 1, arbitrary: fc.constant<LROp>({ t: 'deliver' }) },
  { weight: 1, arbitrary: path.map((p): LROp => ({ t: 'flood', path: p })) },
);

const scenario = fc.record({
  nodes: fc.integer({ min: 2, max: 3 }),
  cmds: fc.array(fc.tuple(fc.nat(2), op, fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })) as fc.Arbitrary<Cmd>, { maxLength: 30, size: 'max' }),
});

t.test('2-3 nodes over one engine, replies lost, nodes cut off, inboxes late, logs overrun: safe, live, consistent', async (t) => {
  // Shrinking a liveness failure waits out its budget at every try.
  t.setTimeout(60 * 60_000);
  const seed = process.env.LOCKSMITH_SEED === undefined ? (Math.random() * 2 ** 31) | 0 : Number(process.env.LOCKSMITH_SEED);
  t.comment(`seed ${seed} (LOCKSMITH_SEED=${seed} runs it again)`);
  const before = { ...tally };
  const started = performance.now();
  const r = await fc.check(
    fc.asyncProperty(scenario, ({ nodes, cmds }) => runScenario(nodes, cmds)),
    { numRuns: runs(60), seed, endOnFailure: process.env.LOCKSMITH_NO_SHRINK === '1' },
  );
  const d = Object.fromEntries(Object.entries(tally).map(([k, v]) => [k, v - (before as Record<string, number>)[k]!]));
  t.comment(`faults exercised: ${show(d)} in ${Math.round(performance.now() - started)} ms`);
  for (const s of excusedSamples) t.comment(`excused by a fault report:\n${s}`);
  if (r.failed) {
    const ce = r.counterexample?.[0] as { nodes: number; cmds: Cmd[] } | undefined;
    const msg = `counterexample (seed ${r.seed}, path ${r.counterexamplePath}, ${r.numShrinks} shrinks): ${ce?.nodes} nodes\n${(ce?.cmds ?? []).map((c) => `  ${show(c)}`).join('\n')}\n${r.errorInstance instanceof Error ? r.errorInstance.message : String(r.errorInstance)}`;
    // Printed whole (tap escapes a failure message's newlines).
    console.error(msg);
    t.fail('counterexample found (printed above)');
  } else {
    // Held inbox events need a waiter of one node ended by another's step while inboxes are held:
    // rare (see the count above), so not required of every seed.
    t.ok((d.lostApplied ?? 0) > 0 && (d.cutRefused ?? 0) > 0 && (d.wholeSets ?? 0) > 0 && (d.floodsInLoss ?? 0) > 0, 'lost replies, cut-off nodes and whole record sets were exercised');
  }
});

// ---- what the property found -------------------------------------------------------------------
// Shrunk counterexamples, replayed as they were found (against 65463c9). Both come from
// SharedFile.decide when a resent step's stale reply is the whole record set (the log of 64 no
// longer reaching back): it recognised its own step only among `missed` changes, and `unsure`
// was taken from the last reply only (a 'stale' one), so neither the step's own answer nor what
// it decided for other requests was kept.

const replay = (name: string, nodes: number, cmds: readonly Cmd[]) =>
  t.test(name, async (t) => {
    await runScenario(nodes, cmds);
    t.pass('safe, live, consistent');
  });

// Case 1: the lock's step applied, its reply was lost; its resend's stale reply is the whole set,
// which holds the lock it minted, yet the request was decided again on that set: the Windows
// request then waited behind its own exclusive lock (with failImmediately it would be refused,
// ERROR_LOCK_VIOLATION, holding it): a held lock no request was answered granted for.
replay('regression 1: a lock whose step applied unseen, then a whole record set: not decided again against itself', 2, [
  [0, { t: 'lose', resends: 0, flood: true }, false],
  [0, { t: 'call', method: 'lockFile', input: { fileName: '/a', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: false, handle: 1 } }, false],
]);

// Case 2: a cancel's step (it only removes the waiter) applied, its reply was lost; its resend's
// stale reply is the whole set, where the waiter is gone: decided again, the cancel finds no waiter
// and answers nothing, and the abort's answer was dropped: the request waits for ever (every later
// cancel is ignored: it is already cancelled; its handle's close finds no waiter).
replay('regression 2: a cancel whose step applied unseen, then a whole record set: the request is answered', 2, [
  [0, { t: 'call', method: 'lock', input: { path: '/b', kind: 'posix', lockType: F_WRLCK, cmd: F_SETLK, lockStart: 0, lockLen: 1, lockOwner: 1, lockPid: 100, fileHandle: 10 } }, false],
  [1, { t: 'call', method: 'lockFile', input: { fileName: '/b', byteOffset: 0, length: 1, exclusiveLock: false, failImmediately: false, handle: 1 } }, false],
  [1, { t: 'lose', resends: 0, flood: true }, false],
  [0, { t: 'cancel', k: 0, reason: 'abort' }, false],
]);

// Case 3 (found by a review run, LOCKSMITH_SEED=777, 300 runs; older than the cases above): a lock
// request's step whose reply was lost removed, besides its own, a lock an earlier unsure step had
// put and that was being undone; when this step was undone in turn, that lock was put back: the
// owner held [0,0] though its request was answered -ENOLCK.
replay('regression 3: undoing a lost step does not put back a lock that never stood', 2, [
  [0, { t: 'lose', resends: 1000, flood: false }, false],
  [0, { t: 'call', method: 'lock', input: { path: '/a', kind: 'posix', lockType: F_RDLCK, cmd: F_SETLK, lockStart: 0, lockLen: 1, lockOwner: 1, lockPid: 100, fileHandle: 10 } }, true],
  [1, { t: 'call', method: 'lock', input: { path: '/a', kind: 'posix', lockType: F_RDLCK, cmd: F_SETLK, lockStart: 0, lockLen: 1, lockOwner: 1, lockPid: 100, fileHandle: 10 } }, false],
  [0, { t: 'lose', resends: 1000, flood: false }, false],
  [0, { t: 'call', method: 'lockFile', input: { fileName: '/a', byteOffset: 0, length: 1, exclusiveLock: false, failImmediately: false, handle: 1 } }, false],
]);

// Case 4 (found by a review run, LOCKSMITH_SEED=127, 300 runs, and 141, 500 runs; about one run in
// 9,000): a lock request's step queued a waiter, applied, and its reply was lost (the request was
// answered -ENOLCK). The node learned it applied and marked it to be undone, its waiter's record
// still there; before the undo committed, another node's unlock granted that waiter, replacing the
// record with a lock of its owner. The undo looked no further than the records it knew: the lock
// stood, held by no request answered granted, and the node had reported the step "undone".
replay('regression 4: a lost step being undone whose waiter another node grants first: the grant is undone too', 2, [
  [0, { t: 'call', method: 'lockFile', input: { fileName: '/b', byteOffset: 1, length: 3, exclusiveLock: true, failImmediately: false, handle: 2 } }, false],
  [1, { t: 'lose', resends: 1000, flood: false }, false],
  [1, { t: 'call', method: 'lock', input: { path: '/b', kind: 'posix', lockType: F_RDLCK, cmd: F_SETLKW, lockStart: 2, lockLen: 3, lockOwner: 1, lockPid: 100, fileHandle: 10 } }, false],
  [0, { t: 'unlockPrev', k: 6 }, true],
  [1, { t: 'call', method: 'release', input: { path: '/b', fileHandle: 20, lockOwner: 1 } }, false],
]);
