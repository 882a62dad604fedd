/**
 * A Map whose emptied entries stay in place until a sweep, instead of being deleted at once.
 *
 * Measured (bench/core.ts): in a large V8 Map, deleting a key and adding it back, again and again,
 * slows every lookup of that key down until the table is rebuilt: 0.8 µs with 100 entries, 36 µs
 * with 10,000, 276 µs with 100,000. Lock state does exactly that (a lock taken and released empties
 * and refills its owner's entry), so entries are left empty and swept out in one pass once the
 * empty ones could be half the map: amortized O(1), and the hash table is rebuilt fresh.
 *
 * A sweep also waits for `minEmptied` emptyings (64 unless told), so a small map whose entries
 * empty and refill all the time is not rebuilt over and over. LockTable's map of files asks for
 * 1,024: a file's state is a thousand bytes of objects, and with 64 files locked and unlocked in
 * turn a sweep every 65 unlocks rebuilt half a file per operation (synthetic source, bench:fuse).
 * Keeping idle entries longer than that costs more than it saves: kept for two sweeps, 10,000
 * files locked in turn ran at 1.7M instead of 2.8M operations per second in one thread.
 */
export class SweptMap<K, V> {
  /** Made on the first set: most files never use most of their maps (RSS per file, bench:api). */
  private map: Map<K, V> | null = null;
  private emptied = 0;

  constructor(
    /** True when an entry holds nothing and may go at the next sweep. */
    private readonly isEmpty: (v: V) => boolean,
    /** Emptyings before a sweep may happen. */
    private readonly minEmptied = 64,
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
    if (++this.emptied > this.minEmptied && this.emptied * 2 > (this.map?.size ?? 0)) this.sweep();
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
    const next = new Map<K, V>();
    // forEach, not an iterator: no [key, value] array per entry (a sweep visits the whole map).
    this.map?.forEach((v, k) => {
      if (!this.isEmpty(v)) next.set(k, v);
    });
    this.map = next.size === 0 ? null : next;
    this.emptied = 0;
  }
}
