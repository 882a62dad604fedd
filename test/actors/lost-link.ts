/**
 * Test harness: SharedFiles over a MemoryEngine, behind a link whose fate per new step is chosen
 * by a policy ('pass' | 'drop' | 'lose'), and whose resends of a lost step fare as `lostResend`
 * says. Shared by shared-file-lost.test.ts and shared-file-settle.test.ts.
 */
import type { Test } from 'tap';
import { endedByFile, type StoreLink } from '../../src/actors/shared-file.js';
import { SharedFiles } from '../../src/actors/shared-files.js';
import type { ReplyTarget } from '../../src/actors/reply-target.js';
import { EAGAIN, F_SETLK, F_SETLKW, F_WRLCK } from '../../src/core/codes.js';
import type { TableHooks } from '../../src/core/lock-table.js';
import { parseCloseHandle, parseLock, parseLockFile, parseUnlockFile, type Call } from '../../src/core/requests.js';
import { MemoryEngine, memoryStore, type CommitReply, type InboxEvent, type NodeStore, type Step } from '../../src/store/index.js';
import { until, within } from '../../driver/redis-server.js';

/** How long an answer may take on a loaded machine: the actor's own retries come within a second. */
export const BUDGET_MS = 30_000;
/**
 * A harness node's requestTimeoutMs unless a test names its own: a request whose steps are cut
 * off is answered the generic code this long after it came (each cut-off waits it out), and one
 * whose steps pass must be answered before it. 300 ms was too short with the machine loaded: an
 * event loop held up that long gave up on steps that had passed.
 */
export const STEP_MS = 1_000;
/**
 * 'pass': committed; 'drop': refused 'unreachable', not applied (cut off); 'lose': committed, and
 * if it applied its reply is lost; 'fenced': refused by the node's own fence (a renewal late),
 * which the renewal lifts right after (the lease moves on before the refusal is handled).
 */
export type Fate = 'pass' | 'drop' | 'lose' | 'fenced';
export type S = Step & { id?: string };

export interface TestNode {
  name: string;
  store: NodeStore;
  sf: SharedFiles;
  lease: Float64Array;
  /** Decides each step's fate, except a lost step's resends (see lostResend). Default: 'pass'. */
  policy: (step: S) => Fate;
  /** The steps whose reply was lost. */
  lostIds: Set<string>;
  /**
   * How every resend of a lost step fares: 'lose' (default) its reply is lost again; 'fenced' it
   * finds the node fenced for a late renewal, which comes 50 ms later.
   */
  lostResend: 'lose' | 'fenced';
  /** Inbox events held back while set (the node's reader slow), delivered by release(). */
  held?: InboxEvent[];
  release(): void;
  /** Request `id`'s answer (-id: its waiter queued); an entry once answered or asked for. */
  answers: Map<number, Promise<unknown>>;
  /** The answers given, by request id. */
  got: Map<number, unknown>;
  answer(id: number): Promise<unknown>;
  target: ReplyTarget;
  /** One line per step that reached the engine: its fate, what it put and removed, the engine's reply. */
  log: string[];
  /** Runs once a 'lose' step applied, before its loss is told. */
  afterLose?: (step: S) => Promise<void>;
  /** How each re-assertion fares: 'fenced' as the fate of a step; anything else, or unset, is sent. */
  reassertFate?: () => Fate;
  /** Runs with each step dropped, before it is refused. */
  afterDrop?: (step: S) => Promise<void>;
  /** Called with each reply of the engine to a step that reached it (before any loss). */
  /** Told of every committed step's reply, with that step. */
  onReply?: (r: CommitReply, step: S) => void;
  /** The actor's fault reports. */
  faults: string[];
  /**
   * The node's worker dies and a replacement takes its place (`sf`, on the same store and
   * session, with `hooks`, the node's by default): what the dead one sends from now on never
   * reaches the engine nor gets a reply, and the inbox goes to the replacement.
   */
  replaceWorker(hooks?: TableHooks): SharedFiles;
}

/**
 * A node on `engine`; `graceMs`: the grace period the engine starts with if this is its first
 * session (the engine's clock); `hooks`: the application's (none by default).
 */
export async function node(engine: MemoryEngine, name: string, policy: 'default' | 'fifo' = 'default', timeoutMs = STEP_MS, graceMs = 0, hooks: TableHooks = {}): Promise<TestNode> {
  const deliver = (es: readonly InboxEvent[]) => {
    for (const [p, e] of endedByFile(es)) n.sf.ended(p, e);
  };
  const store = await memoryStore({ onEvents: (es) => (n.held !== undefined ? n.held.push(...es) : deliver(es)) }, { engine, node: name, graceMs });
  const lease = new Float64Array(new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT));
  lease[0] = Number.POSITIVE_INFINITY;
  lease[1] = store.session().epoch;
  const n = { name, store, lease, answers: new Map(), got: new Map(), policy: () => 'pass', lostIds: new Set(), lostResend: 'lose', log: [], faults: [] } as unknown as TestNode;
  n.release = () => {
    const es = n.held ?? [];
    n.held = undefined;
    deliver(es);
  };
  let k = 0;
  let workers = 0;
  /** The link of the node's worker now (replaceWorker): once another replaced it, its steps never end, as a dead worker's. */
  const linkOf = (worker: number): StoreLink => ({
    commit: async (step: S): Promise<CommitReply> => {
      if (worker !== workers) return new Promise<CommitReply>(() => {});
      if (step.id !== undefined && n.lostIds.has(step.id)) {
        if (n.lostResend === 'lose') return { ok: false, reason: 'unreachable', step: step.id, error: 'the reply was lost' };
        lease[0] = performance.timeOrigin + performance.now() - 1;
        setTimeout(() => (lease[0] = Number.POSITIVE_INFINITY), 50);
        return { ok: false, reason: 'fenced' };
      }
      const fate = n.policy(step);
      if (fate === 'fenced') {
        lease[0] = Number.POSITIVE_INFINITY;
        return { ok: false, reason: 'fenced' };
      }
      if (fate === 'drop') {
        await n.afterDrop?.(step);
        return { ok: false, reason: 'unreachable', step: step.id ?? `${name}.dropped.${++k}`, error: 'cut off' };
      }
      const r = await store.commit(step);
      n.onReply?.(r, step);
      n.log.push(`${fate} ${JSON.stringify({ put: step.put?.map((p) => p.id), remove: step.remove, id: step.id })} -> ${r.ok ? 'ok' : r.reason}${!r.ok && r.reason === 'stale' ? (r.records ? ' whole' : ' missed') : ''}`);
      if (fate === 'lose' && r.ok) {
        n.lostIds.add(r.step);
        await n.afterLose?.(step);
        return { ok: false, reason: 'unreachable', step: r.step, error: 'the reply was lost' };
      }
      return r;
    },
    reassert: async (f, records, edges) => {
      if (worker !== workers) return new Promise<never>(() => {});
      if (n.reassertFate?.() === 'fenced') {
        lease[0] = Number.POSITIVE_INFINITY;
        return { ok: false, reason: 'fenced' };
      }
      const r = await store.reassert(f, records, edges);
      n.log.push(`reassert ${JSON.stringify(records.map((x) => x.id))} -> ${r.ok ? 'ok' : r.reason}`);
      return r;
    },
    fileReach: (file, pairs) => store.fileReach(file, pairs),
  });
  const start = (h: TableHooks): SharedFiles =>
    new SharedFiles(linkOf(++workers), { node: name, policy, requestTimeoutMs: timeoutMs, lease: lease.buffer as SharedArrayBuffer, epoch: store.session().epoch }, h, (m) => n.faults.push(m));
  n.sf = start(hooks);
  n.replaceWorker = (h = hooks) => {
    n.sf = start(h);
    return n.sf;
  };
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

/**
 * A one-shot trap: the node's next new step (no id) that applies has its reply lost; `then` runs
 * before the loss is told. Until then every new step is tried for it; afterwards all pass.
 */
export function loseNext(n: TestNode, then?: () => Promise<void>): void {
  n.policy = (s) => (s.id === undefined ? 'lose' : 'pass');
  n.afterLose = async () => {
    n.policy = () => 'pass';
    n.afterLose = undefined;
    await then?.();
  };
}

/**
 * The engine loses its data (MemoryEngine.reset); resolves once `n`'s store, and each of
 * `others`', has heard of it at a renewal and opened a session in the new incarnation, with the
 * session `n` had before and its new one.
 */
export async function resetEngine(engine: MemoryEngine, n: TestNode, ...others: TestNode[]): Promise<{ old: number; epoch: number }> {
  const old = n.store.session().epoch;
  const all = [n, ...others];
  const before = all.map((x) => x.store.session().incarnation);
  engine.reset();
  await until(() => all.every((x, i) => x.store.session().incarnation !== before[i]), BUDGET_MS, `${all.map((x) => x.name).join(', ')}'s new sessions after the reset`);
  return { old, epoch: n.store.session().epoch };
}

/**
 * Ends the engine's grace period now (MemoryEngine.endGrace); resolves once each of `nodes`'
 * stores heard of it at a renewal (session().grace false). After a reset, the node that opens the
 * new incarnation gives it a grace period as long as the longest session TTL it saw
 * (NodeStore.replace): 2^31-1 ms here (memoryStore), so it never ends by itself, and a decision that grants bytes
 * waits it out (refused 'grace', then Parked for the rest). Call it only once the nodes'
 * re-assertions were answered (a request of the node on the file that came after its adopt was
 * answered: decisions wait for them): one sent after it is refused 'late', its records lost.
 */
export async function endGrace(engine: MemoryEngine, ...nodes: TestNode[]): Promise<void> {
  engine.endGrace();
  await until(() => nodes.every((n) => !n.store.session().grace), BUDGET_MS, `the end of the grace period heard by ${nodes.map((n) => n.name).join(', ')}`);
}

export const answered = (n: TestNode, id: number, what: string) => within(n.answer(id), BUDGET_MS, what);

/** An answer's code: a Win32 code as it is, a POSIX reply's result, undefined for a void answer. */
export const code = (r: unknown): number | undefined => (typeof r === 'number' ? r : (r as { result: number } | undefined)?.result);

/** Node `name` on `engine` (policy 'default', requestTimeoutMs `timeoutMs`), its store closed when `t` ends. */
export async function nodeFor(t: Test, engine: MemoryEngine, name: string, timeoutMs: number): Promise<TestNode> {
  const n = await node(engine, name, 'default', timeoutMs);
  t.teardown(() => n.store.close());
  return n;
}

/**
 * Holds the mailbox of `call`'s file on `n` (holdAtLink): request `id`, `call` (by default p<id>'s
 * lock of [90,100) of /a), runs first and its step waits at the link. Resolves once it does;
 * `release()` lets steps pass again.
 */
export async function headAtLink(n: TestNode, id: number, call: Call = lk(`p${id}`, id, F_WRLCK, F_SETLK, 90, 10)): Promise<{ release: () => void }> {
  const hold = holdAtLink(n);
  n.sf.run(id, call, n.target);
  await within(hold.atLink, BUDGET_MS, 'the head step at the link');
  return hold;
}

/** Counts the answers each request of `n` gets from now on (a request is answered once). */
export function countAnswers(n: TestNode): Map<number, number> {
  const counts = new Map<number, number>();
  const answer = n.target.answer.bind(n.target);
  n.target.answer = (id, ...rest) => {
    counts.set(id, (counts.get(id) ?? 0) + 1);
    answer(id, ...rest);
  };
  return counts;
}

/** Resolves once request `id` of `n` is attempted again (SharedFiles.attempt: a parked request's new run, queued in its file's mailbox). */
export function attemptedAgain(n: TestNode, id: number): Promise<void> {
  const sf = n.sf as unknown as { attempt(id: number, r: unknown): void };
  const attempt = sf.attempt.bind(sf);
  return new Promise<void>((r) => {
    sf.attempt = (i, req) => {
      attempt(i, req);
      if (i === id) r();
    };
  });
}

/**
 * `n`'s next step that applies has its reply held back (on its way): `applied` resolves once it
 * applied, and the reply goes on `letReply()`. Steps after it pass as usual.
 */
export function holdNextReply(n: TestNode): { applied: Promise<void>; letReply: () => void } {
  const commit = n.store.commit.bind(n.store);
  let appliedNow!: () => void;
  const applied = new Promise<void>((r) => (appliedNow = r));
  let letReply!: () => void;
  const replyGoes = new Promise<void>((r) => (letReply = r));
  let holdNext = true;
  n.store.commit = async (step: Step): Promise<CommitReply> => {
    const r = await commit(step);
    if (holdNext && r.ok) {
      holdNext = false;
      appliedNow();
      await replyGoes;
    }
    return r;
  };
  return { applied, letReply };
}

/**
 * Keeps `n`'s file mailbox busy: from now on its steps get no reply, and the first one waits at the
 * link (`atLink` resolves then) until `release()`, which lets steps pass again.
 */
export function holdAtLink(n: TestNode): { atLink: Promise<void>; release: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let atGate!: () => void;
  const atLink = new Promise<void>((r) => (atGate = r));
  n.policy = () => 'drop';
  n.afterDrop = async () => {
    atGate();
    await gate;
  };
  return {
    atLink,
    release: () => {
      n.policy = () => 'pass';
      n.afterDrop = undefined;
      open();
    },
  };
}

/**
 * q2 (node b) holds [10,20); p1 (node a) holds [0,10) and waits for [5,15); a tells the POSIX
 * release notices it gives (`released`). The stage for an unlock of p1's [0,10) whose reply is lost
 * while b's unlock grants p1's waiter [5,15) on the engine's records.
 */
export async function waiterBehindRemote(t: Test): Promise<{ engine: MemoryEngine; a: TestNode; b: TestNode; released: string[] }> {
  const engine = new MemoryEngine();
  const released: string[] = [];
  const a = await node(engine, 'a', 'default', 300, 0, {
    released: (family, e) => void released.push(`${family}:${String(e.lockStart)}+${String(e.lockLen)}`),
  });
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lk('q2', 2, F_WRLCK, F_SETLK, 10, 10), b.target);
  t.match(await answered(b, 1, "q2's lock of [10,20)"), { result: 0 }, 'q2 holds [10,20)');
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.match(await answered(a, 1, "p1's lock of [0,10)"), { result: 0 }, 'p1 holds [0,10)');
  a.sf.run(2, lk('p1', 1, F_WRLCK, F_SETLKW, 5, 10), a.target);
  await answered(a, -2, "p1's waiter for [5,15) queued");
  return { engine, a, b, released };
}

/** After waiterBehindRemote's unlock and grant, asked of node b: p1 holds [5,10) (the grant stands), [0,5) is free (the unlock applied once). */
export async function grantStands(t: Test, b: TestNode, what: string): Promise<void> {
  b.sf.run(10, lk('q3', 3, F_WRLCK, F_SETLK, 5, 5), b.target);
  t.match(await answered(b, 10, "q3's lock of [5,10)"), { result: -EAGAIN }, `${what}: p1 holds [5,10) (the grant stands)`);
  b.sf.run(11, lk('q4', 4, F_WRLCK, F_SETLK, 0, 5), b.target);
  t.match(await answered(b, 11, "q4's lock of [0,5)"), { result: 0 }, `${what}: [0,5) is free (the unlock applied)`);
}

/** `store` makes more steps on `path` than the engine's log keeps (each record it puts it removes). */
export async function overflowLog(engine: MemoryEngine, store: NodeStore, path = '/a'): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const tag = Math.random().toString(36).slice(2);
    const put = await store.commit({ file: path, base: (await engine.load(path)).version, put: [{ id: `x${tag}`, state: 'held', data: 'removed in the next step' }] });
    const rm = await store.commit({ file: path, base: (await engine.load(path)).version, remove: [`x${tag}`] });
    if (!put.ok || !rm.ok) throw new Error(`the steps that fill the log: ${JSON.stringify([put, rm])}`);
  }
}

/** A POSIX lock call of `owner` (pid `pid`) on [start, start+len) of `path`. */
export const lk = (owner: string, pid: number, type: number, cmd: number, start = 0, len = 10, path = '/a'): Call =>
  parseLock({ path, lockType: type, cmd, lockOwner: owner, lockStart: start, lockLen: len, lockPid: pid, fileHandle: pid }) as Call;

/** A Windows LockFileEx of [start, start+len) of `path` through `handle` (process 1), failing at once. */
export const lf = (handle: number, start = 0, len = 10, exclusive = true, path = '/a'): Call =>
  parseLockFile({ fileName: path, byteOffset: start, length: len, exclusiveLock: exclusive, failImmediately: true, handle, processId: 1 }) as Call;

/** A blocking Windows LockFileEx of [start, start+len) of /a through `handle` of process `pid`. */
export const lw = (handle: number, start: number, len: number, pid = 1): Call =>
  parseLockFile({ fileName: '/a', byteOffset: start, length: len, exclusiveLock: true, failImmediately: false, handle, processId: pid }) as Call;

/** A Windows UnlockFileEx of [start, start+len) of `path` through `handle` (process 1). */
export const uf = (handle: number, start = 0, len = 10, path = '/a'): Call => parseUnlockFile({ fileName: path, byteOffset: start, length: len, handle, processId: 1 }) as Call;

/** The close of `handle` on `path` (its Windows locks go). */
export const ch = (handle: number, path = '/a'): Call => parseCloseHandle({ fileName: path, handle });

export { MemoryEngine, memoryStore, until, within };
