/**
 * The lost-replies property's harness (lost-replies.test.ts): 2-3 nodes, each a NodeStore from
 * memoryStore and a SharedFiles, over one MemoryEngine, each behind a link that can lose a step's
 * reply after it applied (its resends lost too, for a while or until the request's deadline), cut
 * the node off (every step refused 'unreachable', not applied), and hold back its inbox events.
 * A flood node makes more steps on a file than the engine's log keeps (64), so the next stale
 * reply is the whole record set. Commands run one at a time (each until every file mailbox of
 * every node is empty), or "together" with the next one; faults start and end at chosen commands,
 * so the schedule is fast-check's (it shrinks with the commands). Then everything heals, every
 * handle is closed, every request still waiting is aborted, and the checks run:
 * - safety, after every step the engine applies (any node's, the flood's): no two granted records
 *   of a file conflict (core conflicts() both ways: overlapping, one a write, different owners;
 *   two exclusive Windows records of one owner);
 * - liveness: every request is answered within BUDGET_MS of the heal;
 * - consistency, once healed and settled: every waiting record stands for a request of its node
 *   that still waits; every held byte of an owner (by mode) lies in a request of that owner
 *   answered granted; and once every handle is closed the engine holds no record. A violation
 *   that a fault report of the same node about the same file explains ("could not be undone")
 *   is counted and printed, not failed.
 */
import { setImmediate as turn } from 'node:timers/promises';
import { endedByFile, type StoreLink } from '../src/actors/shared-file.js';
import { SharedFiles } from '../src/actors/shared-files.js';
import type { ReplyTarget, Result } from '../src/actors/reply-target.js';
import { F_GETLK, F_SETLK, F_UNLCK, F_WRLCK } from '../src/core/codes.js';
import { conflicts, type LockRequest } from '../src/core/file-locks.js';
import type { PosixReply } from '../src/core/lock-table.js';
import { decodeRecord, encodeLock, qualify } from '../src/core/records.js';
import { parseCloseHandle, parseFlush, parseLock, parseRelease, parseUnlockFile, type Call } from '../src/core/requests.js';
import { MemoryEngine, memoryStore, type CommitReply, type EngineStep, type InboxEvent, type NodeStore, type SessionRef, type Step } from '../src/store/index.js';
import { fileHandleOf, OFD_OWNERS, POSIX_OWNERS, WIN_HANDLES } from './arbitraries.js';
import { show, type Method } from './harness.js';
import { parse } from './shared-space.js';

export const PATHS = ['/a', '/b'];
export const NODE_NAMES = ['n0', 'n1', 'n2'];
/** The actors' request timeout: short, so that give-ups happen. */
export const REQUEST_TIMEOUT_MS = 200;
/**
 * How long a request may stay unanswered once everything healed and was released. Passing runs
 * answer within a few steps (ms); the budget is for a machine whose CPUs are busy with other
 * work, and only a failing run waits it out.
 */
export const BUDGET_MS = 20_000;

/** A lost reply's resends: lost this many times, then through (Infinity: until the deadline). */
export type LROp =
  | { readonly t: 'call'; readonly method: Method; readonly input: unknown }
  /** unlockFile of the k-th lockFile call made so far (any node's), on its node. */
  | { readonly t: 'unlockPrev'; readonly k: number }
  /** sf.cancel of the k-th request still unanswered (any node's), on its node. */
  | { readonly t: 'cancel'; readonly k: number; readonly reason: 'abort' | 'timeout' }
  /** The node's next new step applies and its reply is lost; `flood`: the log is flooded before the loss is told. */
  | { readonly t: 'lose'; readonly resends: number; readonly flood: boolean }
  | { readonly t: 'cut' }
  | { readonly t: 'heal' }
  /** Every node's inbox held back, until 'deliver' (of the command's node) or the heal. */
  | { readonly t: 'hold' }
  | { readonly t: 'deliver' }
  /** More than 64 steps on `path` by the flood node, now. */
  | { readonly t: 'flood'; readonly path: string };

/** One command: the node (modulo the count), the op, and whether the next command starts before it settles. */
export type Cmd = readonly [node: number, op: LROp, together: boolean];

/** Faults actually exercised, across runs. */
export const tally = {
  runs: 0,
  requests: 0,
  /** Steps applied whose reply was lost. */
  lostApplied: 0,
  /** Resends of a lost step answered 'unreachable' again. */
  lostResends: 0,
  /** Lost steps whose resends all failed until the actor stopped sending (gave up). */
  lostGivenUp: 0,
  /** Lost steps a resend's stale reply named (the log reached back). */
  learnedFromLog: 0,
  /** Steps refused 'unreachable' while the node was cut off (not applied). */
  cutRefused: 0,
  cuts: 0,
  /** Inbox events (another node's step ended a waiter), and those held back and delivered late. */
  events: 0,
  heldEvents: 0,
  /** Floods (>64 steps on a file by the flood node), and those made while a reply was lost. */
  floods: 0,
  floodsInLoss: 0,
  /** Stale replies that carried the whole record set. */
  wholeSets: 0,
  staleReplies: 0,
  /** Requests answered with a give-up code (ENOLCK / ERROR_LOCK_VIOLATION). */
  gaveUp: 0,
  cancels: 0,
  /** Requests that waited (queued). */
  queued: 0,
  /** Fault reports: a step undone, a step that could not be undone (excused), others. */
  reportedUndone: 0,
  reportedNotUndone: 0,
  /** Runs whose consistency check found something a "could not be undone" report excuses. */
  excused: 0,
};
export const excusedSamples: string[] = [];

/** A broken invariant (its message carries the run's transcript). */
export class Violation extends Error {}

const ENOLCK = 37;
const ERROR_LOCK_VIOLATION = 33;

interface Req {
  readonly id: number;
  readonly node: number;
  readonly call: Call;
  readonly text: string;
  /** The final closes: left out of the transcript. */
  readonly quiet: boolean;
  state: 'pending' | 'queued' | 'answered';
  result?: number;
  answered: Promise<void>;
  resolve: () => void;
}

interface LNode {
  readonly index: number;
  readonly name: string;
  store: NodeStore;
  sf: SharedFiles;
  cut: boolean;
  trap?: { resends: number; flood: boolean };
  lost?: { step: string; left: number; resent: number; learned: boolean };
  held?: InboxEvent[];
}

/** A consistency finding, with the node and file a fault report must name to excuse it. */
interface Problem {
  readonly node: string;
  readonly path: string;
  readonly text: string;
}

/** Two granted records that must never coexist: core conflicts() both ways. */
function clash(a: LockRequest, b: LockRequest): boolean {
  return conflicts(a, b) && conflicts(b, a);
}

function lineOf(r: Pick<LockRequest, 'kind' | 'write' | 'owner' | 'start' | 'end'>): string {
  return `${r.kind} ${r.write ? 'W' : 'R'} ${r.owner} [${r.start}, ${r.end}]`;
}

export class Run {
  readonly engine = new MemoryEngine();
  readonly nodes: LNode[] = [];
  readonly reqs: Req[] = [];
  readonly transcript: string[] = [];
  readonly reports: string[] = [];
  readonly safety: string[] = [];
  private readonly lockFiles: { node: number; input: Record<string, unknown> }[] = [];
  private flooder!: NodeStore;
  private nextId = 1;
  private closed = false;
  private commitWaiters: (() => void)[] = [];

  static async open(n: number): Promise<Run> {
    const r = new Run();
    r.wrapEngine();
    for (let i = 0; i < n; i++) await r.addNode(i);
    r.flooder = await memoryStore({}, { engine: r.engine, node: 'fl', graceMs: 0 });
    return r;
  }

  /** (1) safety: after every step the engine applies, the file's granted records. */
  private wrapEngine(): void {
    const e = this.engine;
    const commit = e.commit.bind(e);
    e.commit = async (s: SessionRef, st: EngineStep): Promise<CommitReply> => {
      const r = await commit(s, st);
      if (r.ok) {
        const held = (e.snapshot().files[st.file]?.records ?? []).filter((x) => x.state === 'held').map((x) => decodeRecord(x.data, st.file).req);
        for (let i = 0; i < held.length; i++) {
          for (let j = i + 1; j < held.length; j++) {
            if (clash(held[i]!, held[j]!)) this.safety.push(`step ${st.step} of ${s.node} left conflicting granted records on ${st.file}: ${lineOf(held[i]!)} and ${lineOf(held[j]!)}`);
          }
        }
      }
      const w = this.commitWaiters;
      this.commitWaiters = [];
      for (const f of w) f();
      return r;
    };
  }

  private async addNode(index: number): Promise<void> {
    const name = NODE_NAMES[index]!;
    let n!: LNode;
    const deliver = (es: readonly InboxEvent[]) => {
      for (const [p, evs] of endedByFile(es)) n.sf.ended(p, evs);
    };
    const store = await memoryStore(
      {
        onEvents: (es) => {
          tally.events += es.length;
          if (n.held !== undefined) {
            n.held.push(...es);
            tally.heldEvents += es.length;
          } else deliver(es);
        },
        onError: (e) => this.reports.push(`${name} store: ${e.message}`),
      },
      { engine: this.engine, node: name, graceMs: 0 },
    );
    const unreachable = (step: string, error: string): CommitReply => ({ ok: false, reason: 'unreachable', step, error });
    let dropped = 0;
    const link: StoreLink = {
      commit: async (step: Step & { id?: string }): Promise<CommitReply> => {
        if (this.closed) return unreachable(step.id ?? `${name}.closed.${++dropped}`, 'closed');
        if (n.cut) {
          tally.cutRefused++;
          return unreachable(step.id ?? `${name}.cut.${++dropped}`, 'cut off');
        }
        const trap = n.trap;
        if (trap !== undefined && step.id === undefined) {
          const r = await store.commit(step);
          if (!r.ok) return this.seen(r);
          n.trap = undefined;
          tally.lostApplied++;
          n.lost = { step: r.step, left: trap.resends, resent: 0, learned: false };
          this.transcript.push(`    ${name}: step ${r.step} on ${step.file} applied, its reply lost (resends lost: ${trap.resends})`);
          if (trap.flood) {
            tally.floodsInLoss++;
            await this.flood(step.file);
          }
          return unreachable(r.step, 'the reply was lost');
        }
        const lost = n.lost;
        if (lost !== undefined && step.id === lost.step) {
          if (lost.left > 0) {
            lost.left--;
            lost.resent++;
            tally.lostResends++;
            return unreachable(step.id, 'the reply was lost');
          }
        }
        const r = this.seen(await store.commit(step));
        if (lost !== undefined && !lost.learned && !r.ok && r.reason === 'stale' && r.missed?.some((c) => c.step === lost.step)) {
          lost.learned = true;
          tally.learnedFromLog++;
        }
        return r;
      },
      reassert: (f, records, edges) => store.reassert(f, records, edges),
      fileReach: (file, pairs) => store.fileReach(file, pairs),
    };
    const lease = new Float64Array(new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT));
    lease[0] = Number.POSITIVE_INFINITY;
    lease[1] = store.session().epoch;
    const sf = new SharedFiles(
      link,
      { node: name, policy: 'default', requestTimeoutMs: REQUEST_TIMEOUT_MS, lease: lease.buffer as SharedArrayBuffer, epoch: store.session().epoch },
      {},
      (m) => this.report(`${name}: ${m}`),
    );
    n = { index, name, store, sf, cut: false };
    this.nodes.push(n);
  }

  private seen(r: CommitReply): CommitReply {
    if (!r.ok && r.reason === 'stale') {
      tally.staleReplies++;
      if (r.records !== undefined) tally.wholeSets++;
    }
    return r;
  }

  private report(m: string): void {
    if (this.closed) return;
    this.reports.push(m);
    this.transcript.push(`    report ${m}`);
    if (/could not be undone/.test(m)) tally.reportedNotUndone++;
    else if (/; undone$/.test(m)) tally.reportedUndone++;
  }

  /** The flood node makes 2x33 steps on `path` (a lock far from the generated bytes, put and removed). */
  async flood(path: string): Promise<void> {
    tally.floods++;
    const c = qualify(parseLock({ path, lockType: F_WRLCK, cmd: F_SETLK, lockOwner: 'flood', lockStart: 1_000_000_000, lockLen: 1, lockPid: 9, fileHandle: 9 }) as Call, 'fl');
    if (c.op !== 'lock') throw new Error('flood lock');
    const data = encodeLock(c.req);
    let made = 0;
    for (let i = 0; made < 66; i++) {
      if (i > 10_000) throw new Error('the flood never got its steps in');
      const id = `fl.${i}`;
      const st = await this.engine.load(path);
      const has = st.records.some((r) => r.id.startsWith('fl.'));
      const gone = st.records.filter((r) => r.id.startsWith('fl.')).map((r) => r.id);
      const r = await this.flooder.commit(has ? { file: path, base: st.version, remove: gone } : { file: path, base: st.version, put: [{ id, state: 'held', data }] });
      if (r.ok) made++;
    }
    // Leaves none behind.
    for (;;) {
      const st = await this.engine.load(path);
      const gone = st.records.filter((r) => r.id.startsWith('fl.')).map((r) => r.id);
      if (gone.length === 0) break;
      await this.flooder.commit({ file: path, base: st.version, remove: gone });
    }
  }

  fail(msg: string): never {
    throw new Violation(`${msg}\n  transcript:\n${this.transcript.join('\n')}`);
  }

  // ---- settling ---------------------------------------------------------------------------------

  /** Every file mailbox of every node empty (their decisions, resends, give-ups done). */
  async quiesce(): Promise<void> {
    const until = performance.now() + BUDGET_MS;
    for (let round = 0; ; round++) {
      if (round > 100_000) this.fail('the nodes never went quiescent');
      await turn();
      const busy = this.nodes.flatMap((n) => [...(n.sf as unknown as { files: Map<string, { queued: number; tail: Promise<unknown> }> }).files.entries()].map(([p, m]) => ({ n: n.name, p, m }))).filter((x) => x.m.queued > 0);
      if (busy.length === 0) return;
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        Promise.all(busy.map((x) => x.m.tail)).then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, until - performance.now())))),
      ]);
      clearTimeout(timer);
      if (late) this.fail(`(2) liveness: a file's mailbox never emptied within ${BUDGET_MS} ms: ${busy.map((x) => `${x.n} ${x.p}`).join(', ')}`);
    }
  }

  /** Whether a file of some node still owes a step (releases, unsure steps, lost answers). */
  private owing(): string[] {
    const out: string[] = [];
    for (const n of this.nodes) {
      for (const [p, f] of (n.sf as unknown as { files: Map<string, { owing: boolean }> }).files) if (f.owing) out.push(`${n.name} ${p}`);
    }
    return out;
  }

  /**
   * Until no file owes a step, within `until`: each owing file gets an F_GETLK (its decision runs
   * what is owed first, and commits), rather than waiting out the owed retries' backoff; then the
   * engine's next commit.
   */
  async settle(until: number): Promise<void> {
    for (;;) {
      await this.quiesce();
      let o = this.owing();
      if (o.length === 0) return;
      const left = until - performance.now();
      if (left <= 0) this.fail(`files still owing a step at the budget's end: ${o.join(', ')}`);
      for (const x of o) {
        const [name, path] = x.split(' ') as [string, string];
        const input = { path, kind: 'posix', lockType: F_WRLCK, cmd: F_GETLK, lockStart: 0, lockLen: 1, lockOwner: 1, lockPid: 100, fileHandle: fileHandleOf('posix', 0) };
        this.submit(NODE_NAMES.indexOf(name), parseLock(input) as Call, `lock(${show(input)})`, true);
      }
      await this.quiesce();
      o = this.owing();
      if (o.length === 0) return;
      await new Promise<void>((resolve) => {
        // An unsure step settles only by a step sent after its deadline: at most REQUEST_TIMEOUT_MS on.
        const t = setTimeout(resolve, Math.min(left, 50));
        this.commitWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  // ---- commands ---------------------------------------------------------------------------------

  private target(node: number): ReplyTarget {
    return {
      answer: (id: number, _path: string | undefined, res: Result) => {
        const q = this.reqs[id - 1];
        if (q === undefined) return;
        if (q.state === 'answered') {
          this.safety.push(`${NODE_NAMES[node]} #${id} answered twice (${show(res)})`);
          return;
        }
        q.state = 'answered';
        q.result = typeof res === 'object' && res !== null ? (res as PosixReply).result : typeof res === 'number' ? res : 0;
        if (q.result === -ENOLCK || q.result === ERROR_LOCK_VIOLATION) tally.gaveUp++;
        if (!q.quiet) this.transcript.push(`    ${NODE_NAMES[node]} #${id} answered ${show(res)}`);
        q.resolve();
      },
      queued: (id: number) => {
        const q = this.reqs[id - 1];
        if (q !== undefined && q.state === 'pending') q.state = 'queued';
        tally.queued++;
        this.transcript.push(`    ${NODE_NAMES[node]} #${id} queued`);
      },
    };
  }

  submit(node: number, call: Call, text: string, quiet = false): Req {
    let resolve!: () => void;
    const answered = new Promise<void>((r) => (resolve = r));
    const q: Req = { id: this.nextId++, node, call: qualify(call, NODE_NAMES[node]!), text, quiet, state: 'pending', answered, resolve };
    this.reqs.push(q);
    tally.requests++;
    if (!quiet) this.transcript.push(`  ${NODE_NAMES[node]} #${q.id} ${text}`);
    this.nodes[node]!.sf.run(q.id, call, this.target(node));
    return q;
  }

  async run(node: number, op: LROp, together: boolean): Promise<void> {
    const n = this.nodes[node]!;
    switch (op.t) {
      case 'lose':
        n.trap = { resends: op.resends, flood: op.flood };
        this.transcript.push(`  ${n.name}: its next new step's reply is lost (resends lost: ${op.resends}${op.flood ? ', then a flood' : ''})`);
        return;
      case 'cut':
        if (!n.cut) tally.cuts++;
        n.cut = true;
        this.transcript.push(`  ${n.name} cut off`);
        return;
      case 'heal':
        // Every node cut off reaches the engine again (a cut lasts until the next heal).
        for (const m of this.nodes) this.heal(m);
        return;
      case 'hold':
        // Every node's inbox: an event is rare enough without guessing its node.
        for (const m of this.nodes) m.held ??= [];
        this.transcript.push('  every inbox held');
        return;
      case 'deliver':
        this.deliver(n);
        return;
      case 'flood':
        this.transcript.push(`  flood of ${op.path}`);
        await this.flood(op.path);
        return;
      case 'cancel': {
        const open = this.reqs.filter((q) => q.state !== 'answered');
        if (open.length === 0) return;
        const q = open[op.k % open.length]!;
        tally.cancels++;
        this.transcript.push(`  ${NODE_NAMES[q.node]} cancel #${q.id} '${op.reason}'`);
        this.nodes[q.node]!.sf.cancel(q.id, op.reason);
        break;
      }
      case 'unlockPrev': {
        if (this.lockFiles.length === 0) return;
        const { node: m, input } = this.lockFiles[op.k % this.lockFiles.length]!;
        const u = { fileName: input.fileName, byteOffset: input.byteOffset, length: input.length, handle: input.handle, processId: input.processId, key: input.key };
        for (const k of Object.keys(u) as (keyof typeof u)[]) if (u[k] === undefined) delete u[k];
        this.submit(m, parseUnlockFile(u) as Call, `unlockFile(${show(u)})`);
        break;
      }
      case 'call': {
        const call = parse(op.method, op.input);
        if (call === undefined) return;
        if (op.method === 'lockFile') this.lockFiles.push({ node, input: op.input as Record<string, unknown> });
        this.submit(node, call, `${op.method}(${show(op.input)})`);
        break;
      }
    }
    if (!together) await this.quiesce();
  }

  private heal(n: LNode): void {
    if (n.cut) this.transcript.push(`  ${n.name} reaches the engine again`);
    n.cut = false;
    if (n.lost !== undefined && n.lost.left > 0) n.lost.left = 0;
  }

  private deliver(n: LNode): void {
    const es = n.held;
    if (es === undefined) return;
    n.held = undefined;
    this.transcript.push(`  ${n.name}: inbox delivered (${es.length} events held)`);
    for (const [p, evs] of endedByFile(es)) n.sf.ended(p, evs);
  }

  /** Closes every handle and owner the generators use, on every node and file. */
  private async releaseAll(): Promise<void> {
    for (const n of this.nodes) {
      for (const path of PATHS) {
        for (const handle of WIN_HANDLES) this.submit(n.index, parseCloseHandle({ fileName: path, handle }), `closeHandle(${show(handle)})`, true);
        const handles = [...POSIX_OWNERS.map((_, i) => fileHandleOf('posix', i)), ...OFD_OWNERS.map((_, i) => fileHandleOf('ofd', i))];
        for (const fileHandle of handles) {
          const i = OFD_OWNERS.findIndex((_, j) => fileHandleOf('flock', j) === fileHandle);
          const input = i >= 0 ? { path, fileHandle, lockOwner: OFD_OWNERS[i] } : { path, fileHandle };
          this.submit(n.index, parseRelease(input), `release(${show(input)})`, true);
        }
        for (const lockOwner of POSIX_OWNERS) this.submit(n.index, parseFlush({ path, lockOwner }), `flush(${show(lockOwner)})`, true);
        await this.quiesce();
      }
    }
  }

  // ---- the end ----------------------------------------------------------------------------------

  /** Heals everything, then (3) consistency, (2) liveness, and (3) once all is released: nothing left. */
  async finish(): Promise<void> {
    this.transcript.push('  -- every fault heals --');
    for (const n of this.nodes) {
      n.trap = undefined;
      this.heal(n);
      this.deliver(n);
      if (n.lost !== undefined && n.lost.resent > 0 && !n.lost.learned) tally.lostGivenUp++;
    }
    const healedAt = performance.now();
    const until = healedAt + BUDGET_MS;
    if (this.safety.length > 0) this.fail(this.safety.join('\n'));
    await this.settle(until);
    const notUndone = this.reports.filter((m) => /could not be undone/.test(m));
    const other = this.reports.filter((m) => !/could not be undone|; undone$/.test(m));
    if (other.length > 0) this.fail(`faults reported: ${other.join('; ')}`);
    const problems = await this.consistency();
    // Every handle closed, every request still waiting aborted: all must end.
    for (let round = 0; round < 3 && (round === 0 || this.reqs.some((q) => q.state !== 'answered') || (await this.anyRecords())); round++) {
      this.transcript.push(`  -- every handle of every node closed (round ${round + 1}), every request still waiting aborted --`);
      await this.releaseAll();
      for (const q of this.reqs) {
        if (q.state === 'answered') continue;
        this.transcript.push(`  ${NODE_NAMES[q.node]} abort #${q.id}`);
        this.nodes[q.node]!.sf.cancel(q.id, 'abort');
      }
      await this.settle(until);
    }
    const open = this.reqs.filter((q) => q.state !== 'answered');
    if (open.length > 0) {
      await Promise.race([Promise.all(open.map((q) => q.answered)), new Promise((r) => setTimeout(r, Math.max(0, until - performance.now())))]);
      const never = this.reqs.filter((q) => q.state !== 'answered');
      if (never.length > 0) this.fail(`(2) liveness: requests never answered ${BUDGET_MS} ms after the heal: ${never.map((q) => `${NODE_NAMES[q.node]} #${q.id} (${q.state})`).join(', ')}`);
    }
    await this.settle(until);
    if (this.safety.length > 0) this.fail(this.safety.join('\n'));
    for (const path of PATHS) {
      const st = await this.engine.load(path);
      for (const r of st.records) problems.push({ node: r.node, path, text: `(3) a record left on ${path} once every handle closed: ${r.node} ${r.state} ${lineOf(decodeRecord(r.data, path).req)}` });
    }
    if (problems.length === 0) return;
    // Excused only by a report of the same node about the same file.
    const why = (p: Problem) => notUndone.filter((m) => m.startsWith(`${p.node}: `) && m.includes(` on ${p.path} that `));
    const left = problems.filter((p) => why(p).length === 0);
    if (left.length > 0) this.fail(left.map((p) => p.text).join('\n'));
    tally.excused++;
    if (excusedSamples.length < 5) excusedSamples.push(problems.map((p) => `${p.text}\n  explained by: ${why(p).join('; ')}`).join('\n'));
  }

  private async anyRecords(): Promise<boolean> {
    for (const path of PATHS) if ((await this.engine.load(path)).records.length > 0) return true;
    return false;
  }

  /**
   * (3) before anything is released: every waiting record stands for a request of its node that
   * still waits; an owner's held bytes (per mode) lie in its requests answered granted.
   */
  private async consistency(): Promise<Problem[]> {
    const problems: Problem[] = [];
    const granted = new Map<string, { write: boolean; start: bigint; end: bigint }[]>();
    for (const q of this.reqs) {
      if (q.state !== 'answered' || q.result !== 0) continue;
      const c = q.call;
      if (c.op === 'lockFile' || (c.op === 'lock' && c.cmd !== F_GETLK && c.lockType !== F_UNLCK)) {
        const key = `${c.path}\n${c.req.owner}`;
        granted.set(key, [...(granted.get(key) ?? []), { write: c.req.write, start: c.req.start, end: c.req.end }]);
      }
    }
    for (const path of PATHS) {
      const st = await this.engine.load(path);
      for (const r of st.records) {
        const n = this.nodes.find((x) => x.name === r.node);
        const d = decodeRecord(r.data, path).req;
        if (n === undefined) {
          problems.push({ node: r.node, path, text: `(3) a record of ${r.node} on ${path}: ${lineOf(d)}` });
          continue;
        }
        if (r.state === 'waiting') {
          const hostId = n.sf.waits.get(r.id);
          const q = hostId === undefined ? undefined : this.reqs[hostId - 1];
          if (q === undefined || q.state === 'answered') problems.push({ node: r.node, path, text: `(3) waiting record ${r.id} of ${r.node} on ${path} (${lineOf(d)}) stands for no waiting request${q === undefined ? '' : ` (#${q.id} answered ${q.result})`}` });
          continue;
        }
        // Held: each byte in a request of its owner answered granted, of the same mode (a downgrade is a granted read).
        const spans = (granted.get(`${path}\n${d.owner}`) ?? []).filter((g) => g.write === d.write).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
        let at = d.start;
        for (const g of spans) {
          if (g.start > at) break;
          if (g.end >= at) at = g.end + 1n;
          if (at > d.end) break;
        }
        if (at <= d.end) problems.push({ node: r.node, path, text: `(3) held record of ${r.node} on ${path} (${lineOf(d)}): bytes from ${at} were granted to no request of its owner answered granted` });
      }
    }
    return problems;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.nodes.map((n) => n.store.close()), this.flooder?.close()]);
  }
}

/** One run of the property. */
export async function runScenario(nodes: number, cmds: readonly Cmd[]): Promise<void> {
  tally.runs++;
  const r = await Run.open(nodes);
  try {
    for (const [n, op, together] of cmds) await r.run(n % nodes, op, together);
    await r.finish();
  } finally {
    await r.close();
  }
}
