/**
 * The caller's side of crash recovery: per file, what a worker would lose if it died. Each file's
 * journal holds its committed steps in the order the worker reported them (one entry form:
 * src/wire/journal-entry.ts); a replacement worker replays them (LockTable.replay) to rebuild the granted locks.
 *
 * A file that goes idle holds nothing, so its journal is dropped. A journal that grows long is
 * replaced by a snapshot of the file's granted locks, asked of the worker that owns the file. A
 * snapshot costs the worker, the two ports and this thread time in proportion to the locks it
 * holds, so a file is compacted only after as many new entries as its last snapshot had locks
 * (and never before MIN_ENTRIES): the cost per step stays constant however many locks the file
 * holds, and a journal is never more than about twice the state it rebuilds. (A snapshot every
 * 1,024 entries, as before, made a lock+unlock in a gap among 100,000 held locks cost ~5 ms
 * instead of ~0.2 ms through the API.)
 *
 * The interface is what a store needs: append a step, drop a file, take a compaction, read a
 * file's entries back. A store in another process can stand behind the same calls.
 */
import type { Lock } from '../core/file-locks.js';
import { SweptMap } from '../core/swept-map.js';
import type { JournalEntry } from '../wire/journal-entry.js';

/** Entries before a file's journal may be compacted at all. */
export const MIN_ENTRIES = 1024;

interface FileJournal {
  entries: JournalEntry[];
  /** Compact once the journal reaches this many entries. */
  compactAt: number;
  /** A snapshot was asked for and has not arrived. */
  compacting: boolean;
}

export class Journal {
  /** An emptied journal waits for a sweep (SweptMap: V8 Map churn). */
  private readonly files = new SweptMap<string, FileJournal>((f) => f.entries.length === 0);

  /** `compact(path)` asks the worker owning `path` for a snapshot; it arrives as `snapshot`. */
  constructor(private readonly compact: (path: string) => void) {}

  /** Appends a committed step; a journal long enough for its state is compacted. */
  record(path: string, e: JournalEntry): void {
    let f = this.files.get(path);
    if (f === undefined) {
      f = { entries: [], compactAt: MIN_ENTRIES, compacting: false };
      this.files.set(path, f);
    }
    f.entries.push(e);
    if (f.entries.length >= f.compactAt && !f.compacting) {
      f.compacting = true;
      this.compact(path);
    }
  }

  /** The file holds nothing any more: its journal has nothing to rebuild. */
  forget(path: string): void {
    const f = this.files.get(path);
    if (f !== undefined && f.entries.length > 0) {
      f.entries.length = 0;
      f.compactAt = MIN_ENTRIES;
      f.compacting = false;
      this.files.emptiedOne();
    }
  }

  /**
   * The worker's snapshot of `path`'s granted locks. It arrives in order with the answers, so it
   * contains every step journaled before it and none journaled after.
   */
  snapshot(path: string, locks: Lock[]): void {
    const f = this.files.get(path);
    const entries: JournalEntry[] = [{ j: 'locks', locks }];
    const compactAt = Math.max(MIN_ENTRIES, locks.length);
    if (f === undefined) this.files.set(path, { entries, compactAt, compacting: false });
    else {
      f.entries = entries;
      f.compactAt = compactAt;
      f.compacting = false;
    }
  }

  /** The worker asked for snapshots died: its files may be compacted again (by the replacement). */
  abandonCompactions(owns: (path: string) => boolean): void {
    for (const [path, f] of this.files.entries()) if (f.compacting && owns(path)) f.compacting = false;
  }

  /** Every file with something to rebuild, and its entries in commit order. */
  *entries(): IterableIterator<[string, JournalEntry[]]> {
    for (const [path, f] of this.files.entries()) yield [path, f.entries];
  }

  /** Entries of one file (tests and diagnostics). */
  entriesOf(path: string): readonly JournalEntry[] {
    return this.files.get(path)?.entries ?? [];
  }
}
