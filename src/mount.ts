/**
 * The native pump connected to the actors: a FUSE mount whose locks a LockCoordinator's workers
 * decide, and the synthetic source run through the same path (benchmarks, machines without FUSE).
 *
 *   kernel ─▶ reader threads ─▶ destination fnv1a(path) % workers ─▶ worker's ActorHost
 *     │    ◀──────────── fuse_reply_* from the worker thread (src/native replyErr/replyLock) ◀─┘
 *     └──▶ a polling worker reads /dev/fuse itself (non-lock requests go to the reader threads)
 *
 * The main thread is not on that path: it only mounts, attaches the workers and unmounts.
 */
import { checkWorkers, defaultWorkers, refuseUnknown } from './caller/options.js';
import { describeValue, optionalBoolean } from './core/input.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { LockCoordinator } from './caller/coordinator.js';
import type { Policy } from './core/file-locks.js';
import type { StoreOptions } from './types.js';
import { cleanDeadMount, DeadMountError, isDeadMount } from './dead-mount.js';
import { realMountpoint } from './control.js';
import { thisMachine } from './machine.js';
import { SERVES, type ServingStoreOptions } from './store/options.js';
import { LEASE } from './caller/shared-space.js';
import * as pump from './native/index.js';
import type { SessionInfo } from './native/index.js';

export type { SessionInfo } from './native/index.js';
export { cleanDeadMount, DeadMountError, deadMountCommand, isDeadMount } from './dead-mount.js';

export interface FuseMountOptions {
  /** The directory whose files the mount shows. */
  backing: string;
  /** An existing directory to mount on. */
  mountpoint: string;
  /** Worker threads deciding locks (default: available parallelism). */
  workers?: number;
  /** Reader threads (default 4): they also run the mount's file I/O; a waiting lock request never holds one. */
  threads?: number;
  policy?: Policy;
  /**
   * false: do not negotiate the FUSE lock capabilities, so the kernel decides locks on the mount
   * itself (a reference for benchmarks). Default true.
   */
  locks?: boolean;
  /**
   * When the mountpoint is a dead FUSE mount (its server was killed), lazily unmount it first
   * (fusermount3 -u -z, else umount -l) instead of rejecting with a DeadMountError. Default false.
   */
  cleanStale?: boolean;
  /**
   * Share one lock space with every mount and coordinator on this engine and namespace (API.md
   * "One lock space across machines"). Files are then keyed by inode number alone ("ino:<st_ino>"),
   * which every node over the same shared storage sees alike: see ARCHITECTURE.md. The node's
   * session records where the mount serves (host name, machine identity, mountpoint): `locksmith
   * locks` names it so.
   */
  store?: string | StoreOptions;
}

export interface FuseMount {
  readonly mountpoint: string;
  readonly backing: string;
  /** The coordinator whose workers decide the mount's locks (locks(), stats()). */
  readonly coordinator: LockCoordinator;
  /** The native session's counters: INIT outcome, events, replies, interrupts. */
  info(): SessionInfo;
  /**
   * Answers every waiting request (EINTR if interrupted, else ENOLCK), unmounts, joins the native
   * threads and stops the workers. Safe to call more than once.
   */
  unmount(): Promise<void>;
  /**
   * unmount(), resolving to how many lock requests (fcntl and flock, F_GETLK included) it answered
   * itself: every one not answered yet (its process still waiting), also one a shared lock space
   * never counted as waiting (its step had not reached the engine), and any that arrived while it
   * unmounted. The one unmount: every call of either resolves once it is done, this to the same count.
   */
  unmountCounted(): Promise<number>;
}

/** Why FUSE mounts cannot work in this build, or undefined when they can. */
export function fuseUnavailable(): string | undefined {
  const n = pump.nativeAvailable();
  if (!n.ok) return n.reason;
  if (!pump.hasFuse) return 'this build of locksmith has no FUSE support (install libfuse3-dev and pkg-config, then run npm rebuild)';
  return undefined;
}

/**
 * Whether something is mounted at `mountpoint` now (/proc/self/mountinfo, which writes a space,
 * tab, newline and backslash in a path as \040, \011, \012 and \134).
 */
export function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))) === mountpoint);
}

/**
 * The last resort, for tests, benchmarks and the stress runner on their way out: lazily unmounts
 * whatever is still mounted at `mountpoint` (fusermount3 -u -z, else umount -l). Never throws.
 */
export function forceUnmount(mountpoint: string): void {
  for (const [cmd, ...args] of [['fusermount3', '-u', '-z', mountpoint], ['umount', '-l', mountpoint]] as const) {
    if (!isMounted(mountpoint)) return;
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
    } catch {
      // try the next
    }
  }
}

function requireText(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`${field} must be a non-empty string`);
  return v;
}

function workerCount(v: unknown): number {
  return v === undefined ? defaultWorkers() : checkWorkers(v, 'workers');
}

/**
 * Mounts a passthrough of `backing` at `mountpoint` whose getlk, setlk, flock, flush, release and
 * interrupt requests are decided by a new LockCoordinator's workers. Rejects with an Error whose
 * message is one sentence (no /dev/fuse, no permission, busy or missing mountpoint, no FUSE build;
 * a DeadMountError for a dead FUSE mount left by a killed server, unless `cleanStale`).
 */
export async function mountFuse(o: FuseMountOptions): Promise<FuseMount> {
  if (typeof o !== 'object' || o === null) throw new TypeError('mountFuse options must be an object');
  refuseUnknown(o, ['backing', 'mountpoint', 'workers', 'threads', 'policy', 'locks', 'cleanStale', 'store'], 'mountFuse options');
  optionalBoolean(o.locks, 'locks', true);
  optionalBoolean(o.cleanStale, 'cleanStale', false);
  const backing = requireText(o.backing, 'backing');
  const mountpoint = requireText(o.mountpoint, 'mountpoint');
  const workers = workerCount(o.workers);
  const why = fuseUnavailable();
  if (why !== undefined) throw new Error(why);
  // Before the native mount: a dead mount there would only surface as "Transport endpoint is not
  // connected" from deep inside it.
  if (isDeadMount(mountpoint) && !(o.cleanStale === true && cleanDeadMount(mountpoint))) throw new DeadMountError(mountpoint);
  // The node's session records where this mount serves (its path resolves now that a dead mount
  // there is gone): 'locksmith locks' names the mount by it once its server is gone, and on other
  // machines. A store given malformed is left to the coordinator's TypeError.
  // Its machine identity beside the host name tells apart two machines of one host name.
  const machine = thisMachine();
  const at = () => ({ host: hostname(), mountpoint: realMountpoint(mountpoint), ...(machine === undefined ? {} : { machine }) });
  // The lease the shared space keeps, read in place by the native I/O path too (pump.setLease).
  const lease = new Float64Array(new SharedArrayBuffer(3 * Float64Array.BYTES_PER_ELEMENT));
  const store: string | (ServingStoreOptions & { [LEASE]?: Float64Array }) | undefined =
    typeof o.store === 'string'
      ? { url: o.store, [SERVES]: at(), [LEASE]: lease }
      : typeof o.store === 'object' && o.store !== null
        ? { ...o.store, [SERVES]: at(), [LEASE]: lease }
        : o.store;
  const coordinator = await LockCoordinator.start({ workers, ...(o.policy === undefined ? {} : { policy: o.policy }), ...(store === undefined ? {} : { store }) });
  let sid: number;
  try {
    sid = pump.mount({
      backing,
      mountpoint,
      destinations: workers,
      ...(o.threads === undefined ? {} : { threads: o.threads }),
      locks: o.locks !== false,
      sharedKeys: o.store !== undefined,
    });
  } catch (e) {
    await coordinator.stop();
    throw e;
  }
  if (store !== undefined) {
    try {
      // Before the workers attach: no lock is granted through the mount before its I/O is fenced.
      pump.setLease(sid, lease);
    } catch (e) {
      pump.unmount(sid);
      await coordinator.stop();
      throw e;
    }
  }
  await coordinator.attachNative(sid);
  let unmounting: Promise<number> | undefined;
  const unmountCounted = () =>
    (unmounting ??= (async () => {
      const answered = pump.unmount(sid);
      await coordinator.stop();
      return answered === false ? 0 : answered;
    })());
  return {
    mountpoint,
    backing,
    coordinator,
    info: () => pump.sessionInfo(sid),
    unmount: async () => {
      await unmountCounted();
    },
    unmountCounted,
  };
}

export interface SyntheticOptions {
  /** Worker threads deciding the events (and destinations of the source). */
  workers: number;
  /** Native producer threads (default 1); thread t is POSIX owner t + 1. */
  threads?: number;
  /** Distinct files (default 1). */
  files?: number;
  /** Events each producer generates. */
  opsPerThread: number;
  /** Requests each producer keeps unanswered at most (default 256). */
  window?: number;
  policy?: Policy;
}

export interface SyntheticResult {
  generated: number;
  replied: number;
  elapsedMs: number;
  /** Events decided by the actors and answered natively, per second. */
  opsPerSecond: number;
  info: SessionInfo;
}

/**
 * Runs the synthetic source's events through a new coordinator's workers until every one is
 * answered, then stops both. Every event is a real lock or unlock request decided by the actors.
 */
export async function runSynthetic(o: SyntheticOptions): Promise<SyntheticResult> {
  if (typeof o !== 'object' || o === null) throw new TypeError('runSynthetic options must be an object');
  refuseUnknown(o, ['workers', 'threads', 'files', 'opsPerThread', 'window', 'policy'], 'runSynthetic options');
  const workers = workerCount(o.workers);
  // Without a count the source would generate for ever.
  if (!Number.isSafeInteger(o.opsPerThread) || o.opsPerThread < 1) throw new TypeError(`opsPerThread must be a positive integer, got ${describeValue(o.opsPerThread)}`);
  const n = pump.nativeAvailable();
  if (!n.ok) throw new Error(n.reason);
  const coordinator = await LockCoordinator.start({ workers, ...(o.policy === undefined ? {} : { policy: o.policy }) });
  let sid: number | undefined;
  try {
    sid = pump.synthStart({
      destinations: workers,
      opsPerThread: o.opsPerThread,
      ...(o.threads === undefined ? {} : { threads: o.threads }),
      ...(o.files === undefined ? {} : { files: o.files }),
      ...(o.window === undefined ? {} : { window: o.window }),
      mode: 'reply',
    });
    await coordinator.attachNative(sid);
    while (!pump.synthStats(sid).done) await new Promise((r) => setTimeout(r, 10));
    const info = pump.synthStop(sid);
    sid = undefined;
    const elapsedMs = info.elapsedMs ?? 0;
    return {
      generated: info.generated ?? 0,
      replied: info.replied,
      elapsedMs,
      opsPerSecond: elapsedMs > 0 ? ((info.generated ?? 0) / elapsedMs) * 1000 : 0,
      info,
    };
  } finally {
    if (sid !== undefined) pump.synthStop(sid);
    await coordinator.stop();
  }
}
