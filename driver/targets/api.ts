/**
 * The api target: the library in this process, every client an async loop calling the public
 * API (API.md) one operation at a time, many clients at once.
 */
import { LockCoordinator } from '../../src/index.js';
import { ClientObserver, type Naming } from '../observer.js';
import type { GetlkAnswer } from '../oracle.js';
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
      const r = await c.lock({ path, lockType: op.type, lockStart: 0, lockLen: 0, cmd: op.wait ? F_SETLKW : F_SETLK, lockOwner: id('flock'), kind: 'flock', fileHandle: id('flock'), ...bounds });
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
 * One in-process client: its load until the budget ends, then its cleanup. Stops quietly once the
 * stage's log is closed (the lock manager is about to stop).
 */
export async function apiClient(stage: Stage, c: LockCoordinator, naming: Naming, client: number, emit = stage.feed): Promise<void> {
  const stream = stage.streams[client]!;
  const obs = new ClientObserver(client, naming, stage.ids, emit);
  const run = async (op: Op) => {
    const t0 = stage.clock.now();
    obs.begin(op, t0);
    const wait = 'wait' in op && op.wait;
    if (wait) stage.metrics.waiting++;
    let r: Answer;
    try {
      r = await callApi(c, naming, client, op);
    } finally {
      if (wait) stage.metrics.waiting--;
    }
    if (stage.closed) return;
    const t1 = stage.clock.now();
    stage.metrics.record(op, t0, t1, obs.end(t1, r.result, r.answer));
  };
  while (stage.take()) await run(stage.streams[client]!.next());
  for (const op of stream.cleanup()) {
    if (stage.closed) return;
    await run(op);
  }
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
