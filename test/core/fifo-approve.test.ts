/**
 * 'fifo' with an asynchronous approval hook (as a worker's host has): another file's call can run
 * the wake-up pass of a file whose pass waits for an approval (LockTable.settleOthers). That
 * second pass must not grant past the waiter being approved: it is put off until the first ends
 * (FileLocks.approving), so no two conflicting locks are granted and no waiter is approved twice.
 */
import t from 'tap';
import { LockTable, F_SETLKW, F_WRLCK, type PosixReply } from '../../src/index.js';
import { LocalWaitForGraph } from '../../src/core/deadlock.js';

for (const late of ['pass', 'request'] as const)
t.test(`'fifo', async approval: a ${late === 'pass' ? "second pass of a file" : "new request on a file"} waits for its pass's approval`, async (t) => {
  const asked: string[] = [];
  const answers: ((v: number) => void)[] = [];
  let slow = false;
  const table = new LockTable({
    now: () => 0,
    policy: 'fifo',
    graph: new LocalWaitForGraph(),
    hooks: {
      approve: (_family, ev) => {
        asked.push(`${String(ev.lockOwner)}@${String(ev.path)}`);
        return slow ? new Promise<number>((r) => answers.push(r)) : 0;
      },
    },
  });
  const got: string[] = [];
  const lock = (path: string, owner: string, start: number, len: number) =>
    table.lock({ path, lockType: F_WRLCK, lockStart: start, lockLen: len, cmd: F_SETLKW, lockOwner: owner }, (r: PosixReply) => got.push(`${owner}@${path} ${r.result}`));
  lock('/a', 'H', 10, 1);
  lock('/b', 'x', 0, 1);
  lock('/c', 'y', 0, 1);
  lock('/a', 'w', 0, 11); // waits for H
  lock('/a', 'y', 0, 1); // queues behind w
  lock('/a', 'x', 0, 1); // queues behind w and y
  lock('/b', 'y', 0, 1); // y waits for x
  slow = true;
  // H now waits for x: w reaches x, so x passes w on /a; its approval is pending.
  const first = lock('/b', 'H', 0, 1);
  // late 'pass': w now waits for y: y may pass w on /a too, but x's grant is being approved first.
  // late 'request': H, which holds a lock on /a (so queues behind no waiter), asks for x's byte.
  const second = late === 'pass' ? lock('/c', 'w', 0, 1) : lock('/a', 'H', 0, 1);
  const settled = Promise.all([first, second]);
  for (let i = 0; i < 10; i++) {
    for (const answer of answers.splice(0)) answer(0);
    await new Promise((r) => setImmediate(r));
  }
  await settled;
  const onA = asked.slice(3).filter((a) => a.endsWith('@/a'));
  t.same(onA.length, new Set(onA).size, `no waiter approved twice (${onA.join(', ')})`);
  const granted = table.locks('/a').filter((l) => l.state === 'granted' && l.start === 0n).map((l) => String(l.owner));
  t.ok(granted.length <= 1, `at most one write lock on /a[0] (granted: ${granted.join(', ')}; answers: ${got.join(', ')})`);
  t.same(granted, ['x'], 'x, whose approval came first, holds it');
  const waiting = table.locks('/a').filter((l) => l.state === 'waiting' && l.start === 0n && l.end === 0n).map((l) => String(l.owner));
  t.same(waiting, late === 'pass' ? ['y'] : ['y', 'H'], 'the others wait for it, in queue order');
});
