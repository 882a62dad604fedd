/**
 * The lock call's wire form (src/wire/calls.ts): what a worker decodes must be the Call that the
 * public parse makes of the same request, for every shape of range and identity, whether it crossed
 * as wire items or as doubles, and the reply the coordinator builds from its own record must echo
 * the request's fields as parseLock's would.
 */
import t from 'tap';
import { F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, OFFSET_MAX } from '../../src/core/codes.js';
import { decodeLock, parseLock, replyOf, replyOfLock, type Call, type DecodedLock } from '../../src/core/requests.js';
import { LOCK_DOUBLES, T_LOCK, callEnd, callId, decodeCall, decodeLockDoubles, encodeLock, fitsDoubles, writeLockDoubles } from '../../src/wire/calls.js';

const requests: Record<string, unknown>[] = [
  { path: '/a', lockType: F_WRLCK, lockStart: 16, lockLen: 8, cmd: F_SETLK, lockOwner: 7, lockPid: 70 },
  { path: '/a', lockType: F_RDLCK, lockStart: 16n, lockLen: 8n, cmd: F_SETLKW, lockOwner: 7n },
  { path: '/a', lockType: F_UNLCK, lockStart: 0, lockLen: 0, cmd: F_SETLK, lockOwner: 'x', kind: 'ofd', fileHandle: 3 },
  { path: '/a', lockType: F_WRLCK, lockStart: 100, lockLen: -40, cmd: F_GETLK, lockOwner: 1, lockPid: 2 },
  { path: '/a', lockType: F_WRLCK, lockStart: Number.MAX_SAFE_INTEGER, lockLen: 5, cmd: F_SETLK, lockOwner: 1 },
  { path: '/a', lockType: F_WRLCK, lockStart: 5, lockLen: OFFSET_MAX - 4n, cmd: F_SETLK, lockOwner: 1 },
  { path: '/a', lockType: F_WRLCK, lockStart: OFFSET_MAX, lockLen: 1, cmd: F_SETLK, lockOwner: 2 ** 60 },
  { path: '/f', lockType: F_WRLCK, cmd: F_SETLK, lockOwner: 9, kind: 'flock', fileHandle: 'h', fileContext: { n: 1 } },
  { path: '/f', lockType: F_RDLCK, lockStart: 3, lockLen: 4, cmd: F_SETLKW, lockOwner: 9, kind: 'flock' },
];

t.test('a lock call decoded from the wire is the Call parseLock makes', async (t) => {
  for (const [k, req] of requests.entries()) {
    const d = decodeLock(req);
    if (d.op !== 'lock') throw new Error(`request ${k} should be in range`);
    const wire = encodeLock(k + 10, d, req.fileContext);
    t.equal(callId(wire, 0), k + 10, `request ${k}: id`);
    t.equal(callEnd(wire, 0), wire.length, `request ${k}: length`);
    t.strictSame(decodeCall(structuredClone(wire), 0), parseLock(req) as Call, `request ${k}: same Call`);
    t.strictSame(replyOfLock(d, -11), replyOf((parseLock(req) as Extract<Call, { op: 'lock' }>).base, -11), `request ${k}: same reply`);
  }
});

t.test('out of range and malformed requests: decodeLock answers as parseLock does', async (t) => {
  const bad: Record<string, unknown>[] = [
    { path: '/a', lockType: F_WRLCK, lockStart: -1, lockLen: 8, cmd: F_SETLK, lockOwner: 1 },
    { path: '/a', lockType: F_WRLCK, lockStart: 4, lockLen: -5, cmd: F_SETLK, lockOwner: 1 },
    { path: '/a', lockType: F_WRLCK, lockStart: OFFSET_MAX + 1n, lockLen: 0, cmd: F_SETLK, lockOwner: 1 },
    { path: '/a', lockType: F_WRLCK, lockStart: 2n, lockLen: OFFSET_MAX, cmd: F_SETLK, lockOwner: 1 },
    { path: '/a', lockType: 9, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 1, lockPid: 4 },
    { path: '/a', lockType: F_WRLCK, cmd: F_SETLK, lockOwner: 1, kind: 'flock', lockStart: 0.5 },
  ];
  for (const [k, req] of bad.entries()) {
    let expected: unknown;
    try {
      expected = parseLock(req);
    } catch (e) {
      t.throws(() => decodeLock(req), { message: (e as Error).message }, `request ${k}: same TypeError`);
      continue;
    }
    t.strictSame(decodeLock(req), expected, `request ${k}: same reply`);
    t.notOk('op' in (decodeLock(req) as object), `request ${k}: no call`);
  }
});

t.test('the decoded record keeps numbers as numbers (they cross threads cheaper)', async (t) => {
  const d = decodeLock(requests[0]!) as DecodedLock;
  t.equal(typeof d.lockStart, 'number');
  t.equal(d.owner, 'pn7');
});

t.test('a lock call that crosses as doubles decodes to the Call parseLock makes; the others take the wire', async (t) => {
  const nums = new Float64Array(requests.length * LOCK_DOUBLES);
  const paths: string[] = [];
  const sent: number[] = [];
  let o = 0;
  for (const [k, req] of requests.entries()) {
    const d = decodeLock(req) as DecodedLock;
    const numeric = typeof req.lockOwner === 'number' && typeof req.lockStart !== 'bigint' && typeof req.lockLen !== 'bigint' && typeof (req.fileHandle ?? 0) === 'number' && req.fileContext === undefined;
    t.equal(fitsDoubles(d, req.fileContext), numeric, `request ${k}: fits doubles only with number fields and no fileContext`);
    if (!numeric) continue;
    writeLockDoubles(nums, o, k + 10, d);
    paths.push(d.path);
    sent.push(k);
    o += LOCK_DOUBLES;
  }
  t.ok(sent.length >= 4, 'several requests cross as doubles');
  // As posted: both lanes are structured-cloned.
  const [n2, p2] = structuredClone([nums, paths]) as [Float64Array, string[]];
  for (const [j, k] of sent.entries()) {
    t.equal(n2[j * LOCK_DOUBLES], T_LOCK, `request ${k}: tag`);
    t.equal(n2[j * LOCK_DOUBLES + 1], k + 10, `request ${k}: id`);
    t.strictSame(decodeLockDoubles(n2, j * LOCK_DOUBLES, p2[j]!), parseLock(requests[k]!) as Call, `request ${k}: same Call`);
  }
});
