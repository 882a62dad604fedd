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
 */
import { LocalWaitForGraph } from '../core/deadlock.js';

export interface DeadlockPort {
  /** Resolves once every host has answered a sync sent now. */
  syncAll(): Promise<void>;
  /** Asks the host running request `id` to fail it with -EDEADLK; resolves to whether it did. */
  breakCycle(id: number): Promise<boolean>;
}

export class DeadlockService {
  private readonly graph = new LocalWaitForGraph();
  /** Request id -> its owner, for the requests that have edges. */
  private readonly owners = new Map<number, string>();
  private chain: Promise<void> = Promise.resolve();
  /** Cycles broken across workers (stats). */
  broken = 0;

  constructor(private readonly port: DeadlockPort) {}

  /** A host reported the edges of request `id` (empty: the request no longer waits). */
  edges(id: number, owner: string, blockers: string[]): void {
    if (blockers.length === 0) {
      this.forget(id);
      return;
    }
    const set = new Set(blockers);
    const closes = this.graph.closesCycle(owner, set, true);
    this.graph.setEdges(id, owner, set);
    this.owners.set(id, owner);
    if (closes) this.chain = this.chain.then(() => this.confirm(id)).catch(() => undefined);
  }

  /** Forgets a request: it ended, or its host died. */
  forget(id: number): void {
    const owner = this.owners.get(id);
    if (owner === undefined) return;
    this.graph.removeEdges(id, owner);
    this.owners.delete(id);
  }

  private async confirm(id: number): Promise<void> {
    await this.port.syncAll();
    const owner = this.owners.get(id);
    if (owner === undefined) return;
    const blockers = this.graph.blockersOf(id, owner);
    if (blockers === undefined || !this.graph.closesCycle(owner, blockers, true)) return;
    if (await this.port.breakCycle(id)) this.broken++;
  }

  /** Resolves when every cycle check started so far has finished. */
  idle(): Promise<void> {
    return this.chain;
  }
}
