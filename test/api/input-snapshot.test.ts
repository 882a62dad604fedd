/**
 * A request is read once, when the method is called (issue 11 item 2, issue 14 unknown fields).
 *
 * Model: whatever a caller does to its own request object (a getter or a Proxy that answers
 * differently on a second read, a context changed or made uncloneable after the call, an unknown
 * field), the call behaves as the request read once at the call would: it succeeds with that
 * request's result, or it alone rejects with a TypeError naming the field. Invariant: another
 * caller's lock made in the same turn (so in the same batch to the same worker) is granted and stays
 * granted, and the process keeps running.
 *
 * Before the snapshot, a second read at encoding time put what the getter answered then (here a
 * Symbol, which cannot be cloned) into the batch, and the batch's postMessage threw a DataCloneError
 * from a microtask: uncaught, it ended the process (this file then fails), and the batch's other
 * requests were lost.
 */
import t, { type Test } from 'tap';
import { EINVAL, ERROR_NOT_LOCKED, F_RDLCK, F_SETLK, F_WRLCK, LockCoordinator } from '../../src/index.js';
import { isPending, within } from './helpers.js';

type Req = Record<string, unknown>;
type Ev = Record<string, unknown>;

const events: { lockFile: Ev[]; lock: Ev[] } = { lockFile: [], lock: [] };
// One worker: the bad request and the other caller's always share a worker and a batch.
const c = await LockCoordinator.start({
  workers: 1,
  onLockFile: (e) => void events.lockFile.push(e as Ev),
  onUnlockFile: () => {},
  onLock: (e) => void events.lock.push(e as Ev),
});
t.teardown(() => c.stop());

let others = 0;

/**
 * Another caller's write lock on a file of its own, made just before `bad` in the same turn; checks
 * that it is granted, and still listed as granted after `bad` settled.
 */
async function besideOther<T>(t: Test, what: string, bad: () => Promise<T>): Promise<PromiseSettledResult<T>> {
  const path = `/other/${++others}`;
  const other = c.lock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 99, lockPid: 99 });
  const settled = Promise.allSettled([bad()]).then((r) => r[0]!);
  const reply = await within(other, 3000);
  t.notOk(isPending(reply), `${what}: the other caller's lock is answered`);
  t.strictSame(reply, { result: 0, lockType: F_WRLCK, lockStart: 0n, lockLen: 10n, lockPid: 99 }, `${what}: the other caller's lock is granted`);
  const mine = await within(settled, 3000);
  t.notOk(isPending(mine), `${what}: the call itself settles`);
  const listed = await c.locks(path);
  t.strictSame(
    listed.map((l) => `${l.type} ${l.start}-${l.end} ${String(l.owner)} ${l.state}`),
    ['write 0-9 99 granted'],
    `${what}: the other caller's lock is kept`,
  );
  return mine as PromiseSettledResult<T>;
}

// ---- the requests --------------------------------------------------------------------------

type Method = 'lockFile' | 'unlockFile' | 'closeHandle' | 'checkIo' | 'lock' | 'flush' | 'release';

/** A valid request of each method, on file `f`, with every field it may have (but timeoutMs/signal). */
function request(m: Method, f: string): Req {
  switch (m) {
    case 'lockFile':
      return { fileName: f, byteOffset: 0, length: 10, exclusiveLock: false, failImmediately: true, handle: 1, processId: 2, key: 3, handleInfo: { hi: 1 }, fileContext: { fc: 1 }, handleContext: { hc: 1 } };
    case 'unlockFile':
      return { fileName: f, byteOffset: 0, length: 10, handle: 1, processId: 2, key: 3 };
    case 'closeHandle':
      return { fileName: f, handle: 1 };
    case 'checkIo':
      return { fileName: f, handle: 1, processId: 2, byteOffset: 0, length: 10, write: true };
    case 'lock':
      return { path: f, lockType: F_RDLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 7, lockPid: 1, kind: 'posix', fileHandle: 9, fileContext: { fc: 1 } };
    case 'flush':
      return { path: f, lockOwner: 7 };
    case 'release':
      return { path: f, fileHandle: 9, lockOwner: 7 };
  }
}

/** What each request above gets on a file nobody else uses. */
const RESULT: Record<Method, unknown> = {
  lockFile: 0,
  unlockFile: ERROR_NOT_LOCKED,
  closeHandle: undefined,
  checkIo: 0,
  lock: { result: 0, lockType: F_RDLCK, lockStart: 0n, lockLen: 10n, lockPid: 1 },
  flush: undefined,
  release: undefined,
};

const METHODS = Object.keys(RESULT) as Method[];

function call(m: Method, r: unknown): Promise<unknown> {
  return (c[m] as (r: unknown) => Promise<unknown>)(r);
}

/**
 * The 15 method/field pairs of issue 11 item 2: each method with each file-name or identity field
 * that it read twice (once to check it, once to send it). All are covered by the test of every
 * field below; named here so that none can drop out unnoticed.
 */
const ISSUE_PAIRS: [Method, string][] = [
  ['lockFile', 'fileName'],
  ['lockFile', 'handle'],
  ['unlockFile', 'fileName'],
  ['unlockFile', 'handle'],
  ['closeHandle', 'fileName'],
  ['closeHandle', 'handle'],
  ['checkIo', 'fileName'],
  ['checkIo', 'handle'],
  ['lock', 'lockOwner'],
  ['lock', 'fileHandle'],
  ['flush', 'path'],
  ['flush', 'lockOwner'],
  ['release', 'path'],
  ['release', 'fileHandle'],
  ['release', 'lockOwner'],
];

// ---- getters and proxies --------------------------------------------------------------------

t.test('a getter that answers validly once, then a Symbol: the field is read once, the call succeeds alone', async (t) => {
  const tested = new Set<string>();
  for (const m of METHODS) {
    for (const field of Object.keys(request(m, '/x'))) {
      const f = `/getter/${m}.${field}`;
      const r = request(m, f);
      const valid = r[field];
      let reads = 0;
      Object.defineProperty(r, field, {
        enumerable: true,
        get: () => (reads++ === 0 ? valid : Symbol('second read')),
      });
      const what = `${m}.${field}`;
      const res = await besideOther(t, what, () => call(m, r));
      t.strictSame(res, { status: 'fulfilled', value: RESULT[m] }, `${what}: the result of the request as first read`);
      t.equal(reads, 1, `${what}: read exactly once`);
      tested.add(what);
    }
  }
  for (const [m, field] of ISSUE_PAIRS) t.ok(tested.has(`${m}.${field}`), `issue pair ${m}.${field} is covered`);
  t.equal(ISSUE_PAIRS.length, 15);
});

t.test('a getter that throws rejects that call alone, with its own error', async (t) => {
  for (const m of METHODS) {
    const r = request(m, `/throws/${m}`);
    const field = m === 'lock' || m === 'flush' || m === 'release' ? 'lockOwner' : 'handle';
    Object.defineProperty(r, field, {
      enumerable: true,
      get: () => {
        throw new RangeError(`no ${field} today`);
      },
    });
    const res = await besideOther(t, `${m} throwing ${field}`, () => call(m, r));
    t.equal(res.status, 'rejected');
    t.match((res as PromiseRejectedResult).reason, { name: 'RangeError', message: `no ${field} today` });
  }
});

t.test('a Proxy whose every read after the first answers a Symbol: each field is read at most once', async (t) => {
  for (const m of METHODS) {
    const target = request(m, `/proxy/${m}`);
    const reads = new Map<PropertyKey, number>();
    const p = new Proxy(target, {
      get(o, k) {
        const n = reads.get(k) ?? 0;
        reads.set(k, n + 1);
        return n === 0 ? o[k as string] : Symbol('again');
      },
    });
    const res = await besideOther(t, `${m} Proxy`, () => call(m, p));
    t.strictSame(res, { status: 'fulfilled', value: RESULT[m] }, `${m} Proxy: the result of the request as first read`);
    t.strictSame(
      [...reads].filter(([, n]) => n > 1),
      [],
      `${m} Proxy: no field read twice`,
    );
    for (const k of Object.keys(target)) t.equal(reads.get(k), 1, `${m} Proxy: ${k} read once`);
  }
});

// ---- contexts ----------------------------------------------------------------------------------

t.test('a context changed right after the call: the call goes as it was made', async (t) => {
  const ctx: Record<string, unknown> = { id: 1 };
  const hctx: Record<string, unknown> = { h: 1 };
  const late = new MessageChannel();
  t.teardown(() => late.port1.close());
  const res = await besideOther(t, 'lockFile ctx.onDone = fn after the call', () => {
    const r = c.lockFile({ fileName: '/mutate/win', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 1, fileContext: ctx, handleContext: hctx });
    ctx.onDone = () => {};
    hctx.port = late.port1;
    ctx.id = 2;
    return r;
  });
  t.strictSame(res, { status: 'fulfilled', value: 0 });
  const e = events.lockFile.find((x) => x.fileName === '/mutate/win');
  t.strictSame(e?.fileContext, { id: 1 }, 'onLockFile sees the context as it was at the call');
  t.strictSame(e?.handleContext, { h: 1 });

  const lctx: Record<string, unknown> = { id: 1 };
  const lres = await besideOther(t, 'lock ctx.onDone = fn after the call', () => {
    const r = c.lock({ path: '/mutate/posix', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 5, fileContext: lctx });
    lctx.onDone = () => {};
    return r;
  });
  t.equal(lres.status, 'fulfilled');
  t.equal((lres as PromiseFulfilledResult<{ result: number }>).value.result, 0);
  t.strictSame(events.lock.find((x) => x.path === '/mutate/posix')?.fileContext, { id: 1 }, 'onLock sees the context as it was at the call');
});

t.test('a context that cannot be cloned rejects that call alone, naming the field', async (t) => {
  const port = new MessageChannel().port1;
  const cases: [string, () => Promise<unknown>, string][] = [
    ['lockFile fileContext with a method', () => c.lockFile({ ...(request('lockFile', '/nc/1') as never), fileContext: { f() {} } }), 'fileContext'],
    ['lockFile handleContext MessagePort', () => c.lockFile({ ...(request('lockFile', '/nc/2') as never), handleContext: { port } }), 'handleContext'],
    ['lockFile handleInfo Symbol', () => c.lockFile({ ...(request('lockFile', '/nc/3') as never), handleInfo: Symbol('h') }), 'handleInfo'],
    ['lock fileContext Proxy', () => c.lock({ ...(request('lock', '/nc/4') as never), fileContext: new Proxy({}, {}) }), 'fileContext'],
  ];
  for (const [what, f, field] of cases) {
    const res = await besideOther(t, what, f);
    t.equal(res.status, 'rejected', what);
    t.match((res as PromiseRejectedResult).reason, { name: 'TypeError', message: new RegExp(`\\b${field}\\b.*structured-cloneable`) }, what);
  }
  t.strictSame(await c.locks('/nc/1'), [], 'nothing was granted for the rejected requests');
  port.close();
});

t.test('a context whose getter answers a function on the second read goes as first read', async (t) => {
  let n = 0;
  const fileContext = {
    get x(): unknown {
      return n++ === 0 ? 1 : () => {};
    },
  };
  const res = await besideOther(t, 'lockFile fileContext getter', () =>
    c.lockFile({ fileName: '/deep/win', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 1, fileContext }),
  );
  t.strictSame(res, { status: 'fulfilled', value: 0 });
  t.equal(n, 1, 'the context was copied once');
  t.strictSame(events.lockFile.find((x) => x.fileName === '/deep/win')?.fileContext, { x: 1 });
});

// ---- unknown fields ----------------------------------------------------------------------------

t.test('an unknown field rejects that call alone with a TypeError naming it', async (t) => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['lockFile timeoutMS', () => call('lockFile', { ...request('lockFile', '/u/1'), failImmediately: false, timeoutMS: 10 }), /^unknown field 'timeoutMS' in lockFile request \(did you mean 'timeoutMs'\?\)$/],
    ['lockFile filename', () => call('lockFile', { ...request('lockFile', '/u/2'), fileName: undefined, filename: '/u/2' }), /^unknown field 'filename' in lockFile request \(did you mean 'fileName'\?\)$/],
    ['lockFile path', () => call('lockFile', { ...request('lockFile', '/u/3'), path: '/u/3' }), /^unknown field 'path' in lockFile request$/],
    ['unlockFile timeoutMs (not a field of unlockFile)', () => call('unlockFile', { ...request('unlockFile', '/u/4'), timeoutMs: 5 }), /^unknown field 'timeoutMs' in unlockFile request$/],
    ['unlockFile bytesOffset', () => call('unlockFile', { ...request('unlockFile', '/u/5'), bytesOffset: 0 }), /unknown field 'bytesOffset' in unlockFile request \(did you mean 'byteOffset'\?\)/],
    ['closeHandle processId', () => call('closeHandle', { ...request('closeHandle', '/u/6'), processId: 1 }), /unknown field 'processId' in closeHandle request/],
    ['checkIo exclusive', () => call('checkIo', { ...request('checkIo', '/u/7'), exclusive: true }), /unknown field 'exclusive' in checkIo request/],
    ['lock timeoutMS', () => call('lock', { ...request('lock', '/u/8'), timeoutMS: 10 }), /^unknown field 'timeoutMS' in lock request \(did you mean 'timeoutMs'\?\)$/],
    ['lock offset', () => call('lock', { ...request('lock', '/u/9'), offset: 5 }), /unknown field 'offset' in lock request/],
    ['lock lockowner', () => call('lock', { ...request('lock', '/u/10'), lockowner: 5 }), /unknown field 'lockowner' in lock request \(did you mean 'lockOwner'\?\)/],
    ['lock handleContext (a Windows field)', () => call('lock', { ...request('lock', '/u/11'), handleContext: 1 }), /unknown field 'handleContext' in lock request/],
    ['flush fileHandle', () => call('flush', { ...request('flush', '/u/12'), fileHandle: 1 }), /unknown field 'fileHandle' in flush request/],
    ['release lockPid', () => call('release', { ...request('release', '/u/13'), lockPid: 1 }), /^unknown field 'lockPid' in release request$/],
    ['an unknown field with value undefined', () => call('lock', { ...request('lock', '/u/14'), timeoutMS: undefined }), /unknown field 'timeoutMS'/],
  ];
  for (const [what, f, message] of cases) {
    const res = await besideOther(t, what, f);
    t.equal(res.status, 'rejected', what);
    t.match((res as PromiseRejectedResult).reason, { name: 'TypeError', message }, what);
  }
  for (let i = 1; i <= 14; i++) t.strictSame(await c.locks(`/u/${i}`), [], `nothing was granted on /u/${i}`);
});

t.test('the check is on own keys: inherited fields are read, symbol keys and non-enumerable keys are ignored', async (t) => {
  const proto = { fileName: '/own/1' };
  const r = Object.assign(Object.create(proto) as Req, { byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 1 });
  (r as Record<symbol, unknown>)[Symbol('tag')] = 'mine';
  Object.defineProperty(r, 'note', { value: 'hidden', enumerable: false });
  t.equal(await call('lockFile', r), 0, 'a request whose fileName is inherited');
  t.strictSame((await c.locks('/own/1')).length, 1);
});

t.test('known fields keep their checks after the snapshot', async (t) => {
  // A wrong type is still the TypeError naming the field; a value out of range still its code.
  await t.rejects(call('lock', { ...request('lock', '/k/1'), lockOwner: {} }), { name: 'TypeError', message: /\blockOwner\b/ });
  t.strictSame(await call('lock', { ...request('lock', '/k/2'), lockType: 9 }), { result: -EINVAL, lockType: 9, lockStart: 0n, lockLen: 10n, lockPid: 1 });
});

// ---- options -----------------------------------------------------------------------------------

t.test('start({ store }): a malformed store option is a TypeError naming it, before any connection', async (t) => {
  await t.rejects(LockCoordinator.start({ workers: 1, store: { url: 'redis://127.0.0.1:1', nameSpace: 'x' } as never }), { name: 'TypeError', message: /nameSpace/ });
  await t.rejects(LockCoordinator.start({ workers: 1, store: 42 as never }), { name: 'TypeError', message: /options\.store/ });
  await t.rejects(LockCoordinator.start({ workers: 1, store: { url: 'redis://127.0.0.1:1', node: 'a b' } }), { name: 'TypeError', message: /store\.node/ });
});
