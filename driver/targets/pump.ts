/**
 * The pump target: the native synthetic source in its recorded random mode (synthStart with
 * pattern 'random' and record: true) feeds seeded setlk traffic of many POSIX owners through the
 * native pump to the coordinator's workers, with no kernel in the way. Its log (synthLog) stamps
 * each request with a global sequence taken before it is sent and after its reply arrived, which
 * is exactly the oracle's observed-interval rule, so the log goes through the same client
 * knowledge and oracle as every other target.
 *
 * The source knows classic POSIX setlk only (no OFD, flock, F_GETLK or Windows calls): the
 * workload sets its ratios and range space. Its sequence is an order, not a clock: latencies are
 * not known, and the wait-cycle tolerance is counted in log records.
 */
import { LockCoordinator } from '../../src/index.js';
import * as native from '../../src/native/index.js';
import type { RateKind } from '../metrics.js';
import { ClientObserver, type Naming } from '../observer.js';
import { Stage, sleep, type Progress, type StageResult, type StageSpec } from '../stage.js';
import type { Op } from '../workloads.js';

const THREADS = 2;
const CALIBRATION_MS = 1000;

export function pumpUnavailable(): string | undefined {
  const n = native.nativeAvailable();
  if (!n.ok) return n.reason;
  try {
    native.synthLog(0x7fffffff); // no such session: null from an addon that records
  } catch {
    return "this build's native addon has no recorded synthetic source (synthLog)";
  }
  return undefined;
}

/** The source's ratios for a workload (it only makes classic setlk and unlock requests). */
function mix(workload: string, files: number): Partial<native.SynthOptions> {
  const base = { files, rangeSpace: 4096, readRatio: 0.5, sleepRatio: 0.35, unlockRatio: 0.35 };
  switch (workload) {
    case 'hot':
      return { ...base, files: 1, rangeSpace: 256, sleepRatio: 0.3 };
    case 'rw':
      return { ...base, readRatio: 0.9, sleepRatio: 0.6 };
    case 'blocking':
      return { ...base, sleepRatio: 0.9 };
    case 'deadlock':
      return { ...base, files: Math.max(2, Math.min(files, 4)), sleepRatio: 0.9, readRatio: 0, unlockRatio: 0.3 };
    case 'uniform':
      return { ...base, rangeSpace: 1 << 20, sleepRatio: 0.1 };
    default:
      return base;
  }
}

/** Runs one session; resolves with its final log once every producer finished (or the deadline passed). A stage watches it live. */
async function session(c: LockCoordinator, o: native.SynthOptions, deadlineMs: number, stage?: Stage): Promise<{ log: native.SynthLog | null; finished: boolean; perMs: number }> {
  const sid = native.synthStart(o);
  let stopped = false;
  try {
    await c.attachNative(sid);
    const t0 = Date.now();
    const end = t0 + deadlineMs;
    // The rate over the second half: the first includes the workers' warm-up.
    let half: { at: number; replied: number } | undefined;
    while (!native.synthStats(sid).done && Date.now() < end && !stage?.spec.signal?.aborted) {
      const replied = native.synthStats(sid).replied;
      if (stage) stage.metrics.ops = replied;
      if (half === undefined && Date.now() - t0 >= deadlineMs / 2) half = { at: Date.now(), replied };
      await sleep(20);
    }
    const { done, replied } = native.synthStats(sid);
    const since = half ?? { at: t0, replied: 0 };
    native.synthStop(sid);
    stopped = true;
    return { log: native.synthLog(sid), finished: done === true, perMs: (replied - since.replied) / Math.max(1, Date.now() - since.at) };
  } finally {
    if (!stopped) native.synthStop(sid);
  }
}

export async function runPump(spec: StageSpec, onProgress?: (p: Progress) => void): Promise<StageResult> {
  const owners = Math.ceil(spec.clients / THREADS);
  const clients = owners * THREADS;
  const base: native.SynthOptions = {
    destinations: spec.workers,
    threads: THREADS,
    mode: 'reply',
    pattern: 'random',
    seed: spec.seed,
    owners,
    ...mix(spec.workload, spec.files),
  };
  let opsPerThread = Math.ceil((spec.ops ?? 0) / THREADS);
  let sizing: string | undefined;
  if (spec.durationSec !== undefined) {
    // The source stops after a number of operations: size it from a short recorded run, on a
    // coordinator of its own (the run it cuts short leaves locks and waiters behind).
    const probe = await LockCoordinator.start({ workers: spec.workers });
    const { perMs: rate } = await session(probe, { ...base, record: true, opsPerThread: 1e9 }, CALIBRATION_MS).finally(() => probe.stop());
    opsPerThread = Math.max(1000, Math.round((rate * spec.durationSec * 1000) / THREADS));
    sizing = `sized to ${opsPerThread * THREADS} operations from a calibration run (${Math.round(rate * 1000)} ops/s)`;
  }
  // Tolerance in records: far more than can be in flight (every owner has at most one request out).
  const stage = new Stage(spec, ['posix'], onProgress, Math.max(200_000, 100 * clients));
  stage.metrics.waitingKnown = false;
  stage.untimed = "the synthetic source's log is ordered, not timed: it has no latencies";
  if (sizing) stage.notes.push(sizing);
  const c = await LockCoordinator.start({ workers: spec.workers });
  try {
    // No queue depth: stats().waiting counts only requests made through the API, never the source's.
    const stopSampling = stage.startSampling();
    stage.begin();
    const budget = (spec.durationSec ?? 60) * 3000 + stage.drainMs;
    const { log, finished } = await session(c, { ...base, opsPerThread, record: true }, budget, stage).finally(stopSampling);
    if (!finished) stage.notes.push(`the source had not finished ${budget} ms after it started: requests left unanswered are reported`);
    stage.loadEnded();
    stage.metrics.ops = 0;
    if (log === null) throw new Error('the synthetic source returned no log');
    stage.metrics.placeRates(replay(stage, log));
    stage.notes.push('classic POSIX setlk only (the synthetic source makes no OFD, flock, F_GETLK or Windows requests); no latencies (its log is ordered, not timed)');
    stage.notes.push("no queue depth: the source does not report its owners' waiting requests, and the coordinator's stats().waiting counts only requests made through its API");
    stage.notes.push('outcome rates over time: each answer placed in the 250 ms sample whose count of replies reached it (the log has an order, not times)');
    return stage.result(stage.close(log.count > 0 ? log.seq[log.count - 1]! : 0), clients);
  } finally {
    await c.stop();
  }
}

const NAMING: Naming = {
  file: (i) => `synth:${i}`,
  classicPids: (owner) => [owner],
  ofdPids: () => [-1],
  windowsPids: () => [],
  closeDropsClassic: false,
};

/** Feeds the recorded log through each owner's knowledge into the oracle; returns how each answer counts in the outcome rates, in answer order. */
function replay(stage: Stage, log: native.SynthLog): (RateKind | undefined)[] {
  const kinds: (RateKind | undefined)[] = [];
  const observers = new Map<number, { obs: ClientObserver; op?: Op }>();
  for (let i = 0; i < log.count; i++) {
    const owner = log.owner[i]!;
    let o = observers.get(owner);
    if (o === undefined) observers.set(owner, (o = { obs: new ClientObserver(owner, NAMING, stage.ids, stage.feed) }));
    const t = log.seq[i]!;
    if (log.rec[i] === native.REC_START) {
      const start = log.start[i]!;
      const end = log.end[i]!;
      o.op = { op: 'lock', role: 'posix', file: log.file[i]!, type: log.type[i]!, start, len: end === Infinity ? 0 : end - start + 1, wait: log.sleep[i] === 1 };
      o.obs.begin(o.op, t);
    } else if (log.rec[i] === native.REC_END && o.op !== undefined) {
      kinds.push(stage.metrics.count(o.op, o.obs.end(t, -log.errno[i]!)));
      o.op = undefined;
    }
  }
  return kinds;
}
