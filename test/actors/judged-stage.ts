/**
 * Test harness: a grant of node b's waiter q5 (request 5) by node a's release, which b's approval
 * hook judges, on the lost-link harness (two nodes on one MemoryEngine). The shapes of what b's
 * owner held before the grant, and the engine's records of a Windows stage. Shared by the tests
 * of a judged grant whose release goes unwritten (shared-files-rejudge-unread,
 * shared-files-veto-owed).
 */
import type { Test } from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { Call } from '../../src/core/requests.js';
import type { LockRequest } from '../../src/core/file-locks.js';
import { BUDGET_MS, MemoryEngine, STEP_MS, answered, code, lf, lk, lw, node, uf, within, type TestNode } from './lost-link.js';
import { held } from './reset-harness.js';

export interface Stage {
  engine: MemoryEngine;
  a: TestNode;
  b: TestNode;
  /** What b's first worker told the caller the owner held before the grant (judging). */
  before: readonly LockRequest[];
  /** Request 5 as the caller sends it again. */
  call: Call;
  /** What b's request 5 was told by its first worker, in order (recorder). */
  told: string[];
}

export interface Shape {
  /** b's locks before its waiter (request ids 1..). */
  bFirst: Call[];
  /** a's locks (request ids 1..), then its release that grants b's waiter. */
  aFirst: Call[];
  aRelease: Call;
  /** b's waiter, request 5. */
  wait: Call;
  /** The engine's records once the grant stands. */
  granted: string[];
}

export const windows = (s: Shape): boolean => s.wait.op === 'lockFile';

/**
 * The stage up to b's hook asked for q5's grant, the grant in the engine: b's hook's answer is
 * `verdict`'s (by default it never answers: the worker is about to die).
 */
export async function stage(t: Test, s: Shape, bTimeoutMs = STEP_MS, verdict: Promise<number> = new Promise<number>(() => {})): Promise<Stage> {
  const engine = new MemoryEngine();
  let armed = false;
  let asked!: () => void;
  const hookAsked = new Promise<void>((r) => (asked = r));
  const a = await node(engine, 'a', 'default', STEP_MS, 0);
  const b = await node(engine, 'b', 'default', bTimeoutMs, 0, {
    approve: () => {
      if (!armed) return 0;
      asked();
      return verdict;
    },
  });
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  let before: readonly LockRequest[] | undefined;
  const judging = b.sf.judging.bind(b.sf);
  b.sf.judging = (id, bf) => {
    if (id === 5) before = bf;
    judging(id, bf);
  };
  let id = 0;
  for (const c of s.bFirst) {
    b.sf.run(++id, c, b.target);
    t.equal(code(await answered(b, id, `b's lock ${id}`)), 0, `b's lock ${id} granted`);
  }
  id = 0;
  for (const c of s.aFirst) {
    a.sf.run(++id, c, a.target);
    t.equal(code(await answered(a, id, `a's lock ${id}`)), 0, `a's lock ${id} granted`);
  }
  const told: string[] = [];
  b.sf.run(5, s.wait, recorder(b, told));
  t.equal(await answered(b, -5, "q5's waiter queued"), 'queued', "b's request 5 waits");
  armed = true;
  a.sf.run(9, s.aRelease, a.target);
  t.equal(code(await answered(a, 9, "a's release")), 0, "a's release grants b's waiter");
  await within(hookAsked, BUDGET_MS, "b's hook asked for request 5's grant");
  t.same(await held(engine), s.granted, 'the engine holds the grant');
  t.ok(before !== undefined, "b's worker told what the owner held before");
  return { engine, a, b, before: before!, call: s.wait, told };
}

/** A target that records owed/written/answer for request ids, in order. */
export function recorder(n: TestNode, told: string[]): TestNode['target'] {
  return Object.assign(Object.create(n.target) as TestNode['target'], {
    answer: (...args: Parameters<TestNode['target']['answer']>) => {
      told.push(`answer ${args[0]} ${String(code(args[2]))}`);
      n.target.answer(...args);
    },
    owed: (id: number) => void told.push(`owed ${id}`),
    written: (id: number) => void told.push(`written ${id}`),
  });
}

export const P = (owner: string, pid: number, type: number, cmd: number, start: number, len: number): Call => lk(owner, pid, type, cmd, start, len);

export const shapes: Record<string, { shape: Shape; after: string[] }> = {
  'posix, nothing before': {
    shape: {
      bFirst: [],
      aFirst: [P('p1', 1, F_WRLCK, F_SETLK, 0, 10)],
      aRelease: P('p1', 1, F_UNLCK, F_SETLK, 0, 10),
      wait: P('q5', 5, F_WRLCK, F_SETLKW, 0, 10),
      granted: ['b held write q5 0-9'],
    },
    after: [],
  },
  'posix, an adjacent lock of the owner before': {
    shape: {
      bFirst: [P('q5', 5, F_WRLCK, F_SETLK, 10, 10)],
      aFirst: [P('p1', 1, F_WRLCK, F_SETLK, 0, 10)],
      aRelease: P('p1', 1, F_UNLCK, F_SETLK, 0, 10),
      wait: P('q5', 5, F_WRLCK, F_SETLKW, 0, 10),
      granted: ['b held write q5 0-19'],
    },
    after: ['b held write q5 10-19'],
  },
  'posix, a read lock upgraded': {
    shape: {
      bFirst: [P('q5', 5, F_RDLCK, F_SETLK, 0, 10)],
      aFirst: [P('p1', 1, F_RDLCK, F_SETLK, 0, 10)],
      aRelease: P('p1', 1, F_UNLCK, F_SETLK, 0, 10),
      wait: P('q5', 5, F_WRLCK, F_SETLKW, 0, 10),
      granted: ['b held write q5 0-9'],
    },
    after: ['b held read q5 0-9'],
  },
  'windows, nothing before': {
    shape: { bFirst: [], aFirst: [lf(1, 0, 10)], aRelease: uf(1, 0, 10), wait: lw(7, 0, 10), granted: [] },
    after: [],
  },
  'windows, another lock of the handle before': {
    shape: { bFirst: [lf(7, 20, 10)], aFirst: [lf(1, 0, 10)], aRelease: uf(1, 0, 10), wait: lw(7, 0, 10), granted: [] },
    after: [],
  },
};

/** The engine's records of /a with a's release done: with b's waiter granted (`granted`), or with only b's first locks. */
export async function windowsRecords(s: Shape, granted: boolean): Promise<string[]> {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  try {
    let id = 0;
    for (const c of s.bFirst) {
      b.sf.run(++id, c, b.target);
      await answered(b, id, 'dry: b first');
    }
    if (granted) {
      b.sf.run(5, s.wait, b.target);
      await answered(b, 5, 'dry: b waiter');
    }
    return await held(engine);
  } finally {
    await Promise.all([a.store.close(), b.store.close()]);
  }
}
