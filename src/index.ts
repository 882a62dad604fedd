/**
 * locksmith: byte-range lock coordination for user-mode filesystems.
 *
 * The module entry of the package (API.md): LockCoordinator, the result codes and request
 * constants by their C names, and the synchronous LockTable that decides requests (src/core/).
 */
export * from './core/codes.js';
export { LockCoordinator, type CoordinatorOptions, type CoordinatorStats, type LockEvent, type LockFileEvent, type UnlockFileEvent } from './coordinator.js';
export { LockTable } from './core/lock-table.js';
export type { LockEntry, PosixReply, Pending, TableHooks, TableOptions, CancelReason, Family } from './core/lock-table.js';
export type { Policy, LockKind } from './core/file-locks.js';
export type { Identity, Offset } from './core/input.js';
export { mountFuse, runSynthetic, fuseUnavailable, type FuseMount, type FuseMountOptions, type SyntheticOptions, type SyntheticResult, type SessionInfo } from './mount.js';
