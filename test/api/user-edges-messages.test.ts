/**
 * What a new user reads when a call is wrong (issue 13): each TypeError names the field and shows
 * the bad value readably, through one helper (describeValue): `got undefined`, `got the string '0'`,
 * never the type and the text run together ("got undefined undefined", "got string 0"). A store
 * URL with port 0 is refused at start, as a malformed URL naming it, before any connection.
 */
import t from 'tap';
import { describeValue } from '../../src/core/input.js';
import { LockCoordinator } from '../../src/index.js';

t.test('describeValue: what it is, readably, its type where the text would hide it', async (t) => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  for (const [v, shown] of [
    [undefined, 'undefined'],
    [null, 'null'],
    ['0', "the string '0'"],
    ['', "the string ''"],
    ["it's\n", "the string 'it\\'s\\n'"],
    ['x'.repeat(100), `the string '${'x'.repeat(60)}…'`],
    [0, '0'],
    [1.5, '1.5'],
    [Number.NaN, 'NaN'],
    [true, 'true'],
    [5n, 'the bigint 5n'],
    [Symbol('s'), 'a symbol'],
    [() => 1, 'a function'],
    [[1], 'an array'],
    [{ a: 1 }, 'an object'],
    [Object.create(null), 'an object'],
    [new Date(0), 'a Date'],
    [new AbortController(), 'an AbortController'],
    [revoked.proxy, 'an object'],
  ] as const) {
    t.equal(describeValue(v), shown, `${shown}`);
  }
});

/** A message that runs a type and a text together, as the old one did. */
const RUN_TOGETHER = /got (undefined undefined|string |number |boolean |bigint |object )/;

t.test('each request method: a missing or wrong field is a TypeError naming it and showing the value', async (t) => {
  const c = await LockCoordinator.start({ workers: 1 });
  t.teardown(() => c.stop());
  const W = { fileName: '/f', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 1 };
  const P = { path: '/p', lockType: 1, lockStart: 0, lockLen: 1, cmd: 6, lockOwner: 1 };
  const call = (m: string, r: unknown): Promise<unknown> => (c as unknown as Record<string, (r: unknown) => Promise<unknown>>)[m]!.call(c, r);
  const cases: [string, unknown, string][] = [
    ['lockFile', { ...W, fileName: undefined }, 'fileName must be a string, got undefined'],
    ['lockFile', { ...W, fileName: 0 }, 'fileName must be a string, got 0'],
    ['lockFile', { ...W, byteOffset: '0' }, "byteOffset must be a bigint or a safe-integer number, got the string '0'"],
    ['lockFile', { ...W, length: undefined }, 'length must be a bigint or a safe-integer number, got undefined'],
    ['lockFile', { ...W, byteOffset: 2 ** 60 }, 'byteOffset must be a bigint or a safe-integer number, got 1152921504606847000 (past Number.MAX_SAFE_INTEGER: pass it as a bigint)'],
    ['lockFile', { ...W, exclusiveLock: 'true' }, "exclusiveLock must be a boolean, got the string 'true'"],
    ['lockFile', { ...W, failImmediately: undefined }, 'failImmediately must be a boolean, got undefined'],
    ['lockFile', { ...W, handle: 1.5 }, 'handle must be a bigint, an integer number or a string, got 1.5'],
    ['lockFile', { ...W, handle: null }, 'handle must be a bigint, an integer number or a string, got null'],
    ['lockFile', { ...W, processId: true }, 'processId must be a bigint, an integer number or a string, got true'],
    ['lockFile', { ...W, timeoutMs: '5' }, "timeoutMs must be a number of milliseconds, got the string '5'"],
    ['lockFile', { ...W, signal: {} }, 'signal must be an AbortSignal, got an object'],
    ['lockFile', undefined, 'lockFile request must be an object, got undefined'],
    ['unlockFile', { fileName: '/f', byteOffset: 0, length: 1 }, 'handle must be a bigint, an integer number or a string, got undefined'],
    ['closeHandle', { handle: 1 }, 'fileName must be a string, got undefined'],
    ['checkIo', { fileName: '/f', handle: 1, byteOffset: 0, length: 1, write: 'yes' }, "write must be a boolean, got the string 'yes'"],
    ['lock', { ...P, lockType: '1' }, "lockType must be an integer number, got the string '1'"],
    ['lock', { ...P, cmd: 'F_SETLK' }, "cmd must be an integer number, got the string 'F_SETLK'"],
    ['lock', { ...P, lockStart: undefined }, 'lockStart must be a bigint or a safe-integer number, got undefined'],
    ['lock', { ...P, lockPid: 1.5 }, 'lockPid must be an integer number, got 1.5'],
    ['lock', { ...P, lockOwner: undefined }, 'lockOwner must be a bigint, an integer number or a string, got undefined'],
    ['lock', { ...P, kind: 'OFD' }, "kind must be 'posix', 'ofd' or 'flock', got the string 'OFD'"],
    ['flush', { path: '/p' }, 'lockOwner must be a bigint, an integer number or a string, got undefined'],
    ['release', { path: 5, fileHandle: 1 }, 'path must be a string, got 5'],
    ['locks', 5, 'path must be a string, got 5'],
  ];
  for (const [m, req, message] of cases) {
    const e = await call(m, req).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(e instanceof TypeError, `${m}: a TypeError (${message})`);
    t.equal((e as Error | undefined)?.message, message, `${m}: ${message}`);
    t.notMatch((e as Error | undefined)?.message ?? '', RUN_TOGETHER, `${m}: no type and text run together`);
  }
  // The coordinator keeps serving.
  t.equal(await c.lockFile(W), 0, 'a good request after them is granted');
});

t.test('start options: the field named, the value shown', async (t) => {
  for (const [o, message] of [
    [{ workers: '2' }, "options.workers must be an integer from 1 to 256, got the string '2'"],
    [{ policy: 0 }, "options.policy must be 'default' or 'fifo', got 0"],
    [{ policy: 'FIFO' }, "options.policy must be 'default' or 'fifo', got the string 'FIFO'"],
    [{ hookTimeoutMs: '5' }, "options.hookTimeoutMs must be a positive number of milliseconds, got the string '5'"],
    [{ onLock: 'x' }, "options.onLock must be a function, got the string 'x'"],
    [{ store: {} }, "store.url must be a string such as 'redis://127.0.0.1:6379', got undefined"],
    [{ store: { url: 'redis://127.0.0.1:1', sessionTtlMs: '1' } }, "store.sessionTtlMs must be an integer from 100 to 2147483647, got the string '1'"],
    [{ store: { url: 'redis://127.0.0.1:1', namespace: '' } }, "store.namespace must be 1 to 64 of A-Z a-z 0-9 . _ : -, got the string ''"],
    [{ store: { url: 'redis://127.0.0.1:1', node: 7 } }, 'store.node must be 1 to 64 of A-Z a-z 0-9 . _ -, got 7'],
    [{ store: 6379 }, 'options.store must be a URL or { url, namespace, node, sessionTtlMs, requestTimeoutMs }, got 6379'],
  ] as const) {
    await t.rejects(LockCoordinator.start(o as never), { name: 'TypeError', message }, message);
  }
});

t.test('a store URL with port 0 is a malformed URL, said at start without connecting', async (t) => {
  for (const url of ['redis://127.0.0.1:0', 'rediss://u:secret@db.example:00/2']) {
    const e = await LockCoordinator.start({ workers: 1, store: url }).then(
      async (c) => {
        await c.stop();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    t.ok(e instanceof Error, `${url}: start rejects`);
    t.match(e?.message ?? '', /^locksmith store: malformed URL '.*': port 0 cannot be connected to/, `${url}: a malformed URL, port 0 named`);
    t.notMatch(e?.message ?? '', /secret/, 'the password is not shown');
    t.notMatch(e?.message ?? '', /refused|cannot reach/, 'no connection was tried');
  }
});

t.test('new LockCoordinator() from JavaScript says to use start()', async (t) => {
  const Ctor = LockCoordinator as unknown as new (...args: unknown[]) => unknown;
  // Before: "Cannot read properties of undefined (reading 'policy')" from deep inside.
  t.throws(() => new Ctor(), { name: 'TypeError', message: 'LockCoordinator has no public constructor: use `await LockCoordinator.start(options)`' });
  const c = await LockCoordinator.start({ workers: 1 });
  t.teardown(() => c.stop());
  t.equal(await c.checkIo({ fileName: '/f', handle: 1, byteOffset: 0, length: 1, write: true }), 0, 'start() still constructs one');
});
