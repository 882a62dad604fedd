/**
 * The wait-for graph across workers, kept on the coordinator's thread (SEMANTICS-POSIX.md §6).
 *
 * Each host checks cycles among its own waiters at once and exactly (its LocalWaitForGraph is
 * current), and forwards every edge change here, keyed by request id. A cycle whose edges come from
 * several hosts can only be seen here. When an added edge closes one, the service confirms it before
 * answering: it asks every host to 'sync' (a host answers after all messages it sent earlier, so
 * every edge removal already made has arrived), checks the cycle again on the now current edges, and
 * only then tells the host of the closing request to fail it with -EDEADLK, if it still waits.
 * Candidates are handled one at a time, so one cycle costs one request, as on Linux.
 *
 * Under 'fifo' hosts also forward their soft edges (a waiter queued behind an earlier waiter). A
 * cycle that needs one is 'fifo''s own making, never a deadlock: a host lets such a waiter pass
 * when the waiter ahead already waits for its owner, but it can only see its own waiters. Here the
 * whole graph is seen: once confirmed the same way, the host of a waiter on a soft step of the
 * cycle is told to let it pass the owner it queues behind ('pass'), as it would have at home.
 */
import { LocalWaitForGraph } from '../core/deadlock.js';

/** Soft steps released for one candidate before the service lets later edge changes decide. */
const MAX_PASS_ROUNDS = 16;

export interface DeadlockPort {
  /** Resolves once every host has answered a sync sent now. */
  syncAll(): Promise<void>;
  /** Asks the host running request `id` to fail it with -EDEADLK; resolves to whether it did. */
  breakCycle(id: number): Promise<boolean>;
  /** Tells the host running request `id` to let it pass the waiters of `owner` it queues behind ('fifo'). */
  letPass(id: number, owner: string): void;
}

export class DeadlockService {
  private readonly graph = new LocalWaitForGraph();
  /** Request id -> its owner and the worker deciding it, for the requests that have edges. */
  private readonly owners = new Map<number, { readonly owner: string; readonly worker: number }>();
  private chain: Promise<void> = Promise.resolve();
  /** Cycles broken across workers (stats). */
  broken = 0;

  constructor(private readonly port: DeadlockPort) {}

  /**
   * The host of worker `worker` reported the edges of request `id` (a caller's request or a native
   * one: the service does not care which): owners holding locks it waits on, and ('fifo') owners
   * of waiters it queues behind. Both empty: the request no longer waits.
   */
  edges(id: number, owner: string, blockers: string[], queuedBehind: string[] = [], worker = 0): void {
    if (blockers.length === 0 && queuedBehind.length === 0) {
      this.forget(id);
      return;
    }
    const hard = new Set(blockers);
    const soft = new Set(queuedBehind);
    // Only a request whose own edges close a hard cycle as they come may fail for one: a later
    // request's edges can turn the cycle an earlier one closed through a soft edge into a hard
    // one, and then the later one fails (its check comes after), as on one table.
    const closesHard = this.graph.closesCycle(owner, hard, true);
    const closes = closesHard || this.graph.closesCycle(owner, hard) || this.graph.closesCycle(owner, soft);
    this.graph.setEdges(id, owner, hard, soft);
    this.owners.set(id, { owner, worker });
    if (closes) this.chain = this.chain.then(() => this.confirm(id, closesHard)).catch(() => undefined);
  }

  /** Forgets a request: it ended, or its host died. */
  forget(id: number): void {
    // Every request ends here, and nearly none ever waited.
    if (this.owners.size === 0) return;
    const o = this.owners.get(id);
    if (o === undefined) return;
    this.graph.removeEdges(id, o.owner);
    this.owners.delete(id);
  }

  /** The worker deciding request `id`, while it has edges. */
  workerOf(id: number): number | undefined {
    return this.owners.get(id)?.worker;
  }

  /** Forgets every request decided by worker `worker` (it died; its requests start over). */
  forgetWorker(worker: number): void {
    for (const [id, o] of this.owners) if (o.worker === worker) this.forget(id);
  }

  private async confirm(id: number, hardAtArrival: boolean): Promise<void> {
    await this.port.syncAll();
    const owner = this.owners.get(id)?.owner;
    if (owner === undefined) return;
    const e = this.graph.edgesOf(id, owner);
    if (e === undefined) return;
    // A hard cycle made hard by a later request is that request's: it is confirmed after this one.
    if (hardAtArrival && this.graph.closesCycle(owner, e.hard, true)) {
      if (await this.port.breakCycle(id)) this.broken++;
      return;
    }
    // Not a deadlock of this request's. A cycle left that needs a 'fifo' hold-back: release one
    // soft step (every request of its owner that queues behind the next one), and look again once
    // the hosts have acted, as one added edge can close more than one cycle.
    for (let round = 0; round < MAX_PASS_ROUNDS; round++) {
      const step = this.graph.cycleThrough(owner, true)?.find((s) => !s.hard);
      if (step === undefined) return;
      for (const w of step.waiters) this.port.letPass(w as number, step.to);
      await this.port.syncAll();
    }
  }

  /** Resolves when every cycle check started so far has finished. */
  idle(): Promise<void> {
    return this.chain;
  }
}
