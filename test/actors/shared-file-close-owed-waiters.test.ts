/**
 * A close (closeHandle; release) whose step gets no reply is answered and owed (SharedFile.request,
 * endClosed): the requests still waiting on its handle end with it, before its answer, as the
 * core's close ends them (closedWith). A caller never learns of a request through a closed handle
 * after the close was answered: API.md, "closeHandle ... its waiting requests complete with 158";
 * a lock told granted then would be one the owed close releases when it runs.
 *
 * Checked here: the grant of the handle's waiter by another node whose inbox event this node read
 * while the close's step was on its way (no engine reset): the grant stands in the cache (held),
 * its answer is queued in the mailbox behind the close; the close gave up, was answered, and then
 * the request was told it was granted, a lock the owed close releases at a's next step. Now it is
 * told first (SharedFiles.endThrough). Likewise a close whose step finds the waiter granted
 * elsewhere (a stale reply) and commits before the grant's event is read: the request ends with
 * the close (158), before its answer. And beside them what held: an owed close ends exactly the
 * core close's waiters (not another handle's of the same process, not an OFD owner's through
 * another file handle; a flock waiter through the file handle, with EINTR), each request is told
 * once, and the owed close's next step removes the ended waiters' records and wakes the other
 * node's waiter they were ahead of ('fifo').
 *
 * Real SharedFiles over a MemoryEngine behind the lost-link harness; every wait is for an answer
 * or an engine record, within the harness's budget.
 */
import t from 'tap';
import { EINTR, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseLock, parseRelease, type Call } from '../../src/core/requests.js';
import { answered, ch, lf, lw, uf, type TestNode } from './lost-link.js';
import { held, nodes, owedRelease, until } from './reset-harness.js';
import { holds, owedCutOff, stage, waits, type Req } from './stages.js';

/** A POSIX call of `kind` by `owner` through file handle `fh` on [start, start+len) of /a. */
const px = (kind: 'posix' | 'ofd' | 'flock', owner: string, fh: number, type: number, cmd: number, start = 0, len = 10): Call =>
  parseLock({ path: '/a', lockType: type, cmd, lockOwner: owner, lockStart: start, lockLen: len, lockPid: 7, fileHandle: fh, kind }) as Call;

/** Every answer `n` gives from now on, in order, as [request id, result]. */
function log(n: TestNode): [number, unknown][] {
  const all: [number, unknown][] = [];
  const answer = n.target.answer.bind(n.target);
  n.target.answer = (i, path, res, waitedMs, flockDrop, getlk) => {
    all.push([i, res]);
    answer(i, path, res, waitedMs, flockDrop, getlk);
  };
  return all;
}

const resultOf = (res: unknown): unknown => (typeof res === 'object' && res !== null ? (res as { result: number }).result : res);

/** b's handle 9 holds [20,30); a's handle 1 holds [0,10) and waits for [20,30) (request 4): the stage's requests. */
const handle1Waits = (a: TestNode, b: TestNode): Req[] => [
  holds(b, 1, lf(9, 20, 10), "b's handle 9's lock of [20,30)"),
  holds(a, 1, lf(1, 0, 10), "handle 1's lock of [0,10)"),
  waits(a, 4, lw(1, 20, 10), "handle 1's waiter for [20,30) queued"),
];

// handle1Waits, then a's handle 1 closes (request 5) while a is cut off; during its first send,
// b unlocks and its step grants a's waiter; the event reaches a at once (grantedRemotely: held in
// the cache, its answer queued in the mailbox behind the close). The close gives up and is
// answered (owed).
t.test("the grant of a close's waiter read while the close's step is on its way: the request is not told granted after the close's answer", async (t) => {
  const { engine, a, b } = await nodes(t, 'default');
  await stage(t, ...handle1Waits(a, b));
  const order = log(a);
  a.policy = () => 'drop';
  a.afterDrop = async () => {
    a.afterDrop = undefined;
    a.held = [];
    await stage(t, holds(b, 2, uf(9, 20, 10), "b's handle 9's unlock of [20,30)"));
    await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox");
    a.release();
  };
  a.sf.run(5, ch(1), a.target);
  await answered(a, 5, "handle 1's close (given up on: owed)");
  await answered(a, 4, "handle 1's LockFileEx of [20,30)");
  const at = (id: number) => order.findIndex(([i]) => i === id);
  t.ok(at(4) >= 0 && at(4) < at(5), `request 4 is answered before the close (answers in order: ${JSON.stringify(order)})`);
  // a reaches the engine again: its next step carries the owed close, which releases the grant.
  a.policy = () => 'pass';
  a.sf.run(6, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 6, "handle 99's unlock of nothing"), 158);
  t.same(await held(engine), [], 'the owed close released handle 1: nothing of it is left');
  t.equal(order.filter(([i]) => i === 4).length, 1, 'request 4 told once');
});

// The same, with no failure at all: the close's step is refused as stale (b's grant came first in
// the engine), decided again on the missed changes (the waiter's record gone: granted), and
// commits; the grant's event is read after that. Not new with the owed close, the same order.
t.test("a close whose step finds its handle's waiter granted by another node: the request is not told granted after the close's answer", async (t) => {
  const { engine, a, b } = await nodes(t, 'default');
  await stage(t, ...handle1Waits(a, b));
  const order = log(a);
  a.policy = () => 'drop';
  a.held = [];
  a.afterDrop = async () => {
    a.afterDrop = undefined;
    await stage(t, holds(b, 2, uf(9, 20, 10), "b's handle 9's unlock of [20,30)"));
    await until(() => (a.held?.length ?? 0) > 0, "the grant's event in a's inbox (held back)");
    a.policy = () => 'pass';
  };
  a.sf.run(5, ch(1), a.target);
  await answered(a, 5, "handle 1's close");
  t.same(await held(engine), [], "the close committed: nothing of handle 1 is left, the grant neither");
  a.release();
  await answered(a, 4, "handle 1's LockFileEx of [20,30)");
  const at = (id: number) => order.findIndex(([i]) => i === id);
  t.ok(at(4) >= 0 && at(4) < at(5), `request 4 is answered before the close (answers in order: ${JSON.stringify(order)})`);
  t.same(a.faults, [], 'nothing reported');
});

// What held: an owed close (its step applied with the reply lost, or never applied: a is cut off)
// ends exactly the waiters the core's close ends (closeHandle names no process: handle 1 of
// process 2 is the same handle), each told once; the owed close's next step removes their records
// (or finds them removed), and b's waiter queued behind them ('fifo') is granted once nothing else
// is ahead of it.
for (const how of ['applied', 'never applied'] as const) {
  t.test(`an owed Windows close (${how}) ends its handle's waiters only, once; its records go, the waiter behind them is granted`, async (t) => {
    const { engine, a, b } = await nodes(t, 'fifo');
    // Handle 1 of process 1 waits for [20,30) and [25,27); handle 1 of process 2 and handle 2 of
    // process 1 wait for [20,30) too.
    await stage(
      t,
      holds(b, 1, lf(9, 20, 10), "b's handle 9's lock of [20,30)"),
      waits(a, 4, lw(1, 20, 10), 'handle 1 (process 1) queued'),
      waits(a, 5, lw(1, 25, 2), 'handle 1 (process 1) queued again'),
      waits(a, 6, lw(2, 20, 10), 'handle 2 (process 1) queued'),
      waits(a, 10, lw(1, 20, 10, 2), 'handle 1 (process 2) queued'),
      waits(b, 2, lw(8, 20, 10), "b's handle 8 queued behind them ('fifo')"),
    );
    const order = log(a);
    if (how === 'applied') await owedRelease(a, 7, ch(1), "handle 1's close");
    else await owedCutOff(a, 7, ch(1), "handle 1's close");
    t.same(
      order.map(([i, r]) => [i, resultOf(r)]),
      [
        [4, 158],
        [5, 158],
        [10, 158],
        [7, undefined],
      ],
      "handle 1's waiters (both processes) end with 158 before the close's answer; handle 2's waits on",
    );
    t.same(
      (await held(engine)).filter((l) => l.startsWith('a ')),
      how === 'applied' ? ['a waiting write 2 20-29'] : ['a waiting write 1 20-29', 'a waiting write 1 20-29', 'a waiting write 1 25-26', 'a waiting write 2 20-29'],
      how === 'applied' ? 'the engine: the close removed them' : 'the engine still has them (the close never applied)',
    );
    // a back: the owed close runs first in its next step (or is found applied).
    a.policy = () => 'pass';
    a.sf.run(8, uf(99, 1000, 1), a.target);
    t.equal(await answered(a, 8, "handle 99's unlock of nothing"), 158);
    t.same(await held(engine), ['a waiting write 2 20-29', 'b held write 9 20-29', 'b waiting write 8 20-29'], "after a's next step: handle 1's waiters are gone");
    // Handle 2 closes too (reachable now): b's handle 8 is first.
    a.sf.run(9, ch(2), a.target);
    await answered(a, 9, "handle 2's close");
    await stage(t, holds(b, 3, uf(9, 20, 10), "b's handle 9's unlock"));
    t.equal(await answered(b, 2, "b's handle 8's LockFileEx"), 0, "b's handle 8 granted: nothing of a's is ahead of it");
    t.same(
      order.filter(([i]) => [4, 5, 6, 10].includes(i)).map(([i, r]) => [i, resultOf(r)]),
      [
        [4, 158],
        [5, 158],
        [10, 158],
        [6, 158],
      ],
      'each request told once',
    );
    t.same(a.faults, [], 'nothing reported');
  });
}

t.test('an owed release ends the waiters through its file handle (POSIX, flock) only, once, with EINTR', async (t) => {
  const { engine, a, b } = await nodes(t, 'default', null);
  // p1 through fh 1 and fh 2; OFD o1 (its own file handle 3); flock f1 through fh 1.
  await stage(
    t,
    holds(b, 1, px('posix', 'q9', 9, F_WRLCK, F_SETLK, 20, 10), "q9's lock of [20,30)"),
    holds(b, 2, px('flock', 'g9', 9, F_WRLCK, F_SETLK), "b's flock g9"),
    waits(a, 4, px('posix', 'p1', 1, F_WRLCK, F_SETLKW, 20, 10), 'p1 through fh 1 queued'),
    waits(a, 5, px('posix', 'p1', 2, F_RDLCK, F_SETLKW, 22, 2), 'p1 through fh 2 queued'),
    waits(a, 6, px('ofd', 'o3', 3, F_WRLCK, F_SETLKW, 20, 10), 'OFD o3 (fh 3) queued'),
    waits(a, 7, px('flock', 'f1', 1, F_WRLCK, F_SETLKW), 'flock f1 through fh 1 queued'),
  );
  const order = log(a);
  await owedCutOff(a, 8, parseRelease({ path: '/a', fileHandle: 1 }), "fh 1's release");
  t.same(
    order.map(([i, r]) => [i, resultOf(r)]),
    [
      [4, -EINTR],
      [7, -EINTR],
      [8, undefined],
    ],
    "fh 1's POSIX waiter and its flock waiter end with EINTR before the answer; fh 2's and the OFD owner's wait on",
  );
  a.policy = () => 'pass';
  a.sf.run(9, px('posix', 'p5', 5, F_UNLCK, F_SETLK, 1000, 1), a.target);
  t.match(await answered(a, 9, "p5's unlock of nothing"), { result: 0 });
  t.same(
    (await held(engine)).filter((l) => l.startsWith('a ')),
    ['a waiting read p1 22-23', 'a waiting write o3 20-29'],
    "the owed release's step removed fh 1's waiters only",
  );
  t.same(order.filter(([i]) => i === 4 || i === 7).length, 2, 'each told once');
  t.same(a.faults, [], 'nothing reported');
});

// A cancel (timeout, abort) of the handle's waiter racing the owed close: during the close's
// decision (the cancel queued in the mailbox behind it), and after its answer. The request is told
// once, with the close's code (it came first); the cancel's step, once a is back, carries the owed
// close and removes the waiter's record.
t.test("a cancel racing an owed close: the request is told once (158), its record goes with the owed close's step", async (t) => {
  const { engine, a, b } = await nodes(t, 'default');
  await stage(t, holds(b, 1, lf(9, 20, 10), "b's handle 9's lock of [20,30)"), waits(a, 4, lw(1, 20, 10), "handle 1's waiter for [20,30) queued"));
  const order = log(a);
  a.policy = () => 'drop';
  a.afterDrop = async () => {
    a.afterDrop = undefined;
    a.sf.cancel(4, 'timeout');
  };
  a.sf.run(5, ch(1), a.target);
  await answered(a, 5, "handle 1's close (owed)");
  a.sf.cancel(4, 'abort');
  a.policy = () => 'pass';
  a.sf.run(6, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 6, "handle 99's unlock of nothing"), 158);
  t.same(await held(engine), ['b held write 9 20-29'], "the waiter's record is gone");
  t.same(
    order.map(([i, r]) => [i, resultOf(r)]),
    [
      [4, 158],
      [5, undefined],
      [6, 158],
    ],
    'request 4 told once, with the close, before its answer',
  );
  t.same(a.faults, [], 'nothing reported');
});
