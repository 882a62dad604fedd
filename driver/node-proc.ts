/**
 * One node of the nodes target (driver/targets/nodes.ts), in a process of its own: a
 * LockCoordinator on the shared store, and the API clients the parent gives it. The parent owns
 * the clients' streams and what they know; this process only runs their operations, one at a time
 * per client, and says when each began and ended, stamped on the parent's clock (CLOCK_MONOTONIC
 * from the base it was given, so stamps of every process of the run compare).
 *
 * Its session's health, polled every pollMs from stats().store, bounds what the parent may judge:
 * - healthy (not fenced, no new session, no commit refused for a fence, no failed renewal since the
 *   last poll): ['m', t], t stamped before the poll. Every lock this node's clients held before t
 *   was still theirs at t, so the parent may judge every event of this node up to t;
 * - not healthy: ['w', p, false, gen], p the last healthy stamp: from p on the node may answer
 *   with the families' generic codes. Healthy again: ['m', t, end, sessions], the window ends at
 *   `end`. If a new session was opened meanwhile and the old one's locks went with it (the canary
 *   below says so), ['w', p, true, gen] comes first: its clients' locks count as lost from p, and
 *   each client forgets what it holds before its next operation (the 'b' message carries the
 *   node's loss generation, which a loss bumps). A new session that re-asserted the old one's
 *   locks (an engine that lost its data while the node was live) loses nothing.
 *
 * With `mount`, the node is a FUSE mount too (mountFuse with the same store, namespace and node
 * name): the mount's coordinator is the node's, so its API clients and the processes calling fcntl
 * and flock on its mountpoint (the parent runs them, driver/targets/nodes.ts) share one session,
 * and a fault of this process is a fault of its mount: kill -9 leaves a dead mount (the parent
 * unmounts it lazily), SIGSTOP blocks the processes on it in the kernel. `keys` names the
 * workload's files as the mount does ("ino:<st_ino>" of the backing files), so API clients and
 * mount processes meet on the same files.
 *
 * argv[2]: JSON { url, namespace, node, sessionTtlMs, requestTimeoutMs, workers, clockBase, pollMs, canary, keys?, mount? }.
 * Messages are arrays of tuples both ways (IPC, advanced serialization: Infinity survives).
 */
import { LockCoordinator, mountFuse, type FuseMount } from '../src/index.js';
import type { Naming } from './observer.js';
import type { GetlkAnswer } from './oracle.js';
import { Clock } from './stage.js';
import { API_NAMING, callApi } from './targets/api.js';
import { lockCapabilitiesMissing } from './targets/mount.js';
import type { Op } from './workloads.js';

export interface NodeConfig {
  url: string;
  namespace: string;
  node: string;
  sessionTtlMs: number;
  requestTimeoutMs: number;
  workers: number;
  /** The parent's Clock base (process.hrtime.bigint() as a decimal string). */
  clockBase: string;
  pollMs: number;
  /** This node's byte of the canary file (unique per node process of the run). */
  canary: number;
  /** The lock key of workload file i (default "/stress/f<i>"; the probe file past them keeps that name). */
  keys?: string[];
  /** Also mount `backing` at `mountpoint`, the mount's coordinator being this node's. */
  mount?: { backing: string; mountpoint: string };
}

/** The store counters the parent reports per node. */
export interface NodeStoreCounts {
  sessions: number;
  commits: number;
  stale: number;
  fencedLocally: number;
  /** Its mount's counters, when it mounted. */
  fuse?: { events: number; interrupts: number };
}

export type ToChild =
  /** Operations for global client `client`, which calls the API as client `local` of this node. */
  | ['ops', number, number, Op[]]
  /** checkIo (a write of [start, start + len)) through client `local`'s Windows handle on file `file`. */
  | ['io', number, number, number, number, number]
  | ['poll']
  /** What the node says of itself (a hang's diagnosis). */
  | ['diag', number, number | undefined]
  | ['exit'];

export type ToParent =
  /** Started: its session's epoch. */
  | ['ready', number]
  | ['b', number, number, number]
  | ['e', number, number, number, GetlkAnswer | undefined]
  | ['m', number, number | undefined, number]
  | ['w', number, boolean, number]
  | ['io', number, number]
  | ['stats', NodeStoreCounts]
  | ['diag', number, string]
  | ['fail', string];

const cfg = JSON.parse(process.argv[2]!) as NodeConfig;
const clock = new Clock(BigInt(cfg.clockBase));

let buf: ToParent[] = [];
let flushing = false;
function out(m: ToParent): void {
  buf.push(m);
  if (flushing) return;
  flushing = true;
  setImmediate(flush);
}
function flush(): void {
  flushing = false;
  if (buf.length === 0) return;
  const b = buf;
  buf = [];
  if (process.connected) process.send!(b);
}

const store = { url: cfg.url, namespace: cfg.namespace, node: cfg.node, sessionTtlMs: cfg.sessionTtlMs, requestTimeoutMs: cfg.requestTimeoutMs };
let fuse: FuseMount | undefined;
let c: LockCoordinator;
if (cfg.mount === undefined) {
  c = await LockCoordinator.start({ workers: cfg.workers, store });
} else {
  try {
    fuse = await mountFuse({ backing: cfg.mount.backing, mountpoint: cfg.mount.mountpoint, workers: cfg.workers, store });
  } catch (e) {
    process.stderr.write(`mount at ${cfg.mount.mountpoint}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  const missing = lockCapabilitiesMissing(fuse.info());
  if (missing !== undefined) {
    process.stderr.write(`${missing}\n`);
    await fuse.unmount();
    process.exit(1);
  }
  c = fuse.coordinator;
}
const keys = cfg.keys;
/** API_NAMING with the workload's files named as the mount names them. */
const NAMING: Naming = keys === undefined ? API_NAMING : { ...API_NAMING, file: (i) => keys[i] ?? API_NAMING.file(i) };

// ---- health -------------------------------------------------------------------------------------

interface Counts {
  sessions: number;
  fencedLocally: number;
  failedRenewals: number;
}

let base: Counts | undefined;
let previous: Counts | undefined;
let healthy = true;
let lastMark = clock.now();
/** A new session was opened since the last healthy poll. */
let grew = false;
/** Bumped when a new session replaced a lost one: clients forget their locks before their next operation. */
let lossGen = 0;
let polling = false;
let pollAgain = false;
let exiting = false;
let pollTimer: NodeJS.Timeout | undefined;

// ---- the canary: whether a new session kept the old one's locks ---------------------------------
//
// An engine that lost its data while this node was live gets its locks back (re-asserted); a node
// whose session expired, or that was fenced when it learned of the loss, has lost them (checkIo
// 33 through their handles, API.md). Which one happened is node-wide, so one lock this process
// holds for that purpose alone (an exclusive byte of CANARY, no other node's) tells it.

const CANARY = '/stress/canary';
const canaryIo = () => c.checkIo({ fileName: CANARY, handle: 'canary', processId: 1, byteOffset: cfg.canary, length: 1, write: true });
let canaryHeld = false;

async function takeCanary(): Promise<void> {
  await c.closeHandle({ fileName: CANARY, handle: 'canary' });
  const r = await c.lockFile({ fileName: CANARY, handle: 'canary', processId: 1, byteOffset: cfg.canary, length: 1, exclusiveLock: true, failImmediately: false, timeoutMs: 4 * cfg.sessionTtlMs });
  canaryHeld = r === 0;
  if (!canaryHeld) out(['fail', `the canary lock was answered ${r}: from now on every new session counts as a loss`]);
}

/** After a new session: 'kept' (re-asserted), 'lost', or 'unknown' (fenced again meanwhile: ask later). */
async function canaryVerdict(): Promise<'kept' | 'lost' | 'unknown'> {
  if (!canaryHeld) return 'lost';
  // The second call runs after whatever the new session queued on the canary's file (re-asserting it).
  await canaryIo();
  const r = await canaryIo();
  const st = (await c.stats()).store;
  if (st === undefined || st.session.fenced) return 'unknown';
  return r === 0 ? 'kept' : r === 33 ? 'lost' : 'unknown';
}

async function poll(): Promise<void> {
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  clearTimeout(pollTimer);
  try {
    do {
      pollAgain = false;
      const tb = clock.now();
      const st = (await c.stats()).store;
      const ta = clock.now();
      if (st === undefined || exiting) return;
      const now: Counts = { sessions: st.sessions, fencedLocally: st.fencedLocally, failedRenewals: st.failedRenewals };
      if (base === undefined) base = previous = now;
      const moved = (a: Counts, b: Counts) => a.sessions !== b.sessions || a.fencedLocally !== b.fencedLocally || a.failedRenewals !== b.failedRenewals;
      if (now.sessions > previous!.sessions) grew = true;
      if (healthy) {
        if (!st.session.fenced && !moved(now, base)) {
          lastMark = tb;
          out(['m', tb, undefined, now.sessions]);
        } else {
          healthy = false;
          out(['w', lastMark, false, lossGen]);
        }
      } else if (!st.session.fenced && st.session.epoch !== 0 && !moved(now, previous!)) {
        // Healthy again: a session, not fenced, and nothing refused or failed since the last poll.
        // After a new session, the canary says whether the old one's locks went with it.
        const verdict = grew ? await canaryVerdict() : 'kept';
        if (verdict !== 'unknown') {
          if (verdict === 'lost') {
            lossGen++;
            out(['w', lastMark, true, lossGen]);
            await takeCanary();
          }
          grew = false;
          healthy = true;
          base = now;
          lastMark = tb;
          out(['m', tb, ta, now.sessions]);
        }
      }
      previous = now;
    } while (pollAgain && !exiting);
  } catch (e) {
    out(['fail', `health poll: ${e instanceof Error ? e.message : String(e)}`]);
  } finally {
    polling = false;
    if (!exiting) pollTimer = setTimeout(() => void poll(), cfg.pollMs);
  }
}

// ---- clients ------------------------------------------------------------------------------------

interface Client {
  readonly global: number;
  readonly local: number;
  readonly queue: Op[];
  running: boolean;
}

const clients = new Map<number, Client>();

async function runClient(k: Client): Promise<void> {
  if (k.running) return;
  k.running = true;
  try {
    while (k.queue.length > 0) {
      const op = k.queue.shift()!;
      out(['b', k.global, clock.now(), lossGen]);
      let r: Awaited<ReturnType<typeof callApi>>;
      try {
        r = await callApi(c, NAMING, k.local, op);
      } catch (e) {
        out(['fail', `client ${k.global}: ${JSON.stringify(op)}: ${e instanceof Error ? e.message : String(e)}`]);
        r = { result: Number.NaN };
      }
      out(['e', k.global, clock.now(), r.result, r.answer]);
    }
  } finally {
    k.running = false;
  }
}

async function checkIo(id: number, local: number, file: number, start: number, len: number): Promise<void> {
  try {
    const r = await c.checkIo({ fileName: NAMING.file(file), handle: `w${local}.${file}`, processId: API_NAMING.windowsPids(local)[0]!, byteOffset: start, length: len, write: true });
    out(['io', id, r]);
  } catch (e) {
    out(['fail', `checkIo: ${e instanceof Error ? e.message : String(e)}`]);
    out(['io', id, Number.NaN]);
  }
}

async function diag(id: number, file: number | undefined): Promise<void> {
  if (file !== undefined) {
    const listing = await c.locks(NAMING.file(file)).then(
      (es) => es.map((e) => `${e.node}:${String(e.owner)} ${e.kind} ${e.type} [${e.start}, ${e.end}] ${e.state}`).join('; ') || 'nothing',
      (e: unknown) => `locks() failed: ${e instanceof Error ? e.message : String(e)}`,
    );
    out(['diag', id, listing]);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((r) => (timer = setTimeout(() => r('stats() did not answer within 2 s'), 2000)));
  const stats = c.stats().then((s) => {
    const st = s.store;
    const busy = Object.entries(s.operations).map(([k, v]) => `${k} ${JSON.stringify(v)}`);
    return (
      `waiting ${s.waiting}, in flight ${s.inFlight}, files ${s.files}, faults ${s.faults}, workers ${JSON.stringify(s.workers.map((w) => ({ files: w.files, locks: w.locks, waiters: w.waiters, busy: w.busyActors })))}` +
      (st === undefined ? '' : `; store: epoch ${st.session.epoch}, fenced ${st.session.fenced}, grace ${st.session.grace}, sessions ${st.sessions}, commits ${st.commits}, stale ${st.stale}, renewals ${st.renewals}, failed renewals ${st.failedRenewals}, round trips ${st.roundTrips}`) +
      `; clients running: ${[...clients.values()].filter((k) => k.running).length}, ops queued: ${[...clients.values()].reduce((n, k) => n + k.queue.length, 0)}; operations: ${busy.length}`
    );
  });
  const text = await Promise.race([stats, late]).catch((e: unknown) => `stats() failed: ${e instanceof Error ? e.message : String(e)}`);
  clearTimeout(timer);
  out(['diag', id, text]);
}

async function exit(): Promise<void> {
  if (exiting) return;
  exiting = true;
  clearTimeout(pollTimer);
  try {
    const st = (await c.stats()).store;
    const info = fuse?.info();
    if (st !== undefined) {
      out(['stats', { sessions: st.sessions, commits: st.commits, stale: st.stale, fencedLocally: st.fencedLocally, ...(info === undefined ? {} : { fuse: { events: info.events, interrupts: info.interrupts ?? 0 } }) }]);
    }
    // A mount answers what still waits on it, unmounts and stops its coordinator.
    if (fuse !== undefined) await fuse.unmount();
    else await c.stop();
  } catch (e) {
    out(['fail', `stop: ${e instanceof Error ? e.message : String(e)}`]);
  }
  flush();
  process.disconnect?.();
  process.exit(0);
}

process.on('message', (batch: ToChild[]) => {
  for (const m of batch) {
    switch (m[0]) {
      case 'ops': {
        const [, global, local, ops] = m;
        let k = clients.get(global);
        if (k === undefined) clients.set(global, (k = { global, local, queue: [], running: false }));
        k.queue.push(...ops);
        void runClient(k);
        break;
      }
      case 'io':
        void checkIo(m[1], m[2], m[3], m[4], m[5]);
        break;
      case 'poll':
        void poll();
        break;
      case 'diag':
        void diag(m[1], m[2]);
        break;
      case 'exit':
        void exit();
        break;
    }
  }
});
// The coordinator's own reports of trouble (an internal error in a worker, a worker replaced).
let warnings = 0;
process.on('warning', (w) => {
  if (w.name.startsWith('Locksmith') && ++warnings <= 10) out(['fail', `${w.name}: ${w.message.split('\n').slice(0, 6).join(' / ')}`]);
});
// The parent is gone: nothing will judge this node any more.
process.on('disconnect', () => void exit());

await takeCanary();
out(['ready', (await c.stats()).store?.session.epoch ?? 0]);
void poll();
