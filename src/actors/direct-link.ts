/**
 * A worker's own way to the engine (a shared lock space on Redis): its file actors commit over a
 * connection of this worker, under the session the caller's thread keeps (src/caller/shared-space.ts
 * NodeStore: renewals, fence, inbox). Without it every commit went to the caller's thread and back
 * (comlink), two thread hops on top of the engine's round trip.
 *
 * The session is the one the caller's side last sent (HostInit, then each 'session' message: epoch
 * and incarnation together), acted on until the fence the lease in shared memory says; a lease
 * naming another epoch means a new session whose message is on its way: fenced until it comes.
 * A commit the engine refuses because the
 * session is gone or the engine lost its data ('fenced', 'reset') asks the caller's side to renew
 * at once (`trouble`), which opens the next session: the actor answers as it would to any
 * refusal. The checks a commit makes here are NodeStore.commit's: fenced locally, then one EVALSHA.
 */
import { RedisEngine } from '../store/redis.js';
import { resolveOptions } from '../store/options.js';
import { toEdge, toEngineStep, toRecord } from '../store/step.js';
import type { CommitReply, EdgeInput, EngineStep, FileReach, ReassertReply, RecordInput, SessionFilesPage, SessionRef, Step } from '../store/types.js';
import type { StoreOptions } from '../types.js';
import type { StoreLink } from './shared-file.js';
import { clearTimer, setTimerExact, type Timer } from '../long-timer.js';

/** Counts of this worker's engine calls, for stats().store (summed with the caller's). */
export interface LinkCounts {
  roundTrips: number;
  commits: number;
  stale: number;
  fencedLocally: number;
  graceWaits: number;
  /** Commits refused 'fence' (StoreStats.fenceRefusals). */
  fenceRefusals: number;
}

export class DirectLink implements StoreLink {
  private engine: Promise<RedisEngine> | undefined;
  private counter = 0;
  readonly counts: LinkCounts = { roundTrips: 0, commits: 0, stale: 0, fencedLocally: 0, graceWaits: 0, fenceRefusals: 0 };

  constructor(
    private readonly options: StoreOptions,
    private readonly node: string,
    private readonly lease: Float64Array,
    private epoch: number,
    /** The engine's incarnation this node's session belongs to. */
    private incarnation: string,
    private readonly idPrefix: string,
    private readonly trouble: () => void,
  ) {}

  private connect(): Promise<RedisEngine> {
    if (this.engine === undefined) {
      const p = RedisEngine.connect(resolveOptions(this.options));
      // A failed connect is tried again at the next call.
      p.catch(() => {
        if (this.engine === p) this.engine = undefined;
      });
      this.engine = p;
    }
    return this.engine;
  }

  /** A new session (the 'session' message): commits go out under it from now on. */
  adopt(epoch: number, incarnation: string): void {
    this.epoch = epoch;
    this.incarnation = incarnation;
  }

  /** The session to act under, or undefined while fenced (see SharedConfig.lease). */
  private session(): SessionRef | undefined {
    const epoch = this.epoch;
    if (epoch === 0 || this.lease[1] !== epoch || performance.timeOrigin + performance.now() >= this.lease[0]!) return undefined;
    return { node: this.node, epoch, incarnation: this.incarnation };
  }

  async commit(step: Step): Promise<CommitReply> {
    const ref = this.session();
    const st = toEngineStep(step, this.node, ref?.epoch ?? 0, typeof step.id === 'string' && step.id !== '' ? step.id : `${this.idPrefix}s${(++this.counter).toString(36)}`, this.lease[2]);
    if (ref === undefined) {
      this.counts.fencedLocally++;
      return { ok: false, reason: 'fenced' };
    }
    // Past its deadline (a resend after no reply, its pause straddling the deadline): the engine
    // would refuse it ('late'), and waiting for that could take a whole command timeout. Not sent;
    // 'unreachable', as its first send may still have applied.
    if (step.deadline !== undefined && !(step.deadline > performance.timeOrigin + performance.now())) {
      return { ok: false, reason: 'unreachable', step: st.step, error: "the step's deadline had passed: not sent again" };
    }
    return byDeadline(this.send(ref, st), step.deadline, st.step);
  }

  private async send(ref: SessionRef, st: EngineStep): Promise<CommitReply> {
    let engine: RedisEngine;
    try {
      engine = await this.connect();
    } catch (e) {
      return { ok: false, reason: 'unreachable', step: st.step, error: (e as Error).message };
    }
    this.counts.roundTrips++;
    this.counts.commits++;
    const r = await engine.commit(ref, st);
    if (!r.ok) {
      if (r.reason === 'stale') this.counts.stale++;
      else if (r.reason === 'grace') this.counts.graceWaits++;
      else if (r.reason === 'fence') this.counts.fenceRefusals++;
      else if (r.reason === 'fenced' || r.reason === 'reset') this.trouble();
    }
    return r;
  }

  async fileReach(file: string, pairs: readonly (readonly [string, string])[]): Promise<FileReach> {
    const engine = await this.connect();
    this.counts.roundTrips++;
    return engine.fileReach(file, pairs);
  }

  async reassert(file: string, records: readonly RecordInput[], edges: readonly EdgeInput[] = []): Promise<ReassertReply> {
    const ref = this.session();
    if (ref === undefined) return { ok: false, reason: 'fenced' };
    const recs = records.map((r, i) => toRecord({ ...r, epoch: undefined }, this.node, ref.epoch, `records[${i}]`));
    const es = edges.map((e, i) => toEdge(e, `edges[${i}]`));
    let engine: RedisEngine;
    try {
      engine = await this.connect();
    } catch (e) {
      return { ok: false, reason: 'unreachable', error: (e as Error).message };
    }
    this.counts.roundTrips++;
    const r = await engine.reassert(ref, file, `${this.idPrefix}r${(++this.counter).toString(36)}`, recs, es);
    if (!r.ok && (r.reason === 'reset' || r.reason === 'fenced')) this.trouble();
    return r;
  }

  /**
   * A page of the files where session `epoch` of `incarnation` has records, with its records
   * (Engine.sessionFiles): read whatever the fence says (it changes nothing). Throws when the
   * engine cannot be reached.
   */
  async sessionFiles(epoch: number, incarnation: string, cursor: string, limit: number): Promise<SessionFilesPage | 'reset'> {
    const engine = await this.connect();
    this.counts.roundTrips++;
    return engine.sessionFiles({ node: this.node, epoch, incarnation }, cursor, limit);
  }

  async close(): Promise<void> {
    const e = this.engine;
    this.engine = undefined;
    await e?.then(
      (x) => x.shutdown(),
      () => undefined,
    );
  }
}

/**
 * A commit's reply, or, once the step's deadline (Step.deadline) passed with none, 'unreachable'
 * with its id, as when its reply is lost: it may still apply (the engine refuses it only from its
 * own clock's deadline on), and the actor treats it so. A request is then answered at its deadline,
 * requestTimeoutMs after it came, not a whole command timeout after its last try was sent (an
 * engine gone, whose connection refuses: tries go out until the deadline, and the last one waited
 * for its own timeout). Without a deadline the reply is awaited as it comes.
 */
function byDeadline(reply: Promise<CommitReply>, deadline: number | undefined, step: string): Promise<CommitReply> {
  if (deadline === undefined) return reply;
  const ms = deadline - (performance.timeOrigin + performance.now());
  const unreachable: CommitReply = { ok: false, reason: 'unreachable', step, error: "no reply by the step's deadline" };
  // The deadline passed between commit's check and the send (a pause of this thread): answered
  // now, as at the deadline, not after a whole command timeout of an engine that may not answer.
  if (!(ms > 0)) {
    reply.catch(() => {});
    return Promise.resolve(unreachable);
  }
  let timer: Timer | undefined;
  // Never before the deadline (setTimerExact), which the actor compares with performance.now().
  const late = new Promise<CommitReply>((resolve) => {
    timer = setTimerExact(() => resolve(unreachable), ms);
  });
  return Promise.race([reply, late]).finally(() => clearTimer(timer));
}
