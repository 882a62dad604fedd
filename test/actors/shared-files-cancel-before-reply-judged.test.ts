/**
 * A cancel of a waiter whose grant by another node's step was read from the inbox before the
 * waiter's own step's reply (the cache learns of the grant only at the judgment's turn in the
 * file's mailbox, behind that step), the cancel coming while that reply is on its way (SharedFiles
 * ended, issue 13). Invariant: the request ends with its cancel's code, this node's approval hook
 * is never shown the grant, and the grant is released (the owner's next lock elsewhere sees the
 * bytes free); the request is answered once. Model: nodes a and b on one MemoryEngine behind the
 * lost-link harness; b's approval hook approves everything; b's waiter's step applies and its reply
 * is held back while a's release grants it and the event is read, then the cancel (a timeout) comes.
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { cancelResult } from '../../src/core/lock-table.js';
import { BUDGET_MS, MemoryEngine, STEP_MS, answered, code, holdNextReply, lk, node, until } from './lost-link.js';
import { engineIs, held } from './reset-harness.js';
import { recorder } from './judged-stage.js';

t.test("a timeout of a waiter whose grant was read before its own step's reply: answered the timeout's code, the hook not asked, the grant released", async (t) => {
  const engine = new MemoryEngine();
  const asked: string[] = [];
  const a = await node(engine, 'a', 'default', STEP_MS, 0);
  const b = await node(engine, 'b', 'default', STEP_MS, 0, {
    approve: (_family, e) => {
      asked.push(String(e.lockOwner));
      return 0;
    },
  });
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.equal(code(await answered(a, 1, "p1's lock of [0,10)")), 0, 'a p1 holds [0,10)');

  // b's next step's reply is held back once it applied (the reply on its way).
  const { applied, letReply } = holdNextReply(b);
  b.held = [];
  const told: string[] = [];
  b.sf.run(2, lk('q1', 2, F_WRLCK, F_SETLKW, 0, 10), recorder(b, told));
  await applied;
  t.same(await held(engine), ['a held write p1 0-9', 'b waiting write q1 0-9'], "q1's waiter is in the engine");
  // (b's cache did not know a's lock yet: the hook was shown q1's own first try, refused as stale.)
  asked.length = 0;

  // a's unlock grants q1's waiter; its event reaches b's actor before b's step's reply does.
  a.sf.run(3, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  t.equal(code(await answered(a, 3, "p1's unlock of [0,10)")), 0, "p1's unlock applied");
  await until(() => (b.held?.length ?? 0) > 0, BUDGET_MS, "the grant's event in b's inbox");
  b.release();
  // The timeout comes while the reply is on its way; then the reply.
  b.sf.cancel(2, 'timeout');
  letReply();
  const timedOut = cancelResult('timeout', false);
  t.equal(code(await answered(b, 2, "q1's request")), timedOut, `q1's request answered the timeout's ${timedOut}`);
  t.same(asked, [], `b's hook never shown the grant of a request that had ended (shown ${JSON.stringify(asked)})`);
  await engineIs(engine, [], 'the grant released');
  await until(() => !told.includes('owed 2') || told.includes('written 2'), BUDGET_MS, "q1's release written if it was told owed");
  t.equal(told.filter((x) => x.startsWith('answer 2')).length, 1, 'answered once');
  a.sf.run(4, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.equal(code(await answered(a, 4, "p1's lock of [0,10) again")), 0, 'a p1 gets [0,10) again');
  t.same(b.faults, [], 'no fault reported');
});
