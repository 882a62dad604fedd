/**
 * A random multi-client load for the caller tests, made of the stress runner's parts: the seeded
 * streams of its 'dense' workload (driver/workloads.ts: POSIX clients with classic, OFD and flock
 * locks, F_GETLK and closes; Windows clients with LockFileEx, UnlockFileEx, unlock-all and
 * CloseHandle; every wait ended by a short timeout or a cancel), run by its API clients
 * (driver/targets/api.ts) on the test's coordinator and files, stamped on its monotonic clock and
 * judged by its oracle (driver/oracle.ts, no code from src/).
 *
 * What a test gets: the oracle's summary (no conflicting locks observed held at once, every
 * request answered, every answer one the request can have, F_GETLK and EDEADLK answers true), the
 * answers the API promises beyond that (`wrong`), and what the clients know they hold, to compare
 * with locks() before the clients clean up.
 */
import type { LockCoordinator } from '../../src/index.js';
import type { Naming } from '../../driver/observer.js';
import { describe, type OracleSummary } from '../../driver/oracle.js';
import { Stage } from '../../driver/stage.js';
import { API_NAMING, ApiClient, heldLines } from '../../driver/targets/api.js';
import { HANG_MS, isPending, within } from '../api/helpers.js';

export interface LoadOptions {
  /** The files the clients share (the workload's file i is files[i]). */
  files: readonly string[];
  clients: number;
  seed: number;
  /** The coordinator's workers (for the record). */
  workers: number;
  /** Operations in all; without it, the load runs until `signal`. */
  ops?: number;
  /** Stops the load: clients issue no new operation (the one in flight still ends). */
  signal?: AbortSignal;
}

export class Load {
  readonly stage: Stage;
  readonly clients: ApiClient[];
  readonly naming: Naming;
  /** Answers the API promises otherwise, with the call (empty when all is well). */
  readonly wrong: string[] = [];
  private readonly loading: Promise<void>;

  constructor(
    c: LockCoordinator,
    readonly o: LoadOptions,
  ) {
    const { files, clients, seed, workers, ops, signal } = o;
    this.naming = { ...API_NAMING, file: (i) => files[i]! };
    // Deadlock detection covers classic POSIX owners (API.md); a cycle of waits that nothing broke
    // counts only after HANG_MS (ns here): every wait has a timeout, so only a hang lasts that long.
    this.stage = new Stage(
      { target: 'api', workload: 'dense', seed, clients, files: files.length, workers, ...(ops === undefined ? {} : { ops }), ...(signal === undefined ? {} : { signal }) },
      ['posix'],
      undefined,
      HANG_MS * 1e6,
    );
    this.clients = this.stage.streams.map(
      (_, i) =>
        new ApiClient(this.stage, c, this.naming, i, this.stage.feed, (op, result, outcome) => {
          // A wait bounded by its own timeout only ends granted, refused (EAGAIN, ERROR_LOCK_VIOLATION)
          // or with EDEADLK: only a cancel (an aborted signal) interrupts it.
          if (outcome === 'interrupted' && !('cancelMs' in op && op.cancelMs !== undefined)) this.wrong.push(`client ${i}: ${JSON.stringify(op)} answered ${result}`);
        }),
    );
    this.stage.begin();
    this.loading = Promise.all(this.clients.map((a) => a.load())).then(() => undefined);
  }

  /** Answers so far: progress a test can wait on. */
  get answered(): number {
    return this.stage.metrics.ops;
  }

  /**
   * Worker `index` of `c` crashes and is replaced (LockCoordinator.crashWorker, resolved once the
   * replacement answers). Until then nothing is decided on that worker's files, and a wait's timeout
   * or cancel is answered only by the replacement (its start took over 6 s on a loaded machine), so
   * the oracle is told that waits may be held back meanwhile (a withhold window, which excuses a
   * wait only for stuck-waiter).
   */
  async crash(c: LockCoordinator, index: number): Promise<void> {
    const key = `the restart of worker ${index}`;
    this.stage.feed({ t: this.stage.clock.now(), ev: 'withhold', key, until: Number.POSITIVE_INFINITY });
    try {
      await c.crashWorker(index);
    } finally {
      const t = this.stage.clock.now();
      this.stage.feed({ t, ev: 'withhold', key, until: t });
    }
  }

  /** Waits until every client stopped (budget used or signal): false if one is still in a call after HANG_MS (a hang). */
  async ended(): Promise<boolean> {
    return !isPending(await within(this.loading, HANG_MS));
  }

  /** The granted locks locks() must list for the load's files (see listingLines), from what the clients know. */
  expected(): string[] {
    return heldLines(this.naming, this.clients);
  }

  /** Every client closes every descriptor and handle it used; false on a hang (HANG_MS). */
  async cleanup(): Promise<boolean> {
    return !isPending(await within(Promise.all(this.clients.map((a) => a.cleanup())), HANG_MS));
  }

  /** Ends the log (requests still out are unanswered) and returns the oracle's judgement. */
  close(): OracleSummary {
    return this.stage.close();
  }
}

/** The oracle's findings as text, each with its trace (empty when it found nothing). */
export function violations(s: OracleSummary): string[] {
  const shown = s.examples.map((v) => `${v.kind}: ${v.message}\n${v.trace.map((e) => `  ${describe(e)}`).join('\n')}`);
  const more = s.violations - s.examples.length;
  return more > 0 ? [...shown, `and ${more} more: ${JSON.stringify(s.byKind)}`] : shown;
}
