/**
 * The wait-for graph of classic POSIX owners, across every file (SEMANTICS-POSIX.md §6).
 *
 * Nodes are owner keys; a waiting 'posix' request of owner A contributes an edge A -> B for every
 * owner B holding a granted 'posix' lock that blocks it (and, under 'fifo', every owner B whose
 * earlier waiter it queues behind). OFD, flock and Windows owners never appear: Linux detects no
 * deadlock through them.
 *
 * Two kinds of edge: hard (waiting on a granted lock) and soft ('fifo' queueing behind a waiter).
 * A cycle of hard edges is a deadlock: it can only appear when an edge is added, so each addition
 * is checked, and a request whose hard edges would close one is refused (EDEADLK) and never enters
 * the graph; a waiter that gains a blocker closing one is failed the same way. A cycle that needs a
 * soft edge is one 'fifo' made, and 'fifo' must not make deadlocks: it is broken by letting the
 * waiter with the soft edge through (LockTable.waitsFor), never by an EDEADLK.
 * Edges of a waiter are replaced in the same step that changes its file, so a reported cycle is
 * always made of current edges: never a false EDEADLK, and no depth limit (unlike Linux's 10 steps).
 */

export interface WaitForGraph {
  /**
   * True when `owner` waiting on `blockers` would close a cycle. With `hardOnly`, 'fifo' queueing
   * edges are not followed: only waits on granted locks, the ones that are real deadlocks.
   */
  closesCycle(owner: string, blockers: Iterable<string>, hardOnly?: boolean): boolean;
  /**
   * Records (or replaces) the edges of one waiting request: `blockers` hold granted locks it
   * conflicts with; `queuedBehind` ('fifo' only) own earlier waiters it queues behind.
   * Empty sets remove it.
   */
  setEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>, queuedBehind?: ReadonlySet<string>): void;
  /** Forgets a waiting request (granted, cancelled, failed). */
  removeEdges(waiter: unknown, owner: string): void;
  /**
   * Records the new edges of a woken waiter that is checked later in the same step, after the
   * waiters before it (LockTable.refreshEdges): this graph walks them at once, but a graph that
   * passes edges on to another (host.ts) holds them back until that waiter's own `setEdges`, so
   * the other graph meets the checks in the same order. Absent: `setEdges`.
   */
  holdEdges?(waiter: unknown, owner: string, blockers: ReadonlySet<string>, queuedBehind?: ReadonlySet<string>): void;
}

export interface Edges {
  readonly hard: ReadonlySet<string>;
  readonly soft: ReadonlySet<string>;
}

/** One step of a cycle: owner `from` waits for owner `to`. */
export interface CycleStep {
  readonly from: string;
  readonly to: string;
  /** Some request of `from` waits on a granted lock of `to`; false: only 'fifo' queueing behind `to`'s waiters. */
  readonly hard: boolean;
  /** Soft steps: the waiting requests of `from` that queue behind `to`. */
  readonly waiters: readonly unknown[];
}

/**
 * Whether waiting for `targets` would make `owner` wait for itself: a depth-first walk from the
 * targets over the owners' wait-for edges (`edgesOf`), soft edges too unless `hardOnly`. One walk
 * for every graph of owners: this worker's (LocalWaitForGraph) and the shared store's
 * (src/store/memory.ts, the model of the engine's script).
 */
export function reaches(
  owner: string,
  targets: Iterable<string>,
  edgesOf: (o: string) => Iterable<{ readonly hard: Iterable<string>; readonly soft: Iterable<string> }>,
  hardOnly: boolean,
): boolean {
  const seen = new Set<string>();
  const stack: string[] = [];
  const visit = (t: string): boolean => {
    if (t === owner) return true;
    if (!seen.has(t)) {
      seen.add(t);
      stack.push(t);
    }
    return false;
  };
  for (const t of targets) if (visit(t)) return true;
  while (stack.length > 0) {
    for (const e of edgesOf(stack.pop()!)) {
      for (const t of e.hard) if (visit(t)) return true;
      if (!hardOnly) for (const t of e.soft) if (visit(t)) return true;
    }
  }
  return false;
}

const NONE: ReadonlySet<string> = new Set();

export class LocalWaitForGraph implements WaitForGraph {
  /** owner -> its waiting requests -> the owners each one waits for. */
  private readonly out = new Map<string, Map<unknown, Edges>>();

  closesCycle(owner: string, blockers: Iterable<string>, hardOnly = false): boolean {
    return reaches(owner, blockers, (o) => this.out.get(o)?.values() ?? [], hardOnly);
  }

  setEdges(waiter: unknown, owner: string, blockers: ReadonlySet<string>, queuedBehind: ReadonlySet<string> = NONE): void {
    if (blockers.size === 0 && queuedBehind.size === 0) {
      this.removeEdges(waiter, owner);
      return;
    }
    let waits = this.out.get(owner);
    if (waits === undefined) {
      waits = new Map();
      this.out.set(owner, waits);
    }
    waits.set(waiter, { hard: blockers, soft: queuedBehind });
  }

  removeEdges(waiter: unknown, owner: string): void {
    const waits = this.out.get(owner);
    if (waits?.delete(waiter) && waits.size === 0) this.out.delete(owner);
  }

  /** The edges of every waiting request of `owner`. */
  waitsOf(owner: string): Iterable<Edges> {
    return this.out.get(owner)?.values() ?? [];
  }

  /** Forgets every edge. */
  clear(): void {
    this.out.clear();
  }

  /** The edges of one waiting request of `owner`, if it has any. */
  edgesOf(waiter: unknown, owner: string): Edges | undefined {
    return this.out.get(owner)?.get(waiter);
  }

  /**
   * A shortest cycle through `owner`, as its steps in order (the first leaves `owner`, the last
   * comes back to it), or undefined; with `withSoft`, a shortest one that has a soft step. A step
   * is between owners: it is hard when any waiting request of `from` has a hard edge to `to`; a
   * soft step lists every waiting request of `from` that queues behind `to`, all of which must
   * pass `to` to break it.
   */
  cycleThrough(owner: string, withSoft = false): CycleStep[] | undefined {
    // Breadth first over (owner, whether the path so far has a soft step): a shortest cycle.
    type At = { readonly o: string; readonly soft: boolean; readonly via?: { readonly at: At; readonly step: CycleStep } };
    const seen = new Set<string>([`0${owner}`]);
    const queue: At[] = [{ o: owner, soft: false }];
    for (let i = 0; i < queue.length; i++) {
      const at = queue[i]!;
      const steps = new Map<string, { hard: boolean; waiters: unknown[] }>();
      for (const [w, e] of this.out.get(at.o) ?? []) {
        for (const to of e.hard) {
          const st = steps.get(to);
          if (st === undefined) steps.set(to, { hard: true, waiters: [] });
          else st.hard = true;
        }
        for (const to of e.soft) {
          let st = steps.get(to);
          if (st === undefined) steps.set(to, (st = { hard: false, waiters: [] }));
          st.waiters.push(w);
        }
      }
      for (const [to, st] of steps) {
        const step: CycleStep = { from: at.o, to, hard: st.hard, waiters: st.hard ? [] : st.waiters };
        const soft = withSoft && (at.soft || !st.hard);
        if (to === owner && (soft || !withSoft)) {
          const path: CycleStep[] = [step];
          for (let v = at.via; v !== undefined; v = v.at.via) path.unshift(v.step);
          return path;
        }
        const key = `${soft ? 1 : 0}${to}`;
        if (to === owner || seen.has(key)) continue;
        seen.add(key);
        queue.push({ o: to, soft, via: { at, step } });
      }
    }
    return undefined;
  }

  /** The edges, for tests and listings: owner -> owners it waits for. */
  edges(): Map<string, Set<string>> {
    const m = new Map<string, Set<string>>();
    for (const [o, waits] of this.out) {
      const s = new Set<string>();
      for (const e of waits.values()) for (const b of [...e.hard, ...e.soft]) s.add(b);
      m.set(o, s);
    }
    return m;
  }
}
