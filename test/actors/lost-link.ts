/** Test harness: SharedFiles over a MemoryEngine, with a link whose fate per step is chosen by a policy. */
import { endedByFile, type StoreLink } from '../../src/actors/shared-file.js';
import { SharedFiles } from '../../src/actors/shared-files.js';
import type { ReplyTarget } from '../../src/actors/reply-target.js';
import { parseLock, type Call } from '../../src/core/requests.js';
import { MemoryEngine, memoryStore, type CommitReply, type InboxEvent, type NodeStore, type Step } from '../../src/store/index.js';
import { within } from '../../driver/redis-server.js';

export const BUDGET_MS = 20_000;
export type Fate = 'pass' | 'drop' | 'lose';
export type S = Step & { id?: string };

export interface TestNode {
  name: string;
  store: NodeStore;
  sf: SharedFiles;
  lease: Float64Array;
  /** Decides each new step's fate (resends of a lost step are lost too). */
  policy: (step: S) => Fate;
  lostIds: Set<string>;
  held?: InboxEvent[];
  release(): void;
  answers: Map<number, Promise<unknown>>;
  got: Map<number, unknown>;
  answer(id: number): Promise<unknown>;
  target: ReplyTarget;
  log: string[];
  afterLose?: (step: S) => Promise<void>;
  afterDrop?: (step: S) => Promise<void>;
  faults: string[];
}

export async function node(engine: MemoryEngine, name: string, policy: 'default' | 'fifo' = 'default', timeoutMs = 300): Promise<TestNode> {
  let sf!: SharedFiles;
  const deliver = (es: readonly InboxEvent[]) => {
    for (const [p, e] of endedByFile(es)) sf.ended(p, e);
  };
  const store = await memoryStore({ onEvents: (es) => (n.held !== undefined ? n.held.push(...es) : deliver(es)) }, { engine, node: name, graceMs: 0 });
  const lease = new Float64Array(new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT));
  lease[0] = Number.POSITIVE_INFINITY;
  lease[1] = store.session().epoch;
  const n = { name, store, lease, answers: new Map(), got: new Map(), policy: () => 'pass', lostIds: new Set(), log: [], faults: [] } as unknown as TestNode;
  n.release = () => {
    const es = n.held ?? [];
    n.held = undefined;
    deliver(es);
  };
  let k = 0;
  const link: StoreLink = {
    commit: async (step: S): Promise<CommitReply> => {
      if (step.id !== undefined && n.lostIds.has(step.id)) return { ok: false, reason: 'unreachable', step: step.id, error: 'lost (resend)' };
      const fate = n.policy(step);
      if (fate === 'drop') await n.afterDrop?.(step);
      if (fate === 'drop') return { ok: false, reason: 'unreachable', step: step.id ?? `${name}.dropped.${++k}`, error: 'cut off' };
      const r = await store.commit(step);
      n.log.push(`${fate} ${JSON.stringify({ put: step.put?.map((p) => p.id), remove: step.remove, id: step.id })} -> ${r.ok ? 'ok' : r.reason}${!r.ok && r.reason === 'stale' ? (r.records ? ' whole' : ' missed') : ''}`);
      if (fate === 'lose' && r.ok) {
        n.lostIds.add(r.step);
        await n.afterLose?.(step);
        return { ok: false, reason: 'unreachable', step: r.step, error: 'the reply was lost' };
      }
      return r;
    },
    reassert: (f, records, edges) => store.reassert(f, records, edges),
    reaches: (pairs) => store.reaches(pairs, false),
  };
  sf = new SharedFiles(link, { node: name, policy, requestTimeoutMs: timeoutMs, lease: lease.buffer as SharedArrayBuffer, epoch: store.session().epoch }, {}, (m) => n.faults.push(m));
  n.sf = sf;
  const waiting = new Map<number, (v: unknown) => void>();
  n.answer = (id: number) => {
    let p = n.answers.get(id);
    if (p === undefined) {
      p = new Promise((r) => waiting.set(id, r));
      n.answers.set(id, p);
    }
    return p;
  };
  n.target = {
    answer: (id: number, _path: string, res: unknown) => {
      void n.answer(id);
      n.got.set(id, res);
      waiting.get(id)?.(res);
    },
    queued: (id: number) => {
      void n.answer(-id);
      waiting.get(-id)?.('queued');
    },
  } as unknown as ReplyTarget;
  return n;
}

export const answered = (n: TestNode, id: number, what: string) => within(n.answer(id), BUDGET_MS, what);

export async function overflowLog(engine: MemoryEngine, store: NodeStore, path = '/a'): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const tag = Math.random().toString(36).slice(2);
    const put = await store.commit({ file: path, base: (await engine.load(path)).version, put: [{ id: `x${tag}`, state: 'held', data: 'removed in the next step' }] });
    const rm = await store.commit({ file: path, base: (await engine.load(path)).version, remove: [`x${tag}`] });
    if (!put.ok || !rm.ok) throw new Error(`fill: ${JSON.stringify([put, rm])}`);
  }
}

export const lk = (owner: string, pid: number, type: number, cmd: number, start = 0, len = 10, path = '/a'): Call =>
  parseLock({ path, lockType: type, cmd, lockOwner: owner, lockStart: start, lockLen: len, lockPid: pid, fileHandle: pid });

export { MemoryEngine, memoryStore, within };
