/**
 * The oracle: an independent checker of a lock log. It shares no code with the lock tables
 * (nothing from src/): it restates the rules from the documents (API.md "Both", SEMANTICS-WINDOWS.md
 * §2 and §4, SEMANTICS-POSIX.md §3) for the operations the workloads generate.
 *
 * Time. Every event carries a stamp `t` (ns on CLOCK_MONOTONIC, shared by every process of a run),
 * and events are fed in stamp order. Clients stamp a grant after they learn of it and a release
 * before they issue the call that ends it, so an observed holding interval lies inside the true
 * one: two conflicting observed intervals that overlap prove that two conflicting locks were
 * really held at once. Equal stamps are taken as release-first (never a false alarm).
 *
 * Rules modelled (ranges inclusive; a zero-length Windows lock at X is [X, X-1], so the plain
 * overlap test says it overlaps [a, b] iff a < X <= b, and (0, 0) overlaps nothing):
 * - flock locks see only flock locks; Windows, classic POSIX and OFD locks share the byte-range space;
 * - different owners conflict on overlap when either side writes (exclusive ~ write, shared ~ read);
 * - an owner never conflicts with itself, except that a Windows exclusive lock conflicts with every
 *   overlapping lock of its own owner (a shared lock may stack on an exclusive one). Clients run
 *   their operations one after another, so for one owner the log order is the grant order.
 *
 * Checks:
 * - conflict: a grant whose lock conflicts with a lock observed held at that moment;
 * - unanswered: a request with no reply by the end of the log;
 * - getlk-free: F_GETLK said "no conflict" while a conflicting lock was observed held over the
 *   whole request; getlk-phantom: F_GETLK named a lock no one could have held then;
 * - false-deadlock: EDEADLK where the wait-for graph of everything that could have been waiting
 *   or held during the request has no cycle through the requester;
 * - undetected-deadlock: a cycle of waits that were certainly blocked (request outstanding,
 *   blocking lock observed held) persisted longer than the tolerance;
 * - bad-reply: an answer the request cannot have. A Windows call answers a Win32 code (>= 0), a
 *   POSIX one 0 or -errno. F_GETLK, closes and unlocks succeed, except that an UnlockFileEx of a
 *   record the owner was not known to hold is refused (ERROR_NOT_LOCKED); a lock request is
 *   granted or refused as busy, and only a blocking one may end with EDEADLK or be interrupted; no
 *   answer is another error;
 * - stuck-waiter: a blocking lock request outstanding for longer than the tolerance
 *   (stuckTolerance) with nothing visible that could explain its wait: no conflicting lock
 *   observed held; nothing the log says may still be listed (a lock whose release is not answered
 *   yet, or is answered less than its `listedFor` ago, or one revoked, maybe held, abandoned or
 *   released without a session, until its `until` or `listedUntil`); no earlier conflicting lock request of another owner it may queue behind
 *   (Windows 'fifo' queues; leniently, any such request while it is outstanding, waiting or not,
 *   since it may have been granted unbeknown to its client, and an earlier wait until its
 *   answer); and no window in which the lock manager may withhold grants from it (withhold). A
 *   wait is explained at a moment when one of those covers it; it is stuck when the time since the
 *   latest such moment (or since its start) passes the tolerance. Observed holding intervals lie
 *   inside the true ones, so a waiter is really blocked a little before an observed grant (the
 *   grant travels back to its client) and a little after an observed release (the release reaches
 *   the lock manager, which then wakes the waiter; a later request granted first is learned late
 *   the same way): the tolerance (seconds; default 5 s) covers that lag. Waits are judged at their
 *   answer, at the end of the log, and every quarter tolerance in between; a wait is looked at
 *   again only once its last known explanation is a tolerance old, so the work stays about linear
 *   in the log. A wait without an answer at the end is unanswered as well.
 *
 * Lost locks (a shared lock space, the nodes target: driver/targets/nodes.ts). A node that stops
 * renewing its session loses its locks, and its clients must stop counting on them. Three events
 * say what the log cannot show by itself:
 * - revoke: from its stamp on, the lock no longer counts as held by its client (its node's
 *   session was lost, or the node died); the lock manager may still list it until `until` (it
 *   reaps the records of a dead session a while later), so F_GETLK may still name it until then;
 * - maybe: a lock its client learned of while its node had lost its session: it may be held or
 *   not, so it never counts as held, but F_GETLK may name it until `until`;
 * - abandon: the requester died; its request will get no reply and is not unanswered, but the lock
 *   manager may have granted it, so F_GETLK may name what it asked for until `until` (and a wait
 *   of it may close a wait-for cycle until then, for EDEADLK); and a lock
 *   it was releasing may never have been released (the request may not have reached the engine):
 *   listed until `until` too, when the dead session's records are reaped;
 * - a reply marked `lost` was given while its node had lost its session or was cut off from the
 *   engine: besides every answer the request may have, it may be the family's generic code
 *   (ERROR_LOCK_VIOLATION 33 for Windows calls, -ENOLCK for POSIX ones), as API.md says, and an
 *   UnlockFileEx may find that its record went with the session (ERROR_NOT_LOCKED). Such a reply
 *   may carry `listedUntil`: the locks it released went with the session, whose records stay
 *   listed until they are reaped, so F_GETLK may name them (and EDEADLK count them) until then.
 * - a release with `listedFor` (ns): the lock stops counting as held at the release, as every
 *   released lock, but the lock manager may drop it up to `listedFor` after its request's reply
 *   (a close through a FUSE mount of a descriptor holding OFD or flock locks: the kernel sends
 *   RELEASE in the background, close(2) does not wait for it): F_GETLK may name it, EDEADLK count
 *   it and a wait be blocked by it until then.
 * - withhold: from its stamp until `until`, the lock manager may withhold grants from the requests
 *   of owners whose key starts with `scope` (every request without one): a node without a healthy
 *   session, an engine's grace period after a reset. A later withhold with the same `key` while
 *   its window is open sets a new `until` (a window whose end was not known when it opened). It
 *   only excuses waits (stuck-waiter); no other check reads it.
 *
 * snapshotConflicts() judges a listing taken at one moment (locks()), where grant order is unknown.
 */

export type LockKind = 'windows' | 'posix' | 'ofd' | 'flock';

/** The families' generic codes (API.md): what a node without a session answers. */
const ERROR_LOCK_VIOLATION = 33;
const ENOLCK = 37;

/** What a request or a held lock covers, and whose it is. */
export interface Claim {
  file: string;
  /** Owner key: one string per lock owner (a process, an open file description, a handle). */
  owner: string;
  kind: LockKind;
  write: boolean;
  start: number;
  /** Inclusive; Infinity for "to OFFSET_MAX" and flock. */
  end: number;
  /** The pids an F_GETLK may report for this owner. */
  pids: readonly number[];
}

export interface RequestRecord extends Claim {
  id: number;
  client: number;
  what: 'lock' | 'getlk' | 'unlock' | 'close';
  /** A blocking request (F_SETLKW, flock without LOCK_NB, waiting LockFileEx). */
  wait: boolean;
  /** The call as a person would write it, for traces. */
  text: string;
}

export interface LockRecord extends Claim {
  id: number;
  /** The request whose reply the client learned the lock from. */
  req: number;
}

export type Outcome = 'ok' | 'busy' | 'deadlock' | 'interrupted' | 'error';

export type GetlkAnswer = { free: true } | { free: false; write: boolean; start: number; end: number; pid: number };

export type LogEvent =
  | { t: number; ev: 'request'; req: RequestRecord }
  | { t: number; ev: 'reply'; req: number; result: number; outcome: Outcome; answer?: GetlkAnswer; lost?: boolean; listedUntil?: number }
  | { t: number; ev: 'grant'; lock: LockRecord }
  | { t: number; ev: 'release'; lock: number; req: number; listedFor?: number }
  | { t: number; ev: 'revoke'; lock: number; until: number }
  | { t: number; ev: 'maybe'; lock: LockRecord; until: number }
  | { t: number; ev: 'abandon'; req: number; until: number }
  | { t: number; ev: 'withhold'; key: string; until: number; scope?: string };

export type ViolationKind = 'conflict' | 'unanswered' | 'getlk-free' | 'getlk-phantom' | 'false-deadlock' | 'undetected-deadlock' | 'bad-reply' | 'stuck-waiter';

export interface Violation {
  kind: ViolationKind;
  message: string;
  /** The shortest run of log events that shows it, in stamp order. */
  trace: LogEvent[];
}

export interface OracleOptions {
  /** Lock kinds with deadlock detection (API: 'posix'; over FUSE every byte-range owner is one). */
  deadlockKinds: readonly LockKind[];
  /** How long a certain cycle of waits may last before it counts as undetected, in stamp units (ns). */
  cycleTolerance: number;
  /**
   * How long a blocking request may wait with nothing visible explaining its wait before it counts
   * as stuck, in stamp units (ns); default 5 s. It covers the lag between a true release and the
   * waiter learning of its grant, so it must be generous on a loaded machine.
   */
  stuckTolerance?: number;
  /** Traces kept per violation kind (all are counted). */
  keepTraces?: number;
}

export interface OracleSummary {
  events: number;
  requests: number;
  grants: number;
  maxHeld: number;
  deadlocks: number;
  getlks: number;
  violations: number;
  byKind: Partial<Record<ViolationKind, number>>;
  examples: Violation[];
}

/** Do the two claims conflict, `b` being the later one (its owner's log order is grant order)? */
export function conflicts(a: Claim, b: Claim): boolean {
  if ((a.kind === 'flock') !== (b.kind === 'flock')) return false;
  if (!(a.start <= b.end && b.start <= a.end)) return false;
  if (a.owner === b.owner) return a.kind === 'windows' && b.kind === 'windows' && b.write;
  return a.write || b.write;
}

/**
 * Every pair among locks listed as held at one moment that could not be held together whichever
 * was granted first (a shared Windows lock may stack on its owner's exclusive one, so only two
 * exclusive ones of one owner clash). Claims of different files never meet. Empty for a sound listing.
 */
export function snapshotConflicts(held: readonly Claim[]): [Claim, Claim][] {
  const byFile = new Map<string, Claim[]>();
  for (const c of held) {
    let list = byFile.get(c.file);
    if (list === undefined) byFile.set(c.file, (list = []));
    list.push(c);
  }
  const out: [Claim, Claim][] = [];
  for (const list of byFile.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (conflicts(a, b) && conflicts(b, a)) out.push([a, b]);
      }
    }
  }
  return out;
}

// ---- a range index over held locks ---------------------------------------------------------------

const BUCKET_BITS = 8;
const WIDE_BUCKETS = 64;

interface Held {
  lock: LockRecord;
  grant: LogEvent;
  request: LogEvent | undefined;
  /** Earliest moment it could have been held: its request's start. */
  from: number;
  mark: number;
}

/** Held locks of one file and space, bucketed by 256-byte block; wide ones kept apart. */
class RangeIndex {
  private readonly buckets = new Map<number, Set<Held>>();
  private readonly wide = new Set<Held>();
  readonly all = new Set<Held>();
  private gen = 0;

  private static span(start: number, end: number): [number, number] | undefined {
    const lo = Math.floor(start / 2 ** BUCKET_BITS);
    const hi = Math.floor(Math.max(start, end) / 2 ** BUCKET_BITS);
    return hi - lo > WIDE_BUCKETS || !Number.isFinite(hi) ? undefined : [lo, hi];
  }

  add(h: Held): void {
    this.all.add(h);
    const s = RangeIndex.span(h.lock.start, h.lock.end);
    if (s === undefined) return void this.wide.add(h);
    for (let b = s[0]; b <= s[1]; b++) {
      let set = this.buckets.get(b);
      if (set === undefined) this.buckets.set(b, (set = new Set()));
      set.add(h);
    }
  }

  remove(h: Held): void {
    this.all.delete(h);
    const s = RangeIndex.span(h.lock.start, h.lock.end);
    if (s === undefined) return void this.wide.delete(h);
    for (let b = s[0]; b <= s[1]; b++) {
      const set = this.buckets.get(b)!;
      set.delete(h);
      if (set.size === 0) this.buckets.delete(b);
    }
  }

  /** Every held lock that may overlap [start, end] (each once); callers test exactly. */
  *near(start: number, end: number): Generator<Held> {
    const s = RangeIndex.span(start, end);
    if (s === undefined) return yield* this.all;
    const gen = ++this.gen;
    yield* this.wide;
    for (let b = s[0]; b <= s[1]; b++) {
      const set = this.buckets.get(b);
      if (set === undefined) continue;
      for (const h of set) {
        if (h.mark === gen) continue;
        h.mark = gen;
        yield h;
      }
    }
  }
}

interface FileState {
  range: RangeIndex;
  flock: RangeIndex;
  /** Locks released lately: they could still have been held until their release request ended. */
  recent: Recent[];
  /** Prune `recent` when it grows to this (doubling keeps pruning linear overall). */
  pruneAt: number;
  /** Blocking lock requests ended lately: a later conflicting wait may have queued behind them until `until`. */
  ended: { p: Pending; until: number; end: LogEvent }[];
  endedPruneAt: number;
}

/** An entry of FileState.recent: a lock no longer counted as held, possibly still listed until `until`. */
interface Recent {
  held: Held;
  releaseReq: number;
  until: number;
  /** How long after its release request's reply it may still be listed (release.listedFor). */
  listedFor?: number;
  /** The event that ended its holding (release, revoke, maybe, abandon), for traces. */
  end?: LogEvent;
}

interface Pending {
  req: RequestRecord;
  event: LogEvent;
  t: number;
  /** For a wait: the latest moment it is known to have been explained (stuck-waiter). */
  seen: number;
  /** What explained it then, for traces. */
  why?: LogEvent[];
  stuck?: boolean;
}

interface Window {
  key: string;
  scope: string;
  from: number;
  until: number;
  event: LogEvent;
}

// ---- the oracle ------------------------------------------------------------------------------------

export class Oracle {
  private readonly files = new Map<string, FileState>();
  private readonly held = new Map<number, Held>();
  private readonly pending = new Map<number, Pending>();
  /** Released locks waiting for their release request's reply (lock id -> entry in recent). */
  private readonly releasing = new Map<number, FileState['recent'][number][]>();
  /** Blocking requests that ended lately: they could still have been waiting during a newer request. */
  private endedWaits: { p: Pending; until: number }[] = [];
  private endedWaitsPruneAt = 1024;
  private readonly found: Violation[] = [];
  private readonly counts: Partial<Record<ViolationKind, number>> = {};
  private readonly stats = { events: 0, requests: 0, grants: 0, maxHeld: 0, deadlocks: 0, getlks: 0 };
  private readonly dk: ReadonlySet<LockKind>;
  private readonly tolerance: number;
  private readonly stuckTolerance: number;
  private lastCycleCheck = -Infinity;
  private lastStuckCheck = -Infinity;
  /** Withhold windows (few: one per node's unhealthy spell), and the open one of each key. */
  private windows: Window[] = [];
  private readonly openWindow = new Map<string, Window>();
  private lastT = -Infinity;
  private readonly reported = new Set<string>();

  constructor(private readonly o: OracleOptions) {
    this.dk = new Set(o.deadlockKinds);
    this.tolerance = o.cycleTolerance;
    this.stuckTolerance = o.stuckTolerance ?? 5e9;
    if (!(this.stuckTolerance > 0)) throw new TypeError(`oracle: stuckTolerance must be a positive number of ns, got ${o.stuckTolerance}`);
  }

  /** Checks a whole log (sorted by stamp first; the sort is stable). */
  static check(log: readonly LogEvent[], o: OracleOptions): OracleSummary {
    const oracle = new Oracle(o);
    const sorted = [...log].sort((a, b) => a.t - b.t);
    for (const e of sorted) oracle.feed(e);
    // The last stamp, not Math.max(...stamps): a stress run's log (100k events and more) would
    // overflow the call's arguments (RangeError).
    return oracle.finish(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!.t);
  }

  feed(e: LogEvent): void {
    if (e.t < this.lastT) throw new Error(`oracle: events out of order (${e.t} after ${this.lastT})`);
    this.lastT = e.t;
    this.stats.events++;
    if (e.t - this.lastCycleCheck >= this.tolerance / 4) this.checkCycles(e.t);
    if (e.t - this.lastStuckCheck >= this.stuckTolerance / 4) this.checkStuck(e.t);
    switch (e.ev) {
      case 'request':
        this.stats.requests++;
        this.pending.set(e.req.id, { req: e.req, event: e, t: e.t, seen: e.t });
        return;
      case 'grant':
        this.onGrant(e, e.lock);
        return;
      case 'release':
        this.onRelease(e);
        return;
      case 'reply':
        this.onReply(e);
        return;
      case 'revoke':
        this.onRevoke(e);
        return;
      case 'abandon':
        this.onAbandon(e);
        return;
      case 'maybe': {
        const f = this.file(e.lock.file);
        f.recent.push({ held: { lock: e.lock, grant: e, request: this.pending.get(e.lock.req)?.event, from: e.t, mark: 0 }, releaseReq: -1, until: e.until, end: e });
        if (f.recent.length >= f.pruneAt) this.prune(f);
        return;
      }
      case 'withhold':
        this.onWithhold(e);
        return;
    }
  }

  /** Ends the log at `t`: every request still pending is unanswered; cycles still present are judged. */
  finish(t: number): OracleSummary {
    this.checkCycles(Math.max(t, this.lastT));
    this.checkStuck(Math.max(t, this.lastT));
    for (const p of this.pending.values()) {
      this.flag('unanswered', `request ${p.req.id} of client ${p.req.client} (${p.req.text}) never got a reply`, [p.event]);
    }
    this.pending.clear();
    return this.summary();
  }

  summary(): OracleSummary {
    const violations = Object.values(this.counts).reduce((a, b) => a + (b ?? 0), 0);
    return { ...this.stats, violations, byKind: { ...this.counts }, examples: [...this.found] };
  }

  private file(name: string): FileState {
    let f = this.files.get(name);
    if (f === undefined) this.files.set(name, (f = { range: new RangeIndex(), flock: new RangeIndex(), recent: [], pruneAt: 512, ended: [], endedPruneAt: 512 }));
    return f;
  }

  private index(c: Claim): RangeIndex {
    const f = this.file(c.file);
    return c.kind === 'flock' ? f.flock : f.range;
  }

  private flag(kind: ViolationKind, message: string, trace: LogEvent[]): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    if (this.found.filter((v) => v.kind === kind).length < (this.o.keepTraces ?? 3)) {
      this.found.push({ kind, message, trace: [...trace].sort((a, b) => a.t - b.t) });
    }
  }

  private onGrant(e: LogEvent, lock: LockRecord): void {
    this.stats.grants++;
    const idx = this.index(lock);
    for (const h of idx.near(lock.start, lock.end)) {
      if (!conflicts(h.lock, lock)) continue;
      this.flag(
        'conflict',
        `${show(lock)} was granted to client ${this.clientOf(lock.req)} while ${show(h.lock)} was held`,
        [h.request, h.grant, this.pending.get(lock.req)?.event, e].filter((x): x is LogEvent => x !== undefined),
      );
      break;
    }
    const p = this.pending.get(lock.req);
    const h: Held = { lock, grant: e, request: p?.event, from: p?.t ?? e.t, mark: 0 };
    idx.add(h);
    this.held.set(lock.id, h);
    if (this.held.size > this.stats.maxHeld) this.stats.maxHeld = this.held.size;
  }

  private clientOf(req: number): string {
    const p = this.pending.get(req);
    return p === undefined ? '?' : String(p.req.client);
  }

  private onRelease(e: Extract<LogEvent, { ev: 'release' }>): void {
    const h = this.held.get(e.lock);
    if (h === undefined) return;
    this.held.delete(e.lock);
    this.index(h.lock).remove(h);
    const f = this.file(h.lock.file);
    const entry: Recent = { held: h, releaseReq: e.req, until: Infinity, end: e, ...(e.listedFor === undefined ? {} : { listedFor: e.listedFor }) };
    f.recent.push(entry);
    let list = this.releasing.get(e.req);
    if (list === undefined) this.releasing.set(e.req, (list = []));
    list.push(entry);
    if (f.recent.length >= f.pruneAt) this.prune(f);
  }

  /** A lock its client lost (see the file comment): no longer held, possibly listed until `until`. */
  private onRevoke(e: Extract<LogEvent, { ev: 'revoke' }>): void {
    const h = this.held.get(e.lock);
    if (h === undefined) return;
    this.held.delete(e.lock);
    this.index(h.lock).remove(h);
    const f = this.file(h.lock.file);
    f.recent.push({ held: h, releaseReq: -1, until: e.until, end: e });
    if (f.recent.length >= f.pruneAt) this.prune(f);
  }

  /** The requester died: its request leaves without a reply; locks it was releasing may be listed until `until`. */
  private onAbandon(e: Extract<LogEvent, { ev: 'abandon' }>): void {
    const p = this.pending.get(e.req);
    if (p === undefined) return;
    for (const r of this.releasing.get(e.req) ?? []) r.until = Math.max(e.t, e.until);
    this.releasing.delete(e.req);
    this.pending.delete(e.req);
    // Its waiter record (and its wait-for edges) may stay in the lock manager until the dead
    // session is reaped: a cycle through it may be reported until then.
    if (p.req.wait && p.req.what === 'lock' && this.dk.has(p.req.kind)) this.endedWaits.push({ p, until: Math.max(e.t, e.until) });
    if (p.req.what === 'lock') {
      const f = this.file(p.req.file);
      const lock: LockRecord = { ...p.req, id: -p.req.id, req: p.req.id };
      f.recent.push({ held: { lock, grant: e, request: p.event, from: p.t, mark: 0 }, releaseReq: -1, until: e.until, end: e });
      if (f.recent.length >= f.pruneAt) this.prune(f);
    }
  }

  /** Oldest start among pending requests that may still look back (F_GETLK and blocking ones). */
  private horizon(): number {
    let h = Infinity;
    for (const p of this.pending.values()) if ((p.req.what === 'getlk' || p.req.wait) && p.t < h) h = p.t;
    return h;
  }

  private prune(f: FileState): void {
    const h = this.horizon();
    f.recent = f.recent.filter((r) => r.until >= h);
    f.pruneAt = Math.max(512, 2 * f.recent.length);
  }

  private pruneEnded(f: FileState): void {
    const h = this.horizon();
    f.ended = f.ended.filter((x) => x.until >= h);
    f.endedPruneAt = Math.max(512, 2 * f.ended.length);
  }

  private onReply(e: Extract<LogEvent, { ev: 'reply' }>): void {
    const p = this.pending.get(e.req);
    if (p === undefined) return;
    const released = this.releasing.get(e.req) ?? [];
    for (const r of released) r.until = Math.max(e.t, e.listedUntil ?? e.t, e.t + (r.listedFor ?? 0));
    this.releasing.delete(e.req);
    this.checkReply(p, e, released.length > 0);
    if (p.req.what === 'getlk' && e.answer !== undefined) {
      this.stats.getlks++;
      this.checkGetlk(p, e, e.answer);
    }
    if (e.outcome === 'deadlock') {
      this.stats.deadlocks++;
      this.checkDeadlock(p, e);
    }
    if (p.req.wait && p.req.what === 'lock') {
      this.judgeWait(p, e.t, e);
      const f = this.file(p.req.file);
      f.ended.push({ p, until: e.t, end: e });
      if (f.ended.length >= f.endedPruneAt) this.pruneEnded(f);
    }
    this.pending.delete(e.req);
    if (p.req.wait && p.req.what === 'lock' && this.dk.has(p.req.kind)) {
      // A wait answered while its node had lost its session may stay listed until it is reaped.
      this.endedWaits.push({ p, until: e.listedUntil === undefined ? e.t : Math.max(e.t, e.listedUntil) });
      if (this.endedWaits.length >= this.endedWaitsPruneAt) {
        const h = this.horizon();
        this.endedWaits = this.endedWaits.filter((w) => w.until >= h);
        this.endedWaitsPruneAt = Math.max(1024, 2 * this.endedWaits.length);
      }
    }
  }

  /** Is the answer one the request can have? `released`: the request ended locks the owner was known to hold. */
  private checkReply(p: Pending, e: Extract<LogEvent, { ev: 'reply' }>, released: boolean): void {
    const q = p.req;
    let ok: boolean;
    if (e.lost === true && e.result === (q.kind === 'windows' ? ERROR_LOCK_VIOLATION : -ENOLCK)) {
      ok = true;
    } else if (q.kind === 'windows' ? e.result < 0 : e.result > 0) {
      ok = false;
    } else if (q.what === 'lock') {
      ok = e.outcome === 'ok' || e.outcome === 'busy' || ((e.outcome === 'deadlock' || e.outcome === 'interrupted') && q.wait);
    } else if (q.what === 'unlock' && q.kind === 'windows' && (!released || e.lost === true)) {
      ok = e.outcome === 'ok' || e.outcome === 'error';
    } else {
      ok = e.outcome === 'ok';
    }
    if (!ok) this.flag('bad-reply', `${q.text} by client ${q.client} was answered ${e.result} (${e.outcome}), which it cannot be`, [p.event, e]);
  }

  private checkGetlk(p: Pending, e: LogEvent, a: GetlkAnswer): void {
    const q = p.req;
    if (a.free) {
      for (const h of this.index(q).near(q.start, q.end)) {
        if (h.grant.t <= p.t && conflicts(h.lock, q)) {
          this.flag('getlk-free', `F_GETLK ${q.text} answered "no conflict" while ${show(h.lock)} was held throughout`, [
            ...(h.request ? [h.request] : []),
            h.grant,
            p.event,
            e,
          ]);
          return;
        }
      }
      return;
    }
    const named = (c: Claim) =>
      c.owner !== q.owner && c.kind !== 'flock' && c.write === a.write && conflicts(c, q) && c.start <= a.end && a.start <= c.end && c.pids.includes(a.pid);
    const candidates = this.possiblyHeld(q.file, p.t, q.id);
    if (candidates.some(named)) return;
    const near = candidates.filter((c) => c.owner !== q.owner && c.start <= a.end && a.start <= c.end).map((c) => `${show(c)} (pid ${c.pids.join('|')})`);
    this.flag(
      'getlk-phantom',
      `F_GETLK ${q.text} named ${a.write ? 'a write' : 'a read'} lock [${a.start}, ${a.end}] pid ${a.pid} that no one could have held` +
        (near.length > 0 ? `; overlapping it then: ${near.slice(0, 4).join('; ')}` : ''),
      [p.event, e],
    );
  }

  /** Every lock that could have been held on `file` at some moment after `since` (byte-range space). */
  private possiblyHeld(file: string, since: number, except: number): Claim[] {
    const f = this.file(file);
    const out: Claim[] = [];
    for (const h of f.range.all) out.push(h.lock);
    for (const r of f.recent) if (r.until >= since) out.push(r.held.lock);
    for (const p of this.pending.values()) if (p.req.what === 'lock' && p.req.file === file && p.req.id !== except && p.req.kind !== 'flock') out.push(p.req);
    return out;
  }

  /** EDEADLK must name a real cycle: look for one among everything possible during the request. */
  private checkDeadlock(p: Pending, e: LogEvent): void {
    const since = p.t;
    const waits = [...this.pending.values(), ...this.endedWaits.filter((w) => w.until >= since).map((w) => w.p)].filter(
      (w) => w.req.id !== p.req.id && w.req.what === 'lock' && w.req.wait && this.dk.has(w.req.kind),
    );
    const heldOn = new Map<string, Claim[]>();
    const holders = (w: RequestRecord): string[] => {
      let cs = heldOn.get(w.file);
      if (cs === undefined) heldOn.set(w.file, (cs = this.possiblyHeld(w.file, since, -1).filter((c) => this.dk.has(c.kind))));
      return cs.filter((c) => c !== w && c.owner !== w.owner && conflicts(c, w)).map((c) => c.owner);
    };
    const waitsOf = new Map<string, RequestRecord[]>();
    for (const w of waits) {
      const list = waitsOf.get(w.req.owner) ?? [];
      list.push(w.req);
      waitsOf.set(w.req.owner, list);
    }
    const seen = new Set<string>();
    const queue = holders(p.req);
    while (queue.length > 0) {
      const o = queue.pop()!;
      if (o === p.req.owner) return;
      if (seen.has(o)) continue;
      seen.add(o);
      for (const w of waitsOf.get(o) ?? []) queue.push(...holders(w));
    }
    this.flag('false-deadlock', `${p.req.text} by client ${p.req.client} got EDEADLK, but no wait-for cycle through ${p.req.owner} could have existed`, [p.event, e]);
  }

  /** A window in which grants may be withheld (see the file comment); the same key while open moves its end. */
  private onWithhold(e: Extract<LogEvent, { ev: 'withhold' }>): void {
    const open = this.openWindow.get(e.key);
    if (open !== undefined && open.until >= e.t) {
      open.until = e.until;
      return;
    }
    const w: Window = { key: e.key, scope: e.scope ?? '', from: e.t, until: e.until, event: e };
    this.windows.push(w);
    this.openWindow.set(e.key, w);
    if (this.windows.length >= 64 && this.windows.length % 64 === 0) {
      const h = this.horizon();
      this.windows = this.windows.filter((x) => x.until >= h || this.openWindow.get(x.key) === x);
    }
  }

  /** Every wait outstanding at `t` whose last known explanation is over a tolerance old is looked at again. */
  private checkStuck(t: number): void {
    this.lastStuckCheck = t;
    for (const p of this.pending.values()) if (p.req.what === 'lock' && p.req.wait) this.judgeWait(p, t);
  }

  /** Is the wait `p`, outstanding at `t` (or answered at `t` by `reply`), stuck? */
  private judgeWait(p: Pending, t: number, reply?: LogEvent): void {
    if (p.stuck === true || t - p.seen <= this.stuckTolerance) return;
    this.explain(p, t);
    if (t - p.seen <= this.stuckTolerance) return;
    p.stuck = true;
    const q = p.req;
    const since = p.seen === p.t ? 'since it was issued' : `since ${(p.seen / 1e6).toFixed(3)} ms, the end of the last thing that could have blocked it`;
    this.flag(
      'stuck-waiter',
      `${q.text} by client ${q.client} (#${q.id}) waited ${((t - p.seen) / 1e6).toFixed(0)} ms ${since}${reply === undefined ? ' and still waits' : ''}, with no conflicting lock held or listed, no earlier conflicting request outstanding and no window withholding grants`,
      [...(p.why ?? []), p.event, ...(reply === undefined ? [] : [reply])],
    );
  }

  /**
   * Moves p.seen to the latest moment up to `t` at which something could have blocked the wait:
   * `t` when something can now. Everything that could have since p.t is still at hand: `recent`
   * and `ended` keep what ended after the oldest outstanding wait began (horizon()).
   */
  private explain(p: Pending, t: number): void {
    const q = p.req;
    for (const h of this.index(q).near(q.start, q.end)) {
      if (h.lock.req !== q.id && conflicts(h.lock, q)) {
        p.seen = t;
        p.why = [h.grant];
        return;
      }
    }
    for (const o of this.pending.values()) {
      if (o !== p && o.req.what === 'lock' && o.t <= p.t && o.req.file === q.file && o.req.owner !== q.owner && conflicts(o.req, q)) {
        p.seen = t;
        p.why = [o.event];
        return;
      }
    }
    let best = p.seen;
    let why = p.why;
    const consider = (until: number, events: LogEvent[]) => {
      const at = Math.min(until, t);
      if (at > best) {
        best = at;
        why = events;
      }
    };
    for (const w of this.windows) if (w.from <= t && q.owner.startsWith(w.scope)) consider(w.until, [w.event]);
    const f = this.file(q.file);
    for (const r of f.recent) {
      if (r.until > best && r.held.lock.req !== q.id && conflicts(r.held.lock, q)) consider(r.until, [r.held.grant, ...(r.end === undefined || r.end === r.held.grant ? [] : [r.end])]);
    }
    for (const x of f.ended) {
      if (x.until > best && x.p !== p && x.p.t <= p.t && x.p.req.owner !== q.owner && conflicts(x.p.req, q)) consider(x.until, [x.p.event, x.end]);
    }
    p.seen = best;
    p.why = why;
  }

  /**
   * Finds cycles of certain waits (a blocking request pending while a conflicting lock of another
   * owner is observed held) in the state before the event at `t`. A cycle has existed since the
   * latest start of its requests and grants of its locks; longer than the tolerance is a violation.
   * So only edges older than the tolerance enter the graph: any cycle among them is one, and a
   * younger cycle (sharing owners with an old one) cannot hide it. The search is a whole
   * depth-first search: each back edge names the cycle on the path, and it goes on past it (every
   * owner it visits is popped and marked done), so one cycle found does not end the search.
   */
  private checkCycles(t: number): void {
    this.lastCycleCheck = t;
    const edges = new Map<string, { to: string; w: Pending; h: Held }[]>();
    for (const w of this.pending.values()) {
      const q = w.req;
      if (q.what !== 'lock' || !q.wait || !this.dk.has(q.kind) || t - w.t <= this.tolerance) continue;
      for (const h of this.index(q).near(q.start, q.end)) {
        if (!this.dk.has(h.lock.kind) || h.lock.owner === q.owner || !conflicts(h.lock, q) || t - h.grant.t <= this.tolerance) continue;
        const list = edges.get(q.owner) ?? [];
        list.push({ to: h.lock.owner, w, h });
        edges.set(q.owner, list);
      }
    }
    if (edges.size < 2) return;
    const state = new Map<string, number>(); // 1 on the stack, 2 done
    const path: { to: string; w: Pending; h: Held }[] = [];
    const visit = (o: string): void => {
      state.set(o, 1);
      for (const edge of edges.get(o) ?? []) {
        const s = state.get(edge.to);
        path.push(edge);
        // edge.to is on the stack: it is the source of an edge of the path (the root, or where a
        // later edge left it), so the cycle is the path from there.
        if (s === 1) this.judgeCycle(path.slice(path.findIndex((x) => x.w.req.owner === edge.to)), t);
        else if (s === undefined) visit(edge.to);
        path.pop();
      }
      state.set(o, 2);
    };
    for (const o of edges.keys()) if (!state.has(o)) visit(o);
  }

  private judgeCycle(cycle: { w: Pending; h: Held }[], t: number): void {
    const since = Math.max(...cycle.map((c) => Math.max(c.w.t, c.h.grant.t)));
    if (t - since <= this.tolerance) return;
    const key = cycle.map((c) => `${c.w.req.id}:${c.h.lock.id}`).sort().join(',');
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.flag(
      'undetected-deadlock',
      `a cycle of ${cycle.length} waits (${cycle.map((c) => c.w.req.owner).join(' -> ')}) lasted ${((t - since) / 1e6).toFixed(0)} ms without EDEADLK`,
      cycle.flatMap((c) => [c.h.grant, c.w.event]),
    );
  }
}

export function show(c: Claim): string {
  const type = c.kind === 'windows' ? (c.write ? 'exclusive' : 'shared') : c.write ? 'write' : 'read';
  const end = c.end === Infinity ? 'EOF' : String(c.end);
  return `${c.kind} ${type} [${c.start}, ${end}] of ${c.owner} on ${c.file}`;
}

/** One line per event, for printing a trace. */
export function describe(e: LogEvent): string {
  const t = `${(e.t / 1e6).toFixed(3).padStart(12)} ms`;
  switch (e.ev) {
    case 'request':
      return `${t}  client ${e.req.client} issues #${e.req.id}: ${e.req.text}`;
    case 'reply':
      return `${t}  #${e.req} replied ${e.result} (${e.outcome})${e.answer ? ` ${JSON.stringify(e.answer).replace(/"/g, '')}` : ''}${e.lost ? ' [node without a session]' : ''}`;
    case 'grant':
      return `${t}  learned grant L${e.lock.id} (#${e.lock.req}): ${show(e.lock)}`;
    case 'release':
      return `${t}  releases L${e.lock} (#${e.req} about to be issued)`;
    case 'revoke':
      return `${t}  L${e.lock} lost with its node's session (listed at most until ${(e.until / 1e6).toFixed(3)} ms)`;
    case 'abandon':
      return `${t}  #${e.req} abandoned: its node died`;
    case 'maybe':
      return `${t}  learned grant L${e.lock.id} (#${e.lock.req}) while its node had lost its session, not counted as held: ${show(e.lock)}`;
    case 'withhold':
      return `${t}  grants to ${e.scope === undefined || e.scope === '' ? 'every owner' : `owners ${e.scope}*`} may be withheld until ${e.until === Infinity ? 'further notice' : `${(e.until / 1e6).toFixed(3)} ms`} (${e.key})`;
  }
}
