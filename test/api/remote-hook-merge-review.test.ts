/**
 * Review of issue 13 (a waiter granted by another node's step asks its own node's approval hook):
 * a POSIX waiter whose grant merges with its owner's other locks on the file. A veto refuses the
 * request; it must not take bytes the owner held before it asked (as a node alone: the hook is
 * asked before the lock is applied, so a vetoed upgrade keeps the read lock).
 */
import t, { type Test } from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent, type PosixKind } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, waiting } from './remote-hook-nodes.js';

const VETO = -13;

/** A request of `kind` and `owner` for `type` on [start, start+len) of `path` (waiting if `wait`); its result as a number. */
const lk = (c: LockCoordinator, path: string, kind: PosixKind, owner: number, type: number, start: number, len: number, wait = false): Promise<number> =>
  c.lock({ path, ...(kind === 'posix' ? {} : { kind }), lockType: type, lockStart: start, lockLen: len, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner }).then((r) => r.result);

const held = async (c: LockCoordinator, path: string, owner: number) =>
  (await c.locks(path)).filter((e) => e.state === 'granted' && String(e.owner) === String(owner)).map((e) => `${e.type} ${e.start}-${e.end}`);

type Range = [type: number, start: number, len: number];
const says = (who: string, [type, start, len]: Range) => `${who} ${type === F_RDLCK ? 'reads' : 'writes'} [${start},${start + len})`;

/**
 * b's owner 3 holds `had` and a's owner 2 holds `theirs`; b's owner 3 asks for `want` and waits; a
 * releases `theirs`, and b's hook vetoes the grant (the events `vetoed` picks once armed). Asserts
 * that the veto is the caller's result, that the hook was asked once, and that b's owner holds
 * `keeps`; returns a's requests on the file (owner, type, start, len) for the case's own checks.
 */
async function vetoedGrant(
  t: Test,
  o: { path: string; kind: PosixKind; vetoed: (e: LockEvent) => boolean; had: Range; theirs: Range; want: Range; what: string; keeps: string[]; keepsSays: string },
) {
  let vetoing = false;
  let asked = 0;
  const { a, b } = await hookNodes(t, 'rhmerge', {
    onLock: (e: LockEvent) => {
      if (e.lockType === F_UNLCK || !(vetoing && o.vetoed(e))) return 0;
      asked++;
      return VETO;
    },
  });
  const who = o.kind === 'ofd' ? 'OFD' : 'owner';
  t.equal(await lk(b, o.path, o.kind, 3, ...o.had), 0, says(`b ${who} 3`, o.had));
  t.equal(await lk(a, o.path, o.kind, 2, ...o.theirs), 0, says(`a ${who} 2`, o.theirs));
  const w = lk(b, o.path, o.kind, 3, ...o.want, true);
  await waiting(b, o.path, 1);
  vetoing = true;
  t.equal(await lk(a, o.path, o.kind, 2, F_UNLCK, o.theirs[1], o.theirs[2]), 0, 'a unlocks');
  t.equal(await settles(w, `b's ${o.what}`), VETO, `b's ${o.what} gets its hook's code`);
  t.equal(asked, 1, "b's hook was asked once for the grant by a's release");
  t.same(await held(b, o.path, 3), o.keeps, o.keepsSays);
  return (owner: number, type: number, start: number, len: number) => lk(a, o.path, o.kind, owner, type, start, len);
}

t.test("posix: a vetoed upgrade (read -> write) granted by another node's release keeps the owner's read lock", { skip: noRedis }, async (t) => {
  const aLocks = await vetoedGrant(t, {
    path: '/up',
    kind: 'posix',
    vetoed: (e) => e.lockOwner === 3 && e.lockType === F_WRLCK,
    had: [F_RDLCK, 0, 10],
    theirs: [F_RDLCK, 0, 10],
    want: [F_WRLCK, 0, 10],
    what: 'upgrade',
    keeps: ['read 0-9'],
    keepsSays: "b's owner still holds the read lock it had before asking",
  });
  t.equal(await aLocks(5, F_WRLCK, 0, 10), -11, "a's write on those bytes conflicts with b's read lock");
});

t.test("posix: a vetoed extension (adjacent range) granted by another node's release keeps the owner's earlier bytes", { skip: noRedis }, async (t) => {
  const aLocks = await vetoedGrant(t, {
    path: '/adj',
    kind: 'posix',
    vetoed: (e) => e.lockOwner === 3 && e.lockStart === 10n,
    had: [F_WRLCK, 0, 10],
    theirs: [F_WRLCK, 10, 10],
    want: [F_WRLCK, 10, 10],
    what: 'extension',
    keeps: ['write 0-9'],
    keepsSays: "b's owner still holds [0,10)",
  });
  t.equal(await aLocks(5, F_WRLCK, 0, 10), -11, "a's write on [0,10) conflicts with b's lock");
  t.equal(await aLocks(5, F_WRLCK, 10, 10), 0, 'and [10,20) is free');
});

for (const kind of ['posix', 'ofd'] as const) {
  t.test(`${kind}: a vetoed write over the owner's own read lock on part of the range keeps that read lock`, { skip: noRedis }, async (t) => {
    const aLocks = await vetoedGrant(t, {
      path: kind === 'posix' ? '/part' : '/ofd',
      kind,
      vetoed: (e) => e.lockOwner === 3 && e.lockType === F_WRLCK,
      had: [F_RDLCK, 0, 5],
      theirs: [F_WRLCK, 5, 5],
      want: [F_WRLCK, 0, 10],
      what: 'write',
      keeps: ['read 0-4'],
      keepsSays: `b's ${kind === 'ofd' ? 'OFD' : 'owner'} still holds its read lock on [0,5)`,
    });
    if (kind === 'ofd') t.equal(await aLocks(5, F_WRLCK, 0, 5), -11, "a's write on [0,5) conflicts with b's read lock");
  });
}
