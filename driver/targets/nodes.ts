/**
 * The nodes target: one lock space shared by N node processes on a Redis engine of the run's own
 * (driver/redis-server.ts), each node a LockCoordinator with `store` (driver/node-proc.ts) running
 * API clients, every grant, release and answer of every node judged by ONE oracle here, and
 * faults injected meanwhile: kill -9 of a node, SIGSTOP of a node past its session's TTL, a
 * restart of the engine that loses its data, a restart of the engine from an older snapshot.
 *
 * Mounts. When FUSE is there (mountUnavailable(), driver/targets/mount.ts) and --no-mounts is not
 * given, the run makes one backing directory with the workload's files, and each node process
 * also mounts it at a mountpoint of its own (mountFuse with the node's store, namespace and name:
 * the mount's coordinator IS the node's, one session for both kinds of clients). Files are keyed
 * "ino:<st_ino>" of the backing files, as every mount over that directory keys them, and the API
 * clients name them so too, so both kinds of clients meet on the same files. Of each node's POSIX
 * clients every other one (its first included) is then a lockclient process (driver/lockclient.c)
 * calling fcntl and flock on the files under its node's mountpoint; this process spawns it and
 * reads its answers, each stamped by the process itself (MountClient). Its owners are those of a
 * real process (close(2) of any descriptor drops its classic locks; over FUSE its OFD locks are
 * POSIX owners with deadlock detection, so the oracle gives them kind 'posix'); F_GETLK names it
 * by its pid on its own node, 0 on another, and F_OFD_GETLK through a mount names every holder
 * -1; the kernel shows a pid that names no process of the machine (an API client's) as 0. A fault
 * of a node is a fault of its mount: kill -9 kills its FUSE server, leaving a dead mount, which
 * this process unmounts lazily (fusermount3 -u -z) before the replacement mounts there again;
 * SIGSTOP leaves the processes on the mount blocked in the kernel until SIGCONT. Without FUSE the
 * nodes run API clients only, and the plan, stderr, the notes and the report say why, loudly.
 *
 * Clients. Client i runs on node slot i % N as that node's client floor(i / N): its API owners,
 * handles and pids (driver/targets/api.ts callApi) are the same strings as those of the clients
 * with that local index on the other nodes, so the lock space must tell them apart by node (API.md:
 * lockOwner 7 on node A and on node B are two owners). The oracle's owners carry the node's name.
 * This process owns each client's stream and knowledge (ClientObserver); the node process runs its
 * operations in order and says when each began and ended, stamped on this process's clock base
 * (CLOCK_MONOTONIC: one scale for every process on the machine).
 *
 * Ordering. Each node's events arrive in stamp order and are merged by stamp, as far as every
 * node has vouched: a node's mark is the stamp of its last healthy poll (node-proc.ts), so the
 * oracle never judges an event before it is known whether that node still had its session then.
 * A process on a mount reports a call only when it returns, so it vouches too: nothing past its
 * last answer is judged until it answers again (a long wait holds the judging back, no more).
 *
 * THE RULE FOR LOST LOCKS (what the oracle is told; see also oracle.ts "Lost locks"). A node's
 * locks are only as good as its session. For each node, p is the stamp of its last healthy poll
 * (not fenced, no new session, no commit refused for a fence, no failed renewal): up to p its
 * session was alive, so every lock its clients had learned was really theirs. Then:
 * 1. When the node turns out to have lost its locks with its session, or is killed, every lock its
 *    clients hold counts as released at p (a revoke event; the lock manager may list it a while
 *    longer, until the dead session's records are reaped, at most sessionTtlMs + 2 s after p for the
 *    oracle's F_GETLK checks). A node that opened a new session (stats().store.sessions grew) tells
 *    which it was with a lock of its own, its canary (node-proc.ts): checkIo 33 through its handle,
 *    lost (a SIGSTOP past the TTL; an engine restart that found it fenced); 0, re-asserted (an
 *    engine that lost its data while the node was live: API.md), and then nothing is revoked:
 *    its locks stay its clients', and a conflicting grant elsewhere is a violation. Before a
 *    fault is injected the parent asks the victim for a fresh healthy poll, so p is within
 *    milliseconds of the fault.
 *    Every client that ran on the node counts, the processes on its mount as much as its API
 *    clients: their locks are the node's session's.
 * 2. Its clients forget every lock they knew of before their next operation after the node saw
 *    the loss (observer.forget()); until then, grants they learn are not counted as holds (they may
 *    be answers decided in the lost session, or pieces of lost locks a failed set puts back, or
 *    real grants of the new session that the client is about to forget). Those grants are counted
 *    in the report (grantsWhileLost) and never count as holds; F_GETLK may name them (a maybe event).
 *    A process on the mount forgets before its first call that began after this process heard of
 *    the loss (its stamps say when each call began; the node says nothing about it): later than
 *    the node saw it, so it only stays unsure a little longer.
 * 3. From p until the node is healthy again, its answers may be the families' generic codes
 *    (33, -ENOLCK) besides every answer the oracle allows anyway (reply events marked `lost`):
 *    API.md says a node without a session answers so, and so does a request that could not reach
 *    the engine in time. The same holds for the calls of the processes on its mount (their SIGSTOP
 *    waits end after SIGCONT, answered by a node whose session is gone).
 * 4. A killed node's requests in flight are abandoned (no reply will come); its clients move to a
 *    new node process under a new name, knowing nothing. For a process on its mount, `at` (the
 *    stamp taken just before kill -9) is the cut: a call that returned before it was answered by
 *    the live node and is judged; the first that returned after it (ENOTCONN, EIO or
 *    ECONNABORTED from the dead mount, or an answer the node gave just before it died: no telling)
 *    is abandoned, and what it did later is dropped. The process is killed and a new one starts
 *    on the replacement node's mount, knowing nothing.
 * 5. From p until the node is healthy again, and for a grace period (graceMs, the TTL) after, its
 *    clients' waits may be held back by the lock manager: a withhold event for its owners, opened
 *    when the window opens and given its end when it closes (a killed node's never closes). An
 *    engine reset grants nothing until the grace period begun at the first reopening has run out,
 *    no later than that after any node's own reopening. A brand-new namespace's grace period is a
 *    withhold for every owner at the start of the load.
 * Everything else is judged as in every target: a grant that conflicts with a lock another client
 * (of any node) holds under these rules is a violation.
 *
 * Faults (--faults, on by default): a round is kill, stop, engine, snapshot, one after the other, repeated
 * while the budget lasts (the first round always completes). Each uses a probe: the victim holds
 * an exclusive Windows lock on a file of its own, a witness on another node waits for a byte of it.
 * - kill: kill -9 of the victim; the witness must be granted within sessionTtlMs + 1 s (measured:
 *   failover), and not before the victim's lease could have run out; the victim is replaced.
 * - stop: SIGSTOP for sessionTtlMs + 1 s, then SIGCONT; the witness must be granted within
 *   sessionTtlMs + 1 s of the stop; once running the victim must open a new session and checkIo
 *   through the probe's handle (a range the witness does not hold) must answer 33.
 * - engine: redis-server killed and started again on the same port with nothing kept; every node
 *   must open a new session; a byte nobody held is granted after the grace period (sessionTtlMs)
 *   and within it + 2 s; the holder, live, re-asserts its lock: checkIo through its handle answers
 *   0 and the witness waits until the holder releases it (had the holder been fenced, its lock
 *   would be lost: checkIo 33, and the witness granted after the grace period).
 * - snapshot: the engine SAVEs, then the holder takes the probe lock (so the snapshot lacks it),
 *   then redis-server is killed and started again from that snapshot: data older than what the
 *   nodes were told, the incarnation still there. The same checks as engine: the data of the older
 *   run must be dropped (every node opens a new session, nothing is granted in the grace period),
 *   the holder re-asserts the lock the snapshot lacks, and the witness waits until it is released.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { forceUnmount } from '../../src/mount.js';
import type { NodeConfig, NodeStoreCounts, ToChild, ToParent } from '../node-proc.js';
import { ClientObserver, text, type Naming } from '../observer.js';
import type { GetlkAnswer, LogEvent } from '../oracle.js';
import { RedisServer, redisDiag, redisVersion } from '../redis-server.js';
import { FAULT_KINDS, Stage, sleep, type FaultKind, type FaultSummary, type NodesResult, type Progress, type StageResult, type StageSpec } from '../stage.js';
import type { ClientStream, Op } from '../workloads.js';
import { nodesMountsUnavailable } from './mount.js';
import { answerOf, buildClient, line } from './process.js';

/** Short, so that faults resolve fast (every wait below scales with it). */
export const SESSION_TTL_MS = 2000;
/** The store's default fence (3/4 of the TTL, src/store/options.ts): a healthy node's lease lasts at least TTL - this past its poll. */
const FENCE_AFTER_MS = Math.floor((SESSION_TTL_MS * 3) / 4);
const REQUEST_TIMEOUT_MS = 2000;
const POLL_MS = 100;
/** Operations a client has been sent and not answered yet. */
const WINDOW = 8;
/** The API client index of each node's probe client (the workload's are far below). */
const PROBE_LOCAL = 1000;
/** How long a revoked lock may still be listed (F_GETLK) after p: the dead session is reaped within TTL + 1 s, plus 1 s of slack. */
const REVOKE_LISTED_NS = (SESSION_TTL_MS + 2000) * 1e6;
/**
 * How long after close(2) returns the OFD and flock locks of a descriptor on a node's mount may
 * still be listed (Naming.releaseListedNs): close returns before the kernel's RELEASE, sent in the
 * background, is answered. The kernel queues RELEASE before close returns. A running node answers
 * it once its step commits, or at its deadline, REQUEST_TIMEOUT_MS later (the step carries it; the
 * engine refuses the step past it); a release that missed it is owed, and runs first in the file's
 * next step, one that comes by itself, as soon as the engine takes it. A node that cannot reach the
 * engine by then cannot renew either, and a stopped one reads RELEASE only after SIGCONT: either
 * way its session is lost and its records are reaped within REVOKE_LISTED_NS of its last healthy
 * poll (the rule for revoked locks), which came no later than the deadline (before the close, for
 * a node stopped then). So the deadline plus that reaping bound, counted from the close's reply.
 * (Measured with the engine paused: close returned in 0.8 ms, the record left the engine 1 s
 * later, after SIGCONT.)
 */
const CLOSE_LISTED_NS = REQUEST_TIMEOUT_MS * 1e6 + REVOKE_LISTED_NS;
/**
 * The engine's grace period after a reset (and for a brand-new namespace): graceMs defaults to the
 * TTL (src/store/options.ts), and every node here has the same TTL, so no reopening asks for more.
 */
const GRACE_NS = SESSION_TTL_MS * 1e6;
const WARMUP_MS = 1000;
const SETTLE_MS = 500;
/** A wait for an event that must come (a node's mark, its new session): past this, the fault failed. */
const EVENT_MS = 15_000;

export { FAULT_KINDS, type FaultKind } from '../stage.js';

/** Each fault kind as the run's notes name it. */
const FAULT_NAMES: Readonly<Record<FaultKind, string>> = { kill: 'kill -9', stop: 'SIGSTOP', engine: 'engine restart', snapshot: 'engine restart from an older snapshot' };

type Marker =
  | { t: number; ev: 'x-window'; lost: boolean; gen: number }
  | { t: number; ev: 'x-close' }
  | { t: number; ev: 'x-forget'; client: number; gen: number }
  | { t: number; ev: 'x-end' };
type Queued = LogEvent | Marker;

type Answer = { result: number; t0: number; t1: number };

interface Sent {
  op: Op;
  t0?: number;
  settle?: (a: Answer) => void;
}

const here = dirname(fileURLToPath(import.meta.url));
// Run from TypeScript (the tests), a node runs the build when there is one, as the lock manager's
// workers do (src/caller/workers.ts): compiling the sources again in every node process takes
// seconds. Without a build, the TypeScript loader only (no coverage or mock loaders in a node).
const BUILT = join(here, '..', '..', 'dist', 'driver', 'node-proc.js');
const TS = import.meta.url.endsWith('.ts') && !existsSync(BUILT);
const SCRIPT = import.meta.url.endsWith('.ts') ? (TS ? join(here, '..', 'node-proc.ts') : BUILT) : join(here, '..', 'node-proc.js');
const EXEC_ARGV = TS ? process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a === '--enable-source-maps') : [];

/** One client: a workload stream (or the node's probe), its knowledge, the operations in flight. */
class Client {
  readonly observer: ClientObserver;
  node!: NodeProc;
  sent: Sent[] = [];
  /** The loss generation of the node the client last acted under (node-proc.ts). */
  gen = 0;
  cleanup: Op[] | undefined;
  finished = false;
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(
    readonly run: Run,
    readonly global: number,
    readonly local: number,
    readonly stream: ClientStream | undefined,
    naming: Naming = run.naming,
  ) {
    this.observer = new ClientObserver(global, naming, run.stage.ids, (e) => this.node.push(e));
    this.done = new Promise((r) => (this.finish = r));
    if (stream === undefined) this.finishNow();
  }

  finishNow(): void {
    this.finished = true;
    this.finish();
  }

  /** Moves to `node` (at the start, or from a killed node): it knows nothing and has nothing in flight. */
  assign(node: NodeProc): void {
    const s = this.sent[0];
    if (this.stream !== undefined && s?.t0 !== undefined && 'wait' in s.op && s.op.wait) this.run.stage.metrics.waiting--;
    this.observer.abandon();
    this.observer.forget();
    this.observer.ownerPrefix = `${node.name}:`;
    this.node = node;
    node.clients.add(this);
    node.served.add(this.global);
    this.sent = [];
    this.gen = 0;
  }

  /** Keeps WINDOW operations in flight while the budget lasts, then the cleanup, then says done. */
  topUp(): void {
    const s = this.stream;
    if (s === undefined || this.finished || !this.node.ready || !this.node.alive) return;
    const batch: Op[] = [];
    const stage = this.run.stage;
    while (this.sent.length + batch.length < WINDOW && this.cleanup === undefined) {
      if (!stage.stalled && stage.take()) batch.push(s.next());
      else this.cleanup = s.cleanup();
    }
    while (this.sent.length + batch.length < WINDOW && this.cleanup !== undefined && this.cleanup.length > 0) batch.push(this.cleanup.shift()!);
    if (batch.length > 0) {
      for (const op of batch) this.sent.push({ op });
      this.node.send(['ops', this.global, this.local, batch]);
    }
    if (this.cleanup !== undefined && this.cleanup.length === 0 && this.sent.length === 0) this.finishNow();
  }

  /** A probe operation: its answer when it ends. */
  probe(op: Op): Promise<Answer> {
    return new Promise((settle) => {
      this.sent.push({ op, settle });
      this.node.send(['ops', this.global, this.local, [op]]);
    });
  }

  began(t0: number, gen: number): void {
    const s = this.sent[0];
    if (s === undefined) throw new Error(`client ${this.global}: an operation began that was never sent`);
    if (gen !== this.gen) {
      this.gen = gen;
      this.node.push({ t: t0, ev: 'x-forget', client: this.global, gen });
      this.observer.forget();
    }
    s.t0 = t0;
    this.observer.begin(s.op, t0);
    if (this.stream !== undefined && 'wait' in s.op && s.op.wait) this.run.stage.metrics.waiting++;
  }

  ended(t1: number, result: number, answer: GetlkAnswer | undefined): void {
    const s = this.sent.shift();
    if (s?.t0 === undefined) throw new Error(`client ${this.global}: an operation ended that never began`);
    const outcome = this.observer.end(t1, result, answer);
    if (this.stream !== undefined) {
      const m = this.run.stage.metrics;
      if ('wait' in s.op && s.op.wait) m.waiting--;
      m.record(s.op, s.t0, t1, outcome);
      this.node.ops++;
    }
    s.settle?.({ result, t0: s.t0, t1 });
    this.topUp();
  }
}

/**
 * A client on its node's mount: a lockclient process (driver/lockclient.c) calling fcntl and flock
 * on the files under the node's mountpoint. It reports each call with its stamps when the call
 * returns, so it is begun and ended at once, and `mark` holds back the judging of every node
 * until its answers have come (no later event of it is stamped below its last answer).
 */
class MountClient extends Client {
  /** No event of it still to come is stamped below this. */
  mark = 0;
  pid = 0;
  /** Its current process, and when that process has closed (every line read). */
  proc: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  private ready = false;
  private quit = false;
  private lastT1 = 0;
  /** Its node was killed at this stamp: a call that returned after it was not answered by that node. */
  private cutAt = Infinity;
  private cutDone = false;

  /** Moves to `node`'s mount with a new process (at the start, or from a killed node): it knows nothing. */
  override assign(node: NodeProc): void {
    super.assign(node);
    const bin = this.run.mounts?.bin;
    if (this.stream === undefined || bin === undefined || node.mountpoint === undefined) throw new Error(`client ${this.global}: no mount to run on`);
    this.mark = this.run.stage.clock.now();
    this.ready = false;
    this.quit = false;
    this.cutAt = Infinity;
    this.cutDone = false;
    // Its own process group, as every process of the run (see NodeProc): the runner stops it.
    const child = spawn(bin, [node.mountpoint], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    this.proc = child;
    child.stdin!.on('error', () => {}); // killed with its node, or at the end: nothing more to send
    child.on('error', (e) => this.run.note(`client ${this.global}: its process on ${node.name}'s mount failed: ${e.message}`));
    this.exited = new Promise<void>((r) =>
      child.once('close', () => {
        if (this.proc === child) {
          // Killed with its node in the middle of a call: that call began after its last answer.
          // It may have queued a waiter or been granted on the node (whose session outlives it
          // until its TTL), so it is abandoned like the calls in flight of the node's API clients;
          // unlogged, F_GETLK naming its lock or EDEADLK through its wait would look like a phantom.
          if (this.cutAt !== Infinity && !this.cutDone && this.sent.length > 0) {
            this.cutDone = true;
            const t0 = Math.min(Math.max(this.lastT1 + 1, this.mark), this.cutAt);
            this.began(t0, t0 > node.lostAt ? node.lossGen : this.gen);
          }
          this.mark = Infinity;
          if (this.quit && !this.finished) this.finishNow();
          else if (!this.finished && node.alive && this.cutAt === Infinity) {
            this.run.note(`client ${this.global}'s process on ${node.name}'s mount ended by itself`);
            this.finishNow();
          }
        }
        r();
      }),
    );
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (this.proc === child) this.onLine(l, node);
    });
  }

  private onLine(l: string, node: NodeProc): void {
    if (l.startsWith('ready ')) {
      this.pid = Number(l.slice(6));
      this.ready = true;
      this.topUp();
      return;
    }
    if (this.cutDone || this.run.stage.closed || this.sent.length === 0) return;
    const [a, b, r, ...rest] = l.split(' ');
    const clock = this.run.stage.clock;
    const t0 = Math.max(clock.from(BigInt(a!)), this.lastT1);
    const t1 = Math.max(clock.from(BigInt(b!)), t0);
    const result = Number(r);
    // A call that began after the node reported a lost session begins after its clients forgot.
    const gen = t0 > node.lostAt ? node.lossGen : this.gen;
    if (t1 >= this.cutAt) {
      // Its node died meanwhile (ENOTCONN, EIO from the dead mount, or an answer the dead node
      // gave before it died): abandoned, as the calls in flight of the node's API clients.
      this.cutDone = true;
      this.began(t0, gen);
      this.mark = Infinity;
      return;
    }
    this.began(t0, gen);
    this.lastT1 = t1;
    this.mark = t1;
    this.ended(t1, result, this.sent[0]!.op.op === 'getlk' && result === 0 ? answerOf(rest) : undefined);
  }

  override topUp(): void {
    const s = this.stream;
    const child = this.proc;
    if (s === undefined || child === undefined || this.finished || this.quit || !this.ready || !this.node.alive || this.cutAt !== Infinity) return;
    const stage = this.run.stage;
    const batch: Op[] = [];
    while (this.sent.length + batch.length < WINDOW && this.cleanup === undefined) {
      if (!stage.stalled && stage.take()) batch.push(s.next());
      else this.cleanup = s.cleanup();
    }
    while (this.sent.length + batch.length < WINDOW && this.cleanup !== undefined && this.cleanup.length > 0) batch.push(this.cleanup.shift()!);
    for (const op of batch) {
      this.sent.push({ op });
      child.stdin!.write(line(op));
    }
    if (this.cleanup !== undefined && this.cleanup.length === 0 && this.sent.length === 0) {
      this.quit = true;
      child.stdin!.write('Q\n');
      child.stdin!.end();
    }
  }

  /** Its node is killed at `at`: a call that returns after that was not answered by the node. */
  cutOff(at: number): void {
    this.cutAt = at;
  }

  /** Kills its process (its node was killed: it can do nothing more on that mount). */
  kill(): void {
    this.proc?.kill('SIGKILL');
  }

  /** At the end, stuck: the call it is in began after its last answer and has no reply (the oracle says so). */
  abandonStuck(): void {
    const s = this.sent[0];
    if (s !== undefined && !this.cutDone && this.cutAt === Infinity) {
      this.cutDone = true;
      const t0 = Math.max(this.lastT1 + 1, Number.isFinite(this.mark) ? this.mark : 0);
      this.began(t0, t0 > this.node.lostAt ? this.node.lossGen : this.gen);
    }
    this.mark = Infinity;
    this.proc?.kill('SIGKILL');
  }
}

/** One node process and what this process knows of it. */
class NodeProc {
  readonly child: ChildProcess;
  readonly clients = new Set<Client>();
  /** Every client that ran on it, moved away or not (a loss judged late still concerns them). */
  readonly served = new Set<number>();
  readonly probe: Client;
  /** Events not yet judged, in stamp order, from `head` on. */
  private queue: Queued[] = [];
  private head = 0;
  /** No event of this node still to come is stamped at or below this. */
  mark: number;
  /** Its last healthy poll's stamp (p in the rule above). */
  lastMark: number;
  ready = false;
  alive = true;
  /** Set when this process ended it on purpose (a fault, or the end of the run). */
  expectedExit = false;
  /** Killed at the end because its clients did not finish. */
  hung = false;
  ended = 'running';
  ops = 0;
  counts: NodeStoreCounts | undefined;
  readonly started: Promise<void>;
  readonly closed: Promise<void>;
  /** When it was spawned and when it said ready (this process's clock). */
  readonly spawnedAt: number;
  readyAt = 0;
  /** Sessions it saw lost ('w' lost), and when the last news of one came (this process's clock). */
  losses = 0;
  lostAt = 0;
  /** Its loss generation at the last news of a loss (node-proc.ts). */
  lossGen = 0;
  /** Where it mounts the run's backing directory, when mounts run. */
  readonly mountpoint: string | undefined;
  /** Whether its last poll was healthy, and when it last turned healthy after a window. */
  healthy = true;
  /** Sessions it had opened at its last healthy poll. */
  sessions = 1;
  recoveredAt = 0;
  private out: ToChild[] = [];
  private flushing = false;
  private readonly stderr: string[] = [];
  private readonly checks = new Set<() => void>();
  private ioId = 0;
  private readonly io = new Map<number, number>();
  private readonly diags = new Map<number, string>();
  // The filter's state (judge()).
  private readonly pending = new Map<number, { t0: number; client: number }>();
  private readonly held = new Set<number>();
  private readonly stale = new Set<number>();
  private lostGen = 0;
  private readonly windows: { from: number; to: number; lost: boolean }[] = [];
  private open: { from: number; to: number; lost: boolean } | undefined;

  constructor(
    private readonly run: Run,
    readonly name: string,
    readonly slot: number,
    probeGlobal: number,
  ) {
    const stage = run.stage;
    this.mark = this.lastMark = this.spawnedAt = stage.clock.now();
    const mounts = run.mounts;
    this.mountpoint = mounts?.mountpoints[slot];
    const cfg: NodeConfig = {
      url: run.redis.url,
      namespace: run.namespace,
      node: name,
      sessionTtlMs: SESSION_TTL_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      workers: stage.spec.workers,
      clockBase: stage.clock.base.toString(),
      pollMs: POLL_MS,
      canary: probeGlobal,
      ...(mounts === undefined ? {} : { keys: mounts.keys, mount: { backing: mounts.backing, mountpoint: this.mountpoint! } }),
    };
    // Its own process group: a terminal's Ctrl-C (and `timeout`) signal the runner's whole group,
    // and a node dying of that signal under the runner's orderly stop left its clients waiting on
    // a dead node until the stall limits, and a fault under way judged failed. It goes with the
    // runner all the same: it exits when its IPC channel closes.
    this.child = fork(SCRIPT, [JSON.stringify(cfg)], { execArgv: EXEC_ARGV, serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], detached: true });
    this.child.stderr!.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) if (l.trim() !== '' && this.stderr.length < 40) this.stderr.push(l);
    });
    this.child.on('error', () => {});
    let started!: () => void;
    let failed!: (e: Error) => void;
    this.started = new Promise<void>((r, j) => {
      started = r;
      failed = j;
    });
    // A replacement is awaited only after the failover it follows (seconds): its failure to start
    // may come first, and must then wait there, not end the run as an unhandled rejection.
    this.started.catch(() => {});
    this.closed = new Promise<void>((r) =>
      this.child.once('close', (code, signal) => {
        this.alive = false;
        this.ended = this.expectedExit ? this.ended : `exited unexpectedly (${signal ?? `code ${code}`})`;
        if (!this.ready) failed(new Error(`node ${name} did not start: ${signal ?? `exit code ${code}`}: ${this.stderr.slice(-8).join(' | ')}`));
        r();
      }),
    );
    this.child.on('message', (batch: ToParent[]) => {
      for (const m of batch) this.onMessage(m, started);
      for (const c of [...this.checks]) c();
      run.flush();
    });
    this.probe = new Client(run, probeGlobal, PROBE_LOCAL, undefined);
    this.probe.assign(this);
  }

  private onMessage(m: ToParent, started: () => void): void {
    switch (m[0]) {
      case 'ready':
        this.ready = true;
        this.readyAt = this.run.stage.clock.now();
        started();
        break;
      case 'b':
      case 'e': {
        const k = this.run.clients.get(m[1]);
        if (k === undefined || k.node !== this) break;
        if (m[0] === 'b') k.began(m[2], m[3]);
        else k.ended(m[2], m[3], m[4]);
        break;
      }
      case 'm':
        if (m[2] !== undefined) {
          this.push({ t: m[2], ev: 'x-close' });
          this.recoveredAt = this.run.stage.clock.now();
        }
        this.sessions = m[3];
        this.healthy = true;
        this.lastMark = m[1];
        if (m[1] > this.mark) this.mark = m[1];
        break;
      case 'w':
        this.push({ t: m[1], ev: 'x-window', lost: m[2], gen: m[3] });
        this.healthy = false;
        if (m[2]) {
          this.losses++;
          this.lostAt = this.run.stage.clock.now();
          this.lossGen = m[3];
        }
        break;
      case 'stats':
        this.counts = m[1];
        break;
      case 'fail':
        this.run.note(`${this.name}: ${m[1]}`);
        break;
      case 'io':
        this.io.set(m[1], m[2]);
        break;
      case 'diag':
        this.diags.set(m[1], m[2]);
        break;
    }
  }

  /** Resolves with f()'s first value other than undefined (tried now and after each message), or undefined after `ms`. */
  when<T>(f: () => T | undefined, ms = EVENT_MS): Promise<T | undefined> {
    const now = f();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => {
      const check = () => {
        const v = f();
        if (v === undefined) return;
        clearTimeout(timer);
        this.checks.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => {
        this.checks.delete(check);
        resolve(undefined);
      }, ms);
      this.checks.add(check);
    });
  }

  send(m: ToChild): void {
    if (!this.alive) return;
    this.out.push(m);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      const b = this.out;
      this.out = [];
      if (this.alive && this.child.connected) this.child.send(b, () => {});
    });
  }

  /** A healthy poll begun after now: its stamp, or undefined when none came in time. */
  freshMark(ms = EVENT_MS): Promise<number | undefined> {
    const asked = this.run.stage.clock.now();
    this.send(['poll']);
    return this.when(() => (this.healthy && this.lastMark >= asked ? this.lastMark : undefined), ms);
  }

  /** A lost session seen after `losses` were, and the node healthy again: when it turned healthy. */
  recovered(losses: number, ms = EVENT_MS): Promise<number | undefined> {
    return this.when(() => (this.losses > losses && this.healthy ? this.recoveredAt : undefined), ms);
  }

  /** A session opened after `sessions` were (lost or re-asserted), and the node healthy again: when it turned healthy. */
  renewed(sessions: number, ms = EVENT_MS): Promise<number | undefined> {
    return this.when(() => (this.sessions > sessions && this.healthy ? this.recoveredAt : undefined), ms);
  }

  /** What the node says of itself, or why it said nothing. */
  async diag(file?: number): Promise<string> {
    const id = ++this.ioId;
    this.send(['diag', id, file]);
    return (await this.when(() => this.diags.get(id), 5000)) ?? 'no answer within 5 s (its event loop is stuck, or it is stopped)';
  }

  checkIo(file: number, start: number, len: number): Promise<number | undefined> {
    const id = ++this.ioId;
    this.send(['io', id, PROBE_LOCAL, file, start, len]);
    return this.when(() => this.io.get(id));
  }

  /** Adds an event or marker in stamp order (a marker may name a stamp before events already queued, never before the mark). */
  push(e: Queued): void {
    let i = this.queue.length;
    while (i > this.head && this.queue[i - 1]!.t > e.t) i--;
    if (i === this.head && this.head > 0 && e.t < this.queue[this.head - 1]!.t) throw new Error(`${this.name}: an event stamped ${e.t} came after the oracle judged ${this.queue[this.head - 1]!.t}`);
    this.queue.splice(i, 0, e);
  }

  peek(): Queued | undefined {
    return this.queue[this.head];
  }

  take(): Queued {
    const e = this.queue[this.head++]!;
    if (this.head > 4096) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return e;
  }

  kill(signal: NodeJS.Signals): void {
    if (signal === 'SIGKILL') this.expectedExit = true;
    this.child.kill(signal);
  }

  /**
   * After its process ended: nothing more will come. What it had in flight is abandoned when it
   * was killed as a fault; a node killed because its clients never finished leaves its requests
   * unanswered, which the oracle reports.
   */
  closeLog(at: number): void {
    const last = this.queue.length > 0 ? this.queue[this.queue.length - 1]!.t : 0;
    if (!this.hung) this.push({ t: Math.max(at, last), ev: 'x-end' });
    this.mark = Infinity;
  }

  /** The oracle's name of one of its unhealthy windows (a withhold event's key). */
  private windowKey(w: { from: number; to: number; lost: boolean }): string {
    return `${this.name} window ${this.windows.indexOf(w) + 1}`;
  }

  /** Feeds one event to the oracle under the rule for lost locks (file comment). */
  judge(e: Queued, feed: (e: LogEvent) => void): void {
    switch (e.ev) {
      case 'x-window': {
        let w = this.open;
        if (w === undefined) {
          this.windows.push((w = this.open = { from: e.t, to: Infinity, lost: false }));
          // Without a healthy session the node may grant nothing to its clients (a killed node's
          // window never closes: its owners' names die with it).
          feed({ t: e.t, ev: 'withhold', key: this.windowKey(w), scope: `${this.name}:`, until: Infinity });
        }
        if (e.lost) {
          w.lost = true;
          this.lostGen = Math.max(this.lostGen, e.gen);
          for (const lock of this.held) feed({ t: e.t, ev: 'revoke', lock, until: e.t + REVOKE_LISTED_NS });
          this.held.clear();
          for (const k of this.served) this.stale.add(k);
        }
        return;
      }
      case 'x-close':
        if (this.open !== undefined) {
          this.open.to = e.t;
          // A new session after an engine reset grants nothing until the grace period (begun at the
          // first reopening, no later than this node's) has run out.
          feed({ t: e.t, ev: 'withhold', key: this.windowKey(this.open), scope: `${this.name}:`, until: e.t + GRACE_NS });
        }
        this.open = undefined;
        return;
      case 'x-forget':
        if (e.gen >= this.lostGen) this.stale.delete(e.client);
        return;
      case 'x-end':
        // What it asked for may have been granted: listed until its dead session is reaped.
        for (const req of this.pending.keys()) feed({ t: e.t, ev: 'abandon', req, until: e.t + REVOKE_LISTED_NS });
        this.pending.clear();
        return;
      case 'request':
        this.pending.set(e.req.id, { t0: e.t, client: e.req.client });
        break;
      case 'grant': {
        const client = this.pending.get(e.lock.req)?.client;
        if (client !== undefined && this.stale.has(client)) {
          // Maybe held (a grant of the new session) or not (an answer of the lost one): F_GETLK may name it.
          this.run.grantsWhileLost++;
          feed({ t: e.t, ev: 'maybe', lock: e.lock, until: Infinity });
          return;
        }
        this.held.add(e.lock.id);
        break;
      }
      case 'release':
        this.held.delete(e.lock);
        break;
      case 'revoke':
      case 'abandon':
      case 'maybe':
      case 'withhold':
        break;
      case 'reply': {
        const p = this.pending.get(e.req);
        this.pending.delete(e.req);
        const w = p === undefined ? undefined : this.windows.find((x) => x.from <= e.t && p.t0 <= x.to);
        if (w !== undefined) {
          this.run.repliesWhileLost++;
          // What it released may have gone with the session instead: listed until that is reaped.
          feed({ ...e, lost: true, listedUntil: w.from + REVOKE_LISTED_NS });
          return;
        }
        break;
      }
    }
    feed(e);
  }
}

/** The run's mounts: one backing directory, each node slot's mountpoint, the workload's files as the mounts key them. */
interface Mounts {
  base: string;
  backing: string;
  mountpoints: string[];
  /** "ino:<st_ino>" of backing file i: what the mounts call it, and so what the API clients call it too. */
  keys: string[];
  /** The lockclient binary. */
  bin: string;
}

/** Everything of one run of the target. */
class Run {
  readonly clients = new Map<number, Client>();
  readonly mountClients: MountClient[] = [];
  readonly nodes: NodeProc[] = [];
  readonly namespace = `stress-${randomUUID().slice(0, 8)}`;
  readonly naming: Naming;
  grantsWhileLost = 0;
  repliesWhileLost = 0;
  /** Why mounts did not run, when they did not. */
  mountsSkipped: string | undefined;
  readonly faultLog: string[] = [];
  readonly faults: Record<string, FaultSummary> = {};
  /** Whether the first round of faults, which completes whatever the budget, is still going on. */
  firstRound = true;
  private notes = 0;
  private nextProbe: number;
  private readonly gens = new Map<number, number>();

  /** The naming of the clients on a mount (lockclient processes). */
  readonly mountNaming: Naming | undefined;

  constructor(
    readonly stage: Stage,
    readonly redis: RedisServer,
    readonly n: number,
    readonly mounts: Mounts | undefined,
  ) {
    const localOf = (c: number) => this.clients.get(c)?.local ?? 0;
    // A holder on another node is reported with pid 0 (API.md); OFD locks with -1 (through a mount:
    // F_OFD_GETLK always -1, and the kernel shows a pid that names no process of the machine as 0).
    const viaMount = mounts === undefined ? [] : [-1];
    this.naming = {
      file: mounts === undefined ? (i) => `/stress/f${i}` : (i) => mounts.keys[i]!,
      classicPids: (c) => [10000 + localOf(c), 0, ...viaMount],
      ofdPids: () => [-1, 0],
      windowsPids: (c) => [20000 + localOf(c), 0, ...viaMount],
      closeDropsClassic: false,
    };
    if (mounts !== undefined) {
      const pidOf = (c: number) => {
        const k = this.clients.get(c);
        return k instanceof MountClient ? k.pid : 0;
      };
      // A process's locks: its pid on its own node (F_GETLK through its mount, or by an API client
      // of its node), 0 on another; F_OFD_GETLK -1. Over FUSE its OFD locks are POSIX owners with
      // deadlock detection, and close(2) of any descriptor drops its classic locks on the file.
      this.mountNaming = {
        file: (i) => mounts.keys[i]!,
        classicPids: (c) => [pidOf(c), 0, -1],
        ofdPids: (c) => [-1, pidOf(c), 0],
        windowsPids: () => [0, -1],
        closeDropsClassic: true,
        ofdKind: 'posix',
        releaseListedNs: CLOSE_LISTED_NS,
      };
    }
    this.nextProbe = stage.spec.clients;
  }

  note(s: string): void {
    if (++this.notes <= 20) this.stage.notes.push(s);
    else if (this.notes === 21) this.stage.notes.push('(further notes of the nodes left out)');
  }

  /** Starts node slot `slot` (again, under a new name, after a kill). */
  spawn(slot: number): NodeProc {
    const gen = this.gens.get(slot) ?? 0;
    this.gens.set(slot, gen + 1);
    const probe = this.nextProbe++;
    const node = new NodeProc(this, gen === 0 ? `n${slot}` : `n${slot}r${gen}`, slot, probe);
    this.clients.set(probe, node.probe);
    this.nodes.push(node);
    return node;
  }

  live(): NodeProc[] {
    return this.nodes.filter((n) => n.alive && !n.expectedExit);
  }

  /** Judges every event every node (and every process on a mount) has vouched for, in stamp order. */
  flush(): void {
    let limit = Infinity;
    for (const n of this.nodes) if (n.mark < limit) limit = n.mark;
    for (const k of this.mountClients) if (k.mark < limit) limit = k.mark;
    for (;;) {
      let best: NodeProc | undefined;
      let bestT = Infinity;
      for (const n of this.nodes) {
        const e = n.peek();
        if (e !== undefined && e.t <= limit && e.t < bestT) [best, bestT] = [n, e.t];
      }
      if (best === undefined) return;
      best.judge(best.take(), this.stage.feed);
    }
  }

  fault(kind: FaultKind): FaultSummary {
    return (this.faults[kind] ??= { tries: 0, failures: 0, timesMs: {}, why: [] });
  }
}

const ms = (ns: number) => Math.round(ns / 1e5) / 10;

function time(f: FaultSummary, name: string, v: number): void {
  (f.timesMs[name] ??= []).push(v);
}

const probeFile = (run: Run) => run.stage.spec.files;
// Waiting (briefly) rather than failing at once: a node's copy of the probe file may be stale (it
// reaped it, say), and a request that fails at once is answered from that copy without a commit.
const holdOp = (run: Run): Op => ({ op: 'winlock', role: 'windows', file: probeFile(run), exclusive: true, start: 0, len: 100, wait: true, timeoutMs: 5000 });
const waitOp = (run: Run): Op => ({ op: 'winlock', role: 'windows', file: probeFile(run), exclusive: true, start: 0, len: 1, wait: true, timeoutMs: SESSION_TTL_MS + 10_000 });
const unlockOp = (run: Run): Op => ({ op: 'winunlock', role: 'windows', file: probeFile(run), start: 0, len: 1 });
const closeOp = (run: Run): Op => ({ op: 'close', role: 'windows', file: probeFile(run) });
const freshOp = (run: Run): Op => ({ op: 'winlock', role: 'windows', file: probeFile(run), exclusive: true, start: 200, len: 1, wait: true, timeoutMs: SESSION_TTL_MS + 10_000 });

/** Waits for `p` at most `ms`: its value, or undefined. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The victim takes the probe lock, the witness waits for a byte of it: the witness's pending answer. */
async function setUpProbe(run: Run, victim: NodeProc, witness: NodeProc, why: string[]): Promise<{ waiting: Promise<Answer> } | undefined> {
  const held = await within(victim.probe.probe(holdOp(run)), EVENT_MS);
  if (held?.result !== 0) {
    why.push(`${victim.name} could not take the probe lock (${held === undefined ? 'no answer' : held.result}; the probe file's locks: ${await victim.diag(probeFile(run))})`);
    return undefined;
  }
  const waiting = witness.probe.probe(waitOp(run));
  const early = await within(waiting, 300);
  if (early !== undefined) {
    why.push(`the witness ${witness.name} was answered ${early.result} while ${victim.name} held the lock`);
    return undefined;
  }
  return { waiting };
}

/** The witness's answer after a fault at `at`: checks and records the failover time. */
async function failover(f: FaultSummary, waiting: Promise<Answer>, at: number, lease: number, why: string[]): Promise<void> {
  const w = await within(waiting, SESSION_TTL_MS + 15_000);
  if (w === undefined || w.result !== 0) {
    why.push(`the witness was ${w === undefined ? 'never answered' : `answered ${w.result}`}`);
    return;
  }
  const t = ms(w.t1 - at);
  time(f, 'failoverMs', t);
  if (t > SESSION_TTL_MS + 1000) why.push(`the witness was granted ${t} ms after the fault (over sessionTtlMs + 1 s)`);
  // The victim was healthy at `lease`: its session lived at least TTL - fenceAfter past it.
  if (w.t1 < lease + (SESSION_TTL_MS - FENCE_AFTER_MS) * 1e6) why.push(`the witness was granted ${ms(w.t1 - lease)} ms after the victim's last healthy poll, before its session could have expired`);
}

async function killFault(run: Run, victim: NodeProc, witness: NodeProc): Promise<string[]> {
  const f = run.fault('kill');
  const why: string[] = [];
  const probe = await setUpProbe(run, victim, witness, why);
  if (probe === undefined) return why;
  const p = await victim.freshMark();
  if (p === undefined) return [...why, `${victim.name} had no healthy poll before the fault`];
  const at = run.stage.clock.now();
  const onMount = [...victim.clients].filter((k): k is MountClient => k instanceof MountClient);
  for (const k of onMount) k.cutOff(at);
  victim.kill('SIGKILL');
  victim.ended = 'killed (kill -9)';
  victim.push({ t: victim.lastMark, ev: 'x-window', lost: true, gen: Infinity });
  await victim.closed;
  // Its mount died with it: the processes on it get ENOTCONN or EIO from now on. They go too (what
  // they answer after `at` is not the node's), and the dead mount is unmounted lazily, so that the
  // replacement can mount there again.
  for (const k of onMount) k.kill();
  if (victim.mountpoint !== undefined) forceUnmount(victim.mountpoint);
  await Promise.all(onMount.map((k) => k.exited));
  victim.closeLog(at);
  run.faultLog.push(`${ms(at)} ms: kill -9 ${victim.name} (last healthy poll ${ms(at - p)} ms before)`);
  // Replaced unless the run is ending: also past the budget while the first round lasts, which
  // needs two nodes for its SIGSTOP and engine restarts (and always completes).
  const next = run.stage.spec.signal?.aborted || (run.stage.spent && !run.firstRound) ? undefined : run.spawn(victim.slot);
  await failover(f, probe.waiting, at, p, why);
  if (next !== undefined) {
    try {
      await next.started;
      time(f, 'respawnMs', ms(next.readyAt - next.spawnedAt));
      run.faultLog.push(`${ms(run.stage.clock.now())} ms: ${next.name} replaces ${victim.name}`);
    } catch (e) {
      why.push(e instanceof Error ? e.message : String(e));
    }
  }
  for (const k of [...victim.clients]) {
    if (k === victim.probe) continue;
    victim.clients.delete(k);
    if (next?.alive && next.ready) {
      k.assign(next);
      k.topUp();
    } else {
      k.finishNow();
    }
  }
  await release(run, witness, unlockOp(run));
  return why;
}

/** A probe's release, with what it answered in the fault log when that is not 0. */
async function release(run: Run, n: NodeProc, op: Op): Promise<void> {
  const r = await within(n.probe.probe(op), EVENT_MS);
  if (r?.result !== 0) run.faultLog.push(`${ms(run.stage.clock.now())} ms: ${n.name}'s probe ${text(op)} answered ${r === undefined ? 'nothing' : r.result}`);
}

async function stopFault(run: Run, victim: NodeProc, witness: NodeProc): Promise<string[]> {
  const f = run.fault('stop');
  const why: string[] = [];
  const probe = await setUpProbe(run, victim, witness, why);
  if (probe === undefined) return why;
  const p = await victim.freshMark();
  if (p === undefined) return [...why, `${victim.name} had no healthy poll before the fault`];
  const losses = victim.losses;
  const at = run.stage.clock.now();
  victim.kill('SIGSTOP');
  run.faultLog.push(`${ms(at)} ms: SIGSTOP ${victim.name} (last healthy poll ${ms(at - p)} ms before)`);
  const cont = sleep(SESSION_TTL_MS + 1000).then(() => {
    victim.kill('SIGCONT');
    const t = run.stage.clock.now();
    run.faultLog.push(`${ms(t)} ms: SIGCONT ${victim.name} after ${ms(t - at)} ms`);
    return t;
  });
  await failover(f, probe.waiting, at, p, why);
  const resumed = await cont;
  const back = await victim.recovered(losses);
  if (back === undefined) {
    why.push(`${victim.name} did not open a new session and turn healthy within ${EVENT_MS} ms of SIGCONT`);
  } else {
    time(f, 'newSessionMs', ms(victim.lostAt - resumed));
    time(f, 'healthyAgainMs', ms(back - resumed));
    // A byte the witness does not hold: only the lost lock can make this 33.
    const io = await victim.checkIo(probeFile(run), 50, 1);
    run.faultLog.push(`${ms(run.stage.clock.now())} ms: checkIo through ${victim.name}'s lost probe handle: ${io}`);
    if (io !== 33) why.push(`checkIo through ${victim.name}'s lost probe handle answered ${io}, not 33`);
  }
  await release(run, victim, closeOp(run));
  await release(run, witness, unlockOp(run));
  return why;
}

/**
 * The engine restarts (kill -9): with nothing kept, or (`fromSnapshot`) from a snapshot taken just
 * before the holder took the probe lock, so that the engine comes back without it.
 */
async function engineFault(run: Run, holder: NodeProc, witness: NodeProc, fromSnapshot: boolean): Promise<string[]> {
  const f = run.fault(fromSnapshot ? 'snapshot' : 'engine');
  const why: string[] = [];
  const saved = fromSnapshot ? run.stage.clock.now() : undefined;
  if (fromSnapshot) await run.redis.snapshot();
  const held = await within(holder.probe.probe(holdOp(run)), EVENT_MS);
  if (held?.result !== 0) return [`${holder.name} could not take the probe lock (${held === undefined ? 'no answer' : held.result}; the probe file's locks: ${await holder.diag(probeFile(run))})`];
  const nodes = run.live();
  const marks = await Promise.all(nodes.map((n) => n.freshMark()));
  if (marks.some((m) => m === undefined)) return [`a node had no healthy poll before the fault`];
  const sessions = nodes.map((n) => n.sessions);
  const losses = holder.losses;
  const at = run.stage.clock.now();
  await run.redis.restart({ fromSnapshot });
  const up = run.stage.clock.now();
  time(f, 'restartMs', ms(up - at));
  const kept = saved === undefined ? 'with nothing kept' : `from its snapshot of ${ms(saved)} ms (before ${holder.name} took the probe lock)`;
  run.faultLog.push(`${ms(at)} ms: redis-server killed, up again after ${ms(up - at)} ms ${kept}`);
  const back = await Promise.all(nodes.map((n, i) => n.renewed(sessions[i]!, EVENT_MS + SESSION_TTL_MS)));
  back.forEach((t, i) => {
    if (t === undefined) why.push(`${nodes[i]!.name} did not open a new session and turn healthy`);
  });
  const reopened = back.filter((t): t is number => t !== undefined);
  if (reopened.length > 0) time(f, 'allSessionsMs', ms(Math.max(...reopened) - up));
  // Nothing is granted before the grace period ends: a byte nobody held, asked for by the witness.
  const fresh = await within(witness.probe.probe(freshOp(run)), SESSION_TTL_MS + 15_000);
  if (fresh === undefined || fresh.result !== 0) {
    why.push(`a byte nobody held was ${fresh === undefined ? 'never granted' : `answered ${fresh.result}`} after the restart`);
  } else {
    const t = ms(fresh.t1 - up);
    time(f, 'firstGrantMs', t);
    if (fresh.t1 < up + (SESSION_TTL_MS - 20) * 1e6) why.push(`a byte was granted ${t} ms after the restart, inside the grace period`);
    if (t > SESSION_TTL_MS + 2000 + (reopened.length > 0 ? Math.max(...reopened) - up : 0) / 1e6) why.push(`a byte was granted ${t} ms after the restart (over the grace period + 2 s)`);
    await release(run, witness, { op: 'winunlock', role: 'windows', file: probeFile(run), start: 200, len: 1 });
  }
  // The holder was live: its lock was put back (API.md), so the witness waits until it is released.
  // Had it been fenced when it learned of the loss, the lock would be lost (checkIo 33) instead.
  const lost = holder.losses > losses;
  const io = await holder.checkIo(probeFile(run), 50, 1);
  run.faultLog.push(`${ms(run.stage.clock.now())} ms: ${holder.name}'s probe lock ${lost ? 'was lost' : 'was re-asserted'}; checkIo through its handle: ${io}`);
  if (io !== (lost ? 33 : 0)) why.push(`checkIo through ${holder.name}'s ${lost ? 'lost' : 're-asserted'} probe handle answered ${io}, not ${lost ? 33 : 0}`);
  const waiting = witness.probe.probe(waitOp(run));
  if (lost) {
    const w = await within(waiting, SESSION_TTL_MS + 15_000);
    if (w?.result !== 0) why.push(`the witness was ${w === undefined ? 'never answered' : `answered ${w.result}`} though the holder's lock was lost`);
    await release(run, holder, closeOp(run));
  } else {
    const early = await within(waiting, 300);
    if (early !== undefined) why.push(`the witness was answered ${early.result} while ${holder.name} held its re-asserted lock`);
    const freed = run.stage.clock.now();
    await release(run, holder, closeOp(run));
    const w = early ?? (await within(waiting, SESSION_TTL_MS + 15_000));
    if (w?.result !== 0) why.push(`the witness was ${w === undefined ? 'never answered' : `answered ${w.result}`} after the holder released its lock`);
    else if (early === undefined) time(f, 'wakeAfterReleaseMs', ms(w.t1 - freed));
  }
  await release(run, witness, unlockOp(run));
  return why;
}

/**
 * Whether a fault of a later round may begin: only when the budget left covers what the same
 * kind took in the first round (each waits out a session TTL or more, and holds the load until
 * it has resolved), so that the load ends near its budget rather than one fault past it.
 */
export function faultFits(round: number, tookMs: number | undefined, remainingMs: number): boolean {
  return round === 0 || (remainingMs > 0 && (tookMs === undefined || tookMs <= remainingMs));
}

/** Rounds of faults while the load lasts; the first round always completes. */
async function injectFaults(run: Run, loadDone: Promise<void>): Promise<void> {
  const stage = run.stage;
  let ended = false;
  void loadDone.then(() => (ended = true));
  const firstRound = stage.hold();
  /** How long each kind took in the first round, its settling included (ms). */
  const took = new Map<FaultKind, number>();
  try {
    await sleep(WARMUP_MS);
    let i = 0;
    for (let round = 0; ; round++) {
      for (const kind of stage.spec.faultKinds ?? FAULT_KINDS) {
        if (ended || stage.spec.signal?.aborted || stage.stalled || !faultFits(round, took.get(kind), stage.spent ? 0 : stage.remainingMs)) return;
        const live = run.live().filter((n) => n.ready);
        if (live.length < 2) return void run.note(`fewer than two nodes are running: no more faults`);
        const victim = live[i++ % live.length]!;
        const witness = live.find((n) => n !== victim)!;
        const f = run.fault(kind);
        const release = stage.hold();
        const began = stage.clock.now();
        f.tries++;
        let why: string[];
        try {
          why = await (kind === 'kill' ? killFault(run, victim, witness) : kind === 'stop' ? stopFault(run, victim, witness) : engineFault(run, victim, witness, kind === 'snapshot'));
        } catch (e) {
          why = [e instanceof Error ? e.message : String(e)];
        } finally {
          release();
        }
        if (why.length > 0) {
          f.failures++;
          f.why.push(why.join('; '));
          run.faultLog.push(`${ms(stage.clock.now())} ms: ${kind} FAILED: ${why.join('; ')}`);
        }
        await sleep(SETTLE_MS);
        if (round === 0) took.set(kind, (stage.clock.now() - began) / 1e6);
      }
      run.firstRound = false;
      firstRound();
    }
  } finally {
    run.firstRound = false;
    firstRound();
  }
}

/** The backing directory with the workload's files, and a mountpoint per node slot. */
async function prepareMounts(spec: StageSpec, n: number): Promise<Mounts> {
  const base = await mkdtemp(join(tmpdir(), 'locksmith-stress-nodes-'));
  const backing = join(base, 'backing');
  const mountpoints = Array.from({ length: n }, (_, s) => join(base, `mnt${s}`));
  await Promise.all([backing, ...mountpoints].map((d) => mkdir(d)));
  const keys: string[] = [];
  for (let i = 0; i < spec.files; i++) {
    await writeFile(join(backing, `f${i}`), '');
    keys.push(`ino:${(await stat(join(backing, `f${i}`))).ino}`);
  }
  return { base, backing, mountpoints, keys, bin: await buildClient() };
}

export async function runNodes(spec: StageSpec, onProgress?: (p: Progress) => void): Promise<StageResult> {
  const n = spec.nodes ?? 2;
  if (!Number.isInteger(n) || n < 2) throw new TypeError(`the nodes target needs at least 2 nodes, got ${n}`);
  const stage = new Stage(spec, ['posix'], onProgress);
  const noMounts = await nodesMountsUnavailable(spec);
  if (noMounts !== undefined) stage.notes.push(`MOUNTS SKIPPED: ${noMounts}; the nodes ran API clients only`);
  const mounts = noMounts === undefined ? await prepareMounts(spec, n) : undefined;
  const unmountAll = () => {
    for (const m of mounts?.mountpoints ?? []) forceUnmount(m);
  };
  const removeMounts = async () => {
    unmountAll();
    process.removeListener('exit', unmountAll);
    if (mounts !== undefined) await rm(mounts.base, { recursive: true, force: true }).catch(() => {});
  };
  process.on('exit', unmountAll);
  let redis: RedisServer;
  try {
    redis = await RedisServer.start();
  } catch (e) {
    await removeMounts();
    throw e;
  }
  const run = new Run(stage, redis, n, mounts);
  run.mountsSkipped = noMounts;
  let stopSampling = () => {};
  try {
    const slots = Array.from({ length: n }, (_, s) => run.spawn(s));
    await Promise.all(slots.map((x) => x.started));
    // A brand-new namespace starts with a grace period (begun at the first node's session, before
    // any node said ready): nothing is granted before it ends. Stamped now, after every mark yet
    // received, so that no event judged already comes after it.
    const ready = Math.max(...slots.map((x) => x.readyAt));
    slots[0]!.push({ t: stage.clock.now(), ev: 'withhold', key: 'grace of the new namespace', until: ready + GRACE_NS });
    const work: Client[] = [];
    // Of each node's POSIX clients, every other one (its first included) is a process on the
    // node's mount when mounts run; the rest, and every Windows client, call the API.
    const posixSeen = new Array<number>(n).fill(0);
    for (const s of stage.streams) {
      const slot = s.client % n;
      const onMount = mounts !== undefined && s.personality === 'posix' && posixSeen[slot]! % 2 === 0;
      if (s.personality === 'posix') posixSeen[slot]!++;
      const k = onMount ? new MountClient(run, s.client, Math.floor(s.client / n), s, run.mountNaming) : new Client(run, s.client, Math.floor(s.client / n), s);
      run.clients.set(s.client, k);
      if (k instanceof MountClient) run.mountClients.push(k);
      k.assign(slots[slot]!);
      work.push(k);
    }
    stopSampling = stage.startSampling();
    stage.begin();
    for (const k of work) k.topUp();
    const flusher = setInterval(() => run.flush(), 50);
    const loadDone = Promise.all(work.map((k) => k.done)).then(() => undefined);
    const faulting = spec.faults === false ? Promise.resolve() : injectFaults(run, loadDone);
    try {
      await faulting;
      // The clients get drainMs to finish once the budget is used up (or the load stopped), not before.
      while (!(await within(loadDone.then(() => true), 100)) && !stage.spent && !stage.stalled && !spec.signal?.aborted);
      const drained = await within(loadDone.then(() => true), stage.drainMs);
      if (drained === undefined) {
        stage.notes.push(`clients were still waiting ${stage.drainMs} ms after the load ended`);
        for (const k of work) {
          const s = k.sent[0];
          if (k.finished || s === undefined) continue;
          const since = s.t0 === undefined ? 'not begun' : `waiting since ${ms(s.t0)} ms`;
          run.note(`client ${k.global} on ${k.node.name}${k.node.alive ? '' : ' (dead)'}: ${text(s.op)}, ${since}`);
        }
        const files = new Set(work.filter((k) => !k.finished && k.sent[0] !== undefined).map((k) => k.sent[0]!.op.file));
        const asker = run.live()[0];
        if (asker !== undefined) for (const f of files) stage.notes.push(`locks on /stress/f${f}: ${await asker.diag(f)}`);
        for (const x of run.live()) stage.notes.push(`${x.name} says: ${await x.diag()}`);
        await sleep(3000);
        for (const x of run.live()) stage.notes.push(`${x.name} says 3 s later: ${await x.diag()}`);
        stage.notes.push(`the engine: ${await redisDiag(redis)}`);
        for (const k of run.mountClients) if (!k.finished) k.abandonStuck();
        for (const x of run.live()) {
          x.ended = 'killed: its clients did not finish';
          x.hung = true;
          x.kill('SIGKILL');
        }
        await Promise.all(run.mountClients.map((k) => k.exited));
      }
      stage.loadEnded();
      const budget = spec.durationSec;
      if (budget !== undefined && spec.faults !== false && stage.loadDurationSec > budget + 1) {
        stage.notes.push(
          `the load ran ${stage.loadDurationSec.toFixed(1)} s, past its ${budget} s budget: the first round of faults (${(spec.faultKinds ?? FAULT_KINDS).map((k) => FAULT_NAMES[k]).join(', ')}) completes whatever the budget, and a fault keeps the load going until it has resolved`,
        );
      }
      // Each node stops (releasing what it still holds) and exits; one that does not is killed.
      for (const x of run.live()) {
        x.expectedExit = true;
        x.ended = 'stopped at the end';
        x.send(['exit']);
      }
      for (const x of run.nodes) {
        if ((await within(x.closed, 15_000)) === undefined && x.alive) {
          run.note(`${x.name} did not exit after stop(): killed`);
          x.kill('SIGCONT');
          x.kill('SIGKILL');
          await x.closed;
        }
        if (x.mark !== Infinity) x.closeLog(stage.clock.now());
      }
      run.flush();
    } finally {
      clearInterval(flusher);
    }
    if (mounts !== undefined) {
      const fuse = run.nodes.map((x) => x.counts?.fuse).filter((f) => f !== undefined);
      stage.notes.push(`FUSE: ${run.mountClients.length} processes on ${n} mounts; ${fuse.reduce((a, f) => a + f.events, 0)} lock events, ${fuse.reduce((a, f) => a + f.interrupts, 0)} interrupts (nodes that stopped normally)`);
    }
    const oracle = stage.close();
    const r = stage.result(oracle, spec.clients);
    r.nodes = nodesResult(run);
    for (const x of run.nodes) if (x.ended.startsWith('exited unexpectedly')) stage.notes.push(`${x.name} ${x.ended}`);
    return r;
  } finally {
    stopSampling();
    for (const k of run.mountClients) k.proc?.kill('SIGKILL');
    for (const x of run.nodes) if (x.alive) x.kill('SIGKILL');
    // Their mounts are undone (a node that stopped normally unmounted its own) once they are gone.
    await within(Promise.all(run.nodes.map((x) => x.closed)), 5000);
    await removeMounts();
    await redis.stop();
  }
}

function nodesResult(run: Run): NodesResult {
  return {
    nodes: run.n,
    mounts: run.mounts !== undefined ? { ran: true, processes: run.mountClients.length } : { ran: false, why: run.mountsSkipped ?? 'unknown' },
    sessionTtlMs: SESSION_TTL_MS,
    engine: redisVersion() ?? 'redis-server',
    perNode: run.nodes.map((x) => ({
      node: x.name,
      slot: x.slot,
      clients: [...x.clients].filter((k) => k.stream !== undefined).length,
      ...(run.mounts === undefined ? {} : { onMount: [...x.served].filter((c) => run.clients.get(c) instanceof MountClient).length }),
      ops: x.ops,
      sessions: x.counts?.sessions ?? 0,
      commits: x.counts?.commits ?? 0,
      stale: x.counts?.stale ?? 0,
      fencedLocally: x.counts?.fencedLocally ?? 0,
      ended: x.ended,
    })),
    faults: run.faults,
    grantsWhileLost: run.grantsWhileLost,
    repliesWhileLost: run.repliesWhileLost,
    log: run.faultLog,
  };
}
