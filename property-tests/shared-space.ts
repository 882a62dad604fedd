/**
 * The shared-space property's harness (shared-space.test.ts): N logical nodes, each a NodeStore
 * from memoryStore and a SharedFiles constructed in-process, over one MemoryEngine, driven side by
 * side with one plain LockTable that receives the same calls qualified by node, in commit order.
 * Every call waits for quiescence (every file mailbox of every node empty, every inbox event sent
 * delivered), then the answers and the store's records are compared with the model.
 */
import { setImmediate as turn } from 'node:timers/promises';
import { endedByFile, type StoreLink } from '../src/actors/shared-file.js';
import { SharedFiles } from '../src/actors/shared-files.js';
import type { ReplyTarget, Result } from '../src/actors/reply-target.js';
import { F_GETLK, F_UNLCK } from '../src/core/codes.js';
import type { Lock, LockRequest, Policy } from '../src/core/file-locks.js';
import { LockTable, type CancelReason, type Pending, type PosixReply, type TableHooks } from '../src/core/lock-table.js';
import { decodeRecord, nodeOf, qualify } from '../src/core/records.js';
import { parseCheckIo, parseCloseHandle, parseFlush, parseLock, parseLockFile, parseRelease, parseUnlockFile, type Call } from '../src/core/requests.js';
import { MemoryEngine, memoryStore, type InboxEvent, type NodeStore } from '../src/store/index.js';
import { INBOX_MARK } from '../src/store/types.js';
import { fileHandleOf, OFD_OWNERS, POSIX_OWNERS, WIN_HANDLES } from './arbitraries.js';
import { show, type Method, type Op } from './harness.js';

export const PATHS = ['/a', '/b'];
export const NODE_NAMES = ['n0', 'n1', 'n2'];

// ---- one logical node ------------------------------------------------------------------------------

/** What the file actors of SharedFiles keep private and the quiescence wait reads: each file's mailbox. */
interface Mailbox {
  readonly queued: number;
  readonly tail: Promise<unknown>;
}

function mailboxes(sf: SharedFiles): Mailbox[] {
  return [...(sf as unknown as { files: Map<string, Mailbox> }).files.values()];
}

interface SpaceNode {
  readonly index: number;
  readonly name: string;
  readonly store: NodeStore;
  readonly sf: SharedFiles;
  readonly epoch: number;
  /** Inbox events other nodes' committed steps sent to this node, and those its onEvents received. */
  sent: number;
  delivered: number;
  /** Its session ended (SpaceOp 'die'): it takes no more calls, and another node reaped its records. */
  dead: boolean;
}

/** The harness's commands, and a node's death: its session ends, another node reaps what it held. */
export type SpaceOp = Op | { readonly t: 'die' };

/** A request of the run, by its host id (unique across nodes). */
export interface Req {
  readonly id: number;
  readonly node: number;
  readonly text: string;
  /** While it waits in the model. */
  pending: Pending | undefined;
}

/** One answer, as `#id outcome` on a node. */
interface Answer {
  readonly id: number;
  readonly node: number;
  readonly out: string;
  /** The model's answers to waiters: the file the waiter waited on (runModel orders by it). */
  readonly path?: string;
}

/** A commit the space attempted (the link's view): which node, on which version, with what reply. */
export interface CommitSeen {
  readonly node: number;
  readonly base: number;
  readonly reply: string;
}

/** A disagreement with the model or a broken invariant (its message carries the run's transcript). */
export class Violation extends Error {}

/** Across runs: commits the spaces attempted, and how many were refused as stale (decided again). */
/** Hooks that approve every grant, so that grants carry fences (checked as (d)). */
const HOOKS: TableHooks = { approve: () => 0, released: () => {} };

export const tally = { commits: 0, stale: 0, waited: 0, fenced: 0 };

function isPending(v: unknown): v is Pending {
  return typeof v === 'object' && v !== null && 'waiter' in v && 'path' in v;
}

/** An outcome as text: 'queued', 'void', 'code:N' or 'reply:result|type|start|len|pid'. */
function outOf(r: unknown): string {
  if (isPending(r)) return 'queued';
  if (r === undefined) return 'void';
  if (typeof r === 'number') return `code:${r}`;
  const p = r as PosixReply;
  return `reply:${p.result}|${p.lockType}|${p.lockStart}|${p.lockLen}|${p.lockPid}`;
}

/** A lock or request as the records show it: its holder's pid too (listings and F_GETLK read it). */
function lineOf(r: Pick<LockRequest, 'kind' | 'write' | 'owner' | 'start' | 'end' | 'origin'>): string {
  return `${r.kind} ${r.write ? 'W' : 'R'} ${r.owner} [${r.start}, ${r.end}] pid ${r.origin.pid}`;
}

/** Two granted locks that must never coexist, read off the records alone (no src/core code). */
function clash(a: LockRequest, b: LockRequest): boolean {
  if ((a.kind === 'flock') !== (b.kind === 'flock')) return false;
  if (!a.write && !b.write) return false;
  if (a.kind !== 'flock' && !(a.start <= b.end && b.start <= a.end)) return false;
  if (a.owner !== b.owner) return true;
  // A Windows owner may hold a shared record under its own exclusive one, never two exclusive ones.
  return a.kind === 'windows' && a.write && b.write;
}

/**
 * The space under test and its model. Calls go in one at a time (`submit`, or `together` for
 * calls decided concurrently); each waits until the space is quiescent, then compares.
 */
export class Space {
  readonly engine = new MemoryEngine();
  readonly nodes: SpaceNode[] = [];
  readonly model: LockTable;
  readonly reqs = new Map<number, Req>();
  readonly commits: CommitSeen[] = [];
  readonly faults: string[] = [];
  readonly transcript: string[] = [];
  private nextId = 1;
  /** (d) Per file, the fences its held records had after its last commit, and the highest ever. */
  private readonly fences = new Map<string, { max: number; live: Set<number> }>();
  /** The current step's answers: the space's (ReplyTargets) and the model's (results and done callbacks). */
  private shared: Answer[] = [];
  private expected: Answer[] = [];

  private constructor(readonly policy: Policy) {
    this.model = new LockTable({ policy, now: () => 0 });
  }

  static async open(n: number, policy: Policy): Promise<Space> {
    const s = new Space(policy);
    try {
      for (let i = 0; i < n; i++) await s.addNode(i);
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  private async addNode(index: number): Promise<void> {
    const name = NODE_NAMES[index]!;
    let self: SpaceNode | undefined;
    const store = await memoryStore(
      {
        onEvents: (evs) => this.onEvents(self!, evs),
        onError: (e) => this.faults.push(`${name} store: ${e.message}`),
      },
      { engine: this.engine, node: name, graceMs: 0 },
    );
    const link: StoreLink = {
      commit: async (step) => {
        const r = await store.commit(step);
        this.commits.push({ node: index, base: step.base, reply: r.ok ? 'ok' : r.reason });
        tally.commits++;
        if (!r.ok && r.reason === 'stale') tally.stale++;
        if (r.ok) {
          // (c) at every commit, not only at quiescent points: the file as this step left it.
          const held = (this.engine.snapshot().files[step.file]?.records ?? []).filter((x) => x.state === 'held').map((x) => decodeRecord(x.data, step.file).req);
          for (let i = 0; i < held.length; i++) {
            for (let j = i + 1; j < held.length; j++) if (clash(held[i]!, held[j]!)) this.faults.push(`${name} committed conflicting granted records on ${step.file}: ${lineOf(held[i]!)} and ${lineOf(held[j]!)}`);
          }
          this.checkFences(name, step.file, held);
          for (const x of step.notify ?? []) {
            const to = this.nodes.find((m) => m.name === x.node);
            // A mark (to the committing node itself) is delivered like any other event.
            if (to !== undefined && (to !== self || x.kind === INBOX_MARK)) to.sent++;
          }
        }
        return r;
      },
      reassert: (f, records, edges) => store.reassert(f, records, edges),
      fileReach: (file, pairs) => store.fileReach(file, pairs),
    };
    const epoch = store.session().epoch;
    // The lease as the caller's side keeps it (shared-space.ts): these sessions never expire.
    const lease = new Float64Array(new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT));
    lease[0] = Number.POSITIVE_INFINITY;
    lease[1] = epoch;
    const sf = new SharedFiles(link, { node: name, policy: this.policy, requestTimeoutMs: 10_000, lease: lease.buffer as SharedArrayBuffer, epoch }, HOOKS, (m) => this.faults.push(`${name}: ${m}`));
    self = { index, name, store, sf, epoch, sent: 0, delivered: 0, dead: false };
    this.nodes.push(self);
  }

  /**
   * (d) Every node has hooks, so every grant is numbered: each held record's fence is one of the
   * file's held records had after its last commit (a split keeps its lock's number) or above every
   * fence the file showed before, whichever node granted it, also after the file had no record
   * left; a number released never comes back.
   */
  private checkFences(name: string, file: string, held: readonly LockRequest[]): void {
    const f = this.fences.get(file) ?? { max: 0, live: new Set<number>() };
    this.fences.set(file, f);
    let max = f.max;
    for (const r of held) {
      const n = r.fence;
      if (n === undefined || !(n > 0)) this.faults.push(`${name} committed a granted record on ${file} without a fence: ${lineOf(r)}`);
      else if (!f.live.has(n)) {
        if (n <= f.max) this.faults.push(`${name} committed a grant on ${file} with fence ${n}, not above the file's highest before, ${f.max}: ${lineOf(r)}`);
        tally.fenced++;
        max = Math.max(max, n);
      }
    }
    f.live = new Set(held.flatMap((r) => (r.fence === undefined ? [] : [r.fence])));
    f.max = max;
  }

  /** src/caller/shared-space.ts onEvents, for one node: each file's 'end' events to its SharedFiles. */
  private onEvents(n: SpaceNode, events: readonly InboxEvent[]): void {
    n.delivered += events.length;
    for (const [path, evs] of endedByFile(events)) n.sf.ended(path, evs);
  }

  private target(node: number): ReplyTarget {
    return {
      answer: (id: number, _path: string | undefined, res: Result) => {
        this.shared.push({ id, node, out: outOf(res) });
      },
      queued: (id: number) => {
        tally.waited++;
        this.shared.push({ id, node, out: 'queued' });
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.store.close()));
  }

  fail(msg: string): never {
    throw new Violation(`${msg}\n  transcript:\n    ${this.transcript.join('\n    ')}`);
  }

  // ---- quiescence --------------------------------------------------------------------------------

  /**
   * Until nothing is left to happen: every file's mailbox on every node empty (its decisions, their
   * commits and answers done) and every inbox event that a committed step sent delivered to its
   * node's SharedFiles. Inbox delivery and decisions run on promise jobs only (no timer on the
   * paths this test takes), so one setImmediate turn lets every chain started so far run to its
   * next mailbox; a sent event still missing after such a turn is lost.
   */
  async quiesce(): Promise<void> {
    for (let round = 0; ; round++) {
      if (round > 10_000) this.fail('the space never went quiescent');
      await turn();
      const busy = this.nodes.flatMap((n) => mailboxes(n.sf)).filter((m) => m.queued > 0);
      if (busy.length > 0) {
        await Promise.all(busy.map((m) => m.tail));
        continue;
      }
      for (const n of this.nodes) if (n.delivered !== n.sent) this.fail(`inbox of ${n.name}: ${n.sent} events sent, ${n.delivered} delivered`);
      if (this.faults.length > 0) this.fail(`faults reported: ${this.faults.join('; ')}`);
      return;
    }
  }

  // ---- one step ----------------------------------------------------------------------------------

  /** The model's side of one call: its answers (with F_GETLK's pid as another node sees it). */
  private runModel(req: Req, call: Call): void {
    const name = NODE_NAMES[req.node]!;
    const q = qualify(call, name);
    let remoteHolder = false;
    if (q.op === 'lock' && q.cmd === F_GETLK && q.lockType !== F_UNLCK) {
      // The lock the model reports (the same lookup LockTable.getlk makes): another node's holder
      // shows lockPid 0 (API.md, shared-file.ts build()), its own node's the holder's pid.
      const h = this.model.fileLocks(q.path)?.reported(q.req);
      remoteHolder = h !== undefined && nodeOf(h.owner) !== name;
    }
    // A waiter's done callback answers into whichever step ends it.
    const before = this.expected.length;
    const r = this.model.run(q, (v) => {
      const path = req.pending?.path;
      req.pending = undefined;
      this.expected.push(path === undefined ? { id: req.id, node: req.node, out: outOf(v) } : { id: req.id, node: req.node, out: outOf(v), path });
    });
    if (r instanceof Promise) this.fail('the model table returned a Promise');
    const reported = remoteHolder ? { ...(r as PosixReply), lockPid: 0 } : r;
    const own = { id: req.id, node: req.node, out: outOf(reported) };
    if (isPending(r)) req.pending = r;
    // Under 'fifo' a classic POSIX request that queues makes the table settle the other files
    // (settleOthers), which answers the waiters that lets through before the call returns; a node
    // runs those files' wake-up passes once the queueing step is written (SharedFiles.settleOthers):
    // after it. Any other answer before a call's own (a waiting flock conversion lets the earlier
    // waiters try first, on its own file) comes first on a node too.
    // So too for a call whose settle made a waiter wait for an owner queued behind it on another
    // file (LockTable.softCycles): the answers of other files' waiters come after the call's own.
    if (isPending(r) && this.policy === 'fifo' && q.op === 'lock' && q.req.kind === 'posix') this.expected.splice(before, 0, own);
    else if (this.policy === 'fifo') {
      const after = this.expected.splice(before);
      const elsewhere = (a: Answer): boolean => a.path !== undefined && a.path !== q.path;
      this.expected.push(...after.filter((a) => !elsewhere(a)), own, ...after.filter(elsewhere));
    } else this.expected.push(own);
  }

  /**
   * Calls decided at once on their nodes (one call: sequential driving), applied to the model in
   * the order given by `order` (default: as given), then compared once the space is quiescent.
   */
  async together(calls: { node: number; call: Call; text: string }[], order?: (reqs: Req[]) => Req[]): Promise<Req[]> {
    const reqs = calls.map(({ node, text }) => {
      const r: Req = { id: this.nextId++, node, text, pending: undefined };
      this.reqs.set(r.id, r);
      return r;
    });
    this.shared = [];
    this.expected = [];
    for (const [i, c] of calls.entries()) this.nodes[c.node]!.sf.run(reqs[i]!.id, c.call, this.target(c.node));
    await this.quiesce();
    const byId = new Map(reqs.map((r, i) => [r.id, calls[i]!.call]));
    for (const r of order === undefined ? reqs : order(reqs)) this.runModel(r, byId.get(r.id)!);
    this.compare(reqs.map((r) => `${NODE_NAMES[r.node]} #${r.id} ${r.text}`).join(' || '));
    await this.checkRecords();
    return reqs;
  }

  submit(node: number, call: Call, text: string): Promise<Req[]> {
    return this.together([{ node, call, text }]);
  }

  /** Ends waiting request `req` (its signal or timeout) on its node and in the model. */
  async cancel(req: Req, reason: CancelReason): Promise<void> {
    this.shared = [];
    this.expected = [];
    this.nodes[req.node]!.sf.cancel(req.id, reason);
    await this.quiesce();
    const r = this.model.cancel(req.pending!, reason);
    if (r !== true) this.fail(`the model could not cancel #${req.id}: ${String(r)}`);
    this.compare(`${NODE_NAMES[req.node]} cancel #${req.id} '${reason}'`);
    await this.checkRecords();
  }

  private compare(what: string): void {
    const got = this.shared;
    const expected = this.expected;
    const fmt = (a: Answer) => `${NODE_NAMES[a.node]} #${a.id} ${a.out}`;
    this.transcript.push(`${what}\n      space: ${got.map(fmt).join('; ') || '-'}\n      model: ${expected.map(fmt).join('; ') || '-'}`);
    for (const n of this.nodes) {
      const g = got.filter((a) => a.node === n.index).map(fmt);
      const e = expected.filter((a) => a.node === n.index).map(fmt);
      if (g.join('; ') !== e.join('; ')) this.fail(`answers on ${n.name}: [${g.join('; ')}], the model's: [${e.join('; ')}]`);
    }
  }

  /** (b) and (c): the store's records, decoded, are the model's state; no two granted ones conflict. */
  async checkRecords(): Promise<void> {
    for (const path of PATHS) {
      const st = await this.engine.load(path);
      const held: LockRequest[] = [];
      const waiting: string[] = [];
      for (const r of st.records) {
        const d = decodeRecord(r.data, path).req;
        const owner = this.nodes.find((n) => n.name === nodeOf(d.owner));
        if (owner === undefined || r.node !== owner.name || r.epoch !== owner.epoch) {
          this.fail(`record ${r.id} of ${path} (${lineOf(d)}) belongs to ${r.node}|${r.epoch}, its owner's session is ${owner?.name}|${owner?.epoch}`);
        }
        if (r.state === 'held') held.push(d);
        else waiting.push(lineOf(d));
      }
      for (let i = 0; i < held.length; i++) {
        for (let j = i + 1; j < held.length; j++) if (clash(held[i]!, held[j]!)) this.fail(`conflicting granted records on ${path}: ${lineOf(held[i]!)} and ${lineOf(held[j]!)}`);
      }
      const f = this.model.fileLocks(path);
      const mHeld = (f?.granted() ?? []).map(lineOf).sort();
      const mWaiting = [...(f?.waiters ?? [])].map((w) => lineOf(w.req));
      const sHeld = held.map(lineOf).sort();
      if (sHeld.join('\n') !== mHeld.join('\n')) this.fail(`granted records of ${path}:\n      ${sHeld.join('\n      ')}\n    the model's:\n      ${mHeld.join('\n      ')}`);
      if (waiting.join('\n') !== mWaiting.join('\n')) this.fail(`waiting records of ${path}:\n      ${waiting.join('\n      ')}\n    the model's queue:\n      ${mWaiting.join('\n      ')}`);
      else this.checkEdges(path, st.records, [...(f?.waiters ?? [])]);
    }
    // No edge outlives its waiter: every stored edge names a waiting record of its file, of its owner.
    for (const [owner, fields] of Object.entries(this.engine.snapshot().edges)) {
      for (const field of Object.keys(fields)) {
        const [path, id] = field.split('\n') as [string, string];
        const r = (await this.engine.load(path)).records.find((x) => x.id === id);
        if (r?.state !== 'waiting' || decodeRecord(r.data, path).req.owner !== owner) this.fail(`an edge of ${owner} names ${id} on ${path}, which is not its waiting record`);
      }
    }
  }

  /**
   * (d) The engine's wait-for edges of each POSIX waiter are the model's: the owners it waits for
   * (hard) and queues behind (soft). A stale edge would let the engine's cycle walk find a
   * deadlock the model does not have.
   */
  private checkEdges(path: string, records: readonly { id: string; state: string; data: string }[], model: readonly { req: LockRequest; blockers: ReadonlySet<string>; queuedBehind: ReadonlySet<string> }[]): void {
    const edges = this.engine.snapshot().edges;
    const waiters = records.filter((r) => r.state === 'waiting');
    waiters.forEach((r, i) => {
      const w = model[i]!;
      if (w.req.kind !== 'posix') return;
      const e = edges[w.req.owner]?.[`${path}\n${r.id}`];
      const show = (h: readonly string[], s: readonly string[]) => `hard [${[...h].sort().join(', ')}] soft [${[...s].sort().join(', ')}]`;
      const got = show(e?.hard ?? [], e?.soft ?? []);
      const want = show([...w.blockers], [...w.queuedBehind]);
      if (got !== want) this.fail(`edges of ${lineOf(w.req)} on ${path}: ${got}, the model's: ${want}`);
      // Each target is named with the session of its node (no node here comes back under a new one).
      for (const o of [...(e?.hard ?? []), ...(e?.soft ?? [])]) {
        const n = this.nodes.find((x) => x.name === nodeOf(o));
        const ss = e?.sessions[o] ?? [];
        if (n === undefined || ss.length !== 1 || ss[0] !== `${n.name}|${n.epoch}`) this.fail(`edges of ${lineOf(w.req)} on ${path}: target ${o} named with sessions [${ss.join(', ')}]`);
      }
    });
  }

  /** Requests still waiting in the model, by id. */
  waiting(): Req[] {
    return [...this.reqs.values()].filter((r) => r.pending !== undefined).sort((a, b) => a.id - b.id);
  }

  // ---- the generated commands ----------------------------------------------------------------

  /** The model's granted Windows records of `path`, in listing order. */
  private winRecords(path: string): Lock[] {
    return (this.model.fileLocks(path)?.granted() ?? []).filter((l) => l.kind === 'windows');
  }

  async run(node: number, op: SpaceOp): Promise<void> {
    // A dead node's calls go to the next live one.
    const live = this.nodes.filter((n) => !n.dead);
    if (this.nodes[node]!.dead) node = live[node % live.length]!.index;
    if (op.t === 'die') {
      await this.die(node);
      return;
    }
    if (op.t === 'cancel') {
      const w = this.waiting().filter((r) => !this.nodes[r.node]!.dead);
      if (w.length === 0) return;
      await this.cancel(w[op.k % w.length]!, op.reason);
      return;
    }
    let method: Method;
    let input: unknown;
    if (op.t === 'unlockHeld') {
      // unlockFile of one of the model's granted Windows records, on the node that holds it.
      const recs = this.winRecords(op.path);
      if (recs.length === 0) return;
      const l = recs[op.k % recs.length]!;
      const e = l.origin.event;
      node = NODE_NAMES.indexOf(nodeOf(l.owner));
      if (this.nodes[node]!.dead) return;
      method = 'unlockFile';
      input = { fileName: op.path, byteOffset: l.start, length: l.end - l.start + 1n, handle: e.handle, processId: e.processId, key: e.key };
    } else {
      method = op.method;
      input = op.input;
    }
    const call = parse(method, input);
    // A value the parser answers alone never reaches a table (the coordinator answers it).
    if (call === undefined) return;
    await this.submit(node, call, `${method}(${show(input)})`);
  }

  /**
   * Node `k` dies (the last live node never does): its session ends in the engine, as a crash
   * whose TTL ran out leaves it, and the next live node reaps its records as src/caller/
   * shared-space.ts does (reap(), then each file's actor removes them as a step). The model drops
   * its locks and waiters, which wakes whoever they blocked; its own requests get no answer.
   */
  async die(k: number): Promise<void> {
    const n = this.nodes[k]!;
    const reaper = this.nodes.find((x) => !x.dead && x !== n);
    if (n.dead || reaper === undefined) return;
    this.shared = [];
    this.expected = [];
    n.dead = true;
    await n.store.close();
    const r = await reaper.store.reap(100);
    const byFile = new Map<string, { node: string; epoch: number }[]>();
    for (const d of r.dead) for (const f of d.files) byFile.set(f.file, [...(byFile.get(f.file) ?? []), { node: d.node, epoch: d.epoch }]);
    // One file at a time, in the order the model drops them: the answers of each come in order.
    for (const path of PATHS) {
      const sessions = byFile.get(path);
      if (sessions === undefined) continue;
      void reaper.sf.reap(path, sessions);
      await this.quiesce();
    }
    for (const path of PATHS) {
      const f = this.model.fileLocks(path);
      if (f === undefined) continue;
      const locks = f.granted().filter((l) => nodeOf(l.owner) === n.name);
      const waiters = [...f.waiters].filter((w) => nodeOf(w.req.owner) === n.name);
      if (this.model.dropRecords(path, locks, waiters) instanceof Promise) this.fail('the model table returned a Promise');
    }
    for (const q of this.reqs.values()) if (q.node === k) q.pending = undefined;
    this.expected = this.expected.filter((a) => a.node !== k);
    this.shared = this.shared.filter((a) => a.node !== k);
    this.compare(`${n.name} dies; ${reaper.name} reaps`);
    await this.checkRecords();
  }

  /** Releases everything every node may hold or wait for, then checks that nothing is left. */
  async releaseAll(): Promise<void> {
    for (const n of this.nodes) {
      if (n.dead) continue;
      for (const path of PATHS) {
        for (const handle of WIN_HANDLES) await this.submit(n.index, parseCloseHandle({ fileName: path, handle }), `closeHandle(${show(handle)})`);
        const handles = [...POSIX_OWNERS.map((_, i) => fileHandleOf('posix', i)), ...OFD_OWNERS.map((_, i) => fileHandleOf('ofd', i))];
        for (const fileHandle of handles) {
          const i = OFD_OWNERS.findIndex((_, j) => fileHandleOf('flock', j) === fileHandle);
          const input = i >= 0 ? { path, fileHandle, lockOwner: OFD_OWNERS[i] } : { path, fileHandle };
          await this.submit(n.index, parseRelease(input), `release(${show(input)})`);
        }
        for (const lockOwner of POSIX_OWNERS) await this.submit(n.index, parseFlush({ path, lockOwner }), `flush(${show(lockOwner)})`);
      }
    }
    const left = this.waiting();
    if (left.length > 0) this.fail(`requests still waiting after everything was released: ${left.map((r) => `#${r.id}`).join(', ')}`);
    for (const path of PATHS) {
      const st = await this.engine.load(path);
      if (st.records.length > 0) this.fail(`records left on ${path}: ${st.records.map((r) => r.data).join(', ')}`);
    }
    for (const n of this.nodes) {
      if (n.dead) continue;
      const c = n.sf.counts();
      if (c.waiters > 0) this.fail(`${n.name} still counts ${c.waiters} waiting requests`);
    }
  }
}

/** A public request parsed as the coordinator parses it; undefined when the parser answers it alone. */
export function parse(method: Method, input: unknown): Call | undefined {
  let c: Call | number | PosixReply;
  switch (method) {
    case 'lockFile':
      c = parseLockFile(input);
      break;
    case 'unlockFile':
      c = parseUnlockFile(input);
      break;
    case 'closeHandle':
      c = parseCloseHandle(input);
      break;
    case 'checkIo':
      c = parseCheckIo(input);
      break;
    case 'lock':
      c = parseLock(input);
      break;
    case 'flush':
      c = parseFlush(input);
      break;
    case 'release':
      c = parseRelease(input);
      break;
  }
  return typeof c === 'object' && 'op' in c ? c : undefined;
}

/** One run of the property: a fresh space of `nodes` nodes, the commands, then everything released. */
export async function runScenario(policy: Policy, nodes: number, cmds: readonly (readonly [number, SpaceOp])[]): Promise<void> {
  const s = await Space.open(nodes, policy);
  try {
    for (const [n, op] of cmds) await s.run(n % nodes, op);
    await s.releaseAll();
  } finally {
    await s.close();
  }
}
