/**
 * An ordered set of inclusive ranges [start, end] with overlap queries in O(log n + k).
 *
 * A treap ordered by (start, seq) where each node also knows the largest `end` in its subtree, so
 * a query skips every subtree that ends before the range it asks about. Ranges may be empty in the
 * Windows sense (end = start - 1, a zero-length lock): the overlap test `a.start <= b.end &&
 * b.start <= a.end` then gives exactly the zero-length rules of SEMANTICS-WINDOWS.md §2, so no
 * caller needs a special case. The kernel keeps one list per inode and scans it; this index is why
 * our cost per operation grows with log(locks held) instead (bench/core.ts measures both).
 */

export interface Ranged {
  readonly start: bigint;
  readonly end: bigint;
  /** Tie-breaker among equal starts, unique within one tree; also the grant order. */
  readonly seq: number;
}

class TreeNode<T extends Ranged> {
  left: TreeNode<T> | null = null;
  right: TreeNode<T> | null = null;
  maxEnd: bigint;
  constructor(
    readonly item: T,
    readonly prio: number,
  ) {
    this.maxEnd = item.end;
  }
}

/** Deterministic priorities: the shape of a treap only affects speed, and tests should replay. */
let prioState = 0x9e3779b9;
function nextPrio(): number {
  prioState ^= prioState << 13;
  prioState ^= prioState >>> 17;
  prioState ^= prioState << 5;
  return prioState >>> 0;
}

function before<T extends Ranged>(a: T, b: T): boolean {
  return a.start < b.start || (a.start === b.start && a.seq < b.seq);
}

function refresh<T extends Ranged>(n: TreeNode<T>): void {
  let m = n.item.end;
  if (n.left !== null && n.left.maxEnd > m) m = n.left.maxEnd;
  if (n.right !== null && n.right.maxEnd > m) m = n.right.maxEnd;
  n.maxEnd = m;
}

function insertNode<T extends Ranged>(t: TreeNode<T> | null, n: TreeNode<T>): TreeNode<T> {
  if (t === null) return n;
  if (before(n.item, t.item)) {
    t.left = insertNode(t.left, n);
    if (t.left.prio > t.prio) {
      const l = t.left;
      t.left = l.right;
      l.right = t;
      refresh(t);
      refresh(l);
      return l;
    }
  } else {
    t.right = insertNode(t.right, n);
    if (t.right.prio > t.prio) {
      const r = t.right;
      t.right = r.left;
      r.left = t;
      refresh(t);
      refresh(r);
      return r;
    }
  }
  refresh(t);
  return t;
}

function join<T extends Ranged>(a: TreeNode<T> | null, b: TreeNode<T> | null): TreeNode<T> | null {
  if (a === null) return b;
  if (b === null) return a;
  if (a.prio > b.prio) {
    a.right = join(a.right, b);
    refresh(a);
    return a;
  }
  b.left = join(a, b.left);
  refresh(b);
  return b;
}

export class IntervalTree<T extends Ranged> {
  private root: TreeNode<T> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  insert(item: T): void {
    this.root = insertNode(this.root, new TreeNode(item, nextPrio()));
    this.count++;
  }

  /** Removes `item` (found by identity); returns false when it is not in the tree. */
  remove(item: T): boolean {
    let removed = false;
    const go = (t: TreeNode<T> | null): TreeNode<T> | null => {
      if (t === null) return null;
      if (t.item === item) {
        removed = true;
        return join(t.left, t.right);
      }
      if (before(item, t.item)) t.left = go(t.left);
      else t.right = go(t.right);
      refresh(t);
      return t;
    };
    this.root = go(this.root);
    if (removed) this.count--;
    return removed;
  }

  /**
   * Visits, in (start, seq) order, every item overlapping [start, end]; stops at and returns the
   * first item for which `visit` returns true.
   */
  findOverlap(start: bigint, end: bigint, visit: (item: T) => boolean): T | undefined {
    // Iterative in-order walk with pruning; an explicit stack avoids a closure per call.
    const stack: TreeNode<T>[] = [];
    let n = this.root;
    for (;;) {
      while (n !== null && n.maxEnd >= start) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop();
      if (top === undefined) return undefined;
      const it = top.item;
      if (it.start > end) return undefined;
      if (it.end >= start && visit(it)) return it;
      n = top.right;
    }
  }

  /** Every item overlapping [start, end], in (start, seq) order. */
  overlapping(start: bigint, end: bigint): T[] {
    const out: T[] = [];
    this.findOverlap(start, end, (it) => {
      out.push(it);
      return false;
    });
    return out;
  }

  /** Every item in (start, seq) order. */
  *[Symbol.iterator](): IterableIterator<T> {
    const stack: TreeNode<T>[] = [];
    let n = this.root;
    for (;;) {
      while (n !== null) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop();
      if (top === undefined) return;
      yield top.item;
      n = top.right;
    }
  }
}
