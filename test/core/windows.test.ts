/**
 * Windows byte-range locks on the synchronous core: lockFile, unlockFile, closeHandle, checkIo,
 * cancel and the locks() listing (SEMANTICS-WINDOWS.md §1-§10; the Windows parts of API.md).
 *
 * One t.test per rule, named after it. Every check states an exact result code or an exact
 * listing of the file's locks. The listing is compared as a set of lines (API.md fixes no order).
 */
import t from 'tap';
import { inspect } from 'node:util';
import {
  LockTable,
  EAGAIN,
  ERROR_INVALID_LOCK_RANGE,
  ERROR_INVALID_PARAMETER,
  ERROR_LOCK_VIOLATION,
  ERROR_NOT_LOCKED,
  ERROR_OPERATION_ABORTED,
  ERROR_SUCCESS,
  F_RDLCK,
  F_SETLK,
  F_SETLKW,
  F_UNLCK,
  F_WRLCK,
  type Family,
  type Identity,
  type Pending,
  type Policy,
} from '../../src/index.js';

// ---- constants --------------------------------------------------------------------------------

const F = 'C:\\share\\data.bin';
const G = 'C:\\share\\other.bin';
/** 2^64 - 1: the last Windows byte, and -1 read as unsigned. */
const U64 = (1n << 64n) - 1n;
/** 2^63. */
const P63 = 1n << 63n;

const OK = ERROR_SUCCESS;
const VIOLATION = ERROR_LOCK_VIOLATION; // 33
const INVALID = ERROR_INVALID_PARAMETER; // 87
const NOT_LOCKED = ERROR_NOT_LOCKED; // 158
const BAD_RANGE = ERROR_INVALID_LOCK_RANGE; // 307
const ABORTED = ERROR_OPERATION_ABORTED; // 995

// ---- requests ---------------------------------------------------------------------------------

type Offset = bigint | number;

/** Who makes a call, and on which file: handle 1, processId and key left out, file F by default. */
interface Who {
  fileName?: string;
  handle?: Identity;
  processId?: Identity;
  key?: Identity;
}

type Req = Record<string, unknown>;

function who(w: Who): Req {
  return { fileName: F, handle: 1, ...w };
}

/** A fail-immediately LockFileEx request. */
function shared(byteOffset: Offset, length: Offset, w: Who = {}): Req {
  return { ...who(w), byteOffset, length, exclusiveLock: false, failImmediately: true };
}

function exclusive(byteOffset: Offset, length: Offset, w: Who = {}): Req {
  return { ...who(w), byteOffset, length, exclusiveLock: true, failImmediately: true };
}

function unlockReq(byteOffset: Offset, length: Offset, w: Who = {}): Req {
  return { ...who(w), byteOffset, length };
}

function ioReq(write: boolean, byteOffset: Offset, length: Offset, w: Who = {}): Req {
  return { ...who(w), byteOffset, length, write };
}

function closeReq(handle: Identity, fileName = F): Req {
  return { fileName, handle };
}

/** What a call answered at once: a code, or 'queued' / 'promise' / 'nothing', so a mismatch reads well. */
function now(x: unknown): number | string {
  if (x instanceof Promise) return 'promise';
  if (x === undefined) return 'nothing';
  if (typeof x === 'object' && x !== null && 'waiter' in x) return 'queued';
  return x as number;
}

function lock(tbl: LockTable, req: Req): number | string {
  return now(tbl.lockFile(req));
}

function unlock(tbl: LockTable, byteOffset: Offset, length: Offset, w: Who = {}): number | string {
  return now(tbl.unlockFile(unlockReq(byteOffset, length, w)));
}

function io(tbl: LockTable, write: boolean, byteOffset: Offset, length: Offset, w: Who = {}): number | string {
  return now(tbl.checkIo(ioReq(write, byteOffset, length, w)));
}

interface Waiting {
  readonly pending: Pending;
  /** What `done` received: one code once the wait ends. */
  readonly results: number[];
}

/**
 * Sends `req` with failImmediately: false and insists that it queues. With `order`, the end of
 * the wait is also logged there as "name:code", so tests can check the order of grants.
 */
function wait(tbl: LockTable, req: Req, order?: string[], name?: string): Waiting {
  const results: number[] = [];
  const p = tbl.lockFile({ ...req, failImmediately: false }, (code) => {
    results.push(code);
    if (order !== undefined && name !== undefined) order.push(`${name}:${code}`);
  });
  if (p instanceof Promise || typeof p !== 'object' || !('waiter' in p)) {
    throw new Error(`expected the request to queue, got ${inspect(p)}`);
  }
  if (p.path !== req.fileName) throw new Error(`Pending.path is ${p.path}, expected ${String(req.fileName)}`);
  return { pending: p, results };
}

function table(policy: Policy = 'default'): LockTable {
  return new LockTable({ policy, now: () => 0 });
}

// ---- listing ----------------------------------------------------------------------------------

function own(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? `'${v}'` : String(v);
}

/**
 * A file's locks as sorted lines "[kind ]type start-end owner pid=N state": the kind is left out
 * for Windows locks; a path other than the one asked for is appended.
 */
function ls(tbl: LockTable, path = F): string[] {
  return tbl
    .locks(path)
    .map(
      (e) =>
        `${e.kind === 'windows' ? '' : `${e.kind} `}${e.type} ${e.start}-${e.end} ${own(e.owner)} pid=${e.pid} ${e.state}` +
        (e.path === path ? '' : ` path=${e.path}`),
    )
    .sort();
}

function lines(...l: string[]): string[] {
  return [...l].sort();
}

// ---- hooks ------------------------------------------------------------------------------------

type Event = Readonly<Record<string, unknown>>;

interface Recorded {
  table: LockTable;
  /** "approve h=1 0+10 x" / "released h=1 0+10": every hook call in order. */
  log: string[];
  approved: Event[];
  released: Event[];
}

function describe(family: Family, e: Event): string {
  if (family === 'posix') return `posix owner=${own(e.lockOwner)} ${String(e.lockStart)}+${String(e.lockLen)}`;
  const extra = e.processId === 0 && e.key === 0 ? '' : ` pid=${own(e.processId)} key=${own(e.key)}`;
  return `h=${own(e.handle)} ${String(e.byteOffset)}+${String(e.length)}${extra}`;
}

/** A table whose hooks record every call; `verdict` answers approve (0 by default). */
function recorded(verdict: (e: Event) => number | Promise<number> = () => 0, policy: Policy = 'default'): Recorded {
  const log: string[] = [];
  const approved: Event[] = [];
  const released: Event[] = [];
  const tbl = new LockTable({
    policy,
    now: () => 0,
    hooks: {
      approve: (family, e) => {
        log.push(`approve ${describe(family, e)}${e.exclusiveLock === true ? ' x' : ''}`);
        approved.push(e);
        return verdict(e);
      },
      released: (family, e) => {
        log.push(`released ${describe(family, e)}`);
        released.push(e);
      },
    },
  });
  return { table: tbl, log, approved, released };
}

function pick(e: Event, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = e[k];
  return out;
}

// ---- POSIX requests for the mixed-file rules --------------------------------------------------

function posix(tbl: LockTable, lockType: number, lockStart: Offset, lockLen: Offset, lockOwner: Identity, kind = 'posix'): number | string {
  const r = tbl.lock({ path: F, lockType, lockStart, lockLen, cmd: F_SETLK, lockOwner, kind });
  if (r instanceof Promise) return 'promise';
  return 'waiter' in r ? 'queued' : r.result;
}

// =================================================================================================
// §1 Owner
// =================================================================================================

t.test('§1 the owner is (handle, processId, key); processId and key default to 0 and compare by value', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  // Naming the defaults names the same owner: a shared lock stacks on its own exclusive one.
  t.equal(lock(tbl, shared(0, 10, { processId: 0, key: 0 })), OK);
  t.equal(lock(tbl, shared(0, 10, { processId: 0n, key: 0n })), OK);
  // Another processId or another key is another owner: its shared request meets an exclusive lock.
  t.equal(lock(tbl, shared(0, 10, { processId: 1 })), VIOLATION);
  t.equal(lock(tbl, shared(0, 10, { key: 1 })), VIOLATION);
  t.strictSame(ls(tbl), lines('exclusive 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted'));
  t.equal(unlock(tbl, 0, 10, { processId: 0n, key: 0 }), OK);
  t.strictSame(ls(tbl), lines('shared 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted'));
});

t.test('§1 a second handle of the same process is another owner until the first unlocks (LOCKTEST2, LOCKTEST5)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { handle: 1, processId: 100 })), OK);
  t.equal(lock(tbl, shared(0, 10, { handle: 2, processId: 100 })), VIOLATION);
  t.equal(lock(tbl, exclusive(9, 1, { handle: 2, processId: 100 })), VIOLATION);
  t.equal(unlock(tbl, 0, 10, { handle: 2, processId: 100 }), NOT_LOCKED);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=100 granted']);
  t.equal(unlock(tbl, 0, 10, { handle: 1, processId: 100 }), OK);
  t.equal(lock(tbl, exclusive(0, 10, { handle: 2, processId: 100 })), OK);
  t.strictSame(ls(tbl), ['exclusive 0-9 2 pid=100 granted']);
});

t.test('§1 another process using an inherited handle is another owner: 158 on unlock, conflict on lock (LOCKTEST4)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { handle: 1, processId: 100 })), OK);
  t.equal(unlock(tbl, 0, 10, { handle: 1, processId: 200 }), NOT_LOCKED);
  t.equal(lock(tbl, exclusive(0, 10, { handle: 1, processId: 200 })), VIOLATION);
  t.equal(lock(tbl, shared(5, 1, { handle: 1, processId: 200 })), VIOLATION);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=100 granted']);
  t.equal(unlock(tbl, 0, 10, { handle: 1, processId: 100 }), OK);
  t.strictSame(ls(tbl), []);
});

t.test('§1 the key is part of the owner: only the key that locked can unlock', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { key: 7 })), OK);
  t.equal(unlock(tbl, 0, 10), NOT_LOCKED);
  t.equal(unlock(tbl, 0, 10, { key: 8 }), NOT_LOCKED);
  t.equal(unlock(tbl, 0, 10, { key: '7' }), NOT_LOCKED);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=0 granted']);
  t.equal(unlock(tbl, 0, 10, { key: 7n }), OK);
  t.strictSame(ls(tbl), []);
});

t.test('API identities: handle 5 and 5n are one identity, the string "5" another', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { handle: 5 })), OK);
  t.equal(lock(tbl, shared(0, 10, { handle: 5n })), OK); // stacks on its own exclusive lock
  t.equal(lock(tbl, shared(0, 10, { handle: '5' })), VIOLATION);
  t.equal(unlock(tbl, 0, 10, { handle: '5' }), NOT_LOCKED);
  t.equal(io(tbl, false, 0, 10, { handle: 5n }), OK);
  t.equal(io(tbl, false, 0, 10, { handle: '5' }), VIOLATION);
  t.equal(unlock(tbl, 0, 10, { handle: 5n }), OK); // the exclusive record goes first (§6)
  t.strictSame(ls(tbl), ['shared 0-9 5n pid=0 granted']);
  t.equal(now(tbl.closeHandle(closeReq('5'))), 'nothing');
  t.strictSame(ls(tbl), ['shared 0-9 5n pid=0 granted']);
  t.equal(now(tbl.closeHandle(closeReq(5))), 'nothing');
  t.strictSame(ls(tbl), []);
});

t.test('API identities: processId and key compare by value too (7 and 7n), strings are other identities', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { processId: 7, key: 3 })), OK);
  t.equal(lock(tbl, shared(0, 10, { processId: 7n, key: 3n })), OK);
  t.equal(lock(tbl, shared(0, 10, { processId: '7', key: 3 })), VIOLATION);
  t.equal(lock(tbl, shared(0, 10, { processId: 7, key: '3' })), VIOLATION);
  t.equal(unlock(tbl, 0, 10, { processId: '7', key: 3 }), NOT_LOCKED);
  t.equal(unlock(tbl, 0, 10, { processId: 7n, key: 3 }), OK);
  t.equal(unlock(tbl, 0, 10, { processId: 7, key: 3n }), OK);
  t.strictSame(ls(tbl), []);
});

t.test('§1 owners differing only in how their strings split stay distinct: ("a|n0", pid "z") is not ("a", key "z|n0")', async (t) => {
  const tbl = table();
  const a: Who = { handle: 'a|n0', processId: 'z' };
  const b: Who = { handle: 'a', key: 'z|n0' };
  t.equal(lock(tbl, exclusive(0, 10, a)), OK);
  t.equal(lock(tbl, shared(0, 10, b)), VIOLATION);
  t.equal(unlock(tbl, 0, 10, b), NOT_LOCKED);
  t.equal(io(tbl, false, 0, 10, { handle: 'a' }), VIOLATION);
  t.strictSame(
    tbl.locks(F).map((e) => `${e.type} ${e.start}-${e.end} ${own(e.owner)} ${e.state}`),
    ["exclusive 0-9 'a|n0' granted"],
  );
});

t.test('API files: the same fileName is the same file; locks on other files never meet', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { fileName: F })), OK);
  t.equal(lock(tbl, exclusive(0, 10, { fileName: G, handle: 2 })), OK);
  t.equal(lock(tbl, exclusive(0, 10, { fileName: F, handle: 2 })), VIOLATION);
  t.equal(io(tbl, true, 0, 10, { fileName: G }), VIOLATION);
  t.equal(io(tbl, true, 0, 10, { fileName: 'c:\\share\\data.bin', handle: 2 }), OK);
  t.strictSame(ls(tbl, F), ['exclusive 0-9 1 pid=0 granted']);
  t.strictSame(ls(tbl, G), ['exclusive 0-9 2 pid=0 granted']);
});

// =================================================================================================
// §2 Range arithmetic
// =================================================================================================

t.test('§2 ranges overlap iff off1 <= last2 && off2 <= last1; adjacent ranges do not (Wine "LockFile 5,5")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(10, 20)), OK); // [10, 29]
  t.equal(lock(tbl, exclusive(5, 5)), OK); // [5, 9]: adjacent below, even for the same handle
  t.equal(lock(tbl, exclusive(30, 5)), OK); // [30, 34]: adjacent above
  t.equal(lock(tbl, shared(4, 1, { handle: 2 })), OK);
  t.equal(lock(tbl, shared(35, 1, { handle: 2 })), OK);
  // One shared byte is an overlap.
  t.equal(lock(tbl, shared(9, 1, { handle: 3 })), VIOLATION);
  t.equal(lock(tbl, shared(29, 1, { handle: 3 })), VIOLATION);
  t.equal(lock(tbl, shared(34, 100, { handle: 3 })), VIOLATION);
  t.equal(lock(tbl, shared(0, 6, { handle: 3 })), VIOLATION);
  t.equal(lock(tbl, exclusive(29, 2)), VIOLATION);
  t.strictSame(
    ls(tbl),
    lines(
      'exclusive 5-9 1 pid=0 granted',
      'exclusive 10-29 1 pid=0 granted',
      'exclusive 30-34 1 pid=0 granted',
      'shared 4-4 2 pid=0 granted',
      'shared 35-35 2 pid=0 granted',
    ),
  );
});

t.test('§2 zero-length lock at 100 is overlapped by (99,2), not (95,5) or (100,5)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(100, 0)), OK);
  t.equal(lock(tbl, shared(99, 2, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, exclusive(99, 2, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, shared(95, 5, { handle: 2 })), OK);
  t.equal(lock(tbl, shared(100, 5, { handle: 2 })), OK);
  t.strictSame(
    ls(tbl),
    lines('exclusive 100-99 1 pid=0 granted', 'shared 95-99 2 pid=0 granted', 'shared 100-104 2 pid=0 granted'),
  );
});

t.test('§2 a zero-length request at X meets a lock [a, b] iff a < X <= b', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(99, 2)), OK); // [99, 100]
  t.equal(lock(tbl, shared(100, 0, { handle: 2 })), VIOLATION); // 99 < 100 <= 100
  t.equal(lock(tbl, exclusive(100, 0, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, shared(99, 0, { handle: 2 })), OK); // a = X
  t.equal(lock(tbl, shared(101, 0, { handle: 2 })), OK); // X = b + 1
  t.equal(lock(tbl, shared(100, 0, { fileName: G, handle: 2 })), OK); // nothing on G
  t.strictSame(
    ls(tbl),
    lines('exclusive 99-100 1 pid=0 granted', 'shared 99-98 2 pid=0 granted', 'shared 101-100 2 pid=0 granted'),
  );
});

t.test('§2 two zero-length ranges never overlap, whatever the owners and types', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(100, 0)), OK);
  t.equal(lock(tbl, exclusive(100, 0, { handle: 2 })), OK);
  t.equal(lock(tbl, exclusive(100, 0)), OK);
  t.equal(lock(tbl, shared(100, 0, { handle: 3 })), OK);
  t.strictSame(
    ls(tbl),
    lines(
      'exclusive 100-99 1 pid=0 granted',
      'exclusive 100-99 1 pid=0 granted',
      'exclusive 100-99 2 pid=0 granted',
      'shared 100-99 3 pid=0 granted',
    ),
  );
});

t.test('§2 (0, 0) overlaps nothing in either role, not even a lock ending at 2^64-1 (zero_byte_tests)', async (t) => {
  const tbl = table();
  // Handle 1 holds every byte: [0, 2^64-2] and [2^64-1, 2^64-1].
  t.equal(lock(tbl, exclusive(0, U64)), OK);
  t.equal(lock(tbl, exclusive(U64, 1)), OK);
  t.equal(lock(tbl, shared(0, 1, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, exclusive(0, 0, { handle: 2 })), OK);
  t.equal(lock(tbl, exclusive(0, 0)), OK); // the exclusive owner's own (0, 0) too
  // The other role: a granted (0, 0) blocks nothing.
  t.equal(lock(tbl, exclusive(0, 0, { fileName: G })), OK);
  t.equal(lock(tbl, exclusive(0, U64, { fileName: G, handle: 2 })), OK);
  t.equal(lock(tbl, exclusive(U64, 1, { fileName: G, handle: 2 })), OK);
  t.strictSame(
    ls(tbl),
    lines(`exclusive 0-${U64 - 1n} 1 pid=0 granted`, `exclusive ${U64}-${U64} 1 pid=0 granted`, 'exclusive 0--1 2 pid=0 granted', 'exclusive 0--1 1 pid=0 granted'),
  );
  t.strictSame(
    ls(tbl, G),
    lines('exclusive 0--1 1 pid=0 granted', `exclusive 0-${U64 - 1n} 2 pid=0 granted`, `exclusive ${U64}-${U64} 2 pid=0 granted`),
  );
  t.equal(unlock(tbl, 0, 0, { fileName: G }), OK);
  t.equal(unlock(tbl, 0, 0, { fileName: G }), NOT_LOCKED);
});

t.test('§2 a waiter held back by a zero-length lock is granted when that lock goes', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(100, 0)), OK);
  const w = wait(tbl, shared(99, 2, { handle: 2 }));
  t.equal(unlock(tbl, 100, 0), OK);
  t.strictSame(w.results, [OK]);
  t.strictSame(ls(tbl), ['shared 99-100 2 pid=0 granted']);
});

t.test('§2 a negative byteOffset or length is the two\'s complement int64 CBFS passes (-1 is 2^64-1, -2^63 is 2^63)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(-1, 1)), OK);
  t.strictSame(ls(tbl), [`exclusive ${U64}-${U64} 1 pid=0 granted`]);
  t.equal(lock(tbl, shared(U64, 1, { handle: 2 })), VIOLATION);
  t.equal(unlock(tbl, U64, 1), OK); // the bigint spelling names the same record
  t.equal(lock(tbl, exclusive(-(1n << 63n), 1n)), OK);
  t.strictSame(ls(tbl), [`exclusive ${P63}-${P63} 1 pid=0 granted`]);
  t.equal(unlock(tbl, P63, 1), OK);
  // Length -1 is 2^64-1: from 0 it ends at 2^64-2. Length -2 from 1 ends at 2^64-2 too.
  t.equal(lock(tbl, shared(0, -1)), OK);
  t.equal(lock(tbl, shared(1n, -2n)), OK);
  t.strictSame(ls(tbl), lines(`shared 0-${U64 - 1n} 1 pid=0 granted`, `shared 1-${U64 - 1n} 1 pid=0 granted`));
  t.equal(unlock(tbl, 0, U64), OK);
  t.equal(unlock(tbl, 1, U64 - 1n), OK);
  t.strictSame(ls(tbl), []);
  // -2 + 1 byte is 2^64-2; checkIo reads offsets the same way.
  t.equal(lock(tbl, exclusive(-2, 1)), OK);
  t.equal(io(tbl, false, U64 - 1n, 1, { handle: 2 }), VIOLATION);
  t.equal(io(tbl, false, -1, 1, { handle: 2 }), OK);
});

t.test('§2 a value outside [-2^63, 2^64-1] gives 87 from lockFile, unlockFile and checkIo, changing nothing', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w = wait(tbl, exclusive(0, 10, { handle: 2 }));
  const before = ls(tbl);
  const tooBig = 1n << 64n;
  const tooSmall = -(1n << 63n) - 1n;
  t.equal(lock(tbl, exclusive(tooBig, 1, { handle: 3 })), INVALID);
  t.equal(lock(tbl, shared(tooSmall, 1, { handle: 3 })), INVALID);
  t.equal(lock(tbl, shared(0, tooBig, { handle: 3 })), INVALID);
  t.equal(lock(tbl, shared(0, tooSmall, { handle: 3 })), INVALID);
  t.equal(lock(tbl, { ...shared(tooBig, 1, { handle: 3 }), failImmediately: false }), INVALID);
  t.equal(unlock(tbl, tooBig, 10), INVALID);
  t.equal(unlock(tbl, 0, tooBig), INVALID);
  t.equal(unlock(tbl, -1, tooSmall), INVALID); // not unlock-all
  t.equal(unlock(tbl, tooSmall, -1), INVALID);
  t.equal(io(tbl, true, tooBig, 1, { handle: 3 }), INVALID);
  t.equal(io(tbl, true, 0, tooSmall, { handle: 3 }), INVALID);
  t.strictSame(ls(tbl), before);
  t.strictSame(w.results, []);
  // The bounds themselves are accepted.
  t.equal(lock(tbl, shared(-(1n << 63n), 0, { handle: 3 })), OK);
  t.equal(lock(tbl, shared(U64, 0, { handle: 3 })), OK);
});

// =================================================================================================
// §3 Validation, 64-bit edges, end of file
// =================================================================================================

t.test('§3 a range whose last byte passes 2^64-1 gives 307 from lockFile and unlockFile and changes nothing ("max/2")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(U64, 1)), OK);
  const before = ls(tbl);
  t.equal(lock(tbl, exclusive(U64, 2, { handle: 2 })), BAD_RANGE);
  t.equal(lock(tbl, shared(U64, 2, { handle: 2 })), BAD_RANGE);
  t.equal(lock(tbl, shared(2, U64, { handle: 2 })), BAD_RANGE);
  t.equal(lock(tbl, shared(P63, P63 + 1n, { handle: 2 })), BAD_RANGE);
  t.equal(lock(tbl, shared(-1, 2, { handle: 2 })), BAD_RANGE);
  t.equal(lock(tbl, exclusive(U64, 2)), BAD_RANGE); // by the owner of the byte, too
  t.equal(unlock(tbl, U64, 2), BAD_RANGE);
  t.equal(unlock(tbl, 2, U64), BAD_RANGE);
  t.equal(unlock(tbl, -1, 5), BAD_RANGE);
  t.equal(unlock(tbl, 5, -1), BAD_RANGE);
  t.strictSame(ls(tbl), before);
});

t.test('§3 range validation comes before anything else: no hook, no queue, no 158', async (t) => {
  const r = recorded();
  t.equal(lock(r.table, exclusive(0, 10)), OK);
  t.equal(r.log.length, 1);
  // A blocking, conflicting, wrapping request: 307 at once, not queued, the hook never asked.
  t.equal(lock(r.table, { ...exclusive(-1, 2, { handle: 2 }), failImmediately: false }), BAD_RANGE);
  t.equal(lock(r.table, exclusive(U64, 2, { handle: 2 })), BAD_RANGE);
  // Nothing of the handle's is locked anywhere, yet the wrap is reported rather than 158.
  t.equal(unlock(r.table, U64, 2, { handle: 2 }), BAD_RANGE);
  t.equal(unlock(r.table, U64, 2, { fileName: G, handle: 2 }), BAD_RANGE);
  t.strictSame(r.log, ['approve h=1 0+10 x']);
  t.strictSame(ls(r.table), ['exclusive 0-9 1 pid=0 granted']);
});

t.test('§3 ranges ending exactly at 2^64-1, (2^64-1, 1) and (2^64-1, 0) are valid ("max/1", "max/0", Wine "LockFile ~0,1")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(U64 - 9n, 10)), OK);
  t.equal(lock(tbl, shared(U64, 1, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, shared(U64 - 10n, 1, { handle: 2 })), OK);
  t.strictSame(ls(tbl), lines(`exclusive ${U64 - 9n}-${U64} 1 pid=0 granted`, `shared ${U64 - 10n}-${U64 - 10n} 2 pid=0 granted`));
  // (1, 2^64-1) ends exactly at 2^64-1.
  t.equal(lock(tbl, exclusive(1, U64, { fileName: G })), OK);
  t.strictSame(ls(tbl, G), [`exclusive 1-${U64} 1 pid=0 granted`]);
  t.equal(unlock(tbl, 1, U64, { fileName: G }), OK);
  // (2^64-1, 1) and the zero-length (2^64-1, 0), which is no overlap of [2^64-1, 2^64-1].
  t.equal(lock(tbl, exclusive(U64, 1, { fileName: G })), OK);
  t.equal(lock(tbl, exclusive(U64, 0, { fileName: G })), OK);
  t.equal(lock(tbl, exclusive(U64, 0, { fileName: G, handle: 2 })), OK);
  t.strictSame(
    ls(tbl, G),
    lines(`exclusive ${U64}-${U64} 1 pid=0 granted`, `exclusive ${U64}-${U64 - 1n} 1 pid=0 granted`, `exclusive ${U64}-${U64 - 1n} 2 pid=0 granted`),
  );
  t.equal(unlock(tbl, U64, 0, { fileName: G }), OK);
  t.equal(unlock(tbl, -1, 1, { fileName: G }), OK);
  t.strictSame(ls(tbl, G), [`exclusive ${U64}-${U64 - 1n} 2 pid=0 granted`]);
});

t.test('§3 a zero-length lock at 2^64-1 is overlapped by a range holding bytes 2^64-2 and 2^64-1', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(U64, 0)), OK);
  t.equal(lock(tbl, shared(U64 - 1n, 2, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, shared(U64, 1, { handle: 2 })), OK);
  t.equal(lock(tbl, shared(U64 - 1n, 1, { handle: 2 })), OK);
});

t.test('§3 offsets at or above 2^63 are ordinary ("2^63/1")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(P63, 1)), OK);
  t.equal(lock(tbl, shared(P63, 1, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, shared(P63 - 1n, 2, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, shared(P63 - 1n, 1, { handle: 2 })), OK);
  t.equal(lock(tbl, shared(P63 + 1n, 1, { handle: 2 })), OK);
  t.equal(io(tbl, true, P63, 1, { handle: 2 }), VIOLATION);
  t.equal(unlock(tbl, P63, 1), OK);
  t.equal(lock(tbl, exclusive(P63, 1, { handle: 2 })), OK);
  t.strictSame(
    ls(tbl),
    lines(`shared ${P63 - 1n}-${P63 - 1n} 2 pid=0 granted`, `shared ${P63 + 1n}-${P63 + 1n} 2 pid=0 granted`, `exclusive ${P63}-${P63} 2 pid=0 granted`),
  );
});

t.test('§3 (-1, -1) is an invalid range for lockFile (307) and unlock-all for unlockFile', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, shared(20, 5)), OK);
  const before = ls(tbl);
  t.equal(lock(tbl, exclusive(-1, -1)), BAD_RANGE);
  t.equal(lock(tbl, shared(-1n, -1n)), BAD_RANGE);
  t.equal(lock(tbl, shared(U64, U64, { handle: 2 })), BAD_RANGE);
  t.equal(lock(tbl, { ...exclusive(-1, -1, { handle: 2 }), failImmediately: false }), BAD_RANGE);
  t.strictSame(ls(tbl), before);
  t.equal(unlock(tbl, -1, -1), OK);
  t.strictSame(ls(tbl), []);
});

t.test('§3 locks may lie beyond end of file: the table never needs a size (0xEEFFFFFF on a 200-byte file)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0xeeffffff, 1)), OK);
  t.equal(lock(tbl, exclusive(0xeeffffff, 10, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, exclusive(0xef000000, 10, { handle: 2 })), OK);
  t.strictSame(ls(tbl), lines('exclusive 4009754623-4009754623 1 pid=0 granted', 'exclusive 4009754624-4009754633 2 pid=0 granted'));
});

// =================================================================================================
// §4 Lock against lock
// =================================================================================================

t.test('§4 lock against lock: shared meets shared of anyone and the requester\'s exclusive; exclusive meets nothing', async (t) => {
  const cases: { held: 'shared' | 'exclusive'; by: 'requester' | 'another'; req: 'shared' | 'exclusive'; want: number }[] = [
    { held: 'shared', by: 'another', req: 'shared', want: OK },
    { held: 'shared', by: 'requester', req: 'shared', want: OK },
    { held: 'exclusive', by: 'requester', req: 'shared', want: OK },
    { held: 'exclusive', by: 'another', req: 'shared', want: VIOLATION },
    { held: 'shared', by: 'another', req: 'exclusive', want: VIOLATION },
    { held: 'shared', by: 'requester', req: 'exclusive', want: VIOLATION },
    { held: 'exclusive', by: 'requester', req: 'exclusive', want: VIOLATION },
    { held: 'exclusive', by: 'another', req: 'exclusive', want: VIOLATION },
  ];
  for (const c of cases) {
    const tbl = table();
    const holder = c.by === 'requester' ? 1 : 2;
    t.equal(lock(tbl, (c.held === 'shared' ? shared : exclusive)(0, 10, { handle: holder })), OK);
    const name = `${c.req} request over ${c.held} (0, 10) of ${c.by}`;
    t.equal(lock(tbl, (c.req === 'shared' ? shared : exclusive)(5, 10)), c.want, name);
    const held = `${c.held} 0-9 ${holder} pid=0 granted`;
    t.strictSame(ls(tbl), c.want === OK ? lines(held, `${c.req} 5-14 1 pid=0 granted`) : [held], name);
  }
});

t.test('§4 one handle\'s overlapping shared locks coexist (Wine "LockFileEx 150,100")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(100, 100)), OK);
  t.equal(lock(tbl, shared(150, 100)), OK);
  t.strictSame(ls(tbl), lines('shared 100-199 1 pid=0 granted', 'shared 150-249 1 pid=0 granted'));
});

t.test('§4 a handle may put a shared lock on its own exclusive one ("shared lock can overlap exclusive if handles are equal")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, shared(0, 10)), OK);
  t.equal(lock(tbl, shared(5, 10)), OK);
  t.equal(lock(tbl, shared(5, 1, { handle: 2 })), VIOLATION);
  t.strictSame(ls(tbl), lines('exclusive 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted', 'shared 5-14 1 pid=0 granted'));
});

t.test('§4 overlapping exclusive locks are refused even to the same owner (Wine "LockFile 12,10")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(10, 10)), OK);
  t.equal(lock(tbl, exclusive(12, 10)), VIOLATION);
  t.equal(lock(tbl, exclusive(10, 10)), VIOLATION); // identical exclusive records do not stack
  t.equal(lock(tbl, shared(20, 5)), OK);
  t.equal(lock(tbl, exclusive(24, 1)), VIOLATION); // nor does an exclusive one over an own shared one
  t.strictSame(ls(tbl), lines('exclusive 10-19 1 pid=0 granted', 'shared 20-24 1 pid=0 granted'));
});

t.test('§4 no atomic upgrade or downgrade, and a failed request never changes existing locks (test_changetype, test_lock_auto_unlock)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(0, 10)), OK);
  t.equal(lock(tbl, exclusive(0, 10)), VIOLATION); // no upgrade
  t.strictSame(ls(tbl), ['shared 0-9 1 pid=0 granted']);
  t.equal(lock(tbl, exclusive(20, 10, { handle: 2 })), OK);
  t.equal(lock(tbl, shared(20, 10, { handle: 2 })), OK); // stacks; the exclusive record stays
  t.equal(lock(tbl, shared(25, 1, { handle: 3 })), VIOLATION);
  // The 2008 "pretty please" bug: repeating a contending request must not release the lock.
  for (let i = 0; i < 3; i++) t.equal(lock(tbl, exclusive(20, 10, { handle: 3 })), VIOLATION);
  t.strictSame(
    ls(tbl),
    lines('shared 0-9 1 pid=0 granted', 'exclusive 20-29 2 pid=0 granted', 'shared 20-29 2 pid=0 granted'),
  );
  t.equal(io(tbl, false, 20, 10, { handle: 3 }), VIOLATION);
});

t.test('§4 waiting requests are not locks: under the default policy they conflict with nothing', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(0, 10)), OK);
  const w = wait(tbl, exclusive(0, 20, { handle: 2 }));
  t.equal(lock(tbl, exclusive(15, 5, { handle: 3 })), OK); // overlaps only the waiter
  t.equal(lock(tbl, shared(0, 10, { handle: 4 })), OK);
  t.strictSame(
    ls(tbl),
    lines(
      'shared 0-9 1 pid=0 granted',
      'exclusive 15-19 3 pid=0 granted',
      'shared 0-9 4 pid=0 granted',
      'exclusive 0-19 2 pid=0 waiting',
    ),
  );
  t.strictSame(w.results, []);
});

t.test('§4 both families: a POSIX write lock blocks a Windows shared lock on the same path', async (t) => {
  const tbl = table();
  t.equal(posix(tbl, F_WRLCK, 0, 10, 7), 0);
  // Windows handle 7 and posix owner 7 are different owners.
  t.equal(lock(tbl, shared(5, 1, { handle: 7 })), VIOLATION);
  t.equal(lock(tbl, exclusive(9, 1, { handle: 7 })), VIOLATION);
  t.equal(lock(tbl, shared(10, 1, { handle: 7 })), OK);
  t.strictSame(ls(tbl), lines('posix write 0-9 7 pid=0 granted', 'shared 10-10 7 pid=0 granted'));
});

t.test('§4 both families: a Windows exclusive lock blocks a POSIX read lock', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { handle: 7 })), OK);
  t.equal(posix(tbl, F_RDLCK, 5, 1, 7), -EAGAIN);
  t.equal(posix(tbl, F_WRLCK, 0, 0, 8), -EAGAIN); // to OFFSET_MAX
  t.equal(posix(tbl, F_RDLCK, 10, 5, 7), 0);
  t.strictSame(ls(tbl), lines('exclusive 0-9 7 pid=0 granted', 'posix read 10-14 7 pid=0 granted'));
});

t.test('§4 both families: POSIX read ~ shared; each blocks the other\'s write/exclusive, never the other\'s read/shared', async (t) => {
  const tbl = table();
  t.equal(posix(tbl, F_RDLCK, 0, 10, 1), 0);
  t.equal(lock(tbl, shared(0, 10)), OK);
  t.equal(lock(tbl, exclusive(5, 1, { handle: 2 })), VIOLATION);
  t.equal(posix(tbl, F_WRLCK, 5, 1, 2), -EAGAIN);
  t.equal(lock(tbl, shared(40, 10)), OK);
  t.equal(posix(tbl, F_RDLCK, 45, 1, 3), 0);
  t.equal(posix(tbl, F_WRLCK, 49, 1, 4), -EAGAIN);
  t.strictSame(
    ls(tbl),
    lines('posix read 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted', 'shared 40-49 1 pid=0 granted', 'posix read 45-45 3 pid=0 granted'),
  );
});

t.test('§4 both families: OFD locks count as locks of another owner too', async (t) => {
  const tbl = table();
  t.equal(posix(tbl, F_WRLCK, 0, 10, 1, 'ofd'), 0);
  t.equal(lock(tbl, shared(5, 1, { handle: 1 })), VIOLATION);
  t.equal(lock(tbl, exclusive(20, 10)), OK);
  t.equal(posix(tbl, F_RDLCK, 25, 1, 1, 'ofd'), -EAGAIN);
  t.strictSame(ls(tbl), lines('ofd write 0-9 1 pid=-1 granted', 'exclusive 20-29 1 pid=0 granted'));
});

t.test('§4 both families: a Windows range past OFFSET_MAX meets a POSIX lock only below 2^63', async (t) => {
  const tbl = table();
  t.equal(posix(tbl, F_WRLCK, 0, 0, 1), 0); // [0, 2^63-1]
  t.equal(lock(tbl, shared(P63 - 1n, 1)), VIOLATION);
  t.equal(lock(tbl, shared(P63 - 1n, 2)), VIOLATION);
  t.equal(lock(tbl, exclusive(P63, 1)), OK);
  t.equal(lock(tbl, exclusive(U64, 1)), OK);
});

t.test('§4 both families: flock locks never block Windows locks, nor Windows locks flock', async (t) => {
  const tbl = table();
  t.equal(posix(tbl, F_WRLCK, 0, 0, 1, 'flock'), 0);
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, shared(U64, 1, { handle: 2 })), OK);
  t.equal(posix(tbl, F_UNLCK, 0, 0, 1, 'flock'), 0);
  t.equal(posix(tbl, F_WRLCK, 0, 0, 2, 'flock'), 0);
  t.strictSame(
    ls(tbl),
    lines('exclusive 0-9 1 pid=0 granted', `shared ${U64}-${U64} 2 pid=0 granted`, `flock write 0-${P63 - 1n} 2 pid=0 granted`),
  );
});

t.test('§4/§9 a Windows waiter blocked by a POSIX lock is granted when the POSIX lock goes', async (t) => {
  const tbl = table();
  t.equal(posix(tbl, F_WRLCK, 0, 10, 1), 0);
  const w = wait(tbl, exclusive(0, 10));
  t.strictSame(ls(tbl), lines('posix write 0-9 1 pid=0 granted', 'exclusive 0-9 1 pid=0 waiting'));
  t.equal(posix(tbl, F_UNLCK, 0, 10, 1), 0);
  t.strictSame(w.results, [OK]);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=0 granted']);
  // And the other way: a POSIX F_SETLKW waiter is granted when the Windows lock goes.
  const out: number[] = [];
  const p = tbl.lock({ path: F, lockType: F_RDLCK, lockStart: 5, lockLen: 1, cmd: F_SETLKW, lockOwner: 2 }, (r) => out.push(r.result));
  t.equal(now(p), 'queued');
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(out, [0]);
});

// =================================================================================================
// §5 I/O against locks: checkIo
// =================================================================================================

t.test('§5 I/O table: exclusive of the same owner 0/0, of another owner 33/33, shared of any owner 0 read / 33 write', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, shared(20, 10)), OK);
  t.equal(lock(tbl, shared(40, 10, { handle: 2 })), OK);
  const cases: [write: boolean, off: number, handle: number, want: number][] = [
    [false, 0, 1, OK],
    [true, 0, 1, OK],
    [false, 0, 2, VIOLATION],
    [true, 0, 2, VIOLATION],
    [false, 20, 1, OK],
    [true, 20, 1, VIOLATION],
    [false, 20, 2, OK],
    [true, 20, 2, VIOLATION],
    [false, 40, 1, OK],
    [true, 40, 1, VIOLATION],
    [false, 60, 2, OK],
    [true, 60, 2, OK],
  ];
  for (const [write, off, handle, want] of cases) {
    t.equal(io(tbl, write, off, 10, { handle }), want, `${write ? 'write' : 'read'} (${off}, 10) through handle ${handle}`);
  }
});

t.test('§5 a shared lock blocks writes even through its own handle, also over its own exclusive lock (LOCKTEST7)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(io(tbl, true, 0, 10), OK);
  t.equal(lock(tbl, shared(5, 1)), OK);
  t.equal(io(tbl, true, 0, 5), OK);
  t.equal(io(tbl, true, 0, 6), VIOLATION);
  t.equal(io(tbl, false, 0, 10), OK);
  t.equal(unlock(tbl, 5, 1), OK);
  t.equal(io(tbl, true, 0, 10), OK);
});

t.test('§5 the I/O\'s owner is (handle, processId, key 0)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { processId: 10 })), OK);
  t.equal(io(tbl, true, 0, 10, { processId: 10 }), OK);
  t.equal(io(tbl, true, 0, 10, { processId: 10n }), OK);
  t.equal(io(tbl, true, 0, 10, { processId: 11 }), VIOLATION);
  t.equal(io(tbl, false, 0, 10), VIOLATION); // processId 0
  t.equal(io(tbl, false, 0, 10, { handle: 2, processId: 10 }), VIOLATION);
  // An exclusive lock taken with key 5 belongs to another owner than any read or write.
  t.equal(lock(tbl, exclusive(20, 10, { processId: 10, key: 5 })), OK);
  t.equal(io(tbl, false, 20, 10, { processId: 10 }), VIOLATION);
  t.equal(io(tbl, true, 20, 10, { processId: 10 }), VIOLATION);
});

t.test('§5 one overlapping byte suffices', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(10, 10, { handle: 2 })), OK); // [10, 19]
  t.equal(io(tbl, false, 19, 5), VIOLATION);
  t.equal(io(tbl, false, 5, 6), VIOLATION);
  t.equal(io(tbl, false, 20, 5), OK);
  t.equal(io(tbl, false, 5, 5), OK);
  t.equal(lock(tbl, exclusive(U64, 1, { handle: 2 })), OK);
  t.equal(io(tbl, true, U64 - 1n, 2), VIOLATION);
  t.equal(io(tbl, true, U64 - 1n, 1), OK);
  t.equal(io(tbl, true, 0, U64), VIOLATION); // [0, 2^64-2] holds [10, 19]
});

t.test('§5 zero-length I/O is always allowed, even inside another owner\'s exclusive lock (test_zerobyteread)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(10, 10, { handle: 2 })), OK);
  t.equal(lock(tbl, exclusive(U64 - 1n, 2, { handle: 2 })), OK);
  for (const off of [0, 10, 11, 15, 19, 20, U64, -1]) {
    t.equal(io(tbl, false, off, 0), OK, `read (${off}, 0)`);
    t.equal(io(tbl, true, off, 0), OK, `write (${off}, 0)`);
  }
});

t.test('§5 only granted Windows locks count: waiters and POSIX, OFD and flock locks never affect checkIo', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(0, 10)), OK);
  wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(io(tbl, false, 0, 10, { handle: 3 }), OK); // the exclusive waiter is no lock
  t.equal(posix(tbl, F_WRLCK, 20, 10, 1), 0);
  t.equal(posix(tbl, F_WRLCK, 40, 10, 2, 'ofd'), 0);
  t.equal(posix(tbl, F_WRLCK, 0, 0, 3, 'flock'), 0);
  t.equal(io(tbl, true, 20, 10, { handle: 3 }), OK);
  t.equal(io(tbl, true, 40, 10, { handle: 3 }), OK);
  t.equal(io(tbl, true, 60, 10, { handle: 3 }), OK);
  t.equal(io(tbl, true, 0, 10, { handle: 3 }), VIOLATION); // the granted shared lock does count
});

// =================================================================================================
// §6 Records, stacking and unlock
// =================================================================================================

t.test('§6 every granted lock is its own record: never merged, split or coalesced; unlock must name one exactly', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(0, 10)), OK);
  t.equal(lock(tbl, shared(10, 10)), OK);
  t.equal(lock(tbl, shared(5, 10)), OK);
  const all = lines('shared 0-9 1 pid=0 granted', 'shared 10-19 1 pid=0 granted', 'shared 5-14 1 pid=0 granted');
  t.strictSame(ls(tbl), all);
  t.equal(unlock(tbl, 0, 20), NOT_LOCKED); // spans two adjacent records
  t.equal(unlock(tbl, 0, 5), NOT_LOCKED); // a sub-range
  t.equal(unlock(tbl, 0, 11), NOT_LOCKED); // a super-range
  t.equal(unlock(tbl, 0, 15), NOT_LOCKED);
  t.strictSame(ls(tbl), all);
  t.equal(unlock(tbl, 5, 10), OK);
  t.strictSame(ls(tbl), lines('shared 0-9 1 pid=0 granted', 'shared 10-19 1 pid=0 granted'));
});

t.test('§6 unlocking part of a record gives 158 (Wine "UnlockFile 10,10", LOCKTEST5)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(10, 20)), OK);
  t.equal(unlock(tbl, 10, 10), NOT_LOCKED);
  t.equal(unlock(tbl, 20, 10), NOT_LOCKED);
  t.equal(unlock(tbl, 10, 0), NOT_LOCKED);
  t.strictSame(ls(tbl), ['exclusive 10-29 1 pid=0 granted']);
  t.equal(unlock(tbl, 10, 20), OK);
  t.strictSame(ls(tbl), []);
});

t.test('§6 unlock needs a record of the same (handle, processId, key); no record at all gives 158', async (t) => {
  const tbl = table();
  t.equal(unlock(tbl, 0, 10), NOT_LOCKED); // nothing on the file
  t.equal(lock(tbl, exclusive(0, 10, { processId: 1, key: 2 })), OK);
  t.equal(unlock(tbl, 0, 10, { handle: 2, processId: 1, key: 2 }), NOT_LOCKED);
  t.equal(unlock(tbl, 0, 10, { processId: 3, key: 2 }), NOT_LOCKED);
  t.equal(unlock(tbl, 0, 10, { processId: 1 }), NOT_LOCKED);
  t.equal(unlock(tbl, 0, 10, { fileName: G, processId: 1, key: 2 }), NOT_LOCKED);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=1 granted']);
  t.equal(unlock(tbl, 0, 10, { processId: 1, key: 2 }), OK);
  t.equal(unlock(tbl, 0, 10, { processId: 1, key: 2 }), NOT_LOCKED);
});

t.test('§6 identical records stack; each needs its own unlock; one unlock too many gives 158 (test_stacking)', async (t) => {
  const tbl = table();
  for (let i = 0; i < 3; i++) t.equal(lock(tbl, shared(0, 10)), OK);
  t.strictSame(ls(tbl), lines('shared 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted'));
  t.equal(unlock(tbl, 0, 10), OK);
  t.equal(unlock(tbl, 0, 10), OK);
  t.equal(lock(tbl, exclusive(0, 10, { handle: 2 })), VIOLATION); // one record still stands
  t.equal(unlock(tbl, 0, 10), OK);
  t.equal(unlock(tbl, 0, 10), NOT_LOCKED);
  t.strictSame(ls(tbl), []);
});

t.test('§6 repeated zero-length locks stack and unlock one at a time', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(50, 0)), OK);
  t.equal(lock(tbl, exclusive(50, 0)), OK);
  t.strictSame(ls(tbl), lines('exclusive 50-49 1 pid=0 granted', 'exclusive 50-49 1 pid=0 granted'));
  t.equal(unlock(tbl, 50, 0), OK);
  t.strictSame(ls(tbl), ['exclusive 50-49 1 pid=0 granted']);
  t.equal(unlock(tbl, 50, 1), NOT_LOCKED);
  t.equal(unlock(tbl, 50, 0), OK);
  t.equal(unlock(tbl, 50, 0), NOT_LOCKED);
  t.strictSame(ls(tbl), []);
});

t.test('§6 unlock takes the exclusive record first: exclusive and shared (0, 8) keep only the shared one (test_unlock)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 8)), OK);
  t.equal(lock(tbl, shared(0, 8)), OK);
  t.equal(lock(tbl, shared(0, 8)), OK);
  t.equal(lock(tbl, shared(0, 8, { handle: 2 })), VIOLATION);
  t.equal(unlock(tbl, 0, 8), OK);
  t.strictSame(ls(tbl), lines('shared 0-7 1 pid=0 granted', 'shared 0-7 1 pid=0 granted'));
  t.equal(lock(tbl, shared(0, 8, { handle: 2 })), OK);
  t.equal(io(tbl, false, 0, 8, { handle: 3 }), OK);
  // Seen by a waiter: a shared request behind the exclusive record is let in by that unlock.
  t.equal(lock(tbl, exclusive(0, 8, { fileName: G })), OK);
  t.equal(lock(tbl, shared(0, 8, { fileName: G })), OK);
  const w = wait(tbl, shared(0, 8, { fileName: G, handle: 2 }));
  t.equal(unlock(tbl, 0, 8, { fileName: G }), OK);
  t.strictSame(w.results, [OK]);
  t.strictSame(ls(tbl, G), lines('shared 0-7 1 pid=0 granted', 'shared 0-7 2 pid=0 granted'));
});

t.test('§6 exclusive first whatever the grant order: zero-length shared then exclusive at 50, unlock removes the exclusive', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(50, 0)), OK);
  t.equal(lock(tbl, exclusive(50, 0)), OK); // zero-length ranges never overlap, so both are granted
  t.equal(unlock(tbl, 50, 0), OK);
  t.strictSame(ls(tbl), ['shared 50-49 1 pid=0 granted']);
});

t.test('§6 each successful unlock fires released with the record\'s range, then runs a waiter pass', async (t) => {
  const r = recorded();
  t.equal(lock(r.table, exclusive(0, 10)), OK);
  const w = wait(r.table, exclusive(0, 10, { handle: 2 }));
  t.equal(unlock(r.table, 0, 5), NOT_LOCKED);
  t.equal(unlock(r.table, 0, 10, { handle: 2 }), NOT_LOCKED);
  t.strictSame(r.log, ['approve h=1 0+10 x']); // a failed unlock fires nothing
  t.equal(unlock(r.table, 0, 10), OK);
  t.strictSame(r.log, ['approve h=1 0+10 x', 'released h=1 0+10', 'approve h=2 0+10 x']);
  t.strictSame(w.results, [OK]);
  t.strictSame(pick(r.released[0]!, ['fileName', 'byteOffset', 'length', 'handle', 'processId', 'key']), {
    fileName: F,
    byteOffset: 0n,
    length: 10n,
    handle: 1,
    processId: 0,
    key: 0,
  });
});

// =================================================================================================
// §7 Fail-immediately and the approval hook
// =================================================================================================

t.test('§7 failImmediately: a conflict returns 33 at once and queues nothing', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, shared(5, 1, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, exclusive(5, 1, { handle: 2 })), VIOLATION);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=0 granted']);
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(tbl.locks(), []); // nothing was waiting to be granted
});

t.test('§7 onLockFile runs only for a request grantable now, just before the grant', async (t) => {
  let seenAtApproval: string[] | undefined;
  const r = recorded(() => {
    seenAtApproval ??= ls(r.table);
    return 0;
  });
  t.equal(lock(r.table, exclusive(0, 10)), OK);
  t.strictSame(seenAtApproval, []); // asked before the lock was granted
  t.equal(lock(r.table, exclusive(5, 1, { handle: 2 })), VIOLATION);
  wait(r.table, shared(5, 1, { handle: 3 }));
  t.strictSame(r.log, ['approve h=1 0+10 x']);
  t.equal(lock(r.table, shared(10, 1, { handle: 2 })), OK);
  t.strictSame(r.log, ['approve h=1 0+10 x', 'approve h=2 10+1']);
});

t.test('§7 a non-zero approve verdict is the result and nothing is granted', async (t) => {
  const r = recorded((e) => (e.handle === 2 ? 5 : 0));
  t.equal(lock(r.table, exclusive(0, 10, { handle: 2 })), 5);
  t.equal(lock(r.table, shared(20, 0, { handle: 2 })), 5);
  t.strictSame(ls(r.table), []);
  t.equal(lock(r.table, exclusive(0, 10)), OK); // the veto left nothing behind
  t.strictSame(ls(r.table), ['exclusive 0-9 1 pid=0 granted']);
  t.strictSame(r.released, []);
});

t.test('API onLockFile event: the request\'s fields, offsets as unsigned bigint, and the contexts given', async (t) => {
  const r = recorded();
  const req = { ...exclusive(-2, 1, { handle: 'h', processId: 9, key: 3 }), fileContext: 'fc', handleContext: 'hc' };
  t.equal(lock(r.table, req), OK);
  t.equal(r.approved.length, 1);
  t.strictSame(
    pick(r.approved[0]!, ['fileName', 'byteOffset', 'length', 'exclusiveLock', 'failImmediately', 'handle', 'processId', 'key', 'fileContext', 'handleContext']),
    { fileName: F, byteOffset: U64 - 1n, length: 1n, exclusiveLock: true, failImmediately: true, handle: 'h', processId: 9, key: 3, fileContext: 'fc', handleContext: 'hc' },
  );
});

t.test('API approve returning a Promise makes lockFile return a Promise of the result', async (t) => {
  const r = recorded(async (e) => (e.handle === 2 ? 5 : 0));
  const granted = r.table.lockFile(exclusive(0, 10));
  t.ok(granted instanceof Promise);
  t.equal(await granted, OK);
  t.strictSame(ls(r.table), ['exclusive 0-9 1 pid=0 granted']);
  const vetoed = r.table.lockFile(exclusive(20, 10, { handle: 2 }));
  t.ok(vetoed instanceof Promise);
  t.equal(await vetoed, 5);
  t.strictSame(ls(r.table), ['exclusive 0-9 1 pid=0 granted']);
  // A conflict asks no hook: still an immediate 33, or an immediate Pending.
  t.equal(lock(r.table, exclusive(0, 10, { handle: 3 })), VIOLATION);
  const w = wait(r.table, exclusive(0, 10, { handle: 3 }));
  t.equal(await r.table.unlockFile(unlockReq(0, 10)), OK);
  t.strictSame(w.results, [OK]);
  t.strictSame(ls(r.table), ['exclusive 0-9 3 pid=0 granted']);
});

// =================================================================================================
// §8 Waiting, cancel, timeout
// =================================================================================================

t.test('§8 without failImmediately a conflicting request waits (a Pending, never 997) and is granted when it fits', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w = wait(tbl, shared(5, 10, { handle: 2, processId: 4 }));
  t.strictSame(w.results, []);
  t.strictSame(ls(tbl), lines('exclusive 0-9 1 pid=0 granted', 'shared 5-14 2 pid=4 waiting'));
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(w.results, [OK]);
  t.strictSame(ls(tbl), ['shared 5-14 2 pid=4 granted']);
});

t.test('§8 no deadlock detection: a handle waits behind its own lock and is granted when it unlocks it (test_async)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(0, 10)), OK);
  const w = wait(tbl, exclusive(0, 10));
  t.strictSame(ls(tbl), lines('shared 0-9 1 pid=0 granted', 'exclusive 0-9 1 pid=0 waiting'));
  t.equal(unlock(tbl, 0, 10), OK); // the shared record, not the waiter
  t.strictSame(w.results, [OK]);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=0 granted']);
});

t.test('§8 cancel (abort) ends a waiter with 995; it leaves the queue and nothing else changes (test_cancel)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w1 = wait(tbl, exclusive(0, 10, { handle: 2 }));
  const w2 = wait(tbl, shared(0, 10, { handle: 3 }));
  t.equal(await tbl.cancel(w1.pending, 'abort'), true);
  t.strictSame(w1.results, [ABORTED]);
  t.strictSame(w2.results, []);
  t.strictSame(ls(tbl), lines('exclusive 0-9 1 pid=0 granted', 'shared 0-9 3 pid=0 waiting'));
  t.equal(await tbl.cancel(w1.pending, 'abort'), false);
  t.strictSame(w1.results, [ABORTED]);
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(w1.results, [ABORTED]);
  t.strictSame(w2.results, [OK]);
  t.strictSame(ls(tbl), ['shared 0-9 3 pid=0 granted']);
});

t.test('§8 timeout ends a waiter with 33 and leaves nothing queued', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w = wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(await tbl.cancel(w.pending, 'timeout'), true);
  t.strictSame(w.results, [VIOLATION]);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=0 granted']);
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(w.results, [VIOLATION]);
  t.strictSame(tbl.locks(), []);
});

t.test('§8 stop ends waiters with 995 (cancel with "stop", and cancelAll)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w1 = wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(await tbl.cancel(w1.pending, 'stop'), true);
  t.strictSame(w1.results, [ABORTED]);
  const w2 = wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(lock(tbl, exclusive(0, 10, { fileName: G })), OK);
  const w3 = wait(tbl, shared(0, 10, { fileName: G, handle: 3 }));
  tbl.cancelAll('stop');
  t.strictSame(w2.results, [ABORTED]);
  t.strictSame(w3.results, [ABORTED]);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=0 granted']);
  t.strictSame(ls(tbl, G), ['exclusive 0-9 1 pid=0 granted']);
});

t.test('§8 cancelling a request that was already granted changes nothing', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w = wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(w.results, [OK]);
  t.equal(await tbl.cancel(w.pending, 'abort'), false);
  t.equal(await tbl.cancel(w.pending, 'timeout'), false);
  t.strictSame(w.results, [OK]);
  t.strictSame(ls(tbl), ['exclusive 0-9 2 pid=0 granted']);
});

t.test('§8 unlockFile naming a waiting request\'s range returns 158 and does not cancel it ("cancel by unlock")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w = wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(unlock(tbl, 0, 10, { handle: 2 }), NOT_LOCKED);
  t.strictSame(w.results, []);
  t.strictSame(ls(tbl), lines('exclusive 0-9 1 pid=0 granted', 'exclusive 0-9 2 pid=0 waiting'));
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(w.results, [OK]);
});

// =================================================================================================
// §9 Order of grants
// =================================================================================================

t.test('§9 default: a new request is checked against granted locks only and may overtake waiters (starvation example)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(0, 10)), OK); // A
  const b = wait(tbl, exclusive(0, 10, { handle: 2 })); // B
  t.equal(lock(tbl, shared(0, 10, { handle: 3 })), OK); // C barges in
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(b.results, []); // C's shared lock still holds B back
  t.equal(lock(tbl, shared(0, 10, { handle: 4 })), OK);
  t.equal(unlock(tbl, 0, 10, { handle: 3 }), OK);
  t.strictSame(b.results, []);
  t.equal(unlock(tbl, 0, 10, { handle: 4 }), OK);
  t.strictSame(b.results, [OK]);
  t.strictSame(ls(tbl), ['exclusive 0-9 2 pid=0 granted']);
});

t.test('§9 default pass: in arrival order, each waiter that fits the granted locks at that moment, earlier grants included', async (t) => {
  const tbl = table();
  const order: string[] = [];
  t.equal(lock(tbl, exclusive(0, 100)), OK);
  wait(tbl, exclusive(0, 10, { handle: 2 }), order, 'h2');
  wait(tbl, exclusive(5, 10, { handle: 3 }), order, 'h3'); // meets h2 once h2 is granted
  wait(tbl, shared(50, 10, { handle: 4 }), order, 'h4');
  wait(tbl, shared(55, 10, { handle: 5 }), order, 'h5'); // shared with h4: both fit
  wait(tbl, exclusive(59, 1, { handle: 6 }), order, 'h6'); // meets h4 and h5
  t.equal(unlock(tbl, 0, 100), OK);
  t.strictSame(order, ['h2:0', 'h4:0', 'h5:0']);
  t.strictSame(
    ls(tbl),
    lines(
      'exclusive 0-9 2 pid=0 granted',
      'shared 50-59 4 pid=0 granted',
      'shared 55-64 5 pid=0 granted',
      'exclusive 5-14 3 pid=0 waiting',
      'exclusive 59-59 6 pid=0 waiting',
    ),
  );
  t.equal(unlock(tbl, 0, 10, { handle: 2 }), OK);
  t.strictSame(order, ['h2:0', 'h4:0', 'h5:0', 'h3:0']);
});

t.test('§9 of two waiters for the same freed range the earlier wins; a waiter left out of a pass keeps its place', async (t) => {
  const tbl = table();
  const order: string[] = [];
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, exclusive(50, 5)), OK);
  wait(tbl, exclusive(0, 10, { handle: 2 }), order, 'h2');
  t.equal(unlock(tbl, 50, 5), OK); // a pass in which h2 does not fit
  t.strictSame(order, []);
  wait(tbl, exclusive(0, 10, { handle: 3 }), order, 'h3');
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(order, ['h2:0']);
  t.equal(unlock(tbl, 0, 10, { handle: 2 }), OK);
  t.strictSame(order, ['h2:0', 'h3:0']);
  t.strictSame(ls(tbl), ['exclusive 0-9 3 pid=0 granted']);
});

t.test('§9 a veto in the pass ends that waiter with the hook\'s code and the pass goes on', async (t) => {
  const r = recorded((e) => (e.handle === 2 ? 5 : 0));
  t.equal(lock(r.table, exclusive(0, 10)), OK);
  const w2 = wait(r.table, exclusive(0, 10, { handle: 2 }));
  const w3 = wait(r.table, exclusive(0, 10, { handle: 3 }));
  t.equal(unlock(r.table, 0, 10), OK);
  t.strictSame(w2.results, [5]);
  t.strictSame(w3.results, [OK]);
  t.strictSame(r.log, ['approve h=1 0+10 x', 'released h=1 0+10', 'approve h=2 0+10 x', 'approve h=3 0+10 x']);
  t.strictSame(ls(r.table), ['exclusive 0-9 3 pid=0 granted']);
});

t.test('§9 fifo: a new request queues behind an earlier waiter it conflicts with', async (t) => {
  const tbl = table('fifo');
  t.equal(lock(tbl, shared(0, 10)), OK);
  const b = wait(tbl, exclusive(0, 10, { handle: 2 }));
  const c = wait(tbl, shared(0, 10, { handle: 3 })); // the default policy would grant it
  t.strictSame(
    ls(tbl),
    lines('shared 0-9 1 pid=0 granted', 'exclusive 0-9 2 pid=0 waiting', 'shared 0-9 3 pid=0 waiting'),
  );
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(b.results, [OK]);
  t.strictSame(c.results, []);
  t.equal(unlock(tbl, 0, 10, { handle: 2 }), OK);
  t.strictSame(c.results, [OK]);
  t.strictSame(ls(tbl), ['shared 0-9 3 pid=0 granted']);
});

t.test('§9 fifo: failImmediately behind a conflicting waiter gets 33 where Windows would grant', async (t) => {
  const tbl = table('fifo');
  t.equal(lock(tbl, shared(0, 10)), OK);
  wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(lock(tbl, shared(0, 10, { handle: 3 })), VIOLATION);
  t.equal(lock(tbl, shared(9, 1, { handle: 3 })), VIOLATION);
  t.equal(lock(tbl, shared(10, 10, { handle: 3 })), OK); // no conflict with the waiter
  t.strictSame(
    ls(tbl),
    lines('shared 0-9 1 pid=0 granted', 'exclusive 0-9 2 pid=0 waiting', 'shared 10-19 3 pid=0 granted'),
  );
  const dflt = table();
  t.equal(lock(dflt, shared(0, 10)), OK);
  wait(dflt, exclusive(0, 10, { handle: 2 }));
  t.equal(lock(dflt, shared(0, 10, { handle: 3 })), OK);
});

t.test('§9 fifo: a waiter counts as a granted lock under §4, so shared requests pass a shared waiter', async (t) => {
  const tbl = table('fifo');
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  wait(tbl, shared(5, 10, { handle: 2 })); // [5, 14]
  t.equal(lock(tbl, shared(12, 5, { handle: 3 })), OK);
  t.equal(lock(tbl, exclusive(14, 5, { handle: 4 })), VIOLATION); // meets the shared waiter
  t.equal(lock(tbl, exclusive(15, 5, { handle: 4 })), VIOLATION); // meets handle 3's shared lock
  t.equal(lock(tbl, exclusive(17, 5, { handle: 4 })), OK);
  t.strictSame(
    ls(tbl),
    lines('exclusive 0-9 1 pid=0 granted', 'shared 12-16 3 pid=0 granted', 'exclusive 17-21 4 pid=0 granted', 'shared 5-14 2 pid=0 waiting'),
  );
});

t.test('§9 fifo: in the pass a waiter still queued holds back later waiters that conflict with it', async (t) => {
  for (const policy of ['fifo', 'default'] as const) {
    const tbl = table(policy);
    const order: string[] = [];
    t.equal(lock(tbl, exclusive(0, 10)), OK);
    t.equal(lock(tbl, exclusive(20, 10, { handle: 5 })), OK);
    wait(tbl, exclusive(5, 20, { handle: 2 }), order, 'h2'); // [5, 24]: needs both gone
    wait(tbl, exclusive(0, 8, { handle: 3 }), order, 'h3'); // [0, 7]: needs handle 1 gone; meets h2
    t.equal(unlock(tbl, 0, 10), OK);
    t.strictSame(order, policy === 'fifo' ? [] : ['h3:0'], `${policy}: after handle 1 unlocks`);
    if (policy === 'default') continue;
    t.equal(unlock(tbl, 20, 10, { handle: 5 }), OK);
    t.strictSame(order, ['h2:0']);
    t.equal(unlock(tbl, 5, 20, { handle: 2 }), OK);
    t.strictSame(order, ['h2:0', 'h3:0']);
    t.strictSame(ls(tbl), ['exclusive 0-7 3 pid=0 granted']);
  }
});

t.test('§9 fifo: cancel, timeout and veto shorten the queue and run a pass', async (t) => {
  for (const reason of ['abort', 'timeout'] as const) {
    const tbl = table('fifo');
    t.equal(lock(tbl, shared(0, 10)), OK);
    const b = wait(tbl, exclusive(0, 10, { handle: 2 }));
    const c = wait(tbl, shared(0, 10, { handle: 3 }));
    t.equal(await tbl.cancel(b.pending, reason), true);
    t.strictSame(b.results, [reason === 'abort' ? ABORTED : VIOLATION]);
    t.strictSame(c.results, [OK], `${reason} lets the shared request in`);
    t.strictSame(ls(tbl), lines('shared 0-9 1 pid=0 granted', 'shared 0-9 3 pid=0 granted'));
  }
  const r = recorded((e) => (e.handle === 2 ? 5 : 0), 'fifo');
  t.equal(lock(r.table, exclusive(0, 10)), OK);
  const b = wait(r.table, exclusive(0, 10, { handle: 2 }));
  const c = wait(r.table, shared(5, 10, { handle: 3 }));
  t.equal(unlock(r.table, 0, 10), OK);
  t.strictSame(b.results, [5]);
  t.strictSame(c.results, [OK]);
  t.strictSame(ls(r.table), ['shared 5-14 3 pid=0 granted']);
});

t.test('§9 fifo exemption: an owner holding a granted lock on the file is checked against granted locks only', async (t) => {
  const tbl = table('fifo');
  t.equal(lock(tbl, shared(0, 10)), OK);
  wait(tbl, exclusive(0, 10, { handle: 2 }));
  t.equal(lock(tbl, shared(0, 10)), OK); // stacks behind the queued writer instead of waiting for itself
  t.equal(lock(tbl, shared(5, 3)), OK);
  // Holding nothing, or being another owner of the same handle, gives no exemption. A second handle
  // of the same thread is where 'fifo' can hang (the table in §9).
  t.equal(lock(tbl, shared(0, 10, { handle: 3 })), VIOLATION);
  t.equal(lock(tbl, shared(0, 10, { key: 1 })), VIOLATION);
  t.equal(lock(tbl, shared(0, 10, { processId: 2 })), VIOLATION);
  t.strictSame(
    ls(tbl),
    lines('shared 0-9 1 pid=0 granted', 'shared 0-9 1 pid=0 granted', 'shared 5-7 1 pid=0 granted', 'exclusive 0-9 2 pid=0 waiting'),
  );
});

t.test('§9 fifo exemption holds in the pass too', async (t) => {
  const tbl = table('fifo');
  t.equal(lock(tbl, shared(0, 10)), OK);
  t.equal(lock(tbl, shared(60, 5)), OK);
  t.equal(lock(tbl, exclusive(40, 10, { handle: 3 })), OK);
  const w2 = wait(tbl, exclusive(0, 50, { handle: 2 })); // blocked by handles 1 and 3
  const w1 = wait(tbl, exclusive(5, 3)); // blocked by its own shared (0, 10)
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(w2.results, []);
  t.strictSame(w1.results, [OK]); // handle 1 still holds (60, 5): it passes the queued waiter
  t.strictSame(
    ls(tbl),
    lines('shared 60-64 1 pid=0 granted', 'exclusive 40-49 3 pid=0 granted', 'exclusive 5-7 1 pid=0 granted', 'exclusive 0-49 2 pid=0 waiting'),
  );
});

// =================================================================================================
// §10 Close and unlock-all
// =================================================================================================

t.test('§10 closeHandle releases every lock of the handle, any processId or key; other handles and files keep theirs (LOCKTEST4)', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, exclusive(20, 10, { processId: 2 })), OK);
  t.equal(lock(tbl, shared(40, 10, { key: 3 })), OK);
  t.equal(lock(tbl, shared(40, 0, { processId: 4, key: 5 })), OK);
  t.equal(lock(tbl, exclusive(60, 10, { handle: 2 })), OK);
  t.equal(lock(tbl, exclusive(0, 10, { fileName: G })), OK);
  t.equal(now(tbl.closeHandle(closeReq(1))), 'nothing');
  t.strictSame(ls(tbl), ['exclusive 60-69 2 pid=0 granted']);
  t.strictSame(ls(tbl, G), ['exclusive 0-9 1 pid=0 granted']);
  t.equal(lock(tbl, exclusive(0, 60, { handle: 3 })), OK);
  t.equal(now(tbl.closeHandle(closeReq(9))), 'nothing'); // a handle with nothing
  t.equal(now(tbl.closeHandle(closeReq(1, 'C:\\nowhere'))), 'nothing');
});

t.test('§10 closeHandle ends the handle\'s waiters with 158, even one its own release would let in ("cancel by close")', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { handle: 2 })), OK);
  const blockedByOther = wait(tbl, exclusive(0, 10, { processId: 5 }));
  t.equal(lock(tbl, shared(20, 10)), OK);
  const blockedBySelf = wait(tbl, exclusive(20, 10, { key: 6 }));
  const otherHandle = wait(tbl, shared(0, 10, { handle: 3 }));
  tbl.closeHandle(closeReq(1));
  t.strictSame(blockedByOther.results, [NOT_LOCKED]);
  t.strictSame(blockedBySelf.results, [NOT_LOCKED]);
  t.strictSame(otherHandle.results, []);
  t.strictSame(ls(tbl), lines('exclusive 0-9 2 pid=0 granted', 'shared 0-9 3 pid=0 waiting'));
});

t.test('§10 closeHandle then grants the waiters that now fit, in arrival order', async (t) => {
  const tbl = table();
  const order: string[] = [];
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, exclusive(20, 10)), OK);
  wait(tbl, exclusive(5, 20, { handle: 3 }), order, 'h3'); // [5, 24]
  wait(tbl, exclusive(0, 10, { handle: 4 }), order, 'h4'); // meets h3 once granted
  wait(tbl, exclusive(25, 5, { handle: 5 }), order, 'h5'); // fits beside h3
  tbl.closeHandle(closeReq(1));
  t.strictSame(order, ['h3:0', 'h5:0']);
  t.strictSame(
    ls(tbl),
    lines('exclusive 5-24 3 pid=0 granted', 'exclusive 25-29 5 pid=0 granted', 'exclusive 0-9 4 pid=0 waiting'),
  );
});

t.test('§10 closeHandle fires released once per released record with that record\'s range, then runs the pass', async (t) => {
  const r = recorded();
  t.equal(lock(r.table, exclusive(0, 10)), OK);
  t.equal(lock(r.table, shared(0, 10)), OK);
  t.equal(lock(r.table, shared(20, 0, { processId: 2, key: 3 })), OK);
  t.equal(lock(r.table, shared(40, 10, { handle: 2 })), OK);
  wait(r.table, exclusive(40, 10)); // handle 1's waiter: ended, not released
  const w = wait(r.table, exclusive(0, 5, { handle: 3 }));
  r.log.length = 0;
  r.table.closeHandle(closeReq(1));
  t.equal(r.released.length, 3);
  t.strictSame(r.log.slice(0, 3).sort(), ['released h=1 0+10', 'released h=1 0+10', 'released h=1 20+0 pid=2 key=3']);
  t.strictSame(r.log.slice(3), ['approve h=3 0+5 x']);
  t.strictSame(w.results, [OK]);
});

t.test('§10 unlock-all (-1, -1) removes every lock of (handle, processId) whatever the key, and returns 0 even if none', async (t) => {
  const tbl = table();
  t.equal(unlock(tbl, -1, -1), OK); // nothing anywhere
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(lock(tbl, exclusive(20, 10, { key: 5 })), OK);
  t.equal(lock(tbl, exclusive(40, 10, { processId: 2 })), OK);
  t.equal(lock(tbl, exclusive(60, 10, { handle: 2 })), OK);
  t.equal(lock(tbl, exclusive(0, 10, { fileName: G })), OK);
  t.equal(unlock(tbl, -1, -1, { key: 9 }), OK);
  t.strictSame(ls(tbl), lines('exclusive 40-49 1 pid=2 granted', 'exclusive 60-69 2 pid=0 granted'));
  t.strictSame(ls(tbl, G), ['exclusive 0-9 1 pid=0 granted']);
  t.equal(unlock(tbl, -1, -1), OK); // again: none left
  t.equal(unlock(tbl, -1n, -1n, { processId: 2 }), OK);
  t.equal(unlock(tbl, U64, U64, { handle: 2 }), OK); // the unsigned spelling
  t.strictSame(ls(tbl), []);
});

t.test('§10 only -1/-1 together is unlock-all: (-1, 0) and (0, -1) are ordinary ranges', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  t.equal(unlock(tbl, -1, 0), NOT_LOCKED);
  t.equal(unlock(tbl, 0, -1), NOT_LOCKED);
  t.strictSame(ls(tbl), ['exclusive 0-9 1 pid=0 granted']);
  t.equal(lock(tbl, shared(0, -1, { handle: 2 })), VIOLATION);
  t.equal(lock(tbl, shared(0, -1, { fileName: G })), OK);
  t.equal(unlock(tbl, 0, -1, { fileName: G }), OK);
  t.strictSame(ls(tbl, G), []);
});

t.test('§10 unlock-all leaves waiters waiting, then runs a pass', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, shared(0, 10)), OK);
  t.equal(lock(tbl, shared(20, 10)), OK);
  const own = wait(tbl, exclusive(0, 30));
  t.equal(unlock(tbl, -1, -1), OK);
  t.strictSame(own.results, [OK]);
  t.strictSame(ls(tbl), ['exclusive 0-29 1 pid=0 granted']);
});

t.test('§10 unlock-all fires released once per record', async (t) => {
  const r = recorded();
  t.equal(lock(r.table, exclusive(0, 10)), OK);
  t.equal(lock(r.table, shared(0, 10)), OK);
  t.equal(lock(r.table, exclusive(30, 0, { key: 4 })), OK);
  t.equal(lock(r.table, exclusive(50, 1, { processId: 2 })), OK);
  r.log.length = 0;
  t.equal(unlock(r.table, -1, -1), OK);
  t.strictSame(r.log.sort(), ['released h=1 0+10', 'released h=1 0+10', 'released h=1 30+0 pid=0 key=4']);
});

// =================================================================================================
// API: listing and malformed input
// =================================================================================================

t.test('API locks(): one entry per granted or waiting lock with path, kind, type, start, end, owner, pid, state', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10, { processId: 42 })), OK);
  t.equal(lock(tbl, shared(5, 0, { fileName: G, handle: 'a', processId: 7 })), OK);
  wait(tbl, shared(0, 10, { handle: 2n, processId: 3 }));
  const pickEntry = (e: object) => pick(e as Event, ['path', 'kind', 'type', 'start', 'end', 'owner', 'pid', 'state']);
  const a = { path: F, kind: 'windows', type: 'exclusive', start: 0n, end: 9n, owner: 1, pid: 42, state: 'granted' };
  const b = { path: F, kind: 'windows', type: 'shared', start: 0n, end: 9n, owner: 2n, pid: 3, state: 'waiting' };
  const c = { path: G, kind: 'windows', type: 'shared', start: 5n, end: 4n, owner: 'a', pid: 7, state: 'granted' };
  const sortByOwner = (l: Record<string, unknown>[]) => l.sort((x, y) => own(x.owner).localeCompare(own(y.owner)));
  t.strictSame(sortByOwner(tbl.locks(F).map(pickEntry)), [a, b]);
  t.strictSame(tbl.locks(G).map(pickEntry), [c]);
  t.strictSame(sortByOwner(tbl.locks().map(pickEntry)), [c, a, b]);
  t.strictSame(tbl.locks('C:\\nowhere'), []);
});

t.test('API wrong types or missing fields throw a TypeError naming the field and leave the table unchanged', async (t) => {
  const tbl = table();
  t.equal(lock(tbl, exclusive(0, 10)), OK);
  const w = wait(tbl, shared(0, 10, { handle: 2 }));
  const before = tbl.locks();
  const base = exclusive(20, 10, { handle: 3 });
  const without = (o: Req, k: string): Req => {
    const c = { ...o };
    delete c[k];
    return c;
  };
  const bad: [call: string, field: string, run: () => unknown][] = [
    ['lockFile', 'byteOffset', () => tbl.lockFile({ ...base, byteOffset: '5' })],
    ['lockFile', 'byteOffset', () => tbl.lockFile({ ...base, byteOffset: 1.5 })],
    ['lockFile', 'byteOffset', () => tbl.lockFile({ ...base, byteOffset: 2 ** 53 })],
    ['lockFile', 'byteOffset', () => tbl.lockFile(without(base, 'byteOffset'))],
    ['lockFile', 'length', () => tbl.lockFile({ ...base, length: '10' })],
    ['lockFile', 'length', () => tbl.lockFile({ ...base, length: null })],
    ['lockFile', 'exclusiveLock', () => tbl.lockFile({ ...base, exclusiveLock: 1 })],
    ['lockFile', 'exclusiveLock', () => tbl.lockFile(without(base, 'exclusiveLock'))],
    ['lockFile', 'failImmediately', () => tbl.lockFile({ ...base, failImmediately: 'yes' })],
    ['lockFile', 'failImmediately', () => tbl.lockFile(without(base, 'failImmediately'))],
    ['lockFile', 'handle', () => tbl.lockFile({ ...base, handle: {} })],
    ['lockFile', 'handle', () => tbl.lockFile({ ...base, handle: 1.5 })],
    ['lockFile', 'handle', () => tbl.lockFile(without(base, 'handle'))],
    ['lockFile', 'processId', () => tbl.lockFile({ ...base, processId: {} })],
    ['lockFile', 'key', () => tbl.lockFile({ ...base, key: true })],
    ['lockFile', 'fileName', () => tbl.lockFile(without(base, 'fileName'))],
    ['lockFile', 'fileName', () => tbl.lockFile({ ...base, fileName: 5 })],
    ['unlockFile', 'fileName', () => tbl.unlockFile(without(unlockReq(0, 10), 'fileName'))],
    ['unlockFile', 'handle', () => tbl.unlockFile(without(unlockReq(0, 10), 'handle'))],
    ['unlockFile', 'byteOffset', () => tbl.unlockFile(unlockReq('0' as unknown as number, 10))],
    ['unlockFile', 'length', () => tbl.unlockFile(without(unlockReq(0, 10), 'length'))],
    ['unlockFile', 'processId', () => tbl.unlockFile(unlockReq(0, 10, { processId: [] as unknown as number }))],
    ['unlockFile', 'key', () => tbl.unlockFile(unlockReq(0, 10, { key: 0.5 }))],
    ['closeHandle', 'fileName', () => tbl.closeHandle({ handle: 1 })],
    ['closeHandle', 'handle', () => tbl.closeHandle({ fileName: F, handle: {} })],
    ['closeHandle', 'handle', () => tbl.closeHandle({ fileName: F })],
    ['checkIo', 'write', () => tbl.checkIo(without(ioReq(true, 0, 10, { handle: 2 }), 'write'))],
    ['checkIo', 'write', () => tbl.checkIo({ ...ioReq(true, 0, 10, { handle: 2 }), write: 1 })],
    ['checkIo', 'byteOffset', () => tbl.checkIo(ioReq(true, '0' as unknown as number, 10, { handle: 2 }))],
    ['checkIo', 'handle', () => tbl.checkIo(without(ioReq(true, 0, 10), 'handle'))],
    ['checkIo', 'fileName', () => tbl.checkIo(without(ioReq(true, 0, 10), 'fileName'))],
  ];
  for (const [call, field, run] of bad) {
    t.throws(run, { name: 'TypeError', message: new RegExp(`\\b${field}\\b`) }, `${call}: ${field}`);
  }
  for (const call of ['lockFile', 'unlockFile', 'closeHandle', 'checkIo'] as const) {
    t.throws(() => tbl[call](null), TypeError, `${call}(null)`);
  }
  t.strictSame(tbl.locks(), before);
  t.strictSame(w.results, []);
  // The table keeps serving.
  t.equal(unlock(tbl, 0, 10), OK);
  t.strictSame(w.results, [OK]);
});
