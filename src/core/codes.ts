/**
 * Result codes and request constants of the public contract (API.md).
 *
 * Windows calls resolve to a Win32 error code (0 = success). POSIX calls resolve to 0 or a
 * negative errno; the errno constants below are exported positive, as in <errno.h>.
 */

/** The lock was granted, the range unlocked, or the I/O is allowed. */
export const ERROR_SUCCESS = 0;
/** A conflicting lock exists (fail-immediately, checkIo, timeout, hook veto, 'fifo' refusal). */
export const ERROR_LOCK_VIOLATION = 33;
/** A value no Windows call could carry: an offset outside the 64-bit range, a negative timeout. */
export const ERROR_INVALID_PARAMETER = 87;
/** No lock record matches the unlock exactly; or a waiter whose handle was closed. */
export const ERROR_NOT_LOCKED = 158;
/** offset + length - 1 wraps past 2^64-1. */
export const ERROR_INVALID_LOCK_RANGE = 307;
/** A waiting request was cancelled (signal) or the coordinator stopped. */
export const ERROR_OPERATION_ABORTED = 995;

/** A waiting request was interrupted (signal, FUSE_INTERRUPT, stop()). */
export const EINTR = 4;
/** Conflict on a non-blocking request; also a timed-out wait and a 'fifo' refusal. */
export const EAGAIN = 11;
/** Bad lockType, cmd or range. */
export const EINVAL = 22;
/** A blocking classic POSIX request would close a wait-for cycle. */
export const EDEADLK = 35;
/** Generic failure: a hook threw. */
export const ENOLCK = 37;
/** The range ends beyond OFFSET_MAX. */
export const EOVERFLOW = 75;

/** Shared/read lock type (struct flock l_type). */
export const F_RDLCK = 0;
/** Exclusive/write lock type. */
export const F_WRLCK = 1;
/** Unlock. */
export const F_UNLCK = 2;
/** Test for a conflicting lock. */
export const F_GETLK = 5;
/** Set or clear a lock without waiting. */
export const F_SETLK = 6;
/** Set a lock, waiting for conflicting locks to go. */
export const F_SETLKW = 7;

/** The largest POSIX file offset, 2^63 - 1; a POSIX range never ends beyond it. */
export const OFFSET_MAX = (1n << 63n) - 1n;
/** The largest Windows offset, 2^64 - 1. */
export const UINT64_MAX = (1n << 64n) - 1n;
