/**
 * A Map whose emptied entries stay in place until a sweep, instead of being deleted at once.
 *
 * Measured (bench/core.ts): in a large V8 Map, deleting a key and adding it back, again and again,
 * slows every lookup of that key down until the table is rebuilt: 0.8 µs with 100 entries, 36 µs
 * with 10,000, 276 µs with 100,000. Lock state does exactly that (a lock taken and released empties
 * and refills its owner's entry), so entries are left empty and swept out in one pass once the
 * empty ones could be half the map: amortized O(1), and the hash table is rebuilt fresh.
 *
 * A map given `recent` also keeps, at a sweep, the empty entries used since the sweep before last
 * (their users stamp them with `sweeps`): an entry that empties and refills all the time (a file
 * locked and unlocked in turn) is not thrown away and rebuilt at every sweep, and an entry left
 * alone is still gone after two. Measured with the synthetic source (64 files, bench:fuse): a
 * sweep every 65 unlocks rebuilt every file's state, half a file's objects per operation.
 */
export class SweptMap<K, V> {
  /** Made on the first set: most files never use most of their maps (RSS per file, bench:api). */
  private map: Map<K, V> | null = null;
  private emptied = 0;
  /** Sweeps so far (the stamp of `recent`). */
  sweeps = 0;

  constructor(
    /** True when an entry holds nothing and may go at the next sweep. */
    private readonly isEmpty: (v: V) => boolean,
    /** True when an empty entry was used since sweep number `since` (then it stays). */
    private readonly recent?: (v: V, since: number) => boolean,
  ) {}

  /** The entry, possibly an empty one. */
  get(k: K): V | undefined {
    return this.map?.get(k);
  }

  set(k: K, v: V): void {
    (this.map ??= new Map()).set(k, v);
  }

  /** Tells the map an entry may have become empty; sweeps when enough have. */
  emptiedOne(): void {
    if (++this.emptied > 64 && this.emptied * 2 > (this.map?.size ?? 0)) this.sweep();
  }

  /** Entries that hold something. */
  *values(): IterableIterator<V> {
    if (this.map !== null) for (const v of this.map.values()) if (!this.isEmpty(v)) yield v;
  }

  *entries(): IterableIterator<[K, V]> {
    if (this.map !== null) for (const e of this.map) if (!this.isEmpty(e[1])) yield e;
  }

  /** Number of entries that hold something (O(n): for listings and stats). */
  liveCount(): number {
    let n = 0;
    for (const _ of this.values()) n++;
    return n;
  }

  private sweep(): void {
    const map = this.map!;
    const since = this.sweeps - 1;
    const keep = (v: V): boolean => !this.isEmpty(v) || (this.recent?.(v, since) ?? false);
    this.emptied = 0;
    this.sweeps++;
    let gone = 0;
    for (const v of map.values()) if (!keep(v)) gone++;
    if (gone === 0) return;
    const next = new Map<K, V>();
    for (const [k, v] of map) if (keep(v)) next.set(k, v);
    this.map = next.size === 0 ? null : next;
  }
}
