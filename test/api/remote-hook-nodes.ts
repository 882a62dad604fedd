/**
 * The setting of the remote-hook tests (issue 13: a waiter granted by another node's step asks its
 * own node's approval hook): a redis-server of the test's own, a fresh namespace, and two nodes
 * over it, `a` and `b`, each a coordinator with one worker; `b` (and `a` where a test asks) with
 * the hooks the test gives. Everything is stopped at the test's end.
 */
import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, type StartOptions, type StoreOptions } from '../../src/index.js';
import { RedisServer } from '../store/redis-server.js';
import { replacementLaunched, settles } from './helpers.js';

/** A node's options besides its store and workers: its hooks, hookTimeoutMs. */
export type NodeOptions = Omit<StartOptions, 'store' | 'workers'>;

/**
 * Starts the engine and nodes a and b in the namespace `${prefix}-<8 random hex>`, b with `b`'s
 * options and a with `o.a`'s; each store with sessionTtlMs 1000 unless `o.store` says otherwise.
 * `stopB` stops b before the test ends (its teardown then stops only a).
 */
export async function hookNodes(
  t: Test,
  prefix: string,
  b: NodeOptions,
  o: { a?: NodeOptions; store?: Pick<StoreOptions, 'sessionTtlMs' | 'requestTimeoutMs'> } = {},
): Promise<{ server: RedisServer; a: LockCoordinator; b: LockCoordinator; stopB: () => Promise<void> }> {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const namespace = `${prefix}-${randomUUID().slice(0, 8)}`;
  const store = (node: string) => ({ url: server.url, namespace, node, sessionTtlMs: 1000, ...o.store });
  // Each node's teardown is set as soon as it runs: a start that fails (b's) leaves none running.
  const nodeA = await LockCoordinator.start({ workers: 1, store: store('a'), ...o.a });
  t.teardown(() => nodeA.stop());
  const nodeB = await LockCoordinator.start({ workers: 1, store: store('b'), ...b });
  let bStopped = false;
  t.teardown(() => (bStopped ? undefined : nodeB.stop()));
  const stopB = () => {
    bStopped = true;
    return nodeB.stop();
  };
  return { server, a: nodeA, b: nodeB, stopB };
}

/** Resolves once the coordinators `cs` list `n` waiting requests on `path` between them (each poll after the last one answered). */
export async function waiting(cs: LockCoordinator | LockCoordinator[], path: string, n: number): Promise<void> {
  const all = Array.isArray(cs) ? cs : [cs];
  for (;;) {
    let k = 0;
    for (const c of all) k += (await c.locks(path)).filter((e) => e.state === 'waiting').length;
    if (k >= n) return;
    await new Promise((r) => setImmediate(r));
  }
}

/** A POSIX request of `owner` for `type` on [start, start+len) of `path`, waiting (F_SETLKW) if `wait`, ended by `signal` if given; its result as a number. */
export const lock = (c: LockCoordinator, path: string, owner: number, type: number, start: number, len: number, wait = false, signal?: AbortSignal): Promise<number> =>
  c.lock({ path, lockType: type, lockStart: start, lockLen: len, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner, ...(signal ? { signal } : {}) }).then((r) => r.result);

/** A promise with its resolve. */
export type Deferred<T> = { promise: Promise<T>; resolve: (v: T) => void };

/** A promise and what settles it: the answer a hook awaits from the test, or the sign a test awaits from a hook. */
export function later<T = void>(): Deferred<T> {
  let resolve: (v: T) => void = () => {};
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Approval verdicts for one owner (a POSIX lockOwner or a Windows handle) once `arm()` was called:
 * the first asked hangs until `verdict.resolve` (`firstAsked` settles as it is asked: the worker
 * can be killed meanwhile), later ones answer `then`. Other owners, and anything asked before
 * `arm()`, are approved. `asked()`: how many times the armed owner's approval was asked.
 */
export function firstHangs(owner: number, then: number): {
  judge: (owner: unknown) => number | Promise<number>;
  arm: () => void;
  firstAsked: Promise<void>;
  verdict: { resolve: (v: number) => void };
  asked: () => number;
} {
  let armed = false;
  let asked = 0;
  const first = later();
  const verdict = later<number>();
  const judge = (o: unknown): number | Promise<number> => {
    if (!armed || o !== owner) return 0;
    if (++asked > 1) return then;
    first.resolve();
    return verdict.promise;
  };
  return { judge, arm: () => void (armed = true), firstAsked: first.promise, verdict, asked: () => asked };
}

/**
 * The approval hook of the resent-judged reviews: once armed, it notes each judgement of owners
 * `held` and `other` (`asked`), approves `other` at once, and holds `held`'s first two judgements
 * (one per worker: the one that dies, its replacement) until the test resolves `verdict[n]`;
 * `heldAsked[n]` settles when the n-th is asked. Later ones are approved.
 */
export function holdsTwice(held: number, other: number): {
  judge: (owner: number) => number | Promise<number>;
  arm: () => void;
  asked: number[];
  heldAsked: Deferred<void>[];
  verdict: Deferred<number>[];
} {
  let armed = false;
  const asked: number[] = [];
  const heldAsked = [later(), later()];
  const verdict = [later<number>(), later<number>()];
  const judge = (o: number): number | Promise<number> => {
    if (!armed || (o !== held && o !== other)) return 0;
    asked.push(o);
    if (o !== held) return 0;
    const n = asked.filter((x) => x === held).length - 1;
    if (n > 1) return 0;
    heldAsked[n]!.resolve();
    return verdict[n]!.promise;
  };
  return { judge, arm: () => void (armed = true), asked, heldAsked, verdict };
}

/**
 * requestTimeoutMs of the reviews where a resent judged request ends by its deadline while another
 * request's hook holds its file's mailbox. Every other step of theirs must commit within it: with
 * 1 s, a CI run under load once answered an approved grant's fenced step with the generic code.
 */
export const JUDGED_STEP_MS = 3000;

/** A lock family the crash reviews run in both of. */
export type Family = 'posix' | 'windows';

/** Owner (lockOwner or handle) `owner` of `c` takes [start, start+10) of `path` exclusively; `wait`: F_SETLKW / a waiting LockFileEx. */
export const take = (c: LockCoordinator, f: Family, path: string, owner: number, start: number, wait: boolean, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<number> =>
  f === 'posix'
    ? c.lock({ path, lockType: F_WRLCK, lockStart: start, lockLen: 10, cmd: wait ? F_SETLKW : F_SETLK, lockOwner: owner, ...o }).then((r) => r.result)
    : c.lockFile({ fileName: path, byteOffset: start, length: 10, exclusiveLock: true, failImmediately: !wait, handle: owner, ...o });

/** Owner `owner` of `c` unlocks [start, start+10) of `path` (F_UNLCK / UnlockFileEx). */
export const drop = (c: LockCoordinator, f: Family, path: string, owner: number, start: number): Promise<number> =>
  f === 'posix'
    ? c.lock({ path, lockType: F_UNLCK, lockStart: start, lockLen: 10, cmd: F_SETLK, lockOwner: owner }).then((r) => r.result)
    : c.unlockFile({ fileName: path, byteOffset: start, length: 10, handle: owner });

/**
 * `c`'s worker 0 dies, and its replacement dies as soon as it is launched (the requests sent again
 * to it queued, none done): resolves once both are replaced.
 */
export async function twoDeaths(c: LockCoordinator): Promise<void> {
  const launched = replacementLaunched("worker 0's first replacement");
  const first = c.crashWorker(0);
  await launched;
  const second = c.crashWorker(0);
  await settles(first, 'worker 0 replaced');
  await settles(second, "worker 0's replacement replaced");
}
