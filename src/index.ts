/**
 * locksmith: byte-range lock coordination for user-mode filesystems.
 *
 * The module entry of the package (API.md). Result codes and request constants are exported by
 * their C names; the lock tables that decide requests live in ./core/.
 */
export * from './core/codes.js';
export { LockTable } from './core/lock-table.js';
export type { LockEntry, PosixReply, Pending, TableHooks, TableOptions, CancelReason, Family } from './core/lock-table.js';
export type { Policy, LockKind } from './core/file-locks.js';
export type { Identity, Offset } from './core/input.js';
