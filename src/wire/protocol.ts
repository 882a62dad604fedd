/**
 * Messages between the caller's thread (src/caller/) and the actor hosts (src/actors/, one per
 * worker thread).
 *
 * Data plane: one MessagePort per worker carries batches both ways (batcher.ts): calls as a number
 * lane of doubles with their paths beside it (calls.ts), answers as flat arrays of tagged runs of
 * primitives (replies.ts), and the rarer messages below as one object each.
 * Control plane (hooks, listings, stats): comlink over two more ports.
 */
import type { MessagePort } from 'node:worker_threads';
import type { CancelReason, LockEntry } from '../core/lock-table.js';
import type { Lock, LockRequest } from '../core/file-locks.js';
import type { JournalEntry } from './journal-entry.js';
import type { StoreOptions, WorkerStats } from '../types.js';
import type { SharedConfig, WaiterEnded } from '../actors/shared-file.js';
import type { LinkCounts } from '../actors/direct-link.js';

/** Caller -> host, besides calls (calls.ts). */
export type ToHost =
  /** End request `id` early if it is waiting (or as soon as it would wait). */
  | { t: 'cancel'; id: number; reason: CancelReason }
  /** Rebuild a file's granted locks after a worker was replaced (journal replay). */
  | { t: 'restore'; path: string; entries: JournalEntry[] }
  /** The deadlock service found that request `id` closes a cycle: fail it if it still waits. */
  | { t: 'deadlock'; id: number; token: number }
  /** 'fifo': `owner` waits (through other workers) for waiting request `id`'s owner: let `id` pass its waiters. */
  | { t: 'pass'; id: number; owner: string }
  /** A shared lock space, 'fifo': a request queued on another worker: run the wake-up passes of this worker's files with POSIX waiters. */
  | { t: 'settleOthers' }
  /** Reply 'synced' once every earlier message of this host has been answered. */
  | { t: 'sync'; token: number }
  /** Send the granted locks of `path` (journal compaction). */
  | { t: 'snapshot'; path: string }
  /** End every waiter ('stop'), then answer 'stopped'. */
  | { t: 'stop' }
  /** Crash drill (tests): die as from an uncaught exception. */
  | { t: 'crash' }
  /** Take the events of native pump session `sessionId`'s destination for this worker (src/native/). */
  | { t: 'native'; sessionId: number }
  /** A shared lock space: this node's waiters of `path` that another node's step ended (its inbox). */
  | { t: 'ended'; path: string; events: WaiterEnded[] }
  /** A shared lock space: remove the records of these dead sessions from `path` (the reaper). */
  | { t: 'reap'; path: string; sessions: { node: string; epoch: number }[] }
  /**
   * A shared lock space: this node acts on session `epoch` of the engine's `incarnation` from now
   * on. `carried`: the previous session, when the engine lost its data while it was live (its
   * records are re-asserted, for `graceMs` more); 0 when it was lost (its locks and waiters with it).
   */
  | { t: 'session'; incarnation: string; epoch: number; carried: number; graceMs: number }
  /**
   * A shared lock space: request `id`, sent next to this replacement worker, was being judged by
   * the dead worker's approval hook (a grant by another node's step): its owner's locks before
   * that grant, as the dead worker's 'judging' said (SharedFiles.rejudge). `cancelled`: its caller
   * was told it ended (its timeout or signal, as the worker died, or the dead worker answered its
   * cancel before the grant's release was written): the grant, if still held, is released as a
   * veto's without asking the hook, and the request never runs; its answer is the cancel's.
   */
  | { t: 'judged'; id: number; before: LockRequest[]; cancelled?: CancelReason };

/** Host -> caller, besides the records of replies.ts. */
export type FromHost =
  /**
   * Wait-for edges of request `id`'s waiter changed ('posix' waiters only): owners of the granted
   * locks it waits on, and ('fifo') owners of the earlier waiters it queues behind. Both empty = gone.
   */
  | { t: 'edges'; id: number; owner: string; blockers: string[]; queuedBehind: string[] }
  /** Answer to 'deadlock': whether the waiter was failed. */
  | { t: 'deadlocked'; token: number; failed: boolean }
  | { t: 'synced'; token: number }
  | { t: 'snapshot'; path: string; locks: Lock[] }
  /** A hook failed (threw, rejected, timed out, returned nonsense): counted and reported. */
  | { t: 'hookError'; hook: string; message: string }
  /** A step threw (a bug, not bad input): the request got the generic code; the host goes on. */
  | { t: 'fault'; message: string }
  | { t: 'stopped' }
  /** A shared lock space: the engine refused a commit for a session it no longer has: renew now. */
  | { t: 'storeTrouble' }
  /** A shared lock space: the host acts on this session from now on (the 'session' message it read; epoch 0: none). */
  | ({ t: 'adopted' } & HostSession)
  /**
   * A shared lock space: handles (path|handle key) whose locks went with a lost session
   * (SharedFiles.lostHandles): their I/O fails until they close. Sent only when they are told so.
   */
  | { t: 'lostHandles'; keys: string[] }
  /**
   * A shared lock space: handle `key` closed, one of those, or any while a replacement reads a
   * lost session's index (SharedFiles.recoverLost): that index's record of it is not its handle's.
   */
  | { t: 'lostClosed'; key: string }
  /**
   * A shared lock space: release `id`, whose answer follows, is answered before its step was
   * written to the engine (owed to the file's next step, or answered while still queued); or a
   * waiter's request cancelled while its approval hook judged another node's grant of it (the
   * grant's release not written yet: SharedFiles.cancel). The
   * caller keeps it until 'written', and sends it to a replacement of this worker if it dies first.
   * `wire`: a native release's (id -reqId, answered to the kernel by the worker itself): its call's
   * wire form (calls.ts, id 0), which the caller never saw; resent as the API call it stands for.
   */
  | { t: 'owed'; id: number; wire?: unknown[] }
  /** Release `id`, told 'owed', is owed no longer: written, settled, or dropped. */
  | { t: 'written'; id: number }
  /**
   * A shared lock space: waiter request `id`'s grant by another node's step is to be judged by
   * this node's approval hook; `before`: its owner's locks on the file just before the grant. Kept
   * with the request until its answer, and sent ahead of it to a replacement ('judged').
   */
  | { t: 'judging'; id: number; before: LockRequest[] }
  /**
   * A shared lock space, 'fifo': a request queued with edges on this worker; the other workers run
   * the wake-up passes of their files with POSIX waiters (SharedFiles.settleOthers).
   */
  | { t: 'settleOthers' };

/** One of this node's sessions on a shared lock space's engine: its epoch, in the engine's incarnation. */
export interface HostSession {
  epoch: number;
  incarnation: string;
}

/** The control plane a host exposes through comlink. */
export interface HostControl {
  locks(path?: string): LockEntry[];
  /** A replacement worker answers its first once it read which locks its predecessor took (SharedFiles.recover), or after requestTimeoutMs. */
  stats(): HostStats | Promise<HostStats>;
}

/** A host's counters: a worker's stats() entry without what only the coordinator knows. */
export type HostStats = Omit<WorkerStats, 'restarts'> & {
  /** A shared lock space: this worker's own engine calls (direct-link.ts), added to stats().store. */
  engine?: LinkCounts;
};

/** The control plane the coordinator exposes to hosts: the application's hooks. */
export interface HookRunner {
  /** Runs the hook and returns its normalized verdict: 0 grants, non-zero is the result. */
  approve(family: 'windows' | 'posix', event: Record<string, unknown>): Promise<number>;
  /** Runs onUnlockFile / onLock for a release; its outcome is ignored. */
  released(family: 'windows' | 'posix', event: Record<string, unknown>): Promise<void>;
}

/** What a host task receives when it starts. */
export interface HostInit {
  index: number;
  data: MessagePort;
  control: MessagePort;
  hooks: MessagePort;
  policy: 'default' | 'fifo';
  /** Which hooks exist, so a host only calls out when there is someone to call. */
  approveWindows: boolean;
  approvePosix: boolean;
  releasedWindows: boolean;
  releasedPosix: boolean;
  hookTimeoutMs: number;
  /** Where the native feed counts the requests it answers (counters.ts SharedCounters): the caller's, kept across replacements. */
  nativeCounters: SharedArrayBuffer;
  /**
   * A shared lock space (src/actors/shared-file.ts): the node, the session's lease and epoch, and the
   * engine each worker connects to itself (direct-link.ts) under the session's incarnation.
   */
  shared?: SharedConfig & {
    store: StoreOptions;
    incarnation: string;
    /** How many workers share the files (routeOf): a replacement reads which locks of its files its predecessor took (SharedFiles.recover). */
    workers?: number;
    /**
     * A replacement whose predecessor last said it acts on another session than this one
     * (Worker.session): the locks it took under that one are lost, and their handles are told so
     * from that session's index (SharedFiles.recoverLost).
     */
    predecessor?: HostSession;
    /**
     * A replacement: what its predecessors said of lost handles ('lostHandles', 'lostClosed'; the
     * caller keeps it per worker index, Workers.lostOf): the handles still lost, and those closed
     * since, whose records in `predecessor`'s index are not to be told lost.
     */
    lost?: { handles: string[]; closed: string[] };
  };
}
