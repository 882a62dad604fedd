/**
 * The wait-for graph of classic POSIX owners, across every file (SEMANTICS-POSIX.md §6).
 *
 * Nodes are owner keys; a waiting 'posix' request of owner A contributes an edge A -> B for every
 * owner B holding a granted 'posix' lock that blocks it (and, under 'fifo', every owner B whose
 * earlier waiter it queues behind). OFD, flock and Windows owners never appear: Linux detects no
 * deadlock through them.
 *
 * Invariant: the graph is acyclic after every step. A cycle can only appear when an edge is added,
 * so each addition is checked: a new request whose edges would close a cycle is refused (EDEADLK)
 * and never enters the graph; a waiter that gains a blocker closing a cycle is failed the same way.
 * Edges of a waiter are replaced in the same step that changes its file, so a reported cycle is
 * always made of current edges: never a false EDEADLK, and no depth limit (unlike Linux's 10 steps).
 */

export interface WaitForGraph {
  /** True when `owner` waiting on `blockers` would close a cycle. */
  closesCycle(owner: string, blockers: Iterable<string>): boolean;
  /** Records (or replaces) the blockers of one waiting request. An empty set removes it. */
  setEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>): void;
  /** Forgets a waiting request (granted, cancelled, failed). */
  removeEdges(waiter: unknown, owner: string): void;
}

export class LocalWaitForGraph implements WaitForGraph {
  /** owner -> its waiting requests -> the owners each one waits for. */
  private readonly out = new Map<string, Map<unknown, ReadonlySet<string>>>();

  closesCycle(owner: string, blockers: Iterable<string>): boolean {
    const seen = new Set<string>();
    const stack: string[] = [];
    for (const b of blockers) {
      if (b === owner) return true;
      if (!seen.has(b)) {
        seen.add(b);
        stack.push(b);
      }
    }
    while (stack.length > 0) {
      const node = stack.pop()!;
      const waits = this.out.get(node);
      if (waits === undefined) continue;
      for (const targets of waits.values()) {
        for (const t of targets) {
          if (t === owner) return true;
          if (!seen.has(t)) {
            seen.add(t);
            stack.push(t);
          }
        }
      }
    }
    return false;
  }

  setEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>): void {
    if (blockers.size === 0) {
      this.removeEdges(waiter, owner);
      return;
    }
    let waits = this.out.get(owner);
    if (waits === undefined) {
      waits = new Map();
      this.out.set(owner, waits);
    }
    waits.set(waiter, blockers);
  }

  removeEdges(waiter: unknown, owner: string): void {
    const waits = this.out.get(owner);
    if (waits?.delete(waiter) && waits.size === 0) this.out.delete(owner);
  }

  /** The blockers recorded for one waiting request of `owner`. */
  blockersOf(waiter: unknown, owner: string): ReadonlySet<string> | undefined {
    return this.out.get(owner)?.get(waiter);
  }

  /** The edges, for tests and listings: owner -> owners it waits for. */
  edges(): Map<string, Set<string>> {
    const m = new Map<string, Set<string>>();
    for (const [o, waits] of this.out) {
      const s = new Set<string>();
      for (const t of waits.values()) for (const b of t) s.add(b);
      m.set(o, s);
    }
    return m;
  }
}
