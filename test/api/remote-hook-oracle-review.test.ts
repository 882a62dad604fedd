/**
 * Review of issue 13: a veto by b's approval hook of a grant of b's waiter by a's release must
 * leave the file as a node alone leaves it when its hook vetoes that grant (the hook is asked
 * before the lock is applied). Each case runs twice: on one coordinator without a store (the
 * oracle: a's owners and b's on the same node) and on two nodes a and b sharing a store; the
 * waiter's result and every granted lock afterwards must be the same.
 */
import t, { type Test } from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, waiting } from './remote-hook-nodes.js';

type Kind = 'posix' | 'ofd' | 'flock' | 'windows';
type Op = { node: 'a' | 'b'; kind: Kind; owner: number; type: 'r' | 'w' | 'u'; start: number; len: number };
type Case = { name: string; setup: Op[]; waiters: Op[]; release: Op; vetoed: (o: Op) => boolean; todo?: string };

const VETO_P = -13;
const VETO_W = 5;

function call(c: LockCoordinator, path: string, o: Op, wait: boolean): Promise<number> {
  if (o.kind === 'windows') {
    if (o.type === 'u') return c.unlockFile({ fileName: path, byteOffset: o.start, length: o.len, handle: o.owner });
    return c.lockFile({ fileName: path, byteOffset: o.start, length: o.len, exclusiveLock: o.type === 'w', failImmediately: !wait, handle: o.owner });
  }
  const lockType = o.type === 'r' ? F_RDLCK : o.type === 'w' ? F_WRLCK : F_UNLCK;
  const range = o.kind === 'flock' ? {} : { lockStart: o.start, lockLen: o.len };
  return c.lock({ path, kind: o.kind, lockType, ...range, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: o.owner }).then((r) => r.result);
}

async function run(t: Test, cse: Case, shared: boolean): Promise<{ results: number[]; locks: string[] }> {
  let armed = false;
  let waiterOps: Op[] = [];
  const judge = (kind: Kind, owner: unknown, write: boolean, start: bigint | undefined): number => {
    if (!armed) return 0;
    const o = waiterOps.find((w) => w.kind === kind && w.owner === owner && (w.type === 'w') === write && (start === undefined || kind === 'flock' || BigInt(w.start) === start));
    if (o === undefined || !cse.vetoed(o)) return 0;
    return kind === 'windows' ? VETO_W : VETO_P;
  };
  const hooks = {
    onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge((e.kind ?? 'posix') as Kind, e.lockOwner, e.lockType === F_WRLCK, e.lockStart)),
    onLockFile: (e: LockFileEvent) => judge('windows', e.handle, e.exclusiveLock, e.byteOffset),
    onUnlockFile: () => {},
  };
  let a: LockCoordinator;
  let b: LockCoordinator;
  if (shared) {
    ({ a, b } = await hookNodes(t, 'rhoracle', hooks));
    // The grace period of a fresh lock space, waited out before the case.
    t.equal(await call(a, '/warm', { node: 'a', kind: 'posix', owner: 99, type: 'w', start: 0, len: 1 }, false), 0);
    t.equal(await call(b, '/warm', { node: 'b', kind: 'posix', owner: 98, type: 'w', start: 5, len: 1 }, false), 0);
  } else {
    a = b = await LockCoordinator.start({ workers: 1, ...hooks });
    t.teardown(() => a.stop());
  }
  const path = '/o';
  const on = (o: Op) => (o.node === 'a' ? a : b);
  for (const o of cse.setup) t.equal(await call(on(o), path, o, false), 0, `setup ${JSON.stringify(o)}`);
  waiterOps = cse.waiters;
  const ps: Promise<number>[] = [];
  for (const w of cse.waiters) {
    ps.push(call(on(w), path, w, true));
    await waiting(shared ? [a, b] : [a], path, ps.length);
  }
  armed = true;
  t.equal(await call(on(cse.release), path, cse.release, false), 0, 'the release');
  const results: number[] = [];
  for (const p of ps) results.push(await settles(p, 'a waiter'));
  const locks = (await b.locks(path))
    .filter((e) => e.state === 'granted')
    .map((e) => `${e.kind} ${String(e.owner).replace(/@.*/, '')} ${e.type} ${e.start}-${e.end}`)
    .sort();
  return { results, locks };
}

const cases: Case[] = [
  {
    name: 'flock conversion read -> write vetoed',
    setup: [
      { node: 'b', kind: 'flock', owner: 3, type: 'r', start: 0, len: 0 },
      { node: 'a', kind: 'flock', owner: 2, type: 'r', start: 0, len: 0 },
    ],
    waiters: [{ node: 'b', kind: 'flock', owner: 3, type: 'w', start: 0, len: 0 }],
    release: { node: 'a', kind: 'flock', owner: 2, type: 'u', start: 0, len: 0 },
    vetoed: () => true,
  },
  {
    name: 'ofd partial upgrade vetoed',
    setup: [
      { node: 'b', kind: 'ofd', owner: 3, type: 'r', start: 0, len: 20 },
      { node: 'a', kind: 'ofd', owner: 2, type: 'r', start: 10, len: 20 },
    ],
    waiters: [{ node: 'b', kind: 'ofd', owner: 3, type: 'w', start: 5, len: 20 }],
    release: { node: 'a', kind: 'ofd', owner: 2, type: 'u', start: 10, len: 20 },
    vetoed: () => true,
  },
  {
    name: 'posix read over part of its own write (downgrade of a part, extension) vetoed',
    setup: [
      { node: 'b', kind: 'posix', owner: 3, type: 'w', start: 0, len: 10 },
      { node: 'a', kind: 'posix', owner: 2, type: 'w', start: 10, len: 10 },
    ],
    waiters: [{ node: 'b', kind: 'posix', owner: 3, type: 'r', start: 5, len: 15 }],
    release: { node: 'a', kind: 'posix', owner: 2, type: 'u', start: 10, len: 10 },
    vetoed: () => true,
  },
  {
    name: 'posix: two waiters of one owner (adjacent) granted by one release, the first vetoed',
    setup: [{ node: 'a', kind: 'posix', owner: 2, type: 'w', start: 0, len: 20 }],
    waiters: [
      { node: 'b', kind: 'posix', owner: 3, type: 'w', start: 0, len: 10 },
      { node: 'b', kind: 'posix', owner: 3, type: 'w', start: 10, len: 10 },
    ],
    release: { node: 'a', kind: 'posix', owner: 2, type: 'u', start: 0, len: 20 },
    vetoed: (o) => o.start === 0,
  },
  {
    name: 'posix: two waiters of one owner (overlapping, read then write) granted by one release, the write vetoed',
    setup: [{ node: 'a', kind: 'posix', owner: 2, type: 'w', start: 0, len: 20 }],
    waiters: [
      { node: 'b', kind: 'posix', owner: 3, type: 'r', start: 0, len: 15 },
      { node: 'b', kind: 'posix', owner: 3, type: 'w', start: 5, len: 15 },
    ],
    release: { node: 'a', kind: 'posix', owner: 2, type: 'u', start: 0, len: 20 },
    vetoed: (o) => o.type === 'w',
  },
  {
    name: 'posix: two waiters of one owner (overlapping, read then write) granted by one release, the read vetoed',
    setup: [{ node: 'a', kind: 'posix', owner: 2, type: 'w', start: 0, len: 20 }],
    waiters: [
      { node: 'b', kind: 'posix', owner: 3, type: 'r', start: 0, len: 15 },
      { node: 'b', kind: 'posix', owner: 3, type: 'w', start: 5, len: 15 },
    ],
    release: { node: 'a', kind: 'posix', owner: 2, type: 'u', start: 0, len: 20 },
    vetoed: (o) => o.type === 'r',
  },
  {
    name: 'windows: a handle with other locks, its waiter vetoed',
    setup: [
      { node: 'b', kind: 'windows', owner: 3, type: 'r', start: 20, len: 10 },
      { node: 'b', kind: 'windows', owner: 3, type: 'w', start: 40, len: 5 },
      { node: 'a', kind: 'windows', owner: 2, type: 'w', start: 0, len: 10 },
    ],
    waiters: [
      { node: 'b', kind: 'windows', owner: 3, type: 'r', start: 0, len: 10 },
      { node: 'b', kind: 'windows', owner: 3, type: 'r', start: 5, len: 5 },
    ],
    release: { node: 'a', kind: 'windows', owner: 2, type: 'u', start: 0, len: 10 },
    vetoed: (o) => o.start === 0,
  },
];

for (const cse of cases) {
  t.test(cse.name, { skip: noRedis, ...(cse.todo === undefined ? {} : { todo: cse.todo }) }, async (t) => {
    let want: { results: number[]; locks: string[] } | undefined;
    await t.test('oracle', async (tt) => {
      want = await run(tt, cse, false);
    });
    let got: { results: number[]; locks: string[] } | undefined;
    await t.test('two nodes', async (tt) => {
      got = await run(tt, cse, true);
    });
    t.same(got?.results, want?.results, `the waiters' results as a node alone (${JSON.stringify(want?.results)})`);
    t.same(got?.locks, want?.locks, `the locks afterwards as a node alone (${JSON.stringify(want?.locks)})`);
  });
}
