/**
 * The actor host: the long-lived task each piscina worker runs. It owns the lock state of every file
 * that hashes to this worker (one LockTable) and gives each file an actor: a mailbox that runs the
 * file's requests one at a time, in arrival order.
 *
 * Requests come from two sources, each with its own reply target: the caller's thread (calls read
 * from the data port, answered through CallerReplies into a ReplyWriter batch) and the native pump
 * (NativeFeed, which answers the kernel itself). The host runs a request and hands its result to
 * the target it came with; it never asks where a request came from. The two sources number their
 * requests apart (the caller from 1 up, the native feed from -1 down), so one map holds both.
 *
 * Most steps are synchronous (no hook configured): a request runs the moment its batch is read, and
 * an actor needs no mailbox object at all. When an approval hook answers through comlink, the step
 * returns a Promise and the file's actor is busy: later requests for that file wait in its mailbox
 * until the step settles, while other files go on. That is the whole serialization: no locks.
 */
import * as Comlink from 'comlink';
import { ENOLCK, ERROR_LOCK_VIOLATION, F_GETLK, F_UNLCK } from '../core/codes.js';
import { LocalWaitForGraph, type WaitForGraph } from '../core/deadlock.js';
import type { Waiter } from '../core/file-locks.js';
import { LockTable, cancelResult, type CancelReason, type Family, type Pending } from '../core/lock-table.js';
import { cancellable, type Call, type PosixReply } from '../core/requests.js';
import { recordEntries } from '../core/records.js';
import type { LockEntry } from '../core/views.js';
import { clearTimer, setTimer, type Timer } from '../long-timer.js';
import { readBatch } from '../wire/calls.js';
import { replayOf } from '../wire/journal-entry.js';
import type { FromHost, HookRunner, HostControl, HostInit, HostStats, ToHost } from '../wire/protocol.js';
import { END_FLOCK_DROP, END_IDLE, ReplyWriter } from '../wire/replies.js';
import { NativeFeed } from './native-feed.js';
import { DirectLink } from './direct-link.js';
import { PAGE_FILES, SharedFiles } from './shared-files.js';
import { routeOf } from '../wire/route.js';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NativeHost, ReplyTarget, Result } from './reply-target.js';
import { SharedCounters } from '../counters.js';

type Step = () => unknown;

function isPromise(x: unknown): x is Promise<unknown> {
  return x instanceof Promise;
}

function isPending(x: unknown): x is Pending {
  return typeof x === 'object' && x !== null && 'waiter' in x;
}

/**
 * The worker's wait-for graph: exact for cycles among this worker's own waiters, and every edge is
 * also sent to the caller's thread, whose graph spans all workers (src/caller/deadlock-service.ts).
 */
class ForwardingGraph implements WaitForGraph {
  private readonly local = new LocalWaitForGraph();
  constructor(
    private readonly idOf: (w: unknown) => number,
    private readonly send: (m: FromHost) => void,
  ) {}

  closesCycle(owner: string, blockers: Iterable<string>, hardOnly?: boolean): boolean {
    return this.local.closesCycle(owner, blockers, hardOnly);
  }

  /** Both kinds travel: the caller's side fails hard cycles (EDEADLK) and releases 'fifo' ones ('pass'). */
  setEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>, queuedBehind?: ReadonlySet<string>): void {
    this.local.setEdges(waiter, owner, blockers, queuedBehind);
    this.send({ t: 'edges', id: this.idOf(waiter), owner, blockers: [...blockers], queuedBehind: queuedBehind === undefined ? [] : [...queuedBehind] });
  }

  removeEdges(waiter: unknown, owner: string): void {
    this.local.removeEdges(waiter, owner);
    this.send({ t: 'edges', id: this.idOf(waiter), owner, blockers: [], queuedBehind: [] });
  }

  /** Sent with the waiter's check: sent now, the caller's graph would check it before the waiters ahead of it. */
  holdEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>, queuedBehind?: ReadonlySet<string>): void {
    this.local.setEdges(waiter, owner, blockers, queuedBehind);
  }
}

/**
 * The reply target of the caller's requests: answers as replies.ts records in the host's batch.
 * Native commits not sent yet go first, so each file's journal keeps the order of its commits.
 */
class CallerReplies implements ReplyTarget {
  constructor(
    private readonly out: ReplyWriter,
    private readonly table: LockTable,
    private readonly host: ActorHost,
  ) {}

  answer(id: number, path: string | undefined, res: Result, waitedMs: number, flockDrop: boolean, getlk: boolean): void {
    const journal = this.host.nativeJournal();
    journal?.flush();
    if (getlk) {
      this.out.getlk(id, res as PosixReply);
      return;
    }
    const code = typeof res === 'object' ? res.result : res === undefined ? null : res;
    const idle = path !== undefined && this.table.fileState(path) === undefined;
    this.out.result(id, code, waitedMs, (flockDrop ? END_FLOCK_DROP : 0) | (idle ? END_IDLE : 0));
    if (path !== undefined) journal?.replied(path, idle);
  }

  queued(id: number, path: string, flockDrop: boolean): void {
    const journal = this.host.nativeJournal();
    journal?.flush();
    this.out.queued(id, flockDrop);
    if (flockDrop) journal?.replied(path, false);
  }

  /** A shared lock space: release `id`, answered next, is not written yet (SharedFiles.tellOwed). */
  owed(id: number): void {
    this.out.object({ t: 'owed', id });
  }

  /** A shared lock space: release `id`, told owed, is owed no longer (SharedFiles.written). */
  written(id: number): void {
    this.out.object({ t: 'written', id });
  }
}

/** A request held in its file's mailbox behind an asynchronous step. */
interface Held {
  readonly call: Call;
  readonly target: ReplyTarget;
}

export class ActorHost implements HostControl, NativeHost {
  private readonly table: LockTable;
  private readonly out: ReplyWriter;
  private readonly caller: CallerReplies;
  /** Files whose actor is busy with an asynchronous step, with the steps queued behind it. */
  private readonly mailboxes = new Map<string, Step[]>();
  /** Requests waiting in a file's mailbox, by id (a cancel ends them there). */
  private readonly held = new Map<number, Held>();
  /** Queued requests by id. */
  private readonly pendings = new Map<number, Pending>();
  /** Requests received and not yet answered; a cancel for one still in a mailbox is kept here. */
  private readonly inflight = new Map<number, CancelReason | null>();
  /**
   * The file whose call runs synchronously right now, and the answers of waiters that call ended,
   * sent after its own (run). A call that goes on asynchronously (an approval hook) moves its list
   * to `holding` until it ends: a Map entry set and deleted for every call cost the collector a new
   * hash table each time (V8 shrinks a Map that empties).
   */
  private runningPath: string | undefined;
  private runningHeld: (() => void)[] | undefined;
  /** Per file running an asynchronous call: the same lists. */
  private readonly holding = new Map<string, (() => void)[]>();
  private readonly hooks: Comlink.Remote<HookRunner>;
  /** The native pump's events for this worker, once the caller's side connected a session. */
  private native: NativeFeed | undefined;
  private calls = 0;
  private batches = 0;
  /** Native requests answered, in the caller's memory (counters.ts). */
  private readonly counters: SharedCounters;
  /** A shared lock space: every file's actor decides on the store's records (shared-file.ts, shared-files.ts). */
  private readonly shared: SharedFiles | undefined;
  /** Its connection of this worker's own, on Redis. */
  private direct: DirectLink | undefined;
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((r) => (this.resolveFinished = r));

  constructor(private readonly init: HostInit) {
    this.out = new ReplyWriter((batch) => init.data.postMessage(batch));
    this.counters = new SharedCounters(init.nativeCounters);
    this.hooks = Comlink.wrap<HookRunner>(init.hooks as unknown as Comlink.Endpoint);
    const hooks = {
      approve: init.approveWindows || init.approvePosix ? (family: Family, event: Readonly<Record<string, unknown>>) => this.approve(family, event) : undefined,
      released: init.releasedWindows || init.releasedPosix ? (family: Family, event: Readonly<Record<string, unknown>>) => this.released(family, event) : undefined,
    };
    const s = init.shared;
    if (s !== undefined) {
      // This worker's own connection to the engine, under the session the caller's thread keeps.
      const prefix = `${s.node}.${randomUUID().slice(0, 8)}.`;
      this.direct = new DirectLink(s.store, s.node, new Float64Array(s.lease), s.epoch, s.incarnation, prefix, () => this.out.object({ t: 'storeTrouble' }));
      this.shared = new SharedFiles(this.direct, s, hooks, (m) => this.fault(m), (fhs) => this.native?.markLost(fhs), prefix, (m) => this.out.object(m));
      // A replacement: its predecessors' lost handles, which only the caller kept.
      if (s.lost !== undefined) this.shared.lostBefore(s.lost.handles);
      // A replacement: the locks its predecessor took in its files are in the engine only. It
      // reads them now, in the background, before a reset or a lost session needs them.
      if (s.blank === false && s.workers !== undefined) {
        const direct = this.direct;
        const { epoch, incarnation, workers, predecessor } = s;
        const mine = (path: string): boolean => routeOf(path, workers) === init.index;
        const listed = this.shared.recover((cursor) => direct.sessionFiles(epoch, incarnation, cursor, PAGE_FILES), mine);
        // Its predecessor acted on a session this node no longer has: what it took there is lost.
        const lost =
          predecessor === undefined
            ? undefined
            : this.shared.recoverLost((cursor) => direct.sessionFiles(predecessor.epoch, predecessor.incarnation, cursor, PAGE_FILES), mine, s.lost?.closed);
        // Its first answer to the control plane (the coordinator's stats round trip after a
        // replacement, crashWorker) comes once it knows them, or after requestTimeoutMs (the
        // engine out of reach: the reading goes on).
        this.recovered = Promise.race([Promise.all([listed, lost]), sleep(s.requestTimeoutMs)]).then(() => {
          this.recovered = undefined;
        });
      }
    } else {
      this.shared = undefined;
    }
    const graph = new ForwardingGraph(
      // Every waiter is stamped with its request's id when it queues (step sets table.requestId).
      (w) => (w as Waiter).requestId ?? this.table.requestId ?? 0,
      (m) => this.out.object(m),
    );
    this.table = new LockTable({
      policy: init.policy,
      graph,
      hooks,
    });
    this.caller = new CallerReplies(this.out, this.table, this);
    Comlink.expose(this, init.control as unknown as Comlink.Endpoint);
    init.data.on('message', (batch: unknown[] | number) => {
      // LockCoordinator.ping(): straight back, before anything else.
      if (typeof batch === 'number') return init.data.postMessage(batch);
      this.batches++;
      readBatch(batch, this.onCall, this.onObject);
    });
  }

  private readonly onCall = (id: number, call: Call): void => this.run(id, call, this.caller);

  private readonly onObject = (m: unknown): void => this.handle(m as ToHost);

  /** The native feed's journal, while a native session is attached. */
  nativeJournal() {
    return this.native?.journal;
  }

  /**
   * Runs request `id` now, or after the asynchronous step its file's actor is busy with, and
   * answers it to `target`. A call that finishes or waits right away needs no `inflight` entry: a
   * cancel finds its waiter, or (answered) nothing; one held in a mailbox or by a hook keeps its
   * entry until it runs.
   */
  run(id: number, call: Call, target: ReplyTarget): void {
    this.calls++;
    if (this.shared !== undefined) {
      this.shared.run(id, call, target);
      return;
    }
    const box = this.mailboxes.get(call.path);
    if (box !== undefined) {
      this.inflight.set(id, null);
      this.held.set(id, { call, target });
      box.push(() => this.runHeld(id));
      return;
    }
    const r = this.step(id, call, target);
    if (isPromise(r)) {
      this.inflight.set(id, null);
      this.mailboxes.set(call.path, []);
      void r.then(() => this.drain(call.path));
    }
  }

  fault(message: string): void {
    this.out.object({ t: 'fault', message });
  }

  // ---- hooks ----------------------------------------------------------------------------------

  private approve(family: Family, event: Readonly<Record<string, unknown>>): number | Promise<number> {
    if (!(family === 'windows' ? this.init.approveWindows : this.init.approvePosix)) return 0;
    const generic = family === 'windows' ? ERROR_LOCK_VIOLATION : -ENOLCK;
    const hook = family === 'windows' ? 'onLockFile' : 'onLock';
    let timer: Timer | undefined;
    const timeout = new Promise<number>((resolve) => {
      timer = setTimer(() => {
        this.out.object({ t: 'hookError', hook, message: `${hook} did not answer within ${this.init.hookTimeoutMs} ms` });
        resolve(generic);
      }, this.init.hookTimeoutMs);
    });
    const answer = this.hooks.approve(family, event as Record<string, unknown>).catch((e: unknown) => {
      this.out.object({ t: 'hookError', hook, message: String(e) });
      return generic;
    });
    return Promise.race([answer, timeout]).finally(() => clearTimer(timer));
  }

  private released(family: Family, event: Readonly<Record<string, unknown>>): void {
    if (!(family === 'windows' ? this.init.releasedWindows : this.init.releasedPosix)) return;
    this.hooks.released(family, event as Record<string, unknown>).catch((e: unknown) => {
      this.out.object({ t: 'hookError', hook: family === 'windows' ? 'onUnlockFile' : 'onLock', message: String(e) });
    });
  }

  // ---- the mailbox ----------------------------------------------------------------------------

  /** Runs `step` for `path` now, or after the asynchronous step the file's actor is busy with. */
  private deliver(path: string, step: Step): void {
    const box = this.mailboxes.get(path);
    if (box !== undefined) {
      box.push(step);
      return;
    }
    const r = step();
    if (isPromise(r)) {
      this.mailboxes.set(path, []);
      void r.then(() => this.drain(path));
    }
  }

  private drain(path: string): void {
    const box = this.mailboxes.get(path)!;
    for (;;) {
      const step = box.shift();
      if (step === undefined) {
        this.mailboxes.delete(path);
        return;
      }
      const r = step();
      if (isPromise(r)) {
        void r.then(() => this.drain(path));
        return;
      }
    }
  }

  private handle(m: ToHost): void {
    switch (m.t) {
      case 'cancel':
        this.cancel(m.id, m.reason);
        return;
      case 'native':
        this.attachNative(m.sessionId);
        return;
      case 'deadlock': {
        const p = this.pendings.get(m.id);
        if (p === undefined) {
          this.out.object({ t: 'deadlocked', token: m.token, failed: false });
          return;
        }
        this.deliver(p.path, () => {
          const failed = this.pendings.get(m.id) === p;
          const r = failed ? this.table.cancel(p, 'deadlock') : false;
          this.out.object({ t: 'deadlocked', token: m.token, failed });
          return r;
        });
        return;
      }
      case 'settleOthers':
        this.shared?.settleHere();
        return;
      case 'pass': {
        const p = this.pendings.get(m.id);
        if (p !== undefined) this.deliver(p.path, () => (this.pendings.get(m.id) === p ? this.table.letPass(p, m.owner) : undefined));
        return;
      }
      case 'restore':
        this.native?.journal.adopt(m.path);
        this.table.replay(m.path, m.entries.map(replayOf));
        return;
      case 'sync':
        this.out.object({ t: 'synced', token: m.token });
        return;
      case 'snapshot':
        this.deliver(m.path, () => {
          // Native commits the snapshot already contains must reach the journal before it, not after.
          this.native?.journal.flush();
          this.out.object({ t: 'snapshot', path: m.path, locks: this.table.grantedLocks(m.path) });
        });
        return;
      case 'crash':
        setImmediate(() => {
          throw new Error('locksmith crash drill');
        });
        return;
      case 'stop': {
        this.native?.detach();
        this.table.cancelAll('stop');
        const stopped = (): void => {
          this.out.object({ t: 'stopped' });
          this.out.flushNow();
          this.resolveFinished();
        };
        if (this.shared === undefined) stopped();
        else
          void this.shared
            .stop()
            .then(() => this.direct?.close())
            .then(stopped, stopped);
        return;
      }
      case 'ended':
        this.shared?.ended(m.path, m.events);
        return;
      case 'judged':
        this.shared?.judged(m.id, m.before, m.cancelled);
        return;
      case 'reap':
        void this.shared?.reap(m.path, m.sessions);
        return;
      case 'session': {
        // The connection first: the re-assertions the files start at once go out under the new session.
        this.direct?.adopt(m.epoch, m.incarnation);
        const back = this.shared?.adopt(m.epoch, m.carried, m.graceMs);
        // Told to the caller (Worker.session): a replacement of this worker knows the session it
        // acted on. A carried one once the locks it puts back are there, or told lost (a newer
        // session first: not at all): a replacement of a worker that died before reads the older one.
        const adopted = (): void => this.out.object({ t: 'adopted', epoch: m.epoch, incarnation: m.incarnation });
        if (back === undefined) adopted();
        else void back.then((done) => (done ? adopted() : undefined));
        return;
      }
    }
  }

  /** Takes the events of native session `sessionId` for this worker (a replacement feed ends the old one). */
  private attachNative(sessionId: number): void {
    this.native?.detach();
    const feed = new NativeFeed(sessionId, this.init.index, this, this.out, (path) => this.table.fileState(path) !== undefined, this.counters);
    // Until now API answers were not tracked: every file holding something may have a journal.
    for (const path of this.table.activePaths()) feed.journal.adopt(path);
    try {
      feed.attach();
      this.native = feed;
    } catch (e) {
      this.native = undefined;
      this.fault(`native attach failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Ends request `id` early: now if it waits, in a queue or in its file's mailbox (behind an
   * approval hook: its caller's timeout or signal must end it there too), or as soon as it would
   * wait.
   */
  cancel(id: number, reason: CancelReason): void {
    if (this.shared !== undefined) {
      this.shared.cancel(id, reason);
      return;
    }
    const p = this.pendings.get(id);
    if (p !== undefined) {
      this.deliver(p.path, () => this.table.cancel(p, reason));
      return;
    }
    const held = this.held.get(id);
    const call = held?.call;
    // Only a request that could wait is ended there (requests.ts cancellable): answering an unlock's
    // timeout without running it left the lock held while the journal recorded it gone.
    if (call !== undefined && cancellable(call)) {
      this.held.delete(id);
      this.inflight.delete(id);
      const windows = call.op === 'lockFile';
      const code = cancelResult(reason, windows);
      held!.target.answer(id, call.path, windows ? code : ({ result: code } as PosixReply), -1, false, false);
      return;
    }
    if (this.inflight.has(id)) this.inflight.set(id, reason);
  }

  /** A request that waited in its file's mailbox runs, unless its cancel already ended it. */
  private runHeld(id: number): unknown {
    const h = this.held.get(id);
    if (h === undefined) return undefined;
    this.held.delete(id);
    return this.step(id, h.call, h.target);
  }

  private step(id: number, call: Call, target: ReplyTarget): unknown {
    this.table.requestId = id;
    // Waiters this call lets in answer after the call itself: the caller's side journals in
    // arrival order, and a replay must see the release before the grants it made possible.
    this.runningPath = call.path;
    this.runningHeld = undefined;
    const flockDrop = this.dropsFlock(call);
    let r: unknown;
    try {
      r = this.table.run(call, (result) => this.waitEnded(id, target, result));
    } catch (e) {
      // A bug, never bad input (it was parsed before it got here): answer, report, keep serving.
      this.fault(e instanceof Error ? (e.stack ?? e.message) : String(e));
      r = call.op === 'lock' ? { result: -ENOLCK } : call.op === 'flush' || call.op === 'release' ? undefined : ERROR_LOCK_VIOLATION;
    }
    if (!isPromise(r)) return this.endStep(id, call, target, flockDrop, r);
    const held = this.runningHeld ?? [];
    this.runningPath = this.runningHeld = undefined;
    this.holding.set(call.path, held);
    return r.then((res) => {
      this.holding.delete(call.path);
      this.runningPath = call.path;
      this.runningHeld = held;
      return this.endStep(id, call, target, flockDrop, res);
    });
  }

  /** The step of `call` returned `res`: answer it (or note that it waits), then the waiters it let in. */
  private endStep(id: number, call: Call, target: ReplyTarget, flockDrop: boolean, res: unknown): unknown {
    let next: unknown;
    if (isPending(res)) {
      this.pendings.set(id, res);
      target.queued(id, call.path, flockDrop);
      const reason = this.inflight.get(id);
      if (reason !== null && reason !== undefined) next = this.table.cancel(res, reason);
    } else {
      this.inflight.delete(id);
      target.answer(id, call.path, res as Result, -1, flockDrop, call.op === 'lock' && call.cmd === F_GETLK);
    }
    const held = this.runningHeld;
    this.runningPath = this.runningHeld = undefined;
    if (held !== undefined) for (const f of held) f();
    return next;
  }

  private waitEnded(id: number, target: ReplyTarget, result: unknown): void {
    const p = this.pendings.get(id);
    this.pendings.delete(id);
    this.inflight.delete(id);
    if (p === undefined) {
      // Ended while its own step ran (it never got to wait): answered at once.
      target.answer(id, undefined, result as Result, 0, false, false);
      return;
    }
    const waitedMs = Date.now() - p.waiter.since;
    const send = (): void => target.answer(id, p.path, result as Result, waitedMs, false, false);
    if (p.path === this.runningPath) (this.runningHeld ??= []).push(send);
    else {
      const held = this.holding.get(p.path);
      if (held !== undefined) held.push(send);
      else send();
    }
  }

  /** A flock request by an owner holding the other type drops that lock first, whatever follows. */
  private dropsFlock(call: Call): boolean {
    if (call.op !== 'lock' || call.req.kind !== 'flock' || call.lockType === F_UNLCK || call.cmd === F_GETLK) return false;
    const held = this.table.fileState(call.path)?.flockOf(call.req.owner);
    return held !== undefined && held.write !== call.req.write;
  }

  // ---- control plane (comlink) ------------------------------------------------------------------

  /**
   * The locks of `path`, or of every file this worker has. In a shared lock space (where the
   * coordinator lists every node's from the engine) this node's own, as its caches last knew them
   * (SharedFiles.lastKnown): what the node can list while the engine does not answer.
   */
  locks(path?: string): LockEntry[] {
    if (this.shared === undefined) return this.table.locks(path);
    const now = Date.now();
    const out: LockEntry[] = [];
    for (const [file, records] of this.shared.lastKnown()) if (path === undefined || file === path) out.push(...recordEntries(file, records, now));
    return out;
  }

  stats(): HostStats | Promise<HostStats> {
    const r = this.recovered;
    return r === undefined ? this.counts() : r.then(() => this.counts());
  }

  /** A replacement's reading of its predecessor's locks (SharedFiles.recover) while stats() waits for it. */
  private recovered: Promise<void> | undefined;

  private counts(): HostStats {
    if (this.shared !== undefined) {
      const sc = this.shared.counts();
      return {
        index: this.init.index,
        files: sc.files,
        locks: sc.locks,
        waiters: sc.waiters,
        calls: this.calls,
        batches: this.batches,
        busyActors: sc.busy,
        ...(this.direct === undefined ? {} : { engine: { ...this.direct.counts, graceWaits: this.direct.counts.graceWaits + this.shared.parkedBehind } }),
      };
    }
    const c = this.table.counts();
    return {
      index: this.init.index,
      files: c.files,
      locks: c.locks,
      waiters: c.waiters,
      calls: this.calls,
      batches: this.batches,
      busyActors: this.mailboxes.size,
    };
  }
}

/** The piscina task: host until the caller's side says stop. */
export default async function hostTask(init: HostInit): Promise<void> {
  const h = new ActorHost(init);
  await h.finished;
  // Let the last batch leave before the task (and with it the port) goes.
  await new Promise((r) => setImmediate(r));
  init.data.close();
  init.control.close();
  init.hooks.close();
}
