/**
 * How a lock is shown outside the table: as an entry of `locks()` (a line of /proc/locks), as the
 * lock an F_GETLK reply reports, and as the event a Windows unlock hook receives.
 */
import { F_RDLCK, F_SETLK, F_UNLCK, F_WRLCK, OFFSET_MAX } from './codes.js';
import type { FileLocks, Lock, LockKind, LockOrigin } from './file-locks.js';
import { posixLength, type Identity } from './input.js';
import type { PosixReply } from './requests.js';

/** One entry of `locks()`: a granted or waiting lock, like a line of /proc/locks. */
export interface LockEntry {
  path: string;
  kind: LockKind;
  type: 'read' | 'write' | 'shared' | 'exclusive';
  start: bigint;
  end: bigint;
  owner: Identity;
  pid: number;
  state: 'granted' | 'waiting';
  /** Windows processId, when it is not a number. */
  processId?: Identity;
  fileHandle?: Identity;
  /** For waiters: ms since the request queued. */
  waitingMs?: number;
  /** In a shared lock space: the node the lock or request belongs to. */
  node?: string;
}

/** The granted and waiting locks of `files`, one entry each; `now` dates the waiters (ms). */
export function listLocks(files: Iterable<FileLocks>, now: number): LockEntry[] {
  const out: LockEntry[] = [];
  for (const f of files) {
    for (const l of f.granted()) out.push(entry(f.path, l.kind, l.write, l.start, l.end, l.origin, 'granted'));
    for (const w of f.waiters) {
      const e = entry(f.path, w.req.kind, w.req.write, w.req.start, w.req.end, w.req.origin, 'waiting');
      e.waitingMs = now - w.since;
      out.push(e);
    }
  }
  return out;
}

/**
 * The event a POSIX release notice of lock `l` receives (a flush or a release removed it): the
 * request that took it, as an F_SETLK F_UNLCK of its bytes, or of bytes [start, end] of them only
 * (a shared lock space tells no notice for bytes its caller never held: SharedFile.untold).
 */
export function posixUnlockEvent(l: Lock, start: bigint = l.start, end: bigint = l.end): Record<string, unknown> {
  return { ...l.origin.event, lockType: F_UNLCK, cmd: F_SETLK, lockStart: start, lockLen: posixLength(start, end), ...(l.fence === undefined ? {} : { fence: l.fence }) };
}

export function winUnlockEvent(l: Lock): Record<string, unknown> {
  const e = l.origin.event;
  const out: Record<string, unknown> = {
    fileName: e.fileName,
    byteOffset: l.start,
    length: l.end - l.start + 1n,
    handle: e.handle,
    processId: e.processId,
    key: e.key,
  };
  if (l.fence !== undefined) out.fence = l.fence;
  if (e.fileContext !== undefined) out.fileContext = e.fileContext;
  if (e.handleContext !== undefined) out.handleContext = e.handleContext;
  return out;
}

/**
 * A granted lock as an F_GETLK reply. A Windows lock past OFFSET_MAX is clamped to it; a
 * zero-length Windows lock at X (which blocks ranges holding bytes X-1 and X) is shown as [X-1, X].
 */
export function posixView(l: Lock): Omit<PosixReply, 'result'> {
  let start = l.start;
  let end = l.end < OFFSET_MAX ? l.end : OFFSET_MAX;
  if (end < start) {
    start = l.start - 1n;
    end = l.start;
  }
  return { lockType: l.write ? F_WRLCK : F_RDLCK, lockStart: start, lockLen: posixLength(start, end), lockPid: l.origin.pid };
}

export function entry(path: string, kind: LockKind, write: boolean, start: bigint, end: bigint, origin: LockOrigin, state: 'granted' | 'waiting'): LockEntry {
  const e: LockEntry = {
    path,
    kind,
    type: kind === 'windows' ? (write ? 'exclusive' : 'shared') : write ? 'write' : 'read',
    start,
    end,
    owner: origin.holder,
    pid: origin.pid,
    state,
  };
  if (kind === 'windows') e.processId = origin.event.processId as Identity;
  else if (origin.event.fileHandle !== undefined) e.fileHandle = origin.event.fileHandle as Identity;
  return e;
}
