/**
 * The public types of locksmith (API.md "Types"): every request, reply, hook event, listing entry
 * and option that a caller of LockCoordinator writes or reads.
 *
 * Requests are closed object types: a strict TypeScript caller who misspells a field in a literal
 * (`timeoutMS`, `filename`) gets a compile error. The same requests are checked again at run time,
 * because JavaScript callers exist: a wrong type or a missing field is a TypeError naming it, and so
 * is an unknown field. The coordinator reads each field of a request exactly once, when the method is
 * called; later changes to the caller's object (or its contexts) change nothing.
 *
 * Offsets and lengths take a bigint or a safe-integer number; replies and events carry bigints.
 * Identities (`handle`, `processId`, `key`, `lockOwner`, `fileHandle`) compare by value: 5 and 5n
 * are one identity, the string '5' is another.
 */
import type { Identity, Offset } from './core/input.js';

export type { Identity, Offset };

/** A POSIX lock kind: classic fcntl (per process), OFD (per open file description) or flock(2). */
export type PosixKind = 'posix' | 'ofd' | 'flock';

// ---- requests -----------------------------------------------------------------------------------

/**
 * LockFileEx / CBFS LockFile: lock bytes [byteOffset, byteOffset + length) of `fileName` for the
 * owner (handle, processId, key).
 */
export type LockFileRequest = {
  /** The file; the same string is the same file. */
  fileName: string;
  /** A negative value is the signed int64 CBFS passes (-1 is 2^64-1). */
  byteOffset: Offset;
  /** 0 is a zero-length lock; a negative value is read as int64, like byteOffset. */
  length: Offset;
  /** true: exclusive (write); false: shared (read). */
  exclusiveLock: boolean;
  /** true: answer 33 at once on a conflict (LOCKFILE_FAIL_IMMEDIATELY); false: wait. */
  failImmediately: boolean;
  /** The handle the lock is taken through; closeHandle releases its locks. */
  handle: Identity;
  /** Part of the owner; default 0. */
  processId?: Identity;
  /** Part of the owner (the IRP key); default 0. */
  key?: Identity;
  /** Carried to onLockFile as given (copied when the call is made: it must be structured-cloneable). */
  handleInfo?: unknown;
  /** Carried to the hooks as given (copied when the call is made: it must be structured-cloneable). */
  fileContext?: unknown;
  /** Carried to the hooks as given (copied when the call is made: it must be structured-cloneable). */
  handleContext?: unknown;
  /**
   * A wait longer than this (ms) ends with 33 (ERROR_LOCK_VIOLATION) and leaves nothing queued.
   * Any finite value >= 0 is honoured, also past 2^31 ms; omit it (or pass
   * Number.MAX_SAFE_INTEGER) to wait until the lock is granted, cancelled or the coordinator stops.
   */
  timeoutMs?: number;
  /** Aborting it ends a wait with 995 (ERROR_OPERATION_ABORTED); already aborted: 995 at once. */
  signal?: AbortSignal;
};

/** UnlockFileEx / CBFS UnlockFile: byteOffset = length = -1 unlocks everything of (handle, processId). */
export type UnlockFileRequest = {
  fileName: string;
  byteOffset: Offset;
  length: Offset;
  handle: Identity;
  /** Default 0. */
  processId?: Identity;
  /** Default 0. */
  key?: Identity;
};

/** The last close of a Windows handle: releases every lock taken through it. */
export type CloseHandleRequest = {
  fileName: string;
  handle: Identity;
};

/** The mandatory-locking check a filesystem makes before a read (write: false) or a write. */
export type CheckIoRequest = {
  fileName: string;
  handle: Identity;
  /** Default 0. */
  processId?: Identity;
  byteOffset: Offset;
  /** Zero-length I/O is always allowed. */
  length: Offset;
  write: boolean;
};

/** fcntl F_GETLK / F_SETLK / F_SETLKW, OFD locks and flock(2) (CBFS FUSE Lock). */
export type LockRequest = {
  path: string;
  /** F_RDLCK 0, F_WRLCK 1, F_UNLCK 2; anything else gives -EINVAL. */
  lockType: number;
  /** May be left out with kind 'flock' (whole file). A negative value gives -EINVAL. */
  lockStart?: Offset;
  /** 0 runs to OFFSET_MAX; a negative length covers the bytes before lockStart. May be left out with kind 'flock'. */
  lockLen?: Offset;
  /** F_GETLK 5, F_SETLK 6, F_SETLKW 7; anything else gives -EINVAL. */
  cmd: number;
  /** The owner: the process ('posix'), the open file description ('ofd') or the flock owner. */
  lockOwner: Identity;
  /** Reported by F_GETLK to others; default 0. */
  lockPid?: number;
  /** Default 'posix'. */
  kind?: PosixKind;
  /** The open file description the lock is taken through; release drops its locks. */
  fileHandle?: Identity;
  /** Carried to onLock as given (copied when the call is made: it must be structured-cloneable). */
  fileContext?: unknown;
  /**
   * A wait longer than this (ms) ends with -EAGAIN and leaves nothing queued. Any finite value >= 0
   * is honoured, also past 2^31 ms; omit it (or pass Number.MAX_SAFE_INTEGER) to wait until the
   * lock is granted, interrupted or the coordinator stops.
   */
  timeoutMs?: number;
  /** Aborting it ends a wait with -EINTR; already aborted: -EINTR at once. */
  signal?: AbortSignal;
};

/**
 * What `lock` resolves to: `result` 0 or a negative errno. F_GETLK reports the conflicting lock
 * (lockType F_UNLCK when there is none); a set or unlock echoes the request's own fields.
 */
export type LockReply = {
  result: number;
  lockType: number;
  lockStart: bigint;
  /** 0 when the range runs to OFFSET_MAX. */
  lockLen: bigint;
  /** The holder's pid: -1 for an OFD holder, the processId for a Windows holder. */
  lockPid: number;
};

/** What close(2) does: drops every 'posix' lock of lockOwner on path. */
export type FlushRequest = {
  path: string;
  lockOwner: Identity;
};

/** The last close of an open file description: drops its locks, and lockOwner's flock lock if given. */
export type ReleaseRequest = {
  path: string;
  fileHandle: Identity;
  lockOwner?: Identity;
};

// ---- hook events --------------------------------------------------------------------------------

/**
 * onLockFile: a Windows lock is grantable and not granted yet. The request's fields, offsets as
 * bigints (byteOffset and length as decoded: a negative input is its unsigned 64-bit value),
 * processId and key with their defaults, and the contexts the caller gave.
 */
export type LockFileEvent = {
  readonly fileName: string;
  readonly byteOffset: bigint;
  readonly length: bigint;
  readonly exclusiveLock: boolean;
  readonly failImmediately: boolean;
  readonly handle: Identity;
  readonly processId: Identity;
  readonly key: Identity;
  readonly handleInfo?: unknown;
  readonly fileContext?: unknown;
  readonly handleContext?: unknown;
  /** The fence number the grant will hold (see LockEvent.fence). */
  readonly fence?: number;
};

/**
 * onUnlockFile: one released Windows lock record (by unlockFile, unlock-all or closeHandle), with
 * that record's range and the owner and contexts of the lockFile that took it.
 */
export type UnlockFileEvent = {
  readonly fileName: string;
  readonly byteOffset: bigint;
  readonly length: bigint;
  readonly handle: Identity;
  readonly processId: Identity;
  readonly key: Identity;
  readonly fileContext?: unknown;
  readonly handleContext?: unknown;
  /** The fence number of the released lock's grant (see LockEvent.fence). */
  readonly fence?: number;
};

/**
 * onLock: a POSIX/OFD/flock set (a negative errno vetoes it) or a release. A release of a held
 * lock (unlock, flush, release) has lockType F_UNLCK, cmd F_SETLK and the released range.
 * lockStart/lockLen are the decoded range (lockLen 0: to OFFSET_MAX; flock: 0 and 0).
 */
export type LockEvent = {
  readonly path: string;
  readonly lockType: number;
  readonly lockStart: bigint;
  readonly lockLen: bigint;
  readonly cmd: number;
  readonly lockOwner: Identity;
  readonly lockPid: number;
  readonly kind: PosixKind;
  readonly fileHandle?: Identity;
  readonly fileContext?: unknown;
  /**
   * A number that grows with every grant on the file, for applications that write to storage of
   * their own (refuse a write whose fence is below the highest seen). A set: what its grant will
   * hold; a release: the highest of the locks it released (0: none). Absent in a shared lock
   * space (docs/API.md, "Not yet").
   */
  readonly fence?: number;
};

// ---- listings and counters ----------------------------------------------------------------------

/**
 * One granted or waiting lock in `locks()` (think /proc/locks): path, kind, type ('read'/'write'
 * for the POSIX kinds, 'shared'/'exclusive' for Windows), start and end (inclusive; a zero-length
 * Windows lock has end = start - 1), owner (the lockOwner, or the Windows handle), pid (lockPid;
 * processId for Windows; -1 for OFD), state ('granted'/'waiting'), and for waiters waitingMs.
 * Declared where the table builds it (src/core/lock-table.ts), so the two cannot drift apart.
 */
export type { LockEntry } from './core/lock-table.js';

/** One worker thread's counters in `stats()`. */
export type WorkerStats = {
  index: number;
  /**
   * Files with lock state or waiters on this worker. With a `store`: files whose actor is alive
   * on this worker (it keeps a copy of the file's records while any node holds something there).
   */
  files: number;
  /** Granted locks on this worker's files. With a `store`: this node's own (locks() lists every node's). */
  locks: number;
  /** Requests waiting on this worker's files. With a `store`: this node's own. */
  waiters: number;
  calls: number;
  batches: number;
  /**
   * Actors waiting on an asynchronous hook, with requests held in their mailbox. With a `store`,
   * where every decision waits for the engine: actors with a decision running or queued, or a
   * release owed to the file's next step.
   */
  busyActors: number;
  /** Times this worker was replaced after it died. */
  restarts: number;
};

/** What `stats()` resolves to: counters for a person watching a running system. */
export type Stats = {
  /** Operations finished, by call and result code. */
  operations: Record<string, Record<string, number>>;
  /** Requests queued right now. */
  waiting: number;
  /** Requests sent to a worker and not answered yet. */
  inFlight: number;
  /** Requests that waited, and for how long (ms). */
  waits: { count: number; totalMs: number; maxMs: number; histogramMs: Record<string, number> };
  /** Files with live actors (lock state or waiters), all workers. */
  files: number;
  workers: WorkerStats[];
  hookErrors: number;
  /** Steps that threw inside a worker, or requests that could not be sent to one (bugs); each request got its family's generic code or a rejection. */
  faults: number;
  workerRestarts: number;
  crossWorkerDeadlocks: number;
  /** With a `store`: the engine's side (round trips, retries after a concurrent change, the session). */
  store?: StoreStats;
};

/** The engine's side of `stats()` when the coordinator shares a lock space (`store`). */
export type StoreStats = {
  engine: 'redis';
  node: string;
  namespace: string;
  /** This node's session: its number (0 while none is open), whether it is fenced or in a grace period. */
  session: { epoch: number; fenced: boolean; grace: boolean };
  /**
   * The engine's incarnation this node's session belongs to: a random id its data in the namespace
   * was created with (a new one once it lost that data), the same for every node of the lock space
   * however each wrote the URL; '' while no session is open.
   */
  incarnation: string;
  /** Engine calls made by this node (commits, loads, renewals, reaps, listings). */
  roundTrips: number;
  commits: number;
  /** Commits refused because another node changed the file first, then decided again. */
  stale: number;
  /** Commits refused before reaching the engine because this node was fenced. */
  fencedLocally: number;
  /**
   * Requests that waited for the end of a grace period after the engine lost its data, tried
   * again then: commits the engine refused in it, and requests that would grant and came after
   * this node's earlier ones refused so (they wait behind them, unsent).
   */
  graceWaits: number;
  /**
   * Commits refused because a grant's fence was not above the file's last (a node's copy did not
   * know it: the file had emptied and come back, or the node's estimate of the engine's time lagged),
   * decided again with a new number (the approval hook asked again).
   */
  fenceRefusals: number;
  renewals: number;
  failedRenewals: number;
  /** Sessions opened: 1, plus one after each loss. */
  sessions: number;
  /**
   * Releases answered to their callers (an unlock, a close, a mount's release) whose step the
   * engine does not have yet, because it did not answer in time: each is written by the file's
   * next step, also after its worker died. Zero again once the engine answers; a count that stays
   * up says the engine has not answered since (their locks still block other nodes meanwhile).
   */
  owedReleases: number;
};

// ---- options ------------------------------------------------------------------------------------

/** A shared lock space on an engine (API.md "One lock space across machines"); a URL alone is `{ url }`. */
export type StoreOptions = {
  /** The engine: `redis://` or `rediss://` (a password in the URL). */
  url: string;
  /** Coordinators naming the same engine and namespace share one lock space; default 'locksmith'. */
  namespace?: string;
  /** This node's name in listings. */
  node?: string;
  /** A node that stops renewing its session loses its locks after this long. */
  sessionTtlMs?: number;
  /** A new request that cannot reach the engine within this long gets the family's generic code. */
  requestTimeoutMs?: number;
};

/** Options of `LockCoordinator.start`. */
export type StartOptions = {
  /** Worker threads hosting the file actors (1 to 256); default: available parallelism. */
  workers?: number;
  /** Fires when a Windows lock is grantable, before the grant; a non-zero result is the caller's result. Goes with onUnlockFile. */
  onLockFile?: (e: LockFileEvent) => number | void | Promise<number | void>;
  /** Fires after each released Windows lock record; its outcome is ignored (a throw is reported). Goes with onLockFile. */
  onUnlockFile?: (e: UnlockFileEvent) => void | Promise<void>;
  /** Fires for POSIX/OFD/flock sets (a negative errno vetoes) and releases. */
  onLock?: (e: LockEvent) => number | void | Promise<number | void>;
  /** Wake-up policy: 'default' (as Windows and Linux) or 'fifo' (starvation-free). */
  policy?: 'default' | 'fifo';
  /** A hook that has not answered after this long is a veto with the family's generic code; default 30 000. */
  hookTimeoutMs?: number;
  /** Share one lock space with every coordinator and mount on the same engine and namespace. */
  store?: string | StoreOptions;
};

// ---- earlier names ------------------------------------------------------------------------------

/** @deprecated Use StartOptions. */
export type CoordinatorOptions = StartOptions;
/** @deprecated Use Stats. */
export type CoordinatorStats = Stats;
/** @deprecated Use LockReply. */
export type PosixReply = LockReply;
