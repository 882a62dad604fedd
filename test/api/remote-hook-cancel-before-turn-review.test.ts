/**
 * Review of issue 13: b's waiter (owner 5) is granted by a's release while b's approval hook still
 * judges another waiter of b (owner 3, its hook holding the file's mailbox); owner 5's request is
 * aborted after the engine granted it, before its own judgment's turn. A cancel of a request whose
 * grant its hook judges ends it at once (API.md: ended before its hook is asked, the hook is not
 * asked and the grant goes as a veto's); it must not wait for owner 3's hook, nor be approved after.
 * Before the fix the request counted as judged only from its judgment's turn: the abort waited for
 * owner 3's hook, then owner 5's hook was asked and the request answered its verdict.
 */
import t from 'tap';
import { F_UNLCK, F_WRLCK, type LockEvent } from '../../src/index.js';
import { cancelResult } from '../../src/core/lock-table.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, lock, waiting } from './remote-hook-nodes.js';

/** The abort's answer is due at once; this only bounds the wait for a worker that never gives it. */
const ABORT_ANSWER_MS = 20_000;

t.test("posix: b's waiter aborted after a's release granted it, while b's hook judges another waiter of b: answered the abort at once, its hook not asked, the grant released", { skip: noRedis }, async (t) => {
  let armed = false;
  const asked: number[] = [];
  const { promise: held3, resolve: asked3 } = later();
  const { promise: verdict3, resolve: answer3 } = later<number>();
  const { a, b } = await hookNodes(t, 'rhcbt', {
    onLock: (e: LockEvent) => {
      if (!armed || e.lockType === F_UNLCK) return 0;
      asked.push(Number(e.lockOwner));
      if (e.lockOwner !== 3) return 0;
      asked3();
      return verdict3;
    },
  });
  const path = '/c';
  t.equal(await lock(a, path, 2, F_WRLCK, 0, 10), 0, 'a locks [0,10)');
  t.equal(await lock(a, path, 2, F_WRLCK, 20, 10), 0, 'a locks [20,30)');
  const b3 = lock(b, path, 3, F_WRLCK, 0, 10, true);
  await waiting(b, path, 1);
  const abort = new AbortController();
  const b5 = lock(b, path, 5, F_WRLCK, 20, 10, true, abort.signal);
  await waiting(b, path, 2);
  armed = true;
  t.equal(await lock(a, path, 2, F_UNLCK, 0, 10), 0, "a unlocks [0,10): b's owner 3 is granted, its hook asked");
  await settles(held3, "b's hook asked for owner 3");
  t.equal(await lock(a, path, 2, F_UNLCK, 20, 10), 0, "a unlocks [20,30): the engine grants b's owner 5");
  const a6 = lock(a, path, 6, F_WRLCK, 20, 10, true);
  abort.abort();
  try {
    t.equal(await settles(b5, "owner 5's abort, while owner 3's hook holds b's mailbox", ABORT_ANSWER_MS), cancelResult('abort', false), "owner 5 answered the abort's code at once");
    t.notOk(asked.includes(5), "owner 5's hook was not asked");
  } finally {
    answer3(0);
  }
  t.equal(await settles(b3, "owner 3's waiter"), 0, 'owner 3 granted');
  t.equal(await settles(a6, "a's waiter on [20,30)"), 0, "a's waiter on [20,30) granted: owner 5's grant was released");
  t.notOk(asked.includes(5), `owner 5's hook was never asked (asked: ${asked.join(", ")})`);
  const granted = (await a.locks(path)).filter((e) => e.state === 'granted').map((e) => `${e.node} ${String(e.owner)} ${e.start}`);
  t.same(granted.sort(), ['a 6 20', 'b 3 0'], 'b owner 3 holds [0,10), a owner 6 [20,30)');
});
