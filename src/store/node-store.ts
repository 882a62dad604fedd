/**
 * One node's LockStore over an Engine: its session (opened, renewed, replaced), its fence, its
 * inbox reader and the hooks that tell the actors. The engine makes steps atomic; this file makes
 * a node stop acting on a session the engine may already have let go (see "Sessions and fencing"
 * in ./index.ts).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_TIMER_MS } from '../long-timer.js';
import { isFence, recordFence } from './memory.js';
import { toEdge, toEngineStep, toRecord } from './step.js';
import type {
  CommitReply,
  EdgeInput,
  Engine,
  FileReach,
  FileState,
  InboxEvent,
  InboxReader,
  LockStore,
  Opened,
  ReapReply,
  ReassertReply,
  RecordInput,
  SessionEvent,
  SessionRef,
  SessionServes,
  SessionsRead,
  Step,
  StoreHooks,
  StoreStats,
} from './types.js';

export interface NodeStoreOptions {
  node: string;
  sessionTtlMs: number;
  renewEveryMs: number;
  fenceAfterMs: number;
  graceMs: number;
  /** Where this node's mount serves, recorded with each session it opens (a mount's; none for a program using the API). */
  serves?: SessionServes;
  /** The policy its coordinator decides with ('default', 'fifo'): refused at the start when another live node of the namespace recorded another (Engine.policy). */
  policy?: string;
  /** The node's monotonic clock in ms (default performance.now). */
  now?: () => number;
}

/** How long past its TTL with no renewal confirmed this node counts its session lost by itself (checkFence). */
const EXPIRY_MARGIN_MS = 250;

export class NodeStore implements LockStore {
  private ref: SessionRef | undefined;
  /** When the newest confirmed renewal (or the open) was sent, on the node's clock. */
  private lastAck = Number.NEGATIVE_INFINITY;
  /**
   * The engine's clock minus the node's, at least: the engine's time in the newest reply that
   * carried it, minus when that reply was received (it was read before). A step's deadline on
   * the node's clock is at least this much later on the engine's.
   */
  private offset = Number.NaN;
  /** When `offset` was last measured or aged (the node's clock). */
  private offsetAt = 0;
  private reportedFenced = false;
  /**
   * When this node's view of the grace period ends (its clock): measured from when the message
   * that gave the remaining time was sent, so it never ends after the engine's own (the engine
   * read that time later). A grant, which the engine allows only after its end, is never seen
   * while this node still says grace.
   */
  private graceUntil = 0;
  /**
   * The longest sessionTtlMs of the incarnation's sessions, as the engine last said (Opened and
   * Renewed.ttlMaxMs; it only grows within an incarnation). A node that creates the incarnation
   * anew after a loss gives it a grace period at least this long: a node with a longer TTL than
   * its own may stay unfenced, holding locks it has not put back yet, that long after the loss.
   * (A graceMs above 0 is raised to it; 0, a node alone or a test, stays 0.)
   */
  private ttlSeen = 0;
  private lastId = '0';
  /** Bumped when a new session moves the inbox position: reads issued before are stale. */
  private gen = 0;
  private counter = 0;
  private closed = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private replacing: Promise<void> | undefined;
  private reader: InboxReader | undefined;
  private loop: Promise<void> | undefined;
  private readonly now: () => number;
  /** Tells this NodeStore's sessions apart from another process's under the same node name. */
  private readonly instance = randomUUID();
  /** Another process took this node's name: no session from then on (replace). */
  private displaced = false;
  private readonly st: StoreStats = { roundTrips: 0, commits: 0, stale: 0, fencedLocally: 0, graceWaits: 0, fenceRefusals: 0, renewals: 0, failedRenewals: 0, sessions: 0 };

  private constructor(
    private readonly engine: Engine,
    private readonly o: NodeStoreOptions,
    private readonly hooks: StoreHooks,
    readonly kind: 'memory' | 'redis',
    private readonly ownsEngine: boolean,
  ) {
    this.now = o.now ?? (() => performance.now());
  }

  get node(): string {
    return this.o.node;
  }

  /** Opens the session, starts the inbox reader and the renewals. */
  static async start(engine: Engine, o: NodeStoreOptions, hooks: StoreHooks, kind: 'memory' | 'redis', ownsEngine: boolean): Promise<NodeStore> {
    const s = new NodeStore(engine, o, hooks, kind, ownsEngine);
    const sent = s.now();
    s.st.roundTrips++;
    // A name whose session is live belongs to another process, or to one that died less than a
    // TTL ago (a restart): waited for until that session expires, never taken from it (it may act
    // on its locks until its own fence). A name still renewed a TTL later is another live
    // process's: refused.
    let opened = await engine.open(o.node, o.sessionTtlMs, o.graceMs, s.instance, o.serves);
    let at = sent;
    const by = s.now() + o.sessionTtlMs + o.renewEveryMs;
    while ('taken' in opened) {
      if (s.now() >= by) {
        throw new Error(
          `locksmith store: node name '${o.node}' is in use on ${engine.name}: another process has renewed its session for ${o.sessionTtlMs + o.renewEveryMs} ms. Give each node its own name (store.node, --node).`,
        );
      }
      await sleep(Math.min(o.renewEveryMs, 100));
      at = s.now();
      s.st.roundTrips++;
      opened = await engine.open(o.node, o.sessionTtlMs, o.graceMs, s.instance, o.serves);
    }
    s.adopt(opened, at);
    if (o.policy !== undefined) {
      const ref: SessionRef = { node: opened.node, epoch: opened.epoch, incarnation: opened.incarnation };
      const other = await engine.policy(ref, o.policy);
      if (other !== undefined) {
        await engine.endSession(ref).catch(() => {});
        throw new Error(
          `locksmith store: the lock space on ${engine.name} is decided with policy '${other.policy}' by node '${other.node}', which is live; this node asks for '${o.policy}': every node of a namespace must use the same policy`,
        );
      }
    }
    s.reader = engine.inbox(o.node);
    s.loop = s.readLoop();
    return s;
  }

  // ---- session and fence -------------------------------------------------------------------------

  private emit(e: SessionEvent): void {
    try {
      this.hooks.onSession?.(e);
    } catch (err) {
      this.hooks.onError?.(err as Error);
    }
  }

  /** True from fenceAfterMs after the newest confirmed renewal was sent: the engine's TTL, counted from when it received that renewal, has not run out yet. */
  private fenced(): boolean {
    return this.ref === undefined || this.now() >= this.lastAck + this.o.fenceAfterMs;
  }

  /** Tells the hook how long this node may act on its session (see StoreHooks.onLease). */
  private lease(): void {
    const ref = this.ref;
    try {
      this.hooks.onLease?.(ref === undefined ? Number.NEGATIVE_INFINITY : this.lastAck + this.o.fenceAfterMs, ref?.epoch ?? 0, this.offset);
    } catch (err) {
      this.hooks.onError?.(err as Error);
    }
  }

  /**
   * A reply carrying the engine's time `engineNow` was just received. Each such reply bounds the
   * offset from below; the best bound is kept (a reply that arrived late gives a low one, which
   * would refuse steps as 'late' too early), aged by 1 ms per second for the clocks' drift.
   */
  private measured(engineNow: number): void {
    const now = this.now();
    const sample = engineNow - now;
    const aged = this.offset - (now - this.offsetAt) / 1000;
    this.offset = aged > sample ? aged : sample;
    this.offsetAt = now;
  }

  /**
   * The engine's ttlMaxMs counts only sessions opened in its incarnation: in a grace period (a new
   * incarnation, whose grace this node may have set from the last one's) the largest value seen
   * is kept, so a second loss before every node is back still gets the longest TTL; after it, the
   * engine's own (a lowered sessionTtlMs takes effect).
   */
  private seeTtl(ttlMaxMs: number, graceMs: number): void {
    this.ttlSeen = graceMs > 0 ? Math.max(this.ttlSeen, ttlMaxMs) : ttlMaxMs;
  }

  private adopt(o: Opened, sent: number): void {
    this.seeTtl(o.ttlMaxMs, o.graceMs);
    // A new session may be on another engine (a failover): its clock is measured afresh.
    this.offset = Number.NaN;
    this.measured(o.now);
    this.ref = { node: o.node, epoch: o.epoch, incarnation: o.incarnation };
    this.st.sessions++;
    this.lastAck = sent;
    this.lease();
    this.reportedFenced = false;
    this.gen++;
    this.lastId = o.inboxFrom;
    this.reader?.restart();
    this.setGrace(o.graceMs, sent);
    this.armFence();
    this.scheduleRenew(sent);
  }

  /** The grace period ends `ms` after `from` (when the message that said so was sent). */
  private setGrace(ms: number, from = this.now()): void {
    const was = this.graceUntil > this.now();
    this.graceUntil = ms > 0 ? from + ms : 0;
    clearTimeout(this.graceTimer);
    if (ms > 0) {
      const end = (): void => {
        if (this.closed || this.ref === undefined) return;
        // A timer can fire early by the event loop's cached time (by more than the 1 ms margin
        // on a loaded machine: the event came while session().grace still said true), or on a
        // step of a long period: re-armed.
        if (this.graceUntil > this.now()) {
          this.graceTimer = setTimeout(end, Math.min(MAX_TIMER_MS, this.graceUntil - this.now() + 1));
          this.graceTimer.unref();
          return;
        }
        this.emit({ kind: 'grace-ended', epoch: this.ref.epoch });
      };
      // A period past MAX_TIMER_MS (a TTL of weeks) is waited out in steps: setTimeout would take
      // the delay for 1 ms, warn, and come back every ms.
      this.graceTimer = setTimeout(end, Math.min(MAX_TIMER_MS, Math.max(0, this.graceUntil - this.now()) + 1));
      this.graceTimer.unref();
    } else if (was && this.ref !== undefined) {
      this.emit({ kind: 'grace-ended', epoch: this.ref.epoch });
    }
  }

  private armFence(): void {
    clearTimeout(this.fenceTimer);
    if (this.closed || this.ref === undefined) return;
    this.fenceTimer = setTimeout(() => this.checkFence(), Math.max(0, this.lastAck + this.o.fenceAfterMs - this.now()) + 1);
    this.fenceTimer.unref();
  }

  private checkFence(): void {
    if (this.closed || this.ref === undefined) return;
    if (!this.fenced()) {
      this.armFence();
      return;
    }
    if (!this.reportedFenced) {
      this.reportedFenced = true;
      this.emit({ kind: 'fenced', epoch: this.ref.epoch });
    }
    // sessionTtlMs after the last renewal the engine confirmed was sent, and none since: the
    // session has expired on the engine's clock (or went sooner, with the engine's data), whether
    // or not the engine answers now. It is lost from here, not from when the engine is back: this
    // node's waiters end and its locks count as lost within the TTL and a second (API.md), while
    // a new session is sought. The margin lets the engine's own expiry come first (Redis expires a
    // key up to ~100 ms late), so that a node merely stalled hears of it as before.
    const left = this.lastAck + this.o.sessionTtlMs + EXPIRY_MARGIN_MS - this.now();
    if (left <= 0) {
      void this.replace(this.ref, 'lost', true);
      return;
    }
    clearTimeout(this.fenceTimer);
    this.fenceTimer = setTimeout(() => this.checkFence(), left + 1);
    this.fenceTimer.unref();
  }

  private confirm(sent: number): void {
    if (sent <= this.lastAck) return;
    this.lastAck = sent;
    this.lease();
    this.armFence();
    if (this.reportedFenced && !this.fenced()) {
      this.reportedFenced = false;
      this.emit({ kind: 'unfenced', epoch: this.ref!.epoch });
    }
  }

  private scheduleRenew(from: number): void {
    clearTimeout(this.renewTimer);
    if (this.closed) return;
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(0, from + this.o.renewEveryMs - this.now()));
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    const ref = this.ref;
    if (this.closed || ref === undefined) return;
    const sent = this.now();
    this.st.roundTrips++;
    this.st.renewals++;
    let r: Awaited<ReturnType<Engine['renew']>> | undefined;
    try {
      r = await this.engine.renew(ref, this.o.sessionTtlMs, this.lastId);
    } catch (e) {
      this.st.failedRenewals++;
      this.hooks.onError?.(e as Error);
    }
    if (this.closed || ref !== this.ref) return;
    if (r?.kind === 'expired') return this.replace(ref, 'lost');
    if (r?.kind === 'reset') return this.replace(ref, 'reset');
    if (r?.kind === 'ok') {
      this.measured(r.now);
      this.seeTtl(r.ttlMaxMs, r.graceMs);
      this.confirm(sent);
      if (r.graceMs === 0 && this.graceUntil > this.now()) this.setGrace(0);
      if (r.reap) {
        try {
          this.hooks.onReapDue?.();
        } catch (err) {
          this.hooks.onError?.(err as Error);
        }
      }
    }
    this.scheduleRenew(sent);
  }

  /**
   * The engine no longer has session `ref` ('lost'), or lost its data ('reset'): open a new
   * session. Its records may be re-asserted only when the node was not fenced when it learned of
   * the reset: then its session was alive when the engine lost it, and nothing it held can have
   * been given to another node.
   */
  private replace(ref: SessionRef, kind: 'lost' | 'reset', expired = false): Promise<void> {
    if (ref !== this.ref || this.displaced) return this.replacing ?? Promise.resolve();
    const reassert = kind === 'reset' && !this.fenced();
    if (!this.reportedFenced) {
      this.reportedFenced = true;
      this.emit({ kind: 'fenced', epoch: ref.epoch });
    }
    if (expired) this.emit({ kind: 'expired', epoch: ref.epoch });
    this.ref = undefined;
    this.lease();
    clearTimeout(this.renewTimer);
    clearTimeout(this.fenceTimer);
    this.replacing = (async () => {
      let backoff = 25;
      while (!this.closed) {
        const sent = this.now();
        this.st.roundTrips++;
        try {
          // graceMs 0 (a node alone, or a test) stays 0.
          const grace = this.o.graceMs > 0 ? Math.max(this.o.graceMs, this.ttlSeen) : 0;
          const o = await this.engine.open(this.o.node, this.o.sessionTtlMs, grace, this.instance, this.o.serves);
          if (this.closed) return;
          if ('taken' in o) {
            // Another process opened a session under this node's name after this one's expired:
            // taking it back would end that one's session, and it would take it back in turn
            // (each losing its locks every few hundred ms). This one stays without a session: its
            // lock requests get the family's generic code, and the application hears of it
            // (SharedSpace).
            this.displaced = true;
            this.emit({ kind: 'displaced', lost: ref.epoch, epoch: 0 });
            return;
          }
          this.adopt(o, sent);
          if (reassert) this.emit({ kind: 'reset', lost: ref.epoch, epoch: o.epoch, graceMs: o.graceMs });
          else this.emit({ kind: 'lost', lost: ref.epoch, epoch: o.epoch });
          return;
        } catch (e) {
          this.hooks.onError?.(e as Error);
          await sleep(backoff);
          backoff = Math.min(backoff * 2, this.o.renewEveryMs);
        }
      }
    })().finally(() => {
      this.replacing = undefined;
    });
    return this.replacing;
  }

  // ---- the inbox ---------------------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      const gen = this.gen;
      let evs: InboxEvent[];
      try {
        evs = await this.reader!.read(this.lastId);
      } catch (e) {
        this.hooks.onError?.(e as Error);
        await sleep(100);
        continue;
      }
      if (gen !== this.gen || this.closed) continue;
      const mine: InboxEvent[] = [];
      for (const e of evs) {
        this.lastId = e.id;
        if (e.kind !== 'open' && this.ref !== undefined && e.epoch === this.ref.epoch) mine.push(e);
      }
      if (mine.length > 0) {
        try {
          this.hooks.onEvents?.(mine);
        } catch (err) {
          this.hooks.onError?.(err as Error);
        }
      }
    }
  }

  // ---- LockStore ---------------------------------------------------------------------------------

  /** Renews now (a worker's commit found the session gone): a lost session is replaced at once. */
  nudge(): void {
    if (this.closed || this.ref === undefined) return;
    clearTimeout(this.renewTimer);
    void this.renew();
  }

  session(): { epoch: number; fenced: boolean; grace: boolean; incarnation: string } {
    return { epoch: this.ref?.epoch ?? 0, fenced: this.fenced(), grace: this.graceUntil > this.now(), incarnation: this.ref?.incarnation ?? '' };
  }

  stats(): StoreStats {
    return { ...this.st };
  }

  newId(): string {
    return `${this.o.node}.${this.ref?.epoch ?? 0}.${(++this.counter).toString(36)}`;
  }

  private open(): void {
    if (this.closed) throw new Error('locksmith store: closed');
  }

  async load(file: string): Promise<FileState> {
    this.open();
    if (typeof file !== 'string') throw new TypeError('file must be a string');
    this.st.roundTrips++;
    return this.engine.load(file);
  }

  async commit(step: Step): Promise<CommitReply> {
    this.open();
    const ref = this.ref;
    // The node's clock is performance.now() of this thread (as for the lease).
    const st = toEngineStep(step, this.o.node, ref?.epoch ?? 0, typeof step?.id === 'string' && step.id !== '' ? step.id : this.newId(), this.offset - performance.timeOrigin);
    if (ref === undefined || this.fenced()) {
      this.st.fencedLocally++;
      this.checkFence();
      return { ok: false, reason: 'fenced' };
    }
    this.st.roundTrips++;
    this.st.commits++;
    const r = await this.engine.commit(ref, st);
    if (!r.ok) {
      if (r.reason === 'stale') this.st.stale++;
      else if (r.reason === 'grace') this.st.graceWaits++;
      else if (r.reason === 'fence') this.st.fenceRefusals++;
      else if (r.reason === 'fenced') void this.replace(ref, 'lost');
      else if (r.reason === 'reset') void this.replace(ref, 'reset');
    }
    return r;
  }

  async reassert(file: string, records: readonly RecordInput[], edges: readonly EdgeInput[] = []): Promise<ReassertReply> {
    this.open();
    if (typeof file !== 'string') throw new TypeError('file must be a string');
    const ref = this.ref;
    const recs = records.map((r, i) => {
      if (r?.node !== undefined && r.node !== this.o.node) throw new TypeError(`records[${i}] belongs to ${r.node}: a node re-asserts its own records only`);
      const rec = toRecord({ ...r, epoch: undefined }, this.o.node, ref?.epoch ?? 0, `records[${i}]`);
      // The file's last fence becomes the highest its records hold: one that is no safe integer
      // would refuse every later grant of the file (no number above it is one: Step.fence).
      const f = recordFence(rec.data);
      if (f !== undefined && !isFence(f)) throw new TypeError(`records[${i}].data: its fence "f" must be a safe integer > 0, got ${f}`);
      return rec;
    });
    const es = edges.map((e, i) => toEdge(e, `edges[${i}]`));
    if (ref === undefined || this.fenced()) return { ok: false, reason: 'fenced' };
    this.st.roundTrips++;
    const r = await this.engine.reassert(ref, file, this.newId(), recs, es);
    if (!r.ok && r.reason === 'reset') void this.replace(ref, 'reset');
    return r;
  }

  async reap(limit = 256): Promise<ReapReply> {
    this.open();
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`limit must be a positive integer, got ${String(limit)}`);
    this.st.roundTrips++;
    return this.engine.reap(limit);
  }

  async closesCycle(owner: string, targets: readonly string[], hardOnly: boolean): Promise<boolean> {
    this.open();
    this.st.roundTrips++;
    return this.engine.closesCycle(owner, targets, hardOnly);
  }

  async reaches(pairs: readonly (readonly [string, string])[], hardOnly: boolean): Promise<boolean[]> {
    this.open();
    this.st.roundTrips++;
    return this.engine.reaches(pairs, hardOnly);
  }

  async fileReach(file: string, pairs: readonly (readonly [string, string])[]): Promise<FileReach> {
    this.open();
    this.st.roundTrips++;
    return this.engine.fileReach(file, pairs);
  }

  async files(): Promise<string[]> {
    this.open();
    this.st.roundTrips++;
    return this.engine.files();
  }

  /** The engine's session registry and clock (Engine.sessions): read-only. */
  async sessions(): Promise<SessionsRead> {
    this.open();
    this.st.roundTrips++;
    return this.engine.sessions();
  }

  /** Test support: the inbox reader (the Redis one can name its connection). */
  inboxReader(): InboxReader | undefined {
    return this.reader;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.fenceTimer);
    clearTimeout(this.graceTimer);
    this.reader?.close();
    const ref = this.ref;
    this.ref = undefined;
    try {
      if (ref !== undefined) await this.engine.endSession(ref);
    } catch (e) {
      this.hooks.onError?.(e as Error);
    }
    await this.loop;
    await this.replacing;
    if (this.ownsEngine) await this.engine.shutdown();
  }
}
