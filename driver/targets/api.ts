/**
 * The api target: the library in this process, every client an async loop calling the public
 * API (API.md) one operation at a time, many clients at once.
 */
import { LockCoordinator } from '../../src/index.js';
import { ClientObserver, type Naming } from '../observer.js';
import { snapshotConflicts, show, type Claim, type GetlkAnswer, type LockKind, type Outcome } from '../oracle.js';
import { Stage, sleep, type Progress, type StageResult, type StageSpec } from '../stage.js';
import { F_UNLCK, F_WRLCK, type Op } from '../workloads.js';

const F_GETLK = 5;
const F_SETLK = 6;
const F_SETLKW = 7;

/** Owners and pids of the API clients: every identity a string naming its client and file. */
export const API_NAMING: Naming = {
  file: (i) => `/stress/f${i}`,
  classicPids: (c) => [10000 + c],
  ofdPids: () => [-1],
  windowsPids: (c) => [20000 + c],
  closeDropsClassic: false,
};

export interface Answer {
  result: number;
  answer?: GetlkAnswer;
}

/** The end of a POSIX F_GETLK reply, inclusive (Infinity for "to OFFSET_MAX"). */
export function answerOf(r: { lockType: number; lockStart: bigint; lockLen: bigint; lockPid: number }): GetlkAnswer {
  if (r.lockType === F_UNLCK) return { free: true };
  const start = Number(r.lockStart);
  return { free: false, write: r.lockType === F_WRLCK, start, end: r.lockLen === 0n ? Infinity : Number(r.lockStart + r.lockLen - 1n), pid: r.lockPid };
}

/** Runs one operation of client `client` through the coordinator's public API. */
export async function callApi(c: LockCoordinator, naming: Naming, client: number, op: Op): Promise<Answer> {
  const cancel = 'cancelMs' in op && op.cancelMs !== undefined ? new AbortController() : undefined;
  const timer = cancel && setTimeout(() => cancel.abort(), (op as { cancelMs: number }).cancelMs);
  const bounds = {
    ...('timeoutMs' in op && op.timeoutMs !== undefined ? { timeoutMs: op.timeoutMs } : {}),
    ...(cancel ? { signal: cancel.signal } : {}),
  };
  try {
    return await dispatch(c, naming, client, op, bounds);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function dispatch(c: LockCoordinator, naming: Naming, client: number, op: Op, bounds: { timeoutMs?: number; signal?: AbortSignal }): Promise<Answer> {
  const path = naming.file(op.file);
  const id = (role: string) => `${role[0]}${client}.${op.file}`;
  switch (op.op) {
    case 'lock':
    case 'getlk': {
      const ofd = op.role === 'ofd';
      const r = await c.lock({
        path,
        lockType: op.type,
        lockStart: op.start,
        lockLen: op.len,
        cmd: op.op === 'getlk' ? F_GETLK : op.wait ? F_SETLKW : F_SETLK,
        lockOwner: ofd ? id('ofd') : `p${client}`,
        lockPid: naming.classicPids(client)[0],
        kind: op.role,
        ...(ofd ? { fileHandle: id('ofd') } : {}),
        ...bounds,
      });
      return op.op === 'getlk' && r.result === 0 ? { result: 0, answer: answerOf(r) } : { result: r.result };
    }
    case 'flock': {
      const r = await c.lock({
        path,
        lockType: op.type,
        lockStart: 0,
        lockLen: 0,
        cmd: op.wait ? F_SETLKW : F_SETLK,
        lockOwner: id('flock'),
        lockPid: naming.classicPids(client)[0],
        kind: 'flock',
        fileHandle: id('flock'),
        ...bounds,
      });
      return { result: r.result };
    }
    case 'winlock':
      return {
        result: await c.lockFile({ fileName: path, byteOffset: op.start, length: op.len, exclusiveLock: op.exclusive, failImmediately: !op.wait, handle: id('windows'), processId: naming.windowsPids(client)[0], ...bounds }),
      };
    case 'winunlock':
      return { result: await c.unlockFile({ fileName: path, byteOffset: op.start, length: op.len, handle: id('windows'), processId: naming.windowsPids(client)[0] }) };
    case 'close':
      if (op.role === 'posix') await c.flush({ path, lockOwner: `p${client}` });
      else if (op.role === 'ofd') await c.release({ path, fileHandle: id('ofd') });
      else if (op.role === 'flock') await c.release({ path, fileHandle: id('flock'), lockOwner: id('flock') });
      else await c.closeHandle({ fileName: path, handle: id('windows') });
      return { result: 0 };
  }
}

/**
 * One in-process client: runs its stream's operations one at a time, each observed. `load()` runs
 * them while the stage's budget lasts, `cleanup()` then closes everything the client used; both
 * stop quietly once the stage's log is closed (the lock manager is about to stop). `observer`
 * knows what the client holds between operations.
 */
export class ApiClient {
  readonly observer: ClientObserver;

  constructor(
    private readonly stage: Stage,
    private readonly c: LockCoordinator,
    private readonly naming: Naming,
    readonly client: number,
    emit = stage.feed,
    /** Called with every answer the client logged (tests judge the answers of their own calls). */
    private readonly onAnswer?: (op: Op, result: number, outcome: Outcome) => void,
  ) {
    this.observer = new ClientObserver(client, naming, stage.ids, emit);
  }

  async load(): Promise<void> {
    while (this.stage.take()) await this.run(this.stage.streams[this.client]!.next());
  }

  async cleanup(): Promise<void> {
    for (const op of this.stage.streams[this.client]!.cleanup()) {
      if (this.stage.closed) return;
      await this.run(op);
    }
  }

  private async run(op: Op): Promise<void> {
    const stage = this.stage;
    const t0 = stage.clock.now();
    this.observer.begin(op, t0);
    const wait = 'wait' in op && op.wait;
    if (wait) stage.metrics.waiting++;
    let r: Answer;
    try {
      r = await callApi(this.c, this.naming, this.client, op);
    } finally {
      if (wait) stage.metrics.waiting--;
    }
    if (stage.closed) return;
    const t1 = stage.clock.now();
    const outcome = this.observer.end(t1, r.result, r.answer);
    stage.metrics.record(op, t0, t1, outcome);
    this.onAnswer?.(op, r.result, outcome);
  }
}

/** One in-process client: its load until the budget ends, then its cleanup. */
export async function apiClient(stage: Stage, c: LockCoordinator, naming: Naming, client: number, emit = stage.feed): Promise<void> {
  const a = new ApiClient(stage, c, naming, client, emit);
  await a.load();
  await a.cleanup();
}

// ---- locks() listings, judged by the oracle's rules -------------------------------------------------

/** The fields of a locks() entry read here. */
export interface Listed {
  path: string;
  kind: string;
  type: string;
  start: bigint;
  end: bigint;
  owner: unknown;
  pid: number;
  state: string;
  processId?: unknown;
}

const OFFSET_MAX = (1n << 63n) - 1n;

/** An identity as API.md compares them: 5 and 5n are one, the string '5' is another. */
function identity(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'bigint' || typeof v === 'number') return BigInt(v).toString();
  throw new Error(`not an identity: ${String(v)}`);
}

/**
 * A listed lock as the oracle's claim. The owner is a Windows (handle, processId) or a POSIX
 * kind's lockOwner (an OFD and a classic owner of one name are two owners); the listing has no
 * Windows key, so listings judged this way must come from key 0. A POSIX range to OFFSET_MAX ends
 * at Infinity; offsets beyond 2^53 lose precision (the workloads stay far below).
 */
export function listedClaim(e: Listed): Claim {
  const kind = e.kind as LockKind;
  const posixEnd = kind !== 'windows' && e.end >= OFFSET_MAX;
  return {
    file: e.path,
    owner: kind === 'windows' ? `windows ${identity(e.owner)} ${identity(e.processId ?? e.pid)}` : `${kind} ${identity(e.owner)}`,
    kind,
    write: e.type === 'write' || e.type === 'exclusive',
    start: Number(e.start),
    end: posixEnd ? Infinity : Number(e.end),
    pids: [e.pid],
  };
}

/** Every pair of granted entries of a listing that could not be held together (empty when the listing is sound), as text. */
export function listingConflicts(entries: readonly Listed[]): string[] {
  return snapshotConflicts(entries.filter((e) => e.state === 'granted').map(listedClaim)).map(([a, b]) => `${show(a)}  <->  ${show(b)}`);
}

function line(path: string, kind: string, write: boolean, start: bigint | number, end: bigint | number, owner: string, pid: number): string {
  const type = kind === 'windows' ? (write ? 'exclusive' : 'shared') : write ? 'write' : 'read';
  return `${path} ${kind} ${type} ${start}-${end} ${owner} pid=${pid}`;
}

/** The granted entries of a listing as sorted lines, comparable with heldLines(). */
export function listingLines(entries: readonly Listed[]): string[] {
  return entries
    .filter((e) => e.state === 'granted')
    .map((e) => line(e.path, e.kind, e.type === 'write' || e.type === 'exclusive', e.start, e.end, String(e.owner), e.pid))
    .sort();
}

/**
 * What locks() must list as granted for the locks these clients know they hold, as sorted lines
 * (listingLines). Pids are those callApi sends: the client's classic pid for classic and flock
 * locks, -1 for OFD locks, its processId for Windows ones.
 */
export function heldLines(naming: Naming, clients: readonly ApiClient[]): string[] {
  return clients
    .flatMap((a) =>
      a.observer.held().map((l) => {
        const end = l.end === Infinity ? OFFSET_MAX : l.end;
        const pid = l.kind === 'flock' ? naming.classicPids(a.client)[0]! : l.pids[0]!;
        return line(l.file, l.kind, l.write, l.start, end, l.owner, pid);
      }),
    )
    .sort();
}

export async function runApi(spec: StageSpec, onProgress?: (p: Progress) => void): Promise<StageResult> {
  const stage = new Stage(spec, ['posix'], onProgress);
  const c = await LockCoordinator.start({ workers: spec.workers });
  const stopSampling = stage.startSampling(async () => (await c.stats()).waiting);
  try {
    stage.begin();
    const clients = stage.streams.map((_, i) => apiClient(stage, c, API_NAMING, i));
    if (!(await stage.drain(clients))) stage.notes.push(`clients were still waiting ${stage.drainMs} ms after the load ended`);
    stage.loadEnded();
    const oracle = stage.close();
    return stage.result(oracle, spec.clients);
  } finally {
    stopSampling();
    await c.stop();
    await sleep(0);
  }
}
