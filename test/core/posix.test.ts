/**
 * fcntl classic POSIX and OFD locks on the synchronous core (SEMANTICS-POSIX.md §1-§5, §7, §8,
 * §10, §11; API.md). Every check states an exact reply or an exact listing of the file's locks.
 */
import t from 'tap';
import { inspect } from 'node:util';
import {
  LockTable,
  EAGAIN,
  EDEADLK,
  EINTR,
  EINVAL,
  ENOLCK,
  EOVERFLOW,
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

const F = '/f';
const MAX = OFFSET_MAX;

type Req = Record<string, unknown>;

function mk(opts: TableOptions = {}): LockTable {
  return new LockTable({ now: () => 0, ...opts });
}

/** A request: posix owner 1, F_WRLCK, whole file, F_SETLK on /f unless overridden. */
function rq(over: Req = {}): Req {
  return { path: F, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLK, lockOwner: 1, ...over };
}

function set(table: LockTable, over: Req): PosixReply {
  return now(table.lock(rq(over)));
}

interface Waiting {
  p: Pending;
  out: PosixReply[];
}

/** An F_SETLKW that must queue; `out` collects what `done` receives. */
function wait(table: LockTable, over: Req): Waiting {
  const out: PosixReply[] = [];
  const p = table.lock(rq({ cmd: F_SETLKW, ...over }), (r) => out.push(r));
  if (p instanceof Promise || !('waiter' in p)) throw new Error(`expected the request to queue, got ${inspect(p)}`);
  return { p, out };
}

function rep(result: number, lockType: number, start: bigint | number, len: bigint | number, pid = 0): PosixReply {
  return { result, lockType, lockStart: BigInt(start), lockLen: BigInt(len), lockPid: pid };
}

function own(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? `'${v}'` : String(v);
}

/** The file's locks as lines: kind type start-end owner pid state [fh]. */
function ls(table: LockTable, path = F): string[] {
  return table.locks(path).map(
    (e) =>
      `${e.kind} ${e.type} ${e.start}-${e.end} ${own(e.owner)} pid=${e.pid} ${e.state}` +
      (e.fileHandle === undefined ? '' : ` fh=${own(e.fileHandle)}`),
  );
}

/** An owner's canonical locks (SEMANTICS §4): [type, start, end]. */
function owned(table: LockTable, ownerKey: string, path = F): [string, bigint, bigint][] {
  return (table.fileState(path)?.ownedBy(ownerKey) ?? []).map((l) => [l.write ? 'W' : 'R', l.start, l.end]);
}

// ---- §1 decoding ------------------------------------------------------------------------------

t.test('§1 lockLen > 0 covers [lockStart, lockStart + lockLen - 1]', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockStart: 10, lockLen: 5 }), rep(0, F_WRLCK, 10, 5));
  t.strictSame(ls(table), ['posix write 10-14 1 pid=0 granted']);
  t.strictSame(set(table, { lockOwner: 2, lockStart: 9, lockLen: 2 }), rep(-EAGAIN, F_WRLCK, 9, 2));
  t.strictSame(set(table, { lockOwner: 2, lockStart: 14, lockLen: 1 }), rep(-EAGAIN, F_WRLCK, 14, 1));
  t.strictSame(set(table, { lockOwner: 2, lockStart: 15n, lockLen: 5n }), rep(0, F_WRLCK, 15, 5));
  t.strictSame(set(table, { lockOwner: 3, lockStart: 5, lockLen: 5 }), rep(0, F_WRLCK, 5, 5));
  t.strictSame(ls(table), [
    'posix write 5-9 3 pid=0 granted',
    'posix write 10-14 1 pid=0 granted',
    'posix write 15-19 2 pid=0 granted',
  ]);
});

t.test('§1 lockLen 0 runs to OFFSET_MAX (bytes appended later), not to EOF', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockStart: 100, lockLen: 0, lockPid: 11 }), rep(0, F_WRLCK, 100, 0, 11));
  t.strictSame(ls(table), [`posix write 100-${MAX} 1 pid=11 granted`]);
  t.strictSame(set(table, { lockOwner: 2, lockStart: MAX, lockLen: 1 }), rep(-EAGAIN, F_WRLCK, MAX, 1));
  t.strictSame(set(table, { lockOwner: 2, lockStart: 1n << 40n, lockLen: 1 }), rep(-EAGAIN, F_WRLCK, 1n << 40n, 1));
  t.strictSame(set(table, { lockOwner: 2, lockStart: 99, lockLen: 1 }), rep(0, F_WRLCK, 99, 1));
  t.strictSame(now(table.lock(rq({ lockOwner: 3, cmd: F_GETLK, lockStart: 0, lockLen: 0 }))), rep(0, F_WRLCK, 99, 1));
  t.strictSame(now(table.lock(rq({ lockOwner: 3, cmd: F_GETLK, lockStart: 200, lockLen: 1 }))), rep(0, F_WRLCK, 100, 0, 11));
});

t.test('§5 F_GETLK: of conflicts at the same start, the one reported does not depend on the order they were granted in', async (t) => {
  // A shared lock space rebuilds tables from records in an order of its own: every node must
  // report the lock one table would. At the lowest start: the lowest owner key, then the lowest end.
  const grants = [
    { lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 5, lockPid: 30 },
    { lockOwner: 2, lockType: F_RDLCK, lockStart: 0, lockLen: 0, lockPid: 20 },
    { lockOwner: 5, lockType: F_RDLCK, lockStart: 1, lockLen: 1, lockPid: 50 },
  ];
  for (const order of [grants, [...grants].reverse()]) {
    const table = mk();
    for (const g of order) t.equal(set(table, g).result, 0);
    t.strictSame(now(table.lock(rq({ lockOwner: 4, cmd: F_GETLK }))), rep(0, F_RDLCK, 0, 0, 20), `owner 2's lock, granted ${order === grants ? 'second' : 'first'}`);
    t.strictSame(now(table.lock(rq({ lockOwner: 2, cmd: F_GETLK }))), rep(0, F_RDLCK, 0, 5, 30), "asked by owner 2: owner 3's");
  }
});

t.test('§5 F_GETLK of a flock request: of shared flock holders, the one reported does not depend on the order they were granted in', async (t) => {
  const holders = [
    { lockOwner: 3, kind: 'flock' as const, lockType: F_RDLCK, lockPid: 30 },
    { lockOwner: 2, kind: 'flock' as const, lockType: F_RDLCK, lockPid: 20 },
  ];
  for (const order of [holders, [...holders].reverse()]) {
    const table = mk();
    for (const h of order) t.equal(set(table, h).result, 0);
    t.strictSame(now(table.lock(rq({ lockOwner: 4, kind: 'flock', cmd: F_GETLK }))), rep(0, F_RDLCK, 0, 0, 20), `owner 2's lock, granted ${order === holders ? 'second' : 'first'}`);
  }
});

t.test('§1 a negative lockLen covers [lockStart + lockLen, lockStart - 1]', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockStart: 100, lockLen: -10 }), rep(0, F_WRLCK, 100, -10));
  t.strictSame(ls(table), ['posix write 90-99 1 pid=0 granted']);
  t.strictSame(now(table.lock(rq({ lockOwner: 2, cmd: F_GETLK }))), rep(0, F_WRLCK, 90, 10));
  t.strictSame(set(table, { lockOwner: 2, lockStart: 90, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(set(table, { lockOwner: 2, lockStart: 99, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(set(table, { lockOwner: 2, lockStart: 89, lockLen: 1 }).result, 0);
  t.strictSame(set(table, { lockOwner: 2, lockStart: 100, lockLen: 1 }).result, 0);
  // The smallest legal start: lockStart + lockLen = 0.
  t.strictSame(set(table, { path: '/g', lockStart: 10n, lockLen: -10n }), rep(0, F_WRLCK, 10, -10));
  t.strictSame(ls(table, '/g'), ['posix write 0-9 1 pid=0 granted']);
});

t.test('§1 lockStart < 0 and lockStart + lockLen < 0 give -EINVAL and change nothing', async (t) => {
  const table = mk();
  set(table, { lockOwner: 9, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  const before = ls(table);
  const bad: [Req, PosixReply][] = [
    [{ lockStart: -1, lockLen: 1 }, rep(-EINVAL, F_WRLCK, -1, 1)],
    [{ lockStart: -1, lockLen: 0 }, rep(-EINVAL, F_WRLCK, -1, 0)],
    [{ lockStart: -5n, lockLen: 10n }, rep(-EINVAL, F_WRLCK, -5, 10)],
    [{ lockStart: 10, lockLen: -11 }, rep(-EINVAL, F_WRLCK, 10, -11)],
    [{ lockStart: 0, lockLen: -1 }, rep(-EINVAL, F_WRLCK, 0, -1)],
    [{ lockStart: -1, lockLen: 1, cmd: F_SETLKW }, rep(-EINVAL, F_WRLCK, -1, 1)],
    [{ lockStart: -1, lockLen: 1, cmd: F_GETLK }, rep(-EINVAL, F_WRLCK, -1, 1)],
    [{ lockStart: 5, lockLen: -6, lockType: F_UNLCK, lockOwner: 9 }, rep(-EINVAL, F_UNLCK, 5, -6)],
    [{ lockStart: -1, lockLen: 1, kind: 'ofd', lockPid: 4 }, rep(-EINVAL, F_WRLCK, -1, 1, 4)],
  ];
  for (const [over, want] of bad) t.strictSame(now(table.lock(rq(over))), want, inspect(over));
  t.strictSame(ls(table), before);
  t.strictSame(now(table.lock(rq({ path: '/new', lockStart: -1, lockLen: 1 }))).result, -EINVAL);
  t.strictSame(ls(table, '/new'), []);
  t.equal(table.fileCount, 1);
});

t.test('§1 a range ending past OFFSET_MAX, or a bigint lockStart > OFFSET_MAX, gives -EOVERFLOW', async (t) => {
  const table = mk();
  t.strictSame(set(table, { path: '/a', lockStart: MAX, lockLen: 1 }), rep(0, F_WRLCK, MAX, 1));
  t.strictSame(ls(table, '/a'), [`posix write ${MAX}-${MAX} 1 pid=0 granted`]);
  t.strictSame(set(table, { path: '/b', lockStart: 0, lockLen: MAX }), rep(0, F_WRLCK, 0, MAX));
  t.strictSame(ls(table, '/b'), [`posix write 0-${MAX - 1n} 1 pid=0 granted`]);
  const bad: [Req, PosixReply][] = [
    [{ lockStart: MAX, lockLen: 2 }, rep(-EOVERFLOW, F_WRLCK, MAX, 2)],
    [{ lockStart: 2, lockLen: MAX }, rep(-EOVERFLOW, F_WRLCK, 2, MAX)],
    [{ lockStart: MAX + 1n, lockLen: 0 }, rep(-EOVERFLOW, F_WRLCK, MAX + 1n, 0)],
    [{ lockStart: MAX + 1n, lockLen: 1 }, rep(-EOVERFLOW, F_WRLCK, MAX + 1n, 1)],
    [{ lockStart: MAX + 1n, lockLen: -2 }, rep(-EOVERFLOW, F_WRLCK, MAX + 1n, -2)],
    [{ lockStart: 1n << 64n, lockLen: -1n }, rep(-EOVERFLOW, F_WRLCK, 1n << 64n, -1)],
    [{ lockStart: MAX, lockLen: 2, cmd: F_GETLK }, rep(-EOVERFLOW, F_WRLCK, MAX, 2)],
    [{ lockStart: MAX, lockLen: 2, cmd: F_SETLKW }, rep(-EOVERFLOW, F_WRLCK, MAX, 2)],
    [{ lockStart: MAX, lockLen: 2, lockType: F_UNLCK }, rep(-EOVERFLOW, F_UNLCK, MAX, 2)],
  ];
  for (const [over, want] of bad) t.strictSame(now(table.lock(rq({ path: '/c', ...over }))), want, inspect(over));
  t.strictSame(ls(table, '/c'), []);
  t.equal(table.fileCount, 2);
});

t.test('§1 lockType and cmd other than the Linux x86-64 values give -EINVAL', async (t) => {
  const table = mk();
  set(table, { lockOwner: 2, lockStart: 0, lockLen: 10, lockType: F_RDLCK });
  const before = ls(table);
  for (const lockType of [-1, 3, 4, 8]) {
    t.strictSame(now(table.lock(rq({ lockType, lockStart: 20, lockLen: 5 }))), rep(-EINVAL, lockType, 20, 5), `lockType ${lockType}`);
    t.strictSame(now(table.lock(rq({ lockType, cmd: F_GETLK }))), rep(-EINVAL, lockType, 0, 0), `F_GETLK lockType ${lockType}`);
  }
  for (const cmd of [0, 1, 4, 8, 12, 13, 14, 36, 37, 38, -6]) {
    t.strictSame(now(table.lock(rq({ cmd, lockStart: 20, lockLen: 5 }))), rep(-EINVAL, F_WRLCK, 20, 5), `cmd ${cmd}`);
    t.strictSame(now(table.lock(rq({ cmd, lockType: F_UNLCK, lockOwner: 2 }))), rep(-EINVAL, F_UNLCK, 0, 0), `unlock cmd ${cmd}`);
  }
  t.strictSame(ls(table), before);
});

// ---- §2 owners --------------------------------------------------------------------------------

t.test('§2 posix owner 7, ofd owner 7 and flock owner 7 are three owners', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockOwner: 7, lockStart: 0, lockLen: 10, lockPid: 70 }).result, 0);
  t.strictSame(set(table, { lockOwner: 7, kind: 'ofd', lockStart: 0, lockLen: 10 }), rep(-EAGAIN, F_WRLCK, 0, 10));
  t.strictSame(set(table, { lockOwner: 7, kind: 'ofd', lockType: F_RDLCK, lockStart: 5, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(now(table.lock(rq({ lockOwner: 7, kind: 'ofd', cmd: F_GETLK }))), rep(0, F_WRLCK, 0, 10, 70));
  t.strictSame(set(table, { lockOwner: 7, kind: 'ofd', lockStart: 20, lockLen: 10, lockPid: 70 }).result, 0);
  t.strictSame(set(table, { lockOwner: 7, lockStart: 20, lockLen: 10 }).result, -EAGAIN);
  t.strictSame(now(table.lock(rq({ lockOwner: 7, cmd: F_GETLK, lockStart: 10 }))), rep(0, F_WRLCK, 20, 10, -1));
  t.strictSame(set(table, { lockOwner: 7, kind: 'flock', lockPid: 70 }).result, 0);
  t.strictSame(ls(table), [
    'posix write 0-9 7 pid=70 granted',
    'flock write 0-' + MAX + ' 7 pid=70 granted',
    'ofd write 20-29 7 pid=-1 granted',
  ]);
  // flush is per classic owner: only posix 7 goes.
  table.flush({ path: F, lockOwner: 7 });
  t.strictSame(ls(table), ['flock write 0-' + MAX + ' 7 pid=70 granted', 'ofd write 20-29 7 pid=-1 granted']);
  // release with lockOwner 7 drops the flock lock of flock owner 7, not the OFD lock of ofd owner 7.
  table.release({ path: F, fileHandle: 'unused', lockOwner: 7 });
  t.strictSame(ls(table), ['ofd write 20-29 7 pid=-1 granted']);
});

t.test('§2 5 and 5n are one owner, the string "5" another', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockOwner: 5, lockStart: 0, lockLen: 10 }).result, 0);
  t.strictSame(set(table, { lockOwner: 5n, lockStart: 5, lockLen: 10 }).result, 0);
  t.strictSame(owned(table, 'pn5'), [['W', 0n, 14n]]);
  t.equal(table.locks(F).length, 1);
  t.strictSame(now(table.lock(rq({ lockOwner: 5, cmd: F_GETLK }))).lockType, F_UNLCK);
  t.strictSame(now(table.lock(rq({ lockOwner: 5n, cmd: F_GETLK }))).lockType, F_UNLCK);
  t.strictSame(set(table, { lockOwner: '5', lockStart: 0, lockLen: 1 }), rep(-EAGAIN, F_WRLCK, 0, 1));
  t.strictSame(now(table.lock(rq({ lockOwner: '5', cmd: F_GETLK }))), rep(0, F_WRLCK, 0, 15));
  t.strictSame(set(table, { lockOwner: '5', lockStart: 15, lockLen: 1 }).result, 0);
  t.strictSame(owned(table, 'ps5'), [['W', 15n, 15n]]);
  // 5n unlocks what 5 took; '5' keeps its lock.
  t.strictSame(set(table, { lockOwner: 5n, lockType: F_UNLCK, lockStart: 0, lockLen: 10 }).result, 0);
  t.strictSame(owned(table, 'pn5'), [['W', 10n, 14n]]);
  table.flush({ path: F, lockOwner: 5n });
  t.strictSame(owned(table, 'pn5'), []);
  t.strictSame(ls(table), ["posix write 15-15 '5' pid=0 granted"]);
  // The same for OFD owners.
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 6n, lockStart: 100, lockLen: 10 }).result, 0);
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 6, lockStart: 100, lockLen: 10, lockType: F_RDLCK }).result, 0);
  t.strictSame(set(table, { kind: 'ofd', lockOwner: '6', lockStart: 100, lockLen: 10, lockType: F_RDLCK }).result, 0);
  t.strictSame(owned(table, 'on6'), [['R', 100n, 109n]]);
});

t.test('§2 a lock never conflicts with its own owner\'s locks', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockStart: 0, lockLen: 100 }).result, 0);
  t.strictSame(set(table, { lockStart: 50, lockLen: 100 }).result, 0);
  t.strictSame(set(table, { lockStart: 0, lockLen: 10, lockType: F_RDLCK }).result, 0);
  t.strictSame(now(table.lock(rq({ cmd: F_GETLK }))), { ...rep(0, F_UNLCK, 0, 0) });
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 2, lockStart: 200, lockLen: 10 }).result, 0);
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 2, lockStart: 205, lockLen: 10 }).result, 0);
  t.strictSame(ls(table), [
    'posix read 0-9 1 pid=0 granted',
    'posix write 10-149 1 pid=0 granted',
    'ofd write 200-214 2 pid=-1 granted',
  ]);
});

// ---- §3 conflicts -----------------------------------------------------------------------------

t.test('§3 overlapping locks of two owners conflict when either is F_WRLCK', async (t) => {
  const cases: [number, number, number][] = [
    [F_RDLCK, F_RDLCK, 0],
    [F_RDLCK, F_WRLCK, -EAGAIN],
    [F_WRLCK, F_RDLCK, -EAGAIN],
    [F_WRLCK, F_WRLCK, -EAGAIN],
  ];
  for (const [held, asked, want] of cases) {
    const table = mk();
    set(table, { lockOwner: 1, lockType: held, lockStart: 10, lockLen: 10 });
    t.strictSame(set(table, { lockOwner: 2, lockType: asked, lockStart: 15, lockLen: 10 }).result, want, `${held} vs ${asked}`);
  }
  const table = mk();
  set(table, { lockOwner: 1, lockStart: 10, lockLen: 10 });
  const probes: [bigint | number, bigint | number, number][] = [
    [0, 10, 0], // [0, 9] touches only
    [20, 10, 0], // [20, 29] touches only
    [0, 11, -EAGAIN], // [0, 10]
    [19, 1, -EAGAIN],
    [0, 0, -EAGAIN],
    [15, -10, -EAGAIN], // [5, 14]
    [10, -10, 0], // [0, 9]
  ];
  for (const [lockStart, lockLen, want] of probes) {
    t.strictSame(set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart, lockLen, path: F }).result, want, `[${lockStart}, ${lockLen}]`);
    set(table, { lockOwner: 2, lockType: F_UNLCK });
  }
  t.strictSame(ls(table), ['posix write 10-19 1 pid=0 granted']);
});

t.test('§3 POSIX and OFD locks share one lock space and conflict', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 10, lockPid: 100 });
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 2, lockType: F_RDLCK, lockStart: 5, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(now(table.lock(rq({ kind: 'ofd', lockOwner: 2, cmd: F_GETLK }))), rep(0, F_WRLCK, 0, 10, 100));
  set(table, { kind: 'ofd', lockOwner: 3, lockStart: 20, lockLen: 10 });
  t.strictSame(set(table, { lockOwner: 4, lockType: F_RDLCK, lockStart: 25, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 4, lockType: F_RDLCK, lockStart: 25, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 5, lockType: F_RDLCK, lockStart: 40, lockLen: 10 }).result, 0);
  t.strictSame(set(table, { lockOwner: 6, lockType: F_RDLCK, lockStart: 40, lockLen: 10 }).result, 0);
  t.strictSame(set(table, { lockOwner: 6, lockType: F_WRLCK, lockStart: 45, lockLen: 1 }).result, -EAGAIN);
  t.strictSame(ls(table), [
    'posix write 0-9 1 pid=100 granted',
    'ofd write 20-29 3 pid=-1 granted',
    'ofd read 40-49 5 pid=-1 granted',
    'posix read 40-49 6 pid=0 granted',
  ]);
});

// ---- §4 setting and unlocking -----------------------------------------------------------------

t.test('§4 same-type locks of an owner that overlap or touch merge into one', async (t) => {
  const table = mk();
  set(table, { lockStart: 0, lockLen: 10 });
  set(table, { lockStart: 10, lockLen: 10 });
  t.strictSame(owned(table, 'pn1'), [['W', 0n, 19n]]);
  set(table, { lockStart: 30, lockLen: 10 });
  set(table, { lockStart: 35, lockLen: 10 });
  t.strictSame(owned(table, 'pn1'), [['W', 0n, 19n], ['W', 30n, 44n]]);
  set(table, { lockStart: 20, lockLen: 10 }); // bridges both
  t.strictSame(owned(table, 'pn1'), [['W', 0n, 44n]]);
  set(table, { lockStart: 46, lockLen: 4 }); // gap at 45: no merge
  t.strictSame(ls(table), ['posix write 0-44 1 pid=0 granted', 'posix write 46-49 1 pid=0 granted']);
  set(table, { lockStart: 5, lockLen: 5 }); // inside: still one
  t.strictSame(owned(table, 'pn1'), [['W', 0n, 44n], ['W', 46n, 49n]]);

  set(table, { path: '/g', lockType: F_RDLCK, lockStart: 10, lockLen: 10 });
  set(table, { path: '/g', lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  t.strictSame(ls(table, '/g'), ['posix read 0-19 1 pid=0 granted']);

  // Another type next door does not merge.
  set(table, { path: '/h', lockType: F_WRLCK, lockStart: 0, lockLen: 10 });
  set(table, { path: '/h', lockType: F_RDLCK, lockStart: 10, lockLen: 10 });
  t.strictSame(ls(table, '/h'), ['posix write 0-9 1 pid=0 granted', 'posix read 10-19 1 pid=0 granted']);
  // Another owner's adjacent lock does not merge either.
  set(table, { path: '/h', lockOwner: 2, lockType: F_RDLCK, lockStart: 20, lockLen: 10 });
  t.strictSame(owned(table, 'pn1', '/h'), [['W', 0n, 9n], ['R', 10n, 19n]]);
  t.strictSame(owned(table, 'pn2', '/h'), [['R', 20n, 29n]]);
});

t.test('§4 merging at offset 0 and at OFFSET_MAX does not overflow', async (t) => {
  const table = mk();
  set(table, { lockType: F_RDLCK, lockStart: 0, lockLen: 1 });
  set(table, { lockType: F_RDLCK, lockStart: MAX, lockLen: 1 });
  t.strictSame(owned(table, 'pn1'), [['R', 0n, 0n], ['R', MAX, MAX]]);
  set(table, { lockType: F_RDLCK, lockStart: 1, lockLen: MAX - 1n });
  t.strictSame(ls(table), [`posix read 0-${MAX} 1 pid=0 granted`]);
  set(table, { lockType: F_UNLCK, lockStart: 0, lockLen: 1 });
  set(table, { lockType: F_UNLCK, lockStart: MAX, lockLen: 1 });
  t.strictSame(ls(table), [`posix read 1-${MAX - 1n} 1 pid=0 granted`]);
  set(table, { lockType: F_WRLCK, lockStart: MAX, lockLen: 1 });
  set(table, { lockType: F_WRLCK, lockStart: 0, lockLen: 1 });
  t.strictSame(owned(table, 'pn1'), [['W', 0n, 0n], ['R', 1n, MAX - 1n], ['W', MAX, MAX]]);
});

t.test('§4 another type or F_UNLCK removes, trims or splits the owner\'s locks', async (t) => {
  const table = mk();
  // trim by another type
  set(table, { path: '/trim', lockType: F_RDLCK, lockStart: 0, lockLen: 100 });
  set(table, { path: '/trim', lockType: F_WRLCK, lockStart: 50, lockLen: 100 });
  t.strictSame(owned(table, 'pn1', '/trim'), [['R', 0n, 49n], ['W', 50n, 149n]]);
  set(table, { path: '/trim', lockType: F_RDLCK, lockStart: 140, lockLen: 0 });
  t.strictSame(owned(table, 'pn1', '/trim'), [['R', 0n, 49n], ['W', 50n, 139n], ['R', 140n, MAX]]);
  // split by unlock
  set(table, { path: '/split', lockStart: 0, lockLen: 100 });
  t.strictSame(set(table, { path: '/split', lockType: F_UNLCK, lockStart: 40, lockLen: 20 }), rep(0, F_UNLCK, 40, 20));
  t.strictSame(ls(table, '/split'), ['posix write 0-39 1 pid=0 granted', 'posix write 60-99 1 pid=0 granted']);
  // trim by unlock, on each side, with a negative length too
  set(table, { path: '/t2', lockStart: 0, lockLen: 100 });
  set(table, { path: '/t2', lockType: F_UNLCK, lockStart: 90, lockLen: 0 });
  t.strictSame(owned(table, 'pn1', '/t2'), [['W', 0n, 89n]]);
  set(table, { path: '/t2', lockType: F_UNLCK, lockStart: 0, lockLen: 10 });
  t.strictSame(owned(table, 'pn1', '/t2'), [['W', 10n, 89n]]);
  set(table, { path: '/t2', lockType: F_UNLCK, lockStart: 90, lockLen: -10 });
  t.strictSame(owned(table, 'pn1', '/t2'), [['W', 10n, 79n]]);
  // removal of locks inside the range, by unlock and by a lock
  set(table, { path: '/in', lockType: F_RDLCK, lockStart: 10, lockLen: 10 });
  set(table, { path: '/in', lockType: F_WRLCK, lockStart: 30, lockLen: 10 });
  set(table, { path: '/in', lockType: F_RDLCK, lockStart: 50, lockLen: 10 });
  set(table, { path: '/in', lockType: F_WRLCK, lockStart: 0, lockLen: 45 });
  t.strictSame(owned(table, 'pn1', '/in'), [['W', 0n, 44n], ['R', 50n, 59n]]);
  set(table, { path: '/in', lockType: F_UNLCK, lockStart: 0, lockLen: 0 });
  t.strictSame(ls(table, '/in'), []);
});

t.test('§4 worked example: F_WRLCK [0, 99] then F_RDLCK [40, 59] leaves WR [0, 39], RD [40, 59], WR [60, 99]', async (t) => {
  const table = mk();
  t.strictSame(set(table, { lockType: F_WRLCK, lockStart: 0, lockLen: 100 }).result, 0);
  t.strictSame(set(table, { lockType: F_RDLCK, lockStart: 40, lockLen: 20 }).result, 0);
  t.strictSame(owned(table, 'pn1'), [['W', 0n, 39n], ['R', 40n, 59n], ['W', 60n, 99n]]);
  t.strictSame(ls(table), [
    'posix write 0-39 1 pid=0 granted',
    'posix read 40-59 1 pid=0 granted',
    'posix write 60-99 1 pid=0 granted',
  ]);
  t.strictSame(now(table.lock(rq({ lockOwner: 2, lockType: F_RDLCK, cmd: F_GETLK, lockStart: 40, lockLen: 20 }))), rep(0, F_UNLCK, 40, 20));
  t.strictSame(now(table.lock(rq({ lockOwner: 2, lockType: F_RDLCK, cmd: F_GETLK, lockStart: 0, lockLen: 100 }))), rep(0, F_WRLCK, 0, 40));
  t.strictSame(now(table.lock(rq({ lockOwner: 2, lockType: F_RDLCK, cmd: F_GETLK, lockStart: 45, lockLen: 100 }))), rep(0, F_WRLCK, 60, 40));
  t.strictSame(set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 40, lockLen: 20 }).result, 0);
  t.strictSame(set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 39, lockLen: 1 }).result, -EAGAIN);
});

t.test('§4 an upgrade or range change that conflicts (F_SETLK) changes nothing', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 100 });
  set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 50, lockLen: 1 });
  set(table, { lockOwner: 1, lockType: F_WRLCK, lockStart: 200, lockLen: 10 });
  set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 220, lockLen: 10 });
  const before = ls(table);
  t.strictSame(set(table, { lockOwner: 1, lockType: F_WRLCK, lockStart: 0, lockLen: 100 }), rep(-EAGAIN, F_WRLCK, 0, 100));
  t.strictSame(set(table, { lockOwner: 1, lockType: F_WRLCK, lockStart: 40, lockLen: 20 }).result, -EAGAIN);
  t.strictSame(set(table, { lockOwner: 1, lockType: F_WRLCK, lockStart: 200, lockLen: 30 }).result, -EAGAIN);
  t.strictSame(ls(table), before);
  t.strictSame(owned(table, 'pn1'), [['R', 0n, 99n], ['W', 200n, 209n]]);
  // The parts that do not conflict were not applied either: owner 3 can still lock [210, 219].
  t.strictSame(set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 210, lockLen: 10 }).result, 0);
});

t.test('§4 an upgrade that waits (F_SETLKW) changes nothing until it is granted', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 100 });
  set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 50, lockLen: 1 });
  const w = wait(table, { lockOwner: 1, lockType: F_WRLCK, lockStart: 0, lockLen: 100 });
  t.strictSame(ls(table), [
    'posix read 0-99 1 pid=0 granted',
    'posix read 50-50 2 pid=0 granted',
    'posix write 0-99 1 pid=0 waiting',
  ]);
  t.strictSame(set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 10 }).result, 0);
  t.strictSame(set(table, { lockOwner: 3, lockType: F_UNLCK }).result, 0);
  t.strictSame(w.out, []);
  set(table, { lockOwner: 2, lockType: F_UNLCK });
  t.strictSame(w.out, [rep(0, F_WRLCK, 0, 100)]);
  t.strictSame(ls(table), ['posix write 0-99 1 pid=0 granted']);
});

t.test('§4 unlocking where the owner holds nothing returns 0 and changes nothing', async (t) => {
  const table = mk();
  t.strictSame(set(table, { path: '/none', lockType: F_UNLCK, lockStart: 3, lockLen: 4, lockPid: 9 }), rep(0, F_UNLCK, 3, 4, 9));
  t.equal(table.fileCount, 0);
  set(table, { lockOwner: 2, lockStart: 0, lockLen: 10 });
  set(table, { kind: 'ofd', lockOwner: 3, lockStart: 20, lockLen: 10 });
  t.strictSame(set(table, { lockOwner: 1, lockType: F_UNLCK }), rep(0, F_UNLCK, 0, 0));
  t.strictSame(set(table, { kind: 'ofd', lockOwner: 2, lockType: F_UNLCK }), rep(0, F_UNLCK, 0, 0));
  t.strictSame(set(table, { lockOwner: 3, lockType: F_UNLCK }), rep(0, F_UNLCK, 0, 0));
  t.strictSame(set(table, { lockOwner: 2, lockType: F_UNLCK, lockStart: 10, lockLen: 10 }), rep(0, F_UNLCK, 10, 10));
  t.strictSame(ls(table), ['posix write 0-9 2 pid=0 granted', 'ofd write 20-29 3 pid=-1 granted']);
});

t.test('§4 removal, trim, split and downgrade each run a waiter pass', async (t) => {
  {
    const table = mk();
    set(table, { lockOwner: 1, lockStart: 0, lockLen: 100 });
    const w = wait(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
    set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 100 }); // downgrade
    t.strictSame(w.out, [rep(0, F_RDLCK, 0, 10)], 'downgrade');
    t.strictSame(ls(table), ['posix read 0-99 1 pid=0 granted', 'posix read 0-9 2 pid=0 granted']);
  }
  {
    const table = mk();
    set(table, { lockOwner: 1, lockStart: 0, lockLen: 100 });
    const w = wait(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 40, lockLen: 20 });
    set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 40, lockLen: 20 }); // split by a downgrade
    t.strictSame(w.out, [rep(0, F_RDLCK, 40, 20)], 'split downgrade');
  }
  {
    const table = mk();
    set(table, { lockOwner: 1, lockStart: 0, lockLen: 100 });
    const w = wait(table, { lockOwner: 2, lockStart: 40, lockLen: 20 });
    set(table, { lockOwner: 1, lockType: F_UNLCK, lockStart: 40, lockLen: 20 }); // split by unlock
    t.strictSame(w.out, [rep(0, F_WRLCK, 40, 20)], 'split');
    t.strictSame(ls(table), [
      'posix write 0-39 1 pid=0 granted',
      'posix write 40-59 2 pid=0 granted',
      'posix write 60-99 1 pid=0 granted',
    ]);
  }
  {
    const table = mk();
    set(table, { lockOwner: 1, lockStart: 0, lockLen: 100 });
    const w = wait(table, { lockOwner: 2, lockStart: 90, lockLen: 10 });
    set(table, { lockOwner: 1, lockType: F_UNLCK, lockStart: 50, lockLen: 0 }); // trim
    t.strictSame(w.out, [rep(0, F_WRLCK, 90, 10)], 'trim');
  }
  {
    const table = mk();
    set(table, { lockOwner: 1, lockStart: 0, lockLen: 10 });
    const w = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 10 });
    set(table, { lockOwner: 1, lockType: F_UNLCK }); // removal
    t.strictSame(w.out, [rep(0, F_WRLCK, 0, 10)], 'removal');
  }
});

// ---- §5 F_GETLK -------------------------------------------------------------------------------

t.test('§5 F_GETLK reports the conflicting lock of another owner with the lowest start', async (t) => {
  const table = mk();
  set(table, { lockOwner: 2, lockType: F_WRLCK, lockStart: 50, lockLen: 10, lockPid: 20 });
  set(table, { lockOwner: 4, lockType: F_RDLCK, lockStart: 30, lockLen: 10, lockPid: 40 });
  set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 10, lockLen: 10, lockPid: 30 });
  const get = (over: Req) => now(table.lock(rq({ lockOwner: 9, cmd: F_GETLK, ...over })));
  t.strictSame(get({ lockType: F_WRLCK, lockStart: 0, lockLen: 100 }), rep(0, F_RDLCK, 10, 10, 30));
  t.strictSame(get({ lockType: F_RDLCK, lockStart: 0, lockLen: 100 }), rep(0, F_WRLCK, 50, 10, 20));
  t.strictSame(get({ lockType: F_WRLCK, lockStart: 20, lockLen: 100 }), rep(0, F_RDLCK, 30, 10, 40));
  t.strictSame(get({ lockType: F_WRLCK, lockStart: 55, lockLen: 0 }), rep(0, F_WRLCK, 50, 10, 20));
  // Own locks are skipped: owner 3 sees the next one.
  t.strictSame(now(table.lock(rq({ lockOwner: 3, cmd: F_GETLK, lockStart: 0, lockLen: 100 }))), rep(0, F_RDLCK, 30, 10, 40));
  // A writer below the readers is now the lowest.
  set(table, { lockOwner: 5, lockType: F_WRLCK, lockStart: 5, lockLen: 1, lockPid: 50 });
  t.strictSame(get({ lockType: F_WRLCK, lockStart: 0, lockLen: 100 }), rep(0, F_WRLCK, 5, 1, 50));
  t.strictSame(get({ lockType: F_RDLCK, lockStart: 0, lockLen: 100 }), rep(0, F_WRLCK, 5, 1, 50));
});

t.test('§5 F_GETLK reports lockLen 0 for a lock running to OFFSET_MAX, and the holder pid', async (t) => {
  const table = mk();
  set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 100, lockLen: 0, lockPid: 222 });
  t.strictSame(now(table.lock(rq({ lockOwner: 3, cmd: F_GETLK, lockStart: 0, lockLen: 0 }))), rep(0, F_RDLCK, 100, 0, 222));
  set(table, { path: '/g', lockOwner: 2, lockStart: MAX - 9n, lockLen: 10, lockPid: 7 });
  t.strictSame(now(table.lock(rq({ path: '/g', lockOwner: 3, cmd: F_GETLK }))), rep(0, F_WRLCK, MAX - 9n, 0, 7));
  set(table, { path: '/h', lockOwner: 2, lockStart: 5, lockLen: MAX - 5n, lockPid: 8 });
  t.strictSame(now(table.lock(rq({ path: '/h', lockOwner: 3, cmd: F_GETLK }))), rep(0, F_WRLCK, 5, MAX - 5n, 8));
  // A lock set with a negative length is reported as start and positive length.
  set(table, { path: '/i', lockOwner: 2, lockStart: 100, lockLen: -10, lockPid: 9 });
  t.strictSame(now(table.lock(rq({ path: '/i', lockOwner: 3, cmd: F_GETLK }))), rep(0, F_WRLCK, 90, 10, 9));
});

t.test('§5 F_GETLK reports pid -1 for an OFD holder', async (t) => {
  const table = mk();
  set(table, { kind: 'ofd', lockOwner: 2, lockStart: 0, lockLen: 10, lockPid: 123 });
  t.strictSame(now(table.lock(rq({ lockOwner: 3, cmd: F_GETLK, lockPid: 5 }))), rep(0, F_WRLCK, 0, 10, -1));
  t.strictSame(now(table.lock(rq({ kind: 'ofd', lockOwner: 4, cmd: F_GETLK, lockType: F_RDLCK }))), rep(0, F_WRLCK, 0, 10, -1));
  t.strictSame(ls(table), ['ofd write 0-9 2 pid=-1 granted']);
});

t.test('§5 no conflict: F_GETLK returns F_UNLCK with the other fields as passed; own locks and waiters never show', async (t) => {
  for (const policy of ['default', 'fifo'] as const) {
    const table = mk({ policy });
    t.strictSame(now(table.lock(rq({ cmd: F_GETLK, lockStart: 5, lockLen: 7, lockPid: 77 }))), rep(0, F_UNLCK, 5, 7, 77));
    t.equal(table.fileCount, 0);
    set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
    t.strictSame(now(table.lock(rq({ cmd: F_GETLK, lockType: F_RDLCK, lockStart: 0, lockLen: 0, lockPid: 3 }))), rep(0, F_UNLCK, 0, 0, 3));
    t.strictSame(now(table.lock(rq({ cmd: F_GETLK, lockStart: 20, lockLen: -5n }))), rep(0, F_UNLCK, 20, -5));
    t.strictSame(now(table.lock(rq({ cmd: F_GETLK, lockStart: 10n, lockLen: 5 }))), rep(0, F_UNLCK, 10, 5));
    t.strictSame(now(table.lock(rq({ lockOwner: 2, cmd: F_GETLK }))), rep(0, F_UNLCK, 0, 0), `${policy}: own lock`);
    const w = wait(table, { lockOwner: 3, lockType: F_WRLCK, lockStart: 0, lockLen: 10 });
    t.strictSame(now(table.lock(rq({ lockOwner: 4, cmd: F_GETLK, lockType: F_RDLCK }))), rep(0, F_UNLCK, 0, 0), `${policy}: waiter`);
    t.strictSame(now(table.lock(rq({ lockOwner: 4, cmd: F_GETLK, lockType: F_WRLCK }))), rep(0, F_RDLCK, 0, 10));
    t.strictSame(ls(table), ['posix read 0-9 2 pid=0 granted', 'posix write 0-9 3 pid=0 waiting']);
    t.strictSame(w.out, []);
  }
});

t.test('§5 F_GETLK with F_UNLCK: -EINVAL for posix, the caller\'s own overlapping lock for ofd', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 10 });
  t.strictSame(now(table.lock(rq({ lockOwner: 1, cmd: F_GETLK, lockType: F_UNLCK, lockStart: 0, lockLen: 10 }))), rep(-EINVAL, F_UNLCK, 0, 10));
  t.strictSame(now(table.lock(rq({ lockOwner: 5, cmd: F_GETLK, lockType: F_UNLCK }))), rep(-EINVAL, F_UNLCK, 0, 0));
  set(table, { kind: 'ofd', lockOwner: 2, lockType: F_WRLCK, lockStart: 40, lockLen: 10, lockPid: 9 });
  set(table, { kind: 'ofd', lockOwner: 2, lockType: F_RDLCK, lockStart: 20, lockLen: 10, lockPid: 9 });
  const get = (over: Req) => now(table.lock(rq({ kind: 'ofd', lockOwner: 2, cmd: F_GETLK, lockType: F_UNLCK, lockPid: 6, ...over })));
  t.strictSame(get({ lockStart: 0, lockLen: 0 }), rep(0, F_RDLCK, 20, 10, -1));
  t.strictSame(get({ lockStart: 35, lockLen: 100 }), rep(0, F_WRLCK, 40, 10, -1));
  t.strictSame(get({ lockStart: 0, lockLen: 10 }), rep(0, F_UNLCK, 0, 10, 6)); // posix 1's lock is not the caller's
  t.strictSame(now(table.lock(rq({ kind: 'ofd', lockOwner: 3, cmd: F_GETLK, lockType: F_UNLCK, lockPid: 4 }))), rep(0, F_UNLCK, 0, 0, 4));
  // posix owner 2 is not ofd owner 2.
  set(table, { lockOwner: 2, lockStart: 60, lockLen: 10 });
  t.strictSame(get({ lockStart: 60, lockLen: 10 }), rep(0, F_UNLCK, 60, 10, 6));
  t.strictSame(ls(table), [
    'posix write 0-9 1 pid=0 granted',
    'ofd read 20-29 2 pid=-1 granted',
    'ofd write 40-49 2 pid=-1 granted',
    'posix write 60-69 2 pid=0 granted',
  ]);
});

t.test('§5 kind flock F_GETLK reports a conflicting flock holder (API.md)', async (t) => {
  const table = mk();
  set(table, { kind: 'flock', lockOwner: 1, lockType: F_WRLCK, lockPid: 11 });
  const get = (over: Req) => now(table.lock({ path: F, cmd: F_GETLK, kind: 'flock', ...over }));
  t.strictSame(get({ lockOwner: 2, lockType: F_RDLCK, lockPid: 2 }), rep(0, F_WRLCK, 0, 0, 11));
  t.strictSame(get({ lockOwner: 1, lockType: F_WRLCK, lockPid: 1 }), rep(0, F_UNLCK, 0, 0, 1), 'own lock');
  // fcntl F_GETLK does not see flock locks, nor flock F_GETLK fcntl locks.
  t.strictSame(now(table.lock(rq({ lockOwner: 3, cmd: F_GETLK }))), rep(0, F_UNLCK, 0, 0));
  set(table, { path: '/g', lockOwner: 3, lockStart: 0, lockLen: 0 });
  t.strictSame(get({ path: '/g', lockOwner: 2, lockType: F_WRLCK }), rep(0, F_UNLCK, 0, 0));
  set(table, { kind: 'flock', lockOwner: 1, lockType: F_UNLCK });
  set(table, { kind: 'flock', lockOwner: 4, lockType: F_RDLCK, lockPid: 44 });
  t.strictSame(get({ lockOwner: 2, lockType: F_RDLCK }), rep(0, F_UNLCK, 0, 0));
  t.strictSame(get({ lockOwner: 2, lockType: F_WRLCK }), rep(0, F_RDLCK, 0, 0, 44));
  t.strictSame(get({ lockOwner: 2, lockType: F_UNLCK }).result, -EINVAL);
});

// ---- §7 and §8 waiting ------------------------------------------------------------------------

t.test('§7 F_SETLKW queues on a conflict and done gets the reply when granted', async (t) => {
  const table = mk();
  const first: PosixReply[] = [];
  t.strictSame(now(table.lock(rq({ lockOwner: 1, cmd: F_SETLKW, lockStart: 0, lockLen: 10 }), (r) => first.push(r))), rep(0, F_WRLCK, 0, 10));
  const w = wait(table, { lockOwner: 2, lockStart: 5, lockLen: 10, lockPid: 22 });
  t.equal(w.p.path, F);
  t.strictSame(w.out, []);
  t.strictSame(ls(table), ['posix write 0-9 1 pid=0 granted', 'posix write 5-14 2 pid=22 waiting']);
  t.strictSame(table.counts(), { files: 1, locks: 1, waiters: 1 });
  set(table, { lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(w.out, [rep(0, F_WRLCK, 5, 10, 22)]);
  t.strictSame(first, [], 'done is not called for an immediate reply');
  t.strictSame(ls(table), ['posix write 5-14 2 pid=22 granted']);
  t.equal(table.cancel(w.p, 'abort'), false);
  t.strictSame(w.out, [rep(0, F_WRLCK, 5, 10, 22)]);
});

t.test('§7 default policy: a newcomer is checked against granted locks only (barging)', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  const w = wait(table, { lockOwner: 2, lockType: F_WRLCK, lockStart: 0, lockLen: 10 });
  t.strictSame(set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 10 }), rep(0, F_RDLCK, 0, 10));
  set(table, { lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(w.out, []);
  t.strictSame(ls(table), ['posix read 0-9 3 pid=0 granted', 'posix write 0-9 2 pid=0 waiting']);
  set(table, { lockOwner: 3, lockType: F_UNLCK });
  t.strictSame(w.out, [rep(0, F_WRLCK, 0, 10)]);
  t.strictSame(ls(table), ['posix write 0-9 2 pid=0 granted']);
});

t.test('§7 the waiter pass grants in arrival order, each grant seen by the later ones', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 30 });
  const order: number[] = [];
  const q = (owner: number, over: Req) => {
    const p = table.lock(rq({ lockOwner: owner, cmd: F_SETLKW, ...over }), (r) => order.push(r.result === 0 ? owner : -owner));
    t.ok(!(p instanceof Promise) && 'waiter' in p, `owner ${owner} queues`);
    return p as Pending;
  };
  q(2, { lockStart: 0, lockLen: 10 });
  q(3, { lockStart: 5, lockLen: 10 });
  q(4, { lockStart: 20, lockLen: 10 });
  q(5, { lockType: F_RDLCK, lockStart: 25, lockLen: 1 });
  q(6, { lockType: F_RDLCK, lockStart: 29, lockLen: 1 });
  set(table, { lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(order, [2, 4]);
  t.strictSame(ls(table), [
    'posix write 0-9 2 pid=0 granted',
    'posix write 20-29 4 pid=0 granted',
    'posix write 5-14 3 pid=0 waiting',
    'posix read 25-25 5 pid=0 waiting',
    'posix read 29-29 6 pid=0 waiting',
  ]);
  set(table, { lockOwner: 4, lockType: F_UNLCK });
  t.strictSame(order, [2, 4, 5, 6]);
  set(table, { lockOwner: 2, lockType: F_UNLCK });
  t.strictSame(order, [2, 4, 5, 6, 3]);
  t.strictSame(ls(table), ['posix write 5-14 3 pid=0 granted', 'posix read 25-25 5 pid=0 granted', 'posix read 29-29 6 pid=0 granted']);
});

t.test('§7 fifo policy: a new request queues behind earlier conflicting waiters of other owners', async (t) => {
  const table = mk({ policy: 'fifo' });
  set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  set(table, { lockOwner: 5, lockType: F_RDLCK, lockStart: 100, lockLen: 10 });
  const w2 = wait(table, { lockOwner: 2, lockType: F_WRLCK, lockStart: 0, lockLen: 30 });
  // F_SETLK refused behind the waiter ('fifo' refusal), though only a read lock is granted.
  t.strictSame(set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 10 }), rep(-EAGAIN, F_RDLCK, 0, 10));
  t.strictSame(set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 25, lockLen: 1 }), rep(-EAGAIN, F_RDLCK, 25, 1));
  // Not conflicting with the waiter: granted.
  t.strictSame(set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 30, lockLen: 10 }).result, 0);
  // Owners already holding a lock on the file are exempt.
  t.strictSame(set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 20, lockLen: 1 }).result, 0);
  t.strictSame(set(table, { lockOwner: 5, lockType: F_RDLCK, lockStart: 21, lockLen: 1 }).result, 0);
  t.strictSame(set(table, { lockOwner: 3, lockType: F_UNLCK }).result, 0);
  // A blocking request queues behind owner 2.
  const w6 = wait(table, { lockOwner: 6, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  t.strictSame(ls(table), [
    'posix read 0-9 1 pid=0 granted',
    'posix read 20-20 1 pid=0 granted',
    'posix read 21-21 5 pid=0 granted',
    'posix read 100-109 5 pid=0 granted',
    'posix write 0-29 2 pid=0 waiting',
    'posix read 0-9 6 pid=0 waiting',
  ]);
  set(table, { lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(w2.out, []);
  set(table, { lockOwner: 5, lockType: F_UNLCK, lockStart: 21, lockLen: 1 });
  t.strictSame(w2.out, [rep(0, F_WRLCK, 0, 30)]);
  t.strictSame(w6.out, []);
  set(table, { lockOwner: 2, lockType: F_UNLCK });
  t.strictSame(w6.out, [rep(0, F_RDLCK, 0, 10)]);
  t.strictSame(ls(table), ['posix read 0-9 6 pid=0 granted', 'posix read 100-109 5 pid=0 granted']);
});

t.test('§7 a timed-out waiter ends with -EAGAIN and nothing else changes', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 10 });
  const w2 = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 10, lockPid: 2 });
  const w3 = wait(table, { lockOwner: 3, lockStart: 0, lockLen: 10, lockPid: 3 });
  t.equal(table.cancel(w2.p, 'timeout'), true);
  t.strictSame(w2.out, [rep(-EAGAIN, F_WRLCK, 0, 10, 2)]);
  t.strictSame(w3.out, []);
  t.strictSame(ls(table), ['posix write 0-9 1 pid=0 granted', 'posix write 0-9 3 pid=3 waiting']);
  t.equal(table.cancel(w2.p, 'timeout'), false);
  set(table, { lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(w2.out, [rep(-EAGAIN, F_WRLCK, 0, 10, 2)]);
  t.strictSame(w3.out, [rep(0, F_WRLCK, 0, 10, 3)]);
  t.strictSame(ls(table), ['posix write 0-9 3 pid=3 granted']);
});

t.test('§8 an aborted waiter ends with -EINTR and nothing else changes; stop ends every waiter with -EINTR', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 10 });
  const w2 = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 10 });
  const w3 = wait(table, { lockOwner: 3, kind: 'ofd', lockStart: 5, lockLen: 10 });
  t.equal(table.cancel(w2.p, 'abort'), true);
  t.strictSame(w2.out, [rep(-EINTR, F_WRLCK, 0, 10)]);
  t.strictSame(w3.out, []);
  t.strictSame(ls(table), ['posix write 0-9 1 pid=0 granted', 'ofd write 5-14 3 pid=-1 waiting']);
  t.equal(table.cancel(w3.p, 'stop'), true);
  t.strictSame(w3.out, [rep(-EINTR, F_WRLCK, 5, 10)]);
  t.strictSame(ls(table), ['posix write 0-9 1 pid=0 granted']);
});

t.test('§8 cancelAll("stop") ends every waiter of every file with -EINTR', async (t) => {
  const table = mk();
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 10 });
  set(table, { path: '/g', lockOwner: 1, lockStart: 0, lockLen: 10 });
  const a = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 10 });
  const b = wait(table, { path: '/g', lockOwner: 3, kind: 'ofd', lockType: F_RDLCK, lockStart: 0, lockLen: 1 });
  table.cancelAll('stop');
  t.strictSame(a.out, [rep(-EINTR, F_WRLCK, 0, 10)]);
  t.strictSame(b.out, [rep(-EINTR, F_RDLCK, 0, 1)]);
  t.strictSame(ls(table), ['posix write 0-9 1 pid=0 granted']);
  t.strictSame(ls(table, '/g'), ['posix write 0-9 1 pid=0 granted']);
});

t.test('§7 a cancelled waiter runs a waiter pass (fifo: the one behind it goes)', async (t) => {
  for (const reason of ['abort', 'timeout'] as const) {
    const table = mk({ policy: 'fifo' });
    set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
    const w2 = wait(table, { lockOwner: 2, lockType: F_WRLCK, lockStart: 0, lockLen: 10 });
    const w3 = wait(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
    t.equal(table.cancel(w2.p, reason), true);
    t.strictSame(w2.out, [rep(reason === 'abort' ? -EINTR : -EAGAIN, F_WRLCK, 0, 10)]);
    t.strictSame(w3.out, [rep(0, F_RDLCK, 0, 10)], reason);
    t.strictSame(ls(table), ['posix read 0-9 1 pid=0 granted', 'posix read 0-9 3 pid=0 granted']);
  }
});

// ---- §10 flush and release --------------------------------------------------------------------

t.test('§10 flush drops every classic POSIX lock of lockOwner on that path, and nothing else', async (t) => {
  const table = mk();
  set(table, { lockOwner: 7, lockStart: 0, lockLen: 10 });
  set(table, { lockOwner: 7, lockType: F_RDLCK, lockStart: 20, lockLen: 10, fileHandle: 'h2' });
  set(table, { lockOwner: 7, kind: 'ofd', lockStart: 40, lockLen: 10 });
  set(table, { lockOwner: 7, kind: 'flock' });
  set(table, { lockOwner: 8, lockStart: 60, lockLen: 10 });
  set(table, { path: '/g', lockOwner: 7, lockStart: 0, lockLen: 10 });
  t.equal(table.flush({ path: F, lockOwner: 7n }), undefined);
  t.strictSame(ls(table), [`flock write 0-${MAX} 7 pid=0 granted`, 'ofd write 40-49 7 pid=-1 granted', 'posix write 60-69 8 pid=0 granted']);
  t.strictSame(ls(table, '/g'), ['posix write 0-9 7 pid=0 granted']);
  t.equal(table.flush({ path: '/nothing', lockOwner: 7 }), undefined);
  table.flush({ path: F, lockOwner: 7 });
  t.strictSame(ls(table), [`flock write 0-${MAX} 7 pid=0 granted`, 'ofd write 40-49 7 pid=-1 granted', 'posix write 60-69 8 pid=0 granted']);
});

t.test('§10 flush leaves the owner\'s waiters waiting, then runs a waiter pass', async (t) => {
  const table = mk();
  set(table, { lockOwner: 7, lockStart: 0, lockLen: 10 });
  set(table, { lockOwner: 8, lockStart: 100, lockLen: 10 });
  const own7 = wait(table, { lockOwner: 7, lockStart: 100, lockLen: 10 });
  const w9 = wait(table, { lockOwner: 9, lockStart: 0, lockLen: 10 });
  table.flush({ path: F, lockOwner: 7 });
  t.strictSame(own7.out, []);
  t.strictSame(w9.out, [rep(0, F_WRLCK, 0, 10)]);
  t.strictSame(ls(table), ['posix write 0-9 9 pid=0 granted', 'posix write 100-109 8 pid=0 granted', 'posix write 100-109 7 pid=0 waiting']);
  set(table, { lockOwner: 8, lockType: F_UNLCK });
  t.strictSame(own7.out, [rep(0, F_WRLCK, 100, 10)]);
  t.strictSame(ls(table), ['posix write 0-9 9 pid=0 granted', 'posix write 100-109 7 pid=0 granted']);
});

t.test('§10 release drops every lock taken through fileHandle, plus the flock lock of lockOwner', async (t) => {
  const table = mk();
  set(table, { kind: 'ofd', lockOwner: 3, lockStart: 0, lockLen: 10, fileHandle: 'h1' });
  set(table, { kind: 'ofd', lockOwner: 3, lockStart: 20, lockLen: 10, fileHandle: 'h2' });
  set(table, { kind: 'posix', lockOwner: 4, lockStart: 40, lockLen: 10, fileHandle: 'h1' });
  set(table, { kind: 'flock', lockOwner: 3, lockType: F_RDLCK, fileHandle: 'h1' });
  set(table, { kind: 'flock', lockOwner: 5, lockType: F_RDLCK });
  set(table, { kind: 'flock', lockOwner: 6, lockType: F_RDLCK, fileHandle: 'h6' });
  set(table, { path: '/g', kind: 'ofd', lockOwner: 3, lockStart: 0, lockLen: 10, fileHandle: 'h1' });
  t.equal(table.release({ path: F, fileHandle: 'h1' }), undefined);
  t.strictSame(ls(table), [
    `flock read 0-${MAX} 5 pid=0 granted`,
    `flock read 0-${MAX} 6 pid=0 granted fh='h6'`,
    "ofd write 20-29 3 pid=-1 granted fh='h2'",
  ]);
  t.strictSame(ls(table, '/g'), ["ofd write 0-9 3 pid=-1 granted fh='h1'"]);
  // With lockOwner, that owner's flock lock goes too, whatever handle took it.
  table.release({ path: F, fileHandle: 'h9', lockOwner: 5n });
  t.strictSame(ls(table), [`flock read 0-${MAX} 6 pid=0 granted fh='h6'`, "ofd write 20-29 3 pid=-1 granted fh='h2'"]);
  table.release({ path: F, fileHandle: 'h2', lockOwner: 6 });
  t.strictSame(ls(table), []);
  t.equal(table.release({ path: '/nothing', fileHandle: 'h1' }), undefined);
});

t.test('§10 release ends waiters through that handle with -EINTR; others wait; a pass follows', async (t) => {
  const table = mk();
  set(table, { kind: 'ofd', lockOwner: 3, lockStart: 0, lockLen: 10, fileHandle: 1 });
  set(table, { lockOwner: 9, lockStart: 100, lockLen: 10 });
  const viaH1 = wait(table, { kind: 'ofd', lockOwner: 3, lockStart: 100, lockLen: 10, fileHandle: 1n });
  const viaH2 = wait(table, { kind: 'ofd', lockOwner: 4, lockStart: 100, lockLen: 10, fileHandle: 2 });
  const blocked = wait(table, { lockOwner: 5, lockStart: 0, lockLen: 10 });
  table.release({ path: F, fileHandle: 1 });
  t.strictSame(viaH1.out, [rep(-EINTR, F_WRLCK, 100, 10)]);
  t.strictSame(viaH2.out, []);
  t.strictSame(blocked.out, [rep(0, F_WRLCK, 0, 10)]);
  t.strictSame(ls(table), ['posix write 0-9 5 pid=0 granted', 'posix write 100-109 9 pid=0 granted', 'ofd write 100-109 4 pid=-1 waiting fh=2']);
});

// ---- §11 error codes --------------------------------------------------------------------------

t.test('§11 result codes: values, and each arises where the table says', async (t) => {
  t.strictSame({ EINTR, EAGAIN, EINVAL, EDEADLK, ENOLCK, EOVERFLOW }, { EINTR: 4, EAGAIN: 11, EINVAL: 22, EDEADLK: 35, ENOLCK: 37, EOVERFLOW: 75 });
  t.strictSame({ F_RDLCK, F_WRLCK, F_UNLCK, F_GETLK, F_SETLK, F_SETLKW }, { F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2, F_GETLK: 5, F_SETLK: 6, F_SETLKW: 7 });
  t.equal(OFFSET_MAX, 2n ** 63n - 1n);
  const table = mk();
  t.equal(set(table, { lockOwner: 1, lockStart: 0, lockLen: 10 }).result, 0, 'granted');
  t.equal(set(table, { lockOwner: 2, lockType: F_UNLCK }).result, 0, 'unlock of nothing');
  t.equal(now(table.lock(rq({ lockOwner: 2, cmd: F_GETLK }))).result, 0, 'F_GETLK answered');
  t.equal(set(table, { lockOwner: 2, lockStart: 0, lockLen: 1 }).result, -EAGAIN, 'F_SETLK conflict, not -EACCES');
  const w = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 1 });
  set(table, { path: '/g', lockOwner: 2, lockStart: 0, lockLen: 1 });
  t.strictSame(now(table.lock(rq({ path: '/g', lockOwner: 1, cmd: F_SETLKW, lockStart: 0, lockLen: 1 }))), rep(-EDEADLK, F_WRLCK, 0, 1), 'cycle');
  t.equal(table.cancel(w.p, 'abort'), true);
  t.strictSame(w.out, [rep(-EINTR, F_WRLCK, 0, 1)], 'aborted waiter');
  const w2 = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 1 });
  t.equal(table.cancel(w2.p, 'timeout'), true);
  t.strictSame(w2.out, [rep(-EAGAIN, F_WRLCK, 0, 1)], 'timeout');
  t.equal(set(table, { lockOwner: 2, lockStart: -1, lockLen: 1 }).result, -EINVAL, 'lockStart < 0');
  t.equal(set(table, { lockOwner: 2, lockStart: 1, lockLen: -2 }).result, -EINVAL, 'lockStart + lockLen < 0');
  t.equal(set(table, { lockOwner: 2, lockType: 7 }).result, -EINVAL, 'bad lockType');
  t.equal(set(table, { lockOwner: 2, cmd: 9 }).result, -EINVAL, 'bad cmd');
  t.equal(now(table.lock(rq({ lockOwner: 2, cmd: F_GETLK, lockType: F_UNLCK }))).result, -EINVAL, 'F_GETLK with F_UNLCK');
  t.equal(set(table, { lockOwner: 2, lockStart: MAX, lockLen: 2 }).result, -EOVERFLOW, 'past OFFSET_MAX');
  const fifo = mk({ policy: 'fifo' });
  set(fifo, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 1 });
  wait(fifo, { lockOwner: 2, lockStart: 0, lockLen: 1 });
  t.equal(set(fifo, { lockOwner: 3, lockType: F_RDLCK, lockStart: 0, lockLen: 1 }).result, -EAGAIN, 'fifo refusal');
  set(fifo, { path: '/fl', kind: 'flock', lockOwner: 1 });
  t.equal(set(fifo, { path: '/fl', kind: 'flock', lockOwner: 2, lockType: F_RDLCK }).result, -EAGAIN, 'flock LOCK_NB conflict');
  t.strictSame(ls(table), ['posix write 0-9 1 pid=0 granted']);
  t.strictSame(ls(table, '/g'), ['posix write 0-0 2 pid=0 granted']);
});

// ---- hooks ------------------------------------------------------------------------------------

t.test('API.md hooks (onLock): approve returning a negative errno vetoes a set; nothing changes', async (t) => {
  const seen: [string, Record<string, unknown>][] = [];
  let veto = 0;
  const table = mk({
    hooks: {
      approve: (family, e) => {
        seen.push([family, { ...e }]);
        return veto;
      },
    },
  });
  t.strictSame(set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 100, lockPid: 10 }).result, 0);
  t.equal(seen.length, 1);
  const { fence, ...event } = seen[0]![1];
  t.strictSame([seen[0]![0], event], [
    'posix',
    { path: F, lockType: F_RDLCK, lockStart: 0n, lockLen: 100n, cmd: F_SETLK, lockOwner: 1, lockPid: 10, kind: 'posix' },
  ]);
  t.ok(Number.isSafeInteger(fence), 'and the fence its grant will hold');
  veto = -ENOLCK;
  t.strictSame(set(table, { lockOwner: 1, lockType: F_WRLCK, lockStart: 40, lockLen: 20 }), rep(-ENOLCK, F_WRLCK, 40, 20));
  t.strictSame(set(table, { lockOwner: 2, lockType: F_RDLCK, lockStart: 200, lockLen: 1 }), rep(-ENOLCK, F_RDLCK, 200, 1));
  t.strictSame(ls(table), ['posix read 0-99 1 pid=10 granted']);
  // No hook call for a request that conflicts (step 1 comes first).
  const n = seen.length;
  t.equal(set(table, { lockOwner: 3, lockType: F_WRLCK, lockStart: 0, lockLen: 1 }).result, -EAGAIN);
  t.equal(seen.length, n);
  // A waiter vetoed in the waiter pass ends with the hook's code.
  const w = wait(table, { lockOwner: 3, lockType: F_WRLCK, lockStart: 0, lockLen: 1 });
  veto = -EAGAIN - 100;
  set(table, { lockOwner: 1, lockType: F_UNLCK });
  t.strictSame(w.out, [rep(-EAGAIN - 100, F_WRLCK, 0, 1)]);
  t.strictSame(ls(table), []);
});

t.test('API.md hooks: an approve that answers with a Promise makes lock() return a Promise', async (t) => {
  let verdict = 0;
  const table = mk({ hooks: { approve: async () => verdict } });
  const p = table.lock(rq({ lockOwner: 1, lockStart: 0, lockLen: 10 }));
  t.ok(p instanceof Promise);
  t.strictSame(await p, rep(0, F_WRLCK, 0, 10));
  verdict = -ENOLCK;
  t.strictSame(await table.lock(rq({ lockOwner: 1, lockStart: 20, lockLen: 10 })), rep(-ENOLCK, F_WRLCK, 20, 10));
  t.strictSame(ls(table), ['posix write 0-9 1 pid=0 granted']);
});

t.test('API.md hooks: a file whose approval is pending survives sweeps; its lock is granted in the live table', async (t) => {
  // The approval of a lock on an idle file takes a while; meanwhile other files are locked and
  // unlocked often enough that the table sweeps its idle files. The grant must land in the file the
  // table still serves: listed, and conflicting with the next owner.
  let approveSlow: (code: number) => void = () => {};
  const table = mk({
    hooks: { approve: (_family, e) => (e.path === '/slow' ? new Promise<number>((r) => (approveSlow = r)) : 0) },
  });
  const p = table.lock(rq({ path: '/slow', lockOwner: 1, lockStart: 0, lockLen: 10 }));
  t.ok(p instanceof Promise);
  for (let i = 0; i < 3000; i++) {
    set(table, { path: `/other${i % 50}`, lockOwner: 2 });
    set(table, { path: `/other${i % 50}`, lockOwner: 2, lockType: F_UNLCK });
  }
  approveSlow(0);
  t.strictSame(await p, rep(0, F_WRLCK, 0, 10));
  t.strictSame(ls(table, '/slow'), ['posix write 0-9 1 pid=0 granted'], 'the granted lock is listed');
  const other = table.lock(rq({ path: '/slow', lockOwner: 3, lockStart: 5, lockLen: 1 })) as PosixReply;
  t.equal(other.result, -EAGAIN, 'and blocks a conflicting owner');
});

t.test('a waiter keeps the id of the request that queued it (the host names its edges by it)', async (t) => {
  const edges: [unknown, string][] = [];
  const graph = {
    closesCycle: () => false,
    setEdges: (w: unknown, owner: string) => edges.push([(w as { requestId?: number }).requestId, owner]),
    removeEdges: () => {},
  };
  const table = mk({ graph });
  table.requestId = 1;
  set(table, { lockOwner: 1, lockType: F_RDLCK, lockStart: 0, lockLen: 10 });
  table.requestId = 2;
  const w = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 10 });
  t.equal(w.p.waiter.requestId, 2);
  // Another request, run under another id, adds a blocker to the waiter: its edges change then.
  table.requestId = 3;
  t.equal(set(table, { lockOwner: 3, lockType: F_RDLCK, lockStart: 5, lockLen: 2 }).result, 0);
  t.same(edges, [
    [2, 'pn2'],
    [2, 'pn2'],
  ], 'both edge changes name request 2, the second made while request 3 ran');
});

t.test('API.md hooks: released fires for unlock, for each lock flush drops and each lock release drops', async (t) => {
  const seen: [string, Record<string, unknown>][] = [];
  const pick = (e: Readonly<Record<string, unknown>>) => ({
    path: e.path,
    lockType: e.lockType,
    lockStart: e.lockStart,
    lockLen: e.lockLen,
    lockOwner: e.lockOwner,
    kind: e.kind,
  });
  const table = mk({ hooks: { released: (family, e) => seen.push([family, pick(e)]) } });
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 100 });
  set(table, { lockOwner: 1, lockType: F_UNLCK, lockStart: 40, lockLen: 20 });
  t.strictSame(seen, [['posix', { path: F, lockType: F_UNLCK, lockStart: 40n, lockLen: 20n, lockOwner: 1, kind: 'posix' }]]);
  seen.length = 0;
  table.flush({ path: F, lockOwner: 1 });
  t.strictSame(seen, [
    ['posix', { path: F, lockType: F_UNLCK, lockStart: 0n, lockLen: 40n, lockOwner: 1, kind: 'posix' }],
    ['posix', { path: F, lockType: F_UNLCK, lockStart: 60n, lockLen: 40n, lockOwner: 1, kind: 'posix' }],
  ]);
  seen.length = 0;
  set(table, { kind: 'ofd', lockOwner: 2, lockStart: 10, lockLen: 0, fileHandle: 'h' });
  set(table, { kind: 'flock', lockOwner: 2, fileHandle: 'h' });
  table.release({ path: F, fileHandle: 'h' });
  t.strictSame(seen, [
    ['posix', { path: F, lockType: F_UNLCK, lockStart: 10n, lockLen: 0n, lockOwner: 2, kind: 'ofd' }],
    ['posix', { path: F, lockType: F_UNLCK, lockStart: 0n, lockLen: 0n, lockOwner: 2, kind: 'flock' }],
  ]);
  t.strictSame(ls(table), []);
});

t.test('API.md hooks: released treats an unlock of nothing the same whether or not the path has other locks', async (t) => {
  let n = 0;
  const table = mk({ hooks: { released: () => void n++ } });
  set(table, { path: '/live', lockOwner: 2, lockStart: 0, lockLen: 10 });
  set(table, { path: '/live', lockOwner: 1, lockType: F_UNLCK, lockStart: 100, lockLen: 10 });
  const onLive = n;
  n = 0;
  set(table, { path: '/idle', lockOwner: 1, lockType: F_UNLCK, lockStart: 100, lockLen: 10 });
  t.equal(n, onLive, 'same number of released events for the same no-op unlock');
});

t.test('API.md hooks: a waiter cancelled while the approval of its grant is pending is not granted when the approval comes', async (t) => {
  // The table's own callers hold a file while its approval is pending (the host's mailbox), but the
  // core must not rely on it: a waiter ended meanwhile (a stop's cancel) stays ended, holds nothing.
  let approveLate: (code: number) => void = () => {};
  const table = mk({ hooks: { approve: (_family, e) => (e.lockOwner === 2n || e.lockOwner === 2 ? new Promise<number>((r) => (approveLate = r)) : 0) } });
  set(table, { lockOwner: 1, lockStart: 0, lockLen: 10 });
  const w = wait(table, { lockOwner: 2, lockStart: 0, lockLen: 10 });
  const unlocked = table.lock(rq({ lockOwner: 1, lockType: F_UNLCK, lockStart: 0, lockLen: 10 }));
  t.ok(unlocked instanceof Promise, "the unlock's wake-up pass waits for the waiter's approval");
  t.equal(await table.cancel(w.p, 'stop'), true, 'the waiter ends while its approval is pending');
  approveLate(0);
  await unlocked;
  t.strictSame(w.out, [rep(-EINTR, F_WRLCK, 0, 10)], 'the waiter is answered once, ended');
  t.strictSame(ls(table), [], 'and holds nothing');
  t.equal(set(table, { lockOwner: 3, lockStart: 0, lockLen: 10 }).result, 0, 'another owner takes the bytes');
});
