/**
 * Acceptance tests of the public API (API.md) as an outside user calls it: LockCoordinator and the
 * exported constants, through worker threads. Every check states an exact result or listing.
 */
import t, { type Test as TapTest } from 'tap';
import { availableParallelism } from 'node:os';
import * as api from '../../src/index.js';
import { LockCoordinator } from '../../src/index.js';
import { lines, settles, sleep, stillPending, track, waitFor } from './helpers.js';

type Req = Record<string, unknown>;
type Coord = LockCoordinator;
type Test = TapTest;

const { F_RDLCK, F_WRLCK, F_UNLCK, F_GETLK, F_SETLK, F_SETLKW, EAGAIN, EINTR, EINVAL, EOVERFLOW, ENOLCK } = api;
/** OFFSET_MAX written out, so the exported constant is checked against the number, not itself. */
const MAX = (1n << 63n) - 1n;
const U64 = (1n << 64n) - 1n;

/**
 * Starting workers under tap's TypeScript loader costs about a second, so the plain functional
 * tests share one coordinator (workers: 2), each on its own file names; tests that need options,
 * fresh counters or a stop start their own.
 */
const shared = await LockCoordinator.start({ workers: 2 });
t.teardown(() => shared.stop());

let views = 0;

/**
 * The shared coordinator as one test sees it: its file names get a prefix of their own (so tests
 * cannot see each other's locks) and listings come back with the prefix removed.
 */
function view(): Coord {
  const prefix = `/t${++views}`;
  const mapReq = (r: unknown): unknown => {
    if (typeof r !== 'object' || r === null) return r;
    const o = { ...(r as Req) };
    if (typeof o.fileName === 'string') o.fileName = prefix + o.fileName;
    if (typeof o.path === 'string') o.path = prefix + o.path;
    return o;
  };
  const c = shared;
  const v = {
    lockFile: (r: unknown) => c.lockFile(mapReq(r)),
    unlockFile: (r: unknown) => c.unlockFile(mapReq(r)),
    closeHandle: (r: unknown) => c.closeHandle(mapReq(r)),
    checkIo: (r: unknown) => c.checkIo(mapReq(r)),
    lock: (r: unknown) => c.lock(mapReq(r)),
    flush: (r: unknown) => c.flush(mapReq(r)),
    release: (r: unknown) => c.release(mapReq(r)),
    locks: async (path?: unknown) => {
      const all = await c.locks((typeof path === 'string' ? prefix + path : path) as string | undefined);
      return all.filter((e) => e.path.startsWith(prefix + '/')).map((e) => ({ ...e, path: e.path.slice(prefix.length) }));
    },
    stats: () => c.stats(),
    stop: () => Promise.reject(new Error('a view cannot stop the shared coordinator')),
  };
  return v as unknown as Coord;
}

async function start(t: Test, opts?: Record<string, unknown>): Promise<Coord> {
  const c = await LockCoordinator.start(opts as never);
  t.teardown(() => c.stop());
  return c;
}

/** A Windows lock request: exclusive (0, 10) on /w, fail-immediately, handle 1, unless overridden. */
function win(over: Req = {}): Req {
  return { fileName: '/w', byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: 1, ...over };
}

function unl(over: Req = {}): Req {
  return { fileName: '/w', byteOffset: 0, length: 10, handle: 1, ...over };
}

/** A POSIX request: F_SETLK F_WRLCK [0, 9] on /p by posix owner 1, unless overridden. */
function px(over: Req = {}): Req {
  return { path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1, ...over };
}

function reply(result: number, lockType: number, lockStart: bigint | number, lockLen: bigint | number, lockPid = 0) {
  return { result, lockType, lockStart: BigInt(lockStart), lockLen: BigInt(lockLen), lockPid };
}

async function ls(c: Coord, path?: string): Promise<string[]> {
  return lines((await c.locks(path)) as never);
}

/** Waits until `path` lists exactly `n` waiting entries (a request is known to be queued). */
async function queued(c: Coord, path: string, n: number): Promise<void> {
  await waitFor(async () => (await c.locks(path)).filter((e) => e.state === 'waiting').length === n, `${n} waiter(s) on ${path}`);
}

// ---- starting and stopping ----------------------------------------------------------------------

t.test('start with default workers (the available parallelism); stop twice; every call after stop rejects', async (t) => {
  t.equal((await shared.stats()).workers.length, 2, 'workers: 2 gives two workers');
  const c = await LockCoordinator.start();
  t.equal((await c.stats()).workers.length, availableParallelism(), 'default: available parallelism');
  t.equal(await c.lockFile(win()), 0, 'a started coordinator serves');
  t.equal((await c.lock(px())).result, 0);
  const p1 = c.stop();
  const p2 = c.stop();
  await p1;
  await p2;
  t.equal(await c.stop(), undefined, 'stop() resolves again, a third time');
  const calls: [string, () => Promise<unknown>][] = [
    ['lockFile', () => c.lockFile(win())],
    ['unlockFile', () => c.unlockFile(unl())],
    ['closeHandle', () => c.closeHandle({ fileName: '/w', handle: 1 })],
    ['checkIo', () => c.checkIo({ fileName: '/w', handle: 1, byteOffset: 0, length: 1, write: true })],
    ['lock', () => c.lock(px())],
    ['lock F_GETLK', () => c.lock(px({ cmd: F_GETLK }))],
    ['flush', () => c.flush({ path: '/p', lockOwner: 1 })],
    ['release', () => c.release({ path: '/p', fileHandle: 1 })],
    ['locks', () => c.locks()],
    ['stats', () => c.stats()],
  ];
  for (const [name, f] of calls) {
    const r = await settles(f().then((v) => ({ resolved: v }), (e: unknown) => ({ rejected: e })), `${name} after stop`);
    t.pass(`${name} settles after stop`);
    const e = (r as { rejected?: unknown }).rejected;
    t.ok(e instanceof Error, `${name} rejects with an Error after stop`);
    t.match(String((e as Error | undefined)?.message), /stop/i, `${name}: the message says the coordinator is stopped`);
  }
});

t.test('start rejects bad options with a TypeError naming the option', async (t) => {
  await t.rejects(LockCoordinator.start({ workers: 0 }), { name: 'TypeError', message: /workers/ });
  await t.rejects(LockCoordinator.start({ workers: 1.5 }), { name: 'TypeError', message: /workers/ });
  await t.rejects(LockCoordinator.start({ onLockFile: () => 0 }), { name: 'TypeError', message: /onUnlockFile/ }, 'onLockFile without onUnlockFile');
  await t.rejects(LockCoordinator.start({ onUnlockFile: () => undefined }), { name: 'TypeError', message: /onLockFile/ }, 'onUnlockFile without onLockFile');
  await t.rejects(LockCoordinator.start({ onLock: 5 as never }), { name: 'TypeError', message: /onLock/ });
});

// ---- constants ------------------------------------------------------------------------------------

t.test('exported constants', async (t) => {
  const a = api as unknown as Record<string, unknown>;
  t.equal(a.ERROR_LOCK_VIOLATION, 33);
  t.equal(a.ERROR_INVALID_PARAMETER, 87);
  t.equal(a.ERROR_NOT_LOCKED, 158);
  t.equal(a.ERROR_INVALID_LOCK_RANGE, 307);
  t.equal(a.ERROR_OPERATION_ABORTED, 995);
  t.equal(a.EINTR, 4);
  t.equal(a.EAGAIN, 11);
  t.equal(a.EINVAL, 22);
  t.equal(a.EDEADLK, 35);
  t.equal(a.ENOLCK, 37);
  t.equal(a.EOVERFLOW, 75);
  t.equal(a.F_RDLCK, 0);
  t.equal(a.F_WRLCK, 1);
  t.equal(a.F_UNLCK, 2);
  t.equal(a.F_GETLK, 5);
  t.equal(a.F_SETLK, 6);
  t.equal(a.F_SETLKW, 7);
  t.equal(typeof a.OFFSET_MAX, 'bigint');
  t.equal(a.OFFSET_MAX, MAX);
  t.equal(typeof a.LockCoordinator, 'function');
});

// ---- Windows ----------------------------------------------------------------------------------------

t.test('Windows: lock, conflict, stacking, exact unlock, 158', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win()), 0, 'exclusive (0, 10) by handle 1');
  t.equal(await c.lockFile(win({ handle: 2 })), 33, 'another handle: conflict');
  t.equal(await c.lockFile(win({ handle: 2, exclusiveLock: false, byteOffset: 9, length: 1 })), 33, 'one overlapping byte suffices');
  t.equal(await c.lockFile(win({ handle: 2, byteOffset: 10, length: 5 })), 0, 'adjacent range does not overlap');
  t.equal(await c.lockFile(win({ exclusiveLock: true })), 33, 'an exclusive request conflicts with its own exclusive lock');
  t.equal(await c.lockFile(win({ exclusiveLock: false })), 0, 'a shared lock stacks on its own exclusive one');
  t.equal(await c.lockFile(win({ handle: 1, processId: 9 })), 33, 'another processId is another owner');
  t.strictSame(await ls(c, '/w'), [
    '/w windows exclusive 0-9 1 pid=0 granted',
    '/w windows exclusive 10-14 2 pid=0 granted',
    '/w windows shared 0-9 1 pid=0 granted',
  ]);
  t.equal(await c.unlockFile(unl({ length: 5 })), 158, 'sub-range: 158');
  t.equal(await c.unlockFile(unl({ length: 15 })), 158, 'super-range: 158');
  t.equal(await c.unlockFile(unl({ handle: 2 })), 158, 'another owner: 158');
  t.equal(await c.unlockFile(unl({ fileName: '/nothing' })), 158, 'no record at all: 158');
  t.equal(await c.unlockFile(unl()), 0, 'exact: 0 (removes the exclusive record first)');
  t.strictSame(await ls(c, '/w'), ['/w windows exclusive 10-14 2 pid=0 granted', '/w windows shared 0-9 1 pid=0 granted']);
  t.equal(await c.unlockFile(unl()), 0);
  t.equal(await c.unlockFile(unl()), 158, 'one unlock too many: 158');
  t.strictSame(await ls(c, '/w'), ['/w windows exclusive 10-14 2 pid=0 granted']);
});

t.test('Windows: 87 and 307, 64-bit offsets as bigint and as negative int64', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ byteOffset: 1n << 64n })), 87, 'offset above 2^64-1');
  t.equal(await c.lockFile(win({ byteOffset: -(1n << 63n) - 1n })), 87, 'offset below -2^63');
  t.equal(await c.lockFile(win({ length: 1n << 64n })), 87, 'length above 2^64-1');
  t.equal(await c.lockFile(win({ byteOffset: 2, length: -1 })), 307, 'wrapping range (length -1 = 2^64-1)');
  t.equal(await c.lockFile(win({ byteOffset: -1, length: -1 })), 307, '(-1, -1) on lockFile is an invalid range');
  t.equal(await c.lockFile(win({ byteOffset: U64, length: 2 })), 307);
  t.equal(await c.unlockFile(unl({ byteOffset: U64, length: 2 })), 307, 'unlockFile validates the range too');
  t.equal(await c.unlockFile(unl({ byteOffset: 1n << 64n })), 87);
  t.equal(await c.checkIo({ fileName: '/w', handle: 1, byteOffset: 1n << 64n, length: 1, write: false }), 87, 'checkIo: 87');
  t.strictSame(await c.locks('/w'), [], 'none of these changed anything');
  t.equal(await c.lockFile(win({ byteOffset: -2, length: 1 })), 0, '-2 is 2^64-2');
  t.equal(await c.lockFile(win({ byteOffset: U64, length: 1, handle: 3 })), 0, '(2^64-1, 1) is valid');
  t.equal(await c.lockFile(win({ byteOffset: U64 - 1n, length: 1, handle: 2 })), 33, 'the bigint spelling is the same byte');
  t.strictSame(await ls(c, '/w'), [
    `/w windows exclusive ${U64 - 1n}-${U64 - 1n} 1 pid=0 granted`,
    `/w windows exclusive ${U64}-${U64} 3 pid=0 granted`,
  ]);
  const listed = await c.locks('/w');
  t.equal(typeof listed[0]!.start, 'bigint', 'listings carry bigint');
  t.equal(await c.unlockFile(unl({ byteOffset: U64 - 1n, length: 1n })), 0, 'unlock with the bigint spelling');
});

t.test('Windows: checkIo (mandatory locking)', async (t) => {
  const c = view();
  const io = (over: Req) => c.checkIo({ fileName: '/w', handle: 1, byteOffset: 0, length: 10, write: false, ...over });
  t.equal(await c.lockFile(win({ byteOffset: 0, length: 10, handle: 1 })), 0, 'exclusive [0, 9] by 1');
  t.equal(await c.lockFile(win({ byteOffset: 20, length: 10, handle: 1, exclusiveLock: false })), 0, 'shared [20, 29] by 1');
  t.equal(await io({}), 0, 'own exclusive: read allowed');
  t.equal(await io({ write: true }), 0, 'own exclusive: write allowed');
  t.equal(await io({ handle: 2 }), 33, "another's exclusive: read refused");
  t.equal(await io({ handle: 2, write: true }), 33, "another's exclusive: write refused");
  t.equal(await io({ handle: 2, byteOffset: 9, length: 1 }), 33, 'one overlapping byte suffices');
  t.equal(await io({ handle: 2, byteOffset: 10, length: 10 }), 0, 'no overlap');
  t.equal(await io({ byteOffset: 20, write: false }), 0, 'shared: read allowed');
  t.equal(await io({ byteOffset: 20, write: true }), 33, 'shared blocks writes through its own handle too');
  t.equal(await io({ handle: 2, byteOffset: 20, write: true }), 33);
  t.equal(await io({ handle: 2, byteOffset: 5, length: 0, write: true }), 0, 'zero-length I/O is always allowed');
  t.equal(await io({ handle: 1, processId: 5 }), 33, 'the I/O owner includes processId');
  // A waiting request is not a lock.
  t.equal(await c.lockFile(win({ handle: 4, byteOffset: 40, length: 10 })), 0);
  const w = c.lockFile(win({ handle: 5, byteOffset: 45, length: 10, failImmediately: false }));
  await queued(c, '/w', 1);
  t.equal(await io({ handle: 2, byteOffset: 50, length: 5, write: true }), 0, 'a waiting request does not affect checkIo');
  t.equal(await io({ handle: 2, byteOffset: 45, length: 1, write: false }), 33, 'the granted one does');
  t.equal(await c.unlockFile(unl({ handle: 4, byteOffset: 40, length: 10 })), 0);
  t.equal(await w, 0);
  t.equal(await io({ handle: 2, byteOffset: 50, length: 5, write: false }), 33, 'once granted, it counts');
});

t.test('Windows: unlock-all (-1, -1) removes every lock of (handle, processId) whatever the key', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ handle: 1, processId: 10, key: 1, byteOffset: 0, length: 5 })), 0);
  t.equal(await c.lockFile(win({ handle: 1, processId: 10, key: 2, byteOffset: 5, length: 5 })), 0);
  t.equal(await c.lockFile(win({ handle: 1, processId: 10, byteOffset: 10, length: 5, exclusiveLock: false })), 0);
  t.equal(await c.lockFile(win({ handle: 1, processId: 11, byteOffset: 20, length: 5 })), 0);
  t.equal(await c.lockFile(win({ handle: 2, processId: 10, byteOffset: 30, length: 5 })), 0);
  t.equal(await c.unlockFile({ fileName: '/w', handle: 1, processId: 10, byteOffset: -1, length: -1 }), 0);
  t.strictSame(await ls(c, '/w'), ['/w windows exclusive 20-24 1 pid=11 granted', '/w windows exclusive 30-34 2 pid=10 granted']);
  t.equal(await c.unlockFile({ fileName: '/w', handle: 1, processId: 10, byteOffset: -1, length: -1 }), 0, 'returns 0 with nothing to unlock');
  t.equal(await c.unlockFile({ fileName: '/none', handle: 1, byteOffset: -1n, length: -1n }), 0, 'returns 0 on an unknown file');
  t.equal(await c.lockFile(win({ handle: 9, byteOffset: 0, length: 20 })), 0, 'the freed range is free for another owner');
});

t.test('Windows: closeHandle releases the handle and ends its waiters with 158; others are granted', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ handle: 1, processId: 1 })), 0);
  t.equal(await c.lockFile(win({ handle: 1, processId: 2, key: 3, byteOffset: 50, length: 1 })), 0);
  const own = c.lockFile(win({ handle: 1, failImmediately: false, byteOffset: 100, length: 1 }));
  t.equal(await own, 0, 'free range granted');
  const selfWait = c.lockFile(win({ handle: 1, processId: 1, failImmediately: false }));
  const other = c.lockFile(win({ handle: 2, failImmediately: false }));
  await queued(c, '/w', 2);
  const r = await c.closeHandle({ fileName: '/w', handle: 1 });
  t.equal(r, undefined, 'closeHandle resolves to undefined');
  t.equal(await selfWait, 158, "the closed handle's waiter ends with 158");
  t.equal(await other, 0, "another handle's waiter is granted");
  t.strictSame(await ls(c, '/w'), ['/w windows exclusive 0-9 2 pid=0 granted'], 'every lock of handle 1 went, any processId or key');
  await c.closeHandle({ fileName: '/unknown', handle: 1 });
  t.pass('closeHandle of an unknown file resolves');
});

t.test('Windows: waiting requests are granted in arrival order when the blocker unlocks', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ handle: 1 })), 0);
  const order: string[] = [];
  const ws = [2, 3, 4].map((h) => track(c.lockFile(win({ handle: h, failImmediately: false })), order, `h${h}`));
  await queued(c, '/w', 3);
  t.ok(await stillPending(ws[0]!), 'waiters wait');
  t.equal(await c.unlockFile(unl({ handle: 1 })), 0);
  t.equal(await ws[0], 0);
  t.strictSame(order, ['h2'], 'only the first waiter is granted');
  t.ok(await stillPending(ws[1]!));
  t.equal(await c.unlockFile(unl({ handle: 2 })), 0);
  t.equal(await ws[1], 0);
  t.equal(await c.unlockFile(unl({ handle: 3 })), 0);
  t.equal(await ws[2], 0);
  t.strictSame(order, ['h2', 'h3', 'h4']);
  // Shared waiters behind one exclusive lock are all granted by its unlock.
  const shared = [5, 6, 7].map((h) => c.lockFile(win({ handle: h, exclusiveLock: false, failImmediately: false })));
  await queued(c, '/w', 3);
  t.equal(await c.unlockFile(unl({ handle: 4 })), 0);
  t.strictSame(await Promise.all(shared), [0, 0, 0]);
  t.strictSame(await ls(c, '/w'), [
    '/w windows shared 0-9 5 pid=0 granted',
    '/w windows shared 0-9 6 pid=0 granted',
    '/w windows shared 0-9 7 pid=0 granted',
  ]);
});

// ---- POSIX --------------------------------------------------------------------------------------------

t.test('POSIX: F_SETLK, F_GETLK replies, lockLen 0, negative lockLen', async (t) => {
  const c = view();
  t.strictSame(await c.lock(px({ lockPid: 100 })), reply(0, F_WRLCK, 0, 10, 100));
  t.strictSame(await c.lock(px({ lockOwner: 2, cmd: F_GETLK, lockStart: 5, lockLen: 1, lockPid: 200 })), reply(0, F_WRLCK, 0, 10, 100));
  t.strictSame(await c.lock(px({ lockOwner: 2, lockType: F_RDLCK, lockStart: 5, lockLen: 1 })), reply(-EAGAIN, F_RDLCK, 5, 1), 'F_SETLK conflict echoes the request');
  t.strictSame(
    await c.lock(px({ lockOwner: 2, cmd: F_GETLK, lockStart: 10n, lockLen: 5n, lockPid: 200 })),
    reply(0, F_UNLCK, 10, 5, 200),
    'no conflict: F_UNLCK, other fields as passed',
  );
  t.strictSame(await c.lock(px({ cmd: F_GETLK })), reply(0, F_UNLCK, 0, 10), 'own locks never show');
  t.strictSame(await c.lock(px({ lockOwner: 3, lockStart: 100, lockLen: 0, lockPid: 300 })), reply(0, F_WRLCK, 100, 0, 300));
  t.strictSame(await c.lock(px({ lockOwner: 2, cmd: F_GETLK, lockStart: 1n << 40n, lockLen: 1 })), reply(0, F_WRLCK, 100, 0, 300), 'lockLen 0 to OFFSET_MAX');
  t.strictSame(await c.lock(px({ lockOwner: 4, lockStart: 60, lockLen: -10, lockPid: 400 })), reply(0, F_WRLCK, 60, -10, 400));
  t.strictSame(await c.lock(px({ lockOwner: 2, cmd: F_GETLK, lockStart: 50, lockLen: 1 })), reply(0, F_WRLCK, 50, 10, 400), 'negative lockLen covers the bytes before');
  t.strictSame(await ls(c, '/p'), [
    '/p posix write 0-9 1 pid=100 granted',
    `/p posix write 100-${MAX} 3 pid=300 granted`,
    '/p posix write 50-59 4 pid=400 granted',
  ]);
  // Merge and split of one owner's locks.
  t.strictSame(await c.lock(px({ lockStart: 10, lockLen: 10, lockPid: 100 })), reply(0, F_WRLCK, 10, 10, 100));
  t.strictSame(await c.lock(px({ lockType: F_RDLCK, lockStart: 5, lockLen: 5, lockPid: 100 })), reply(0, F_RDLCK, 5, 5, 100));
  t.strictSame((await ls(c, '/p')).filter((l) => l.includes(' 1 pid')), [
    '/p posix read 5-9 1 pid=100 granted',
    '/p posix write 0-4 1 pid=100 granted',
    '/p posix write 10-19 1 pid=100 granted',
  ]);
  t.strictSame(await c.lock(px({ lockType: F_UNLCK, lockStart: 0, lockLen: 0 })), reply(0, F_UNLCK, 0, 0), 'unlock everything of owner 1');
  t.strictSame(await c.lock(px({ lockType: F_UNLCK, lockOwner: 9 })), reply(0, F_UNLCK, 0, 10), 'unlocking nothing succeeds');
});

t.test('POSIX: -EINVAL and -EOVERFLOW change nothing', async (t) => {
  const c = view();
  t.equal((await c.lock(px({ lockOwner: 9, lockType: F_RDLCK }))).result, 0);
  const before = await ls(c);
  t.strictSame(await c.lock(px({ lockStart: -1, lockLen: 1 })), reply(-EINVAL, F_WRLCK, -1, 1));
  t.strictSame(await c.lock(px({ lockStart: 10, lockLen: -11 })), reply(-EINVAL, F_WRLCK, 10, -11));
  t.equal((await c.lock(px({ lockType: 3 }))).result, -EINVAL, 'bad lockType');
  t.equal((await c.lock(px({ cmd: 8 }))).result, -EINVAL, 'bad cmd');
  t.equal((await c.lock(px({ cmd: F_GETLK, lockType: F_UNLCK }))).result, -EINVAL, "F_GETLK with F_UNLCK for 'posix'");
  t.strictSame(await c.lock(px({ lockStart: MAX, lockLen: 2 })), reply(-EOVERFLOW, F_WRLCK, MAX, 2));
  t.equal((await c.lock(px({ lockStart: 1n, lockLen: MAX + 1n }))).result, -EOVERFLOW);
  t.equal((await c.lock(px({ lockStart: MAX + 1n, lockLen: 0 }))).result, -EOVERFLOW);
  t.equal((await c.lock(px({ cmd: F_SETLKW, lockStart: -1 }))).result, -EINVAL);
  t.strictSame(await ls(c), before);
  t.strictSame(await c.lock(px({ lockStart: MAX, lockLen: 1 })), reply(0, F_WRLCK, MAX, 1), 'a range ending exactly at OFFSET_MAX is valid');
  t.strictSame(await c.lock(px({ lockStart: 5, lockLen: 1 })), reply(-EAGAIN, F_WRLCK, 5, 1), 'the coordinator keeps serving');
});

t.test('POSIX: OFD reports pid -1; F_GETLK with F_UNLCK reports its own lock', async (t) => {
  const c = view();
  t.strictSame(await c.lock(px({ kind: 'ofd', lockOwner: 5, lockPid: 55, fileHandle: 'fh5' })), reply(0, F_WRLCK, 0, 10, 55));
  t.strictSame(await c.lock(px({ lockOwner: 2, cmd: F_GETLK, lockLen: 1, lockStart: 3 })), reply(0, F_WRLCK, 0, 10, -1), 'F_GETLK: pid -1 for an OFD holder');
  t.strictSame(await c.lock(px({ kind: 'ofd', lockOwner: 5, cmd: F_GETLK, lockType: F_UNLCK, lockStart: 5, lockLen: 1 })), reply(0, F_WRLCK, 0, 10, -1));
  t.strictSame(await ls(c, '/p'), ['/p ofd write 0-9 5 pid=-1 granted']);
  t.equal((await c.lock(px({ lockOwner: 5 }))).result, -EAGAIN, 'posix owner 5 is not OFD owner 5');
});

t.test('POSIX: F_SETLKW waits and is granted in arrival order', async (t) => {
  const c = view();
  t.equal((await c.lock(px())).result, 0);
  const order: string[] = [];
  const ws = [2, 3, 4].map((o) => track(c.lock(px({ lockOwner: o, cmd: F_SETLKW })), order, `o${o}`));
  await queued(c, '/p', 3);
  t.ok(await stillPending(ws[0]!));
  t.strictSame(await ls(c, '/p'), [
    '/p posix write 0-9 1 pid=0 granted',
    '/p posix write 0-9 2 pid=0 waiting',
    '/p posix write 0-9 3 pid=0 waiting',
    '/p posix write 0-9 4 pid=0 waiting',
  ]);
  t.equal((await c.lock(px({ lockType: F_UNLCK }))).result, 0);
  t.strictSame(await ws[0], reply(0, F_WRLCK, 0, 10));
  t.ok(await stillPending(ws[1]!), 'the second waiter still waits');
  await c.flush({ path: '/p', lockOwner: 2 });
  t.equal((await ws[1]!).result, 0);
  await c.flush({ path: '/p', lockOwner: 3 });
  t.equal((await ws[2]!).result, 0);
  t.strictSame(order, ['o2', 'o3', 'o4']);
});

t.test('POSIX: flock is whole-file, separate from fcntl locks; flush and release', async (t) => {
  const c = view();
  const fl = (over: Req) => c.lock({ path: '/p', kind: 'flock', lockType: F_RDLCK, cmd: F_SETLK, lockOwner: 1, ...over });
  t.equal((await fl({ lockOwner: 1, fileHandle: 'a' })).result, 0, 'LOCK_SH');
  t.equal((await fl({ lockOwner: 2 })).result, 0, 'LOCK_SH by another');
  t.equal((await fl({ lockOwner: 3, lockType: F_WRLCK })).result, -EAGAIN, 'LOCK_EX|LOCK_NB conflicts');
  t.equal((await fl({ lockOwner: 1, lockType: F_WRLCK, lockStart: 5, lockLen: 1 })).result, -EAGAIN, 'range ignored; conversion conflicts');
  t.equal((await c.lock(px({ lockOwner: 3 }))).result, 0, 'flock and fcntl locks do not see each other');
  t.equal((await c.lock(px({ lockOwner: 4, kind: 'ofd', lockStart: 20, fileHandle: 'h4' }))).result, 0);
  t.equal((await c.lock(px({ lockOwner: 3, lockStart: 40 }))).result, 0);
  t.equal((await c.lock(px({ lockOwner: 3, kind: 'ofd', lockStart: 60, fileHandle: 'h3' }))).result, 0, 'OFD owner 3');
  t.strictSame(await ls(c, '/p'), [
    `/p flock read 0-${MAX} 2 pid=0 granted`,
    '/p ofd write 20-29 4 pid=-1 granted',
    '/p ofd write 60-69 3 pid=-1 granted',
    '/p posix write 0-9 3 pid=0 granted',
    '/p posix write 40-49 3 pid=0 granted',
  ], "the failed LOCK_EX|LOCK_NB conversion dropped owner 1's LOCK_SH (not atomic, as on Linux)");
  await c.flush({ path: '/p', lockOwner: 3 });
  t.strictSame(await ls(c, '/p'), [
    `/p flock read 0-${MAX} 2 pid=0 granted`,
    '/p ofd write 20-29 4 pid=-1 granted',
    '/p ofd write 60-69 3 pid=-1 granted',
  ], "flush drops owner 3's posix locks only");
  t.equal((await fl({ lockOwner: 5, fileHandle: 'h4' })).result, 0);
  await c.release({ path: '/p', fileHandle: 'h4', lockOwner: 2 });
  t.strictSame(await ls(c, '/p'), ['/p ofd write 60-69 3 pid=-1 granted'], "release drops what h4 took and owner 2's flock");
  t.equal(await c.release({ path: '/p', fileHandle: 'h3' }), undefined);
  t.strictSame(await ls(c, '/p'), []);
});

// ---- both families ------------------------------------------------------------------------------------

t.test('POSIX: flush keeps the owner\'s waiting requests; release ends waiters through the handle with -EINTR', async (t) => {
  const c = view();
  t.equal((await c.lock(px({ lockOwner: 1 }))).result, 0);
  t.equal((await c.lock(px({ lockOwner: 2, lockStart: 50 }))).result, 0);
  const w2 = c.lock(px({ lockOwner: 2, cmd: F_SETLKW, lockPid: 2 }));
  await queued(c, '/p', 1);
  await c.flush({ path: '/p', lockOwner: 2 });
  t.ok(await stillPending(w2), "flush drops granted locks only: owner 2's waiting F_SETLKW keeps waiting");
  t.strictSame(await ls(c, '/p'), ['/p posix write 0-9 1 pid=0 granted', '/p posix write 0-9 2 pid=2 waiting']);
  const o3 = c.lock(px({ kind: 'ofd', lockOwner: 3, cmd: F_SETLKW, fileHandle: 'fh3', lockPid: 3 }));
  const o4 = c.lock(px({ kind: 'ofd', lockOwner: 4, cmd: F_SETLKW, fileHandle: 'fh4', lockPid: 4, lockStart: 5 }));
  await queued(c, '/p', 3);
  await c.release({ path: '/p', fileHandle: 'fh3' });
  t.strictSame(await o3, reply(-EINTR, F_WRLCK, 0, 10, 3), 'a waiter through the released handle ends with -EINTR');
  t.ok(await stillPending(o4), 'a waiter through another handle keeps waiting');
  await c.flush({ path: '/p', lockOwner: 1 });
  t.equal((await w2).result, 0, 'owner 2 is granted first (arrival order)');
  t.ok(await stillPending(o4));
  await c.flush({ path: '/p', lockOwner: 2 });
  t.equal((await o4).result, 0);
  await c.release({ path: '/p', fileHandle: 'fh4' });
  t.strictSame(await c.locks('/p'), []);
});

t.test('Windows: unlockFile never matches a waiting request; a late abort or timeout changes nothing', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ handle: 1 })), 0);
  const ac = new AbortController();
  // No timeoutMs on this waiter: its grant takes a few round trips, and on a busy machine those
  // could outlast any short timeout. The late timeout is checked below, on requests granted at once.
  const w = c.lockFile(win({ handle: 2, failImmediately: false, signal: ac.signal }));
  await queued(c, '/w', 1);
  t.equal(await c.unlockFile(unl({ handle: 2 })), 158, 'unlocking the range of a waiting request gives 158');
  t.ok(await stillPending(w), 'and does not cancel it');
  t.equal(await c.unlockFile(unl({ handle: 1 })), 0);
  t.equal(await w, 0, 'granted once the blocker unlocked');
  ac.abort();
  // The abort is sent (if at all) on this thread at once, so the listing below travels behind it.
  t.strictSame(await ls(c, '/w'), ['/w windows exclusive 0-9 2 pid=0 granted'], 'an abort after the grant changes nothing');
  const ac2 = new AbortController();
  const w2 = c.lockFile(win({ fileName: '/w2', handle: 3, failImmediately: false, signal: ac2.signal, timeoutMs: 100 }));
  const p = c.lock(px({ lockOwner: 1, cmd: F_SETLKW, signal: ac2.signal, timeoutMs: 100 }));
  t.equal(await w2, 0, 'a free range is granted at once (Windows)');
  t.equal((await p).result, 0, 'a free range is granted at once (POSIX)');
  ac2.abort();
  // Both timeouts are timers of this thread that expire before this sleep ends, so by then they
  // have fired (or been cleared) and whatever they sent travels ahead of the listings.
  await sleep(150);
  t.strictSame(await ls(c, '/w2'), ['/w2 windows exclusive 0-9 3 pid=0 granted'], 'an abort and a timeout after the grant change nothing (Windows)');
  t.strictSame(await ls(c, '/p'), ['/p posix write 0-9 1 pid=0 granted'], 'nor for POSIX');
});

t.test('Windows and POSIX on one file see each other; flock and checkIo do not', async (t) => {
  const c = view();
  t.equal(await c.lockFile({ fileName: '/m', byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: 1, processId: 77 }), 0);
  t.strictSame(await c.lock(px({ path: '/m', cmd: F_GETLK, lockType: F_RDLCK, lockStart: 9, lockLen: 1 })), reply(0, F_WRLCK, 0, 10, 77), 'F_GETLK shows the Windows holder with its processId');
  t.equal((await c.lock(px({ path: '/m', lockType: F_RDLCK }))).result, -EAGAIN, 'exclusive ~ write');
  t.equal((await c.lock(px({ path: '/m', kind: 'flock' }))).result, 0, 'flock ignores Windows locks');
  t.equal((await c.lock(px({ path: '/m', lockType: F_RDLCK, lockStart: 20, lockPid: 5 }))).result, 0);
  t.equal(await c.lockFile({ fileName: '/m', byteOffset: 25, length: 1, exclusiveLock: false, failImmediately: true, handle: 2 }), 0, 'shared ~ read');
  t.equal(await c.lockFile({ fileName: '/m', byteOffset: 25, length: 1, exclusiveLock: true, failImmediately: true, handle: 3 }), 33, 'a POSIX read lock blocks an exclusive Windows lock');
  t.equal(await c.checkIo({ fileName: '/m', handle: 3, byteOffset: 20, length: 5, write: true }), 0, 'POSIX locks are advisory: checkIo ignores them');
  t.strictSame(await ls(c, '/m'), [
    '/m flock write 0-9223372036854775807 1 pid=0 granted',
    '/m posix read 20-29 1 pid=5 granted',
    '/m windows exclusive 0-9 1 pid=77 granted',
    '/m windows shared 25-25 2 pid=0 granted',
  ]);
  // A zero-length Windows lock at X blocks POSIX ranges holding both X-1 and X.
  t.equal(await c.lockFile({ fileName: '/m', byteOffset: 100, length: 0, exclusiveLock: true, failImmediately: true, handle: 5 }), 0);
  t.equal((await c.lock(px({ path: '/m', lockOwner: 6, lockStart: 99, lockLen: 2 }))).result, -EAGAIN, '[99, 100] overlaps the zero-length lock at 100');
  t.equal((await c.lock(px({ path: '/m', lockOwner: 6, lockStart: 100, lockLen: 5 }))).result, 0, '[100, 104] does not');
  t.equal((await c.lock(px({ path: '/m', lockOwner: 9, lockStart: 95, lockLen: 5 }))).result, 0, '[95, 99] does not');
  const z = await c.lock(px({ path: '/m', lockOwner: 7, cmd: F_GETLK, lockStart: 99, lockLen: 2 }));
  t.equal(z.lockType, F_WRLCK, 'F_GETLK reports the zero-length Windows lock');
  t.ok(z.lockStart >= 0n && z.lockLen > 0n && z.lockStart + z.lockLen - 1n <= MAX, 'as a valid POSIX range (start <= end <= OFFSET_MAX)');
  t.ok(z.lockStart <= 100n && z.lockStart + z.lockLen - 1n >= 99n, 'overlapping the bytes it blocks');
  // A Windows lock past OFFSET_MAX is reported clamped to it.
  t.equal(await c.lockFile({ fileName: '/m', byteOffset: MAX - 4n, length: 10, exclusiveLock: false, failImmediately: true, handle: 8, processId: 88 }), 0);
  t.strictSame(await c.lock(px({ path: '/m', lockOwner: 7, cmd: F_GETLK, lockStart: MAX, lockLen: 1 })), reply(0, F_RDLCK, MAX - 4n, 0, 88), 'clamped: lockLen 0 (to OFFSET_MAX)');
  await c.closeHandle({ fileName: '/m', handle: 5 });
  await c.closeHandle({ fileName: '/m', handle: 8 });
  await c.flush({ path: '/m', lockOwner: 6 });
  await c.flush({ path: '/m', lockOwner: 9 });
  // A POSIX waiter is granted when the Windows lock goes, and vice versa.
  const pw = c.lock(px({ path: '/m', lockOwner: 8, cmd: F_SETLKW, lockStart: 0, lockLen: 5 }));
  const ww = c.lockFile({ fileName: '/m', byteOffset: 20, length: 2, exclusiveLock: true, failImmediately: false, handle: 4 });
  await queued(c, '/m', 2);
  t.equal(await c.unlockFile({ fileName: '/m', byteOffset: 0, length: 10, handle: 1, processId: 77 }), 0);
  t.equal((await pw).result, 0);
  t.ok(await stillPending(ww), 'the Windows waiter still waits for the POSIX read lock');
  await c.flush({ path: '/m', lockOwner: 1 });
  t.equal(await ww, 0);
});

t.test('identities: 5 and 5n are one owner, the string "5" another; the kind is part of a POSIX owner', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ handle: 5 })), 0);
  t.equal(await c.lockFile(win({ handle: 5n, exclusiveLock: false })), 0, '5n stacks a shared lock on the exclusive lock of 5');
  t.equal(await c.lockFile(win({ handle: '5', exclusiveLock: false })), 33, "'5' is another owner");
  t.equal(await c.unlockFile(unl({ handle: '5' })), 158, "'5' cannot unlock 5's lock");
  t.equal(await c.unlockFile(unl({ handle: 5n })), 0, '5n unlocks the lock of 5');
  t.equal(await c.unlockFile(unl({ handle: 5, processId: 0n, key: 0n })), 0, 'processId 0n and key 0n are the defaults');
  t.strictSame(await c.locks('/w'), []);
  t.equal(await c.lockFile(win({ handle: 6, processId: 3, key: 4 })), 0);
  t.equal(await c.unlockFile(unl({ handle: 6, processId: 3n, key: 4n })), 0, 'processId and key compare by value too');

  t.equal((await c.lock(px({ lockOwner: 7 }))).result, 0);
  t.equal((await c.lock(px({ lockOwner: 7n, lockStart: 5 }))).result, 0, '7n is the same posix owner: no conflict, merged');
  t.strictSame(
    (await c.locks('/p')).map((e) => [e.kind, e.type, e.start, e.end, String(e.owner), e.state]),
    [['posix', 'write', 0n, 14n, '7', 'granted']],
    'one merged lock of owner 7 (listed as 7 or 7n)',
  );
  t.equal((await c.lock(px({ lockOwner: '7', lockStart: 5, lockLen: 1 }))).result, -EAGAIN, "'7' is another owner");
  t.equal((await c.lock(px({ lockOwner: 7, kind: 'ofd', lockStart: 5, lockLen: 1 }))).result, -EAGAIN, 'OFD owner 7 is another owner');
  t.equal((await c.lock(px({ lockOwner: 7, kind: 'flock' }))).result, 0, 'flock owner 7 is a third, in its own space');
  await c.flush({ path: '/p', lockOwner: 7n });
  t.strictSame(await ls(c, '/p'), [`/p flock write 0-${MAX} 7 pid=0 granted`], 'flush by 7n dropped the posix locks of 7');
});

// ---- timeouts, signals, stop --------------------------------------------------------------------------

t.test('timeoutMs: Windows 33, POSIX -EAGAIN, nothing left queued', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win()), 0);
  t.equal((await c.lock(px())).result, 0);
  const t0 = Date.now();
  const w = c.lockFile(win({ handle: 2, failImmediately: false, timeoutMs: 150 }));
  const p = c.lock(px({ lockOwner: 2, cmd: F_SETLKW, timeoutMs: 150 }));
  // No wait for the two to be listed as queued: on a busy machine the timeout can end them before
  // a listing sees them. That they waited shows in the time they took (never less than timeoutMs).
  t.equal(await w, 33);
  t.strictSame(await p, reply(-EAGAIN, F_WRLCK, 0, 10));
  t.ok(Date.now() - t0 >= 140, 'the wait lasted at least timeoutMs');
  t.strictSame(await ls(c), ['/p posix write 0-9 1 pid=0 granted', '/w windows exclusive 0-9 1 pid=0 granted'], 'nothing queued');
  t.equal(await c.unlockFile(unl()), 0);
  t.equal((await c.lock(px({ lockType: F_UNLCK }))).result, 0);
  await sleep(20);
  t.strictSame(await c.locks(), [], 'the timed-out requests were not granted later');
  t.equal(await c.lockFile(win({ handle: 3, failImmediately: false, timeoutMs: 0 })), 0, 'a timeout does not affect a grantable request');
  t.equal((await c.lock(px({ lockOwner: 3, cmd: F_SETLKW, timeoutMs: 0 }))).result, 0);
});

t.test('negative timeoutMs: 87 / -EINVAL, nothing granted', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ failImmediately: false, timeoutMs: -1 })), 87);
  t.strictSame(await c.lock(px({ cmd: F_SETLKW, timeoutMs: -5 })), reply(-EINVAL, F_WRLCK, 0, 10));
  t.strictSame(await c.locks(), []);
});

t.test('signal: an abort ends a waiter with 995 / -EINTR and leaves nothing queued', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win()), 0);
  t.equal((await c.lock(px())).result, 0);
  const ac = new AbortController();
  const w = c.lockFile(win({ handle: 2, failImmediately: false, signal: ac.signal }));
  const p = c.lock(px({ lockOwner: 2, cmd: F_SETLKW, signal: ac.signal, lockPid: 22 }));
  const other = c.lockFile(win({ handle: 3, failImmediately: false }));
  await queued(c, '/w', 2);
  await queued(c, '/p', 1);
  ac.abort();
  t.equal(await w, 995);
  t.strictSame(await p, reply(-EINTR, F_WRLCK, 0, 10, 22));
  t.ok(await stillPending(other), 'another waiter is untouched');
  t.strictSame(await ls(c), [
    '/p posix write 0-9 1 pid=0 granted',
    '/w windows exclusive 0-9 1 pid=0 granted',
    '/w windows exclusive 0-9 3 pid=0 waiting',
  ]);
  t.equal(await c.unlockFile(unl()), 0);
  t.equal(await other, 0);
});

t.test('signal: an already-aborted signal resolves at once with 995 / -EINTR and grants nothing', async (t) => {
  const c = view();
  const ac = new AbortController();
  ac.abort();
  // "At once" is checked by what could not happen otherwise: nothing is granted, and a request on a
  // held range, which would wait forever if it were queued, settles (a hang fails after HANG_MS).
  const w = await settles(c.lockFile(win({ failImmediately: false, signal: ac.signal })), 'lockFile with an aborted signal');
  t.equal(w, 995, 'free range, aborted signal: 995');
  const w2 = await settles(c.lockFile(win({ failImmediately: true, signal: ac.signal })), 'lockFile (failImmediately) with an aborted signal');
  t.equal(w2, 995, 'also with failImmediately');
  const p = await settles(c.lock(px({ cmd: F_SETLKW, signal: ac.signal })), 'F_SETLKW with an aborted signal');
  t.strictSame(p, reply(-EINTR, F_WRLCK, 0, 10));
  const p2 = await settles(c.lock(px({ cmd: F_SETLK, signal: ac.signal })), 'F_SETLK with an aborted signal');
  t.strictSame(p2, reply(-EINTR, F_WRLCK, 0, 10));
  t.strictSame(await c.locks(), [], 'nothing granted');
  t.equal(await c.lockFile(win()), 0);
  const w3 = await settles(c.lockFile(win({ handle: 2, failImmediately: false, signal: ac.signal })), 'lockFile on a held range with an aborted signal');
  t.equal(w3, 995, 'conflicting range, aborted signal: 995, never queued');
  t.strictSame(await ls(c), ['/w windows exclusive 0-9 1 pid=0 granted']);
});

t.test('stop() ends waiting requests with 995 / -EINTR', async (t) => {
  const c = await LockCoordinator.start({ workers: 1 });
  t.equal(await c.lockFile(win()), 0);
  t.equal((await c.lock(px())).result, 0);
  t.equal((await c.lock(px({ path: '/q' }))).result, 0);
  const w = c.lockFile(win({ handle: 2, failImmediately: false }));
  const p = c.lock(px({ lockOwner: 2, cmd: F_SETLKW }));
  const q = c.lock(px({ path: '/q', lockOwner: 3, cmd: F_SETLKW, kind: 'ofd' }));
  await queued(c, '/w', 1);
  await queued(c, '/p', 1);
  await queued(c, '/q', 1);
  const stopped = c.stop();
  t.equal(await w, 995);
  t.strictSame(await p, reply(-EINTR, F_WRLCK, 0, 10));
  t.strictSame(await q, reply(-EINTR, F_WRLCK, 0, 10));
  await stopped;
  await c.stop();
  t.pass('stopped');
});

// ---- bad input ------------------------------------------------------------------------------------------

t.test('bad input: TypeError naming the field; nothing changes; the coordinator keeps serving', async (t) => {
  const c = view();
  t.equal(await c.lockFile(win({ fileName: '/b' })), 0);
  t.equal((await c.lock(px({ path: '/b', lockStart: 100 }))).result, 0);
  const before = await ls(c);
  const fn = () => 1;
  const cases: [string, () => Promise<unknown>, string][] = [
    ['lockFile fileName: 1', () => c.lockFile(win({ fileName: 1 })), 'fileName'],
    ['lockFile no fileName', () => c.lockFile(win({ fileName: undefined })), 'fileName'],
    ['lockFile exclusiveLock string', () => c.lockFile(win({ exclusiveLock: 'yes' })), 'exclusiveLock'],
    ['lockFile no failImmediately', () => c.lockFile(win({ failImmediately: undefined })), 'failImmediately'],
    ['lockFile handle object', () => c.lockFile(win({ handle: {} })), 'handle'],
    ['lockFile no handle', () => c.lockFile(win({ handle: undefined })), 'handle'],
    ['lockFile handle 1.5', () => c.lockFile(win({ handle: 1.5 })), 'handle'],
    ['lockFile byteOffset 1.5', () => c.lockFile(win({ byteOffset: 1.5 })), 'byteOffset'],
    ['lockFile byteOffset unsafe number', () => c.lockFile(win({ byteOffset: 2 ** 60 })), 'byteOffset'],
    ['lockFile length string', () => c.lockFile(win({ length: '10' })), 'length'],
    ['lockFile no length', () => c.lockFile(win({ length: undefined })), 'length'],
    ['lockFile processId 1.5', () => c.lockFile(win({ processId: 1.5 })), 'processId'],
    ['lockFile key null', () => c.lockFile(win({ key: null })), 'key'],
    ['lockFile fileContext function', () => c.lockFile(win({ fileName: '/b2', fileContext: fn })), 'fileContext'],
    ['lockFile handleContext function', () => c.lockFile(win({ fileName: '/b2', handleContext: fn })), 'handleContext'],
    ['lockFile fileContext symbol', () => c.lockFile(win({ fileName: '/b2', fileContext: Symbol('x') })), 'fileContext'],
    ['lockFile timeoutMs string', () => c.lockFile(win({ fileName: '/b2', failImmediately: false, timeoutMs: '5' })), 'timeoutMs'],
    ['lockFile signal object', () => c.lockFile(win({ fileName: '/b2', failImmediately: false, signal: {} })), 'signal'],
    ['unlockFile no fileName', () => c.unlockFile(unl({ fileName: undefined })), 'fileName'],
    ['unlockFile byteOffset string', () => c.unlockFile(unl({ fileName: '/b', byteOffset: '0' })), 'byteOffset'],
    ['unlockFile no handle', () => c.unlockFile(unl({ fileName: '/b', handle: undefined })), 'handle'],
    ['closeHandle no handle', () => c.closeHandle({ fileName: '/b' }), 'handle'],
    ['closeHandle fileName 3', () => c.closeHandle({ fileName: 3, handle: 1 }), 'fileName'],
    ['checkIo no write', () => c.checkIo({ fileName: '/b', handle: 2, byteOffset: 0, length: 1 }), 'write'],
    ['checkIo length 0.5', () => c.checkIo({ fileName: '/b', handle: 2, byteOffset: 0, length: 0.5, write: true }), 'length'],
    ['lock path 5', () => c.lock(px({ path: 5 })), 'path'],
    ['lock lockType string', () => c.lock(px({ path: '/b', lockType: '1' })), 'lockType'],
    ['lock no cmd', () => c.lock(px({ path: '/b', cmd: undefined })), 'cmd'],
    ['lock no lockOwner', () => c.lock(px({ path: '/b', lockOwner: undefined })), 'lockOwner'],
    ['lock lockOwner object', () => c.lock(px({ path: '/b', lockOwner: {} })), 'lockOwner'],
    ['lock lockPid string', () => c.lock(px({ path: '/b', lockPid: 'x' })), 'lockPid'],
    ['lock kind nfs', () => c.lock(px({ path: '/b', kind: 'nfs' })), 'kind'],
    ['lock lockStart 1.5', () => c.lock(px({ path: '/b', lockStart: 1.5 })), 'lockStart'],
    ['lock no lockLen', () => c.lock(px({ path: '/b', lockLen: undefined })), 'lockLen'],
    ['lock fileHandle object', () => c.lock(px({ path: '/b', fileHandle: {} })), 'fileHandle'],
    ['lock fileContext function', () => c.lock(px({ path: '/b2', fileContext: fn })), 'fileContext'],
    ['lock timeoutMs string', () => c.lock(px({ path: '/b2', cmd: F_SETLKW, timeoutMs: '1' })), 'timeoutMs'],
    ['flush no lockOwner', () => c.flush({ path: '/b' }), 'lockOwner'],
    ['flush path null', () => c.flush({ path: null, lockOwner: 1 }), 'path'],
    ['release no fileHandle', () => c.release({ path: '/b' }), 'fileHandle'],
    ['release lockOwner 0.5', () => c.release({ path: '/b', fileHandle: 1, lockOwner: 0.5 }), 'lockOwner'],
  ];
  for (const [name, f, field] of cases) {
    await t.rejects(f(), { name: 'TypeError', message: new RegExp(`\\b${field}\\b`) }, name);
  }
  for (const [name, f] of [
    ['lockFile(null)', () => c.lockFile(null)],
    ['lockFile(5)', () => c.lockFile(5)],
    ['lock(undefined)', () => c.lock(undefined)],
    ['unlockFile("x")', () => c.unlockFile('x')],
    ['locks(5)', () => c.locks(5 as never)],
  ] as [string, () => Promise<unknown>][]) {
    await t.rejects(f(), { name: 'TypeError' }, name);
  }
  t.strictSame(await ls(c), before, 'no lock changed');
  t.strictSame(await c.locks('/b2'), [], 'nothing was granted for the rejected requests');
  t.equal(await c.lockFile(win({ fileName: '/b2', fileContext: { ok: [1, 2n] } })), 0, 'a cloneable fileContext is fine');
  t.equal(await c.lockFile(win({ fileName: '/b', handle: 2 })), 33, 'the coordinator keeps serving');
  t.equal((await c.lock(px({ path: '/b', lockOwner: 2, lockStart: 100 }))).result, -EAGAIN);
});

// ---- hooks ------------------------------------------------------------------------------------------------

/**
 * One coordinator with all three hooks (one worker: starting workers is slow under tap); each test
 * installs its own behaviour and uses its own file names. hookTimeoutMs is the extra option: here
 * ten minutes, longer than any wait of these tests, so that no check depends on how fast the
 * machine is. A hook that must not answer is held by its test (a promise it resolves at the end);
 * the one test of the timeout itself starts a coordinator of its own with a short hookTimeoutMs.
 */
type Ev = Record<string, unknown>;
const hookImpl: { lockFile: (e: Ev) => unknown; unlockFile: (e: Ev) => unknown; lock: (e: Ev) => unknown } = {
  lockFile: () => 0,
  unlockFile: () => undefined,
  lock: () => 0,
};
const HOOK_TIMEOUT = 1000;
const hooked = await LockCoordinator.start({
  workers: 1,
  hookTimeoutMs: 600_000,
  onLockFile: (e: Ev) => hookImpl.lockFile(e) as number,
  onUnlockFile: (e: Ev) => hookImpl.unlockFile(e) as void,
  onLock: (e: Ev) => hookImpl.lock(e) as number,
} as never);
t.teardown(() => hooked.stop());
t.beforeEach(() => {
  hookImpl.lockFile = () => 0;
  hookImpl.unlockFile = () => undefined;
  hookImpl.lock = () => 0;
});

t.test('onLockFile: non-zero vetoes with that code; the event carries the request; throw gives 33', async (t) => {
  const c = hooked;
  const F = '/h1';
  const events: Ev[] = [];
  let verdict: () => unknown = () => 0;
  hookImpl.lockFile = (e) => {
    events.push(e);
    return verdict();
  };
  const errors0 = (await c.stats()).hookErrors;
  verdict = () => 5;
  t.equal(await c.lockFile(win({ fileName: F, byteOffset: 10, length: 5, processId: 3, key: 4, fileContext: { f: 1 }, handleContext: 'hc' })), 5, 'the hook code is the result');
  t.strictSame(await c.locks(F), [], 'nothing granted');
  t.equal(events.length, 1);
  t.match(events[0], {
    fileName: F,
    byteOffset: 10n,
    length: 5n,
    exclusiveLock: true,
    failImmediately: true,
    handle: 1,
    processId: 3,
    key: 4,
    fileContext: { f: 1 },
    handleContext: 'hc',
  });
  t.equal(typeof events[0]!.byteOffset, 'bigint', 'offsets are bigint in events');
  verdict = () => {
    throw new Error('backend down');
  };
  t.equal(await c.lockFile(win({ fileName: F })), 33, 'a throw is a veto with ERROR_LOCK_VIOLATION');
  verdict = () => Promise.reject(new Error('backend down'));
  t.equal(await c.lockFile(win({ fileName: F })), 33, 'a rejection is a veto with ERROR_LOCK_VIOLATION');
  t.strictSame(await c.locks(F), [], 'nothing granted');
  t.equal((await c.stats()).hookErrors - errors0, 2, 'both failures were reported');
  verdict = () => Promise.resolve(0);
  t.equal(await c.lockFile(win({ fileName: F })), 0, 'an async 0 grants');
  t.strictSame(await ls(c, F), [`${F} windows exclusive 0-9 1 pid=0 granted`]);
  const n = events.length;
  t.equal(await c.lockFile(win({ fileName: F, handle: 2 })), 33, 'a conflict fails before the hook');
  t.equal(events.length, n, 'onLockFile runs only for a grantable request');
  // A waiter: the hook runs when it becomes grantable, and can veto it then.
  verdict = () => 0;
  const w1 = c.lockFile(win({ fileName: F, handle: 2, failImmediately: false }));
  const w2 = c.lockFile(win({ fileName: F, handle: 3, failImmediately: false }));
  await queued(c, F, 2);
  verdict = () => 6;
  t.equal(await c.unlockFile(unl({ fileName: F })), 0);
  t.equal(await w1, 6, 'the vetoed waiter ends with the hook code');
  t.equal(await w2, 6, 'so does the next one, which also fitted once the first was vetoed');
  t.strictSame(await c.locks(F), []);
});

t.test('onUnlockFile fires once per released record with its range; its outcome is ignored', async (t) => {
  const c = hooked;
  const F = '/h2';
  const released: Ev[] = [];
  let mode: 'ok' | 'throw' | 'hang' = 'ok';
  const held: (() => void)[] = [];
  t.teardown(() => {
    for (const r of held) r();
  });
  hookImpl.unlockFile = (e) => {
    released.push(e);
    if (mode === 'throw') throw new Error('ignored');
    if (mode === 'hang') return new Promise<void>((r) => held.push(r));
    return undefined;
  };
  const rec = (e: Ev) => `${String(e.handle)}:${String(e.byteOffset)}+${String(e.length)}`;
  t.equal(await c.lockFile(win({ fileName: F, byteOffset: 0, length: 1 })), 0);
  t.equal(await c.lockFile(win({ fileName: F, byteOffset: 10, length: 2, exclusiveLock: false })), 0);
  t.equal(await c.lockFile(win({ fileName: F, byteOffset: 20, length: 3, processId: 4, fileContext: 'fc' })), 0);
  t.equal(await c.lockFile(win({ fileName: F, byteOffset: 50, length: 1, handle: 2 })), 0);
  await c.closeHandle({ fileName: F, handle: 1 });
  await waitFor(() => released.length >= 3, 'three onUnlockFile events');
  await sleep(50);
  t.strictSame(released.map(rec).sort(), ['1:0+1', '1:10+2', '1:20+3'], 'close of three locks fires three events, one per record');
  t.match(released.find((e) => e.byteOffset === 20n), { fileName: F, byteOffset: 20n, length: 3n, handle: 1, processId: 4, fileContext: 'fc' });
  released.length = 0;
  t.equal(await c.lockFile(win({ fileName: F, byteOffset: 0, length: 4, handle: 3 })), 0);
  t.equal(await c.lockFile(win({ fileName: F, byteOffset: 4, length: 4, handle: 3, key: 9 })), 0);
  t.equal(await c.unlockFile(unl({ fileName: F, handle: 3, byteOffset: -1, length: -1 })), 0);
  await waitFor(() => released.length >= 2, 'two onUnlockFile events');
  await sleep(50);
  t.strictSame(released.map(rec).sort(), ['3:0+4', '3:4+4'], 'unlock-all of two locks fires two');
  released.length = 0;
  mode = 'throw';
  t.equal(await c.unlockFile(unl({ fileName: F, handle: 2, byteOffset: 50, length: 1 })), 0, 'a throwing onUnlockFile does not change the result');
  await waitFor(() => released.length === 1, 'one event');
  await sleep(50);
  t.equal(released.length, 1, 'an exact unlock fires one event');
  mode = 'hang';
  t.equal(await c.lockFile(win({ fileName: F, handle: 5 })), 0);
  const before = released.length;
  // The hook's promise is held until the end of the test (and hookTimeoutMs is ten minutes): the
  // unlock can settle only if it does not wait for the hook.
  const u = await settles(c.unlockFile(unl({ fileName: F, handle: 5 })), 'an unlockFile whose onUnlockFile never answers');
  t.equal(u, 0, "the caller's promise does not wait for onUnlockFile");
  t.strictSame(await c.locks(F), []);
  await waitFor(() => held.length === 1, 'the hanging onUnlockFile call');
  t.equal(released.length - before, 1, 'the hanging hook was called once');
});

t.test('onLock: a negative errno vetoes a set; a throw gives -ENOLCK; it fires for unlocks too', async (t) => {
  const c = hooked;
  const P = '/h3';
  const events: Ev[] = [];
  let verdict: (e: Ev) => unknown = () => 0;
  hookImpl.lock = (e) => {
    events.push(e);
    return verdict(e);
  };
  const errors0 = (await c.stats()).hookErrors;
  verdict = (e) => (e.lockType === F_UNLCK ? 0 : -13);
  t.strictSame(await c.lock(px({ path: P, lockPid: 9, fileContext: [1] })), reply(-13, F_WRLCK, 0, 10, 9), 'the hook errno is the result');
  t.match(events[0], { path: P, lockType: F_WRLCK, lockStart: 0n, lockLen: 10n, cmd: F_SETLK, lockOwner: 1, lockPid: 9, kind: 'posix', fileContext: [1] });
  t.strictSame(await c.locks(P), []);
  verdict = () => {
    throw new Error('nope');
  };
  t.equal((await c.lock(px({ path: P }))).result, -ENOLCK, 'a throw: -ENOLCK');
  t.equal((await c.lock(px({ path: P, kind: 'ofd' }))).result, -ENOLCK, 'OFD too');
  t.equal((await c.lock(px({ path: P, kind: 'flock' }))).result, -ENOLCK, 'flock too');
  t.strictSame(await c.locks(P), [], 'nothing granted');
  t.equal((await c.stats()).hookErrors - errors0, 3, 'hook failures are counted');
  verdict = () => 0;
  t.equal((await c.lock(px({ path: P }))).result, 0);
  events.length = 0;
  t.equal((await c.lock(px({ path: P, lockType: F_UNLCK }))).result, 0);
  await waitFor(() => events.some((e) => e.lockType === F_UNLCK), 'an onLock event for the unlock');
  t.strictSame(await c.locks(P), []);
});

t.test('a hook that hangs past hookTimeoutMs is a veto with the generic code', async (t) => {
  const c = await start(t, {
    workers: 1,
    hookTimeoutMs: HOOK_TIMEOUT,
    onLockFile: () => new Promise<number>(() => undefined),
    onUnlockFile: () => undefined,
    onLock: () => new Promise<number>(() => undefined),
  });
  const t0 = Date.now();
  const [w, p] = await Promise.all([c.lockFile(win({ fileName: '/h4' })), c.lock(px({ path: '/h4' }))]);
  t.equal(w, 33, 'onLockFile timed out: 33');
  t.equal(p.result, -ENOLCK, 'onLock timed out: -ENOLCK');
  t.ok(Date.now() - t0 >= HOOK_TIMEOUT - 20, 'not before hookTimeoutMs');
  t.strictSame(await c.locks('/h4'), [], 'nothing granted');
});

t.test('a hung hook on one file does not block requests on another file of the same worker', async (t) => {
  const c = hooked; // one worker: both files live on it
  // The /h5slow hooks answer only when the test lets them (hookTimeoutMs is ten minutes), so the
  // other file's requests settling at all shows they did not wait behind them. A file's requests
  // are decided one at a time: the second request on /h5slow gets to its hook once the first one's
  // hook has answered.
  const slowHooks: ((v: number) => void)[] = [];
  t.teardown(() => {
    for (const r of slowHooks) r(0);
  });
  hookImpl.lockFile = (e) => (e.fileName === '/h5slow' ? new Promise<number>((r) => (slowHooks[0] = r)) : 0);
  hookImpl.lock = (e) => (e.path === '/h5slow' ? new Promise<number>((r) => (slowHooks[1] = r)) : 0);
  const slow = c.lockFile(win({ fileName: '/h5slow' }));
  const slowP = c.lock(px({ path: '/h5slow', lockStart: 100 }));
  await waitFor(() => slowHooks[0] !== undefined, 'the onLockFile hook of /h5slow called');
  t.equal(await settles(c.lockFile(win({ fileName: '/h5fast' })), 'a lockFile on another file'), 0, 'another file is served while the hook hangs');
  t.strictSame(await settles(c.lock(px({ path: '/h5fast2' })), 'a lock on another file'), reply(0, F_WRLCK, 0, 10));
  t.strictSame(await settles(c.locks('/h5fast'), 'locks() of another file'), [
    { path: '/h5fast', kind: 'windows', type: 'exclusive', start: 0n, end: 9n, owner: 1, pid: 0, state: 'granted', processId: 0 },
  ]);
  t.ok(await stillPending(slow, 10), 'the hung one is still pending meanwhile');
  t.ok(await stillPending(slowP, 10));
  slowHooks[0]!(5);
  t.equal(await slow, 5, 'and ends with what its hook answers, when it answers');
  await waitFor(() => slowHooks[1] !== undefined, 'the onLock hook of /h5slow called');
  t.ok(await stillPending(slowP, 10), 'the next request on /h5slow waits for its own hook');
  slowHooks[1]!(-13);
  t.equal((await slowP).result, -13);
  t.strictSame(await c.locks('/h5slow'), []);
});

// ---- listings and counters ---------------------------------------------------------------------------------

t.test('locks(): fields of every kind, granted and waiting, per path and across workers', async (t) => {
  const c = view();
  t.equal(await c.lockFile({ fileName: '/l1', byteOffset: 100, length: 0, exclusiveLock: false, failImmediately: true, handle: 'h', processId: 42 }), 0);
  t.equal(await c.lockFile({ fileName: '/l1', byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle: 7n, processId: 43 }), 0);
  t.equal((await c.lock(px({ path: '/l2', lockType: F_RDLCK, lockPid: 5, lockOwner: 'o1' }))).result, 0);
  t.equal((await c.lock(px({ path: '/l2', kind: 'ofd', lockStart: 20, lockLen: 0, lockPid: 6, lockOwner: 2, fileHandle: 9 }))).result, 0);
  t.equal((await c.lock(px({ path: '/l3', kind: 'flock', lockOwner: 3, lockPid: 8 }))).result, 0);
  const waiter = c.lock(px({ path: '/l2', lockOwner: 4, lockPid: 10, cmd: F_SETLKW, lockStart: 0, lockLen: 5 }));
  await queued(c, '/l2', 1);
  const pick = (e: Record<string, unknown>) => ({
    path: e.path,
    kind: e.kind,
    type: e.type,
    start: e.start,
    end: e.end,
    owner: e.owner,
    pid: e.pid,
    state: e.state,
  });
  const sortKey = (e: Record<string, unknown>) => `${String(e.path)} ${String(e.kind)} ${String(e.start)} ${String(e.state)}`;
  const all = ((await c.locks()) as unknown as Record<string, unknown>[]).map(pick).sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  t.strictSame(all, [
    { path: '/l1', kind: 'windows', type: 'exclusive', start: 0n, end: 9n, owner: 7n, pid: 43, state: 'granted' },
    { path: '/l1', kind: 'windows', type: 'shared', start: 100n, end: 99n, owner: 'h', pid: 42, state: 'granted' },
    { path: '/l2', kind: 'ofd', type: 'write', start: 20n, end: MAX, owner: 2, pid: -1, state: 'granted' },
    { path: '/l2', kind: 'posix', type: 'read', start: 0n, end: 9n, owner: 'o1', pid: 5, state: 'granted' },
    { path: '/l2', kind: 'posix', type: 'write', start: 0n, end: 4n, owner: 4, pid: 10, state: 'waiting' },
    { path: '/l3', kind: 'flock', type: 'write', start: 0n, end: MAX, owner: 3, pid: 8, state: 'granted' },
  ]);
  t.strictSame(((await c.locks('/l3')) as unknown as Record<string, unknown>[]).map(pick), [{ path: '/l3', kind: 'flock', type: 'write', start: 0n, end: MAX, owner: 3, pid: 8, state: 'granted' }]);
  t.strictSame(await c.locks('/nothing'), []);
  await c.flush({ path: '/l2', lockOwner: 'o1' });
  t.equal((await waiter).result, 0);
});

t.test('stats(): operations by call and result, waiting, waits, files, workers, hookErrors, workerRestarts', async (t) => {
  const c = await start(t, { workers: 2 });
  const s0 = await c.stats();
  t.match(s0, { waiting: 0, files: 0, hookErrors: 0, workerRestarts: 0 });
  t.equal(s0.workers.length, 2);
  t.equal(s0.waits.count, 0);
  t.equal(await c.lockFile(win()), 0);
  t.equal(await c.lockFile(win({ fileName: '/w2' })), 0);
  t.equal(await c.lockFile(win({ handle: 2 })), 33);
  t.equal(await c.unlockFile(unl({ handle: 2 })), 158);
  t.equal((await c.lock(px())).result, 0);
  t.equal((await c.lock(px({ lockOwner: 2 }))).result, -EAGAIN);
  t.equal((await c.lock(px({ lockOwner: 3 }))).result, -EAGAIN);
  const w = c.lockFile(win({ handle: 3, failImmediately: false }));
  const p = c.lock(px({ lockOwner: 4, cmd: F_SETLKW }));
  await queued(c, '/w', 1);
  await queued(c, '/p', 1);
  const s1 = (await waitFor(async () => {
    const s = await c.stats();
    return s.waiting === 2 ? s : undefined;
  }, 'stats().waiting === 2'))!;
  t.equal(s1.waiting, 2, 'two requests waiting');
  t.equal(s1.files, 3, 'three files with live state');
  t.equal(s1.operations.lockFile?.['0'], 2, 'lockFile -> 0 twice');
  t.equal(s1.operations.lockFile?.['33'], 1, 'lockFile -> 33 once');
  t.equal(s1.operations.unlockFile?.['158'], 1);
  t.equal(s1.operations.lock?.['0'], 1);
  t.equal(s1.operations.lock?.[String(-EAGAIN)], 2, 'lock -> -EAGAIN twice');
  t.equal(s1.workers.reduce((n, w) => n + w.files, 0), 3, 'per-worker file counts add up');
  await sleep(30);
  t.equal(await c.unlockFile(unl()), 0);
  await c.flush({ path: '/p', lockOwner: 1 });
  t.equal(await w, 0);
  t.equal((await p).result, 0);
  const s2 = await c.stats();
  t.equal(s2.waiting, 0);
  t.equal(s2.waits.count, 2, 'two requests waited');
  t.ok(s2.waits.maxMs >= 20 && s2.waits.totalMs >= s2.waits.maxMs, 'wait times are measured');
  t.equal(s2.operations.lockFile?.['0'], 3);
  t.equal(s2.operations.lock?.['0'], 2);
  t.equal(s2.hookErrors, 0);
  t.equal(s2.workerRestarts, 0);
});

t.test('stats(): every completed call is counted, including immediate results', async (t) => {
  const c = await start(t, { workers: 1 });
  const ac = new AbortController();
  ac.abort();
  t.equal(await c.lockFile(win({ byteOffset: 2, length: -1 })), 307);
  t.equal(await c.lockFile(win({ byteOffset: 1n << 64n })), 87);
  t.equal(await c.lockFile(win({ signal: ac.signal })), 995);
  t.equal((await c.lock(px({ lockStart: -1 }))).result, -EINVAL);
  const s = await c.stats();
  t.equal(s.operations.lockFile?.['307'], 1, 'lockFile -> 307 counted');
  t.equal(s.operations.lockFile?.['87'], 1, 'lockFile -> 87 counted');
  t.equal(s.operations.lockFile?.['995'], 1, 'lockFile -> 995 counted');
  t.equal(s.operations.lock?.[String(-EINVAL)], 1, 'lock -> -EINVAL counted');
});


t.test('ping(i): a bare round trip to each worker, in order, between requests; a bad index or a stopped coordinator rejects', async (t) => {
  const c = await start(t, { workers: 2 });
  const lock = c.lock(px({ lockType: F_WRLCK }));
  const rtts = await Promise.all([c.ping(0), c.ping(1), c.ping(0), c.ping(1)]);
  for (const us of rtts) t.ok(Number.isFinite(us) && us > 0, `a round trip in µs: ${us.toFixed(1)}`);
  t.equal((await lock).result, 0, 'the request in flight beside the pings is answered');
  t.equal((await c.stats()).inFlight, 0, 'pings are not requests');
  await t.rejects(c.ping(2), { name: 'RangeError' });
  await t.rejects(c.ping(-1), { name: 'RangeError' });
  await t.rejects(c.ping('0' as never), { name: 'TypeError', message: /index/ });
  await c.stop();
  await t.rejects(c.ping(0), { message: /stopped/ });
});

t.test('a ping around a worker crash ends (answered by the old worker, or rejected when it died first); the replacement answers pings', async (t) => {
  const c = await start(t, { workers: 1 });
  const crashed = c.crashWorker(0);
  // Posted behind the crash drill: the dying host may or may not echo it first.
  const p = c.ping(0).then(
    (us) => `answered (${us.toFixed(0)} µs)`,
    (e: Error) => `rejected: ${e.message}`,
  );
  await crashed;
  t.match(await p, /^answered|^rejected: locksmith: worker 0 ended/, 'the ping ended');
  t.ok((await c.ping(0)) > 0, 'the new worker answers');
});
