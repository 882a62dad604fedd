/**
 * An independent conflict checker for the API tests. It shares no code with src/: it restates the
 * conflict rules of API.md ("Both"), SEMANTICS-WINDOWS.md §4 and SEMANTICS-POSIX.md §3 from the
 * documents, over the public listing format of `locks()` and over caller-side histories.
 *
 * - flock locks only see flock locks; everything else shares one byte-range space.
 * - Different owners conflict when the ranges overlap and either side is a write / exclusive lock.
 * - The same owner never conflicts with itself, except that two Windows exclusive records of one
 *   owner may never overlap ("Overlapping exclusive byte-range locks are not allowed even by the
 *   same owner").
 * - Ranges are inclusive [start, end]; a zero-length Windows lock at X is [X, X - 1], which the
 *   plain overlap test handles (it overlaps [a, b] iff a < X <= b; two zero-length ranges never overlap).
 */

export interface Held {
  path: string;
  kind: 'windows' | 'posix' | 'ofd' | 'flock';
  write: boolean;
  start: bigint;
  end: bigint;
  /** A canonical owner id, comparable with === (see ownerId). */
  owner: string;
}

/** Identities compare by value: 5 and 5n are one, the string '5' is another (API.md). */
export function identity(v: unknown): string {
  if (typeof v === 'string') return 's:' + v;
  if (typeof v === 'bigint') return 'n:' + v.toString();
  if (typeof v === 'number') return 'n:' + BigInt(v).toString();
  throw new Error(`not an identity: ${String(v)}`);
}

/**
 * The owner of a listed lock. Windows: (handle, processId); the listing has no key, so tests that
 * use this must keep key 0. POSIX kinds: (kind, lockOwner).
 */
export function ownerId(kind: string, owner: unknown, processId?: unknown): string {
  if (kind === 'windows') return `windows|${identity(owner)}|${identity(processId ?? 0)}`;
  return `${kind}|${identity(owner)}`;
}

interface ListedEntry {
  path: string;
  kind: string;
  type: string;
  start: bigint;
  end: bigint;
  owner: unknown;
  state: string;
  processId?: unknown;
}

export function heldOf(e: ListedEntry): Held {
  return {
    path: e.path,
    kind: e.kind as Held['kind'],
    write: e.type === 'write' || e.type === 'exclusive',
    start: e.start,
    end: e.end,
    owner: ownerId(e.kind, e.owner, e.processId),
  };
}

export function conflict(a: Held, b: Held): boolean {
  if (a.path !== b.path) return false;
  if ((a.kind === 'flock') !== (b.kind === 'flock')) return false;
  const overlap = a.start <= b.end && b.start <= a.end;
  if (!overlap) return false;
  if (a.owner === b.owner) return a.kind === 'windows' && b.kind === 'windows' && a.write && b.write;
  return a.write || b.write;
}

function show(h: Held): string {
  return `${h.path} ${h.kind} ${h.write ? 'W' : 'R'} [${h.start}, ${h.end}] ${h.owner}`;
}

/** Every conflicting pair among the granted entries of a listing (empty when the snapshot is sound). */
export function snapshotConflicts(entries: readonly ListedEntry[]): string[] {
  const granted = entries.filter((e) => e.state === 'granted').map(heldOf);
  const out: string[] = [];
  for (let i = 0; i < granted.length; i++) {
    for (let j = i + 1; j < granted.length; j++) {
      if (conflict(granted[i]!, granted[j]!)) out.push(`${show(granted[i]!)}  <->  ${show(granted[j]!)}`);
    }
  }
  return out;
}

/** A lock known held by the caller from `from` to `to` (caller-side event numbers; to = Infinity if still held). */
export interface HeldSpan extends Held {
  from: number;
  to: number;
}

/** Every pair of spans whose times overlap and whose locks conflict. */
export function historyConflicts(spans: readonly HeldSpan[], limit = 20): string[] {
  const out: string[] = [];
  const byPath = new Map<string, HeldSpan[]>();
  for (const s of spans) {
    if (!(s.from < s.to)) continue;
    let l = byPath.get(s.path);
    if (l === undefined) byPath.set(s.path, (l = []));
    l.push(s);
  }
  for (const list of byPath.values()) {
    list.sort((a, b) => a.from - b.from);
    // Sweep by start time: only spans still open at s.from can overlap s in time.
    const open: HeldSpan[] = [];
    for (const s of list) {
      for (let k = open.length - 1; k >= 0; k--) if (open[k]!.to <= s.from) open.splice(k, 1);
      for (const o of open) {
        if (conflict(o, s)) {
          out.push(`${show(o)} held ${o.from}..${o.to}  <->  ${show(s)} held ${s.from}..${s.to}`);
          if (out.length >= limit) return out;
        }
      }
      open.push(s);
    }
  }
  return out;
}
