/**
 * The native event pump (src/native/*.cc, built by node-gyp from binding.gyp at install time).
 *
 * Native threads turn lock traffic into events; JavaScript threads decide them and answer:
 *
 *   FUSE kernel ─▶ libfuse workers (passthrough of `backing`) ─┐
 *   synthetic producer threads ──────────────────────────────────┤ route: fnv1a32(path) % destinations
 *                                                                 ▼
 *                    destination i: queue ─▶ one wake-up ─▶ callback(events[]) on the attached thread
 *                                                                 │
 *   replyErr / replyLock (any thread) ◀── decision ──────────────┘
 *
 * A request is answered exactly once: the first reply wins and later ones return false.
 *
 * Loading never throws: if the addon is missing (not built, wrong platform), `nativeAvailable()`
 * says why and every function throws an Error carrying that reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Event kinds. 'interrupt' refers to an earlier setlk or flock request (same reqId); it needs no answer. */
export type NativeEventKind = 'getlk' | 'setlk' | 'flock' | 'flush' | 'release' | 'interrupt';

/**
 * One event. Every field is always present; the FUSE meaning of each:
 * - `reqId`: the native request id to answer (for 'interrupt': the interrupted request's).
 * - `path`: the lock key: "fuse:<st_dev>:<st_ino>" of the backing file (stable across renames and
 *   hard links), or "synth:<n>" for the synthetic source. Routing uses it.
 * - `fh`: the open file's handle (the backing descriptor), `owner`: fi->lock_owner (POSIX: the
 *   process's scrambled file table; flock: the scrambled open file; release without flock: 0).
 * - `start`, `end`: inclusive range as the kernel sends it; end = 2^63-1 for "to infinity".
 *   flock, flush and release carry [0, 2^63-1].
 * - `type`: F_RDLCK 0, F_WRLCK 1, F_UNLCK 2 (flock: LOCK_SH 0, LOCK_EX 1, LOCK_UN 2; flush and release: 2).
 * - `pid`: lk.pid for getlk/setlk (0 for unlocks and getlk, as the kernel sends), else the calling thread id.
 * - `sleep`: F_SETLKW, or flock without LOCK_NB. `flockRelease`: release of a file flock was used on.
 */
export interface NativeEvent {
  kind: NativeEventKind;
  reqId: number;
  path: string;
  fh: bigint;
  owner: bigint;
  start: bigint;
  end: bigint;
  type: number;
  pid: number;
  sleep: boolean;
  flockRelease: boolean;
}

export interface MountOptions {
  /** The directory whose contents the mount shows (passthrough). */
  backing: string;
  /** An existing, empty-of-mounts directory. */
  mountpoint: string;
  /** JavaScript threads deciding the locks; each file's events go to one of them. */
  destinations: number;
  /** libfuse worker threads (default 4). Lock requests never hold one while they wait. */
  threads?: number;
  /**
   * While no thread is attached to a destination, its events wait in its queue. A request that
   * would keep a process unkillable meanwhile is completed natively after this many ms (default
   * 2000): flush and release do their backing part and reply 0 (their events stay queued, so the
   * next thread still drops the locks; its reply then returns false), a non-blocking getlk/setlk/
   * flock gets ENOLCK (its event is withdrawn). Waiting F_SETLKW/flock requests stay queued: an
   * interrupt for them is answered EINTR at once when nobody is attached.
   */
  graceMs?: number;
  /**
   * Negotiate the FUSE lock capabilities (default true). False leaves locking to the kernel, which
   * then decides fcntl and flock on the mount locally; flush and release are not delivered.
   */
  locks?: boolean;
}

export interface SynthOptions {
  destinations: number;
  /** Native producer threads (default 1); thread t is POSIX owner t + 1. */
  threads?: number;
  /** Distinct files ("synth:0" ...), default 1. */
  files?: number;
  /** Events per thread, then the thread stops; default: until synthStop. */
  opsPerThread?: number;
  /** Per thread: requests awaiting replies ('reply') or undelivered events ('deliver'); default 256. */
  window?: number;
  /** 'reply' (default): every event must be answered with replyErr; 'deliver': bare delivery, no replies. */
  mode?: 'reply' | 'deliver';
}

/** Counters of a session (sessionInfo); FUSE sessions add the INIT outcome and the mount. */
export interface SessionInfo {
  kind: 'fuse' | 'synth';
  destinations: number;
  /** Destinations with a thread attached now. */
  attached: number;
  /** Events queued so far, delivered to JavaScript, and the callback calls that carried them. */
  events: number;
  delivered: number;
  batches: number;
  /** Events waiting in queues now (no thread attached, or not drained yet). */
  queued: number;
  /** Requests not answered yet. */
  outstanding: number;
  replied: number;
  // FUSE sessions
  initialized?: boolean;
  /** The kernel granted FUSE_CAP_POSIX_LOCKS / FUSE_CAP_FLOCK_LOCKS: lock calls reach us. */
  posixLocks?: boolean;
  flockLocks?: boolean;
  posixLocksOffered?: boolean;
  flockLocksOffered?: boolean;
  loopEnded?: boolean;
  protoMajor?: number;
  protoMinor?: number;
  /** FUSE_INTERRUPTs received, and requests answered natively (unattached interrupt, unmount). */
  interrupts?: number;
  nativeAnswers?: number;
  /** Events queued again because the thread that had received them ended without answering. */
  redelivered?: number;
  connection?: number;
  mountpoint?: string;
  backing?: string;
  // synthetic sessions
  generated?: number;
  errors?: number;
  running?: number;
  /** From start until every producer finished and everything was answered (or delivered), or until now. */
  elapsedMs?: number;
  done?: boolean;
  awaitReplies?: boolean;
}

interface Addon {
  hasFuse: boolean;
  mount(o: MountOptions): number;
  attach(sessionId: number, index: number, callback: (events: NativeEvent[]) => void): void;
  detach(sessionId: number, index: number): boolean;
  replyErr(sessionId: number, reqId: number | bigint, errno: number): boolean;
  replyLock(sessionId: number, reqId: number | bigint, type: number, start: bigint | number, end: bigint | number, pid: number): boolean;
  unmount(sessionId: number): boolean;
  sessionInfo(sessionId: number): SessionInfo;
  synthStart(o: SynthOptions): number;
  synthStats(sessionId: number): SessionInfo;
  synthStop(sessionId: number): SessionInfo;
  routeOf(path: string, destinations: number): number;
}

const ADDON_RELATIVE = join('build', 'Release', 'locksmith_native.node');

/** The package root: the nearest directory above this module holding locksmith's package.json. */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'locksmith') return dir;
      } catch {
        // not ours; keep climbing
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Absolute path of the compiled addon (whether or not it exists); worker threads may load it directly. */
export const addonPath: string = join(packageRoot() ?? process.cwd(), ADDON_RELATIVE);

let addon: Addon | undefined;
let loadError: string | undefined;
try {
  addon = createRequire(import.meta.url)(addonPath) as Addon;
} catch (e) {
  const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
  loadError = existsSync(addonPath)
    ? `the native addon ${addonPath} failed to load: ${why}`
    : `the native addon is not built (${addonPath} is missing): run npm install (or npx node-gyp rebuild)`;
}

/** Whether the addon loaded, and if not, why. */
export function nativeAvailable(): { ok: boolean; reason?: string } {
  return addon !== undefined ? { ok: true } : { ok: false, reason: loadError };
}

/** True when the addon was built against libfuse3 (mount can work); false without it or the addon. */
export const hasFuse: boolean = addon?.hasFuse ?? false;

function native(): Addon {
  if (addon === undefined) throw new Error(loadError);
  return addon;
}

/**
 * Mounts a passthrough of `backing` at `mountpoint` and returns the session id. Waits for the
 * kernel's INIT so `sessionInfo(id).posixLocks/flockLocks` are known; if the kernel did not grant
 * both lock capabilities, lock calls on the mount are decided by the kernel, not by us, and a
 * warning is emitted. Throws an Error with one sentence when the mount cannot be made.
 *
 * Never use the mount synchronously (fs.*Sync, execSync, spawnSync) from a thread that is a
 * destination: a close() there sends FLUSH, whose event needs that very thread to answer.
 */
export function mount(o: MountOptions): number {
  const id = native().mount(o);
  const info = native().sessionInfo(id);
  if (o.locks !== false && (!info.posixLocks || !info.flockLocks)) {
    process.emitWarning(
      `locksmith: the FUSE connection at ${o.mountpoint} did not grant ${!info.posixLocks ? 'POSIX' : 'flock'} locks: ` +
        'the kernel will decide those locks locally',
      'LocksmithWarning',
    );
  }
  return id;
}

/**
 * Makes the calling thread the receiver of destination `index`: `callback` gets arrays of events,
 * one call per wake-up. Events queued before (no thread attached yet, or a previous thread gone)
 * arrive at once. An attached destination keeps the thread's event loop alive until detach(),
 * unmount() or synthStop(). When the thread ends (a worker terminates), it is detached
 * automatically and its undelivered events wait for the next attach. Throws if already attached.
 */
export function attach(sessionId: number, index: number, callback: (events: NativeEvent[]) => void): void {
  native().attach(sessionId, index, callback);
}

/** Stops deliveries to this thread; events queue until another attach. Only the attaching thread may detach. */
export function detach(sessionId: number, index: number): boolean {
  return native().detach(sessionId, index);
}

/**
 * Answers a request: 0 success, or an errno (positive; a negative one, locksmith's result
 * convention, is accepted too). For getlk, 0 means "no conflict" (F_UNLCK). Returns false if the
 * request was already answered (by an earlier reply, an unattended interrupt, or unmount).
 */
export function replyErr(sessionId: number, reqId: number | bigint, errno: number): boolean {
  return native().replyErr(sessionId, reqId, errno);
}

/** Answers a getlk with the conflicting lock (or type F_UNLCK); end is inclusive, 2^63-1 for "to infinity". */
export function replyLock(sessionId: number, reqId: number | bigint, type: number, start: bigint | number, end: bigint | number, pid: number): boolean {
  return native().replyLock(sessionId, reqId, type, start, end, pid);
}

/**
 * Answers everything outstanding (an interrupted lock request EINTR, any other lock request
 * ENOLCK so the waiting process returns, flush/release 0 after their backing part), detaches every
 * destination, unmounts (aborting the connection if files stay open) and joins the threads.
 * Returns false if the session was already gone.
 */
export function unmount(sessionId: number): boolean {
  return native().unmount(sessionId);
}

export function sessionInfo(sessionId: number): SessionInfo {
  return native().sessionInfo(sessionId);
}

/** Starts native producer threads generating setlk/unlock events through the same routing and delivery. */
export function synthStart(o: SynthOptions): number {
  return native().synthStart(o);
}

export function synthStats(sessionId: number): SessionInfo {
  return native().synthStats(sessionId);
}

/** Stops and joins the producers, detaches every destination, and returns the final counters. */
export function synthStop(sessionId: number): SessionInfo {
  return native().synthStop(sessionId);
}

/** The destination of a lock key as the native side computes it (FNV-1a, as LockCoordinator's routeOf). */
export function nativeRouteOf(path: string, destinations: number): number {
  return native().routeOf(path, destinations);
}

/** FNV-1a over the path's UTF-16 units: the JavaScript twin of the native routing. */
export function routeOf(path: string, destinations: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % destinations;
}
