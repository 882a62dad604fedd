/**
 * One worker's side of a shared lock space: every shared file's actor (shared-file.ts) of this
 * worker, and this node's requests on them from arrival to answer. It qualifies a request's owner
 * with the node, answers at once what needs no decision (no session; I/O through a handle whose
 * locks were lost), runs the rest in the file's mailbox, and keeps what outlives one decision:
 * waiting requests by record id (answered from inbox events, endWait), requests that wait out a
 * grace period (park), releases owed to a file's next step (retryOwed), the session this
 * worker acts on (adopt, renewed, nextSession), and, in a worker that replaces one that died, the
 * locks its predecessor took (recover), or lost with a session it did not hear of (recoverLost).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { clearTimer, setTimerExact, type Timer } from '../long-timer.js';
import { ENOLCK, ERROR_LOCK_VIOLATION, ERROR_OPERATION_ABORTED, F_GETLK, F_UNLCK } from '../core/codes.js';
import type { LockRequest } from '../core/file-locks.js';
import { cancelResult, closedWith, type CancelReason, type Family, type TableHooks } from '../core/lock-table.js';
import { decodeRecord, qualify, windowsHandleOf } from '../core/records.js';
import { cancellable, replyOf, type Call, type PosixReply } from '../core/requests.js';
import type { CommitReply, SessionFilesPage, StoreRecord } from '../store/types.js';
import type { FromHost } from '../wire/protocol.js';
import type { ReplyTarget, Result } from './reply-target.js';
import { Parked, REMOTE, SharedFile, type FileSpace, type LostEnd, type Outcome, type SharedConfig, type StoreLink, type WaiterEnded } from './shared-file.js';

/** Every shared file of one worker, and this node's requests on them. */
export class SharedFiles implements FileSpace {
  private readonly files = new Map<string, SharedFile>();
  /** This node's waiting requests: record id -> host request id. */
  readonly waits = new Map<string, number>();
  /**
   * Waiters of this node that steps given up on ended with a failure, whose records are gone, by
   * the mark in this node's inbox that settles them (afterMark), with their file.
   */
  private readonly marks = new Map<string, { path: string; ends: readonly LostEnd[] }>();
  /**
   * Inbox events read (ended) whose turn in their file's mailbox has not come: waiter record id ->
   * result. A close answered before that turn tells them first (endThrough).
   */
  private readonly readEnds = new Map<string, number>();
  /** Requests received and not answered: host id -> what answers them. */
  private readonly requests = new Map<number, PendingRequest>();
  /** Handles whose locks went with a lost session: I/O through them fails until they close (path|handle key). */
  private readonly lostHandles = new Set<string>();
  /** This node's session, as this worker was last told (adopt). */
  epoch: number;
  private readonly lease: Float64Array;
  /** Decisions waiting for the next session's message (nextSession). */
  private sessionWaiters: (() => void)[] = [];
  private counter = 0;
  private stopping = false;
  /** FileSpace.onStop: called when stop() begins. */
  private readonly stopListeners = new Set<() => void>();
  /**
   * Requests answered before their end, whose steps may still run, and whatever they end in is not
   * told again (finish): those stop() answered at once (waiters, and requests waiting out a grace
   * period; the cancel of a waiter may still run, with the engine slow or gone), and releases
   * answered at their deadline while still queued (answerRelease: they run at their turn, owed).
   */
  private readonly answeredAlready = new Set<number>();
  /**
   * Files whose actor went idle knowing this node had nothing there (SharedFile.nothingOfMine):
   * the next actor of the file knows it from the start, so a close of a file opened and closed
   * again without a lock costs no round trip. Only this worker's steps put this node's records in
   * its files; a replacement worker starts with none known. The oldest are forgotten past
   * NONE_OF_MINE_MAX (a forgotten file's next release asks the engine once).
   */
  private readonly noneOfMine = new Set<string>();
  /**
   * A replacement worker's files whose locks its predecessor took under this session, read from
   * the engine (recover) and not yet in the cache of an actor here: per file, those held records.
   * Only this node's steps change its records while its session lives, and the first step on such
   * a file here is the actor's load (file() queues it first): until that load has the engine's
   * records, these are exactly what the engine holds of this node there. A new session before
   * then (adopt) counts them lost: the actor has nothing to put back, the engine nothing left.
   */
  private readonly pending = new Map<string, readonly StoreRecord[]>();
  /** Files of `pending` whose actor is not made yet, in the order they are loaded (pumpLoads). */
  private loadQueue: string[] = [];
  /** The session a replacement's reading of its predecessor's locks (recover) is for, while it reads. */
  private recovering: number | undefined;
  /** While a replacement reads a session its predecessor lost (recoverLost): the handles closed since it began (path|handle key). */
  private closedMeanwhile: Set<string> | undefined;
  /** That reading, while it runs: this worker's reaping waits for it (reap). */
  private lostReading: Promise<unknown> | undefined;
  /** Per file with owed releases: the timer of their next try, and how many tries they had (retryOwed). */
  private readonly owedRetries = new Map<string, OwedRetry>();
  /**
   * Files whose owed try is in their mailbox, queued or running (runOwed): one at a time. True once
   * the next try came due meanwhile (its wait ran out, or was cut short): it follows that one at once.
   */
  private readonly owedInMailbox = new Map<string, boolean>();
  /**
   * The wait before a file's owed try `tries` + 1 (retryOwed): 100 ms, doubling up to 5 s. Tests
   * may replace it (a wait that never ends shows a try came because the engine answered again).
   */
  owedDelay: (tries: number) => number = retryDelay;
  /** Steps this worker sent the engine (link.commit): their order, which an answer's is compared with (healed). */
  private sends = 0;
  /** The last of `sends` that got no reply ('unreachable'), and the last the engine answered (silent). */
  private unanswered = 0;
  /** fenceTime: the engine's clock minus this thread's (ms) as the last 'fence' refusal told it, while the lease's is `fenceOffsetFor`. */
  private fenceOffset = Number.NaN;
  private fenceOffsetFor = Number.NaN;
  private answered = 0;
  /** When the engine last answered a step of this worker (performance.now()): requests' deadlines run from it (attempt). */
  private answeredAt = Number.NEGATIVE_INFINITY;
  /**
   * Releases whose deadline passed while a request queued ahead of them that they touch was
   * unanswered (attempt): looked at again when such a request is answered, waits or parks
   * (aheadChanged). By host id, in the order their deadlines passed.
   */
  private readonly dueReleases = new Map<number, () => void>();
  /**
   * Releases told owed to their caller (tellOwed: answered before their step was written), and
   * where to tell that they are owed no longer (written).
   */
  private readonly owedTold = new Map<number, OwedTarget>();
  /**
   * Cancels waiting for their turn in their file's mailbox, by request: each answers its request
   * at once if it can (answerCancels), its waiter's removal owed.
   */
  private readonly cancelsQueued = new Map<number, () => void>();
  /**
   * Files whose owed try waits out its backoff and may be cut short (healed): not run so since
   * its last try that the wait ran out for. In the order their waits began (`since` grows).
   */
  private readonly owedWaiting = new Set<string>();
  /** Watches the lease while owed tries wait to be cut short by a renewal (watchRenewal). */
  private renewalWatch: NodeJS.Timeout | undefined;

  /**
   * The engine's link, as the files use it: a re-assertion's reply that put records back settles
   * its file in `putBacks`.
   */
  readonly link: StoreLink;
  /**
   * The files whose records an adopt of a carried session began to put back (beginReassert), not
   * back yet nor told lost, and what ends the wait for them: true once none is left, false when a
   * newer session came first. The host says it acts on the session ('adopted') only then: a
   * worker that dies before leaves its replacement its older session (HostInit.shared.predecessor),
   * whose data the engine lost (unknown, reported), not the new one, which lacks what it held.
   */
  private putBacks: { readonly adopt: number; readonly paths: Set<string>; readonly end: (done: boolean) => void; readonly done: Promise<boolean> } | undefined;
  /** Counts adopt()s that changed the session (a re-assertion's reply counts for the put-backs of its own). */
  private adopts = 0;
  /** While an adopt makes its files begin their re-assertions: the files whose first try went out. */
  private collecting: Set<string> | undefined;

  constructor(
    link: StoreLink,
    readonly config: SharedConfig,
    private readonly hooks: TableHooks,
    private readonly fault: (message: string) => void,
    /** Open files of a mount whose POSIX or flock locks went with a lost session (their I/O must fail). */
    private readonly lostFiles: (fileHandles: number[]) => void = () => {},
    /** The tag of this host's record ids: the node and a random part, unique in the lock space. */
    private readonly idPrefix = `${config.node}.${randomUUID().slice(0, 8)}.`,
    /**
     * Tells the caller of handles told lost and of closes that end that (FromHost 'lostHandles',
     * 'lostClosed'): a replacement of this worker starts from them (lostBefore, recoverLost).
     */
    private readonly tell: (m: Extract<FromHost, { t: 'lostHandles' | 'lostClosed' | 'judging' | 'settleOthers' }>) => void = () => {},
  ) {
    this.lease = new Float64Array(config.lease);
    this.epoch = config.epoch;
    this.link = {
      commit: (step) => {
        const sent = ++this.sends;
        return link.commit(step).then((reply) => {
          if (!reply.ok && reply.reason === 'unreachable') this.unanswered = Math.max(this.unanswered, sent);
          else if (reply.ok || reply.reason !== 'fenced') {
            this.answered = Math.max(this.answered, sent);
            this.answeredAt = performance.now();
          }
          if (this.owedWaiting.size > 0 && engineAnswered(reply)) this.healed(sent);
          // Cancels waiting their turn are answered now (answerCancels).
          if (!reply.ok && (reply.reason === 'unreachable' || reply.reason === 'fenced') && this.cancelsQueued.size > 0) this.answerCancels();
          return reply;
        });
      },
      fileReach: (file, pairs) => link.fileReach(file, pairs),
      reassert: (file, records, edges) => {
        // A file's put-back sends its first try at once (beginReassert): it is one to wait for.
        this.collecting?.add(file);
        const adopt = this.adopts;
        return link.reassert(file, records, edges).then((reply) => {
          const w = this.putBacks;
          if (reply.ok && w !== undefined && w.adopt === adopt) this.putBack(w, file);
          return reply;
        });
      },
    };
  }

  /** File `path` of put-backs `w` is back, or told lost: `w` ends once none is left. */
  private putBack(w: NonNullable<SharedFiles['putBacks']>, path: string): void {
    if (this.putBacks !== w || !w.paths.delete(path) || w.paths.size > 0) return;
    this.putBacks = undefined;
    w.end(true);
  }

  /** A record id unique in the lock space: the node, this actor host's random tag, a counter. */
  newId(): string {
    return this.idPrefix + (++this.counter).toString(36);
  }

  /**
   * The engine's time in µs as this worker knows it from below (Step.fence): the lease's offset
   * (the engine's time at a renewal's reply plus the time elapsed here since), or what a 'fence'
   * refusal told when the lease's ran ahead of it (until the lease's moves); 0 before either.
   */
  fenceTime(): number {
    const lease = this.lease[2]!;
    const offset = this.fenceOffsetFor === lease ? this.fenceOffset : lease;
    if (!Number.isFinite(offset)) return 0;
    return Math.max(0, Math.floor((performance.timeOrigin + performance.now() + offset) * 1000));
  }

  /** A 'fence' refusal: the engine's time (µs) when it refused, a bound from below. */
  fenceRefused(nowUs: number): void {
    const sample = nowUs / 1000 - (performance.timeOrigin + performance.now());
    const lease = this.lease[2]!;
    if (!(sample >= lease)) {
      this.fenceOffset = sample;
      this.fenceOffsetFor = lease;
    }
  }

  report(e: unknown): void {
    this.fault(`shared lock space: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** The hooks of one decision: no hook hears of another node's locks; notices leave with the answers. */
  tableHooks(out: () => Outcome): TableHooks {
    const { approve, released } = this.hooks;
    return {
      approve: approve === undefined ? undefined : (family: Family, event) => ((event as Record<symbol, unknown>)[REMOTE] === true ? 0 : approve(family, event)),
      released:
        released === undefined
          ? undefined
          : (family: Family, event) => {
              if ((event as Record<symbol, unknown>)[REMOTE] !== true) out().answers.push(() => released(family, event));
            },
    };
  }

  private file(path: string): SharedFile {
    let f = this.files.get(path);
    if (f === undefined) {
      f = new SharedFile(path, this, this.noneOfMine.delete(path) || this.config.blank === true);
      this.files.set(path, f);
      // Its predecessor's locks (recover): the cache has them before anything else runs here.
      if (this.pending.has(path)) this.load(f);
    }
    return f;
  }

  /**
   * A replacement worker (SharedConfig.blank false) learns the locks this node's session holds in
   * the files it serves (`mine`), which its predecessor took: pages of the session's index
   * (`list`, Engine.sessionFiles), each file's records kept in `pending`, then each such file's
   * actor made and loaded (one step that changes nothing, first in its mailbox), LOADS_AT_ONCE
   * at a time, so that other files are served meanwhile. Once loaded, the cache has the records:
   * a reset puts them back (beginReassert), a lost session counts them lost, a close releases
   * them. A node without locks in this worker's files costs one read per PAGE_FILES files it has
   * locks in, nothing else. A new session before a file was loaded counts its records lost
   * (adopt); one before the index was read to its end, or an engine that lost its data before it
   * was read, leaves the rest unknown: reported (a fault). Resolves once the index was read to
   * its end (the loads go on), or given up.
   */
  async recover(list: (cursor: string) => Promise<SessionFilesPage | 'reset'>, mine: (path: string) => boolean): Promise<void> {
    const epoch = this.epoch;
    if (this.config.blank === true || epoch === 0 || this.stopping) return;
    this.recovering = epoch;
    const me = this.config.node;
    try {
      // Read while the session lasts (a lost one is told by adopt).
      const read = await this.readIndex(list, () => this.epoch === epoch && !this.stopping, (page) => {
        for (const { file, records } of page.files) {
          if (!mine(file) || this.pending.has(file)) continue;
          // An actor made meanwhile (a request came first) that has the engine's records already.
          const f = this.files.get(file);
          if (f !== undefined && (f.nothingOfMine || f.ownRecords().some((r) => r.node === me))) continue;
          const held = records.filter((r) => r.state === 'held');
          if (held.length === 0) continue;
          this.pending.set(file, held);
          this.loadQueue.push(file);
        }
        this.pumpLoads();
      });
      if (read === 'reset') this.report(new Error(RECOVER_UNKNOWN));
    } finally {
      if (this.recovering === epoch) this.recovering = undefined;
    }
  }

  /**
   * A replacement worker whose predecessor last acted on a session this node no longer has
   * (HostInit.shared.predecessor): the predecessor died before it heard of the next one (its
   * message on its way, or none open yet). What it held under that session went with it (lost,
   * or with the engine's data), and no handle was told so here: recover reads the session this
   * worker starts on, which has none of it. Each held record of that session in this worker's
   * files (`mine`) counts lost now, as adopt counts a live worker's (lostHandles, lostFiles), read
   * from that session's index (`list`, to its end). The index keeps them until a reaper removes
   * them: this node's reaping of them is this worker's, and waits for this reading (reap); another
   * node's may come first, and what its steps removed the engine keeps for an hour
   * (REAPED_KEEP_MS), read after the index: a lock reaped before or while the index is read is
   * counted too (a file may come twice: a handle is told once). An engine that lost its data
   * leaves them unknown: reported, as recover does. A handle closed while the index is read is
   * not told (closedMeanwhile: its number may be another open file's by then).
   */
  async recoverLost(list: (cursor: string) => Promise<SessionFilesPage | 'reset'>, mine: (path: string) => boolean, closedBefore: Iterable<string> = []): Promise<void> {
    if (this.stopping) return;
    // With those its predecessors closed since the session was lost (HostInit.shared.lost.closed).
    const closed = (this.closedMeanwhile = new Set(closedBefore));
    const reading = this.readIndex(list, () => !this.stopping, (page) => {
      for (const { file, records } of page.files) {
        if (mine(file)) this.loseRecords(file, records.filter((r) => r.state === 'held'), closed);
      }
    });
    this.lostReading = reading.catch(() => undefined);
    try {
      if ((await reading) === 'reset') this.report(new Error(RECOVER_UNKNOWN));
    } catch (e) {
      // A record that does not decode (a bug): said, and the rest is not read.
      this.report(e);
    } finally {
      this.closedMeanwhile = undefined;
      this.lostReading = undefined;
    }
  }

  /**
   * A replacement worker: the handles its predecessors told lost and that did not close since
   * (HostInit.shared.lost.handles). Their I/O fails here too; a mount's open files were marked in
   * the native session, which outlives a worker (Passthrough::markLost until the file's release).
   */
  lostBefore(keys: Iterable<string>): void {
    for (const key of keys) this.lostHandles.add(key);
  }

  /**
   * Reads a session's index (`list`, Engine.sessionFiles) page by page to its end, handing each
   * page to `take`, while `wanted()`: 'read', or 'reset' when the engine lost its data, or
   * 'dropped' once no longer wanted. An engine out of reach is asked again, told once (each report
   * is a fault, stats().faults, and an outage lasts many tries).
   */
  private async readIndex(
    list: (cursor: string) => Promise<SessionFilesPage | 'reset'>,
    wanted: () => boolean,
    take: (page: SessionFilesPage) => void,
  ): Promise<'read' | 'reset' | 'dropped'> {
    let cursor = '0';
    let backoff = 25;
    let told = false;
    for (;;) {
      let page: SessionFilesPage | 'reset';
      try {
        page = await list(cursor);
      } catch (e) {
        if (!wanted()) return 'dropped';
        if (!told) this.report(e);
        told = true;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 1000);
        continue;
      }
      if (!wanted()) return 'dropped';
      if (page === 'reset') return 'reset';
      take(page);
      cursor = page.cursor;
      if (cursor === '0') return 'read';
    }
  }

  /** Makes the actors of queued pending files (each loads first), LOADS_AT_ONCE loading at a time. */
  private pumpLoads(): void {
    while (this.loads.size < LOADS_AT_ONCE && this.loadQueue.length > 0 && !this.stopping) {
      const path = this.loadQueue.shift()!;
      if (!this.pending.has(path)) continue;
      const f = this.files.get(path);
      if (f === undefined) this.file(path);
      else this.load(f);
    }
  }

  /** Pending files whose load is queued or running (one at a time per file). */
  private readonly loads = new Set<string>();
  /** Per pending file whose load failed, how many times (the wait before its next try). */
  private readonly loadTries = new Map<string, number>();

  /**
   * Loads pending file `f` in its mailbox: a step that changes nothing, whose reply gives the
   * engine's records. Tried again while they are pending (the engine out of reach), queued
   * (pumpLoads), on the file's actor of the time (one that went idle meanwhile is made again).
   */
  private load(f: SharedFile): void {
    const path = f.path;
    const recs = this.pending.get(path);
    if (recs === undefined || this.loads.has(path)) return;
    this.loads.add(path);
    let ok = false;
    void this.inMailbox(f, async () => {
      if (this.pending.get(path) !== recs) return;
      ok = (await f.decide(() => undefined, () => LOAD_FAILED, false)) !== LOAD_FAILED;
    }).then(() => {
      this.loads.delete(path);
      if (ok || this.stopping) {
        if (this.pending.get(path) === recs) this.pending.delete(path);
        this.loadTries.delete(path);
      } else if (this.pending.get(path) === recs) {
        const tries = this.loadTries.get(path) ?? 0;
        this.loadTries.set(path, tries + 1);
        // Tried again in its turn, behind the files queued meanwhile: LOADS_AT_ONCE at a time,
        // retries too (started at once, they came on top of the loads the queue had started).
        const t = setTimeout(() => {
          if (this.pending.get(path) !== recs || this.stopping) return;
          this.loadQueue.push(path);
          this.pumpLoads();
        }, retryDelay(tries));
        t.unref?.();
      }
      this.pumpLoads();
    });
  }

  /**
   * A new session (adopt): the predecessor's locks of files whose actor has not loaded them are
   * lost (their handles told, as for any lost lock); an unfinished reading of the index leaves
   * the rest unknown. Whether an actor has loaded: a reply gave it the engine's records if it
   * now has records of this node (a step at version 0 applies only on a file without records)
   * or knows it has none (nothingOfMine). Run before the files learn of the session.
   */
  private settleRecovery(): void {
    if (this.recovering !== undefined) {
      this.recovering = undefined;
      this.report(new Error(RECOVER_UNKNOWN));
    }
    this.loadQueue = [];
    this.loadTries.clear();
    const me = this.config.node;
    for (const [path, recs] of [...this.pending]) {
      this.pending.delete(path);
      const f = this.files.get(path);
      if (f !== undefined && (f.nothingOfMine || f.ownRecords().some((r) => r.node === me))) continue;
      this.loseRecords(path, recs);
    }
  }

  /**
   * Drops `f`'s actor once it is idle: nothing queued, nothing in its cache, nothing owed. Or,
   * foreignLingerMs after this node's last job on it (lingerThenSweep: a timer), once only other
   * nodes' records are left in its cache (SharedFile.foreignOnly) and this node keeps nothing of
   * the file outside it either (usesFile): their releases are their nodes' steps, which this cache
   * never hears of, so waiting for it to empty would keep the actor for good.
   */
  private sweep(f: SharedFile): void {
    if (this.files.get(f.path) !== f) return;
    if (!f.idle) {
      if (this.onlyForeign(f)) this.lingerThenSweep(f.path);
      return;
    }
    this.drop(f);
  }

  /**
   * How long an actor whose cache holds only other nodes' records stays after this node's last
   * job on it (sweep): a retry meanwhile (an F_SETLK loop, a waiter asked again) decides on that
   * copy at once instead of learning it from a stale reply first. Tests may replace it.
   */
  foreignLingerMs = FOREIGN_LINGER_MS;
  /** Per such file: when this node last had a job end on it, and the timer that sweeps it after foreignLingerMs. */
  private readonly lingering = new Map<string, { last: number; timer: NodeJS.Timeout }>();

  private lingerThenSweep(path: string): void {
    const now = performance.now();
    const l = this.lingering.get(path);
    if (l !== undefined) {
      l.last = now;
      return;
    }
    const arm = (ms: number): NodeJS.Timeout => {
      const timer = setTimeout(() => {
        const e = this.lingering.get(path);
        if (e === undefined) return;
        const left = e.last + this.foreignLingerMs - performance.now();
        if (left > 0) {
          e.timer = arm(left);
          return;
        }
        this.lingering.delete(path);
        const f = this.files.get(path);
        if (f !== undefined && this.onlyForeign(f)) this.drop(f);
      }, ms);
      timer.unref();
      return timer;
    };
    this.lingering.set(path, { last: now, timer: arm(this.foreignLingerMs) });
  }

  private drop(f: SharedFile): void {
    const l = this.lingering.get(f.path);
    if (l !== undefined) {
      clearTimeout(l.timer);
      this.lingering.delete(f.path);
    }
    this.files.delete(f.path);
    if (!f.nothingOfMine) return;
    this.noneOfMine.add(f.path);
    if (this.noneOfMine.size > NONE_OF_MINE_MAX) this.noneOfMine.delete(this.noneOfMine.values().next().value!);
  }

  /** Whether `f`'s actor holds only other nodes' records and this node keeps nothing of the file elsewhere (sweep). */
  private onlyForeign(f: SharedFile): boolean {
    return f.foreignOnly && !this.usesFile(f.path);
  }

  /**
   * Whether this node keeps anything of `path` outside its actor: a request not answered (queued,
   * parked, waiting, judged), a pass or owed try to come, a load, a put-back, a mark awaited. Or
   * the worker stops (stopAll runs on every actor there is).
   */
  private usesFile(path: string): boolean {
    if (this.stopping || (this.requestsOn.get(path) ?? 0) > 0 || this.parked.has(path)) return true;
    if (this.wakeTimers.has(path) || this.checkTimers.has(path)) return true;
    if (this.owedRetries.has(path) || this.owedInMailbox.has(path) || this.owedWaiting.has(path)) return true;
    if (this.pending.has(path) || this.loads.has(path) || this.putBacks?.paths.has(path) === true) return true;
    for (const m of this.marks.values()) if (m.path === path) return true;
    return false;
  }

  /** Requests of `requests` per file. */
  private readonly requestsOn = new Map<string, number>();

  private addRequest(hostId: number, r: PendingRequest): void {
    this.requests.set(hostId, r);
    this.requestsOn.set(r.call.path, (this.requestsOn.get(r.call.path) ?? 0) + 1);
  }

  /** Request `hostId` leaves `requests`: its file's actor may go then (sweep: not while a job of it is queued). */
  private dropRequest(hostId: number): void {
    const r = this.requests.get(hostId);
    if (r === undefined || !this.requests.delete(hostId)) return;
    const path = r.call.path;
    const n = (this.requestsOn.get(path) ?? 1) - 1;
    if (n > 0) {
      this.requestsOn.set(path, n);
      return;
    }
    this.requestsOn.delete(path);
    // After what runs now (a caller that holds the actor queues on it first): a request ended
    // outside the mailbox (parked, cancelled) is followed by no job of it that would sweep.
    queueMicrotask(() => {
      const f = this.files.get(path);
      if (f !== undefined) this.sweep(f);
    });
  }

  /** Runs a request of this node; its answer goes to `target` once its step committed. */
  run(hostId: number, raw: Call, target: ReplyTarget): void {
    const q = qualify(raw, this.config.node);
    // A Windows lock names the request that asked for it in its records (LockOrigin.request): asked
    // again of a replacement worker (the same id), it is answered from the lock its predecessor's
    // step, or another node's grant of its waiter, gave it (SharedFile.request).
    const call: Call = q.op === 'lockFile' ? { ...q, req: { ...q.req, origin: { ...q.req.origin, request: hostId } } } : q;
    if (this.stopping) {
      target.answer(hostId, raw.path, cancellable(call) ? (call.op === 'lock' ? replyOf(call.base, cancelResult('stop', false)) : cancelResult('stop', true)) : generic(call), -1, false, false);
      return;
    }
    const r: PendingRequest = { call, target, since: Date.now(), rid: undefined, cancelled: undefined, parked: false, seq: ++this.arrivals, turn: 0 };
    this.addRequest(hostId, r);
    // No session (it was lost, the next one is not open yet): nothing is answered from what it
    // held, and nothing new is granted. Releases go on (the store refuses them until a session is
    // back, and they are owed to the file's next step). A renewal that is only late fences the
    // node too, but the session may well live: the request is decided, and waits for the renewal
    // up to requestTimeoutMs (decide, 'fenced').
    if (this.sessionGone() && (cancellable(call) || call.op === 'checkIo' || call.op === 'lock')) {
      this.finish(hostId, call.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION, false);
      return;
    }
    if (call.op === 'checkIo' && this.lostHandles.has(`${call.path}|${windowsHandleOf(call.owner)}@${this.config.node}`)) {
      this.finish(hostId, ERROR_LOCK_VIOLATION, false);
      return;
    }
    if (call.op === 'closeHandle' || call.op === 'release') {
      const key = `${call.path}|${call.handleKey}`;
      // Told to the caller only for a lost handle, or while a lost session's index is read: rare.
      if (this.lostHandles.delete(key) || this.closedMeanwhile !== undefined) this.tell({ t: 'lostClosed', key });
      this.closedMeanwhile?.add(key);
    }
    this.attempt(hostId, r);
  }

  /**
   * Runs request `hostId` in its file's mailbox; again after a grace period it waited out (Parked).
   * Its deadline (requestTimeoutMs) runs from now, not from its turn (SharedFile.decide): a release
   * too, so that k of them queued on one file with the engine gone are not answered k x
   * requestTimeoutMs after they came; also behind the file's owed try (runOwed), which is no
   * request's, whose step carries nothing the request's would not (what the file owes), and which
   * with the engine gone takes its own requestTimeoutMs (it stops at its next try once the request
   * is queued behind it: Run.yields).
   */
  private attempt(hostId: number, r: PendingRequest): void {
    const { call, target } = r;
    const f = this.file(call.path);
    const bounded = mayGoUnsent(call);
    let came = performance.now();
    r.turn = ++this.turns;
    // A request still in the mailbox once the engine has answered nothing for requestTimeoutMs
    // since it came (the jobs ahead of it, each with its own deadline, did not reach it; an answer
    // to any step of this worker counts, `answeredAt`): answered then with its family's generic
    // code, from outside the mailbox, as API.md says of a request that cannot reach the engine in
    // that time. An engine that answers, however slowly, has been reached: the deadline moves on
    // with its answers. One that need not run (mayGoUnsent) is ended: nothing was sent for it, and
    // at its turn nothing is (it is no longer among the requests), so a lock so answered is never
    // held. A release must run: it is answered (answerRelease), told owed to the caller (kept
    // there for a replacement until written), and still runs at its turn, in the mailbox's order,
    // where it is owed to the file's next step at once unless the engine answered meanwhile
    // (SharedFile.decide: its deadline passed), so a later request of its owner is decided after
    // it. Armed only behind other jobs: with none, it starts at once.
    let started = false;
    let late: ReturnType<typeof setTimeout> | undefined;
    const due = (): void => {
      if (started || this.requests.get(hostId) !== r) return;
      const wait = Math.max(came, this.answeredAt) + this.config.requestTimeoutMs - performance.now();
      if (wait > 0) {
        arm(wait);
        return;
      }
      if (bounded) {
        const code = r.cancelled !== undefined && endsCancelled(call) ? cancelResult(r.cancelled, call.op === 'lockFile' || call.op === 'checkIo') : call.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION;
        // Sent again 'judged' (its predecessor worker died judging another node's grant of it):
        // that grant is in the engine. Answered now all the same, but it keeps its turn, where
        // the grant is released as a cancel's is (rejudge, the hook not asked); its caller, told
        // it owed, keeps it for a replacement until that release is written.
        if (hostId > 0 && this.rejudging.has(hostId)) this.answerJudged(hostId, r, code);
        else this.finish(hostId, code, false);
        return;
      }
      // Answered in the order they came, as at their turns: after the requests queued ahead of
      // it that it touches (their own deadlines end them; a close's caller never hears of a
      // request through its handle after the close). Looked at again when one of those is
      // answered, waits, or parks (aheadChanged).
      if (this.answeredAhead(r)) this.answerRelease(hostId, r);
      else this.dueReleases.set(hostId, due);
    };
    const arm = (ms = this.config.requestTimeoutMs): void => {
      late = setTimeout(due, ms);
      late.unref();
    };
    if (this.jobs.has(f)) arm();
    void this
      .enqueue(f, async () => {
        started = true;
        if (late !== undefined) clearTimeout(late);
        this.dueReleases.delete(hostId);
        // The engine answered since it came (it was reached, only slowly or busy with the jobs
        // ahead): its own step gets a whole requestTimeoutMs from its turn, as one with no job ahead.
        if (this.answeredAt > came) came = performance.now();
        // Ended while it waited in the mailbox (a close of its handle after its grace period ended,
        // a stop): it never runs. Run again after a grace period: no longer parked from here on.
        if (r.parked === 'resuming') this.unpark(hostId, r);
        if (!this.requests.has(hostId)) return;
        // Its grant by another node's step was being judged when its worker died: judged again
        // first, also when it was cancelled meanwhile (or its caller was told so as that worker
        // died: 'judged' says so), which releases the grant as a veto's without asking the hook.
        const judged = this.rejudging.size === 0 ? undefined : this.rejudging.get(hostId);
        if (judged !== undefined) {
          this.rejudging.delete(hostId);
          r.cancelled ??= judged.cancelled;
          const code = this.confirmsGrants ? await this.rejudge(f, hostId, r, judged.before, came) : undefined;
          // Its release written (or not held): a caller told it ended keeps it no longer. Owed
          // (the engine did not answer): the caller keeps it for a replacement until written.
          if (f.owes(hostId)) this.tellOwed(hostId, r.target);
          else this.written(hostId);
          // Cut short by stop() (its judgment taken as a veto): ended as stop() ends a waiter.
          const ended = r.cancelled ?? (this.stopping ? 'stop' : undefined);
          if (code !== undefined) return this.finish(hostId, ended !== undefined ? cancelResult(ended, call.op === 'lockFile') : code, true);
          if (!this.requests.has(hostId)) return;
        }
        // Ended by its signal, timeout or interrupt while it waited in the mailbox: a lock request
        // or checkIo never runs (as at its deadline).
        if (r.cancelled !== undefined && endsCancelled(call)) return this.finish(hostId, cancelResult(r.cancelled, call.op === 'lockFile' || call.op === 'checkIo'), false);
        // A close ends the requests through its handle that wait out a grace period, as it ends
        // the waiters through it (core closedWith), in the mailbox's order.
        if (call.op === 'closeHandle' || call.op === 'release') this.endParked(call);
        const res = await f.request(hostId, call, (v) => this.endRequest(hostId, typeof v === 'object' && v !== null ? (v as PosixReply).result : (v as number)), came);
        if (call.op === 'closeHandle' || call.op === 'release') this.endThrough(call);
        // A release owed to the file's next step is told so before its answer (finish below);
        // one that ran, or whose locks went with a lost session, is owed no longer.
        if (mustRunHere(call)) {
          if (res === 'failed' && f.owes(hostId)) this.tellOwed(hostId, target);
          else this.written(hostId);
        }
        if (res instanceof Parked) {
          if (!this.requests.has(hostId)) return;
          // Its timeout or signal came while it was decided.
          if (r.cancelled !== undefined) return this.finish(hostId, cancelResult(r.cancelled, call.op === 'lockFile' || call.op === 'checkIo'), true);
          if (res.behind) this.parkedBehind++;
          this.park(hostId, r, res.ms);
          return;
        }
        if (res === 'failed') return this.finish(hostId, call.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION, false);
        if (typeof res === 'object' && res !== null && 'waiter' in res) {
          if (!this.requests.has(hostId) || this.answeredAlready.has(hostId)) return;
          target.queued(hostId, call.path, false);
          if (r.cancelled !== undefined && r.rid !== undefined) await f.cancel(r.rid, r.cancelled, this.early(f, hostId, r, r.rid, r.cancelled));
          return;
        }
        if (!this.requests.has(hostId)) return;
        this.dropRequest(hostId);
        if (!this.answeredAlready.delete(hostId)) target.answer(hostId, call.path, res as Result, -1, false, call.op === 'lock' && call.cmd === F_GETLK);
        this.aheadChanged(call.path);
      })
      .catch((e: unknown) => {
        this.report(e);
        // Dropped with the fault: a replacement would not run it better.
        this.written(hostId);
        if (this.requests.has(hostId)) {
          this.dropRequest(hostId);
          if (!this.answeredAlready.delete(hostId)) target.answer(hostId, call.path, generic(call), -1, false, false);
          this.aheadChanged(call.path);
        }
      })
      .finally(() => this.sweep(f));
  }

  /**
   * Whether every request queued ahead of release `r` in its file's mailbox (attempt) that it
   * touches (releaseTouches: of its owner, or through the handle it closes) has been answered, or
   * waits as a waiter the engine keeps, or waits out a grace period outside the mailbox.
   */
  private answeredAhead(r: PendingRequest): boolean {
    for (const [id, x] of this.requests) {
      if (x.call.path !== r.call.path || x.turn >= r.turn || x.rid !== undefined || x.parked === 'waiting' || this.answeredAlready.has(id)) continue;
      if (releaseTouches(r.call, x.call, this.config.node)) return false;
    }
    return true;
  }

  /**
   * Release `hostId`, still queued at its deadline with the engine not answering (attempt), is
   * answered now as it would be at its turn then: the family's generic code (void for a close,
   * flush or release), the release owed. A close first ends the requests through its handle that
   * wait (endParked, endThrough), as it does at its turn. It still runs at its turn (answered
   * already: not told again): what it releases stays held in the engine until then, so nothing is
   * granted over it meanwhile.
   */
  private answerRelease(hostId: number, r: PendingRequest): void {
    const c = r.call;
    if (c.op === 'closeHandle' || c.op === 'release') {
      this.endParked(c);
      this.endThrough(c);
    }
    if (this.requests.get(hostId) !== r) return;
    this.answerOwed(hostId, r, c.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION);
  }

  /**
   * Request `hostId`, sent again 'judged', is ended by its deadline before its turn: answered
   * `code` now and told owed, as a cancelled one (cancel); at its turn it is ended as cancelled,
   * which releases the grant without asking the hooks, and its release is then written.
   */
  private answerJudged(hostId: number, r: PendingRequest, code: number): void {
    r.cancelled ??= 'timeout';
    this.answerOwed(hostId, r, code);
  }

  /**
   * Request `hostId` is answered `code` before its turn, its step still to run there
   * (answerRelease, answerJudged): not answered again then, and its caller is told it owed first.
   */
  private answerOwed(hostId: number, r: PendingRequest, code: number): void {
    const c = r.call;
    this.answeredAlready.add(hostId);
    this.tellOwed(hostId, r.target);
    r.target.answer(hostId, c.path, c.op === 'lock' ? replyOf(c.base, code) : answersNumber(c) ? code : undefined, -1, false, false);
    this.aheadChanged(c.path);
  }

  /**
   * A request on `path` was answered, waits (its waiter in the engine), or parks: the releases
   * behind it whose deadline passed are looked at again (attempt), in the order they came due.
   */
  private aheadChanged(path: string): void {
    if (this.dueReleases.size === 0) return;
    for (const [hostId, due] of [...this.dueReleases]) {
      if (this.requests.get(hostId)?.call.path !== path || !this.dueReleases.delete(hostId)) continue;
      due();
    }
  }

  /**
   * Release `hostId` is answered before its step was written (answerRelease, or owed at its turn):
   * its caller is told so first, and keeps it for a replacement of this worker until written.
   */
  private tellOwed(hostId: number, target: OwedTarget): void {
    if (this.owedTold.has(hostId)) return;
    this.owedTold.set(hostId, target);
    target.owed?.(hostId);
  }

  /** Release `hostId` is owed no longer (FileSpace.written): its caller, if told owed, is told so. */
  written(hostId: number): void {
    const target = this.owedTold.get(hostId);
    if (target === undefined) return;
    this.owedTold.delete(hostId);
    target.written?.(hostId);
  }

  /** Requests that waited out a grace period behind this node's earlier ones, with no refusal of the engine (stats: graceWaits). */
  parkedBehind = 0;
  /** Requests received so far: their order of arrival (PendingRequest.seq). */
  private arrivals = 0;
  /** Runs of requests queued in their file's mailbox so far: their order there (PendingRequest.turn). */
  private turns = 0;
  /**
   * Requests waiting out a grace period (Parked), per file: in order of arrival, and the timer that
   * runs them all again, in that order, once the period ends (they queue as they came). They stay
   * here until their new run starts in the mailbox ('resuming'), so that a close queued before it
   * still ends them (endParked).
   */
  private readonly parked = new Map<string, Parking>();

  /** Parks request `hostId` for `ms`; the grace period's timer is the latest (all wait for the same end). */
  private park(hostId: number, r: PendingRequest, ms: number): void {
    const path = r.call.path;
    let p = this.parked.get(path);
    if (p === undefined) this.parked.set(path, (p = { ids: [], at: 0, timer: undefined }));
    let i = p.ids.length;
    while (i > 0 && (this.requests.get(p.ids[i - 1]!)?.seq ?? 0) > r.seq) i--;
    p.ids.splice(i, 0, hostId);
    r.parked = 'waiting';
    this.aheadChanged(path);
    // A few ms past the engine's count: a request run again before the period ended would be
    // refused again and queue behind those after it; at most what a timer takes.
    const at = performance.now() + Math.min(ms, MAX_TIMER_MS - PARK_MARGIN_MS) + PARK_MARGIN_MS;
    if (p.timer !== undefined && at <= p.at) return;
    clearTimeout(p.timer);
    p.at = at;
    const q = p;
    p.timer = setTimeout(() => {
      q.timer = undefined;
      // stop() answers them: run again now, one could commit a grant nobody is told of.
      if (this.stopping) return;
      for (const id of [...q.ids]) {
        const x = this.requests.get(id);
        if (x === undefined || x.parked !== 'waiting') continue;
        x.parked = 'resuming';
        this.attempt(id, x);
      }
    }, at - performance.now());
  }

  parkedAhead(path: string, hostId: number): number | undefined {
    const p = this.parked.get(path);
    const seq = this.requests.get(hostId)?.seq;
    if (p === undefined || seq === undefined || !p.ids.some((id) => (this.requests.get(id)?.seq ?? seq) < seq)) return undefined;
    // park() adds its margin to the ms: then it runs in the same pass, after them.
    return Math.max(0, p.at - PARK_MARGIN_MS - performance.now());
  }

  /**
   * Ends the parked requests that close `c` of their handle ends: a lock request with the code it
   * ends a waiter with (core closedWith), a read or write check through the handle closed with
   * ERROR_OPERATION_ABORTED, as a handle's cleanup cancels the I/O still pending on it.
   */
  private endParked(c: Call): void {
    for (const hostId of [...(this.parked.get(c.path)?.ids ?? [])]) {
      const r = this.requests.get(hostId);
      if (r === undefined) continue;
      const x = r.call;
      const code =
        x.op === 'checkIo'
          ? c.op === 'closeHandle' && `${windowsHandleOf(x.owner)}@${this.config.node}` === c.handleKey
            ? ERROR_OPERATION_ABORTED
            : undefined
          : 'req' in x
            ? closedWith(c, x.req)
            : undefined;
      if (code === undefined) continue;
      this.unpark(hostId, r);
      this.finish(hostId, code, true);
    }
  }

  /**
   * Before close `c` is answered (committed, owed or settled), every request through its handle
   * whose waiter is in the engine ends: a caller never hears of a request through a handle after
   * its close (API.md: its waiting requests complete with 158). A committed close ended those its
   * decision saw waiting (core closedWith); an owed one's answers were not kept, so they end here
   * with the close's code, as it ends any whose event is still to come. The others another node's
   * step ended first (granted: a record standing in as held, or gone in the changes
   * a stale reply brought): one whose inbox event was read is told that event's result now (its
   * turn in the mailbox comes after the close's); one whose event is still to come ends with the
   * close's code, and whatever it was granted the close releases (at once, or owed).
   */
  private endThrough(c: Call): void {
    for (const [rid, hostId] of [...this.waits]) {
      const x = this.requests.get(hostId)?.call;
      if (x === undefined || x.path !== c.path || !('req' in x)) continue;
      const code = closedWith(c, x.req);
      if (code === undefined) continue;
      const read = this.readEnds.get(rid);
      this.endWait(rid, read ?? code);
    }
  }

  private unpark(hostId: number, r: PendingRequest): void {
    if (r.parked === false) return;
    r.parked = false;
    const p = this.parked.get(r.call.path);
    if (p === undefined) return;
    p.ids = p.ids.filter((x) => x !== hostId);
    if (p.ids.length > 0) return;
    clearTimeout(p.timer);
    this.parked.delete(r.call.path);
  }

  /** The waiter of request `hostId` is in the store as record `rid`. */
  queued(hostId: number, rid: string): void {
    const r = this.requests.get(hostId);
    if (r === undefined) return;
    r.rid = rid;
    this.waits.set(rid, hostId);
    this.aheadChanged(r.call.path);
  }

  /** The record id of request `hostId`'s waiter, once its step committed. */
  ridOf(hostId: number): string | undefined {
    return this.requests.get(hostId)?.rid;
  }

  /** This node's waiter `rid` ended with `code` (decided here or by another node). */
  endWait(rid: string, code: number): void {
    const hostId = this.waits.get(rid);
    this.waits.delete(rid);
    if (hostId !== undefined) this.endRequest(hostId, code);
  }

  afterMark(mark: string, path: string, ends: readonly LostEnd[]): void {
    this.marks.set(mark, { path, ends });
  }

  /**
   * Mark `mark` came through this node's inbox, after every event before it (their waiters are
   * answered): the waiters it settles that still wait were ended by no other node's step, so the
   * steps given up on did end them. Run in the file's mailbox, behind the events that came first.
   */
  private settleMark(mark: string): void {
    const m = this.marks.get(mark);
    if (m === undefined) return;
    this.marks.delete(mark);
    for (const e of m.ends) if (this.waits.has(e.rid)) this.endWait(e.rid, e.result);
  }

  private endRequest(hostId: number, code: number): void {
    this.finish(hostId, code, true);
  }

  private finish(hostId: number, code: number, waited: boolean): void {
    const r = this.requests.get(hostId);
    if (r === undefined) return;
    this.dropRequest(hostId);
    if (r.rid !== undefined) this.waits.delete(r.rid);
    if (this.rejudging.size > 0) this.rejudging.delete(hostId);
    const c = r.call;
    if (!this.answeredAlready.delete(hostId)) {
      const res: Result = c.op === 'lock' ? replyOf(c.base, code) : answersNumber(c) ? code : undefined;
      r.target.answer(hostId, c.path, res, waited ? Date.now() - r.since : -1, false, false);
    }
    this.aheadChanged(c.path);
  }

  /** Ends request `hostId` for `reason` if it still waits (or as soon as it would). */
  cancel(hostId: number, reason: CancelReason): void {
    const r = this.requests.get(hostId);
    if (r === undefined || r.cancelled !== undefined) return;
    r.cancelled = reason;
    // Granted by another node's step, judged by this node's approval hook now: ended at once, as
    // a waiter whose approval is pending (core grantWaiter); the grant is released (confirmed).
    // Waiting out a grace period: ended now, like a waiter (a read too: it waits as well).
    if (r.parked || this.confirming.has(hostId)) {
      this.unpark(hostId, r);
      this.endJudged(hostId, r, reason);
      return;
    }
    if (r.rid === undefined) return;
    const f = this.file(r.call.path);
    const rid = r.rid;
    const early = this.early(f, hostId, r, rid, reason);
    // While the engine does not answer, or the node is fenced, a cancel is answered at once, not
    // after the steps ahead of it in the mailbox and its own step's reply (each may take up to
    // requestTimeoutMs): its waiter's removal is owed, as when its own step gets no reply.
    const now = this.early(f, hostId, r, rid, reason, true);
    this.cancelsQueued.set(hostId, now);
    if (this.unheard()) this.answerCancels();
    void this.inMailbox(f, () => {
      this.cancelsQueued.delete(hostId);
      // At its turn, likewise: no step of its own is sent to learn that.
      if (this.unheard()) now();
      return f.cancel(rid, reason, early);
    });
  }

  /**
   * Request `hostId`, cancelled for `reason` while parked or judged (confirming), is answered now.
   * The caller's request (its ids are above 0; the caller kept what 'judging' said) is answered
   * before the grant's release is written: told owed, its caller keeps it until written (after the
   * judgment's step), and sends it to a replacement if this worker dies first, which releases the
   * grant (attempt, rejudge).
   */
  private endJudged(hostId: number, r: PendingRequest, reason: CancelReason): void {
    if (hostId > 0 && this.confirming.has(hostId)) this.tellOwed(hostId, r.target);
    this.finish(hostId, cancelResult(reason, r.call.op === 'lockFile' || r.call.op === 'checkIo'), true);
  }

  /**
   * Request `hostId` counts as judged from now on (confirming): cancelled already, it is ended now,
   * as a cancel while judged is (endJudged); its hook is then not asked.
   */
  private judgedNow(hostId: number): void {
    this.confirming.add(hostId);
    const r = this.requests.get(hostId);
    if (r?.cancelled !== undefined) this.endJudged(hostId, r, r.cancelled);
  }

  /**
   * Whether a cancel can be answered without a step of its own: the node is fenced, or a step of
   * it got no reply ('unreachable') and none sent after it was answered since.
   */
  private unheard(): boolean {
    return this.unanswered > this.answered || (this.fenced() && !this.awaitingSession());
  }

  /** The cancels waiting their turn, answered now where they can be (SharedFile.cancelAnswered, outside the mailbox). */
  private answerCancels(): void {
    for (const [hostId, answer] of [...this.cancelsQueued]) {
      if (!this.requests.has(hostId)) this.cancelsQueued.delete(hostId);
      else answer();
    }
  }

  /**
   * What answers request `hostId`'s cancel at once when its step gets no reply or finds the node
   * fenced: its waiter's removal is owed to the file's next step (SharedFile.cancelAnswered), as a
   * release is when no reply comes, and a grant of it that comes meanwhile is undone, never told.
   */
  private early(f: SharedFile, hostId: number, r: PendingRequest, rid: string, reason: CancelReason, now = false): () => void {
    return () => {
      if (this.requests.get(hostId) !== r || this.waits.get(rid) !== hostId || !f.cancelAnswered(rid, now)) return;
      this.finish(hostId, cancelResult(reason, r.call.op === 'lockFile' || r.call.op === 'checkIo'), true);
    };
  }

  /** Runs `job` in `f`'s mailbox; a failure is reported, and the actor goes once it is idle. */
  private inMailbox(f: SharedFile, job: () => Promise<unknown>): Promise<void> {
    return this
      .enqueue(f, job)
      .then(
        () => undefined,
        (e: unknown) => this.report(e),
      )
      .finally(() => this.sweep(f));
  }

  /** Events of this node's inbox for `path`, in inbox order: waiters another node granted or failed, and marks (settleMark). */
  ended(path: string, events: readonly WaiterEnded[]): void {
    const f = this.file(path);
    // An event sent to a session this worker no longer acts on ended a waiter of that session: the
    // engine lost that decision with its data (the waiter went back with the re-assertion, as a
    // waiter, and is looked at again when the grace period ends), or the session was lost (its
    // waiters ended then). Applied, the cache would stand a grant in over the waiter put back and
    // its caller be told 0 of a lock the engine does not hold, which no pass grants afterwards.
    const current = (e: WaiterEnded): boolean => e.epoch === undefined || e.epoch === this.epoch;
    const ends = events.filter((e) => e.mark !== true && current(e));
    const granted = new Set(ends.filter((e) => f.grantedRemotely(e.requestId, e.result)).map((e) => e.requestId));
    for (const e of ends) this.readEnds.set(e.requestId, e.result);
    // The grants stood in now that this node's approval hook judges at their turn (below): their
    // requests count as judged from now on, not from that turn (the jobs ahead of it, a hook of
    // another waiter among them, may take long), so that a cancel before it ends them at once,
    // and one that came already (queued in the mailbox, behind those jobs) is answered now; the
    // hook is then not asked, and the grant goes as a veto's at the turn.
    const standing = this.confirmsGrants ? new Map<string, number>() : undefined;
    if (standing !== undefined) {
      for (const rid of granted) {
        const hostId = this.waits.get(rid);
        if (hostId === undefined) continue;
        standing.set(rid, hostId);
        this.judgedNow(hostId);
      }
    }
    void this.inMailbox(f, async () => {
      // Still so at its turn in the mailbox, unless stood in at once: that stand-in went back
      // with the re-assertion (as held), and its request is told.
      const late = new Set(ends.filter((e) => !granted.has(e.requestId) && !current(e)));
      for (const e of late) this.readEnds.delete(e.requestId);
      const kept = new Set(ends.filter((e) => !late.has(e)));
      // A grant read before the reply of the waiter's own step (its record not in the cache then):
      // stood in now, at its turn, behind that step, before its request is told. Else the cache
      // keeps the lock as a waiter, and the owner's next unlock, shown the grant by a stale reply
      // while in flight, takes it for one that came after it (spare) and releases nothing.
      for (const e of kept) if (!granted.has(e.requestId) && f.grantedRemotely(e.requestId, e.result)) granted.add(e.requestId);
      if (granted.size > 0) f.refresh();
      // A waiter this node never learned it queued (its step's reply was lost, Unsure): its grant is undone now.
      const reread = [...granted].some((rid) => f.mayHaveMerged(rid)) || [...kept].some((e) => f.unsureWaiter(e.requestId));
      // The grants this node's approval hook judges (confirmed), one after another: each of their
      // requests counts as judged from now on, so a cancel of one whose turn has not come ends it
      // at once too, as a node alone ends a waiter whose approval is pending.
      const judged = new Map<string, number>();
      if (this.confirmsGrants) {
        for (const e of kept) {
          const hostId = e.result === 0 ? (this.waits.get(e.requestId) ?? standing?.get(e.requestId)) : undefined;
          if (hostId === undefined) continue;
          judged.set(e.requestId, hostId);
          // Cancelled before its grant was stood in (read before its own step's reply, so stood in
          // only now): ended now.
          this.judgedNow(hostId);
        }
      }
      try {
        for (const e of events) {
          if (e.mark === true) this.settleMark(e.requestId);
          else if (kept.has(e)) {
            this.readEnds.delete(e.requestId);
            const hostId = judged.get(e.requestId);
            let code = e.result;
            if (hostId !== undefined) {
              // A fault while judging ends the waiter with its family's generic code (reported): the
              // events after it still end theirs.
              code = await this.confirmed(f, e.requestId, hostId).catch((err: unknown) => {
                this.report(err);
                return this.requests.get(hostId)?.call.op === 'lockFile' ? ERROR_LOCK_VIOLATION : -ENOLCK;
              });
              // Not kept (vetoed, or the fenced step not written), its grant's release not written
              // (the engine did not answer): told owed before its answer, so that its caller keeps
              // the request and sends it to a replacement if this worker dies first, which
              // releases the grant (attempt, rejudge); 'written' comes with the release's step.
              // (A cancel while judged told owed already. The caller's requests only: ids above 0.)
              const r = this.requests.get(hostId);
              if (hostId > 0 && r !== undefined && f.owes(hostId)) this.tellOwed(hostId, r.target);
            }
            if (hostId === undefined) {
              f.dropPreGrant(e.requestId);
              // A grant is told only while this node is not fenced (API.md), as its own steps'
              // answers are: read after a stall past the fence (a paused or stopped process), or
              // reached behind a long judgment, it waits for a renewal that says the session
              // lives, or for the session's loss, whose adopt ends the waiter with the generic
              // code (or, carried over an engine reset, put the grant back as held).
              if (code === 0 && this.waits.has(e.requestId) && this.untrusted()) await this.unfenced(this.epoch);
            }
            this.endWait(e.requestId, code);
          }
        }
      } finally {
        for (const hostId of judged.values()) {
          this.confirming.delete(hostId);
          // Told owed (cancelled while judged, or vetoed), the grant's release written or not
          // needed: owed no longer. Still owed: 'written' comes when its step is (setOwed).
          if (!f.owes(hostId)) this.written(hostId);
        }
      }
      if (reread) await f.reread();
    });
  }

  /** Whether this node's approval hook judges grants of its waiters by other nodes' steps (FileSpace.confirmsGrants): it has one (onLock, onLockFile; a release hook alone, as some tests give, judges nothing). */
  get confirmsGrants(): boolean {
    return this.hooks.approve !== undefined;
  }

  /** FileSpace.judging: told to the caller's side, which keeps it with the request until its answer. */
  judging(hostId: number, before: readonly LockRequest[]): void {
    this.tell({ t: 'judging', id: hostId, before: [...before] });
  }

  /**
   * Requests whose predecessor worker died while it judged another node's grant of them
   * (the caller's 'judged', sent just before the request): host id -> their owner's locks before
   * that grant (SharedFile.rejudge). Taken by the request's run.
   */
  private readonly rejudging = new Map<number, { readonly before: readonly LockRequest[]; readonly cancelled: CancelReason | undefined }>();

  /**
   * Caller's 'judged': request `hostId`, asked next, was being judged when its worker died;
   * `cancelled`: its caller was told it ended (the grant is released, the request never runs).
   */
  judged(hostId: number, before: readonly LockRequest[], cancelled?: CancelReason): void {
    this.rejudging.set(hostId, { before, cancelled });
  }

  /**
   * Request `hostId` asked again after its worker died while judging another node's grant of it:
   * judged again by this node's hooks if the grant is still held (SharedFile.rejudge), a cancel
   * ending it at once meanwhile (confirming); undefined: not held, it runs as asked.
   */
  private async rejudge(f: SharedFile, hostId: number, r: PendingRequest, before: readonly LockRequest[], came: number): Promise<number | undefined> {
    const c = r.call;
    if (!('req' in c) || (c.op !== 'lock' && c.op !== 'lockFile') || !cancellable(c)) return undefined;
    const { family, generic } = judgedAs(c.op, c.req);
    this.confirming.add(hostId);
    try {
      // Cancelled (before its turn, or told so with 'judged'): the hook is not asked, the grant goes as a veto's.
      return await f.rejudge(hostId, c.req, before, family, this.hooks.approve, generic, () => !this.stopping && this.requests.get(hostId) === r && r.cancelled === undefined, came);
    } finally {
      this.confirming.delete(hostId);
    }
  }

  /** Requests whose grant by another node's step their node's approval hook judges now or next (confirmed): a cancel ends them at once. */
  private readonly confirming = new Set<number>();

  /**
   * A grant of this node's waiter `rid` (request `hostId`'s when its event was read) by another
   * node's step, as this node's hooks judge it (SharedFile.confirmRemote): the approval hook is
   * asked and the lock gets its fence in a step of its own, or, vetoed or its request ended since,
   * the owner's bytes go back to what they were. Only on a node with hooks (confirmsGrants).
   */
  private async confirmed(f: SharedFile, rid: string, hostId: number): Promise<number> {
    const c = this.requests.get(hostId)?.call;
    const req = c !== undefined && 'req' in c ? c.req : undefined;
    const { family, generic } = judgedAs(c?.op, req);
    // stop() answered it (995 / -EINTR): ended, its hook not asked (a judgment queued behind one the stop cut short).
    return f.confirmRemote(rid, hostId, family, req?.origin.event ?? {}, this.hooks.approve, generic, () => !this.stopping && this.waits.get(rid) === hostId);
  }

  /** The reaper's work on `path`: remove dead sessions' records and wake who they blocked. */
  reap(path: string, sessions: readonly { node: string; epoch: number }[]): Promise<void> {
    // stop() ended this worker's work on the engine (its host closes the connection next): a
    // reaping that came since, or waited for the reading below (which stop ends), is left to the
    // reapers of the nodes that go on.
    if (this.stopping) return Promise.resolve();
    // After a replacement's reading of what its predecessor lost, which the reaping would remove.
    const reading = this.lostReading;
    if (reading !== undefined) return reading.then(() => this.reap(path, sessions));
    const f = this.file(path);
    return this.inMailbox(f, () => f.reap(sessions));
  }

  /** Past the lease: the node must not act on what its session held (see SharedConfig.lease). */
  private fenced(): boolean {
    return performance.timeOrigin + performance.now() >= this.lease[0]!;
  }

  /** Fenced only because the session's renewal is late: the session may well live. */
  late(): boolean {
    return this.fenced() && !this.sessionGone() && !this.awaitingSession();
  }

  leaseUntil(): number {
    return this.lease[0]!;
  }

  /** No session at all: the last one was lost and the next is not open (the lease is -Infinity). */
  sessionGone(): boolean {
    return this.lease[0] === Number.NEGATIVE_INFINITY;
  }

  /**
   * Resolves true once the lease is renewed past now, or names a new session; false when the
   * session is gone meanwhile, or at `deadline` (performance.now()). The lease is shared memory
   * that no message announces, so it is read every 10 ms, and only while a renewal is late.
   */
  async renewed(deadline: number): Promise<boolean> {
    for (;;) {
      if (this.awaitingSession() || !this.fenced()) return true;
      if (this.sessionGone()) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await sleep(Math.min(10, left));
    }
  }

  /**
   * Resolves once this worker is not fenced on session `epoch`, or no longer acts on it (lost,
   * replaced, carried over an engine restart: what ended or kept its waiters is done by then),
   * or stops. Polled as renewed() polls the lease.
   */
  private async unfenced(epoch: number): Promise<void> {
    while (this.epoch === epoch && !this.stopping && this.untrusted()) await sleep(10);
  }

  /** Fenced, or a session this worker was not told of yet names the lease (the one it acts on is gone). */
  private untrusted(): boolean {
    return this.fenced() || this.awaitingSession();
  }

  /** The lease names a session this worker was not told of yet: its message is on its way. */
  awaitingSession(): boolean {
    const e = this.lease[1]!;
    return e !== 0 && e !== this.epoch;
  }

  /** Resolves true once this worker acts on a session other than `from`, false at `deadline` (performance.now()). */
  nextSession(from: number, deadline: number): Promise<boolean> {
    if (this.epoch !== from) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.sessionWaiters = this.sessionWaiters.filter((x) => x !== w);
        resolve(false);
      }, Math.max(0, deadline - performance.now()));
      this.sessionWaiters.push(w);
    });
  }

  /**
   * This node acts on session `epoch` from now on (the caller's 'session' message; the
   * connection's session changed with it). `carried` is the previous one when the engine lost its
   * data while it was live: nothing it held was given to anyone, and each file puts its records
   * back at once, for `graceMs` more. Otherwise the previous session was lost, and this node's
   * locks with it (checkIo 33 through their handles until they close); its waiters end with the
   * family's generic code. Returns, for a carried session whose records go back, when they are
   * back or told lost (true), or a newer session came first (false): the host's 'adopted' waits
   * for it (putBacks); undefined: at once.
   */
  adopt(epoch: number, carried: number, graceMs: number): Promise<boolean> | undefined {
    if (epoch === this.epoch) return this.putBacks?.done;
    // A newer session than the carried one whose records were going back: its own message (and
    // re-assertion, or loss) settles them; the older one is not said to be acted on.
    if (this.putBacks !== undefined) {
      this.putBacks.end(false);
      this.putBacks = undefined;
    }
    const adopt = ++this.adopts;
    // Before the files hear of it (a re-assertion makes an actor's cache exact, and empty).
    this.settleRecovery();
    const old = this.epoch;
    this.epoch = epoch;
    let back: Promise<boolean> | undefined;
    if (carried !== 0 && carried === old) {
      const graceEndsAt = performance.now() + graceMs;
      const paths = (this.collecting = new Set<string>());
      try {
        for (const f of this.files.values()) f.beginReassert(graceEndsAt, carried);
      } finally {
        this.collecting = undefined;
      }
      if (paths.size > 0) {
        let end!: (done: boolean) => void;
        const done = new Promise<boolean>((resolve) => (end = resolve));
        this.putBacks = { adopt, paths, end, done };
        back = done;
      }
      // A release owed while the engine was away is put back with the rest (the cache still has
      // its locks): it is tried again right after the re-assertion, not after the backoff its
      // failed tries grew to (up to 5 s of a lock its owner was told is gone).
      for (const [path, o] of [...this.owedRetries]) {
        clearTimeout(o.timer);
        this.owedRetries.delete(path);
        this.owedWaiting.delete(path);
        this.retryOwed(path);
      }
    } else {
      for (const f of this.files.values()) {
        this.lose(f, f.ownRecords());
        f.sessionLost();
      }
      for (const [rid, hostId] of [...this.waits]) {
        const c = this.requests.get(hostId)?.call;
        this.endWait(rid, c?.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION);
      }
      // Their marks' waiters among them.
      this.marks.clear();
      // Session 0: none for now (displaced, or the last one expired with the engine out of
      // reach; the next one's message follows once it is open). Nothing cached stays, nothing
      // owed is retried: it was the lost session's.
      if (epoch === 0) {
        this.dropOwedRetries();
        for (const f of [...this.files.values()]) {
          f.forget();
          this.sweep(f);
        }
      }
    }
    // The engine lost its data: the marks awaited are gone with the old session's inbox, and what
    // its reader took came before this message (it reads the new inbox from now on). Their
    // waiters end as the marks would have ended them, in their files' mailboxes, behind those
    // events. (A grant by another node whose event was not read yet was lost with the inbox.)
    for (const [mark, m] of [...this.marks]) {
      const f = this.file(m.path);
      void this.inMailbox(f, async () => this.settleMark(mark));
    }
    const waiting = this.sessionWaiters;
    this.sessionWaiters = [];
    for (const w of waiting) w();
    return back;
  }

  /**
   * Releases owed to `path` (their steps could not be written in time), and lock requests' steps
   * that may have applied though no reply came (Unsure), are settled in a step of their own:
   * after 100 ms, then twice as long each time up to 5 s, while they are owed (owedDelay). A wait
   * is cut short once the node knows the engine answers again (healed: the engine replied to a
   * step of this worker sent after the file's last try failed; watchRenewal: a renewal of the
   * node's session was answered since, late or not): until the owed step commits, the engine keeps what the node counts gone (a
   * lock another node's waiter waits for, the wait-for edges of a waiter a close ended), and the
   * wait its failed tries grew to would outlast the outage by up to 5 s.
   */
  retryOwed(path: string): void {
    const o = this.owedRetries.get(path) ?? { timer: undefined, tries: 0, since: 0, lease: 0, cut: false };
    if (this.stopping || this.epoch === 0 || o.timer !== undefined) return;
    const delay = this.owedDelay(o.tries++);
    o.timer = setTimeout(() => {
      o.timer = undefined;
      o.cut = false;
      this.owedWaiting.delete(path);
      this.runOwed(path);
    }, delay);
    o.timer.unref?.();
    o.since = this.sends;
    o.lease = this.lease[0]!;
    this.owedRetries.set(path, o);
    // A wait cut short once is not cut short again before it ran out: a file whose steps fail
    // while others' are answered (a heal that is not its own) is tried as often as the backoff
    // says, and twice at most.
    this.owedWaiting.delete(path);
    if (!o.cut) {
      this.owedWaiting.add(path);
      this.watchRenewal();
    }
  }

  /** The owed try of `path` (retryOwed), in its mailbox; the next is scheduled while it still owes. */
  private runOwed(path: string): void {
    const f = this.files.get(path);
    if (f === undefined || !f.owing) {
      this.owedRetries.delete(path);
      return;
    }
    // One owed try in the mailbox at a time: a give-up in it (or in a request's decision before
    // it) schedules the next while it is still there, and with the engine gone each try takes its
    // whole requestTimeoutMs; piled up, they held the requests that came meanwhile, queued behind
    // them, that long each. One that comes due meanwhile is queued once that one ended (behind
    // those requests, whose steps carry what is owed too).
    if (this.owedInMailbox.has(path)) {
      this.owedInMailbox.set(path, true);
      return;
    }
    this.owedInMailbox.set(path, false);
    // Still owing after the step (it gave up, or was sent before an unsure step's deadline):
    // the next try (a give-up has scheduled it already).
    void this.inMailbox(f, () => f.owedTry()).then(() => {
      const due = this.owedInMailbox.get(path) === true;
      this.owedInMailbox.delete(path);
      if (!f.owing) {
        this.owedRetries.delete(path);
        this.owedWaiting.delete(path);
      } else if (due && !this.stopping && this.epoch !== 0) this.runOwed(path); // as retryOwed would
      else this.retryOwed(path);
    });
  }

  /**
   * The engine answered step `sent` of this worker (committed, or refused for what it found:
   * stale, dead, grace, deadlock): the owed tries of files whose step failed before it went out
   * run now, each once (a heal of the link), instead of at the end of their backoff. A try that
   * fails again waits on, as long as its backoff says.
   */
  private healed(sent: number): void {
    const due: string[] = [];
    for (const path of this.owedWaiting) {
      const since = this.owedRetries.get(path)?.since;
      if (since !== undefined && since >= sent) break;
      due.push(path);
    }
    this.cutShort(due);
  }

  /** Runs the owed tries of `paths` now, each once until its next wait runs out (retryOwed). */
  private cutShort(paths: readonly string[]): void {
    for (const path of paths) {
      this.owedWaiting.delete(path);
      const o = this.owedRetries.get(path);
      if (o?.timer === undefined) continue;
      clearTimeout(o.timer);
      o.timer = undefined;
      o.cut = true;
      this.runOwed(path);
    }
  }

  /**
   * Owed tries wait: a renewal of the node's session answered since a wait began (the lease moved
   * on past what it was then) is a sign the engine answers again, whether or not the node was late
   * meanwhile (an outage shorter than its fence never makes it late, and a quiet node sends no
   * other step whose answer would tell: healed). The lease is shared memory no message announces:
   * read every 10 ms while a wait may be cut short; the waits the lease moved on from run
   * (cutShort) once the node is not fenced. A session lost or replaced meanwhile is adopt's.
   */
  private watchRenewal(): void {
    if (this.renewalWatch !== undefined) return;
    const look = (): void => {
      this.renewalWatch = undefined;
      if (this.stopping || this.owedWaiting.size === 0 || this.sessionGone()) return;
      if (!this.fenced() && !this.awaitingSession()) {
        // The lease only moves on while the session lasts (its last answered renewal plus the
        // fence), and the waits are in the order they began: the first it has not moved on from ends the due ones.
        const lease = this.lease[0]!;
        const due: string[] = [];
        for (const path of this.owedWaiting) {
          const since = this.owedRetries.get(path)?.lease;
          if (since !== undefined && since >= lease) break;
          due.push(path);
        }
        this.cutShort(due);
        if (this.owedWaiting.size === 0) return;
      }
      this.renewalWatch = setTimeout(look, 10);
      this.renewalWatch.unref?.();
    };
    this.renewalWatch = setTimeout(look, 10);
    this.renewalWatch.unref?.();
  }

  /** Stops every owed release's next try (stop(), or no session will come). */
  private dropOwedRetries(): void {
    for (const o of this.owedRetries.values()) clearTimeout(o.timer);
    this.owedRetries.clear();
    this.owedWaiting.clear();
    clearTimeout(this.renewalWatch);
    this.renewalWatch = undefined;
  }

  /** Looks again at `path`'s waiters at `at` (performance.now()): the end of a grace period. */
  wakeAt(path: string, at: number): void {
    // One pass per file at a time: a pass that comes too early (in the grace period still) is
    // refused, and held, and asks for the next one.
    // A later end (a second loss in the period) moves the pending pass to it.
    this.passAt(this.wakeTimers, path, at, true, (f) => f.wake());
  }

  /** Runs `path`'s wake-up pass now, in place of a pending one (wakeAt): the grace period is known over. */
  wakeNow(path: string): void {
    clearTimer(this.wakeTimers.get(path)?.timer);
    this.wakeTimers.delete(path);
    this.wakeAt(path, 0);
  }

  /**
   * 'fifo': wake-up passes of the other files where POSIX requests wait, queued in their mailboxes
   * behind what is there (SharedFile.edgesWritten says why), this worker's and, through the caller,
   * the other workers' (settleHere). One queued per file at a time.
   */
  settleOthers(path: string): void {
    if (this.stopping) return;
    this.tell({ t: 'settleOthers' });
    this.settleHere(path);
  }

  /** settleOthers on this worker's files but `path` (none: all; another worker's request). */
  settleHere(path?: string): void {
    if (this.stopping) return;
    for (const [p, f] of this.files) {
      if (p === path || this.settling.has(f) || !f.posixWaits()) continue;
      this.settling.add(f);
      void this.inMailbox(f, () => {
        this.settling.delete(f);
        return f.wake();
      });
    }
  }
  /** Files whose settleOthers pass is queued and not started. */
  private readonly settling = new Set<SharedFile>();

  /** A wake-up pass of `path` at `at` for the checks it put off; the earliest one pending stands. */
  checkAt(path: string, at: number): void {
    if (!this.stopping) this.passAt(this.checkTimers, path, at, false, (f) => f.checkPass());
  }

  /**
   * Runs `pass` on `path`'s actor, in its mailbox, at `at` (performance.now()): one pending per file
   * in `timers`, the latest (`later`) or the earliest standing. Never before `at` (setTimerExact),
   * else a pass could find what it is for not yet due and only ask for another.
   */
  private passAt(timers: Map<string, PassTimer>, path: string, at: number, later: boolean, pass: (f: SharedFile) => Promise<unknown>): void {
    const pending = timers.get(path);
    if (pending !== undefined && (later ? pending.at >= at : pending.at <= at)) return;
    clearTimer(pending?.timer);
    const entry: PassTimer = { timer: undefined, at };
    entry.timer = setTimerExact(() => {
      timers.delete(path);
      const f = this.file(path);
      void this.inMailbox(f, () => pass(f));
    }, at - performance.now());
    entry.timer.unref();
    timers.set(path, entry);
  }

  /** The pending pass of each file: at a grace period's end (wakeAt), for checks put off (checkAt). */
  private readonly wakeTimers = new Map<string, PassTimer>();
  private readonly checkTimers = new Map<string, PassTimer>();

  /**
   * Records of this node that went with a lost session: held ones make their handles fail (checkIo
   * 33, EIO through a mount) until they close; waiting ones end with the family's generic code.
   */
  lose(f: SharedFile, records: readonly StoreRecord[]): void {
    try {
      this.loseRecords(f.path, records);
    } finally {
      // A put-back that could not be done (too late, fenced): its records are told lost. Also when
      // telling threw (a mount's mark), or the carried session would never be confirmed (adopt).
      if (this.putBacks !== undefined) this.putBack(this.putBacks, f.path);
    }
  }

  /** `closed`: handles (path|handle key) not to tell, closed already. */
  private loseRecords(path: string, records: readonly StoreRecord[], closed?: ReadonlySet<string>): void {
    const handles = new Set<number>();
    const told: string[] = [];
    for (const r of records) {
      if (r.state === 'waiting') {
        const c = this.requests.get(this.waits.get(r.id) ?? 0)?.call;
        this.endWait(r.id, c?.op === 'lock' ? -ENOLCK : ERROR_LOCK_VIOLATION);
        continue;
      }
      const { origin, kind } = decodeRecord(r.data, path).req;
      const key = `${path}|${origin.handleKey}`;
      if (closed?.has(key)) continue;
      if (!this.lostHandles.has(key)) told.push(key);
      this.lostHandles.add(key);
      if (kind !== 'windows' && typeof origin.event.fileHandle === 'number') handles.add(origin.event.fileHandle);
    }
    if (told.length > 0) this.tell({ t: 'lostHandles', keys: told });
    if (handles.size > 0) this.lostFiles([...handles]);
  }

  /** FileSpace.onStop: `cb` runs when stop() begins (at once if it has); the returned function forgets it. */
  onStop(cb: () => void): () => void {
    if (this.stopping) {
      cb();
      return () => {};
    }
    this.stopListeners.add(cb);
    return () => void this.stopListeners.delete(cb);
  }

  /** stop(): this node's waiters end ('stop') and its locks go, file by file. */
  async stop(): Promise<void> {
    this.stopping = true;
    const listeners = [...this.stopListeners];
    this.stopListeners.clear();
    for (const cb of listeners) cb();
    for (const l of this.lingering.values()) clearTimeout(l.timer);
    this.lingering.clear();
    this.loadQueue = [];
    this.marks.clear();
    this.dropOwedRetries();
    for (const t of this.wakeTimers.values()) clearTimer(t.timer);
    this.wakeTimers.clear();
    for (const t of this.checkTimers.values()) clearTimer(t.timer);
    this.checkTimers.clear();
    // Every waiting request is answered now (995 / -EINTR), as a node alone answers it: the steps
    // that remove this node's waiters and locks below wait for the engine (up to requestTimeoutMs,
    // or until the session is lost, when it does not answer), and their outcome changes nothing
    // for a caller whose request the stop ended. A grant of such a waiter that comes meanwhile is
    // dropped with this node's other locks (stopAll), or goes with its session.
    for (const [hostId, r] of this.requests) {
      const c = r.call;
      if (!cancellable(c) || (r.rid === undefined && r.parked === false)) continue;
      this.answeredAlready.add(hostId);
      const code = cancelResult('stop', c.op === 'lockFile');
      r.target.answer(hostId, c.path, c.op === 'lock' ? replyOf(c.base, code) : code, Date.now() - r.since, false, false);
    }
    const all = [...this.files.values()].map((f) => this.enqueue(f, () => f.stopAll()).catch((e: unknown) => this.report(e)));
    await Promise.all(all);
    for (const [hostId, r] of [...this.requests]) {
      this.unpark(hostId, r);
      const c = r.call;
      const code = cancelResult('stop', c.op === 'lockFile' || c.op === 'checkIo');
      this.dropRequest(hostId);
      if (this.answeredAlready.delete(hostId)) continue;
      r.target.answer(hostId, c.path, c.op === 'lock' ? replyOf(c.base, code) : c.op === 'lockFile' || c.op === 'checkIo' ? code : generic(c), -1, false, false);
    }
  }

  /**
   * This worker's counters (WorkerStats), meaning what they mean without a store: `locks` and
   * `waiters` are this node's own, held or waiting through this worker (its session's granted
   * records in the files' caches, its requests whose waiter is in the engine). The caches also
   * hold other nodes' records, but only as of this node's last step on each file: counting them
   * would give a number that is neither this node's nor the lock space's (locks() lists those),
   * and summed over nodes would count a lock once per node that looked at its file. `files`:
   * the files with a live actor here. `busy`: actors with work in hand, a decision running or
   * queued in the mailbox (each waits for the engine, as an actor without a store waits for a
   * hook), or a step owed (retryOwed); an actor that only caches records is not busy.
   */
  counts(): { files: number; locks: number; waiters: number; busy: number } {
    let locks = 0;
    let busy = 0;
    for (const f of this.files.values()) {
      for (const r of f.ownRecords()) if (r.state === 'held' && r.epoch === this.epoch) locks++;
      if (this.jobs.has(f) || f.owing) busy++;
    }
    return { files: this.files.size, locks, waiters: this.waits.size, busy };
  }

  /**
   * Resolves once every job queued so far in `path`'s mailbox has ended: a step given up on, with
   * its tries. Tests make a request after it this way: one queued behind it instead is answered
   * with its family's generic code at requestTimeoutMs after it came, if still queued then
   * (attempt).
   */
  mailboxPassed(path: string): Promise<void> {
    return this.inMailbox(this.file(path), () => Promise.resolve());
  }

  /** Mailbox jobs queued or running, per file (counts: busy). */
  private readonly jobs = new Map<SharedFile, number>();

  /** Runs `job` in `f`'s mailbox, counted in `jobs` until it ends. */
  private enqueue<T>(f: SharedFile, job: () => Promise<T>): Promise<T> {
    this.jobs.set(f, (this.jobs.get(f) ?? 0) + 1);
    const done = (): void => {
      const n = (this.jobs.get(f) ?? 1) - 1;
      if (n > 0) this.jobs.set(f, n);
      else this.jobs.delete(f);
    };
    const p = f.enqueue(job);
    p.then(done, done);
    return p;
  }

  /**
   * This node's own records in each file's cache, as of its last step on the file: its held locks
   * of the current session and its waiters. What the node lists of itself while the engine does
   * not answer (ActorHost.locks); other nodes' records are left out, known only as of that step.
   */
  lastKnown(): [string, StoreRecord[]][] {
    return [...this.files].map(([path, f]): [string, StoreRecord[]] => [path, f.ownRecords().filter((r) => r.state !== 'held' || r.epoch === this.epoch)]);
  }
}

/** A request's hook family, and the generic code a failed judgment of its grant answers. */
function judgedAs(op: Call['op'] | undefined, req: LockRequest | undefined): { family: Family; generic: number } {
  return { family: req?.kind === 'windows' ? 'windows' : 'posix', generic: op === 'lockFile' ? ERROR_LOCK_VIOLATION : -ENOLCK };
}

/** SharedFiles.foreignLingerMs: an actor that only caches other nodes' records goes this long after this node's last job on it. */
const FOREIGN_LINGER_MS = 2000;
/** Files per page of a replacement worker's reading of its session's index (recover). */
export const PAGE_FILES = 256;
/** Pending files a replacement worker loads at once (recover): the rest wait, other files are served. */
const LOADS_AT_ONCE = 16;

/** The wait before try `tries` + 1 of something the engine did not answer: 100 ms, doubling up to 5 s. */
function retryDelay(tries: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(tries, 6));
}
/** A file's owed tries (SharedFiles.retryOwed). */
interface OwedRetry {
  /** The next try's, while it waits. */
  timer: NodeJS.Timeout | undefined;
  /** How many tries were scheduled. */
  tries: number;
  /** SharedFiles.sends when the wait began: an answer to a step sent later may cut it short. */
  since: number;
  /** The lease (its end) when the wait began: a renewal answered since moves it on (watchRenewal). */
  lease: number;
  /** The wait was cut short since the last one that ran out: the next is not (SharedFiles.healed). */
  cut: boolean;
}

/**
 * Whether `reply` came from the engine and says it serves this node's steps: committed, or
 * refused for what the step found there. Not 'unreachable', 'late' (the way is slow), 'fenced'
 * (also the node's own fence), 'reset'.
 */
function engineAnswered(reply: CommitReply): boolean {
  return reply.ok || reply.reason === 'stale' || reply.reason === 'dead' || reply.reason === 'grace' || reply.reason === 'deadlock' || reply.reason === 'overdue' || reply.reason === 'fence';
}
/** A load's decision given up on (recover). */
const LOAD_FAILED = Symbol('load failed');
const RECOVER_UNKNOWN =
  "a worker that replaced one that died could not read to its end, before this node's session changed or the engine lost its data, which locks its predecessor took: those it did not read are lost, and their handles are not told so (their I/O is not refused)";

/** How long after a grace period's end (by the engine's count) parked requests run again. */
const PARK_MARGIN_MS = 5;
/** The longest delay setTimeout keeps (a longer one runs at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A file's pending pass (SharedFiles.passAt): its timer, and when it runs. */
interface PassTimer {
  timer: Timer | undefined;
  at: number;
}

/** The requests of a file parked (SharedFiles.park), and the timers that run them again. */
interface Parking {
  ids: number[];
  /** When those waiting out a grace period run again, and its timer. */
  at: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A reply target that may keep a release answered before it was written (the caller's: host.ts
 * CallerReplies), to run it again on a replacement of this worker; the native pump's does not.
 */
type OwedTarget = ReplyTarget & { owed?(id: number): void; written?(id: number): void };

/** Whether `call` must run once sent (a release of any kind: SharedFile.request's mustRun). */
function mustRunHere(call: Call): boolean {
  return !cancellable(call) && call.op !== 'checkIo' && !(call.op === 'lock' && call.cmd === F_GETLK);
}

interface PendingRequest {
  readonly call: Call;
  readonly target: ReplyTarget;
  readonly since: number;
  rid: string | undefined;
  cancelled: CancelReason | undefined;
  /** Waiting out a grace period (Parked), then queued to run again (in order of arrival) until that run starts. */
  parked: false | 'waiting' | 'resuming';
  /** Its order of arrival among this worker's requests. */
  readonly seq: number;
  /** Its last run's order among the runs queued in this worker's mailboxes (SharedFiles.attempt). */
  turn: number;
}

/**
 * Whether `call` sends nothing that must run: a lock request of any kind, F_GETLK, checkIo. Its
 * deadline runs from its arrival, and once that passed it is ended from outside the mailbox, never
 * run (SharedFiles.attempt). A waiter's request (F_SETLKW, LockFileEx without failImmediately) too:
 * until its step is sent it is a new request, which API.md has end with the generic code when it
 * cannot reach the engine within requestTimeoutMs; once its wait is recorded it waits while the
 * session lives. Not a release (unlock, close, flush): it must run (answered then, it still runs
 * at its turn: SharedFiles.answerRelease).
 */
function mayGoUnsent(call: Call): boolean {
  if (call.op === 'checkIo' || call.op === 'lockFile') return true;
  if (call.op === 'lock') return call.lockType !== F_UNLCK || call.cmd === F_GETLK;
  return false;
}

/**
 * Whether `call`, cancelled (its timeout, signal, an interrupt) while queued in its file's
 * mailbox, ends with its cancel code, never run: a lock request (cancellable), and a checkIo (a
 * read or write check, which waits too), at its turn and at its deadline alike (SharedFiles.attempt).
 */
function endsCancelled(call: Call): boolean {
  return cancellable(call) || call.op === 'checkIo';
}

/**
 * Whether release `c` and request `x` of its file are one owner's (an unlock, flush or
 * UnlockFileEx: that owner's requests), or `x` goes through the handle `c` closes or unlocks all
 * of (a close ends its waiters, core closedWith; a checkIo through it; an unlock-all: that
 * handle's Windows locks). `node`: this node, which qualifies handle keys.
 */
function releaseTouches(c: Call, x: Call, node: string): boolean {
  const handle = x.op === 'checkIo' ? `${windowsHandleOf(x.owner)}@${node}` : 'req' in x && x.req.kind === 'windows' ? x.req.origin.handleKey : undefined;
  if (c.op === 'closeHandle' || c.op === 'release') return 'req' in x ? closedWith(c, x.req) !== undefined : c.op === 'closeHandle' && handle === c.handleKey;
  if (c.op === 'unlockAll') return handle === c.handleKey;
  const owner = c.op === 'lock' ? c.req.owner : 'owner' in c ? c.owner : undefined;
  return owner === undefined || ('req' in x ? x.req.owner : 'owner' in x ? x.owner : undefined) === owner;
}

/** A request's answer when nothing could be decided: its family's generic code. */
function generic(call: Call): Result {
  return call.op === 'lock' ? ({ ...replyOf(call.base, -ENOLCK) } as PosixReply) : answersNumber(call) ? ERROR_LOCK_VIOLATION : undefined;
}

/** Whether `call`'s caller is answered a number (docs/API.md): the Windows calls but closeHandle; unlockFile's unlock-all too. */
function answersNumber(call: Call): boolean {
  return call.op === 'lockFile' || call.op === 'checkIo' || call.op === 'unlockFile' || call.op === 'unlockAll';
}
/** How many files SharedFiles.noneOfMine keeps (a path string each). */
const NONE_OF_MINE_MAX = 65_536;
