/**
 * The caller's side of a shared lock space (`start({ store })`): this node's session on the engine
 * (src/store/ NodeStore: renewals, fence, inbox), and what it tells the workers.
 *
 * - Each worker commits over a Redis connection of its own (actors/direct-link.ts) under this
 *   node's session: the lease in shared memory says its epoch and until when it may act; the
 *   incarnation comes with the start message and each 'session' message.
 * - Inbox events (a waiter of this node granted or failed by another node's step) go to the worker
 *   that owns the file (routeOf), which answers the request.
 * - A renewal that reports an expired session (onReapDue) starts the reaper: the dead sessions'
 *   records, per file, go to the owning worker, whose actor removes them as a normal step and wakes
 *   who they blocked. Any number of nodes may do this at once: only one step per version applies.
 * - A lost session ends this node's waiters and marks its locks lost in every worker (checkIo 33
 *   through their handles); an engine that lost its data while this node was live (reset) gets
 *   them back: every worker re-asserts its files' records in the grace period.
 * - locks() lists every node's records from the engine, each entry with its node.
 */
import type { LinkCounts } from '../actors/direct-link.js';
import { describeValue } from '../core/input.js';
import { recordEntries } from '../core/records.js';
import type { LockEntry } from '../core/views.js';
import { openStore } from '../store/index.js';
import { POLICY, resolveOptions, type ServingStoreOptions } from '../store/options.js';
import type { NodeStore } from '../store/node-store.js';
import type { InboxEvent, SessionEvent, SessionsRead } from '../store/types.js';
import type { StoreOptions, StoreStats } from '../types.js';
import { endedByFile } from '../actors/shared-file.js';
import type { HostInit, ToHost } from '../wire/protocol.js';
import { refuseUnknown } from './options.js';

/**
 * Store options may carry the lease array to use (a Float64Array of 3 over a SharedArrayBuffer):
 * a mount gives its own, which the native I/O path then reads in place (src/mount.ts). A symbol:
 * not an option of the store.
 */
export const LEASE = Symbol('locksmith.lease');

const STORE_OPTIONS = ['url', 'namespace', 'node', 'sessionTtlMs', 'requestTimeoutMs'];

/** A node's session as it is: its epoch (0 while none is open), whether it is fenced, in a grace period. */
export interface SessionState {
  readonly epoch: number;
  readonly fenced: boolean;
  readonly grace: boolean;
}

/** Every node's locks with the sessions they belong to, and the engine's session registry (SharedSpace.listing). */
export interface SpaceListing {
  readonly locks: LockEntry[];
  /** Per entry of `locks`, the epoch of the session its record belongs to (its node's). */
  readonly epochs: number[];
  readonly registry?: SessionsRead;
}

export class SharedSpace {
  private reaping = false;
  private reapAgain = false;
  /** Set by the coordinator: posts a message to the worker that owns `path`, or to all. */
  post: (path: string | undefined, m: ToHost) => void = () => {};
  /** Set by the coordinator: reports what the application must hear of (a fault, counted and warned). */
  fault: (message: string) => void = () => {};
  /** Set by the coordinator: told of every session event once it is acted on, with the session as it then is (a mount logs them). */
  heard: (e: SessionEvent, now: SessionState) => void = () => {};

  private constructor(
    private readonly store: NodeStore,
    private readonly namespace: string,
    private readonly requestTimeoutMs: number,
    private readonly policy: 'default' | 'fifo',
    private readonly lease: Float64Array,
    /** What each worker connects with (its own connection: actors/direct-link.ts). */
    private readonly options: StoreOptions,
    /** The engine's URL for messages (password hidden). */
    private readonly shownUrl: string,
  ) {}

  /**
   * Connects and opens this node's session. Rejects within requestTimeoutMs with an Error naming
   * the URL (password hidden) when the engine cannot be reached or the URL is malformed, and with
   * a TypeError naming a malformed option.
   */
  static async open(options: string | StoreOptions, policy: 'default' | 'fifo'): Promise<SharedSpace> {
    if (typeof options === 'object' && options !== null) refuseUnknown(options, STORE_OPTIONS, 'options.store');
    else if (typeof options !== 'string') throw new TypeError(`options.store must be a URL or { ${STORE_OPTIONS.join(', ')} }, got ${describeValue(options)}`);
    const o = resolveOptions(options);
    let space: SharedSpace | undefined;
    // [until, epoch, offset]: the workers read the fence from here, exact and without a message
    // (shared-file.ts), and the engine's clock minus theirs (performance.timeOrigin + now), at
    // least, for steps' deadlines (Step.deadline).
    const given = typeof options === 'object' ? (options as { [LEASE]?: unknown })[LEASE] : undefined;
    const lease =
      given instanceof Float64Array && given.length === 3 && given.buffer instanceof SharedArrayBuffer
        ? given
        : new Float64Array(new SharedArrayBuffer(3 * Float64Array.BYTES_PER_ELEMENT));
    lease[0] = Number.NEGATIVE_INFINITY;
    lease[2] = Number.NaN;
    // The policy goes with the session: the engine refuses a node whose policy differs from a live one's.
    const withPolicy: ServingStoreOptions = typeof options === 'string' ? { url: options, [POLICY]: policy } : { ...options, [POLICY]: policy };
    const store = await openStore(withPolicy, {
      onLease: (until, epoch, offset) => {
        lease[1] = epoch;
        lease[0] = until === Number.NEGATIVE_INFINITY ? until : performance.timeOrigin + until;
        lease[2] = offset - performance.timeOrigin;
      },
      onEvents: (evs) => space?.onEvents(evs),
      onSession: (e) => space?.onSession(e),
      onReapDue: () => space?.reap(),
      onError: () => {},
    });
    space = new SharedSpace(store, o.namespace, o.requestTimeoutMs, policy, lease, typeof options === 'string' ? { url: options } : { ...options }, o.shownUrl);
    // A session expired before we were listening is found by the first renewal's hint.
    return space;
  }

  get node(): string {
    return this.store.node;
  }

  /** A worker's start message for the shared space: what it connects with, and the session it acts under. */
  link(): NonNullable<HostInit['shared']> {
    return {
      node: this.store.node,
      policy: this.policy,
      requestTimeoutMs: this.requestTimeoutMs,
      lease: this.lease.buffer as SharedArrayBuffer,
      store: this.options,
      epoch: this.store.session().epoch,
      incarnation: this.store.session().incarnation,
    };
  }

  private onEvents(events: readonly InboxEvent[]): void {
    for (const [path, evs] of endedByFile(events)) this.post(path, { t: 'ended', path, events: evs });
  }

  private onSession(e: SessionEvent): void {
    this.act(e);
    try {
      this.heard(e, this.store.session());
    } catch {
      // A listener's failure is no concern of the session's.
    }
  }

  private act(e: SessionEvent): void {
    // A new session: the workers re-assert what the old one held (reset) or count it lost. Workers
    // act on it only from this message: the incarnation and the epoch change together there.
    if (e.kind === 'lost' || e.kind === 'reset') {
      const { incarnation } = this.store.session();
      this.post(undefined, { t: 'session', incarnation, epoch: e.epoch, carried: e.kind === 'reset' ? e.lost : 0, graceMs: e.kind === 'reset' ? e.graceMs : 0 });
      // The lost session is dead from the new one's opening: its records go now, not at the next
      // renewal's hint. Until then the waiters they blocked elsewhere keep wait-for edges to their
      // owners, whose names this node's owners go on using.
      if (e.kind === 'lost') this.reap();
    } else if (e.kind === 'expired') {
      // No session until the engine answers again: as for a displaced node, the workers count
      // what they held as lost and end their waiters now (session 0); the new session's message
      // follows once it is open ('lost').
      this.post(undefined, { t: 'session', incarnation: '', epoch: 0, carried: 0, graceMs: 0 });
    } else if (e.kind === 'displaced') {
      // No next session: session 0 makes the workers count what they held as lost and end
      // their waiters, as for a lost session, and fail what comes next.
      this.post(undefined, { t: 'session', incarnation: '', epoch: 0, carried: 0, graceMs: 0 });
      this.fault(`locksmith store: another process opened a session under this node's name '${this.store.node}': this coordinator has no session from now on, and its lock requests fail with the family's generic code. Give each node its own name (store.node, --node).`);
    }
  }

  /** The reaper: every dead session's records, per file, to the worker that owns it. */
  private reap(): void {
    if (this.reaping) {
      this.reapAgain = true;
      return;
    }
    this.reaping = true;
    void (async () => {
      try {
        do {
          this.reapAgain = false;
          const r = await this.store.reap();
          const byFile = new Map<string, { node: string; epoch: number }[]>();
          for (const s of r.dead) {
            for (const f of s.files) {
              let list = byFile.get(f.file);
              if (list === undefined) byFile.set(f.file, (list = []));
              list.push({ node: s.node, epoch: s.epoch });
            }
          }
          for (const [path, sessions] of byFile) this.post(path, { t: 'reap', path, sessions });
        } while (this.reapAgain);
      } catch {
        // The next renewal's hint tries again.
      } finally {
        this.reaping = false;
      }
    })();
  }

  /**
   * Every node's locks and waiters, of one file or all, each with its node. They are read from the
   * engine, this node's own too (its workers' caches hold only what each file's last step saw): an
   * engine that does not answer is an Error saying so, naming it.
   */
  async locks(path?: string): Promise<LockEntry[]> {
    return (await this.listing(path, false)).locks;
  }

  /**
   * locks(), each entry with the session its record belongs to (`epochs`, in the same order), and
   * with `registry` the engine's session registry, read beside the listing: what tells
   * `locksmith locks` which nodes no longer renew their session, and when their locks go. A
   * registry that could not be read is left out (the listing stands without it).
   */
  async listing(path: string | undefined, registry: boolean): Promise<SpaceListing> {
    let files: string[];
    let states: Awaited<ReturnType<NodeStore['load']>>[];
    const sessions = registry ? this.store.sessions().catch(() => undefined) : undefined;
    try {
      files = path === undefined ? (await this.store.files()).sort() : [path];
      states = await Promise.all(files.map((f) => this.store.load(f)));
    } catch (e) {
      const m = e instanceof Error ? e.message : '';
      const why = m.replace(/^locksmith store: /, '').replace(`${this.shownUrl}: `, '');
      if (/^locksmith store: the engine refused/.test(m)) throw new Error(`locksmith store: the lock space's engine at ${this.shownUrl} refused to list its locks (${why})`);
      // Anything else than the engine's silence (a closed store, a bug) as it is.
      if (!m.startsWith(`locksmith store: ${this.shownUrl}: `)) throw e;
      throw new Error(
        `locksmith store: the lock space's engine at ${this.shownUrl} did not answer (${why}): every node's locks are listed from it, so other nodes' locks are unknown, and this node's cannot be listed either until it answers`,
      );
    }
    const now = Date.now();
    const read = await sessions;
    return {
      locks: files.flatMap((file, i) => recordEntries(file, states[i]!.records, now)),
      epochs: states.flatMap((st) => st.records.map((r) => r.epoch)),
      ...(read === undefined ? {} : { registry: read }),
    };
  }

  /** The engine's side of stats(): this thread's calls plus each worker's own (`workers`); the caller adds its owed releases. */
  stats(workers: readonly LinkCounts[] = []): Omit<StoreStats, 'owedReleases'> {
    const s = this.store.session();
    const st = this.store.stats();
    for (const w of workers) {
      st.roundTrips += w.roundTrips;
      st.commits += w.commits;
      st.stale += w.stale;
      st.fencedLocally += w.fencedLocally;
      st.graceWaits += w.graceWaits;
      st.fenceRefusals += w.fenceRefusals;
    }
    return { engine: 'redis', node: this.store.node, namespace: this.namespace, session: { epoch: s.epoch, fenced: s.fenced, grace: s.grace }, incarnation: s.incarnation, ...st };
  }

  /** A worker's commit found this node's session gone: renew now rather than at the next tick. */
  nudge(): void {
    this.store.nudge();
  }

  /** Ends the session (after the workers released this node's locks) and the connections. */
  async close(): Promise<void> {
    await this.store.close();
  }
}
