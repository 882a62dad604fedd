/**
 * The in-process engine: what a node alone stands on, and the reference semantics of every engine
 * (the property test runs the Redis engine against it, step for step). Its data structures follow
 * the Redis key layout one for one (see ./index.ts), and each operation takes the same decisions
 * in the same order as the matching script in ./lua.ts.
 */
import { reaches } from '../core/deadlock.js';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { lateAfterMs } from './options.js';
import { bySeq } from './step.js';
import { INBOX_MARK } from './types.js';
import type {
  Change,
  CommitReply,
  DeadSession,
  EdgeInput,
  Engine,
  EngineStep,
  FileReach,
  StoredEdges,
  FileState,
  InboxEvent,
  InboxReader,
  Opened,
  Taken,
  ReapReply,
  ReassertReply,
  Renewed,
  SessionFilesPage,
  SessionRef,
  SessionServes,
  SessionsRead,
  StoreRecord,
} from './types.js';

/**
 * How far (µs) a step's fence numbers may pass the file's last one when that is ahead of the
 * engine's time (Step.fence): a clock that stands still (a test's), or one behind after a
 * failover, still grants, a number at a time. Less than any grace period (at least a session TTL,
 * ms), which every grant after a loss of the data waits for: the time-based numbers given then
 * are above every one given before.
 */
export const FENCE_SLACK_US = 1_000_000;

/**
 * How long (ms) a file's last fence is kept once it has no record left (its tombstone), at least:
 * well above any node's error on the engine's time, past which a node's time-based proposals are
 * above it anyway. The engine keeps it max(this, 10 × the longest session TTL).
 */
export const FENCE_KEEP_MS = 60_000;

/** How many changes a file's log keeps (a caller further behind gets the full record set). */
export const LOG_MAX = 64;

/**
 * How long the engine keeps what steps removed of a dead session (the reaper's work), per file:
 * Engine.sessionFiles gives it after the session's index, so that a worker that replaces one that
 * died learns what its predecessor lost there even once another node reaped it (SharedFiles.
 * recoverLost). Each removal restarts it. An hour: a replacement reads it within seconds of its
 * start, and its start follows its predecessor's death at once.
 */
export const REAPED_KEEP_MS = 3_600_000;

interface MemFile {
  version: number;
  seq: number;
  records: Map<string, StoreRecord>;
  log: Change[];
  /** Records per session ("node|epoch"): the session → files index is kept from these counts. */
  counts: Map<string, number>;
  /** waiter id → its owner (the edges of this file's waiters). */
  edgeOwner: Map<string, string>;
  /** node → its last step that applied here (CommitReply 'stale' `last`). */
  last: Map<string, string>;
  /** The last fence a step gave here (Step.fence), if any. */
  fence?: number;
}

interface Edge {
  node: string;
  epoch: number;
  hard: readonly string[];
  soft: readonly string[];
  /** Per target owner, the sessions of its records ("node|epoch"): EdgeInput.sessions. */
  sessions: Readonly<Record<string, readonly string[]>>;
}

interface Box {
  entries: InboxEvent[];
  next: number;
  wake: Set<() => void>;
}

const sk = (node: string, epoch: number) => `${node}|${epoch}`;

/** A step that contradicts the state at the version it names: the caller's bug, never a reply. */
/** An engine's whole state (MemoryEngine.snapshot; the property test reads the same from Redis keys). */
export interface EngineSnapshot {
  files: Record<string, FileState>;
  /** "node|epoch" → files where that session has records. */
  sessionFiles: Record<string, string[]>;
  /** "node|epoch" → file → the held records of that session steps removed while it was dead (kept REAPED_KEEP_MS). */
  reaped: Record<string, Record<string, StoreRecord[]>>;
  /** owner → "file\nwaiter" → the waiter's session and targets. */
  edges: Record<string, Record<string, { node: string; epoch: number; hard: string[]; soft: string[]; sessions: Record<string, string[]> }>>;
  /** file → waiter → owner. */
  edgeOwners: Record<string, Record<string, string>>;
  /** node → its inbox entries (ids left out), for non-empty inboxes. */
  inboxes: Record<string, Omit<InboxEvent, 'id'>[]>;
  /** node → live session epoch. */
  live: Record<string, number>;
  /** "node|epoch" of every registered session. */
  registry: string[];
  grace: boolean;
}

export class ProgrammingError extends Error {
  override name = 'ProgrammingError';
}

/**
 * The fence a record's data holds: the top-level 'f' of its JSON object (a granted lock's, as
 * src/core/records.ts writes it), never a '"f":N' elsewhere in its text (a nested object, another
 * field's value). Undefined when the data is no JSON object or has no numeric 'f'; a number that is
 * no fence (not a safe integer > 0) is returned as it is, for the caller to refuse (lua.ts REASSERT
 * reads it the same way with cjson).
 */
export function recordFence(data: string): number | undefined {
  if (data.length === 0 || data[0] !== '{') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const f = (v as { f?: unknown }).f;
  return typeof f === 'number' ? f : undefined;
}

/** A record's fence is a safe integer > 0: above it, no number is (Step.fence), and the file would grant no more. */
export function isFence(f: number): boolean {
  return Number.isSafeInteger(f) && f > 0;
}

export interface MemoryEngineOptions {
  /** The engine's clock in ms (sessions and grace expire on it); default performance.now. */
  now?: () => number;
}

export class MemoryEngine implements Engine {
  readonly name = 'memory';
  private readonly now: () => number;
  private inc: string | undefined;
  /** Opened.ttlMaxMs: the longest TTL a session of this incarnation was opened with. */
  private ttlMax = 0;
  private clock = 0;
  private graceUntil = -Infinity;
  /** node → its session key: epoch and expiry. */
  private readonly live = new Map<string, { epoch: number; expiresAt: number }>();
  /** Node name -> the instance that opened its last session (two processes under one name). */
  private readonly owners = new Map<string, string>();
  /** The policy the namespace's nodes decide with (Engine.policy): Redis' {ns}:policy. */
  private policyOf: string | undefined;
  /** "node|epoch" → deadline: every session until the reaper has seen it dead and empty. */
  private readonly registry = new Map<string, { node: string; epoch: number; deadline: number; ttlMs: number; serves?: SessionServes }>();
  private readonly sessFiles = new Map<string, Set<string>>();
  /**
   * "node|epoch" → the held records of that dead session steps removed, per file, in the order
   * removed, until `until` (REAPED_KEEP_MS after the last removal): Redis' rp:<node>|<epoch>.
   */
  private readonly reaped = new Map<string, { until: number; files: Map<string, StoreRecord[]> }>();
  private readonly fileMap = new Map<string, MemFile>();
  /** A file with no record left → its last fence, until (the engine's ms): Redis' t:<file>. */
  private readonly tombs = new Map<string, { fence: number; until: number }>();
  private tombSweepAt = 1024;
  /** owner → "file\nwaiter" → edges. */
  private readonly graph = new Map<string, Map<string, Edge>>();
  private readonly boxes = new Map<string, Box>();
  private boxSeq = 0;

  constructor(o: MemoryEngineOptions = {}) {
    this.now = o.now ?? (() => performance.now());
  }

  // ---- test hooks: what a crash, a pause and a data loss do to an engine ----------------------

  /** The session key of `node` vanishes, as when its TTL runs out. */
  expire(node: string): void {
    this.live.delete(node);
  }

  /** Every key is lost (a restart without persistence). */
  reset(): void {
    this.inc = undefined;
    this.ttlMax = 0;
    this.policyOf = undefined;
    // The clock counts on, as Redis's epochs and versions do (from its time): a session opened
    // after the loss is not the one before it, for the nodes that adopt it.
    this.graceUntil = -Infinity;
    this.live.clear();
    this.registry.clear();
    this.sessFiles.clear();
    this.reaped.clear();
    this.fileMap.clear();
    this.tombs.clear();
    this.graph.clear();
    for (const b of this.boxes.values()) {
      b.entries = [];
    }
  }

  endGrace(): void {
    this.graceUntil = -Infinity;
  }

  // ---- sessions --------------------------------------------------------------------------------

  private alive(node: string, epoch: number): boolean {
    const s = this.live.get(node);
    return s !== undefined && s.epoch === epoch && s.expiresAt > this.now();
  }

  private graceLeft(): number {
    const left = this.graceUntil - this.now();
    return left > 0 ? Math.ceil(left) : 0;
  }

  private box(node: string): Box {
    let b = this.boxes.get(node);
    if (b === undefined) this.boxes.set(node, (b = { entries: [], next: 0, wake: new Set() }));
    return b;
  }

  private append(node: string, e: Omit<InboxEvent, 'id'>): string {
    const b = this.box(node);
    const id = `${++this.boxSeq}`;
    b.entries.push({ id, ...e });
    for (const w of b.wake) w();
    b.wake.clear();
    return id;
  }

  async open(node: string, ttlMs: number, graceMs: number, instance = '', serves?: SessionServes): Promise<Opened | Taken> {
    const old = this.live.get(node);
    if (old !== undefined && this.alive(node, old.epoch)) {
      const owner = this.owners.get(node);
      if (owner !== undefined && owner !== instance) return { taken: true };
    }
    this.owners.set(node, instance);
    return this.openSync(node, ttlMs, graceMs, serves);
  }

  openSync(node: string, ttlMs: number, graceMs: number, serves?: SessionServes): Opened {
    let created = false;
    if (this.inc === undefined) {
      this.inc = randomUUID();
      if (graceMs > 0) this.graceUntil = this.now() + graceMs;
      created = true;
    }
    const epoch = ++this.clock;
    this.ttlMax = Math.max(this.ttlMax, ttlMs);
    const old = this.live.get(node);
    if (old !== undefined) {
      const r = this.registry.get(sk(node, old.epoch));
      if (r !== undefined) r.deadline = 0;
    }
    const now = this.now();
    this.live.set(node, { epoch, expiresAt: now + ttlMs });
    // Where its mount serves lives with the session, as Redis's at:<node> with its key.
    this.registry.set(sk(node, epoch), { node, epoch, deadline: now + ttlMs, ttlMs, ...(serves === undefined ? {} : { serves: { host: serves.host, mountpoint: serves.mountpoint, ...(serves.machine === undefined ? {} : { machine: serves.machine }) } }) });
    const b = this.box(node);
    b.entries = [];
    const inboxFrom = this.append(node, { file: '', version: 0, from: '', epoch, requestId: '', kind: 'open', data: '' });
    return { node, epoch, incarnation: this.inc, inboxFrom, graceMs: this.graceLeft(), created, now, ttlMaxMs: this.ttlMax };
  }

  async renew(s: SessionRef, ttlMs: number, inboxAck: string): Promise<Renewed> {
    return this.renewSync(s, ttlMs, inboxAck);
  }

  renewSync(s: SessionRef, ttlMs: number, inboxAck: string): Renewed {
    if (this.inc !== s.incarnation) return { kind: 'reset' };
    if (!this.alive(s.node, s.epoch)) return { kind: 'expired' };
    const now = this.now();
    this.live.set(s.node, { epoch: s.epoch, expiresAt: now + ttlMs });
    const r = this.registry.get(sk(s.node, s.epoch));
    if (r !== undefined) r.deadline = now + ttlMs;
    if (inboxAck !== '') {
      const b = this.box(s.node);
      b.entries = b.entries.filter((e) => Number(e.id) >= Number(inboxAck));
    }
    let reap = false;
    for (const x of this.registry.values()) if (x.deadline <= now) reap = true;
    return { kind: 'ok', graceMs: this.graceLeft(), reap, now, ttlMaxMs: this.ttlMax };
  }

  async policy(s: SessionRef, policy: string): Promise<{ policy: string; node: string } | undefined> {
    if (this.inc !== s.incarnation) return undefined;
    const cur = this.policyOf;
    if (cur !== undefined && cur !== policy) {
      for (const [node, l] of this.live) if (node !== s.node && this.alive(node, l.epoch)) return { policy: cur, node };
    }
    this.policyOf = policy;
    return undefined;
  }

  async endSession(s: SessionRef): Promise<void> {
    if (this.inc !== s.incarnation || !this.alive(s.node, s.epoch)) return;
    this.live.delete(s.node);
    this.owners.delete(s.node);
    const k = sk(s.node, s.epoch);
    if ((this.sessFiles.get(k)?.size ?? 0) === 0) this.registry.delete(k);
    else this.registry.get(k)!.deadline = 0;
    this.box(s.node).entries = [];
  }

  // ---- files -------------------------------------------------------------------------------------

  private stateOf(f: MemFile | undefined, file: string): FileState {
    if (f === undefined) {
      const fence = this.lastFence(undefined, file);
      return { version: 0, records: [], ...(fence === undefined ? {} : { fence }) };
    }
    return { version: f.version, records: [...f.records.values()].sort(bySeq), ...(f.fence === undefined ? {} : { fence: f.fence }) };
  }

  /** Keeps `file`'s last fence once it has no record (Redis: t:<file> with its PX); expired ones are swept as the map doubles (amortized O(1)). */
  private tomb(file: string, fence: number): void {
    const now = this.now();
    // Kept also until the engine's time (µs) has passed the fence by FENCE_KEEP_MS: a fence ahead of
    // the clock (the clock stepped back, a failover) would otherwise be followed by a lower one.
    this.tombs.set(file, { fence, until: Math.max(now + Math.max(FENCE_KEEP_MS, 10 * this.ttlMax), Math.floor(fence / 1000) + FENCE_KEEP_MS) });
    if (this.tombs.size < this.tombSweepAt) return;
    for (const [k, t] of this.tombs) if (t.until <= now) this.tombs.delete(k);
    this.tombSweepAt = Math.max(1024, 2 * this.tombs.size);
  }

  /** The file's last fence: its own, or its tombstone's while kept. */
  private lastFence(f: MemFile | undefined, file: string): number | undefined {
    if (f?.fence !== undefined) return f.fence;
    const t = this.tombs.get(file);
    if (t === undefined) return undefined;
    if (t.until <= this.now()) {
      this.tombs.delete(file);
      return undefined;
    }
    return t.fence;
  }

  async load(file: string): Promise<FileState> {
    return this.stateOf(this.fileMap.get(file), file);
  }

  async files(): Promise<string[]> {
    return [...this.fileMap.keys()].sort();
  }

  async sessions(): Promise<SessionsRead> {
    const now = this.now();
    // A session whose key vanished (expire(): its TTL ran out) is past its deadline, as in Redis.
    const sessions = [...this.registry.values()].map((r) =>
      this.alive(r.node, r.epoch) ? { node: r.node, epoch: r.epoch, deadline: r.deadline, ttlMs: r.ttlMs, ...(r.serves === undefined ? {} : { serves: r.serves }) } : { node: r.node, epoch: r.epoch, deadline: r.deadline === 0 ? 0 : Math.min(r.deadline, now) },
    );
    return { now, ttlMaxMs: this.ttlMax, sessions };
  }

  /** What steps removed of dead session `k` while it is kept (REAPED_KEEP_MS), or undefined. */
  private reapedOf(k: string): Map<string, StoreRecord[]> | undefined {
    const r = this.reaped.get(k);
    if (r === undefined) return undefined;
    if (r.until > this.now()) return r.files;
    this.reaped.delete(k);
    return undefined;
  }

  /**
   * The session's index, then what steps removed of it while dead (its reaped records, kept
   * REAPED_KEEP_MS): the cursor is the last file of the previous page (prefixed '>'), or in the
   * second part 'r' and that ('r' alone: its start). Pages in file order.
   */
  async sessionFiles(s: SessionRef, cursor: string, limit: number): Promise<SessionFilesPage | 'reset'> {
    if (this.inc !== s.incarnation) return 'reset';
    const k = sk(s.node, s.epoch);
    const n = Math.max(1, limit);
    if (cursor.startsWith('r')) {
      const kept = this.reapedOf(k);
      const after = cursor.length > 1 ? cursor.slice(2) : undefined;
      const all = [...(kept?.keys() ?? [])].sort().filter((f) => after === undefined || f > after);
      const page = all.slice(0, n);
      return { files: page.map((file) => ({ file, records: [...kept!.get(file)!] })), cursor: page.length < all.length ? `r>${page.at(-1)!}` : '0' };
    }
    const after = cursor.startsWith('>') ? cursor.slice(1) : undefined;
    const all = [...(this.sessFiles.get(k) ?? [])].sort().filter((f) => after === undefined || f > after);
    const page = all.slice(0, n);
    return {
      files: page.map((file) => ({ file, records: this.stateOf(this.fileMap.get(file), file).records.filter((r) => r.node === s.node && r.epoch === s.epoch) })),
      cursor: page.length < all.length ? `>${page.at(-1)!}` : this.reapedOf(k) !== undefined ? 'r' : '0',
    };
  }

  /** The whole state, in plain objects (the property test compares it with the Redis engine's keys). */
  snapshot(): EngineSnapshot {
    const files: EngineSnapshot['files'] = {};
    for (const [k, f] of this.fileMap) files[k] = { version: f.version, records: [...f.records.values()].sort(bySeq) };
    const sessionFiles: EngineSnapshot['sessionFiles'] = {};
    for (const [k, s] of this.sessFiles) if (s.size > 0) sessionFiles[k] = [...s].sort();
    const reaped: EngineSnapshot['reaped'] = {};
    for (const k of [...this.reaped.keys()]) {
      const kept = this.reapedOf(k);
      if (kept !== undefined) reaped[k] = Object.fromEntries([...kept].map(([file, recs]) => [file, [...recs]]));
    }
    const edges: EngineSnapshot['edges'] = {};
    for (const [owner, g] of this.graph) {
      edges[owner] = {};
      for (const [k, e] of g) edges[owner][k] = { node: e.node, epoch: e.epoch, hard: [...e.hard], soft: [...e.soft], sessions: Object.fromEntries(Object.entries(e.sessions).map(([o, ss]) => [o, [...ss]])) };
    }
    const edgeOwners: EngineSnapshot['edgeOwners'] = {};
    for (const [k, f] of this.fileMap) if (f.edgeOwner.size > 0) edgeOwners[k] = Object.fromEntries(f.edgeOwner);
    const inboxes: EngineSnapshot['inboxes'] = {};
    for (const [node, b] of this.boxes) if (b.entries.length > 0) inboxes[node] = b.entries.map(({ id: _, ...e }) => e);
    const live: EngineSnapshot['live'] = {};
    for (const [node, l] of this.live) if (l.expiresAt > this.now()) live[node] = l.epoch;
    return { files, sessionFiles, reaped, edges, edgeOwners, inboxes, live, registry: [...this.registry.keys()].sort(), grace: this.graceLeft() > 0 };
  }

  private stale(f: MemFile | undefined, file: string, base: number, node: string): CommitReply {
    if (f === undefined) return { ok: false, reason: 'stale', ...this.stateOf(undefined, file) };
    const i = f.log.findIndex((c) => c.base === base);
    if (i >= 0) return { ok: false, reason: 'stale', version: f.version, missed: f.log.slice(i) };
    const last = f.last.get(node);
    return { ok: false, reason: 'stale', version: f.version, records: this.stateOf(f, file).records, ...(last === undefined ? {} : { last }), ...(f.fence === undefined ? {} : { fence: f.fence }) };
  }

  /**
   * The live edges of `owner`'s waiters, with the step's pending changes laid over them: each with
   * the targets that count (one of their sessions lives, or none is named).
   */
  private edgesOf(owner: string, overlay: Map<string, Map<string, Edge | null>>, late?: { soonest: number }, except?: string): StoredEdges[] {
    const out: StoredEdges[] = [];
    const add = (e: Edge) => {
      if (this.alive(e.node, e.epoch)) out.push({ hard: this.counting(e.hard, e.sessions), soft: this.counting(e.soft, e.sessions) });
    };
    const over = overlay.get(owner);
    for (const [k, e] of this.graph.get(owner) ?? []) {
      if (over?.has(k)) continue;
      // `except`: a file whose edges the asker takes from its own table (fileReach). A key is
      // `${file}\n${waiter}`, and a waiter id has no newline.
      if (except !== undefined && k.slice(0, k.lastIndexOf('\n')) === except) continue;
      // With `late`: a stored edge of a late session is left out, and its session's expiry kept (soonest).
      const left = late === undefined ? undefined : this.lateLeft(e.node, e.epoch);
      if (left !== undefined) late!.soonest = Math.min(late!.soonest, left);
      else add(e);
    }
    if (over !== undefined) for (const e of over.values()) if (e !== null) add(e);
    return out;
  }

  /** The targets of `list` that count in a cycle walk: named by no session, or by a live one. */
  private counting(list: readonly string[], sessions: Edge['sessions']): readonly string[] {
    return list.filter((t) => {
      const ss = Object.hasOwn(sessions, t) ? sessions[t] : undefined;
      return ss === undefined || ss.some((x) => {
        const bar = x.lastIndexOf('|');
        return this.alive(x.slice(0, bar), Number(x.slice(bar + 1)));
      });
    });
  }

  /**
   * The core's cycle walk over the engine's edges (dead sessions' edges do not count); with
   * `late`, the stored edges of late sessions do not either (lateLeft), and `late.soonest` is the
   * earliest expiry, in ms from now, among those left out.
   */
  private cycle(owner: string, targets: readonly string[], hardOnly: boolean, overlay = new Map<string, Map<string, Edge | null>>(), late?: { soonest: number }, except?: string): boolean {
    return reaches(owner, targets, (o) => this.edgesOf(o, overlay, late, except), hardOnly);
  }

  /**
   * For a live session that is late (its node has not renewed it for longer than lateAfterMs of its
   * TTL: a healthy node renews well within that), the ms until it expires; else undefined. Lua:
   * lua.ts lateLeft.
   */
  private lateLeft(node: string, epoch: number): number | undefined {
    const l = this.live.get(node);
    const r = this.registry.get(sk(node, epoch));
    if (l === undefined || l.epoch !== epoch || r === undefined) return undefined;
    const left = l.expiresAt - this.now();
    return left > 0 && r.ttlMs - left > lateAfterMs(r.ttlMs) ? left : undefined;
  }

  async closesCycle(owner: string, targets: readonly string[], hardOnly: boolean): Promise<boolean> {
    return this.cycle(owner, targets, hardOnly);
  }

  async reaches(pairs: readonly (readonly [string, string])[], hardOnly: boolean): Promise<boolean[]> {
    return pairs.map(([from, to]) => this.cycle(to, [from], hardOnly));
  }

  async fileReach(file: string, pairs: readonly (readonly [string, string])[]): Promise<FileReach> {
    const reach = pairs.map(([from, to]) => this.cycle(to, [from], false, undefined, undefined, file));
    const edges = new Map<string, StoredEdges>();
    for (const [w, owner] of this.fileMap.get(file)?.edgeOwner ?? []) {
      const e = this.graph.get(owner)?.get(`${file}\n${w}`);
      if (e !== undefined) edges.set(w, { hard: e.hard, soft: e.soft });
    }
    return { reach, edges };
  }

  private count(f: MemFile, file: string, node: string, epoch: number, by: 1 | -1): void {
    const k = sk(node, epoch);
    const c = (f.counts.get(k) ?? 0) + by;
    if (c > 0) {
      f.counts.set(k, c);
      if (c === 1 && by === 1) {
        let s = this.sessFiles.get(k);
        if (s === undefined) this.sessFiles.set(k, (s = new Set()));
        s.add(file);
      }
      return;
    }
    f.counts.delete(k);
    const s = this.sessFiles.get(k);
    s?.delete(file);
    if ((s?.size ?? 0) === 0) {
      this.sessFiles.delete(k);
      if (!this.alive(node, epoch)) this.registry.delete(k);
    }
  }

  /** Adds `r`, a held record of a dead session a step removes from `file`, to that session's reaped records. */
  private keepReaped(file: string, r: StoreRecord): void {
    const k = sk(r.node, r.epoch);
    const now = this.now();
    let files = this.reapedOf(k);
    if (files === undefined) {
      files = new Map();
      // Another session's turn: the expired ones go (Redis lets their keys expire).
      for (const [x, kept] of this.reaped) if (kept.until <= now) this.reaped.delete(x);
    }
    this.reaped.set(k, { until: now + REAPED_KEEP_MS, files });
    let list = files.get(file);
    if (list === undefined) files.set(file, (list = []));
    list.push(r);
  }

  private dropEdges(f: MemFile, file: string, waiter: string): void {
    const owner = f.edgeOwner.get(waiter);
    if (owner === undefined) return;
    f.edgeOwner.delete(waiter);
    const g = this.graph.get(owner)!;
    g.delete(`${file}\n${waiter}`);
    if (g.size === 0) this.graph.delete(owner);
  }

  private setEdges(f: MemFile, file: string, e: Required<EdgeInput>, rec: StoreRecord): void {
    this.dropEdges(f, file, e.waiter);
    if (e.hard.length === 0 && e.soft.length === 0) return;
    f.edgeOwner.set(e.waiter, e.owner);
    let g = this.graph.get(e.owner);
    if (g === undefined) this.graph.set(e.owner, (g = new Map()));
    g.set(`${file}\n${e.waiter}`, { node: rec.node, epoch: rec.epoch, hard: e.hard, soft: e.soft, sessions: e.sessions });
  }

  /** The record a waiter id names once the step applies, or a ProgrammingError. */
  private waiterAfter(f: MemFile | undefined, removed: Set<string>, puts: Map<string, StoreRecord>, id: string, file: string): StoreRecord {
    const r = puts.get(id) ?? (removed.has(id) ? undefined : f?.records.get(id));
    if (r === undefined || r.state !== 'waiting') throw new ProgrammingError(`locksmith store: edges of '${id}' in '${file}': no such waiter after the step`);
    return r;
  }

  /** Removes, puts, edges; a new version and its log entry (or the file's end). */
  private apply(f: MemFile, file: string, base: number, step: string, node: string, remove: readonly string[], put: readonly StoreRecord[], edges: readonly Required<EdgeInput>[]): number {
    for (const id of remove) {
      const old = f.records.get(id)!;
      this.count(f, file, old.node, old.epoch, -1);
      this.dropEdges(f, file, id);
      f.records.delete(id);
      // A dead session's lock removed (reaped): kept for a replacement worker of its node to read.
      if (old.state === 'held' && !this.alive(old.node, old.epoch)) this.keepReaped(file, old);
    }
    const stored: StoreRecord[] = [];
    for (const r of put) {
      const old = f.records.get(r.id);
      let seq: number;
      if (old !== undefined) {
        seq = old.seq;
        if (r.state === 'held') this.dropEdges(f, file, r.id);
      } else {
        seq = ++f.seq;
        this.count(f, file, r.node, r.epoch, 1);
      }
      const s = { ...r, seq };
      f.records.set(r.id, s);
      stored.push(s);
    }
    for (const e of edges) this.setEdges(f, file, e, f.records.get(e.waiter)!);
    const version = ++this.clock;
    if (f.records.size === 0) {
      this.fileMap.delete(file);
      // Its last fence outlives it (the next grant on it is above), for a while.
      if (f.fence !== undefined) this.tomb(file, f.fence);
      return 0;
    }
    f.version = version;
    this.fileMap.set(file, f);
    f.last.set(node, step);
    f.log.push({ base, version, step, node, removed: [...remove], put: stored, ...(f.fence === undefined ? {} : { fence: f.fence }) });
    if (f.log.length > LOG_MAX) f.log.splice(0, f.log.length - LOG_MAX);
    return version;
  }

  private newFile(): MemFile {
    return { version: 0, seq: 0, records: new Map(), log: [], counts: new Map(), edgeOwner: new Map(), last: new Map() };
  }

  async commit(s: SessionRef, step: EngineStep): Promise<CommitReply> {
    return this.commitSync(s, step);
  }

  commitSync(s: SessionRef, st: EngineStep): CommitReply {
    if (this.inc !== s.incarnation) return { ok: false, reason: 'reset' };
    if (!this.alive(s.node, s.epoch)) return { ok: false, reason: 'fenced' };
    const existing = this.fileMap.get(st.file);
    if ((existing?.version ?? 0) !== st.base) return this.stale(existing, st.file, st.base, s.node);
    // Past its deadline, its request was answered already (as failed): never applied now.
    if (st.until !== undefined && this.now() >= st.until) return { ok: false, reason: 'late' };
    // An empty step checks without writing: this session is alive and the file is at `base`, and
    // with `grants`, that no grace period runs (an answer that found the bytes free). Its marks in
    // the node's own inbox (notifications to itself) change nothing in the file.
    if (st.remove.length === 0 && st.put.length === 0 && st.notify.every((n) => n.node === s.node && n.kind === INBOX_MARK) && st.edges.length === 0) {
      if (st.grants && this.graceLeft() > 0) return { ok: false, reason: 'grace', retryInMs: this.graceLeft() };
      this.notify(s, st, st.base);
      return { ok: true, version: st.base, step: st.step };
    }
    // Fence numbers: above the file's last, not far past the engine's time in µs (lua.ts COMMIT).
    if (st.fence !== undefined) {
      const last = this.lastFence(existing, st.file) ?? 0;
      const us = Math.floor(this.now() * 1000);
      if (st.fence[0] <= last || st.fence[1] > Math.max(us, last) + FENCE_SLACK_US) return { ok: false, reason: 'fence', last, nowUs: us };
    }
    const f = existing ?? this.newFile();
    const removed = new Set<string>();
    for (const id of st.remove) {
      if (!f.records.has(id)) throw new ProgrammingError(`locksmith store: no record '${id}' in '${st.file}' to remove`);
      removed.add(id);
    }
    const puts = new Map<string, StoreRecord>();
    const dead: { node: string; epoch: number }[] = [];
    const deadSeen = new Set<string>();
    for (const r of st.put) {
      const old = removed.has(r.id) ? undefined : f.records.get(r.id);
      if (old !== undefined && (old.node !== r.node || old.epoch !== r.epoch)) {
        throw new ProgrammingError(`locksmith store: record '${r.id}' in '${st.file}' belongs to ${old.node}|${old.epoch}, not ${r.node}|${r.epoch}`);
      }
      puts.set(r.id, r);
      if (!this.alive(r.node, r.epoch) && !deadSeen.has(sk(r.node, r.epoch))) {
        deadSeen.add(sk(r.node, r.epoch));
        dead.push({ node: r.node, epoch: r.epoch });
      }
    }
    const waiters = st.edges.map((e) => this.waiterAfter(existing, removed, puts, e.waiter, st.file));
    if (dead.length > 0) return { ok: false, reason: 'dead', sessions: dead };
    if (st.grants && this.graceLeft() > 0) return { ok: false, reason: 'grace', retryInMs: this.graceLeft() };
    // Cycle checks see the step's own changes made so far: edges of removed or granted waiters
    // are gone, and each edge entry replaces its waiter's edges before the next one is checked.
    const overlay = new Map<string, Map<string, Edge | null>>();
    const over = (owner: string) => {
      let m = overlay.get(owner);
      if (m === undefined) overlay.set(owner, (m = new Map()));
      return m;
    };
    const drop = (id: string) => {
      const owner = f.edgeOwner.get(id);
      if (owner !== undefined) over(owner).set(`${st.file}\n${id}`, null);
    };
    for (const id of removed) drop(id);
    for (const r of st.put) if (r.state === 'held' && f.records.has(r.id)) drop(r.id);
    // A waiter checked later in the step waits for nobody until its turn: a woken waiter that has
    // not slept again (LockTable.refreshEdges). So when the step puts two on a cycle the later one
    // is refused, and no check walks an edge the step replaces.
    for (const e of st.edges) if (e.check) drop(e.waiter);
    for (let i = 0; i < st.edges.length; i++) {
      const e = st.edges[i]!;
      drop(e.waiter);
      if (e.check && e.hard.length > 0) {
        const targets = this.counting(e.hard, e.sessions);
        if (this.cycle(e.owner, targets, true, overlay)) {
          // A cycle only through edges of late sessions is not trusted yet (CommitReply 'overdue').
          const late = { soonest: Infinity };
          if (!this.cycle(e.owner, targets, true, overlay, late) && late.soonest !== Infinity) return { ok: false, reason: 'overdue', waiter: e.waiter, owner: e.owner, retryInMs: Math.max(1, Math.ceil(late.soonest)) };
          return { ok: false, reason: 'deadlock', waiter: e.waiter, owner: e.owner };
        }
      }
      if (e.hard.length > 0 || e.soft.length > 0) over(e.owner).set(`${st.file}\n${e.waiter}`, { node: waiters[i]!.node, epoch: waiters[i]!.epoch, hard: e.hard, soft: e.soft, sessions: e.sessions });
    }
    if (st.fence !== undefined) f.fence = st.fence[1];
    else if (f.fence === undefined) {
      // A file that had no record takes its tombstone's last fence along.
      const t = this.lastFence(undefined, st.file);
      if (t !== undefined) f.fence = t;
    }
    const version = this.apply(f, st.file, st.base, st.step, s.node, st.remove, st.put, st.edges);
    this.notify(s, st, version);
    return { ok: true, version, step: st.step };
  }

  /**
   * A committed step's notifications, each to its node's inbox while its session is alive: an
   * event for a waiter of another node, or a mark in the committing node's own inbox, after every
   * event that steps before this one sent it (SharedFile.settleEnds waits for one).
   */
  private notify(s: SessionRef, st: EngineStep, version: number): void {
    for (const n of st.notify) {
      if ((n.node !== s.node || n.kind === INBOX_MARK) && this.alive(n.node, n.epoch)) this.append(n.node, { file: st.file, version, from: s.node, epoch: n.epoch, requestId: n.requestId, kind: n.kind, data: n.data });
    }
  }

  async reassert(s: SessionRef, file: string, step: string, records: readonly StoreRecord[], edges: readonly Required<EdgeInput>[]): Promise<ReassertReply> {
    return this.reassertSync(s, file, step, records, edges);
  }

  reassertSync(s: SessionRef, file: string, step: string, records: readonly StoreRecord[], edges: readonly Required<EdgeInput>[]): ReassertReply {
    if (this.inc !== s.incarnation) return { ok: false, reason: 'reset' };
    if (!this.alive(s.node, s.epoch)) return { ok: false, reason: 'fenced' };
    if (this.graceLeft() <= 0) return { ok: false, reason: 'late' };
    const existing = this.fileMap.get(file);
    const f = existing ?? this.newFile();
    const puts = new Map<string, StoreRecord>();
    for (const r of records) {
      const old = f.records.get(r.id);
      if (old !== undefined && (old.node !== r.node || old.epoch !== r.epoch)) {
        throw new ProgrammingError(`locksmith store: record '${r.id}' in '${file}' belongs to ${old.node}|${old.epoch}, not ${r.node}|${r.epoch}`);
      }
      puts.set(r.id, r);
    }
    for (const e of edges) this.waiterAfter(existing, new Set(), puts, e.waiter, file);
    // The file's last fence becomes at least the highest its records put back hold (lua.ts REASSERT):
    // each record's own (recordFence); one that is no safe integer is refused before anything is stored.
    let fMax = f.fence;
    for (const r of records) {
      const rf = recordFence(r.data);
      if (rf === undefined) continue;
      if (!isFence(rf)) throw new ProgrammingError(`locksmith store: record '${r.id}' in '${file}' holds the fence ${rf}: not a safe integer > 0`);
      if (rf > (fMax ?? 0)) fMax = rf;
    }
    if (fMax !== undefined) f.fence = fMax;
    const version = this.apply(f, file, f.version, step, s.node, [], records, edges);
    return { ok: true, version };
  }

  // ---- the reaper ----------------------------------------------------------------------------------

  async reap(limit: number): Promise<ReapReply> {
    return this.reapSync(limit);
  }

  reapSync(limit: number): ReapReply {
    const dead: DeadSession[] = [];
    let budget = limit;
    let more = false;
    const regs = [...this.registry.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.epoch - b.epoch));
    for (const r of regs) {
      if (this.alive(r.node, r.epoch)) continue;
      const k = sk(r.node, r.epoch);
      const fs = [...(this.sessFiles.get(k) ?? [])].sort();
      if (fs.length === 0) {
        this.registry.delete(k);
        this.sessFiles.delete(k);
        const l = this.live.get(r.node);
        if (l === undefined || l.expiresAt <= this.now()) this.box(r.node).entries = [];
        continue;
      }
      if (budget <= 0) {
        more = true;
        break;
      }
      const files: DeadSession['files'][number][] = [];
      for (const file of fs) {
        if (budget <= 0) {
          more = true;
          break;
        }
        budget--;
        const st = this.stateOf(this.fileMap.get(file), file);
        files.push({ file, version: st.version, records: st.records.filter((x) => x.node === r.node && x.epoch === r.epoch) });
      }
      dead.push({ node: r.node, epoch: r.epoch, files });
      if (more) break;
    }
    return { dead, more };
  }

  // ---- inboxes -------------------------------------------------------------------------------------

  inbox(node: string): InboxReader {
    let interrupt: (() => void) | undefined;
    let closed = false;
    return {
      read: (after: string) =>
        new Promise<InboxEvent[]>((resolve) => {
          const b = this.box(node);
          const ready = () => b.entries.filter((e) => Number(e.id) > Number(after));
          const now = ready();
          if (now.length > 0 || closed) return resolve(now);
          const wake = () => {
            interrupt = undefined;
            resolve(ready());
          };
          interrupt = () => {
            b.wake.delete(wake);
            interrupt = undefined;
            resolve([]);
          };
          b.wake.add(wake);
        }),
      restart: () => interrupt?.(),
      close: () => {
        closed = true;
        interrupt?.();
      },
    };
  }

  async shutdown(): Promise<void> {}
}
