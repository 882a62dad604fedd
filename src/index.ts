/**
 * locksmith: byte-range lock coordination for user-mode filesystems.
 *
 * The module entry of the package (API.md): LockCoordinator, the result codes and request
 * constants by their C names, and the synchronous LockTable that decides requests (src/core/).
 */
export * from './core/codes.js';
export { LockCoordinator } from './caller/coordinator.js';
/** The requests, replies, hook events, listing entries and options of the public contract (API.md "Types"). */
export type {
  LockFileRequest,
  UnlockFileRequest,
  CloseHandleRequest,
  CheckIoRequest,
  LockRequest,
  LockReply,
  FlushRequest,
  ReleaseRequest,
  LockFileEvent,
  UnlockFileEvent,
  LockEvent,
  LockEntry,
  Stats,
  WorkerStats,
  StartOptions,
  StoreOptions,
  PosixKind,
  Identity,
  Offset,
  CoordinatorOptions,
  CoordinatorStats,
  PosixReply,
} from './types.js';
export { LockTable } from './core/lock-table.js';
export type { Pending, TableHooks, TableOptions, CancelReason, Family } from './core/lock-table.js';
export type { Policy, LockKind } from './core/file-locks.js';
export { mountFuse, runSynthetic, fuseUnavailable, type FuseMount, type FuseMountOptions, type SyntheticOptions, type SyntheticResult, type SessionInfo } from './mount.js';
