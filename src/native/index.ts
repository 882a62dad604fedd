/**
 * The native event pump (src/native/*.cc, built by node-gyp from binding.gyp at install time).
 *
 * Native threads turn lock traffic into events; JavaScript threads decide them and answer:
 *
 *   FUSE kernel ─▶ reader threads (passthrough of `backing`) ──┐  (or the polling thread itself: spinUs)
 *   synthetic producer threads ──────────────────────────────────┤ route: fnv1a32(path) % destinations
 *                                                                 ▼
 *                    destination i: queue ─▶ one wake-up ─▶ callback(events[])    on the attached thread
 *                                                                 │    (attachFlat: callback(FlatBatch))
 *   replyErr / replyLock, replyBatch / replyLockBatch (any thread) ◀── decision
 *
 * Two ways to receive: attach() hands out one object per event (11 fields, 4 bigints: simple, about
 * 0.4M events/s per thread with one replyErr each); attachFlat() hands out a FlatBatch, numbers in
 * one reused Float64Array and a path table, answered with one replyBatch call per batch (several
 * million events/s). Both see the same events, in the same order, with the same meanings.
 *
 * A request is answered exactly once: the first reply wins and later ones return false.
 *
 * Loading never throws: if the addon is missing (not built, wrong platform), `nativeAvailable()`
 * says why and every function throws an Error carrying that reason.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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
 * - `fileHandle`: the open file's handle (unique per open: a generation above the backing descriptor), `lockOwner`: fi->lock_owner
 *   (POSIX: the process's scrambled file table; flock: the scrambled open file; release without
 *   flock: 0).
 * - `start`, `end`: inclusive range as the kernel sends it; end = 2^63-1 for "to infinity".
 *   flock, flush and release carry [0, 2^63-1].
 * - `type`: F_RDLCK 0, F_WRLCK 1, F_UNLCK 2 (flock: LOCK_SH 0, LOCK_EX 1, LOCK_UN 2; flush and release: 2).
 * - `lockPid`: lk.pid for getlk/setlk (0 for unlocks and getlk, as the kernel sends), else the calling thread id.
 * - `sleep`: F_SETLKW, or flock without LOCK_NB. `flockRelease`: release of a file flock was used on.
 */
export interface NativeEvent {
  kind: NativeEventKind;
  reqId: number;
  path: string;
  fileHandle: bigint;
  lockOwner: bigint;
  start: bigint;
  end: bigint;
  type: number;
  lockPid: number;
  sleep: boolean;
  flockRelease: boolean;
}

/** Numeric event kinds of a FlatBatch (F_KIND): the index of the kind in NATIVE_EVENT_KINDS. */
export const K_GETLK = 0;
export const K_SETLK = 1;
export const K_FLOCK = 2;
export const K_FLUSH = 3;
export const K_RELEASE = 4;
export const K_INTERRUPT = 5;
export const NATIVE_EVENT_KINDS: readonly NativeEventKind[] = ['getlk', 'setlk', 'flock', 'flush', 'release', 'interrupt'];

/**
 * Field offsets of one event in FlatBatch.f64: event i's field X is `f64[i * F_STRIDE + X]`.
 * Every value is a double holding an exact integer, except where the flags say otherwise:
 * - F_REQ_ID: the request id (as NativeEvent.reqId; exact below 2^53, which it never reaches).
 * - F_KIND: K_GETLK ... K_INTERRUPT. F_TYPE: 0 F_RDLCK/LOCK_SH, 1 F_WRLCK/LOCK_EX, 2 unlock.
 * - F_FLAGS: FL_SLEEP | FL_FLOCK_RELEASE | FL_WIDE_* (bits, below).
 * - F_LOCK_PID: as NativeEvent.lockPid. F_PATH: index into FlatBatch.paths (this batch's table).
 * - F_FILE_HANDLE, F_LOCK_OWNER, F_START: the value when below 2^53; when FL_WIDE_FILE_HANDLE /
 *   FL_WIDE_LOCK_OWNER / FL_WIDE_START is set the double is rounded and the exact value is
 *   `u64[i * U_STRIDE + U_FILE_HANDLE / U_LOCK_OWNER / U_START]` (a bigint). FUSE lock owners are
 *   scrambled 64-bit values: expect FL_WIDE_LOCK_OWNER on nearly every FUSE event; synthetic
 *   owners are small.
 * - F_END: inclusive end; `Infinity` for OFFSET_MAX (2^63-1, "to the end of the file"); rounded
 *   when FL_WIDE_END (exact in u64[i * U_STRIDE + U_END]).
 */
export const F_REQ_ID = 0;
export const F_KIND = 1;
export const F_TYPE = 2;
export const F_FLAGS = 3;
export const F_LOCK_PID = 4;
export const F_PATH = 5;
export const F_FILE_HANDLE = 6;
export const F_LOCK_OWNER = 7;
export const F_START = 8;
export const F_END = 9;
/** Doubles per event in FlatBatch.f64 (also FlatBatch.stride). */
export const F_STRIDE = 10;
/** Exact 64-bit values per event in FlatBatch.u64 (also FlatBatch.wide): fileHandle, lockOwner, start, end (2^63-1 as is). */
export const U_FILE_HANDLE = 0;
export const U_LOCK_OWNER = 1;
export const U_START = 2;
export const U_END = 3;
export const U_STRIDE = 4;
/** F_FLAGS bits. */
export const FL_SLEEP = 1;
export const FL_FLOCK_RELEASE = 2;
export const FL_WIDE_FILE_HANDLE = 4;
export const FL_WIDE_LOCK_OWNER = 8;
export const FL_WIDE_START = 16;
export const FL_WIDE_END = 32;
export const FL_WIDE = FL_WIDE_FILE_HANDLE | FL_WIDE_LOCK_OWNER | FL_WIDE_START | FL_WIDE_END;

/**
 * What attachFlat's callback receives: `n` events (at most 8192 per call; more arrive in the next
 * call). The object, its arrays and their buffer are REUSED: they are valid only until the callback
 * returns, and the next call may bring larger arrays (read `f64`/`u64` again each call). Copy what
 * you keep. Do not transfer the buffer (a transferred one is replaced, but the batch is lost to you).
 */
export interface FlatBatch {
  /** Events in this batch. */
  n: number;
  /** F_STRIDE and U_STRIDE, for readers that prefer not to import the constants. */
  readonly stride: number;
  readonly wide: number;
  /** n * F_STRIDE doubles used (the array may be longer). */
  f64: Float64Array;
  /** n * U_STRIDE exact values used (same ArrayBuffer). */
  u64: BigUint64Array;
  /** This batch's distinct lock keys; F_PATH indexes it. A new array per batch (you may keep it). */
  paths: string[];
}

/** Event i of a flat batch as a NativeEvent (for tests and slow paths; allocates). */
export function flatEvent(b: FlatBatch, i: number): NativeEvent {
  const o = i * F_STRIDE;
  const w = i * U_STRIDE;
  const f = b.f64;
  const flags = f[o + F_FLAGS]!;
  return {
    kind: NATIVE_EVENT_KINDS[f[o + F_KIND]!]!,
    reqId: f[o + F_REQ_ID]!,
    path: b.paths[f[o + F_PATH]!]!,
    fileHandle: b.u64[w + U_FILE_HANDLE]!,
    lockOwner: b.u64[w + U_LOCK_OWNER]!,
    start: b.u64[w + U_START]!,
    end: b.u64[w + U_END]!,
    type: f[o + F_TYPE]!,
    lockPid: f[o + F_LOCK_PID]!,
    sleep: (flags & FL_SLEEP) !== 0,
    flockRelease: (flags & FL_FLOCK_RELEASE) !== 0,
  };
}

/**
 * Calls `f(batch, i, o)` for each event, `o` being its offset in batch.f64 (read `batch.f64[o +
 * F_KIND]` and so on). A plain loop `for (let i = 0, o = 0; i < b.n; i++, o += F_STRIDE)` is
 * just as good.
 */
export function forEachEvent(b: FlatBatch, f: (b: FlatBatch, i: number, o: number) => void): void {
  for (let i = 0, o = 0; i < b.n; i++, o += F_STRIDE) f(b, i, o);
}

/**
 * A reusable reply buffer for one thread: push(reqId, errno) per answer, then flush(sessionId)
 * once per batch (one native call). Grows as needed.
 */
export class ReplyBuffer {
  pairs = new Float64Array(2 * 1024);
  count = 0;
  push(reqId: number, errno: number): void {
    if (2 * this.count === this.pairs.length) {
      const bigger = new Float64Array(this.pairs.length * 2);
      bigger.set(this.pairs);
      this.pairs = bigger;
    }
    this.pairs[2 * this.count] = reqId;
    this.pairs[2 * this.count + 1] = errno;
    this.count++;
  }
  /** Sends the pending answers (replyBatch) and empties the buffer; returns how many were still unanswered. */
  flush(sessionId: number): number {
    if (this.count === 0) return 0;
    const n = this.count;
    this.count = 0;
    return replyBatch(sessionId, this.pairs, n);
  }
}

export interface MountOptions {
  /** The directory whose contents the mount shows (passthrough). */
  backing: string;
  /** An existing, empty-of-mounts directory. */
  mountpoint: string;
  /** JavaScript threads deciding the locks; each file's events go to one of them. */
  destinations: number;
  /**
   * Reader threads (default 4): they read /dev/fuse while no JavaScript thread polls it, and run
   * every request that is not lock traffic (file I/O: a slow one holds one reader). Lock requests
   * never hold one while they wait.
   */
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
  /**
   * After each callback, the receiving thread polls its queue for up to this many µs (default 200)
   * before returning to its event loop, so the next request of a busy process reaches JavaScript
   * without a thread wake-up (≈40-60 µs here). One of the mount's threads at a time also reads
   * /dev/fuse itself while it polls (the reader threads stand aside): a lock request then reaches
   * the thread that decides it with no other thread woken; others are handed to the readers.
   * Adaptive: a poll that finds nothing of its own halves the budget down to 0 (an idle mount
   * burns nothing); a wake-up within spinUs of the last callback restores it. 0: never poll.
   */
  spinUs?: number;
  /**
   * Key files by inode number alone ("ino:<st_ino>") instead of "fuse:<st_dev>:<st_ino>" (default
   * false): every node over the same shared storage then names a file alike (a shared lock space).
   */
  sharedKeys?: boolean;
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
  /**
   * 'pairs' (default): thread t is POSIX owner t + 1, taking a write lock on [k*4096, k*4096+4095]
   * of a file and then unlocking it, file after file (nothing conflicts; for benchmarks).
   * 'random' (needs mode 'reply'): seeded random traffic for the stress runner. Thread t plays
   * `owners` owners, ids t*owners+1 ... t*owners+owners (also their lockPid and fileHandle), each with at most
   * one request outstanding, like a process. Each random operation of an owner is a setlk on file
   * uniform in [0, files), start uniform in [0, rangeSpace), length uniform in [1, rangeSpace/4]
   * (clipped to rangeSpace-1; 1 in 32 ranges reach OFFSET_MAX instead); with probability
   * unlockRatio an F_UNLCK, else F_RDLCK with probability readRatio or F_WRLCK, waiting (F_SETLKW,
   * event `sleep`) with probability sleepRatio. opsPerThread random operations per thread are split
   * among its owners; then each owner, like a process closing its files, unlocks [0, OFFSET_MAX] of
   * every file its operations named (in file order). Each owner's stream depends only on (seed,
   * owner id, files, rangeSpace and the ratios): the same options give the same per-owner streams,
   * whatever the timing and the answers. Answer every request (errno: 0, EAGAIN, EDEADLK, ...).
   */
  pattern?: 'pairs' | 'random';
  /** 'random': generator seed (default 1). */
  seed?: number | bigint;
  /** 'random': owners per thread (default 1). */
  owners?: number;
  /** 'random': offsets are drawn from [0, rangeSpace) (default 4096). */
  rangeSpace?: number;
  /** 'random': probabilities (defaults 0.5, 0.1, 0.35). */
  readRatio?: number;
  sleepRatio?: number;
  unlockRatio?: number;
  /** 'random': keep a log of every request's start and end (synthLog). */
  record?: boolean;
  /** As MountOptions.spinUs; default 0. */
  spinUs?: number;
}

/** SynthLog.rec values. */
export const REC_START = 0;
export const REC_END = 1;
export const REC_CANCELLED = 2;

/**
 * The recorded log of a 'random' session with `record: true`, as parallel arrays of `count`
 * records sorted by `seq`, a global sequence shared by every thread (a total order consistent
 * with real time: a record's seq is taken at the moment it describes).
 * - rec REC_START: the request is about to be sent (seq taken before its event is queued).
 *   For an F_UNLCK this is the RELEASE stamp: taken before the unlock can have happened.
 * - rec REC_END: its reply arrived (seq taken when replyErr/replyBatch reached it); `errno` is the
 *   answer (0 success). For F_RDLCK/F_WRLCK with errno 0 this is the GRANT stamp: taken after the
 *   grant happened. So a recorded hold [grant seq, release seq] always lies inside the real one:
 *   two recorded holds that overlap in seq and conflict are a real violation.
 * - rec REC_CANCELLED: the session stopped before the request was answered (errno ECANCELED).
 * Every record repeats its request's fields: reqId, owner (also its pid), file (the "synth:<file>"
 * key), type (0 F_RDLCK, 1 F_WRLCK, 2 F_UNLCK), sleep (1: F_SETLKW), start, end (inclusive,
 * `Infinity` for OFFSET_MAX).
 */
export interface SynthLog {
  count: number;
  seq: Float64Array;
  rec: Uint8Array;
  reqId: Float64Array;
  owner: Uint32Array;
  file: Uint32Array;
  type: Uint8Array;
  sleep: Uint8Array;
  start: Float64Array;
  end: Float64Array;
  errno: Int32Array;
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
  /** Requests a polling JavaScript thread read from /dev/fuse itself, and those of them (not lock traffic) the reader threads ran. */
  polledReads?: number;
  handedToReaders?: number;
  /** Store mounts: invalidations before grants and unlocks (and those that failed). */
  invalidations?: number;
  invalidationErrors?: number;
  /**
   * Store mounts: the lease deadlines at which the fence watcher acted, and its drops of a file's
   * cached pages done (a locked file's at a deadline, a lost handle's file), by the invalidation threads.
   */
  fenceDeadlines?: number;
  fenceDrops?: number;
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
  pattern?: 'pairs' | 'random';
  record?: boolean;
}

interface Addon {
  hasFuse: boolean;
  mount(o: MountOptions): number;
  attach(sessionId: number, index: number, callback: (events: NativeEvent[]) => void): void;
  attachFlat(sessionId: number, index: number, callback: (batch: FlatBatch) => void, idle?: () => void): void;
  replyBatch(sessionId: number, pairs: Float64Array | Int32Array, count: number): number;
  replyLockBatch(sessionId: number, locks: Float64Array, count: number): number;
  synthLog(sessionId: number): SynthLog | null;
  detach(sessionId: number, index: number): boolean;
  replyErr(sessionId: number, reqId: number | bigint, errno: number): boolean;
  replyLock(sessionId: number, reqId: number | bigint, type: number, start: bigint | number, end: bigint | number, pid: number): boolean;
  unmount(sessionId: number): number | false;
  markLost(sessionId: number, fileHandle: number): void;
  setLease(sessionId: number, lease: Float64Array, nowMs: number): void;
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

/**
 * Why the addon at hand was built from other sources than those beside it, or undefined (the same,
 * or nothing to compare: no sources). The hash is scripts/build-native.js's sourcesHash: sha256
 * over binding.gyp and src/native/*.{cc,h}, sorted by name; without a build record, file times.
 */
function staleAddon(root: string): string | undefined {
  const native = join(root, 'src', 'native');
  if (!existsSync(native) || !existsSync(addonPath)) return undefined;
  const sources = [join(root, 'binding.gyp'), ...readdirSync(native).filter((f) => /\.(cc|h)$/.test(f)).sort().map((f) => join(native, f))];
  const stale = 'it was built from other sources than these (src/native changed since)';
  let built: unknown;
  try {
    built = (JSON.parse(readFileSync(join(root, 'build', 'locksmith-build.json'), 'utf8')) as { sources?: unknown }).sources;
  } catch {
    // No build record (a direct node-gyp rebuild removes it): the addon must at least be newer than its sources.
    const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
    return statSync(addonPath).mtimeMs < newest ? stale : undefined;
  }
  if (typeof built !== 'string') return undefined;
  const h = createHash('sha256');
  for (const f of sources) h.update(readFileSync(f));
  return h.digest('hex') === built ? undefined : stale;
}

let addon: Addon | undefined;
let loadError: string | undefined;
try {
  const root = packageRoot();
  const stale = root === undefined ? undefined : staleAddon(root);
  if (stale !== undefined) throw new Error(stale);
  addon = createRequire(import.meta.url)(addonPath) as Addon;
} catch (e) {
  const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
  // One line: what to install and what to run (npm rebuild runs a dependency's install script, not a clone's).
  const rebuild = /[\\/]node_modules[\\/]/.test(addonPath) ? 'npm rebuild locksmith' : 'npm run build:native';
  loadError = existsSync(addonPath)
    ? `the native addon ${addonPath} failed to load (${why}): rebuild it with ${rebuild}`
    : `the native addon is not built (no ${addonPath}): apt-get install build-essential python3 pkg-config libfuse3-dev fuse3, then ${rebuild}`;
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

/**
 * attach(), but the callback receives FlatBatch objects (see F_* and FlatBatch above): the same
 * events in the same order, read from one reused Float64Array, at most 8192 per call. Everything
 * attach() says holds (queued events, keeping the thread alive, automatic detach when the thread
 * ends, detach()). A destination is attached one way or the other, not both.
 *
 * `idle`, if given, is called (no arguments) once at the end of every wake-up that delivered
 * something: after the last callback of that wake-up (the thread may poll and deliver several
 * batches in one, MountOptions.spinUs), right before the thread returns to its event loop. Work
 * deferred to it cannot be overtaken by anything else on this thread (a timer, a message, an
 * uncaught exception of another callback).
 */
export function attachFlat(sessionId: number, index: number, callback: (batch: FlatBatch) => void, idle?: () => void): void {
  native().attachFlat(sessionId, index, callback, idle);
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

/**
 * Answers `count` requests in one call: `pairs` holds [reqId, errno] at [2k, 2k+1] (errno as in
 * replyErr: 0 success, a positive or negative errno). A Float64Array carries any reqId; an
 * Int32Array only reqIds below 2^31. Each request is answered at most once (later answers to the
 * same request are ignored, as replyErr's false). Returns how many were answered by this call.
 * Throws a TypeError, before answering anything, if an entry is not a valid integer.
 * For getlk, errno 0 means "no conflict"; to report a conflicting lock use replyLockBatch.
 */
export function replyBatch(sessionId: number, pairs: Float64Array | Int32Array, count: number): number {
  return native().replyBatch(sessionId, pairs, count);
}

/**
 * Answers `count` getlk requests in one call: `locks` holds [reqId, type, start, end, pid] at
 * [5k ... 5k+4]: the conflicting lock (type 0 F_RDLCK / 1 F_WRLCK; or 2 F_UNLCK, no conflict),
 * end inclusive, `Infinity` for OFFSET_MAX; start and end below 2^53 (beyond that, use replyLock
 * with bigints). Returns how many were answered by this call. Invalid numbers throw a TypeError
 * before anything is answered; an entry naming a request that is not a getlk throws a TypeError
 * after the other entries were answered.
 */
export function replyLockBatch(sessionId: number, locks: Float64Array, count: number): number {
  return native().replyLockBatch(sessionId, locks, count);
}

/** Answers a getlk with the conflicting lock (or type F_UNLCK); end is inclusive, 2^63-1 for "to infinity". */
export function replyLock(sessionId: number, reqId: number | bigint, type: number, start: bigint | number, end: bigint | number, pid: number): boolean {
  return native().replyLock(sessionId, reqId, type, start, end, pid);
}

/**
 * Answers everything outstanding (an interrupted lock request EINTR, any other lock request
 * ENOLCK so the waiting process returns, flush/release 0 after their backing part), detaches every
 * destination, unmounts (aborting the connection if files stay open) and joins the threads.
 * Returns how many lock requests (getlk, setlk, setlkw, flock) it answered so: those still waiting
 * or not yet answered, and those that arrived while it unmounted; false if the session was
 * already gone.
 */
export function unmount(sessionId: number): number | false {
  return native().unmount(sessionId);
}

/**
 * A shared lock space lost this node's session, and the locks taken through the mount's open file
 * `fileHandle` with it: reads and writes through it fail with EIO until the file is released.
 */
export function markLost(sessionId: number, fileHandle: number): void {
  native().markLost(sessionId, fileHandle);
}

/**
 * A store mount's lease (src/caller/shared-space.ts: [until, epoch, offset] over a
 * SharedArrayBuffer, until on the performance.timeOrigin + performance.now() scale), read in place
 * by the native I/O path: a read, write or size change of a file a lock was granted on through the
 * mount (since its handles opened) fails with EIO while now >= until, with no JavaScript in the loop.
 * Kept until the unmount. Call before the workers attach.
 */
export function setLease(sessionId: number, lease: Float64Array): void {
  // Read in place by the session's threads until the unmount: a plain ArrayBuffer could be transferred (freed).
  if (!(lease instanceof Float64Array) || !(lease.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError('lease must be a Float64Array of 3 elements over a SharedArrayBuffer');
  }
  native().setLease(sessionId, lease, performance.timeOrigin + performance.now());
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

/**
 * The log of a `record: true` session (SynthLog): while it runs, a copy of what was recorded so
 * far; after synthStop, the final log (requests still unanswered at the stop appear as
 * REC_CANCELLED), once: the call frees it, and the next returns null. Null for a session that
 * records nothing or is unknown.
 */
export function synthLog(sessionId: number): SynthLog | null {
  return native().synthLog(sessionId);
}

/** Stops and joins the producers, detaches every destination, and returns the final counters. */
export function synthStop(sessionId: number): SessionInfo {
  return native().synthStop(sessionId);
}

/** The destination of a lock key as the native side computes it (FNV-1a, as src/wire/route.ts routeOf). */
export function nativeRouteOf(path: string, destinations: number): number {
  return native().routeOf(path, destinations);
}
