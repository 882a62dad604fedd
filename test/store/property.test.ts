// Model = MemoryEngine (src/store/memory.ts), the reference semantics of an engine; invariant: for any interleaving of N logical nodes' session opens, renewals, expiries and ends, commits (on fresh, stale, zero or unknown versions; valid or contradicting the state), re-assertions, reaps, readings of a session's files (its index, then what steps removed of it while dead), cycle queries, grace ends and losses of all data, the Redis engine gives every call the same reply as the model and is left in the same state (records, versions and epochs up to the incarnation's offset, the session → files index, the reaped records kept per session, wait-for edges, inboxes, live sessions, registry, grace), and no accepted step ever wrote a record for a session that was not alive.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import t from 'tap';
import {
  type EngineSnapshot,
  type Change,
  type CommitReply,
  type DeadSession,
  type EngineStep,
  MemoryEngine,
  ProgrammingError,
  RedisEngine,
  type SessionFilesPage,
  type SessionRef,
  type StoreRecord,
} from '../../src/store/index.js';
import { decodeRecord } from '../../src/store/step.js';
import { lateAfterMs } from '../../src/store/options.js';
import { RedisServer, noRedis } from './redis-server.js';

const NODES = ['n0', 'n1', 'n2'];
const FILES = ['/a', '/b', '/c'];
const OWNERS = ['o0', 'o1', 'o2', 'o3'];
const DATA = ['', 'x', 'a|b', 'é✓ 中', '{"k":[1,2]}', 'line\nbreak|'];
const KINDS = ['granted', 'failed'];
const TTL = 600_000;
const GRACE = 600_000;
const RUNS = Math.max(40, Number(process.env.LOCKSMITH_PROPERTY_RUNS ?? 0) || 0);

// ---- commands: choices made abstractly, resolved against the model's state when run -------------

interface PutSel {
  pick: number; // < 0: a new record; else an existing one (index mod count)
  state: 'held' | 'waiting';
  who: number; // 0 self, 1 keep the record's owner, 2 another node's live session, 3 another node's older session
  other: number;
  data: number;
}
interface EdgeSel {
  pick: number; // index into the waiters after the step (mod); a large value names a held record
  owner: number;
  hard: number[];
  soft: number[];
  /** Per target (hard then soft): 0 no session named, else a node's live (1-3) or older (4-6) session. */
  sess: number[];
  check: boolean;
}
interface NotifySel {
  other: number;
  stale: boolean;
  kind: number;
}
type Op =
  | { t: 'open'; n: number }
  | { t: 'renew'; n: number; ack: number }
  | { t: 'expire'; n: number }
  | { t: 'end'; n: number }
  | { t: 'commit'; n: number; f: number; base: 'fresh' | 'stale' | 'zero' | 'unknown'; rm: number[]; put: PutSel[]; grants: boolean | undefined; notify: NotifySel[]; edges: EdgeSel[] }
  | { t: 'reassert'; n: number; f: number; put: PutSel[]; edges: EdgeSel[] }
  | { t: 'reap'; limit: number }
  | { t: 'sessionFiles'; n: number; older: boolean; limit: number }
  | { t: 'cycle'; owner: number; targets: number[]; hardOnly: boolean }
  | { t: 'reset'; grace: boolean }
  | { t: 'endGrace' };

const idx = (n: number) => fc.nat(n - 1);
const putSel: fc.Arbitrary<PutSel> = fc.record({
  pick: fc.integer({ min: -2, max: 5 }),
  state: fc.constantFrom('held' as const, 'waiting' as const),
  who: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.constant(2) }, { weight: 1, arbitrary: fc.constant(3) }),
  other: idx(NODES.length),
  data: idx(DATA.length),
});
const edgeSel: fc.Arbitrary<EdgeSel> = fc.record({
  pick: fc.oneof({ weight: 9, arbitrary: fc.nat(5) }, { weight: 1, arbitrary: fc.constant(99) }),
  owner: idx(OWNERS.length),
  hard: fc.array(idx(OWNERS.length), { maxLength: 2 }),
  soft: fc.array(idx(OWNERS.length), { maxLength: 1 }),
  sess: fc.array(fc.nat(6), { maxLength: 3 }),
  check: fc.boolean(),
});
const n = idx(NODES.length);
const f = idx(FILES.length);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('open' as const), n }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('renew' as const), n, ack: fc.integer({ min: -1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('expire' as const), n }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('end' as const), n }) },
  {
    weight: 14,
    arbitrary: fc.record({
      t: fc.constant('commit' as const),
      n,
      f,
      base: fc.oneof({ weight: 8, arbitrary: fc.constant('fresh' as const) }, { weight: 3, arbitrary: fc.constant('stale' as const) }, { weight: 1, arbitrary: fc.constant('zero' as const) }, { weight: 1, arbitrary: fc.constant('unknown' as const) }),
      rm: fc.array(fc.oneof({ weight: 12, arbitrary: fc.nat(5) }, { weight: 1, arbitrary: fc.constant(100) }), { maxLength: 2 }),
      put: fc.array(putSel, { maxLength: 3 }),
      grants: fc.option(fc.boolean(), { nil: undefined }),
      notify: fc.array(fc.record({ other: idx(NODES.length), stale: fc.boolean(), kind: idx(KINDS.length) }), { maxLength: 2 }),
      edges: fc.array(edgeSel, { maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reassert' as const), n, f, put: fc.array(putSel, { maxLength: 2 }), edges: fc.array(edgeSel, { maxLength: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reap' as const), limit: fc.constantFrom(1, 2, 100) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('sessionFiles' as const), n, older: fc.boolean(), limit: fc.constantFrom(1, 2, 100) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cycle' as const), owner: idx(OWNERS.length), targets: fc.array(idx(OWNERS.length), { maxLength: 2 }), hardOnly: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reset' as const), grace: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('endGrace' as const) }) },
);

// ---- one run: the model and the Redis engine side by side --------------------------------------

class Run {
  readonly mem = new MemoryEngine({ now: () => 0 });
  readonly memRef = new Map<string, SessionRef>();
  readonly redRef = new Map<string, SessionRef>();
  /** Redis versions and epochs = the model's + offset (one counter each, seeded per incarnation). */
  offset = 0;
  nextGrace = 0;
  counter = 0;
  /** Model versions each file has had (stale bases come from here). */
  readonly versions = new Map<string, number[]>();
  /** Model epochs each node has had. */
  readonly epochs = new Map<string, number[]>();

  /** Outcomes seen (commit replies by reason, other calls by kind): the comment at the end. */
  static readonly tally = new Map<string, number>();
  count(k: string): void {
    Run.tally.set(k, (Run.tally.get(k) ?? 0) + 1);
  }

  /** What differed: a non-empty list fails the fast-check run (which then shrinks it). */
  readonly failures: string[] = [];

  constructor(
    readonly red: RedisEngine,
    readonly admin: Redis,
    readonly ns: string,
  ) {}

  /** Whether Redis counts a session late now (lateAfterMs of its TTL without a renewal), as 'overdue' needs. */
  async redisLate(): Promise<boolean> {
    const r = await this.red.sessions();
    return r.sessions.some((x) => x.ttlMs !== undefined && x.deadline > r.now && x.ttlMs - (x.deadline - r.now) > lateAfterMs(x.ttlMs));
  }

  same(actual: unknown, expected: unknown, what: string): void {
    if (!deepEqual(actual, expected)) this.failures.push(`${what}:\n  redis ${JSON.stringify(actual)}\n  model ${JSON.stringify(expected)}`);
  }

  toRed = (v: number) => (v === 0 ? 0 : v + this.offset);
  fromRed = (v: number) => (v === 0 ? 0 : v - this.offset);
  redRec = (r: StoreRecord): StoreRecord => ({ ...r, epoch: this.toRed(r.epoch) });
  normRec = (r: StoreRecord): StoreRecord => ({ ...r, epoch: this.fromRed(r.epoch) });
  normChange = (c: Change): Change => ({ ...c, base: this.fromRed(c.base), version: this.fromRed(c.version), put: c.put.map(this.normRec) });

  normReply(r: CommitReply): CommitReply {
    if (r.ok) return { ...r, version: this.fromRed(r.version) };
    switch (r.reason) {
      case 'stale':
        return { ...r, version: this.fromRed(r.version), ...(r.missed ? { missed: r.missed.map(this.normChange) } : {}), ...(r.records ? { records: r.records.map(this.normRec) } : {}) };
      case 'dead':
        return { ...r, sessions: r.sessions.map((s) => ({ ...s, epoch: this.fromRed(s.epoch) })) };
      case 'grace':
        return { ...r, retryInMs: 0 };
      default:
        return r;
    }
  }

  ref(world: Map<string, SessionRef>, node: string): SessionRef {
    return world.get(node) ?? { node, epoch: 0, incarnation: 'none' };
  }

  note(map: Map<string, number[]>, k: string, v: number): void {
    const l = map.get(k) ?? [];
    if (l[l.length - 1] !== v) l.push(v);
    map.set(k, l);
  }

  /** An epoch of `node` in the model: its live one, or an older one. */
  epochOf(node: string, older: boolean): number {
    const l = this.epochs.get(node) ?? [];
    if (!older) return this.memRef.get(node)?.epoch ?? 1;
    return l.length >= 2 ? l[l.length - 2]! : (l[0] ?? 1) + 1000;
  }

  /** The engine step both worlds run (model numbering), from a command's abstract choices. */
  buildStep(node: string, fi: number, o: Extract<Op, { t: 'commit' | 'reassert' }>): EngineStep {
    const file = FILES[fi]!;
    const st = this.mem.snapshot().files[file] ?? { version: 0, records: [] };
    const recs = st.records;
    const remove: string[] = [];
    if (o.t === 'commit') {
      for (const i of o.rm) {
        const id = i >= 100 ? 'ghost' : recs.length > 0 ? recs[i % recs.length]!.id : undefined;
        if (id !== undefined && !remove.includes(id)) remove.push(id);
      }
    }
    const put: StoreRecord[] = [];
    for (const p of o.put) {
      const existing = p.pick >= 0 && recs.length > 0 ? recs[p.pick % recs.length] : undefined;
      const other = NODES[p.other]!;
      let owner: { node: string; epoch: number };
      if (p.who === 1 && existing !== undefined) owner = { node: existing.node, epoch: existing.epoch };
      else if (p.who === 2) owner = { node: other, epoch: this.epochOf(other, false) };
      else if (p.who === 3) owner = { node: other, epoch: this.epochOf(other, true) };
      else owner = { node, epoch: this.ref(this.memRef, node).epoch };
      if (o.t === 'reassert') owner = { node, epoch: this.ref(this.memRef, node).epoch };
      const id = existing?.id ?? `${node}.${++this.counter}`;
      if (put.some((x) => x.id === id)) continue;
      put.push({ id, ...owner, state: p.state, requestId: p.state === 'waiting' ? `r${++this.counter}` : '', data: DATA[p.data]!, seq: 0 });
    }
    // Waiters once the step applies (plus, for a large pick, a held record: the caller's bug).
    const after = new Map<string, StoreRecord>();
    for (const r of recs) if (!remove.includes(r.id)) after.set(r.id, r);
    for (const r of put) after.set(r.id, r);
    const waiters = [...after.values()].filter((r) => r.state === 'waiting').map((r) => r.id);
    const held = [...after.values()].filter((r) => r.state === 'held').map((r) => r.id);
    const edges: Required<EngineStep['edges'][number]>[] = [];
    for (const e of o.edges) {
      const waiter = e.pick === 99 ? held[0] : waiters.length > 0 ? waiters[e.pick % waiters.length] : undefined;
      if (waiter === undefined || edges.some((x) => x.waiter === waiter)) continue;
      const hard = e.hard.map((h) => OWNERS[h]!);
      const soft = e.soft.map((s) => OWNERS[s]!);
      const sessions: Record<string, string[]> = {};
      [...hard, ...soft].forEach((o, i) => {
        const v = e.sess[i] ?? 0;
        if (v === 0) return;
        const other = NODES[(v - 1) % NODES.length]!;
        (sessions[o] ??= []).push(`${other}|${this.epochOf(other, v > NODES.length)}`);
      });
      edges.push({ waiter, owner: OWNERS[e.owner]!, hard, soft, sessions, check: e.check });
    }
    let base = st.version;
    if (o.t === 'commit') {
      if (o.base === 'zero') base = 0;
      else if (o.base === 'unknown') base = 987_654;
      else if (o.base === 'stale') {
        const vs = this.versions.get(file) ?? [];
        base = vs.length >= 2 ? vs[vs.length - 2]! : 0;
      }
    }
    const notify =
      o.t === 'commit'
        ? o.notify.map((x) => ({ node: NODES[x.other]!, epoch: this.epochOf(NODES[x.other]!, x.stale), requestId: `q${x.other}`, kind: KINDS[x.kind]!, data: x.stale ? 'stale' : '' }))
        : [];
    return { file, base, step: `s${++this.counter}`, grants: o.t === 'commit' ? (o.grants ?? put.some((r) => r.state === 'held')) : false, remove, put, notify, edges };
  }

  toRedStep(s: EngineStep): EngineStep {
    return { ...s, base: this.toRed(s.base), put: s.put.map(this.redRec), notify: s.notify.map((x) => ({ ...x, epoch: this.toRed(x.epoch) })), edges: s.edges.map(this.redEdge) };
  }

  /** An edge's target sessions in Redis numbering (`sess` turns them back). */
  redEdge = <E extends { sessions: Record<string, readonly string[]> }>(e: E): E => ({ ...e, sessions: this.mapSessions(e.sessions, this.toRed) });
  mapSessions(sessions: Record<string, readonly string[]>, f: (v: number) => number): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [o, ss] of Object.entries(sessions)) out[o] = ss.map((x) => `${x.slice(0, x.lastIndexOf('|'))}|${f(Number(x.slice(x.lastIndexOf('|') + 1)))}`);
    return out;
  }

  /** Both worlds' outcome: a value, or the class of the error. */
  async both<A, B>(m: () => A, r: () => Promise<B>): Promise<[A | string, B | string]> {
    let a: A | string;
    let b: B | string;
    try {
      a = m();
    } catch (e) {
      if (!(e instanceof ProgrammingError)) throw e;
      a = 'ProgrammingError';
    }
    try {
      b = await r();
    } catch (e) {
      if (!(e instanceof ProgrammingError)) throw e;
      b = 'ProgrammingError';
    }
    return [a, b];
  }

  async step(o: Op): Promise<void> {
    switch (o.t) {
      case 'open': {
        const node = NODES[o.n]!;
        const m = this.mem.openSync(node, TTL, this.nextGrace);
        const r = await this.red.open(node, TTL, this.nextGrace);
        if ('taken' in r) throw new Error('a takeover open is never refused');
        if (r.created) this.offset = r.epoch - m.epoch;
        this.memRef.set(node, m);
        this.redRef.set(node, r);
        this.note(this.epochs, node, m.epoch);
        this.same([this.fromRed(r.epoch), r.graceMs > 0, r.created], [m.epoch, m.graceMs > 0, m.created], `open ${node}`);
        return;
      }
      case 'renew': {
        const node = NODES[o.n]!;
        const snap = this.mem.snapshot().inboxes[node] ?? [];
        let memAck = '';
        let redAck = '';
        if (o.ack >= 0 && o.ack < snap.length) {
          // The same position in both inboxes.
          memAck = (await this.mem.inbox(node).read('0'))[o.ack]!.id;
          const entries = (await this.admin.xrange(`{${this.ns}}:in:${node}`, '-', '+')) as [string, string[]][];
          redAck = entries[o.ack]![0];
        }
        const m = this.mem.renewSync(this.ref(this.memRef, node), TTL, memAck);
        const r = await this.red.renew(this.ref(this.redRef, node), TTL, redAck);
        // Each engine's own clock: not compared.
        this.same(r.kind === 'ok' ? { ...r, graceMs: r.graceMs > 0, now: 0 } : r, m.kind === 'ok' ? { ...m, graceMs: m.graceMs > 0, now: 0 } : m, `renew ${node}`);
        this.count(`renew ${m.kind}`);
        if (m.kind === 'reset') await this.step({ t: 'open', n: o.n });
        return;
      }
      case 'expire': {
        const node = NODES[o.n]!;
        this.mem.expire(node);
        await this.admin.del(`{${this.ns}}:s:${node}`);
        return;
      }
      case 'end': {
        const node = NODES[o.n]!;
        await this.mem.endSession(this.ref(this.memRef, node));
        await this.red.endSession(this.ref(this.redRef, node));
        return;
      }
      case 'commit':
      case 'reassert': {
        const node = NODES[o.n]!;
        const s = this.buildStep(node, o.f, o);
        const before = this.mem.snapshot().live;
        const [m, r] =
          o.t === 'commit'
            ? await this.both(
                () => this.mem.commitSync(this.ref(this.memRef, node), s),
                () => this.red.commit(this.ref(this.redRef, node), this.toRedStep(s)),
              )
            : await this.both(
                () => this.mem.reassertSync(this.ref(this.memRef, node), s.file, s.step, s.put, s.edges),
                () => this.red.reassert(this.ref(this.redRef, node), s.file, s.step, this.toRedStep(s).put, this.toRedStep(s).edges),
              );
        const norm = typeof r === 'string' ? r : o.t === 'commit' ? this.normReply(r as CommitReply) : r.ok ? { ...r, version: this.fromRed(r.version) } : r;
        const model = typeof m !== 'string' && !m.ok && m.reason === 'grace' ? { ...m, retryInMs: 0 } : m;
        // The model's clock stands still, Redis's runs: a session of a run slow enough (a loaded
        // machine) goes late on Redis alone, whose cycle through its edges is then 'overdue' where
        // the model finds it 'deadlock' (test/store/commit.test.ts compares the two rules on one clock).
        const late = typeof norm !== 'string' && !norm.ok && norm.reason === 'overdue' && typeof m !== 'string' && !m.ok && m.reason === 'deadlock' && (await this.redisLate());
        this.same(late ? { ...norm, reason: 'deadlock', retryInMs: undefined } : norm, late ? { ...model, retryInMs: undefined } : model, `${o.t} by ${node} on ${s.file}`);
        this.count(`${o.t} ${typeof m === 'string' ? m : m.ok ? 'ok' : m.reason}`);
        // As a NodeStore does: a node that hears of a reset opens a session in the new incarnation.
        if (typeof m !== 'string' && !m.ok && m.reason === 'reset') await this.step({ t: 'open', n: o.n });
        if (typeof m !== 'string' && m.ok) {
          // The safety invariant, stated on its own: nothing written for a session not alive.
          for (const p of s.put) this.same(before[p.node], p.epoch, `an accepted step wrote ${p.id} for a live session`);
          this.note(this.versions, s.file, m.version);
        }
        return;
      }
      case 'reap': {
        const m = this.mem.reapSync(o.limit);
        const r = await this.red.reap(o.limit);
        const norm = (d: DeadSession): DeadSession => ({ ...d, epoch: this.fromRed(d.epoch), files: d.files.map((x) => ({ ...x, version: this.fromRed(x.version), records: x.records.map(this.normRec) })) });
        this.same({ dead: r.dead.map(norm), more: r.more }, m, `reap ${o.limit}`);
        this.count(`reap ${m.dead.length > 0 ? 'found' : 'none'}`);
        return;
      }
      case 'sessionFiles': {
        // Every page to the end (the index, then what steps removed of the session while dead):
        // per file, the records by id (Redis' SSCAN may give a file twice, and pages differ).
        const node = NODES[o.n]!;
        const epoch = this.epochOf(node, o.older);
        const m = await this.allSessionFiles((c) => this.mem.sessionFiles({ node, epoch, incarnation: this.ref(this.memRef, node).incarnation }, c, o.limit), (r) => r);
        const r = await this.allSessionFiles((c) => this.red.sessionFiles({ node, epoch: this.toRed(epoch), incarnation: this.ref(this.redRef, node).incarnation }, c, o.limit), this.normRec);
        this.same(r, m, `sessionFiles ${node}|${epoch} by ${o.limit}`);
        this.count(`sessionFiles ${typeof m === 'string' ? m : Object.keys(m).length > 0 ? 'found' : 'none'}`);
        return;
      }
      case 'cycle': {
        const targets = o.targets.map((x) => OWNERS[x]!);
        const m = await this.mem.closesCycle(OWNERS[o.owner]!, targets, o.hardOnly);
        this.same(await this.red.closesCycle(OWNERS[o.owner]!, targets, o.hardOnly), m, 'closesCycle');
        this.count(`cycle ${m}`);
        return;
      }
      case 'reset': {
        this.mem.reset();
        const keys = await this.keys();
        if (keys.length > 0) await this.admin.del(...keys);
        this.nextGrace = o.grace ? GRACE : 0;
        return;
      }
      case 'endGrace':
        this.mem.endGrace();
        await this.admin.del(`{${this.ns}}:grace`);
        return;
    }
  }

  /** A session's files read to the end, per file its records by id (sorted), or 'reset'. */
  async allSessionFiles(
    page: (cursor: string) => Promise<SessionFilesPage | 'reset'>,
    norm: (r: StoreRecord) => StoreRecord,
  ): Promise<Record<string, StoreRecord[]> | 'reset'> {
    const out = new Map<string, Map<string, StoreRecord>>();
    let cursor = '0';
    for (let i = 0; i < 1000; i++) {
      const p = await page(cursor);
      if (p === 'reset') return 'reset';
      for (const { file, records } of p.files) {
        let m = out.get(file);
        if (m === undefined) out.set(file, (m = new Map()));
        for (const r of records) m.set(r.id, norm(r));
      }
      cursor = p.cursor;
      if (cursor === '0') break;
    }
    return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : 1)).map(([f, m]) => [f, [...m.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))]));
  }

  async keys(): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.admin.scan(cursor, 'MATCH', `{${this.ns}}:*`, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
    return out;
  }

  /** The Redis engine's whole state, read from its keys, in the model's numbering. */
  async redisSnapshot(): Promise<EngineSnapshot> {
    const p = `{${this.ns}}:`;
    const snap: EngineSnapshot = { files: {}, sessionFiles: {}, reaped: {}, edges: {}, edgeOwners: {}, inboxes: {}, live: {}, registry: [], grace: false };
    const sess = (s: string) => {
      const bar = s.lastIndexOf('|');
      return `${s.slice(0, bar)}|${this.fromRed(Number(s.slice(bar + 1)))}`;
    };
    for (const key of (await this.keys()).sort()) {
      const k = key.slice(p.length);
      if (k.startsWith('r:')) {
        const file = k.slice(2);
        const flat = await this.admin.hgetall(key);
        const version = Number(await this.admin.hget(`${p}m:${file}`, 'v'));
        snap.files[file] = {
          version: this.fromRed(version),
          records: Object.entries(flat)
            .map(([id, v]) => this.normRec(decodeRecord(id, v)))
            .sort((a, b) => a.seq - b.seq),
        };
      } else if (k.startsWith('sf:')) snap.sessionFiles[sess(k.slice(3))] = (await this.admin.smembers(key)).sort();
      else if (k.startsWith('rp:')) {
        const kept: Record<string, StoreRecord[]> = {};
        for (const [file, json] of Object.entries(await this.admin.hgetall(key))) {
          const flat = JSON.parse(json) as string[];
          const recs: StoreRecord[] = [];
          for (let i = 0; i + 1 < flat.length; i += 2) recs.push(this.normRec(decodeRecord(flat[i]!, flat[i + 1]!)));
          kept[file] = recs;
        }
        snap.reaped[sess(k.slice(3))] = kept;
      }
      else if (k.startsWith('w:')) {
        const g: EngineSnapshot['edges'][string] = {};
        for (const [field, v] of Object.entries(await this.admin.hgetall(key))) {
          const [node, epoch] = v.split('|');
          const [hard, soft, sessions] = JSON.parse(v.slice(v.indexOf('|', v.indexOf('|') + 1) + 1)) as [string[], string[], Record<string, string[]>];
          g[field] = { node: node!, epoch: this.fromRed(Number(epoch)), hard, soft, sessions: this.mapSessions(sessions, this.fromRed) };
        }
        snap.edges[k.slice(2)] = g;
      } else if (k.startsWith('e:')) snap.edgeOwners[k.slice(2)] = await this.admin.hgetall(key);
      else if (k.startsWith('in:')) {
        const entries = (await this.admin.xrange(key, '-', '+')) as [string, string[]][];
        if (entries.length === 0) continue;
        snap.inboxes[k.slice(3)] = entries.map(([, kv]) => {
          const m = new Map<string, string>();
          for (let i = 0; i + 1 < kv.length; i += 2) m.set(kv[i]!, kv[i + 1]!);
          return {
            file: m.get('f') ?? '',
            version: this.fromRed(Number(m.get('v') ?? 0)),
            from: m.get('n') ?? '',
            epoch: this.fromRed(Number(m.get('e') ?? 0)),
            requestId: m.get('r') ?? '',
            kind: m.get('k') ?? '',
            data: m.get('d') ?? '',
          };
        });
      } else if (k.startsWith('s:')) snap.live[k.slice(2)] = this.fromRed(Number(await this.admin.get(key)));
      else if (k === 'sessions') snap.registry = (await this.admin.zrange(key, '0', '-1')).map((m) => sess(m)).sort();
      else if (k === 'grace') snap.grace = true;
    }
    return snap;
  }

  /** The model's own consistency: the session → files index is exactly what the records say. */
  checkIndex(s: EngineSnapshot): void {
    const derived: Record<string, Set<string>> = {};
    for (const [file, st] of Object.entries(s.files)) for (const r of st.records) (derived[`${r.node}|${r.epoch}`] ??= new Set()).add(file);
    const asLists = Object.fromEntries(Object.entries(derived).map(([k, v]) => [k, [...v].sort()]));
    this.same(s.sessionFiles, asLists, 'the session → files index matches the records');
    for (const k of Object.keys(s.sessionFiles)) this.same(s.registry.includes(k), true, `a session with records (${k}) is registered`);
  }
}

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

t.test('the Redis engine against the model, N nodes, random interleavings', { skip: noRedis }, async (t) => {
  const admin = await server.client();
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60, size: 'medium' }), async (ops) => {
      runs++;
      const ns = `prop-${randomUUID().slice(0, 8)}`;
      const red = await RedisEngine.connect({ url: server.url, shownUrl: server.url, namespace: ns, requestTimeoutMs: 30_000 });
      const run = new Run(red, admin, ns);
      try {
        // Every node starts with a session; the commands may expire, end, reopen them.
        for (const o of [...NODES.map((_, i): Op => ({ t: 'open', n: i })), ...ops]) {
          await run.step(o);
          const model = run.mem.snapshot();
          if (Object.keys(model.reaped).length > 0) run.count('state with reaped records');
          run.checkIndex(model);
          run.same(await run.redisSnapshot(), model, `the state after ${JSON.stringify(o)}`);
          if (run.failures.length > 0) break;
        }
      } finally {
        await red.shutdown();
        const keys = await run.keys();
        if (keys.length > 0) await admin.del(...keys);
      }
      if (run.failures.length > 0) throw new Error(run.failures.join('\n'));
    }),
    { numRuns: RUNS },
  );
  t.equal(runs >= RUNS, true, `${runs} runs`);
  t.comment([...Run.tally].sort().map(([k, v]) => `${k}: ${v}`).join(', '));
});

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
