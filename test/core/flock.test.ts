/**
 * flock(2) locks on the synchronous core (SEMANTICS-POSIX.md §9, with §7, §8, §10 where flock
 * meets them). LOCK_SH = F_RDLCK, LOCK_EX = F_WRLCK, LOCK_UN = F_UNLCK; LOCK_NB = F_SETLK.
 */
import t from 'tap';
import { inspect } from 'node:util';
import {
  LockTable,
  EAGAIN,
  EINTR,
  F_GETLK,
  F_RDLCK,
  F_SETLK,
  F_SETLKW,
  F_UNLCK,
  F_WRLCK,
  OFFSET_MAX,
  type Pending,
  type PosixReply,
  type TableOptions,
} from '../../src/index.js';
import { now } from './support.js';
import { LocalWaitForGraph } from '../../src/core/deadlock.js';

const F = '/f';
const MAX = OFFSET_MAX;
const SH = F_RDLCK;
const EX = F_WRLCK;
const UN = F_UNLCK;

type Req = Record<string, unknown>;

function mk(opts: TableOptions = {}): LockTable {
  return new LockTable({ now: () => 0, ...opts });
}

/** A flock request: LOCK_EX|LOCK_NB by flock owner 1 on /f unless overridden. */
function fl(over: Req = {}): Req {
  return { path: F, kind: 'flock', lockType: EX, cmd: F_SETLK, lockOwner: 1, ...over };
}

function set(table: LockTable, over: Req): PosixReply {
  return now(table.lock(fl(over)));
}

/** The same for an fcntl request (posix owner 1, whole file). */
function fcntl(table: LockTable, over: Req): PosixReply {
  return now(table.lock({ path: F, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLK, lockOwner: 1, ...over }));
}

interface Waiting {
  p: Pending;
  out: PosixReply[];
}

function wait(table: LockTable, over: Req): Waiting {
  const out: PosixReply[] = [];
  const p = table.lock(fl({ cmd: F_SETLKW, ...over }), (r) => out.push(r));
  if (p instanceof Promise || !('waiter' in p)) throw new Error(`expected ${inspect(over)} to queue, got ${inspect(p)}`);
  return { p, out };
}

function rep(result: number, lockType: number, pid = 0, start: bigint | number = 0, len: bigint | number = 0): PosixReply {
  return { result, lockType, lockStart: BigInt(start), lockLen: BigInt(len), lockPid: pid };
}

function ls(table: LockTable, path = F): string[] {
  return table.locks(path).map(
    (e) =>
      `${e.kind} ${e.type} ${e.start}-${e.end} ${String(e.owner)} pid=${e.pid} ${e.state}` +
      (e.fileHandle === undefined ? '' : ` fh=${String(e.fileHandle)}`),
  );
}

const WHOLE = `0-${MAX}`;

t.test('§9 a flock lock covers the whole file; lockStart and lockLen are ignored', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockOwner: 1, lockType: SH, lockStart: 100, lockLen: 10, lockPid: 11 }), rep(0, SH, 11, 100, 10));
  t.strictSame(ls(table), [`flock read ${WHOLE} 1 pid=11 granted`]);
  // A disjoint "range" still conflicts: there is only the whole file.
  t.strictSame(set(table, { lockOwner: 2, lockType: EX, lockStart: 0, lockLen: 10 }), rep(-EAGAIN, EX, 0, 0, 10));
  // Ranges fcntl would refuse mean nothing to flock.
  t.strictSame(set(table, { lockOwner: 3, lockType: SH, lockStart: -5, lockLen: -10 }), rep(0, SH, 0, -5, -10));
  t.strictSame(set(table, { path: '/g', lockOwner: 3, lockStart: MAX, lockLen: 5 }).result, 0);
  t.strictSame(ls(table), [`flock read ${WHOLE} 1 pid=11 granted`, `flock read ${WHOLE} 3 pid=0 granted`]);
  t.strictSame(ls(table, '/g'), [`flock write ${WHOLE} 3 pid=0 granted`]);
  // lockType and cmd are still checked.
  t.strictSame(set(table, { lockOwner: 4, lockType: 3 }).result, -22);
  t.strictSame(set(table, { lockOwner: 4, cmd: 8 }).result, -22);
});

t.test('§9 flock locks are their own lock space: flock and fcntl locks never conflict', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockOwner: 1, lockType: EX }).result, 0);
  t.strictSame(fcntl(table, { lockOwner: 2, lockType: F_WRLCK }).result, 0, 'POSIX write under a flock write');
  t.strictSame(fcntl(table, { lockOwner: 3, kind: 'ofd', lockType: F_WRLCK, lockStart: 0, lockLen: 0 }).result, -EAGAIN, 'POSIX and OFD still conflict');
  t.strictSame(now(table.lock({ path: F, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_GETLK, lockOwner: 3 })), rep(0, F_WRLCK, 0, 0, 0));
  t.strictSame(ls(table), [`flock write ${WHOLE} 1 pid=0 granted`, `posix write ${WHOLE} 2 pid=0 granted`]);
  // And the other way round, on a fresh file.
  const t2 = mk();
  t.strictSame(fcntl(t2, { lockOwner: 1, lockType: F_WRLCK }).result, 0);
  t.strictSame(fcntl(t2, { lockOwner: 2, kind: 'ofd', lockType: F_RDLCK, lockStart: 5, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(set(t2, { lockOwner: 2, lockType: EX }).result, 0, 'flock write under a POSIX write');
  t.strictSame(set(t2, { lockOwner: 1, lockType: SH }).result, -EAGAIN, 'flock owner 1 meets flock owner 2 only');
  // Unlocking in one space leaves the other alone.
  t.strictSame(fcntl(t2, { lockOwner: 2, lockType: F_UNLCK }).result, 0);
  t.strictSame(set(t2, { lockOwner: 1, lockType: UN }).result, 0);
  t.strictSame(ls(t2), [`posix write ${WHOLE} 1 pid=0 granted`, `flock write ${WHOLE} 2 pid=0 granted`]);
  // A blocked flock waiter is not woken by fcntl changes, nor an fcntl waiter by flock changes.
  const w = wait(t2, { lockOwner: 3, lockType: SH });
  fcntl(t2, { lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(w.out, []);
  set(t2, { lockOwner: 2, lockType: UN });
  t.strictSame(w.out, [rep(0, SH)]);
});

t.test('§9 LOCK_SH is shared, LOCK_EX exclusive; LOCK_NB on a conflict gives -EAGAIN', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockOwner: 1, lockType: SH }).result, 0);
  t.strictSame(set(table, { lockOwner: 2, lockType: SH }).result, 0);
  t.strictSame(set(table, { lockOwner: 3, lockType: EX, lockPid: 3 }), rep(-EAGAIN, EX, 3));
  t.strictSame(set(table, { path: '/g', lockOwner: 1, lockType: EX }).result, 0);
  t.strictSame(set(table, { path: '/g', lockOwner: 2, lockType: SH }).result, -EAGAIN);
  t.strictSame(set(table, { path: '/g', lockOwner: 2, lockType: EX }).result, -EAGAIN);
  // Identities: 1n is owner 1, '1' is not.
  t.strictSame(set(table, { path: '/g', lockOwner: 1n, lockType: EX }).result, 0);
  t.strictSame(set(table, { path: '/g', lockOwner: '1', lockType: SH }).result, -EAGAIN);
  t.strictSame(ls(table), [`flock read ${WHOLE} 1 pid=0 granted`, `flock read ${WHOLE} 2 pid=0 granted`]);
  t.strictSame(ls(table, '/g'), [`flock write ${WHOLE} 1 pid=0 granted`]);
});

t.test('§9 asking for the type already held is a no-op', async (t) => {
  const calls: string[] = [];
  const table = mk({ hooks: { approve: (_f, e) => (calls.push(`${String(e.lockOwner)}:${String(e.lockType)}`), 0) } });
  t.strictSame(set(table, { lockOwner: 1, lockType: SH, lockPid: 5 }).result, 0);
  const w = wait(table, { lockOwner: 2, lockType: EX });
  t.strictSame(set(table, { lockOwner: 1, lockType: SH, lockPid: 6 }), rep(0, SH, 6));
  t.strictSame(now(table.lock(fl({ lockOwner: 1, lockType: SH, cmd: F_SETLKW }))), rep(0, SH));
  t.strictSame(w.out, [], 'the lock was not dropped and re-taken (no wake-up)');
  t.strictSame(ls(table), [`flock read ${WHOLE} 1 pid=5 granted`, `flock write ${WHOLE} 2 pid=0 waiting`]);
  t.strictSame(calls, ['1:0']);
});

t.test('§9 conversion is not atomic: A and B hold LOCK_SH; A\'s LOCK_EX|LOCK_NB gives -EAGAIN with A holding nothing', async (t) => {
  const table = mk();
  set(table, { lockOwner: 'A', lockType: SH });
  set(table, { lockOwner: 'B', lockType: SH });
  t.strictSame(set(table, { lockOwner: 'A', lockType: EX }), rep(-EAGAIN, EX));
  t.strictSame(ls(table), [`flock read ${WHOLE} B pid=0 granted`]);
  // A holds nothing now: a third owner's LOCK_EX still meets B only.
  set(table, { lockOwner: 'B', lockType: UN });
  t.strictSame(ls(table), []);
  t.strictSame(set(table, { lockOwner: 'C', lockType: EX }).result, 0);
});

t.test('§9 a blocking conversion waits holding nothing, and its dropped lock wakes waiters', async (t) => {
  // A and B hold LOCK_SH; A asks LOCK_EX and waits, holding nothing.
  const table = mk();
  set(table, { lockOwner: 'A', lockType: SH });
  set(table, { lockOwner: 'B', lockType: SH });
  const a = wait(table, { lockOwner: 'A', lockType: EX });
  t.strictSame(ls(table), [`flock read ${WHOLE} B pid=0 granted`, `flock write ${WHOLE} A pid=0 waiting`]);
  t.strictSame(set(table, { lockOwner: 'C', lockType: SH }).result, 0, 'A holds nothing, C may share with B');
  set(table, { lockOwner: 'B', lockType: UN });
  set(table, { lockOwner: 'C', lockType: UN });
  t.strictSame(a.out, [rep(0, EX)]);
  t.strictSame(ls(table), [`flock write ${WHOLE} A pid=0 granted`]);

  // A holds LOCK_SH, C waits for LOCK_EX; A's LOCK_EX (blocking or not) drops A's lock and is
  // decided in the same step, as Linux does under the file's lock [flock_lock_inode]: nothing
  // granted conflicts, so A is granted at once; C, woken by the drop, meets A's lock and waits.
  for (const cmd of [F_SETLK, F_SETLKW]) {
    const t2 = mk();
    set(t2, { lockOwner: 'A', lockType: SH });
    const c = wait(t2, { lockOwner: 'C', lockType: EX });
    t.strictSame(now(t2.lock(fl({ lockOwner: 'A', lockType: EX, cmd }))), rep(0, EX), `A's upgrade (cmd ${cmd}) is granted at once`);
    t.strictSame(c.out, []);
    t.strictSame(ls(t2), [`flock write ${WHOLE} A pid=0 granted`, `flock write ${WHOLE} C pid=0 waiting`]);
    set(t2, { lockOwner: 'A', lockType: UN });
    t.strictSame(c.out, [rep(0, EX)]);
    t.strictSame(ls(t2), [`flock write ${WHOLE} C pid=0 granted`]);
  }

  // A conversion that must wait queues behind the waiters its drop woke: A and B hold LOCK_SH,
  // C waits for LOCK_EX, A's LOCK_EX meets B's lock and waits behind C.
  const t3 = mk();
  set(t3, { lockOwner: 'A', lockType: SH });
  set(t3, { lockOwner: 'B', lockType: SH });
  const c3 = wait(t3, { lockOwner: 'C', lockType: EX });
  const a3 = wait(t3, { lockOwner: 'A', lockType: EX });
  set(t3, { lockOwner: 'B', lockType: UN });
  t.strictSame([c3.out, a3.out], [[rep(0, EX)], []], 'C, queued first, is granted; A waits');
  set(t3, { lockOwner: 'C', lockType: UN });
  t.strictSame(a3.out, [rep(0, EX)]);
});

t.test('§9 a downgrade (LOCK_EX to LOCK_SH) also drops the lock first and wakes waiters', async (t) => {
  const table = mk();
  set(table, { lockOwner: 'A', lockType: EX });
  const b = wait(table, { lockOwner: 'B', lockType: SH });
  t.strictSame(set(table, { lockOwner: 'A', lockType: SH }), rep(0, SH));
  t.strictSame(b.out, [rep(0, SH)]);
  t.strictSame(ls(table), [`flock read ${WHOLE} A pid=0 granted`, `flock read ${WHOLE} B pid=0 granted`], "A's new lock first, then B's, granted after it");
  // With an exclusive waiter: A's LOCK_SH|LOCK_NB is decided before the waiter the drop woke
  // tries again (Linux, one step under the file's lock), so a downgrade never fails; C waits on.
  const t2 = mk();
  set(t2, { lockOwner: 'A', lockType: EX });
  const c = wait(t2, { lockOwner: 'C', lockType: EX });
  t.strictSame(set(t2, { lockOwner: 'A', lockType: SH }), rep(0, SH));
  t.strictSame(c.out, []);
  t.strictSame(ls(t2), [`flock read ${WHOLE} A pid=0 granted`, `flock write ${WHOLE} C pid=0 waiting`]);
  set(t2, { lockOwner: 'A', lockType: UN });
  t.strictSame(c.out, [rep(0, EX)]);
});

t.test('§9 LOCK_UN removes the lock and wakes waiters; LOCK_UN of nothing is 0', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockOwner: 1, lockType: UN, lockPid: 4 }), rep(0, UN, 4));
  t.equal(table.fileCount, 0);
  set(table, { lockOwner: 1, lockType: EX });
  const w2 = wait(table, { lockOwner: 2, lockType: SH });
  const w3 = wait(table, { lockOwner: 3, lockType: SH });
  const w4 = wait(table, { lockOwner: 4, lockType: EX });
  t.strictSame(set(table, { lockOwner: 5, lockType: UN }), rep(0, UN));
  t.strictSame([w2.out, w3.out, w4.out], [[], [], []]);
  t.strictSame(set(table, { lockOwner: 1, lockType: UN }), rep(0, UN));
  t.strictSame([w2.out, w3.out, w4.out], [[rep(0, SH)], [rep(0, SH)], []]);
  t.strictSame(ls(table), [`flock read ${WHOLE} 2 pid=0 granted`, `flock read ${WHOLE} 3 pid=0 granted`, `flock write ${WHOLE} 4 pid=0 waiting`]);
  set(table, { lockOwner: 2, lockType: UN });
  set(table, { lockOwner: 3, lockType: UN });
  t.strictSame(w4.out, [rep(0, EX)]);
  t.strictSame(ls(table), [`flock write ${WHOLE} 4 pid=0 granted`]);
});

t.test('§9 there is no deadlock detection for flock', async (t) => {
  const graph = new LocalWaitForGraph();
  const table = mk({ graph });
  set(table, { path: '/f1', lockOwner: 1, lockType: EX });
  set(table, { path: '/f2', lockOwner: 2, lockType: EX });
  const a = wait(table, { path: '/f2', lockOwner: 1, lockType: EX });
  const b = wait(table, { path: '/f1', lockOwner: 2, lockType: EX });
  t.strictSame([a.out, b.out], [[], []]);
  t.strictSame(graph.edges(), new Map());
  // Two LOCK_SH holders both converting (the classic conversion deadlock of fcntl): no -EDEADLK.
  // Owner 1's conversion waits holding nothing; owner 2's drops its shared lock and, in the same
  // step (Linux: flock_lock_inode), finds nothing granted: granted at once; owner 1 waits on.
  const t2 = mk({ graph });
  set(t2, { lockOwner: 1, lockType: SH });
  set(t2, { lockOwner: 2, lockType: SH });
  const c1 = wait(t2, { lockOwner: 1, lockType: EX });
  t.strictSame(now(t2.lock(fl({ lockOwner: 2, lockType: EX, cmd: F_SETLKW }))), rep(0, EX), "owner 2's LOCK_EX is granted at once");
  t.strictSame(c1.out, []);
  t.strictSame(graph.edges(), new Map());
  set(t2, { lockOwner: 2, lockType: UN });
  t.strictSame(c1.out, [rep(0, EX)]);
  t.strictSame(ls(t2), [`flock write ${WHOLE} 1 pid=0 granted`]);
});

t.test('§8 a waiting flock ends with -EINTR on abort, -EAGAIN on timeout', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockType: EX });
  const a = wait(table, { lockOwner: 2, lockType: SH, lockPid: 2 });
  const b = wait(table, { lockOwner: 3, lockType: EX, lockPid: 3 });
  t.equal(table.cancel(a.p, 'abort'), true);
  t.equal(table.cancel(b.p, 'timeout'), true);
  t.strictSame(a.out, [rep(-EINTR, SH, 2)]);
  t.strictSame(b.out, [rep(-EAGAIN, EX, 3)]);
  t.strictSame(ls(table), [`flock write ${WHOLE} 1 pid=0 granted`]);
});

t.test('§10 flush leaves flock locks; release drops them by fileHandle or lockOwner', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockType: SH, fileHandle: 'h1' });
  set(table, { lockOwner: 2, lockType: SH });
  set(table, { lockOwner: 3, lockType: SH, fileHandle: 'h3' });
  table.flush({ path: F, lockOwner: 1 });
  table.flush({ path: F, lockOwner: 2 });
  t.strictSame(ls(table), [`flock read ${WHOLE} 1 pid=0 granted fh=h1`, `flock read ${WHOLE} 2 pid=0 granted`, `flock read ${WHOLE} 3 pid=0 granted fh=h3`]);
  const w = wait(table, { lockOwner: 4, lockType: EX, fileHandle: 'h4' });
  const w5 = wait(table, { lockOwner: 5, lockType: EX, fileHandle: 'h1' });
  // release(h1): owner 1's lock (taken through h1) goes, and the waiter through h1 ends with -EINTR.
  table.release({ path: F, fileHandle: 'h1' });
  t.strictSame(w5.out, [rep(-EINTR, EX)]);
  t.strictSame(ls(table), [`flock read ${WHOLE} 2 pid=0 granted`, `flock read ${WHOLE} 3 pid=0 granted fh=h3`, `flock write ${WHOLE} 4 pid=0 waiting fh=h4`]);
  // release with lockOwner: that owner's flock lock, whatever handle took it.
  table.release({ path: F, fileHandle: 'other', lockOwner: 2 });
  t.strictSame(w.out, []);
  table.release({ path: F, fileHandle: 'h3' });
  t.strictSame(w.out, [rep(0, EX)]);
  t.strictSame(ls(table), [`flock write ${WHOLE} 4 pid=0 granted fh=h4`]);
});

t.test('§9 a grant to an owner that already holds a flock lock replaces it: no phantom lock is left', async (t) => {
  // One open file description shared by two processes: both block on flock, SH then EX.
  // (An fcntl lock of another owner keeps the file's state alive throughout.)
  const table = mk();
  t.strictSame(fcntl(table, { lockOwner: 9, lockStart: 0, lockLen: 1 }).result, 0);
  const other = 'posix write 0-0 9 pid=0 granted';
  set(table, { lockOwner: 2, lockType: EX });
  const sh = wait(table, { lockOwner: 1, lockType: SH, fileHandle: 'a' });
  const ex = wait(table, { lockOwner: 1, lockType: EX, fileHandle: 'a' });
  set(table, { lockOwner: 2, lockType: UN });
  t.strictSame([sh.out, ex.out], [[rep(0, SH)], [rep(0, EX)]]);
  t.strictSame(ls(table), [other, `flock write ${WHOLE} 1 pid=0 granted fh=a`]);
  t.strictSame(set(table, { lockOwner: 1, lockType: UN }).result, 0);
  t.strictSame(ls(table), [other]);
  // Owner 1 locks again through another handle; releasing handle 'a' (which holds nothing now)
  // must leave that lock alone.
  t.strictSame(set(table, { lockOwner: 1, lockType: EX, fileHandle: 'b' }).result, 0);
  table.release({ path: F, fileHandle: 'a' });
  t.strictSame(ls(table), [other, `flock write ${WHOLE} 1 pid=0 granted fh=b`]);
  t.strictSame(set(table, { lockOwner: 1, lockType: UN }).result, 0);
  t.strictSame(ls(table), [other]);
  t.strictSame(set(table, { lockOwner: 3, lockType: SH }).result, 0, 'no flock lock is left to conflict with');
});

t.test('§9 an owner\'s blocked LOCK_EX then LOCK_SH, both granted in one pass, leave it holding LOCK_SH only', async (t) => {
  // Two processes sharing owner 1's open file description block on LOCK_EX and LOCK_SH. When they
  // are granted in turn, the later LOCK_SH converts owner 1's lock: owner 1 holds a shared lock.
  const table = mk();
  t.strictSame(fcntl(table, { lockOwner: 9, lockStart: 0, lockLen: 1 }).result, 0);
  const other = 'posix write 0-0 9 pid=0 granted';
  set(table, { lockOwner: 2, lockType: EX });
  const ex = wait(table, { lockOwner: 1, lockType: EX });
  const sh = wait(table, { lockOwner: 1, lockType: SH });
  set(table, { lockOwner: 2, lockType: UN });
  t.strictSame([ex.out, sh.out], [[rep(0, EX)], [rep(0, SH)]]);
  t.strictSame(ls(table), [other, `flock read ${WHOLE} 1 pid=0 granted`]);
  t.strictSame(set(table, { lockOwner: 3, lockType: SH }).result, 0, 'a shared lock may join owner 1\'s shared lock');
  t.strictSame(set(table, { lockOwner: 3, lockType: UN }).result, 0);
  t.strictSame(set(table, { lockOwner: 1, lockType: UN }).result, 0);
  t.strictSame(ls(table), [other]);
  t.strictSame(set(table, { lockOwner: 4, lockType: EX }).result, 0, 'nothing is left to conflict with');
});
