/**
 * Deadlock detection over the wait-for graph of classic POSIX owners (SEMANTICS-POSIX.md §6),
 * driven through LockTable with a LocalWaitForGraph we can inspect.
 */
import t from 'tap';
import { inspect } from 'node:util';
import { LockTable, EDEADLK, EINTR, EAGAIN, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type Pending, type PosixReply, type TableOptions } from '../../src/index.js';
import { now } from './support.js';
import { LocalWaitForGraph } from '../../src/core/deadlock.js';

type Req = Record<string, unknown>;

function mk(opts: TableOptions = {}): { table: LockTable; graph: LocalWaitForGraph } {
  const graph = new LocalWaitForGraph();
  return { table: new LockTable({ now: () => 0, graph, ...opts }), graph };
}

function rq(over: Req): Req {
  return { path: '/f1', lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLK, lockOwner: 1, ...over };
}

function set(table: LockTable, over: Req): PosixReply {
  return now(table.lock(rq(over)));
}

/** F_SETLKW that must not queue: its immediate reply. */
function setw(table: LockTable, over: Req): PosixReply {
  return now(table.lock(rq({ cmd: F_SETLKW, ...over })));
}

interface Waiting {
  p: Pending;
  out: PosixReply[];
}

function wait(table: LockTable, over: Req): Waiting {
  const out: PosixReply[] = [];
  const p = table.lock(rq({ cmd: F_SETLKW, ...over }), (r) => out.push(r));
  if (p instanceof Promise || !('waiter' in p)) throw new Error(`expected ${inspect(over)} to queue, got ${inspect(p)}`);
  return { p, out };
}

function rep(result: number, lockType: number, start: bigint | number, len: bigint | number, pid = 0): PosixReply {
  return { result, lockType, lockStart: BigInt(start), lockLen: BigInt(len), lockPid: pid };
}

/** The graph as { owner: [blockers] }, sorted. */
function edges(graph: LocalWaitForGraph): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of [...graph.edges()].sort(([a], [b]) => (a < b ? -1 : 1))) out[k] = [...v].sort();
  return out;
}

function ls(table: LockTable, path: string): string[] {
  return table.locks(path).map((e) => `${e.kind} ${e.type} ${e.start}-${e.end} ${String(e.owner)} ${e.state}`);
}

t.test('§6 A holds f1 and waits for f2, B holds f2: B\'s F_SETLKW on f1 gets -EDEADLK, is not queued, B keeps its locks', async (t) => {
  const { table, graph } = mk();
  set(table, { path: '/f1', lockOwner: 'A', lockStart: 0, lockLen: 10 });
  set(table, { path: '/f2', lockOwner: 'B', lockStart: 0, lockLen: 10 });
  set(table, { path: '/f1', lockOwner: 'B', lockStart: 50, lockLen: 10 });
  const a = wait(table, { path: '/f2', lockOwner: 'A', lockStart: 5, lockLen: 1 });
  t.strictSame(edges(graph), { psA: ['psB'] });
  t.strictSame(setw(table, { path: '/f1', lockOwner: 'B', lockType: F_RDLCK, lockStart: 0, lockLen: 5, lockPid: 2 }), rep(-EDEADLK, F_RDLCK, 0, 5, 2));
  t.strictSame(ls(table, '/f1'), ['posix write 0-9 A granted', 'posix write 50-59 B granted']);
  t.strictSame(ls(table, '/f2'), ['posix write 0-9 B granted', 'posix write 5-5 A waiting']);
  t.strictSame(edges(graph), { psA: ['psB'] });
  t.strictSame(a.out, []);
  // F_SETLK is never a deadlock: it fails with -EAGAIN.
  t.strictSame(set(table, { path: '/f1', lockOwner: 'B', lockStart: 0, lockLen: 5 }).result, -EAGAIN);
  // B unlocks f2: A gets it; now B may wait for f1 without a cycle.
  set(table, { path: '/f2', lockOwner: 'B', lockType: F_UNLCK });
  t.strictSame(a.out, [rep(0, F_WRLCK, 5, 1)]);
  t.strictSame(edges(graph), {});
  const b = wait(table, { path: '/f1', lockOwner: 'B', lockStart: 0, lockLen: 5 });
  t.strictSame(edges(graph), { psB: ['psA'] });
  t.strictSame(b.out, []);
});

t.test('§6 the same deadlock on one file: two readers both upgrading', async (t) => {
  const { table, graph } = mk();
  set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  const one = wait(table, { lockOwner: 1, lockStart: 0, lockLen: 10 });
  t.strictSame(setw(table, { lockOwner: 2, lockStart: 0, lockLen: 10 }), rep(-EDEADLK, F_WRLCK, 0, 10));
  t.strictSame(ls(table, '/f1'), ['posix read 0-9 1 granted', 'posix read 0-9 2 granted', 'posix write 0-9 1 waiting']);
  t.strictSame(edges(graph), { pn1: ['pn2'] });
  set(table, { lockOwner: 2, lockType: F_UNLCK });
  t.strictSame(one.out, [rep(0, F_WRLCK, 0, 10)]);
  t.strictSame(ls(table, '/f1'), ['posix write 0-9 1 granted']);
  t.strictSame(edges(graph), {});
});

for (const n of [3, 5, 12]) {
  t.test(`§6 a cycle of length ${n} is detected (no 10-step limit)`, async (t) => {
    const { table, graph } = mk();
    for (let i = 1; i <= n; i++) set(table, { path: `/f${i}`, lockOwner: i, lockStart: 0, lockLen: 10 });
    const ws: Waiting[] = [];
    for (let i = 1; i < n; i++) ws.push(wait(table, { path: `/f${i + 1}`, lockOwner: i, lockStart: 0, lockLen: 10 }));
    const chain: Record<string, string[]> = {};
    for (let i = 1; i < n; i++) chain[`pn${i}`] = [`pn${i + 1}`];
    t.strictSame(edges(graph), chain);
    t.strictSame(setw(table, { path: '/f1', lockOwner: n, lockStart: 0, lockLen: 10 }), rep(-EDEADLK, F_WRLCK, 0, 10));
    t.strictSame(ls(table, '/f1'), ['posix write 0-9 1 granted']);
    t.strictSame(ls(table, `/f${n}`), [`posix write 0-9 ${n} granted`, `posix write 0-9 ${n - 1} waiting`]);
    t.strictSame(edges(graph), chain);
    for (const w of ws) t.strictSame(w.out, []);
    // Without the closing edge's owner at the end, a newcomer waiting on owner 1 is fine.
    const x = wait(table, { path: '/f1', lockOwner: 100, lockStart: 0, lockLen: 10 });
    t.strictSame(edges(graph)['pn100'], ['pn1']);
    t.equal(table.cancel(x.p, 'abort'), true);
  });
}

t.test('§6 no false EDEADLK: a chain without a cycle', async (t) => {
  const { table, graph } = mk();
  for (const i of [1, 2, 3, 5]) set(table, { path: `/f${i}`, lockOwner: i, lockStart: 0, lockLen: 10 });
  const w1 = wait(table, { path: '/f2', lockOwner: 1 });
  const w2 = wait(table, { path: '/f3', lockOwner: 2 });
  const w4 = wait(table, { path: '/f1', lockOwner: 4 });
  t.strictSame(set(table, { path: '/f4', lockOwner: 3 }).result, 0);
  const w3 = wait(table, { path: '/f5', lockOwner: 3 });
  t.strictSame(edges(graph), { pn1: ['pn2'], pn2: ['pn3'], pn3: ['pn5'], pn4: ['pn1'] });
  // A real cycle for contrast: 5 waiting for f4 (held by 3) closes 5 -> 3 -> 5.
  t.strictSame(setw(table, { path: '/f4', lockOwner: 5 }).result, -EDEADLK);
  // 6 waiting for 4's chain closes nothing.
  const w6 = wait(table, { path: '/f4', lockOwner: 6 });
  t.strictSame(edges(graph), { pn1: ['pn2'], pn2: ['pn3'], pn3: ['pn5'], pn4: ['pn1'], pn6: ['pn3'] });
  for (const w of [w1, w2, w3, w4, w6]) t.strictSame(w.out, []);
});

t.test('§6 an owner waiting on two owners: both are edges, and no false EDEADLK through a diamond', async (t) => {
  const { table, graph } = mk();
  set(table, { path: '/f1', lockOwner: 2, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  set(table, { path: '/f1', lockOwner: 3, lockType: F_RDLCK, lockStart: 5, lockLen: 10 });
  set(table, { path: '/f4', lockOwner: 4, lockStart: 0, lockLen: 10 });
  set(table, { path: '/f5', lockOwner: 5, lockStart: 0, lockLen: 10 });
  set(table, { path: '/f6', lockOwner: 1, lockStart: 0, lockLen: 10 });
  const w1 = wait(table, { path: '/f1', lockOwner: 1, lockStart: 0, lockLen: 20 });
  t.strictSame(edges(graph), { pn1: ['pn2', 'pn3'] });
  const w2 = wait(table, { path: '/f4', lockOwner: 2 });
  const w3 = wait(table, { path: '/f4', lockOwner: 3 });
  const w4 = wait(table, { path: '/f5', lockOwner: 4 });
  t.strictSame(edges(graph), { pn1: ['pn2', 'pn3'], pn2: ['pn4'], pn3: ['pn4'], pn4: ['pn5'] });
  // 5 waiting for 1 closes 5 -> 1 -> (2 or 3) -> 4 -> 5.
  t.strictSame(setw(table, { path: '/f6', lockOwner: 5, lockStart: 3, lockLen: 1 }), rep(-EDEADLK, F_WRLCK, 3, 1));
  // Through the second blocker only: 2 stops waiting, 3 still closes the cycle.
  t.equal(table.cancel(w2.p, 'abort'), true);
  t.strictSame(edges(graph), { pn1: ['pn2', 'pn3'], pn3: ['pn4'], pn4: ['pn5'] });
  t.strictSame(setw(table, { path: '/f6', lockOwner: 5 }).result, -EDEADLK);
  t.equal(table.cancel(w3.p, 'abort'), true);
  const w5 = wait(table, { path: '/f6', lockOwner: 5 });
  t.strictSame(edges(graph), { pn1: ['pn2', 'pn3'], pn4: ['pn5'], pn5: ['pn1'] });
  for (const w of [w1, w4, w5]) t.strictSame(w.out, []);
});

t.test('§6 after the blocking lock goes, its edge goes: a later request sees no stale cycle', async (t) => {
  // Granted.
  {
    const { table, graph } = mk();
    set(table, { path: '/f1', lockOwner: 'A' });
    set(table, { path: '/f2', lockOwner: 'B' });
    const a = wait(table, { path: '/f2', lockOwner: 'A' });
    set(table, { path: '/f2', lockOwner: 'B', lockType: F_UNLCK });
    t.strictSame(a.out, [rep(0, F_WRLCK, 0, 0)]);
    t.strictSame(edges(graph), {});
    wait(table, { path: '/f1', lockOwner: 'B' });
    t.strictSame(edges(graph), { psB: ['psA'] });
  }
  // Cancelled (abort and timeout).
  for (const reason of ['abort', 'timeout'] as const) {
    const { table, graph } = mk();
    set(table, { path: '/f1', lockOwner: 'A' });
    set(table, { path: '/f2', lockOwner: 'B' });
    const a = wait(table, { path: '/f2', lockOwner: 'A' });
    t.equal(table.cancel(a.p, reason), true);
    t.strictSame(edges(graph), {}, reason);
    const b = wait(table, { path: '/f1', lockOwner: 'B' });
    t.strictSame(edges(graph), { psB: ['psA'] });
    t.strictSame(b.out, []);
  }
  // One of two blockers goes: the edge to it goes, the other stays.
  {
    const { table, graph } = mk();
    set(table, { path: '/f1', lockOwner: 'A' });
    set(table, { path: '/f2', lockOwner: 'B', lockStart: 0, lockLen: 10 });
    set(table, { path: '/f2', lockOwner: 'C', lockStart: 10, lockLen: 10 });
    const a = wait(table, { path: '/f2', lockOwner: 'A', lockStart: 0, lockLen: 20 });
    t.strictSame(edges(graph), { psA: ['psB', 'psC'] });
    set(table, { path: '/f2', lockOwner: 'B', lockType: F_UNLCK });
    t.strictSame(edges(graph), { psA: ['psC'] });
    const b = wait(table, { path: '/f1', lockOwner: 'B' });
    t.strictSame(edges(graph), { psA: ['psC'], psB: ['psA'] });
    t.strictSame(setw(table, { path: '/f1', lockOwner: 'C' }).result, -EDEADLK);
    t.strictSame([a.out, b.out], [[], []]);
  }
  // Flushed.
  {
    const { table, graph } = mk();
    set(table, { path: '/f1', lockOwner: 'A' });
    set(table, { path: '/f2', lockOwner: 'B' });
    const a = wait(table, { path: '/f2', lockOwner: 'A' });
    table.flush({ path: '/f2', lockOwner: 'B' });
    t.strictSame(a.out, [rep(0, F_WRLCK, 0, 0)]);
    t.strictSame(edges(graph), {});
    wait(table, { path: '/f1', lockOwner: 'B' });
    t.strictSame(edges(graph), { psB: ['psA'] });
  }
});

t.test('§6 OFD and flock owners never get -EDEADLK and carry no edges', async (t) => {
  for (const kind of ['ofd', 'flock'] as const) {
    const { table, graph } = mk();
    set(table, { kind, path: '/f1', lockOwner: 1 });
    set(table, { kind, path: '/f2', lockOwner: 2 });
    const one = wait(table, { kind, path: '/f2', lockOwner: 1 });
    const two = wait(table, { kind, path: '/f1', lockOwner: 2 });
    t.strictSame(edges(graph), {}, kind);
    t.strictSame([one.out, two.out], [[], []]);
    t.equal(table.cancel(two.p, 'abort'), true);
    t.strictSame(two.out, [rep(-EINTR, F_WRLCK, 0, 0)]);
  }
  // A posix owner and an OFD owner: no edge through the OFD lock, so no EDEADLK either way.
  const { table, graph } = mk();
  set(table, { path: '/f1', lockOwner: 1 });
  set(table, { kind: 'ofd', path: '/f2', lockOwner: 2 });
  const o = wait(table, { kind: 'ofd', path: '/f1', lockOwner: 2 });
  const p = wait(table, { path: '/f2', lockOwner: 1 });
  t.strictSame(edges(graph), {});
  t.strictSame([o.out, p.out], [[], []]);
  // And posix 2 (a different owner from ofd 2) waiting on posix 1 is a plain edge.
  const q = wait(table, { path: '/f1', lockOwner: 2 });
  t.strictSame(edges(graph), { pn2: ['pn1'] });
  t.strictSame(q.out, []);
});

t.test('§6 a waiter whose blockers change is re-checked: -EDEADLK when the new blocker closes a cycle', async (t) => {
  const { table, graph } = mk();
  set(table, { path: '/f1', lockOwner: 'A', lockStart: 0, lockLen: 10 });
  set(table, { path: '/f2', lockOwner: 'C', lockStart: 0, lockLen: 10 });
  const b1 = wait(table, { path: '/f1', lockOwner: 'B', lockStart: 0, lockLen: 10 });
  const b2 = wait(table, { path: '/f2', lockOwner: 'B', lockStart: 0, lockLen: 10 });
  const c1 = wait(table, { path: '/f1', lockOwner: 'C', lockStart: 0, lockLen: 10, lockPid: 3 });
  t.strictSame(edges(graph), { psB: ['psA', 'psC'], psC: ['psA'] });
  // A unlocks: B (first in line) gets f1 and now blocks C, who holds f2 that B waits for.
  set(table, { path: '/f1', lockOwner: 'A', lockType: F_UNLCK });
  t.strictSame(b1.out, [rep(0, F_WRLCK, 0, 10)]);
  t.strictSame(c1.out, [rep(-EDEADLK, F_WRLCK, 0, 10, 3)]);
  t.strictSame(b2.out, []);
  t.strictSame(ls(table, '/f1'), ['posix write 0-9 B granted']);
  t.strictSame(ls(table, '/f2'), ['posix write 0-9 C granted', 'posix write 0-9 B waiting']);
  t.strictSame(edges(graph), { psB: ['psC'] });
});

t.test('§6 a waiter whose new blocker closes no cycle keeps waiting, with its edges updated', async (t) => {
  const { table, graph } = mk();
  set(table, { path: '/f1', lockOwner: 'A', lockStart: 0, lockLen: 10 });
  set(table, { path: '/f2', lockOwner: 'D', lockStart: 0, lockLen: 10 });
  const b1 = wait(table, { path: '/f1', lockOwner: 'B', lockStart: 0, lockLen: 10 });
  const b2 = wait(table, { path: '/f2', lockOwner: 'B', lockStart: 0, lockLen: 10 });
  const c1 = wait(table, { path: '/f1', lockOwner: 'C', lockStart: 0, lockLen: 10 });
  set(table, { path: '/f1', lockOwner: 'A', lockType: F_UNLCK });
  t.strictSame(b1.out, [rep(0, F_WRLCK, 0, 10)]);
  t.strictSame([b2.out, c1.out], [[], []]);
  t.strictSame(edges(graph), { psB: ['psD'], psC: ['psB'] });
});

t.test('§6 a new grant that blocks a waiter closing a cycle fails that waiter with -EDEADLK', async (t) => {
  // X waits on Y's [0, 9]; Z, who waits on X elsewhere, takes a read lock inside X's range.
  const { table, graph } = mk();
  set(table, { path: '/f1', lockOwner: 'Y', lockStart: 0, lockLen: 10 });
  set(table, { path: '/f2', lockOwner: 'X', lockStart: 0, lockLen: 10 });
  const x = wait(table, { path: '/f1', lockOwner: 'X', lockStart: 0, lockLen: 20 });
  const z = wait(table, { path: '/f2', lockOwner: 'Z', lockStart: 0, lockLen: 10 });
  t.strictSame(edges(graph), { psX: ['psY'], psZ: ['psX'] });
  t.strictSame(set(table, { path: '/f1', lockOwner: 'Z', lockType: F_RDLCK, lockStart: 15, lockLen: 1 }).result, 0);
  t.strictSame(x.out, [rep(-EDEADLK, F_WRLCK, 0, 20)]);
  t.strictSame(z.out, []);
  t.strictSame(edges(graph), { psZ: ['psX'] });
});

t.test('§6 never a false EDEADLK from another waiter\'s stale edges during a re-check', async (t) => {
  // Q and Z hold locks; X holds [0, 9]. X waits on Q (W1); Y waits on X, Q, Z (W2) and on X (W3).
  // X unlocks: W3 is granted, so Y now blocks W1; W2 no longer waits on X. No cycle exists:
  // X -> {Q, Y}, Y -> {Q, Z}.
  const { table, graph } = mk();
  set(table, { lockOwner: 'X', lockStart: 0, lockLen: 10 });
  set(table, { lockOwner: 'Q', lockType: F_RDLCK, lockStart: 20, lockLen: 10 });
  set(table, { lockOwner: 'Z', lockStart: 100, lockLen: 10 });
  const w1 = wait(table, { lockOwner: 'X', lockStart: 20, lockLen: 10 });
  const w2 = wait(table, { lockOwner: 'Y', lockStart: 5, lockLen: 101 });
  const w3 = wait(table, { lockOwner: 'Y', lockType: F_RDLCK, lockStart: 5, lockLen: 21 });
  t.strictSame(edges(graph), { psX: ['psQ'], psY: ['psQ', 'psX', 'psZ'] });
  set(table, { lockOwner: 'X', lockType: F_UNLCK });
  t.strictSame(w3.out, [rep(0, F_RDLCK, 5, 21)]);
  t.strictSame(w1.out, [], 'X is not deadlocked');
  t.strictSame(w2.out, []);
  t.strictSame(edges(graph), { psX: ['psQ', 'psY'], psY: ['psQ', 'psZ'] });
  t.strictSame(ls(table, '/f1'), [
    'posix read 5-25 Y granted',
    'posix read 20-29 Q granted',
    'posix write 100-109 Z granted',
    'posix write 20-29 X waiting',
    'posix write 5-105 Y waiting',
  ]);
});

t.test('§6 graph edges are removed when the waiter is granted, cancelled, timed out or released', async (t) => {
  const { table, graph } = mk();
  set(table, { path: '/f1', lockOwner: 1, lockStart: 0, lockLen: 10 });
  const g = wait(table, { path: '/f1', lockOwner: 2, lockStart: 0, lockLen: 10 });
  const c = wait(table, { path: '/f1', lockOwner: 3, lockStart: 5, lockLen: 1 });
  const tmo = wait(table, { path: '/f1', lockOwner: 4, lockStart: 6, lockLen: 1 });
  const rel = wait(table, { path: '/f1', lockOwner: 5, lockStart: 7, lockLen: 1, fileHandle: 'h5' });
  t.strictSame(edges(graph), { pn2: ['pn1'], pn3: ['pn1'], pn4: ['pn1'], pn5: ['pn1'] });
  table.cancel(c.p, 'abort');
  t.strictSame(edges(graph), { pn2: ['pn1'], pn4: ['pn1'], pn5: ['pn1'] });
  table.cancel(tmo.p, 'timeout');
  t.strictSame(edges(graph), { pn2: ['pn1'], pn5: ['pn1'] });
  table.release({ path: '/f1', fileHandle: 'h5' });
  t.strictSame(rel.out, [rep(-EINTR, F_WRLCK, 7, 1)]);
  t.strictSame(edges(graph), { pn2: ['pn1'] });
  set(table, { path: '/f1', lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(g.out, [rep(0, F_WRLCK, 0, 10)]);
  t.strictSame(edges(graph), {});
  t.strictSame(c.out, [rep(-EINTR, F_WRLCK, 5, 1)]);
  t.strictSame(tmo.out, [rep(-EAGAIN, F_WRLCK, 6, 1)]);
  // cancelAll too.
  const s = wait(table, { path: '/f1', lockOwner: 6, lockStart: 0, lockLen: 1 });
  t.strictSame(edges(graph), { pn6: ['pn2'] });
  table.cancelAll('stop');
  t.strictSame(s.out, [rep(-EINTR, F_WRLCK, 0, 1)]);
  t.strictSame(edges(graph), {});
});

t.test('§6 fifo: a request whose queueing would close a cycle is handled as in default mode', async (t) => {
  const { table, graph } = mk({ policy: 'fifo' });
  set(table, { path: '/f3', lockOwner: 3, lockStart: 0, lockLen: 10 });
  set(table, { path: '/f1', lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  const w2a = wait(table, { path: '/f1', lockOwner: 2, lockStart: 0, lockLen: 10 });
  const w2b = wait(table, { path: '/f3', lockOwner: 2, lockStart: 0, lockLen: 10 });
  t.strictSame(edges(graph), { pn2: ['pn1', 'pn3'] });
  // Queueing owner 3's read behind owner 2's write would close 3 -> 2 -> 3: granted at once instead.
  t.strictSame(setw(table, { path: '/f1', lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 10 }), rep(0, F_RDLCK, 0, 10));
  t.strictSame(edges(graph), { pn2: ['pn1', 'pn3'] });
  // Owner 4, in no cycle, queues behind owner 2 as 'fifo' says.
  const w4 = wait(table, { path: '/f1', lockOwner: 4, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  t.strictSame(edges(graph), { pn2: ['pn1', 'pn3'], pn4: ['pn2'] });
  t.strictSame([w2a.out, w2b.out, w4.out], [[], [], []]);
});

t.test('§6 fifo must not create deadlocks: a cycle closed through a fifo queueing edge is not -EDEADLK', async (t) => {
  // In default mode owner 4's read on f1 is granted at once (only a read lock is granted there),
  // and owner 2 may then wait for f5: no deadlock.
  for (const policy of ['default', 'fifo'] as const) {
    const { table, graph } = mk({ policy });
    set(table, { path: '/f1', lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
    const w2a = wait(table, { path: '/f1', lockOwner: 2, lockStart: 0, lockLen: 10 });
    set(table, { path: '/f5', lockOwner: 4, lockStart: 0, lockLen: 10 });
    const r4: PosixReply[] = [];
    const p4 = table.lock(rq({ path: '/f1', lockOwner: 4, lockType: F_RDLCK, lockStart: 0, lockLen: 10, cmd: F_SETLKW }), (r) => r4.push(r));
    const queued4 = !(p4 instanceof Promise) && 'waiter' in p4;
    t.equal(queued4, policy === 'fifo', `${policy}: owner 4 queues only under fifo`);
    // Owner 2 now waits for f5, held by owner 4. Under fifo owner 4 queues behind owner 2, so
    // this would close 2 -> 4 -> 2: a cycle that only 'fifo' made.
    const out2b: PosixReply[] = [];
    const p2b = table.lock(rq({ path: '/f5', lockOwner: 2, lockStart: 0, lockLen: 10, cmd: F_SETLKW }), (r) => out2b.push(r));
    t.ok(!(p2b instanceof Promise) && 'waiter' in p2b, `${policy}: owner 2 waits, no -EDEADLK (got ${inspect(p2b, { depth: 0 })})`);
    t.strictSame(out2b, []);
    // No deadlock is left behind: owner 4's read on f1 is granted (it cannot wait behind owner 2).
    const granted4 = queued4 ? r4 : [now(p4)];
    t.strictSame(granted4, [rep(0, F_RDLCK, 0, 10)], `${policy}: owner 4 holds its read lock`);
    t.strictSame(ls(table, '/f1'), ['posix read 0-9 1 granted', 'posix read 0-9 4 granted', 'posix write 0-9 2 waiting']);
    t.strictSame(edges(graph), { pn2: ['pn1', 'pn4'] }, policy);
    t.strictSame(w2a.out, []);
  }
});

t.test('§6 one release puts two waiters on one cycle: the later one fails, as the last Linux waiter to sleep again', async (t) => {
  const { table, graph } = mk();
  set(table, { lockOwner: 'A', lockType: F_WRLCK });
  const bw = wait(table, { lockOwner: 'B', lockStart: 0, lockLen: 1 });
  const cw = wait(table, { lockOwner: 'C', lockStart: 1, lockLen: 1 });
  const br = wait(table, { lockOwner: 'B', lockType: F_RDLCK });
  const cr = wait(table, { lockOwner: 'C', lockType: F_RDLCK });
  // A's release grants B [0,0] and C [1,1]; B's read then waits for C and C's for B. B's is
  // checked first, while C's (checked after it) waits for nobody; C's closes the cycle.
  t.strictSame(set(table, { lockOwner: 'A', lockType: F_UNLCK }).result, 0);
  t.strictSame(bw.out.map((r) => r.result), [0], "B's write granted");
  t.strictSame(cw.out.map((r) => r.result), [0], "C's write granted");
  t.strictSame(br.out, [], "B's read still waits (for C)");
  t.strictSame(cr.out.map((r) => r.result), [-EDEADLK], "C's read, the later, fails");
  t.strictSame(edges(graph), { psB: ['psC'] }, 'B waits for C');
});

t.test("§6 fifo: a waiter whose new blocker queues behind it on another file closes a cycle 'fifo' made: that one passes", async (t) => {
  // /f3: 2 reads [0]; 1 waits to write all of it; 5's read [0] queues behind 1 (fifo), though
  // only 1's waiting request stands in its way. /f0: 3 reads [0]; 5 waits to write [0]; 1 waits
  // to write all of it, not behind 5 (5 already waits for 1). 3's unlock grants 5 [0] on /f0: 1
  // now waits for 5 there, while 5 queues behind 1 on /f3, a cycle only 'fifo' made. As when a
  // request queues, /f3 looks again: 5 passes 1 and gets its read, and no deadlock is left.
  const { table, graph } = mk({ policy: 'fifo' });
  set(table, { path: '/f3', lockOwner: 2, lockType: F_RDLCK, lockStart: 0, lockLen: 1 });
  const w1 = wait(table, { path: '/f3', lockOwner: 1, lockStart: 0, lockLen: 0 });
  set(table, { path: '/f0', lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 1 });
  const r5 = wait(table, { path: '/f3', lockOwner: 5, lockType: F_RDLCK, lockStart: 0, lockLen: 1 });
  const w5 = wait(table, { path: '/f0', lockOwner: 5, lockStart: 0, lockLen: 1 });
  const w1b = wait(table, { path: '/f0', lockOwner: 1, lockStart: 0, lockLen: 0 });
  t.strictSame(r5.out, [], "5's read queues behind 1's write on /f3");
  t.strictSame(set(table, { path: '/f0', lockOwner: 3, lockType: F_UNLCK }).result, 0);
  t.strictSame(w5.out.map((r) => r.result), [0], "5's write on /f0 granted");
  t.strictSame(r5.out.map((r) => r.result), [0], "5's read on /f3 passes 1's waiting write: granted");
  t.strictSame(w1b.out, [], '1 waits for 5 on /f0');
  t.strictSame(w1.out, [], '1 waits for 2 and 5 on /f3');
  t.strictSame(edges(graph), { pn1: ['pn2', 'pn5'] }, 'no cycle: 1 waits, 5 waits for nobody');
  t.strictSame(set(table, { path: '/f3', lockOwner: 2, lockType: F_UNLCK }).result, 0);
  t.strictSame(w1.out, [], '2 gone: 1 still waits for 5 on /f3, no EDEADLK');
  t.strictSame(set(table, { path: '/f3', lockOwner: 5, lockType: F_UNLCK }).result, 0);
  t.strictSame(w1.out.map((r) => r.result), [0], '1 gets /f3');
  t.strictSame(set(table, { path: '/f0', lockOwner: 5, lockType: F_UNLCK }).result, 0);
  t.strictSame(w1b.out.map((r) => r.result), [0], '1 gets /f0');
});
