/**
 * The actor host: the long-lived task each piscina worker runs. It owns the lock state of every file
 * that hashes to this worker (one LockTable) and gives each file an actor: a mailbox that runs the
 * file's requests one at a time, in arrival order.
 *
 * Most steps are synchronous (no hook configured): a request runs the moment its batch is read, and
 * an actor needs no mailbox object at all. When an approval hook answers through comlink, the step
 * returns a Promise and the file's actor is busy: later requests for that file wait in its mailbox
 * until the step settles, while other files go on. That is the whole serialization: no locks.
 *
 * Replies, queued notices and wait-for edges go out in one array per turn (Batcher).
 */
import * as Comlink from 'comlink';
import { ENOLCK, ERROR_LOCK_VIOLATION, F_GETLK, F_UNLCK } from '../core/codes.js';
import { LocalWaitForGraph, type WaitForGraph } from '../core/deadlock.js';
import type { Waiter } from '../core/file-locks.js';
import { LockTable, cancelResult, type CancelReason, type Family, type Pending } from '../core/lock-table.js';
import { lockCallOf, type Call, type PosixReply } from '../core/requests.js';
import { Batcher } from '../wire/batcher.js';
import { clearTimer, setTimer, type Timer } from '../long-timer.js';
import { NativeFeed, nativeCall } from './native-feed.js';
import { END_FLOCK_DROP, END_IDLE, R_DONE, R_ENDED, R_GETLK, R_NDROP, R_NIDLE, R_NJOURNAL, R_QUEUED, decodeCall, readBatch } from '../wire/calls.js';
import type { FromHost, HookRunner, HostControl, HostInit, HostStats, ToHost } from '../wire/protocol.js';

type Step = () => unknown;

function isPromise(x: unknown): x is Promise<unknown> {
  return x instanceof Promise;
}

function isPending(x: unknown): x is Pending {
  return typeof x === 'object' && x !== null && 'waiter' in x;
}

/**
 * The worker's wait-for graph: exact for cycles among this worker's own waiters, and every edge is
 * also sent to the coordinator, whose graph spans all workers (src/actors/deadlock-service.ts).
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

  /** Both kinds travel: the coordinator fails hard cycles (EDEADLK) and releases 'fifo' ones ('pass'). */
  setEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>, queuedBehind?: ReadonlySet<string>): void {
    this.local.setEdges(waiter, owner, blockers, queuedBehind);
    this.send({ t: 'edges', id: this.idOf(waiter), owner, blockers: [...blockers], queuedBehind: queuedBehind === undefined ? [] : [...queuedBehind] });
  }

  removeEdges(waiter: unknown, owner: string): void {
    this.local.removeEdges(waiter, owner);
    this.send({ t: 'edges', id: this.idOf(waiter), owner, blockers: [], queuedBehind: [] });
  }
}

/** Slots of one pending native journal record in ActorHost.nativeJournal. */
const NJ_STRIDE = 10;

export class ActorHost implements HostControl {
  private readonly table: LockTable;
  private readonly out: Batcher;
  /** Files whose actor is busy with an asynchronous step, with the steps queued behind it. */
  private readonly mailboxes = new Map<string, Step[]>();
  /** Calls waiting in a file's mailbox, by id (a cancel ends them there). */
  private readonly heldCalls = new Map<number, Call>();
  /** Queued requests by id. */
  private readonly pendings = new Map<number, Pending>();
  /** Requests received and not yet answered; a cancel for one still in a mailbox is kept here. */
  private readonly inflight = new Map<number, CancelReason | null>();
  /**
   * The file whose call runs synchronously right now, and the answers of waiters that call ended,
   * sent after its own (runCall). A call that goes on asynchronously (an approval hook) moves its
   * list to `holding` until it ends: a Map entry set and deleted for every call cost the collector
   * a new hash table each time (V8 shrinks a Map that empties).
   */
  private runningPath: string | undefined;
  private runningHeld: (() => void)[] | undefined;
  /** Per file running an asynchronous call: the same lists. */
  private readonly holding = new Map<string, (() => void)[]>();
  private readonly hooks: Comlink.Remote<HookRunner>;
  /** The native pump's events for this worker, once the coordinator connected one. */
  private native: NativeFeed | undefined;
  /**
   * Native commits not journaled yet, in commit order: requests (wire.ts R_NJOURNAL) and flock
   * drops (R_NDROP). They leave before any native answer and before any API answer, so each
   * file's journal keeps the order of its commits; a file that is idle by then sends one R_NIDLE
   * instead of its records (a lock and its unlock in one native batch cost the coordinator nothing).
   */
  private readonly nativeJournal: unknown[] = [];
  /** Records in nativeJournal (NJ_STRIDE slots each; the array is reused, never shrunk). */
  private nativeJournalCount = 0;
  /**
   * With a native session: the files the coordinator may hold a journal for (something committed
   * was sent and no idle mark since). A native commit that leaves its file idle sends R_NIDLE only
   * for these, so a lock and its unlock answered in one native batch send nothing at all.
   */
  private readonly journaled = new Set<string>();
  private calls = 0;
  private batches = 0;
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((r) => (this.resolveFinished = r));

  constructor(private readonly init: HostInit) {
    this.out = new Batcher((batch) => init.data.postMessage(batch));
    this.hooks = Comlink.wrap<HookRunner>(init.hooks as unknown as Comlink.Endpoint);
    const graph = new ForwardingGraph(
      // Every waiter is stamped with its request's id when it queues (runCall sets table.tag).
      (w) => (w as Waiter).tag ?? this.table.tag ?? 0,
      (m) => this.out.object(m),
    );
    this.table = new LockTable({
      policy: init.policy,
      graph,
      hooks: {
        approve: init.approveWindows || init.approvePosix ? (family, event) => this.approve(family, event) : undefined,
        released: init.releasedWindows || init.releasedPosix ? (family, event) => this.released(family, event) : undefined,
      },
    });
    Comlink.expose(this, init.control as unknown as Comlink.Endpoint);
    init.data.on('message', (batch: unknown[] | number) => {
      // coordinator.ping(): straight back, before anything else.
      if (typeof batch === 'number') return init.data.postMessage(batch);
      this.batches++;
      readBatch(batch, this.onCall, this.onObject);
    });
  }

  private readonly onCall = (id: number, call: Call): void => {
    this.calls++;
    this.deliverCall(id, call);
  };

  private readonly onObject = (m: unknown): void => this.handle(m as ToHost);

  /**
   * `deliver` for a coordinator's call, without a closure when the file's actor is free. A call
   * that finishes or waits right away needs no `inflight` entry: a cancel finds its waiter, or
   * (answered) nothing; one held in a mailbox or by a hook keeps its entry until it runs.
   */
  private deliverCall(id: number, call: Call): void {
    const box = this.mailboxes.get(call.path);
    if (box !== undefined) {
      this.inflight.set(id, null);
      this.heldCalls.set(id, call);
      box.push(() => this.runHeldCall(id));
      return;
    }
    const r = this.runCall(id, call);
    if (isPromise(r)) {
      this.inflight.set(id, null);
      this.mailboxes.set(call.path, []);
      void r.then(() => this.drain(call.path));
    }
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
        this.native?.detach();
        // Until now API replies were not tracked: every file holding something may have a journal.
        for (const path of this.table.activePaths()) this.journaled.add(path);
        this.native = new NativeFeed(m.sessionId, this.init.index, {
          submit: (id, call) => {
            this.calls++;
            this.deliverCall(id, call);
          },
          cancel: (id, reason) => this.cancel(id, reason),
          fault: (message) => this.out.object({ t: 'fault', message }),
          journal: (r) => this.journalNative(R_NJOURNAL, r.path, r.kind, r.type, r.flags, r.pid, r.fh, r.owner, r.start, r.end),
          // A granted lock is journaled before the kernel hears of it, so a crash cannot lose it.
          beforeReply: () => {
            this.flushNativeJournal();
            this.out.flushNow();
          },
        });
        try {
          this.native.attach();
        } catch (e) {
          this.native = undefined;
          this.out.object({ t: 'fault', message: `native attach failed: ${e instanceof Error ? e.message : String(e)}` });
        }
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
      case 'pass': {
        const p = this.pendings.get(m.id);
        if (p !== undefined) this.deliver(p.path, () => (this.pendings.get(m.id) === p ? this.table.letPass(p, m.owner) : undefined));
        return;
      }
      case 'restore':
        this.journaled.add(m.path);
        this.table.replay(
          m.path,
          m.entries.map((e) =>
            Array.isArray(e)
              ? { j: 'call' as const, call: decodeCall(e, 0) }
              : 'op' in e
                ? { j: 'call' as const, call: lockCallOf(e, undefined) }
                : e.j === 'native'
                ? { j: 'call' as const, call: nativeCall(m.path, e.f) }
                : e,
          ),
        );
        return;
      case 'sync':
        this.out.object({ t: 'synced', token: m.token });
        return;
      case 'snapshot':
        this.deliver(m.path, () => {
          // Native commits the snapshot already contains must reach the journal before it, not after.
          if (this.nativeJournalCount > 0) this.flushNativeJournal();
          this.out.object({ t: 'snapshot', path: m.path, locks: this.table.grantedLocks(m.path) });
        });
        return;
      case 'crash':
        setImmediate(() => {
          throw new Error('locksmith crash drill');
        });
        return;
      case 'stop':
        this.native?.detach();
        this.table.cancelAll('stop');
        this.out.object({ t: 'stopped' });
        this.out.flushNow();
        this.resolveFinished();
        return;
    }
  }

  /**
   * Keeps a native commit's record (wire.ts R_NJOURNAL, or R_NDROP with the owner key third) in a
   * flat reused array, so the request objects die young: holding them to the end of the native
   * batch made the collector copy them and cost a third of the synthetic rate.
   */
  private journalNative(tag: number, path: string, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown, g: unknown, h: unknown): void {
    const j = this.nativeJournal;
    const o = this.nativeJournalCount++ * NJ_STRIDE;
    j[o] = tag;
    j[o + 1] = path;
    j[o + 2] = a;
    j[o + 3] = b;
    j[o + 4] = c;
    j[o + 5] = d;
    j[o + 6] = e;
    j[o + 7] = f;
    j[o + 8] = g;
    j[o + 9] = h;
  }

  /** Sends the pending native records: a file idle by now gets one R_NIDLE if the coordinator may hold its journal. */
  private flushNativeJournal(): void {
    const j = this.nativeJournal;
    const b = this.out.buf;
    const end = this.nativeJournalCount * NJ_STRIDE;
    for (let o = 0; o < end; o += NJ_STRIDE) {
      const path = j[o + 1] as string;
      if (this.table.fileState(path) === undefined) {
        if (!this.journaled.delete(path)) continue;
        b.push(R_NIDLE, path);
      } else {
        this.journaled.add(path);
        if (j[o] === R_NDROP) b.push(R_NDROP, path, j[o + 2]);
        else b.push(R_NJOURNAL, path, j[o + 2], j[o + 3], j[o + 4], j[o + 5], j[o + 6], j[o + 7], j[o + 8], j[o + 9]);
      }
      this.out.added();
    }
    // Drop the references (owners, paths) but keep the array's storage for the next batch.
    j.fill(undefined, 0, end);
    this.nativeJournalCount = 0;
  }

  /**
   * Ends request `id` early: now if it waits, in a queue or in its file's mailbox (behind an
   * approval hook: its caller's timeout or signal must end it there too), or as soon as it would
   * wait.
   */
  private cancel(id: number, reason: CancelReason): void {
    const p = this.pendings.get(id);
    if (p !== undefined) {
      this.deliver(p.path, () => this.table.cancel(p, reason));
      return;
    }
    const held = this.heldCalls.get(id);
    if (held !== undefined && (held.op === 'lockFile' || (held.op === 'lock' && held.cmd !== F_GETLK))) {
      this.heldCalls.delete(id);
      this.inflight.delete(id);
      const windows = held.op === 'lockFile';
      const code = cancelResult(reason, windows);
      this.reply(id, held, windows ? code : ({ result: code } as PosixReply), -1, false, held.path);
      return;
    }
    if (this.inflight.has(id)) this.inflight.set(id, reason);
  }

  /** A call that waited in its file's mailbox runs, unless its cancel already ended it. */
  private runHeldCall(id: number): unknown {
    const call = this.heldCalls.get(id);
    if (call === undefined) return undefined;
    this.heldCalls.delete(id);
    return this.runCall(id, call);
  }

  private runCall(id: number, call: Call): unknown {
    this.table.tag = id;
    // Waiters this call lets in answer after the call itself: the coordinator journals in arrival
    // order, and a replay must see the release before the grants it made possible.
    this.runningPath = call.path;
    this.runningHeld = undefined;
    const flockDrop = this.dropsFlock(call);
    let r: unknown;
    try {
      r = this.table.run(call, (result) => this.waitEnded(id, result));
    } catch (e) {
      // A bug, never bad input (the coordinator parsed it): answer, report, keep serving.
      this.out.object({ t: 'fault', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      r = call.op === 'lock' ? { result: -ENOLCK } : call.op === 'flush' || call.op === 'release' ? undefined : ERROR_LOCK_VIOLATION;
    }
    if (!isPromise(r)) return this.endRun(id, call, flockDrop, r);
    const held = this.runningHeld ?? [];
    this.runningPath = this.runningHeld = undefined;
    this.holding.set(call.path, held);
    return r.then((res) => {
      this.holding.delete(call.path);
      this.runningPath = call.path;
      this.runningHeld = held;
      return this.endRun(id, call, flockDrop, res);
    });
  }

  /** The step of `call` returned `res`: answer it (or note that it waits), then the waiters it let in. */
  private endRun(id: number, call: Call, flockDrop: boolean, res: unknown): unknown {
    let next: unknown;
    if (id < 0 && flockDrop) {
      // A native request's flock conversion dropped the old lock, whatever follows: journal it.
      this.journalNative(R_NDROP, call.path, (call as Extract<Call, { op: 'lock' }>).req.owner, 0, 0, 0, 0, 0, 0, 0);
    }
    if (isPending(res)) {
      this.pendings.set(id, res);
      if (id >= 0) {
        if (this.nativeJournalCount > 0) this.flushNativeJournal();
        if (flockDrop && this.native !== undefined) this.journaled.add(call.path);
        this.out.buf.push(R_QUEUED, id, flockDrop);
        this.out.added();
      }
      const reason = this.inflight.get(id);
      if (reason !== null && reason !== undefined) next = this.table.cancel(res, reason);
    } else {
      this.inflight.delete(id);
      this.reply(id, call, res as number | PosixReply | undefined, -1, flockDrop, call.path);
    }
    const held = this.runningHeld;
    this.runningPath = this.runningHeld = undefined;
    if (held !== undefined) for (const f of held) f();
    return next;
  }

  /**
   * A final result on the wire: F_GETLK answers in full, everything else as its code (R_DONE), or
   * with the wait, the flock drop and whether the file went idle (the coordinator then drops its
   * journal) when there is one to tell (R_ENDED).
   */
  private reply(id: number, call: Call | null, res: number | PosixReply | undefined, waitedMs: number, flockDrop: boolean, path?: string): void {
    if (id < 0) {
      // A native request: answered to the kernel (or the synthetic source) from this thread.
      this.native?.answer(id, res);
      return;
    }
    if (this.nativeJournalCount > 0) this.flushNativeJournal();
    const b = this.out.buf;
    if (typeof res === 'object' && call !== null && call.op === 'lock' && call.cmd === F_GETLK) {
      b.push(R_GETLK, id, res.result, res.lockType, res.lockStart, res.lockLen, res.lockPid);
    } else {
      const code = typeof res === 'object' ? res.result : res === undefined ? null : res;
      const flags = (flockDrop ? END_FLOCK_DROP : 0) | (path !== undefined && this.table.fileState(path) === undefined ? END_IDLE : 0);
      if (waitedMs < 0 && flags === 0) b.push(R_DONE, id, code);
      else b.push(R_ENDED, id, code, waitedMs, flags);
      if (this.native !== undefined && path !== undefined) {
        if (flags & END_IDLE) this.journaled.delete(path);
        else this.journaled.add(path);
      }
    }
    this.out.added();
  }

  private waitEnded(id: number, result: unknown): void {
    const p = this.pendings.get(id);
    this.pendings.delete(id);
    this.inflight.delete(id);
    const waitedMs = p === undefined ? 0 : Date.now() - p.waiter.since;
    const send = (): void => this.reply(id, null, result as number | PosixReply, waitedMs, false, p?.path);
    if (p === undefined) send();
    else if (p.path === this.runningPath) (this.runningHeld ??= []).push(send);
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

  locks(path?: string) {
    return this.table.locks(path);
  }

  stats(): HostStats {
    const c = this.table.counts();
    return {
      index: this.init.index,
      files: c.files,
      actors: c.files,
      locks: c.locks,
      waiters: c.waiters,
      calls: this.calls,
      batches: this.batches,
      busyActors: this.mailboxes.size,
    };
  }

  /** Crash drill: the worker dies of an uncaught exception right after answering. */
  crash(): void {
    setImmediate(() => {
      throw new Error('locksmith crash drill');
    });
  }
}

/** The piscina task: host until the coordinator says stop. */
export default async function hostTask(init: HostInit): Promise<void> {
  const h = new ActorHost(init);
  await h.finished;
  // Let the last batch leave before the task (and with it the port) goes.
  await new Promise((r) => setImmediate(r));
  init.data.close();
  init.control.close();
  init.hooks.close();
}
