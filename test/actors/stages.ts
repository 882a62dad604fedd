/**
 * The stage the owed-release tests set on /a: two nodes, their locks, a waiter behind the other
 * node's lock, a release owed (owedCutOff), the other node's unlock granting the waiter (grant).
 * A stage is a list of requests, each run in turn and awaited: a lock answered granted (asserted),
 * a waiter queued (waited for). Built on the lost-link harness; each test keeps its variation.
 */
import type { Test } from 'tap';
import type { TableHooks } from '../../src/core/lock-table.js';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { Call } from '../../src/core/requests.js';
import { MemoryEngine, STEP_MS, answered, lk, node, type TestNode } from './lost-link.js';

/** Request `id` of node `by` (`what` names it in a timeout): a lock answered granted, or with `waits` a waiter queued. */
export type Req = { by: TestNode; id: number; call: Call; what: string; says?: string; waits?: boolean };

/** A request answered granted: 0 for a Windows call, `{ result: 0 }` for a POSIX one; `says` is the assert's message. */
export const holds = (by: TestNode, id: number, call: Call, what: string, says?: string): Req => ({ by, id, call, what, says });

/** A blocking request that queues a waiter (waited for, not asserted). */
export const waits = (by: TestNode, id: number, call: Call, what: string): Req => ({ by, id, call, what, waits: true });

/** Nodes a (with `hooks`, its requestTimeoutMs `timeoutMs`) and b under `policy` on a fresh engine with no grace period, closed when `t` ends. */
export async function twoNodes(t: Test, hooks: TableHooks = {}, policy: 'default' | 'fifo' = 'default', timeoutMs = STEP_MS): Promise<{ engine: MemoryEngine; a: TestNode; b: TestNode }> {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a', policy, timeoutMs, 0, hooks);
  const b = await node(engine, 'b', policy);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  return { engine, a, b };
}

/** Asserts that `r`'s answer is granted (see holds): `what` names the answer in a timeout, `says` is the assert's message. */
export async function granted(t: Test, r: Req, what: string, says?: string): Promise<void> {
  const res = await answered(r.by, r.id, what);
  const msg: [] | [string] = says === undefined ? [] : [says];
  if (r.call.op === 'lock') t.match(res, { result: 0 }, ...msg);
  else t.equal(res, 0, ...msg);
}

/** Runs `reqs` in order, each awaited before the next: a lock's answer asserted granted, a waiter queued. */
export async function stage(t: Test, ...reqs: Req[]): Promise<void> {
  for (const r of reqs) {
    r.by.sf.run(r.id, r.call, r.by.target);
    if (r.waits) await answered(r.by, -r.id, r.what);
    else await granted(t, r, r.what, r.says);
  }
}

/** The other node's `unlock` (a request of the stage) is answered granted, then `waiter` (the stage's) is granted by it. */
export async function grant(t: Test, unlock: Req, waiter: Req, what: string, says?: string): Promise<void> {
  await stage(t, unlock);
  await granted(t, waiter, what, says);
}

/** a is cut off (every step of it dropped from now on): its release `call` (request `id`) is answered for want of a reply, and owed. Resolves with that answer. */
export async function owedCutOff(a: TestNode, id: number, call: Call, what: string): Promise<unknown> {
  a.policy = () => 'drop';
  a.sf.run(id, call, a.target);
  return answered(a, id, `${what} (given up on: owed)`);
}

/** q2 (node b) holds [10,20); p1 (node a) holds [0,10) and waits for [start, start+len) (a's request 2): that waiter, queued. */
export async function waiterBehindQ2(t: Test, a: TestNode, b: TestNode, start: number, len: number): Promise<Req> {
  const waiter = waits(a, 2, lk('p1', 1, F_WRLCK, F_SETLKW, start, len), `p1's waiter for [${start},${start + len}) queued`);
  await stage(
    t,
    holds(b, 1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), "q2's lock of [10,20)", 'q2 holds [10,20)'),
    holds(a, 1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), "p1's lock of [0,10)", 'p1 holds [0,10)'),
    waiter,
  );
  return waiter;
}

/** waiterBehindQ2's q2 unlocks [10,20) (b's request 2). */
export const q2Unlock = (b: TestNode): Req => holds(b, 2, lk('q2', 2, F_UNLCK, F_SETLK, 10, 10), "q2's unlock");
