/**
 * The journal's one entry form, shared by both sides of crash recovery.
 *
 * What a worker would lose when it dies is the granted locks of its files. The caller's side keeps,
 * per file, the steps that changed them since the file was last idle (src/caller/journal.ts), and a
 * replacement worker replays them (LockTable.replay). A step is kept as a call in its wire form
 * (calls.ts): an API request as it travelled, and a native request (src/actors/native-journal.ts)
 * as the API request it stands for. A flock conversion that dropped the owner's old lock before its
 * new one was granted or queued is kept as that owner's flock unlock. A long journal is replaced by
 * a snapshot of the file's granted locks.
 */
import { F_GETLK, F_SETLK, F_UNLCK } from '../core/codes.js';
import type { Lock } from '../core/file-locks.js';
import type { ReplayEntry } from '../core/lock-table.js';
import type { Call, DecodedLock } from '../core/requests.js';
import { decodeCall, lockFlagsOf, putLock } from './calls.js';

/** The granted locks of a file at one point of its journal (compaction). */
export interface LocksSnapshot {
  readonly j: 'locks';
  readonly locks: readonly Lock[];
}

/** A committed call in its wire form (calls.ts; its path is item 2), or a snapshot. */
export type JournalEntry = readonly unknown[] | LocksSnapshot;

/**
 * Whether a finished call changed its file's granted locks, so belongs in the journal. `code` is
 * the call's result code (null or 0 for calls without one). Both sides ask this one question: the
 * caller of an API request's answer, the native journal of a native request's.
 */
export function commits(call: Call | DecodedLock, code: number | null): boolean {
  switch (call.op) {
    case 'lockFile':
    case 'unlockFile':
      return code === 0;
    case 'lock':
      // An unlock that ran answers 0; one answered anything else never ran.
      return call.cmd !== F_GETLK && code === 0;
    case 'checkIo':
      return false;
    default:
      return true;
  }
}

/** The flock unlock that replays a dropped flock lock of `lockOwner` (a conversion's first step). */
export function flockDropEntry(path: string, lockOwner: DecodedLock['lockOwner']): unknown[] {
  const b: unknown[] = [];
  putLock(b, b.length, 0, path, lockFlagsOf(F_SETLK, F_UNLCK, 'flock'), lockOwner, 0, 0, 0, undefined);
  return b;
}

/** What LockTable.replay takes for an entry. */
export function replayOf(e: JournalEntry): ReplayEntry {
  return Array.isArray(e) ? { j: 'call', call: decodeCall(e, 0) } : (e as LocksSnapshot);
}
