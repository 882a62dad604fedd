/**
 * The reference model of the locksmith property tests: one plain, slow, naive model that every
 * property reuses. It shares no code with src/core (only the numeric constants of codes.ts) and
 * decides every call straight from shared/design/SEMANTICS-WINDOWS.md, SEMANTICS-POSIX.md and
 * API.md.
 *
 * # Bytes: a universe of cells
 * Byte positions are modelled as a fixed partition of [0, 2^64-1] into 25 contiguous cells: the
 * single bytes 0..15, then [16, 2^53-1], {2^53}, {2^53+1}, [2^53+2, 2^63-3], {2^63-2},
 * {2^63-1 = OFFSET_MAX}, [2^63, 2^64-3], {2^64-2}, {2^64-1}. The generators only produce ranges that
 * are unions of whole cells (start = the first byte of a cell, end = the last byte of a cell), and
 * zero-length Windows ranges at the first byte of a cell. Then "two ranges share a byte" is exactly
 * "they share a cell", and "two ranges touch" is exactly "their cells are neighbours", so the model
 * never does interval arithmetic on bigints: it works on cell indexes. Any other range makes the
 * model throw (it would no longer be exact). POSIX ranges use the first 22 cells (up to OFFSET_MAX).
 * A zero-length Windows range at X (X the first byte of cell i) overlaps a range iff that range
 * holds both byte X-1 and byte X, i.e. holds cells i-1 and i (SEMANTICS-WINDOWS.md §2); at X = 0 it
 * overlaps nothing.
 *
 * # State, per file
 * - Windows: the granted records in grant order, each with its own (offset, length), never merged.
 * - POSIX and OFD: for each owner, a map cell -> type (read/write). The owner's locks are, by
 *   definition, the maximal runs of neighbouring cells of one type: merging, trimming and splitting
 *   (SEMANTICS-POSIX.md §4) fall out of writing the requested type (or nothing) into the cells.
 * - flock: owner -> its one whole-file lock.
 * - Waiters: one queue in arrival order (all families), each with the blockers last recorded for
 *   the wait-for graph and the 'fifo' bypass flag (§6: "handled as in default mode").
 *
 * # Deciding
 * - A request conflicts with a granted lock per the tables of the documents (Windows §4: exclusive
 *   conflicts with any overlapping lock, the requester's own included; POSIX §3: another owner, an
 *   overlap and a write; flock is a separate space; Windows and POSIX/OFD locks are other owners).
 * - 'fifo': a new request (and a waiter in the wake-up) also conflicts with earlier waiters treated
 *   as granted, unless its owner holds a granted lock on the file (the exemption).
 * - Wake-up: after every change, repeatedly grant the earliest waiter (arrival order) that fits
 *   now, until none fits. This is one pass in arrival order as the documents say, restarted when a
 *   grant frees bytes for an earlier waiter (a POSIX downgrade, a flock conversion, a new 'fifo'
 *   exemption), so that no waiter ever stays queued while it could be granted.
 * - Deadlocks (§6): the wait-for graph is recomputed from scratch whenever it is needed (edge A -> B
 *   when a waiting 'posix' request of A conflicts with a granted 'posix' lock of B, plus, under
 *   'fifo', earlier 'posix' waiters of B it queues behind). A new F_SETLKW fails with EDEADLK iff its
 *   owner is reachable from its blockers. After each change, a waiter whose blockers grew and whose
 *   owner is now on a cycle is re-checked; when several qualify, the documents do not say which one
 *   fails first, so the model asks `pickVictim` (the harness lets it follow the implementation's
 *   choice among the valid candidates; any other choice is reported as a mismatch).
 *
 * 'fifo' and deadlock detection meet where the documents leave room: §6 says only that "'fifo' must
 * not create deadlocks: a request whose queueing would close a cycle is handled as in default mode".
 * The model reads it literally (such a request, or a re-checked waiter, drops out of 'fifo' for good
 * and is judged on the default-mode graph), but the properties never compare the model there: under
 * 'fifo' no generator lets a classic POSIX request wait (deadlock.test.ts checks that combination by
 * invariants alone).
 *
 * # Output
 * Each call returns an outcome string ('code:N', 'reply:result|type|start|len|pid', 'pending:ID',
 * 'void', 'bool:B', or for F_GETLK a list of acceptable replies); `events` collects the waiters that
 * ended during the call, in order ('id' and outcome); `snapshot(path)` gives canonical lines
 * comparable with the implementation's `locks(path)`.
 */
import {
  EAGAIN,
  EDEADLK,
  EINTR,
  EINVAL,
  EOVERFLOW,
  ERROR_INVALID_LOCK_RANGE,
  ERROR_INVALID_PARAMETER,
  ERROR_LOCK_VIOLATION,
  ERROR_NOT_LOCKED,
  ERROR_OPERATION_ABORTED,
  F_GETLK,
  F_RDLCK,
  F_SETLK,
  F_SETLKW,
  F_UNLCK,
  F_WRLCK,
  OFFSET_MAX,
  UINT64_MAX,
} from '../src/core/codes.js';

// ---- the universe ---------------------------------------------------------------------------

const P53 = 1n << 53n;
/** First byte of each cell, ascending; cell i is [CELL_STARTS[i], CELL_STARTS[i+1] - 1]. */
export const CELL_STARTS: readonly bigint[] = [
  ...Array.from({ length: 16 }, (_, i) => BigInt(i)),
  16n,
  P53,
  P53 + 1n,
  P53 + 2n,
  OFFSET_MAX - 1n,
  OFFSET_MAX,
  OFFSET_MAX + 1n,
  UINT64_MAX - 1n,
  UINT64_MAX,
];
export const NCELLS = CELL_STARTS.length;
export function cellStart(i: number): bigint {
  return CELL_STARTS[i]!;
}
export function cellEnd(i: number): bigint {
  return i + 1 < NCELLS ? CELL_STARTS[i + 1]! - 1n : UINT64_MAX;
}
/** Cells 0 .. POSIX_CELLS-1 end at or before OFFSET_MAX. */
export const POSIX_CELLS = CELL_STARTS.indexOf(OFFSET_MAX) + 1;

export class ModelUniverseError extends Error {}

function cellStarting(x: bigint): number {
  const i = CELL_STARTS.indexOf(x);
  if (i < 0) throw new ModelUniverseError(`range start ${x} is not the first byte of a cell`);
  return i;
}
function cellEnding(x: bigint): number {
  for (let i = 0; i < NCELLS; i++) if (cellEnd(i) === x) return i;
  throw new ModelUniverseError(`range end ${x} is not the last byte of a cell`);
}

/** The bytes a lock or request covers, in cells. */
export type Footprint =
  | { readonly t: 'cells'; readonly lo: number; readonly hi: number }
  | { readonly t: 'pair'; readonly a: number; readonly b: number } // zero-length Windows range
  | { readonly t: 'none' } // zero-length at 0
  | { readonly t: 'all' }; // flock

function footprint(start: bigint, end: bigint): Footprint {
  if (end >= start) return { t: 'cells', lo: cellStarting(start), hi: cellEnding(end) };
  const i = cellStarting(start);
  return i === 0 ? { t: 'none' } : { t: 'pair', a: i - 1, b: i };
}

function cellsOf(f: Footprint): Set<number> {
  const s = new Set<number>();
  if (f.t === 'cells') for (let c = f.lo; c <= f.hi; c++) s.add(c);
  return s;
}

/** Do two footprints share bytes in the sense of the documents? */
export function fpOverlap(x: Footprint, y: Footprint): boolean {
  if (x.t === 'none' || y.t === 'none') return false;
  if (x.t === 'all' || y.t === 'all') return true;
  if (x.t === 'pair' && y.t === 'pair') return false; // two zero-length ranges never overlap
  if (x.t === 'pair') return cellsOf(y).has(x.a) && cellsOf(y).has(x.b);
  if (y.t === 'pair') return cellsOf(x).has(y.a) && cellsOf(x).has(y.b);
  const ys = cellsOf(y);
  return [...cellsOf(x)].some((c) => ys.has(c));
}

// ---- identities and decoding ----------------------------------------------------------------

/** A TypeError the model expects, naming the field. */
export class ModelTypeError extends Error {
  constructor(readonly field: string) {
    super(`TypeError naming ${field}`);
  }
}

/** Identity by value: 5 and 5n are one identity, '5' another. */
export function idKey(v: unknown): string {
  if (typeof v === 'string') return `s:${v}`;
  if (typeof v === 'bigint') return `n:${v.toString()}`;
  if (typeof v === 'number' && Number.isInteger(v)) return `n:${BigInt(v).toString()}`;
  throw new Error('not an identity');
}
/** The value of an identity key (for building requests from model state). */
export function idValue(k: string): bigint | string {
  return k.startsWith('s:') ? k.slice(2) : BigInt(k.slice(2));
}

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ModelTypeError('request');
  return v as Record<string, unknown>;
}
function ident(v: unknown, field: string): string {
  if (typeof v === 'string' || typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return idKey(v);
  throw new ModelTypeError(field);
}
function optIdent(v: unknown, field: string): string {
  return v === undefined ? 'n:0' : ident(v, field);
}
function big(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw new ModelTypeError(field);
}
function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new ModelTypeError(field);
  return v;
}
function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new ModelTypeError(field);
  return v;
}
function int(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ModelTypeError(field);
  return v;
}

const TWO64 = 1n << 64n;
/** Windows offset/length as unsigned 64-bit; null when no Windows call could carry it (87). */
function winU(v: unknown, field: string): bigint | null {
  const b = big(v, field);
  if (b < -(1n << 63n) || b > UINT64_MAX) return null;
  return b < 0n ? b + TWO64 : b;
}

function winPid(p: unknown): number {
  if (p === undefined) return 0;
  if (typeof p === 'number') return p;
  if (typeof p === 'bigint') return Number(BigInt.asIntN(32, p));
  const n = Number(p);
  return Number.isInteger(n) ? n : 0;
}

// ---- requests and locks ---------------------------------------------------------------------

export type Kind = 'windows' | 'posix' | 'ofd' | 'flock';

export interface Base {
  readonly lockType: number;
  readonly lockStart: bigint;
  readonly lockLen: bigint;
  readonly lockPid: number;
}

/** A decoded lock request (or, for granted Windows records, the record itself). */
export interface MReq {
  readonly path: string;
  readonly kind: Kind;
  readonly write: boolean;
  /** Owner key: 'w|handle|process|key', 'p|id', 'o|id', 'f|id'. */
  readonly owner: string;
  readonly start: bigint;
  /** Inclusive; a zero-length Windows range at X has end X-1. */
  readonly end: bigint;
  readonly fp: Footprint;
  /** What a listing shows. */
  readonly holderKey: string;
  readonly pid: number;
  /** 'pk=<processId key>' (Windows) or 'fh=<fileHandle key or ->'. */
  readonly extra: string;
  readonly handleKey: string;
  readonly processKey: string;
  readonly keyKey: string;
  readonly fhKey: string | null;
  readonly base: Base | null;
}

/** A granted lock as the model derives it. */
export interface GLock {
  readonly kind: Kind;
  readonly write: boolean;
  readonly owner: string;
  readonly fp: Footprint;
  readonly start: bigint;
  readonly end: bigint;
  readonly holderKey: string;
  readonly pid: number;
  readonly extra: string;
  readonly fhKey: string | null;
  readonly handleKey: string;
  readonly processKey: string;
}

interface Lockish {
  readonly kind: Kind;
  readonly write: boolean;
  readonly owner: string;
  readonly fp: Footprint;
}

/** SEMANTICS-WINDOWS.md §4 and SEMANTICS-POSIX.md §3: does request `r` conflict with lock `l`? */
export function conflict(r: Lockish, l: Lockish): boolean {
  if ((r.kind === 'flock') !== (l.kind === 'flock')) return false; // separate lock spaces
  if (!r.write && !l.write) return false;
  if (r.owner === l.owner) {
    // Only a Windows exclusive request conflicts with its own owner's locks.
    return r.kind === 'windows' && r.write && fpOverlap(r.fp, l.fp);
  }
  return fpOverlap(r.fp, l.fp);
}

interface MWaiter {
  readonly id: number;
  readonly req: MReq;
  recorded: Set<string>;
  bypass: boolean;
}

interface PosixOwner {
  readonly kind: 'posix' | 'ofd';
  /** cell -> true (write) / false (read) / undefined (not held). */
  readonly cells: (boolean | undefined)[];
  info: { holderKey: string; pid: number; extra: string; fhKey: string | null };
}

class MFile {
  readonly win: MReq[] = [];
  readonly posix = new Map<string, PosixOwner>();
  readonly flocks = new Map<string, MReq>();
  waiters: MWaiter[] = [];
  constructor(readonly path: string) {}
}

export type Policy = 'default' | 'fifo';

export interface ModelEvent {
  readonly id: number;
  readonly out: string;
  /**
   * A grant after which an earlier waiter may fit although it did not before: it freed bytes (a
   * POSIX downgrade, a flock conversion) or gave its owner the 'fifo' exemption.
   */
  readonly restart: boolean;
}

export function replyOut(result: number, lockType: number, lockStart: bigint, lockLen: bigint, lockPid: number): string {
  return `reply:${result}|${lockType}|${lockStart}|${lockLen}|${lockPid}`;
}
function echo(base: Base, result: number): string {
  return replyOut(result, base.lockType, base.lockStart, base.lockLen, base.lockPid);
}
function posixLen(start: bigint, end: bigint): bigint {
  return end === OFFSET_MAX ? 0n : end - start + 1n;
}

/** How F_GETLK shows a granted lock (SEMANTICS-POSIX.md §5); a zero-length Windows lock at X as [X-1, X]. */
export function getlkView(l: { kind: Kind; write: boolean; start: bigint; end: bigint; pid: number }): string {
  const type = l.write ? F_WRLCK : F_RDLCK;
  if (l.kind === 'flock') return replyOut(0, type, 0n, 0n, l.pid);
  let s = l.start;
  let e = l.end > OFFSET_MAX ? OFFSET_MAX : l.end;
  if (l.end < l.start) {
    s = l.start - 1n;
    e = l.start;
  }
  return replyOut(0, type, s, posixLen(s, e), l.pid);
}

export class RefModel {
  private readonly files = new Map<string, MFile>();
  private nextId = 0;
  /** Waiters that ended during the current call, in order. */
  events: ModelEvent[] = [];
  /** Chooses which of several waiters on a cycle fails first (see the header). */
  pickVictim: (candidates: readonly number[]) => number = (c) => c[0]!;
  /** Requests of every waiter ever queued, by id. */
  readonly requests: MReq[] = [];

  constructor(readonly policy: Policy) {}

  private file(path: string): MFile {
    let f = this.files.get(path);
    if (f === undefined) {
      f = new MFile(path);
      this.files.set(path, f);
    }
    return f;
  }

  // ---- decoding -------------------------------------------------------------------------------

  /** lockFile input -> request, or the immediate code. Throws ModelTypeError. */
  decodeLockFile(input: unknown): { req: MReq; failImmediately: boolean } | number {
    const o = obj(input);
    const path = str(o.fileName, 'fileName');
    const write = bool(o.exclusiveLock, 'exclusiveLock');
    const failImmediately = bool(o.failImmediately, 'failImmediately');
    const hk = ident(o.handle, 'handle');
    const pk = optIdent(o.processId, 'processId');
    const kk = optIdent(o.key, 'key');
    const off = winU(o.byteOffset, 'byteOffset');
    const len = winU(o.length, 'length');
    if (off === null || len === null) return ERROR_INVALID_PARAMETER;
    if (len !== 0n && off + len - 1n > UINT64_MAX) return ERROR_INVALID_LOCK_RANGE;
    const end = off + len - 1n;
    const req: MReq = {
      path,
      kind: 'windows',
      write,
      owner: `w|${hk}|${pk}|${kk}`,
      start: off,
      end,
      fp: footprint(off, end),
      holderKey: hk,
      pid: winPid(o.processId),
      extra: `pk=${pk}`,
      handleKey: hk,
      processKey: pk,
      keyKey: kk,
      fhKey: null,
      base: null,
    };
    return { req, failImmediately };
  }

  /** lock input -> request and command, or the immediate reply. Throws ModelTypeError. */
  decodeLock(input: unknown): { req: MReq; cmd: number; lockType: number } | string {
    const o = obj(input);
    const path = str(o.path, 'path');
    const lockType = int(o.lockType, 'lockType');
    const cmd = int(o.cmd, 'cmd');
    const ok = ident(o.lockOwner, 'lockOwner');
    const lockPid = o.lockPid === undefined ? 0 : int(o.lockPid, 'lockPid');
    const kind = o.kind ?? 'posix';
    if (kind !== 'posix' && kind !== 'ofd' && kind !== 'flock') throw new ModelTypeError('kind');
    const fh = o.fileHandle === undefined ? null : ident(o.fileHandle, 'fileHandle');
    const flock = kind === 'flock';
    const lockStart = flock && o.lockStart === undefined ? 0n : big(o.lockStart, 'lockStart');
    const lockLen = flock && o.lockLen === undefined ? 0n : big(o.lockLen, 'lockLen');
    const base: Base = { lockType, lockStart, lockLen, lockPid };
    if (![F_RDLCK, F_WRLCK, F_UNLCK].includes(lockType) || ![F_GETLK, F_SETLK, F_SETLKW].includes(cmd)) return echo(base, -EINVAL);
    let start: bigint;
    let end: bigint;
    if (flock) {
      start = 0n;
      end = OFFSET_MAX;
    } else {
      // SEMANTICS-POSIX.md §1
      if (lockStart < 0n) return echo(base, -EINVAL);
      if (lockStart > OFFSET_MAX) return echo(base, -EOVERFLOW);
      if (lockLen > 0n) {
        start = lockStart;
        end = lockStart + lockLen - 1n;
        if (end > OFFSET_MAX) return echo(base, -EOVERFLOW);
      } else if (lockLen === 0n) {
        start = lockStart;
        end = OFFSET_MAX;
      } else {
        start = lockStart + lockLen;
        end = lockStart - 1n;
        if (start < 0n) return echo(base, -EINVAL);
      }
    }
    const req: MReq = {
      path,
      kind,
      write: lockType === F_WRLCK,
      owner: `${kind[0]}|${ok}`,
      start,
      end,
      fp: flock ? { t: 'all' } : footprint(start, end),
      holderKey: ok,
      pid: kind === 'ofd' ? -1 : lockPid,
      extra: `fh=${fh ?? '-'}`,
      handleKey: '',
      processKey: '',
      keyKey: '',
      fhKey: fh,
      base,
    };
    return { req, cmd, lockType };
  }

  // ---- derived state --------------------------------------------------------------------------

  /** Every granted lock of the file (both spaces). */
  granted(f: MFile): GLock[] {
    const out: GLock[] = [];
    for (const r of f.win) out.push(r);
    for (const [owner, po] of f.posix) {
      let c = 0;
      while (c < NCELLS) {
        const t = po.cells[c];
        if (t === undefined) {
          c++;
          continue;
        }
        let e = c;
        while (e + 1 < NCELLS && po.cells[e + 1] === t) e++;
        out.push({
          kind: po.kind,
          write: t,
          owner,
          fp: { t: 'cells', lo: c, hi: e },
          start: cellStart(c),
          end: cellEnd(e),
          ...po.info,
          handleKey: '',
          processKey: '',
        });
        c = e + 1;
      }
    }
    for (const l of f.flocks.values()) out.push(l);
    return out;
  }

  private holds(f: MFile, owner: string): boolean {
    return f.win.some((r) => r.owner === owner) || f.posix.has(owner) || f.flocks.has(owner);
  }

  private grantedConflict(f: MFile, r: Lockish): boolean {
    const m = this.mergedRun(f, r);
    return this.granted(f).some((l) => conflict(r, l) || (m !== r && conflict(m, l)));
  }

  /**
   * A POSIX/OFD set as the lock it would leave: the request widened over its owner's touching
   * same-type cells. A zero-length Windows lock at the junction blocks that lock though it blocks
   * neither part, and granting it would break "no two conflicting granted locks" (ARCHITECTURE.md
   * decisions), so the set is refused.
   */
  private mergedRun(f: MFile, r: Lockish): Lockish {
    if ((r.kind !== 'posix' && r.kind !== 'ofd') || r.fp.t !== 'cells') return r;
    const po = f.posix.get(r.owner);
    if (po === undefined) return r;
    let lo = r.fp.lo;
    let hi = r.fp.hi;
    while (lo > 0 && po.cells[lo - 1] === r.write) lo--;
    while (hi + 1 < NCELLS && po.cells[hi + 1] === r.write) hi++;
    return lo === r.fp.lo && hi === r.fp.hi ? r : { ...r, fp: { t: 'cells', lo, hi } };
  }

  /** 'fifo': a request behind the first `upto` waiters of the file. */
  private fifoBlocked(f: MFile, r: MReq, upto: number): boolean {
    if (this.policy !== 'fifo' || this.holds(f, r.owner)) return false;
    return f.waiters.slice(0, upto).some((w) => conflict(r, w.req));
  }

  /** The owners a 'posix' request waits for (its edges in the wait-for graph). */
  private blockers(f: MFile, r: MReq, upto: number, grantedOnly: boolean): Set<string> {
    const s = new Set<string>();
    for (const l of this.granted(f)) if (l.kind === 'posix' && conflict(r, l)) s.add(l.owner);
    if (this.policy === 'fifo' && !grantedOnly && !this.holds(f, r.owner)) {
      for (const w of f.waiters.slice(0, upto)) {
        if (w.req.kind === 'posix' && w.req.owner !== r.owner && conflict(r, w.req)) s.add(w.req.owner);
      }
    }
    return s;
  }

  private waiterBlockers(f: MFile, w: MWaiter): Set<string> {
    return this.blockers(f, w.req, f.waiters.indexOf(w), w.bypass);
  }

  /**
   * The wait-for graph, computed from the current state of every file. With `hardOnly`, only the
   * edges to granted locks: the graph of the default mode.
   */
  graph(hardOnly = false): Map<string, Set<string>> {
    const g = new Map<string, Set<string>>();
    for (const f of this.files.values()) {
      for (const w of f.waiters) {
        if (w.req.kind !== 'posix') continue;
        const b = hardOnly ? this.blockers(f, w.req, 0, true) : this.waiterBlockers(f, w);
        let s = g.get(w.req.owner);
        if (s === undefined) g.set(w.req.owner, (s = new Set()));
        for (const x of b) s.add(x);
      }
    }
    return g;
  }

  /** Is `owner` reachable from `from` in the current graph? */
  private closes(owner: string, from: Iterable<string>, hardOnly = false): boolean {
    const g = this.graph(hardOnly);
    const seen = new Set<string>();
    const stack = [...from];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n === owner) return true;
      if (seen.has(n)) continue;
      seen.add(n);
      for (const m of g.get(n) ?? []) stack.push(m);
    }
    return false;
  }

  // ---- changing state -------------------------------------------------------------------------

  private emit(w: MWaiter, result: number, restart = false): void {
    const out = w.req.base === null ? `code:${result}` : echo(w.req.base, result);
    this.events.push({ id: w.id, out, restart });
  }

  private remove(f: MFile, w: MWaiter): void {
    f.waiters = f.waiters.filter((x) => x !== w);
  }

  /**
   * Grants a request that fits; returns whether it may let an earlier waiter in: a downgrade or
   * flock conversion frees bytes, and any type change (an upgrade too) splits the owner's lock,
   * which can free the junction a zero-length Windows lock waits on.
   */
  private grant(f: MFile, r: MReq): boolean {
    if (r.kind === 'windows') {
      f.win.push(r);
      return false;
    }
    if (r.kind === 'flock') {
      const old = f.flocks.get(r.owner);
      f.flocks.set(r.owner, r);
      return old?.write === true && !r.write;
    }
    let po = f.posix.get(r.owner);
    if (po === undefined) {
      po = { kind: r.kind, cells: new Array<boolean | undefined>(NCELLS).fill(undefined), info: { holderKey: '', pid: 0, extra: '', fhKey: null } };
      f.posix.set(r.owner, po);
    }
    let freed = false;
    for (const c of cellsOf(r.fp)) {
      if (po.cells[c] !== undefined && po.cells[c] !== r.write) freed = true;
      po.cells[c] = r.write;
    }
    po.info = { holderKey: r.holderKey, pid: r.pid, extra: r.extra, fhKey: r.fhKey };
    return freed;
  }

  private unlockCells(f: MFile, owner: string, fp: Footprint): void {
    const po = f.posix.get(owner);
    if (po === undefined) return;
    for (const c of cellsOf(fp)) po.cells[c] = undefined;
    if (po.cells.every((t) => t === undefined)) f.posix.delete(owner);
  }

  private enqueue(f: MFile, r: MReq, recorded: Set<string>, bypass: boolean): string {
    const w: MWaiter = { id: this.nextId++, req: r, recorded, bypass };
    f.waiters.push(w);
    this.requests[w.id] = r;
    return `pending:${w.id}`;
  }

  /** Grants the earliest waiter that fits, until none does. */
  private wake(f: MFile): void {
    for (;;) {
      const w = f.waiters.find((x, i) => {
        if (this.grantedConflict(f, x.req)) return false;
        return x.bypass || !this.fifoBlocked(f, x.req, i);
      });
      if (w === undefined) return;
      this.remove(f, w);
      const exempted = this.policy === 'fifo' && !this.holds(f, w.req.owner);
      const freed = this.grant(f, w.req);
      this.emit(w, 0, freed || exempted);
    }
  }

  /**
   * The deadlock re-check (SEMANTICS-POSIX.md §6): a waiter whose blockers grew and whose owner is
   * now on a cycle fails with EDEADLK (under 'fifo', first falls back to granted-only edges).
   * Returns whether anything changed.
   */
  private recheck(f: MFile): boolean {
    let changed = false;
    for (;;) {
      const cands = f.waiters.filter((w) => {
        if (w.req.kind !== 'posix') return false;
        const b = this.waiterBlockers(f, w);
        const grew = [...b].some((o) => !w.recorded.has(o));
        return grew && this.closes(w.req.owner, b);
      });
      if (cands.length === 0) break;
      const id = this.pickVictim(cands.map((w) => w.id));
      const w = cands.find((x) => x.id === id) ?? cands[0]!;
      changed = true;
      if (this.policy === 'fifo' && !w.bypass && !this.closes(w.req.owner, this.blockers(f, w.req, 0, true), true)) {
        w.bypass = true;
        continue;
      }
      this.remove(f, w);
      this.emit(w, -EDEADLK);
    }
    for (const w of f.waiters) if (w.req.kind === 'posix') w.recorded = this.waiterBlockers(f, w);
    return changed;
  }

  /** After any change: wake-up and re-check until nothing moves. */
  private settle(f: MFile): void {
    do this.wake(f);
    while (this.recheck(f));
  }

  /** A new request that fits is granted; then the waiters settle. */
  private grantNew(f: MFile, r: MReq): void {
    this.grant(f, r);
    this.recheck(f);
    this.settle(f);
  }

  // ---- the calls ------------------------------------------------------------------------------

  lockFile(input: unknown): string {
    const d = this.decodeLockFile(input);
    if (typeof d === 'number') return `code:${d}`;
    const f = this.file(d.req.path);
    if (this.grantedConflict(f, d.req) || this.fifoBlocked(f, d.req, f.waiters.length)) {
      if (d.failImmediately) return `code:${ERROR_LOCK_VIOLATION}`;
      return this.enqueue(f, d.req, new Set(), false);
    }
    this.grantNew(f, d.req);
    return 'code:0';
  }

  unlockFile(input: unknown): string {
    const o = obj(input);
    const path = str(o.fileName, 'fileName');
    const hk = ident(o.handle, 'handle');
    const pk = optIdent(o.processId, 'processId');
    const kk = optIdent(o.key, 'key');
    const off = winU(o.byteOffset, 'byteOffset');
    const len = winU(o.length, 'length');
    const f = this.files.get(path);
    if (off === UINT64_MAX && len === UINT64_MAX) {
      // Unlock-all of (handle, processId), any key (§10).
      if (f !== undefined) {
        const keep = f.win.filter((r) => !(r.handleKey === hk && r.processKey === pk));
        f.win.length = 0;
        f.win.push(...keep);
        this.settle(f);
      }
      return 'code:0';
    }
    if (off === null || len === null) return `code:${ERROR_INVALID_PARAMETER}`;
    if (len !== 0n && off + len - 1n > UINT64_MAX) return `code:${ERROR_INVALID_LOCK_RANGE}`;
    if (f === undefined) return `code:${ERROR_NOT_LOCKED}`;
    const owner = `w|${hk}|${pk}|${kk}`;
    const match = f.win.filter((r) => r.owner === owner && r.start === off && r.end === off + len - 1n);
    if (match.length === 0) return `code:${ERROR_NOT_LOCKED}`;
    const gone = match.find((r) => r.write) ?? match[0]!;
    f.win.splice(f.win.indexOf(gone), 1);
    this.settle(f);
    return 'code:0';
  }

  closeHandle(input: unknown): string {
    const o = obj(input);
    const path = str(o.fileName, 'fileName');
    const hk = ident(o.handle, 'handle');
    const f = this.files.get(path);
    if (f === undefined) return 'void';
    for (const w of [...f.waiters]) {
      if (w.req.kind === 'windows' && w.req.handleKey === hk) {
        this.remove(f, w);
        this.emit(w, ERROR_NOT_LOCKED);
      }
    }
    const keep = f.win.filter((r) => r.handleKey !== hk);
    f.win.length = 0;
    f.win.push(...keep);
    this.settle(f);
    return 'void';
  }

  checkIo(input: unknown): string {
    const o = obj(input);
    const path = str(o.fileName, 'fileName');
    const hk = ident(o.handle, 'handle');
    const pk = optIdent(o.processId, 'processId');
    const write = bool(o.write, 'write');
    const off = winU(o.byteOffset, 'byteOffset');
    const len = winU(o.length, 'length');
    if (off === null || len === null) return `code:${ERROR_INVALID_PARAMETER}`;
    if (len !== 0n && off + len - 1n > UINT64_MAX) return `code:${ERROR_INVALID_LOCK_RANGE}`;
    if (len === 0n) return 'code:0';
    const io = footprint(off, off + len - 1n);
    const owner = `w|${hk}|${pk}|n:0`; // ReadFile/WriteFile carry no key
    const f = this.files.get(path);
    for (const r of f?.win ?? []) {
      if (!fpOverlap(io, r.fp)) continue;
      if (r.write ? r.owner !== owner : write) return `code:${ERROR_LOCK_VIOLATION}`;
    }
    return 'code:0';
  }

  /** fcntl/OFD/flock. F_GETLK returns the list of acceptable replies. */
  lock(input: unknown): string | string[] {
    const d = this.decodeLock(input);
    if (typeof d === 'string') return d;
    const { req, cmd, lockType } = d;
    const base = req.base!;
    if (cmd === F_GETLK) return this.getlk(req, lockType);
    const f = this.file(req.path);
    if (lockType === F_UNLCK) {
      if (req.kind === 'flock') f.flocks.delete(req.owner);
      else this.unlockCells(f, req.owner, req.fp);
      this.settle(f);
      return echo(base, 0);
    }
    if (req.kind === 'flock') {
      const held = f.flocks.get(req.owner);
      if (held !== undefined) {
        if (held.write === req.write) return echo(base, 0);
        // Not atomic: the old lock goes first (§9), the new one is decided in the same step, then
        // the waiters the removal woke try again; one that must wait queues behind them.
        f.flocks.delete(req.owner);
        const fits = !this.grantedConflict(f, req) && !this.fifoBlocked(f, req, f.waiters.length);
        if (fits) {
          this.grantNew(f, req);
          return echo(base, 0);
        }
        this.settle(f);
        if (cmd === F_SETLK) return echo(base, -EAGAIN);
      }
    }
    const grantedConflict = this.grantedConflict(f, req);
    if (!grantedConflict && !this.fifoBlocked(f, req, f.waiters.length)) {
      this.grantNew(f, req);
      return echo(base, 0);
    }
    if (cmd === F_SETLK) return echo(base, -EAGAIN);
    let recorded = new Set<string>();
    let bypass = false;
    if (req.kind === 'posix') {
      recorded = this.blockers(f, req, f.waiters.length, false);
      if (this.closes(req.owner, recorded)) {
        if (this.policy !== 'fifo') return echo(base, -EDEADLK);
        // 'fifo' must not create deadlocks: handled as in default mode.
        if (!grantedConflict) {
          this.grantNew(f, req);
          return echo(base, 0);
        }
        recorded = this.blockers(f, req, 0, true);
        if (this.closes(req.owner, recorded, true)) return echo(base, -EDEADLK);
        bypass = true;
      }
    }
    return this.enqueue(f, req, recorded, bypass);
  }

  private getlk(req: MReq, lockType: number): string[] {
    const base = req.base!;
    const none = [replyOut(0, F_UNLCK, base.lockStart, base.lockLen, base.lockPid)];
    const f = this.files.get(req.path);
    const all = f === undefined ? [] : this.granted(f);
    if (lockType === F_UNLCK) {
      if (req.kind !== 'ofd') return [echo(base, -EINVAL)];
      // API.md: F_GETLK with F_UNLCK for 'ofd' reports the caller's own overlapping lock.
      const own = all.filter((l) => l.owner === req.owner && fpOverlap(req.fp, l.fp));
      return pickLowest(own, none);
    }
    const hits = all.filter((l) => conflict(req, l));
    const replies = pickLowest(hits, none);
    // SEMANTICS-POSIX.md §5 says flock has no test operation (-EINVAL); API.md says F_GETLK with
    // kind 'flock' reports a conflicting flock holder. The documents disagree: accept both.
    return req.kind === 'flock' ? [...replies, echo(base, -EINVAL)] : replies;
  }

  flush(input: unknown): string {
    const o = obj(input);
    const path = str(o.path, 'path');
    const owner = `p|${ident(o.lockOwner, 'lockOwner')}`;
    const f = this.files.get(path);
    if (f === undefined) return 'void';
    f.posix.delete(owner); // granted locks only; its waiters keep waiting
    this.settle(f);
    return 'void';
  }

  release(input: unknown): string {
    const o = obj(input);
    const path = str(o.path, 'path');
    const fh = ident(o.fileHandle, 'fileHandle');
    const flockOwner = o.lockOwner === undefined ? null : `f|${ident(o.lockOwner, 'lockOwner')}`;
    const f = this.files.get(path);
    if (f === undefined) return 'void';
    for (const w of [...f.waiters]) {
      if (w.req.kind !== 'windows' && w.req.fhKey === fh) {
        this.remove(f, w);
        this.emit(w, -EINTR);
      }
    }
    for (const [owner, po] of [...f.posix]) if (po.info.fhKey === fh) f.posix.delete(owner);
    for (const [owner, l] of [...f.flocks]) if (l.fhKey === fh || owner === flockOwner) f.flocks.delete(owner);
    this.settle(f);
    return 'void';
  }

  /** Ends waiter `id` (signal or timeout); 'bool:false' when it had already ended. */
  cancel(id: number, reason: 'abort' | 'timeout'): string {
    for (const f of this.files.values()) {
      const w = f.waiters.find((x) => x.id === id);
      if (w === undefined) continue;
      this.remove(f, w);
      const win = w.req.kind === 'windows';
      this.emit(w, reason === 'abort' ? (win ? ERROR_OPERATION_ABORTED : -EINTR) : win ? ERROR_LOCK_VIOLATION : -EAGAIN);
      this.settle(f);
      return 'bool:true';
    }
    return 'bool:false';
  }

  // ---- observing ------------------------------------------------------------------------------

  /** Canonical lines: granted locks sorted, then waiters in arrival order. */
  snapshot(path: string): string[] {
    const f = this.files.get(path);
    if (f === undefined) return [];
    const g = this.granted(f)
      .map((l) => line(l.kind, l.write, l.start, l.end, l.holderKey, l.pid, 'granted', l.extra))
      .sort();
    const w = f.waiters.map((x) => line(x.req.kind, x.req.write, x.req.start, x.req.end, x.req.holderKey, x.req.pid, 'waiting', x.req.extra));
    return [...g, ...w];
  }

  /** The granted Windows records of a file, in grant order. */
  winRecords(path: string): readonly MReq[] {
    return this.files.get(path)?.win ?? [];
  }

  /** Ids of the waiters still queued on a file, in arrival order. */
  waiting(path: string): number[] {
    return this.files.get(path)?.waiters.map((w) => w.id) ?? [];
  }
}

function pickLowest(locks: GLock[], none: string[]): string[] {
  if (locks.length === 0) return none;
  let min = locks[0]!.start;
  for (const l of locks) if (l.start < min) min = l.start;
  return locks.filter((l) => l.start === min).map(getlkView);
}

/** A canonical listing line, shared by the model and the harness's reading of `locks()`. */
export function line(kind: Kind, write: boolean, start: bigint, end: bigint, holderKey: string, pid: number, state: string, extra: string): string {
  const type = kind === 'windows' ? (write ? 'exclusive' : 'shared') : write ? 'write' : 'read';
  return `${kind}|${type}|${start}|${end}|${holderKey}|${pid}|${state}|${extra}`;
}

export { EDEADLK, F_GETLK, F_SETLK, F_SETLKW, F_RDLCK, F_WRLCK, F_UNLCK, OFFSET_MAX, UINT64_MAX };
