/**
 * Test harness for an engine reset: two nodes a and b on a MemoryEngine behind the lost-link
 * harness, the engine losing its data, both nodes re-asserting. Shared by the
 * shared-file-reset-*.test.ts files.
 */
import type { Test } from 'tap';
import type { Call } from '../../src/core/requests.js';
import { BUDGET_MS, MemoryEngine, STEP_MS, answered, endGrace, loseNext, memoryStore, node, resetEngine, until as untilWithin, type TestNode } from './lost-link.js';

/**
 * The engine's records of `path` (default /a), sorted, one string each: node, state, mode, holder
 * (POSIX owner or Windows handle) and bytes, as `a held write p1 0-9`.
 */
export async function held(engine: MemoryEngine, path = '/a'): Promise<string[]> {
  return (await engine.load(path)).records
    .map((r) => {
      const d = JSON.parse(r.data) as { w: number; h: { s: string } | number; s: string; e: string };
      return `${r.node} ${r.state} ${d.w === 1 ? 'write' : 'read'} ${typeof d.h === 'number' ? d.h : d.h.s} ${d.s}-${d.e}`;
    })
    .sort();
}

/**
 * Resolves once the engine's records of /a are `want` (in any order; checked every 10 ms), within
 * the budget; past it, the rejection says what the engine has.
 */
export async function engineIs(engine: MemoryEngine, want: readonly string[], what: string): Promise<void> {
  const sorted = JSON.stringify([...want].sort());
  try {
    await untilWithin(async () => JSON.stringify(await held(engine)) === sorted, BUDGET_MS, `${what} (engine: want ${sorted})`);
  } catch (e) {
    throw new Error(`${String(e)}; the engine has ${JSON.stringify(await held(engine))}`);
  }
}

/** Resolves once `cond` holds (checked every 10 ms), within the budget (rejects past it, naming `what`, and stops checking). */
export const until = (cond: () => boolean, what: string): Promise<void> => untilWithin(cond, BUDGET_MS, what);

/** How a release notice (the `released` hook's family and event) is written down. */
export type NoticeFormat = (family: string, e: Readonly<Record<string, unknown>>) => string;

/**
 * The default notice format: a POSIX release as `posix:start+len`, a Windows one as
 * `windows:handle:start+len`.
 */
export const notice: NoticeFormat = (family, e) =>
  family === 'posix' ? `posix:${String(e.lockStart)}+${String(e.lockLen)}` : `windows:${String(e.handle)}:${String(e.byteOffset)}+${String(e.length)}`;

/**
 * Nodes a and b (`policy`; a grace period after a reset) on an engine whose incarnation started
 * without one (a first store 'z' opened with graceMs 0, closed once a and b are open). a tells the
 * release notices it gives in `released`, written by `format` (`notice` by default); with `format`
 * null a has no release hook and `released` stays empty.
 */
export async function nodes(
  t: Test,
  policy: 'default' | 'fifo' = 'default',
  format: NoticeFormat | null = notice,
): Promise<{ engine: MemoryEngine; a: TestNode; b: TestNode; released: string[] }> {
  const engine = new MemoryEngine();
  const first = await memoryStore({}, { engine, node: 'z', graceMs: 0 });
  const released: string[] = [];
  const a = await node(engine, 'a', policy, STEP_MS, 60_000, format === null ? {} : { released: (family, e) => void released.push(format(family, e)) });
  const b = await node(engine, 'b', policy, STEP_MS, 60_000);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  await first.close();
  return { engine, a, b, released };
}

/**
 * a's release `call` (request `id`): its step applies, its reply is lost, and every new step of a
 * after it is cut off, so the release is owed (answered, to run first in a's next step).
 */
export async function owedRelease(a: TestNode, id: number, call: Call, what: string): Promise<void> {
  loseNext(a, async () => {
    a.policy = () => 'drop';
  });
  a.sf.run(id, call, a.target);
  await answered(a, id, `${what} (given up on: owed)`);
}

/**
 * The engine loses its data; a and b open new sessions and put their records back (a's policy
 * unchanged: if it cuts a off, no step of a after the re-assertion reaches the engine). Resolves
 * once the re-assertions reached the engine: both, only a's with `aOnly`, only b's with `bOnly`,
 * none with both (a node holding nothing in the file puts nothing back, and sends none).
 */
export async function resetBoth(engine: MemoryEngine, a: TestNode, b: TestNode, aOnly = false, bOnly = false): Promise<void> {
  const bWas = b.store.session().epoch;
  const at = [a.log.length, b.log.length];
  const { old, epoch } = await resetEngine(engine, a, b);
  const bEpoch = b.store.session().epoch;
  a.lease[1] = epoch;
  a.sf.adopt(epoch, old, 60_000);
  b.lease[1] = bEpoch;
  b.sf.adopt(bEpoch, bWas, 60_000);
  const sent = (n: TestNode, i: number) => n.log.slice(at[i]).some((l) => l.startsWith('reassert '));
  await until(() => (bOnly || sent(a, 0)) && (aOnly || sent(b, 1)), aOnly ? "a's re-assertion" : bOnly ? "b's re-assertion" : "a's and b's re-assertions");
}

/** The ids of the requests `n` answers from now on, in the order it answers them. */
export function answerOrder(n: TestNode): number[] {
  const order: number[] = [];
  const answer = n.target.answer.bind(n.target);
  n.target.answer = (id, ...rest) => {
    order.push(id);
    answer(id, ...rest);
  };
  return order;
}

/**
 * Every answer `n` gives request `id` from now on, in order (`got` keeps only the last one): a
 * request answered twice, or first with one result and then another, shows here.
 */
export function answersTo(n: TestNode, id: number): unknown[] {
  const all: unknown[] = [];
  const answer = n.target.answer.bind(n.target);
  n.target.answer = (i, path, res, waitedMs, flockDrop, getlk) => {
    if (i === id) all.push(res);
    answer(i, path, res, waitedMs, flockDrop, getlk);
  };
  return all;
}

/**
 * The grace period ends (endGrace), and each of `nodes` looks at `path`'s waiters as at its end:
 * the pass a re-assertion schedules (SharedFiles.wakeAt, a minute away after resetBoth) runs now.
 */
export async function graceOver(engine: MemoryEngine, path: string, ...nodes: TestNode[]): Promise<void> {
  await endGrace(engine, ...nodes);
  for (const n of nodes) n.sf.wakeNow(path);
}

/**
 * The pairs of `held` lines (as held() writes them) that conflict: granted locks of two holders
 * over common bytes, at least one of them a write lock.
 */
export function conflicts(lines: readonly string[]): string[] {
  const locks = lines
    .map((l) => l.split(' '))
    .filter((p) => p[1] === 'held')
    .map((p) => {
      const [s, e] = p[4]!.split('-').map(Number);
      return { line: p.join(' '), who: `${p[0]} ${p[3]}`, write: p[2] === 'write', s: s!, e: e! };
    });
  const out: string[] = [];
  for (let i = 0; i < locks.length; i++) {
    for (let j = i + 1; j < locks.length; j++) {
      const x = locks[i]!;
      const y = locks[j]!;
      if (x.who !== y.who && (x.write || y.write) && x.s <= y.e && y.s <= x.e) out.push(`${x.line} / ${y.line}`);
    }
  }
  return out;
}
