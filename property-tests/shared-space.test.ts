// Shared lock space, model = ONE plain LockTable that receives every call with its owners qualified by node (core/records.ts qualify) in the order the space commits them, while 2-3 logical nodes (a NodeStore from memoryStore and a SharedFiles each, over one MemoryEngine) run the same calls one at a time, each until the space is quiescent, and a node may die (its session ends, another node reaps its records; the model drops its locks and waiters, and its requests get no answer); invariant: every answer (immediate result, F_GETLK report with lockPid 0 for another node's holder and the holder's pid for its own node's, each waiter's grant or failure, in each node's order) equals the model's, after every quiescent point the store's records decoded equal the model's granted locks (as a set) and waiters (in queue order) with the same owners, ranges, modes and pids, the engine's wait-for edges of each POSIX waiter are the model's waiter's blockers (hard) and the owners it queues behind (soft) and no edge outlives its waiter, no step ever commits two conflicting granted locks, every granted record carries a fence that is one its file showed before (a split keeps it) or above all before on that file (every node has approving hooks, so every grant is numbered), and once everything is released every waiter has ended and the store is empty.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../src/core/codes.js';
import type { Policy } from '../src/core/file-locks.js';
import { parseCheckIo, parseLock, parseLockFile, parseRelease, type Call } from '../src/core/requests.js';
import { cancelCommand, fileHandleOf, flockCommands, flushCommand, posixCommands, releaseCommand, windowsCommands } from './arbitraries.js';
import { runs, show } from './harness.js';
import { PATHS, runScenario, Space, tally, Violation, type SpaceOp } from './shared-space.js';

// ---- the property ---------------------------------------------------------------------------------------

const opArb = (blockingPosix: boolean): fc.Arbitrary<SpaceOp> =>
  fc
    .oneof(
      // A node dies and another reaps its records (rare: most runs keep every node).
      { weight: 1, arbitrary: fc.constant({ op: { t: 'die' } as SpaceOp }) },
      ...windowsCommands(PATHS),
      { weight: 10, arbitrary: posixCommands(PATHS, { blockingPosix, smallCells: 4 }) },
      { weight: 2, arbitrary: flockCommands(PATHS) },
      { weight: 1, arbitrary: flushCommand(PATHS) },
      { weight: 1, arbitrary: releaseCommand(PATHS) },
      { weight: 1, arbitrary: cancelCommand },
    )
    .map((c): SpaceOp => c.op);

/** 2 or 3 nodes; each command names its node (modulo the count). */
const scenario = (blockingPosix: boolean) =>
  fc.record({
    nodes: fc.integer({ min: 2, max: 3 }),
    cmds: fc.array(fc.tuple(fc.nat(2), opArb(blockingPosix)), { maxLength: 30, size: 'max' }),
  });

// When this file was written the property failed within its first runs; its shrunk
// counterexamples are the regression cases 1, 2 and 3 below, each fixed since.
t.test('2-3 nodes over one engine agree with one LockTable (default policy)', async (t) => {
  const before = { ...tally };
  await fc.assert(
    fc.asyncProperty(scenario(true), ({ nodes, cmds }) => runScenario('default', nodes, cmds)),
    { numRuns: runs(200) },
  );
  t.pass(`no counterexample (${tally.commits - before.commits} commits, ${tally.stale - before.stale} refused as stale and decided again, ${tally.waited - before.waited} requests waited, ${tally.fenced - before.fenced} fences checked)`);
});

// Under 'fifo' classic POSIX requests wait too: the escape that lets a request pass an earlier
// waiter when queueing behind it would close a cycle asks the engine about every node's edges
// (regression case 4 below).
t.test("2-3 nodes over one engine agree with one LockTable ('fifo' policy)", async (t) => {
  await fc.assert(
    fc.asyncProperty(scenario(true), ({ nodes, cmds }) => runScenario('fifo', nodes, cmds)),
    { numRuns: runs(100) },
  );
  t.pass('no counterexample');
});

// A heavier mix: 3 nodes, up to 60 commands, classic POSIX waiters and the flushes, closes and
// cancels that end them weighted up, so that one release or close often moves several waiters of
// one file at once (wait-for cycles through a file's own waiters, the EDEADLK victim, F_GETLK
// ties). Searched with thousands of runs (LOCKSMITH_PROPERTY_RUNS=3000) it found regression cases
// 8, 9 and 10 below, about one failing run in a thousand; the suite's 300 runs are a lighter pass.
const heavyOp: fc.Arbitrary<SpaceOp> = fc
  .oneof(
    { weight: 1, arbitrary: fc.constant({ op: { t: 'die' } as SpaceOp }) },
    { weight: 14, arbitrary: posixCommands(PATHS, { kinds: ['posix'], blockingPosix: true, smallCells: 4 }) },
    { weight: 3, arbitrary: posixCommands(PATHS, { kinds: ['ofd'], smallCells: 4 }) },
    { weight: 2, arbitrary: flockCommands(PATHS) },
    { weight: 3, arbitrary: flushCommand(PATHS) },
    { weight: 2, arbitrary: releaseCommand(PATHS) },
    { weight: 2, arbitrary: cancelCommand },
  )
  .map((c): SpaceOp => c.op);
const heavy = fc.record({ nodes: fc.constant(3), cmds: fc.array(fc.tuple(fc.nat(2), heavyOp), { maxLength: 60, size: 'max' }) });

// Under 'fifo' this mix also finds, about once in 2,000 runs, the limit the 'todo' regression 12
// below shows (a node's wake-up passes reach only the files it has read since their waiters
// came): in the suite it runs the default policy; LOCKSMITH_PROPERTY_FIFO_HEAVY=1 adds 'fifo'.
const heavyPolicies = process.env.LOCKSMITH_PROPERTY_FIFO_HEAVY === '1' ? (['default', 'fifo'] as const) : (['default'] as const);
for (const policy of heavyPolicies) {
  t.test(`3 nodes, 60 commands weighted to classic POSIX waits and closes, agree with one LockTable ('${policy}')`, async (t) => {
    const before = { ...tally };
    await fc.assert(
      fc.asyncProperty(heavy, ({ nodes, cmds }) => runScenario(policy, nodes, cmds)),
      { numRuns: runs(300) },
    );
    const waited = tally.waited - before.waited;
    t.ok(waited > 150, `requests waited (${waited}, about two a run): a generator that stopped making waiters fails here`);
    t.pass(`no counterexample (${tally.commits - before.commits} commits, ${tally.stale - before.stale} refused as stale and decided again)`);
  });
}

// ---- two nodes decide on the same version --------------------------------------------------------------

/** A classic POSIX call as the kernel would send it. */
const lockCall = (path: string, cmd: number, lockType: number, start: number | bigint, len: number | bigint, owner: number | string, pid: number, fileHandle: number): Call =>
  parseLock({ path, cmd, lockType, lockStart: start, lockLen: len, lockOwner: owner, lockPid: pid, kind: 'posix', fileHandle }) as Call;
/** A classic POSIX call of lockOwner `owner` (1 or 2: pid 99 + owner, fileHandle as the generators give it). */
const px = (path: string, cmd: number, lockType: number, start: number, len: number, owner: number): Call =>
  lockCall(path, cmd, lockType, start, len, owner, 99 + owner, fileHandleOf('posix', owner - 1));

const cmdName = (cmd: number) => (cmd === F_SETLK ? 'F_SETLK' : cmd === F_SETLKW ? 'F_SETLKW' : 'F_GETLK');

t.test('two nodes commit on the same version: one is refused as stale, decides again, and the outcome is the model applying them in commit order', async (t) => {
  for (const cmd of [F_SETLK, F_SETLKW]) {
    await inSpace(t, 'default', 2, async (s) => {
      // n0 holds [10, 10]; n1 reads the file: both nodes keep its records cached at one version.
      await s.submit(0, px('/a', F_SETLK, F_WRLCK, 10, 1, 1), 'F_SETLK W [10,10] o1');
      await s.submit(1, px('/a', F_GETLK, F_WRLCK, 10, 1, 1), 'F_GETLK W [10,10] o1');
      const before = s.commits.length;
      const seen = () => s.commits.slice(before);
      // Submitted in one turn: each decides "granted" on that version; only one step can apply.
      await s.together(
        [
          { node: 0, call: px('/a', cmd, F_WRLCK, 0, 1, 2), text: `${cmdName(cmd)} W [0,0] o2` },
          { node: 1, call: px('/a', cmd, F_RDLCK, 0, 2, 1), text: `${cmdName(cmd)} R [0,1] o1` },
        ],
        // The model's order is the commit order: the node refused as stale went second.
        (reqs) => {
          const late = seen().find((c) => c.reply === 'stale')?.node;
          return [...reqs].sort((x, y) => Number(x.node === late) - Number(y.node === late));
        },
      );
      const c = seen();
      t.ok(c.length >= 2 && c[0]!.reply === 'ok' && c[1]!.reply === 'stale' && c[0]!.base === c[1]!.base, `two commits on one version, the second refused as stale: ${show(c)}`);
      // F_SETLK: the second decides again and refuses (EAGAIN, no step); F_SETLKW: it queues (a step).
      t.equal(c.filter((x) => x.reply === 'ok').length, cmd === F_SETLK ? 1 : 2, `commits: ${show(c)}`);
      const waiting = s.waiting();
      t.equal(waiting.length, cmd === F_SETLK ? 0 : 1, 'the loser waits only for F_SETLKW');
      // The loser's own node ends its wait (a grant from the winner's node is regression case 3).
      for (const w of waiting) await s.cancel(w, 'abort');
    });
  }
});

// ---- what the property found ---------------------------------------------------------------------------
// Each case is a shrunk counterexample, written out. They assert what the model says, so they fail
// until src/actors/shared-file.ts is fixed; the comment above each gives the cause found in the code.

type Step = readonly [node: number, call: Call, text: string];

/** Runs `body` on a fresh space, then releases everything; a Violation fails the test with its transcript. */
async function inSpace(t: Test, policy: Policy, nodes: number, body: (s: Space) => Promise<void>): Promise<void> {
  const s = await Space.open(nodes, policy);
  try {
    await body(s);
    await s.releaseAll();
    t.pass(`${s.transcript.length} steps agree with the model`);
  } catch (e) {
    if (!(e instanceof Violation)) throw e;
    t.fail(e.message);
  } finally {
    await s.close();
  }
}
async function replay(t: Test, policy: Policy, nodes: number, steps: readonly Step[]): Promise<void> {
  await inSpace(t, policy, nodes, async (s) => {
    for (const [n, call, text] of steps) await s.submit(n, call, text);
  });
}

// Regression 1 (fixed): a decision that changes nothing is never checked against the store. SharedFile.decide
// runs the call on the cached records and, when diff() finds no change, answers at once: nothing
// is committed, so no 'stale' reply ever says the cache is old. The cache is refreshed only by this
// node's own steps and by inbox events (which only name this node's waiters), so another node's
// lock is missed: checkIo allows I/O under another node's exclusive lock (mandatory locking broken),
// F_GETLK reports F_UNLCK, and after another node's unlock F_SETLK / failImmediately still refuse.
t.test('regression 1: checkIo sees another node exclusive lock taken after this node cached the file', (t) =>
  replay(t, 'default', 2, [
    [1, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'F_SETLK W [0,0] o1 (n1 caches /a: it holds a record there)'],
    [0, parseLockFile({ fileName: '/a', byteOffset: 1, length: 1, exclusiveLock: true, failImmediately: true, handle: 1 }) as Call, 'lockFile exclusive [1,1] handle 1'],
    [1, parseCheckIo({ fileName: '/a', byteOffset: 1, length: 1, write: true, handle: 1 }) as Call, 'checkIo write [1,1] handle 1: 33 expected, the space says 0'],
  ]),
);

t.test('regression 1: F_SETLK is refused for a lock another node has since released', (t) =>
  replay(t, 'default', 2, [
    [0, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'F_SETLK W [0,0] o1'],
    [1, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'F_SETLK W [0,0] o1: EAGAIN (n1 now caches /a)'],
    [0, px('/a', F_SETLK, F_UNLCK, 0, 1, 1), 'F_UNLCK [0,0] o1'],
    [1, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'F_SETLK W [0,0] o1: 0 expected, the space says EAGAIN'],
  ]),
);

// Regression 2 (fixed): a waiter this node queued keeps, in the cached LockTable, the `done` callback of its
// request (SharedFile.request: endRequest at once), not the deferred settleOf() a table rebuilt
// from records gives it. A later decision on that same table that grants (or fails, or cancels) it
// answers the request before the step commits. When the commit is then refused ('stale', as here:
// n0 changed the file meanwhile), endRequest has already removed the waiter from `waits`, so the
// rebuilt table leaves its record out as orphaned (build(): "its worker died") and the step decided
// again removes it: owner 2 was told 0 (granted) but the store has no lock of it, and any node may
// now take [0,0] (n0's F_SETLK W [0,0] would be granted).
t.test('regression 2: a waiter granted on a stale cache is answered, then its lock is lost', (t) =>
  replay(t, 'default', 2, [
    [1, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'F_SETLK W [0,0] o1'],
    [1, px('/a', F_SETLKW, F_WRLCK, 0, 1, 2), 'F_SETLKW W [0,0] o2 (waits)'],
    [0, px('/a', F_SETLK, F_WRLCK, 1, 1, 1), 'F_SETLK W [1,1] o1 (/a changes; n1 is not told)'],
    [1, px('/a', F_SETLK, F_UNLCK, 0, 1, 1), 'F_UNLCK [0,0] o1: o2 granted, its lock expected in the store'],
    [0, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'F_SETLK W [0,0] o1: EAGAIN expected (o2 holds it)'],
  ]),
);

// Regression 3 (fixed): another node's waiter is rebuilt with lockPid 0 (build(): the REMOTE origin, right for
// F_GETLK about another node's holder), and when this node's step grants it, the lock is encoded
// from that origin: the record of n1's lock says pid 0. n1 reads its own lock back from the record
// (its `origins` has no entry for an id n0 made), so F_GETLK on n1 reports lockPid 0 for a holder
// of its own node (100 expected), and every listing of the store shows pid 0.
t.test("regression 3: a waiter granted by another node's step keeps its pid", (t) =>
  replay(t, 'default', 2, [
    [0, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'F_SETLK W [0,0] o1'],
    [1, px('/a', F_SETLKW, F_WRLCK, 0, 1, 1), 'F_SETLKW W [0,0] o1 (waits)'],
    [0, px('/a', F_SETLK, F_UNLCK, 0, 1, 1), "F_UNLCK [0,0] o1: n1's waiter granted by n0's step, record pid 100 expected"],
    [1, px('/a', F_GETLK, F_WRLCK, 0, 1, 2), 'F_GETLK W [0,0] o2: its own node o1 reported, lockPid 100 expected'],
  ]),
);

// Regression 4 (fixed) ('fifo'): SharedFile's StepGraph answers closesCycle() without hardOnly with false, so the
// table's waitsFor escape (SEMANTICS-POSIX.md §6: "'fifo' must not create deadlocks: a request
// whose queueing would close a cycle is handled as in default mode") never applies, although the
// store offers closesCycle() for exactly that question (store/index.ts, "What the actors must do").
// X (n0 o1) asks for [1,1] on /a, which only W's waiter wants: W (n1 o1) waits for X on /b, so one
// table grants X at once; the space queues X behind W, a wait-for cycle through a 'fifo' edge.
t.test("regression 4 ('fifo'): a request whose queueing would close a cycle is handled as in default mode", (t) =>
  replay(t, 'fifo', 2, [
    [0, px('/b', F_SETLK, F_WRLCK, 0, 1, 1), 'X: F_SETLK W /b [0,0]'],
    [1, px('/b', F_SETLKW, F_WRLCK, 0, 1, 1), 'W: F_SETLKW W /b [0,0] (waits for X)'],
    [0, px('/a', F_SETLK, F_WRLCK, 0, 1, 2), 'Z (n0 o2): F_SETLK W /a [0,0]'],
    [1, px('/a', F_SETLKW, F_WRLCK, 0, 2, 1), 'W: F_SETLKW W /a [0,1] (waits for Z)'],
    [0, px('/a', F_SETLKW, F_WRLCK, 1, 1, 1), 'X: F_SETLKW W /a [1,1]: granted expected, the space queues it behind W'],
  ]),
);

// Regression 5 (fixed): after a 'deadlock' reply the decision runs again with the owner in StepGraph.cyclic, and
// closesCycle(owner, _, true) is then true for every check of that owner, whatever the blockers:
// every waiter of A whose blockers grew fails with EDEADLK, not only the one on the cycle. E's
// unlock grants B [0,0] and D [1,1]; A's waiter [0,0] now waits for B, who waits for A on /b (a
// cycle: EDEADLK), A's waiter [1,1] waits for D only (no cycle: it must keep waiting).
t.test('regression 5: EDEADLK only for the waiter on the cycle, not for every grown waiter of its owner', (t) =>
  replay(t, 'default', 2, [
    [0, px('/b', F_SETLK, F_WRLCK, 0, 1, 1), 'A (n0 o1): F_SETLK W /b [0,0]'],
    [1, px('/b', F_SETLKW, F_WRLCK, 0, 1, 1), 'B (n1 o1): F_SETLKW W /b [0,0] (waits for A)'],
    [0, px('/a', F_SETLK, F_WRLCK, 0, 2, 2), 'E (n0 o2): F_SETLK W /a [0,1]'],
    [1, px('/a', F_SETLKW, F_WRLCK, 0, 1, 1), 'B: F_SETLKW W /a [0,0] (waits for E)'],
    [1, px('/a', F_SETLKW, F_WRLCK, 1, 1, 2), 'D (n1 o2): F_SETLKW W /a [1,1] (waits for E)'],
    [0, px('/a', F_SETLKW, F_WRLCK, 0, 1, 1), 'A: F_SETLKW W /a [0,0] (waits for E)'],
    [0, px('/a', F_SETLKW, F_WRLCK, 1, 1, 1), 'A: F_SETLKW W /a [1,1] (waits for E)'],
    [0, px('/a', F_SETLK, F_UNLCK, 0, 2, 2), 'E: F_UNLCK /a [0,1]: A [0,0] EDEADLK, A [1,1] keeps waiting'],
  ]),
);

// Regression 6 ('fifo', fixed). The random 'fifo' property above found this now and then (once
// in 12 batches of 100 runs). Under 'fifo' a POSIX waiter's soft edges (the earlier waiters it
// queues behind) leave out an earlier waiter whose owner already waits for it through other
// files' edges, so they change when a cycle through another file forms or ends. The model (one
// LockTable) recomputes a file's soft edges only when that file settles (a grant, release or
// close on it). A node that built its table from the engine's records took the edges it computed
// there for the engine's and wrote only changes: here W (n1, owner 1) queues on /b without a soft
// edge to X (n0, owner '1'), since X waits for W on /a; releaseAll's release of X's file handle
// ends X's wait on /a, and n0's no-op close on /b, decided again on the records it read, computed
// W's soft edge to X and wrote nothing: the engine had none where the model had one. Fixed: after
// a build those soft edges are unknown (SharedFile.softUnknown), written whole by the first
// decision that settles the file, left as they are by one that does not: in 6b and 6c an F_GETLK
// on /b (no settle) must not write the soft edge the build computed (a first fix, which wrote
// them whole in the next step of any kind, failed them).
/** A classic POSIX call on the whole file (an F_SETLKW of it waits for any lock there). */
const whole = (path: string, cmd: number, lockType: number, owner: number | string, pid: number, fileHandle: number): Call => lockCall(path, cmd, lockType, 0n, 2n ** 63n, owner, pid, fileHandle);
const windowsB = parseLockFile({ fileName: '/b', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: false, handle: '1', processId: 0 }) as Call;
const cycleEnded: Step[] = [
  [1, whole('/a', F_SETLK, F_RDLCK, 1, 100, 10), 'W (n1 o1): F_SETLK R /a'],
  [0, windowsB, "lockFile exclusive /b [0,0] handle '1'"],
  [0, whole('/b', F_SETLKW, F_WRLCK, '1', 102, 12), "X (n0 o'1'): F_SETLKW W /b (waits for the Windows lock)"],
  [0, whole('/a', F_SETLKW, F_WRLCK, '1', 102, 12), 'X: F_SETLKW W /a (waits for W)'],
  [1, whole('/b', F_SETLKW, F_RDLCK, 1, 100, 10), 'W: F_SETLKW R /b (passes X: queueing behind it would close a cycle); the closes of releaseAll end X on /a, then touch /b'],
];
t.test("regression 6 ('fifo'): a waiter's soft edges follow a cycle that ended on another file", (t) => replay(t, 'fifo', 2, cycleEnded));
t.test("regression 6b ('fifo'): a third node's F_GETLK on /b, built with no reach, leaves W's soft edges as they are", (t) =>
  replay(t, 'fifo', 3, [...cycleEnded, [2, lockCall('/b', F_GETLK, F_WRLCK, 5, 1, 2, 101, 11), 'n2: F_GETLK W /b [5,5] o2']]),
);
t.test("regression 6c ('fifo'): X's wait on /a ends; an F_GETLK on /b does not settle it, so W's soft edges stay as they are", (t) =>
  replay(t, 'fifo', 2, [
    ...cycleEnded,
    [0, parseRelease({ path: '/a', fileHandle: 12 }) as Call, 'n0: release /a fh 12 (X ends on /a with EINTR)'],
    [0, lockCall('/b', F_GETLK, F_WRLCK, 5, 1, 2, 101, 11), 'n0: F_GETLK W /b [5,5] o2'],
  ]),
);

t.test("regression 6d ('fifo'): a settle whose reach question the engine did not answer leaves W's unknown soft edges as they are", async (t) => {
  // The engine's reach unknown (askReach gives up quietly, as on a connection down), soft edges
  // computed without it leave out no earlier waiter: W's would be written behind X, where the model
  // (X still waits for W on /a) has none, and a later request of X's owner would pass W.
  await inSpace(t, 'fifo', 2, async (s) => {
    for (const [n, call, text] of cycleEnded) await s.submit(n, call, text);
    const store = s.nodes[0]!.store;
    const fileReach = store.fileReach.bind(store);
    store.fileReach = () => Promise.reject(new Error('connection lost (injected)'));
    await s.submit(0, parseRelease({ path: '/b', fileHandle: 11 }) as Call, 'n0: release /b fh 11, the reach question unanswered (the model settles /b)');
    store.fileReach = fileReach;
  });
});

// Regression 7 ('fifo', fixed; found by reading, not by the random property). When a request
// queues, the model settles every other file with waiters (LockTable.settleOthers): its new edges
// may close a cycle through an earlier waiter elsewhere, which then passes it (its soft edge goes,
// and it may be granted). Here W queues on /b behind X with a soft edge to X; then X waits for W
// on /a. The model drops W's soft edge on /b at once (7b: and grants W, whom only X's place in
// the queue held back); n0 decided /a only, so the engine kept the edge (and W waited) until /b
// settled for another reason. Fixed: a node whose step queues a request under 'fifo' runs the
// wake-up pass of each other file it has cached with POSIX waiters (among them every file where
// that owner waits: a waiter's requests come from its node). Left: a file whose cached records
// on this node show no waiter, or that another worker or node holds, waits until it settles.
const cycleFormed = (holder: readonly [Call, string]): Step[] => [
  [1, whole('/a', F_SETLK, F_RDLCK, 1, 100, 10), 'W (n1 o1): F_SETLK R /a'],
  [0, holder[0], holder[1]],
  [0, whole('/b', F_SETLKW, F_WRLCK, '1', 102, 12), "X (n0 o'1'): F_SETLKW W /b (waits for the holder)"],
  [1, whole('/b', F_SETLKW, F_RDLCK, 1, 100, 10), 'W: F_SETLKW R /b (behind X)'],
  [0, whole('/a', F_SETLKW, F_WRLCK, '1', 102, 12), "X: F_SETLKW W /a (waits for W: the model lets W pass X on /b)"],
];
t.test("regression 7 ('fifo'): a cycle that forms on /a drops W's soft edge to X on /b at once", (t) =>
  replay(t, 'fifo', 2, cycleFormed([windowsB, "lockFile exclusive /b [0,0] handle '1'"])),
);
t.test("regression 7b ('fifo'): a cycle that forms on /a lets W pass X on /b, and grants it", (t) =>
  replay(t, 'fifo', 2, cycleFormed([whole('/b', F_SETLK, F_RDLCK, 2, 101, 11), 'H (n0 o2): F_SETLK R /b'])),
);
// 7c (found by review): X queues behind B, who waits for A; A then waits for X on /a. X passes B
// (B reaches X's owner through A), though A waits on /a only: the node that queued A settles the
// other files it has cached with POSIX waiters, not only those where A waits.
t.test("regression 7c ('fifo'): a cycle through a second owner lets X pass B on /b, and grants it", (t) =>
  replay(t, 'fifo', 2, [
    [1, px('/a', F_SETLK, F_WRLCK, 0, 1, 1), 'X (n1 o1): F_SETLK W /a [0,0]'],
    [0, px('/b', F_SETLK, F_WRLCK, 0, 1, 1), 'A (n0 o1): F_SETLK W /b [0,0]'],
    [0, px('/b', F_SETLKW, F_WRLCK, 0, 2, 2), 'B (n0 o2): F_SETLKW W /b [0,1] (waits for A)'],
    [1, px('/b', F_SETLKW, F_WRLCK, 1, 1, 1), 'X: F_SETLKW W /b [1,1] (behind B)'],
    [0, px('/a', F_SETLKW, F_WRLCK, 0, 1, 1), 'A: F_SETLKW W /a [0,0] (waits for X: B reaches X through A, so X passes B and is granted)'],
  ]),
);

// 7d: the answers a node gives before a queueing call's own stay first. A flock conversion that
// must wait lets the waiters its removed lock held back try first, on its own file: P is granted,
// then O queues behind P (the reordering of 7's answers is for a classic POSIX request's only).
const flk = (owner: number, cmd: number, lockType: number): Call =>
  parseLock({ path: '/a', cmd, lockType, lockStart: 0, lockLen: 0, lockOwner: owner, lockPid: 299 + owner, kind: 'flock', fileHandle: fileHandleOf('flock', owner - 1) }) as Call;
t.test("regression 7d ('fifo'): a flock conversion that waits: the waiter it lets through is answered first", (t) =>
  replay(t, 'fifo', 2, [
    [0, flk(1, F_SETLK, F_WRLCK), 'O (flock 1): LOCK_EX /a'],
    [0, flk(2, F_SETLKW, F_WRLCK), 'P (flock 2): LOCK_EX /a (waits for O)'],
    [0, flk(1, F_SETLKW, F_RDLCK), "O: LOCK_SH /a: O's LOCK_EX goes, P is granted, O waits behind P"],
  ]),
);

// Regression 8 ('fifo'; found by a heavier random run). One file. P (n1, owner '1') waits to read
// behind a Windows lock; Q (n0, owner 1) queues to write behind it (a soft edge); P then queues a
// write too, passing Q (Q waits for P). P's read is cancelled: the model's settle recomputes Q's
// edges first (its soft edge goes), so P's write no longer passes Q (soft [Q]). A node that took
// the escape's answer from the reach it asked of the engine before the decision (SharedFile.askReach),
// through every file's edges, still had Q waiting for P through this very file's: P's write kept no
// soft edge. The reach is now asked through the other files' edges only, and this file's own are
// the table's as it settles (StepGraph).
t.test("regression 8 ('fifo'): a settle that ends a cycle on the file itself", async (t) => {
  await inSpace(t, 'fifo', 2, async (s) => {
    await s.submit(0, parseLockFile({ fileName: '/a', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: false, handle: '1', processId: 0 }) as Call, "lockFile exclusive /a [0,0] handle '1'");
    await s.submit(1, whole('/a', F_SETLKW, F_RDLCK, '1', 102, 12), "P (n1 o'1'): F_SETLKW R /a (waits for the Windows lock)");
    await s.submit(0, whole('/a', F_SETLKW, F_WRLCK, 1, 100, 10), 'Q (n0 o1): F_SETLKW W /a (behind P)');
    await s.submit(1, whole('/a', F_SETLKW, F_WRLCK, '1', 102, 12), 'P: F_SETLKW W /a (passes Q)');
    await s.cancel(s.waiting()[0]!, 'abort');
  });
});

// Regression 8b ('fifo'; the same run, once 8 was fixed): the file's own edges in the escape's walk
// are the engine's as of the file's last settle, not those the node's table computed when it read
// the records. Q (n0) queues behind P's read on /a; P then waits for Q on /b, a cycle: /a settles
// and Q passes P (soft []). P's wait on /b is cancelled (only /b settles: Q keeps soft []). n1
// reads /a's records again, and its build recomputes Q's soft edges with no cycle left: [P]. P's
// new read on /a must queue behind Q (the model's Q waits for nobody), not pass it through an
// edge of Q's that is n1's computation only.
const win = (offset: bigint, length: bigint, exclusiveLock: boolean): SpaceOp => ({ t: 'call', method: 'lockFile', input: { fileName: '/a', byteOffset: offset, length, exclusiveLock, failImmediately: false, handle: 1 }, garbage: false });
const o1 = (path: string, cmd: number, lockType: number): SpaceOp => ({ t: 'call', method: 'lock', input: { path, lockType, lockStart: 0n, lockLen: 2n ** 63n, cmd, lockOwner: 1, lockPid: 100, kind: 'posix', fileHandle: 10 }, garbage: false });
t.test("regression 8b ('fifo'): the escape walks the engine's soft edges of a file just read, not the build's", (t) =>
  inSpace(t, 'fifo', 2, async (s) => {
    const steps: [number, SpaceOp][] = [
      [0, win(1n, 0n, true)],
      [1, o1('/a', F_SETLKW, F_RDLCK)],
      [0, win(1n, 1n, false)],
      [0, o1('/a', F_SETLKW, F_WRLCK)],
      [0, o1('/b', F_SETLKW, F_WRLCK)],
      [1, o1('/b', F_SETLKW, F_RDLCK)],
      [0, { t: 'unlockHeld', path: '/a', k: 1, enc: 0 }],
      [1, { t: 'cancel', k: 2, reason: 'abort' }],
      [1, o1('/a', F_SETLKW, F_RDLCK)],
    ];
    for (const [n, op] of steps) await s.run(n, op);
  }),
);

// Regression 9 (both policies; found by a heavier random run): F_GETLK with two conflicts at the
// same start. One settle grants P's read (n1) and then a Windows shared lock (n0), both from byte
// 0; n1's step for its grant puts P's record again, after the Windows one. The model reports P's
// (granted first); n0, its table updated from the records, reported the Windows lock. F_GETLK now
// chooses on the locks alone (FileLocks.reported), not on the order a table got them in. The
// commands as the generator gave them.
const getlkTie: SpaceOp[] = [
  { t: 'call', method: 'lockFile', input: { fileName: '/a', byteOffset: 1n, length: 0n, exclusiveLock: true, failImmediately: false, handle: 1 }, garbage: false },
  { t: 'call', method: 'lock', input: { path: '/a', lockType: F_RDLCK, lockStart: 0n, lockLen: 2n ** 63n, cmd: F_SETLKW, lockOwner: 1, lockPid: 100, kind: 'posix', fileHandle: 10 }, garbage: false },
  { t: 'call', method: 'lock', input: { path: '/a', lockType: F_WRLCK, lockStart: 0n, lockLen: 2n ** 63n, cmd: F_SETLKW, lockOwner: 1, lockPid: 100, kind: 'posix', fileHandle: 10 }, garbage: false },
  { t: 'call', method: 'lockFile', input: { fileName: '/a', byteOffset: 0n, length: 2n, exclusiveLock: false, failImmediately: false, handle: 2 }, garbage: false },
  { t: 'cancel', k: 1, reason: 'abort' },
  { t: 'unlockHeld', path: '/a', k: 0, enc: 0 },
  { t: 'call', method: 'lock', input: { path: '/a', lockType: F_WRLCK, lockStart: 0n, lockLen: 2n ** 63n, cmd: F_GETLK, lockOwner: 1, lockPid: 100, kind: 'posix', fileHandle: 10 }, garbage: false },
];
const getlkTieNodes = [0, 1, 0, 0, 0, 0, 0];
for (const policy of ['default', 'fifo'] as const) {
  t.test(`regression 9 (${policy}): F_GETLK reports the same of two conflicts at one start as one table`, (t) =>
    inSpace(t, policy, 2, async (s) => {
      for (const [i, op] of getlkTie.entries()) await s.run(getlkTieNodes[i]!, op);
    }),
  );
}

// Regression 10 ('fifo'; found by a heavier random run): one release puts two waiters on one
// cycle. A reads /a; B and C queue writes on [0,0] and [1,1], then reads of the whole file; A
// upgrades (passing them) and C queues its read. A's close grants both writes: B's read now waits
// for C and C's for B. The model failed B's (every edge set before any check), the engine C's
// (each checked edge sees those checked before it, and the later waiters' old edges). Both now
// check in arrival order, a waiter checked later waiting for nobody until its turn: C's fails.
t.test("regression 10 ('fifo'): of two waiters one release puts on a cycle, the later fails", (t) =>
  inSpace(t, 'fifo', 2, async (s) => {
    const a = (cmd: number, type: number, start: bigint, len: bigint) => lockCall('/a', cmd, type, start, len, 1, 100, 10);
    const b = (cmd: number, type: number, start: bigint, len: bigint) => lockCall('/a', cmd, type, start, len, 2, 101, 11);
    const c = (cmd: number, type: number, start: bigint, len: bigint) => lockCall('/a', cmd, type, start, len, '1', 102, 12);
    const all = 2n ** 63n;
    await s.submit(0, a(F_SETLKW, F_RDLCK, 0n, all), 'A: F_SETLKW R /a');
    await s.submit(0, b(F_SETLKW, F_WRLCK, 0n, 1n), 'B: F_SETLKW W [0,0] (waits for A)');
    await s.submit(0, c(F_SETLKW, F_WRLCK, 1n, 1n), 'C: F_SETLKW W [1,1] (waits for A)');
    await s.submit(0, b(F_SETLKW, F_RDLCK, 0n, all), "B: F_SETLKW R /a (queues behind C's write)");
    await s.submit(0, a(F_SETLKW, F_WRLCK, 0n, all), 'A: F_SETLKW W /a (passes the waiters that wait for it)');
    await s.submit(0, c(F_SETLKW, F_RDLCK, 0n, all), 'C: F_SETLKW R /a (waits for A)');
    await s.submit(0, parseRelease({ path: '/a', fileHandle: 10 }) as Call, "A's last close: B's and C's writes granted, C's read fails");
  }),
);

// A reaper's build computes the soft edges of a file it never decided on with no reach through
// the other files (resend: records left out, so not replaced by the engine's as softUnknown
// waiters are). The wake-up pass after the dead node's records go recomputes the edges in queue
// order, and an earlier waiter's escape walks a later waiter's edge as that build computed it:
// C's k has soft [B, A] there, where the model's k passed both (A and B wait for C on /b). i's
// question "does B reach A" then finds B -> C (on /b) -> A (k's stale edge), and i passes h where
// the model's i queues behind it (soft [B]).
const px3 = (path: string, cmd: number, lockType: number, start: bigint, len: bigint, owner: number): SpaceOp => ({
  t: 'call',
  method: 'lock',
  input: { path, lockType, lockStart: start, lockLen: len, cmd, lockOwner: owner, lockPid: 100 + owner, kind: 'posix', fileHandle: fileHandleOf('posix', owner - 1) },
  garbage: false,
});
t.test("'fifo': a reaper's refresh of a file it never decided on walks the edges the model has", (t) =>
  inSpace(t, 'fifo', 3, async (s) => {
    const steps: [number, SpaceOp][] = [
      [1, { t: 'call', method: 'lockFile', input: { fileName: '/a', byteOffset: 0n, length: 1n, exclusiveLock: true, failImmediately: false, handle: 1 }, garbage: false }],
      [2, { t: 'call', method: 'lockFile', input: { fileName: '/a', byteOffset: 50n, length: 1n, exclusiveLock: true, failImmediately: false, handle: 1 }, garbage: false }],
      [1, px3('/b', F_SETLK, F_WRLCK, 0n, 10n, 3)],
      [1, px3('/a', F_SETLKW, F_WRLCK, 0n, 10n, 2)],
      [1, px3('/a', F_SETLKW, F_WRLCK, 0n, 10n, 1)],
      [1, px3('/b', F_SETLKW, F_WRLCK, 0n, 5n, 1)],
      [1, px3('/b', F_SETLKW, F_WRLCK, 5n, 5n, 2)],
      [1, px3('/a', F_SETLKW, F_WRLCK, 0n, 10n, 3)],
      [2, { t: 'die' }],
    ];
    for (const [n, op] of steps) await s.run(n, op);
  }),
);

// A waiter's new blocker queues behind it on another file, on another node: a cycle 'fifo' made.
// /a: 2 reads [0], 1 waits to write all of it, 4's read [0] queues behind 1. /b: 3 reads [0], 4
// waits to write [0], 1 to write all of it (not behind 4: 4 already waits for 1). 3's flush grants
// 4 [0] on /b, and 1 waits for 4 there: the model's table lets 4's read on /a pass 1 (settleOthers),
// and so must the nodes, or 2's unlock would leave 1 and 4 waiting for each other.
t.test("regression 11 ('fifo'): a grant that closes a cycle through another file's queueing lets that waiter pass", (t) =>
  inSpace(t, 'fifo', 2, async (s) => {
    const all = 0n;
    const steps: [number, SpaceOp][] = [
      [0, px3('/a', F_SETLKW, F_RDLCK, 0n, 1n, 2)],
      [0, px3('/a', F_SETLKW, F_WRLCK, 0n, all, 1)],
      [1, px3('/b', F_SETLKW, F_RDLCK, 0n, 1n, 3)],
      [1, px3('/a', F_SETLKW, F_RDLCK, 0n, 1n, 4)],
      [1, px3('/b', F_SETLKW, F_WRLCK, 0n, 1n, 4)],
      [0, px3('/b', F_SETLKW, F_WRLCK, 0n, all, 1)],
      [1, { t: 'call', method: 'flush', input: { path: '/b', lockOwner: 3 }, garbage: false }],
      [0, px3('/a', F_SETLK, F_UNLCK, 0n, all, 2)],
      [1, px3('/a', F_SETLK, F_UNLCK, 0n, all, 4)],
      [1, px3('/b', F_SETLK, F_UNLCK, 0n, all, 4)],
    ];
    for (const [n, op] of steps) await s.run(n, op);
  }),
);

// Not fixed: a node's wake-up passes after a queueing step reach only the files its cache shows
// POSIX waiters on. n2 read /b before n0's waiters came; its C then waits on /a for A, which
// closes C -> A ~> B -> C through A's read queued behind B's write on /b. The model lets A pass B
// at once; n2 does not look at /b again (its cache has no waiters there), so A waits until /b next
// settles. Found by the heavier mix under 'fifo' (seed 267507314, shrunk).
t.test(
  "regression 12 ('fifo'): a queueing step lets a waiter pass on a file this node read before its waiters came",
  { todo: "not fixed: SharedFiles.settleOthers passes only the files this node's cache shows POSIX waiters on; a stale cache needs the engine's word (a 'settle' event to the nodes holding such waiters)" },
  (t) =>
    inSpace(t, 'fifo', 3, async (s) => {
      const all = 2n ** 63n;
      const px = (path: string, cmd: number, lockType: number, lockOwner: number | string, pid: number, fileHandle: number): SpaceOp => ({
        t: 'call',
        method: 'lock',
        input: { path, lockType, lockStart: 0n, lockLen: all, cmd, lockOwner, lockPid: pid, kind: 'posix', fileHandle },
        garbage: false,
      });
      const steps: [number, SpaceOp][] = [
        [0, px('/a', F_SETLK, F_RDLCK, 1, 100, 10)],
        [2, px('/b', F_SETLK, F_RDLCK, 1, 100, 10)],
        [0, px('/b', F_SETLKW, F_WRLCK, '1', 102, 12)],
        [0, px('/b', F_SETLKW, F_RDLCK, 1, 100, 10)],
        [2, px('/a', F_SETLKW, F_WRLCK, 1, 100, 10)],
      ];
      for (const [n, op] of steps) await s.run(n, op);
    }),
);

// F_GETLK of a flock request: of two shared flock holders, the one reported must not depend on the
// order a node's table got them in (regression 9's rule, for flock). X's (owner 7) release grants
// A (owner 1, n1) and B (owner 2, n0) in one settle; n1 puts A's record again after B's, and n0's
// table (FileLocks.flockConflict: the first of its flocks map) reports B where the model reports A.
const fl = (cmd: number, lockType: number, owner: number): SpaceOp => ({
  t: 'call',
  method: 'lock',
  input: { path: '/a', lockType, cmd, lockOwner: owner, lockPid: 300 + owner, kind: 'flock', fileHandle: fileHandleOf('flock', owner - 1) },
  garbage: false,
});
for (const asker of [0, 1]) {
  t.test(`F_GETLK of a flock request (asked on n${asker}) reports the same of two shared holders as one table`, (t) =>
    inSpace(t, 'default', 2, async (s) => {
      const steps: [number, SpaceOp][] = [
        [0, fl(F_SETLK, F_WRLCK, 7)],
        [1, fl(F_SETLKW, F_RDLCK, 1)],
        [0, fl(F_SETLKW, F_RDLCK, 2)],
        [0, fl(F_SETLK, F_UNLCK, 7)],
        [asker, fl(F_GETLK, F_WRLCK, 10)],
      ];
      for (const [n, op] of steps) await s.run(n, op);
    }),
  );
}
