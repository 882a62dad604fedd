/**
 * Review of issue 13 (a waiter's worker dies while its node's hook judges another node's grant;
 * the replacement judges it again "as the first worker would have", API.md): the same scene run
 * with and without the crash must end alike, for owners that held other locks on the file before
 * the grant (the author's tests cover a POSIX adjacent lock only): a POSIX upgrade (read under
 * the write asked), an OFD owner with locks on both sides, a flock conversion, a Windows handle
 * with other locks. Both verdicts (veto, approve) of the hook run last are compared.
 */
import t from 'tap';
import { F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type LockCoordinator, type LockEvent, type LockFileEvent } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { settles } from './helpers.js';
import { hookNodes, later, waiting, type Deferred } from './remote-hook-nodes.js';

type Kind = 'posix' | 'ofd' | 'flock' | 'windows';

const take = (c: LockCoordinator, kind: Kind, path: string, owner: number, write: boolean, start: number, len: number, wait = false): Promise<number> =>
  kind === 'windows'
    ? c.lockFile({ fileName: path, byteOffset: start, length: len, exclusiveLock: write, failImmediately: !wait, handle: owner })
    : c.lock({ path, kind, lockType: write ? F_WRLCK : F_RDLCK, lockStart: start, lockLen: len, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner }).then((r) => r.result);

const drop = (c: LockCoordinator, kind: Kind, path: string, owner: number, start: number, len: number): Promise<number> =>
  kind === 'windows'
    ? c.unlockFile({ fileName: path, byteOffset: start, length: len, handle: owner })
    : c.lock({ path, kind, lockType: F_UNLCK, lockStart: start, lockLen: len, cmd: F_SETLK, lockOwner: owner }).then((r) => r.result);

/** Each scene: what b owner 3 holds first, what a owner 2 holds, b owner 3's waiter, and a's unlock that grants it. */
const scenes: Record<Kind, { held: [boolean, number, number][]; a: [boolean, number, number]; want: [boolean, number, number] }> = {
  // an upgrade: owner 3 reads [0,10) and asks to write [0,20) past a's read of [5,15)
  posix: { held: [[false, 0, 10]], a: [false, 5, 10], want: [true, 0, 20] },
  // locks on both sides of the bytes asked, in both modes
  ofd: { held: [[true, 0, 10], [false, 20, 10]], a: [true, 12, 2], want: [true, 5, 20] },
  // a conversion shared -> exclusive past a's shared lock
  flock: { held: [[false, 0, 0]], a: [false, 0, 0], want: [true, 0, 0] },
  // a handle with other locks beside the bytes asked
  windows: { held: [[false, 0, 10], [true, 20, 10]], a: [true, 10, 10], want: [true, 10, 10] },
};

for (const kind of ['posix', 'ofd', 'flock', 'windows'] as const) {
  t.test(`${kind}: b's worker dies while b's hook judges a grant by a's release to an owner with other locks: it ends as without the crash`, { skip: noRedis }, async (t) => {
    const code = kind === 'windows' ? 5 : -13;
    type Plan = { veto: boolean; crash: boolean; asked: number; first: Deferred<void>; verdict: Deferred<number> };
    const plans = new Map<string, Plan>();
    const judge = (path: string, owner: unknown): number | Promise<number> => {
      const p = plans.get(path);
      if (p === undefined || owner !== 3) return 0;
      p.asked++;
      if (p.crash && p.asked === 1) {
        p.first.resolve();
        return p.verdict.promise;
      }
      return p.veto ? code : 0;
    };
    const { a, b } = await hookNodes(t, `rhckinds-${kind}`, {
      onLock: (e: LockEvent) => (e.lockType === F_UNLCK ? 0 : judge(e.path, e.lockOwner)),
      onLockFile: (e: LockFileEvent) => judge(e.fileName, e.handle),
      onUnlockFile: () => {},
    });
    t.equal(await take(b, kind, '/warm', 1, true, 0, 10), 0, 'b locks (after the grace period)');
    const sc = scenes[kind];
    const listing = async (path: string) =>
      (await a.locks(path)).map((e) => `${e.state} ${e.node} ${e.kind} ${String(e.owner)} ${e.type} ${e.start}-${e.end}`).sort();
    const run = async (veto: boolean, crash: boolean) => {
      const path = `/${kind}-${veto ? 'veto' : 'approve'}-${crash ? 'crash' : 'plain'}`;
      for (const [w, s, l] of sc.held) if ((await take(b, kind, path, 3, w, s, l)) !== 0) throw new Error(`b owner 3 locks ${s}+${l}`);
      if ((await take(a, kind, path, 2, sc.a[0], sc.a[1], sc.a[2])) !== 0) throw new Error('a locks');
      const bWaits = take(b, kind, path, 3, sc.want[0], sc.want[1], sc.want[2], true);
      await waiting(b, path, 1);
      const p: Plan = { veto, crash, asked: 0, first: later(), verdict: later<number>() };
      plans.set(path, p);
      if ((await drop(a, kind, path, 2, sc.a[1], sc.a[2])) !== 0) throw new Error('a unlocks');
      if (crash) {
        await settles(p.first.promise, `${path}: b's hook asked`);
        await settles(b.crashWorker(0), `${path}: b's worker replaced`);
        // The first verdict, dropped: the opposite of the one run again.
        p.verdict.resolve(veto ? 0 : code);
      }
      const result = await settles(bWaits, `${path}: b's waiter`);
      return { result, held: await listing(path), asked: p.asked };
    };
    for (const veto of [true, false]) {
      const plain = await run(veto, false);
      t.equal(plain.result, veto ? code : 0, `${veto ? 'veto' : 'approve'} without a crash: the hook's code`);
      const crashed = await run(veto, true);
      t.equal(crashed.asked, 2, `${veto ? 'veto' : 'approve'} with a crash: the hook asked again`);
      t.equal(crashed.result, plain.result, `${veto ? 'veto' : 'approve'} with a crash: the same result`);
      t.same(crashed.held, plain.held, `${veto ? 'veto' : 'approve'} with a crash: the same locks (${plain.held.join(', ')})`);
    }
  });
}
