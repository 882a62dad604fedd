/**
 * What one client knows: it turns each operation it runs, with the stamps taken just before the
 * call and just after the answer, into oracle events. Targets differ only in how they run the
 * call; the knowledge is the same everywhere.
 *
 * The rule that makes the oracle sound: a lock is logged as held from the moment its grant was
 * learned (the stamp after the call) until the moment a call that may end it is about to be issued
 * (the stamp before). So before a set, an unlock or a close, every lock of the owner the call may
 * change is logged as released; afterwards what is left (pieces outside the range, or everything
 * when the call failed) is logged as granted again. Observed intervals are then always inside the
 * true ones.
 *
 * Knowledge per client: classic POSIX and OFD locks as non-overlapping pieces per file (a set
 * replaces what it covers, an unlock cuts it out, as fs/locks.c does for one owner); the flock lock
 * per file; Windows records per file, each its own, unlocked exactly, exclusive first.
 */
import type { Claim, GetlkAnswer, LockKind, LockRecord, LogEvent, Outcome, RequestRecord } from './oracle.js';
import { F_UNLCK, F_WRLCK, type Op, type Role } from './workloads.js';

/** How a target names files and which pids its F_GETLK reports. */
export interface Naming {
  /** The lock key of file i (the API path, or the mount's "fuse:<dev>:<ino>"). */
  file(i: number): string;
  /** The pid F_GETLK reports for a client's classic locks, for its OFD locks, for its Windows locks. */
  classicPids(client: number): number[];
  ofdPids(client: number): number[];
  windowsPids(client: number): number[];
  /** close(2) of any descriptor drops the process's classic locks on that file (real processes). */
  closeDropsClassic: boolean;
  /**
   * The kind the oracle gives OFD locks (default 'ofd'): 'posix' for processes on a FUSE mount,
   * whose every byte-range owner reaches the server as a POSIX owner with deadlock detection.
   */
  ofdKind?: LockKind;
  /**
   * Through a FUSE mount: how long (ns) after close(2) returns the OFD and flock locks of the
   * descriptor may still be listed. They go only when the kernel's RELEASE is answered, and the
   * kernel sends it in the background (fs/fuse/file.c fuse_file_release; only fuseblk waits), so
   * close returns first; classic locks go at FLUSH, which close waits for. The locks stop counting
   * as held at the close (the process can no longer count on them) but F_GETLK may name them and
   * EDEADLK count them until this long after it. Undefined: close answers after the release.
   */
  releaseListedNs?: number;
}

/** Lock and request ids, unique within a run. */
export class Ids {
  req = 0;
  lock = 0;
}

const EINTR = 4;
const EAGAIN = 11;
const EDEADLK = 35;
const ERROR_LOCK_VIOLATION = 33;
const ERROR_OPERATION_ABORTED = 995;

export function outcomeOf(result: number): Outcome {
  if (result === 0) return 'ok';
  if (result === -EAGAIN || result === ERROR_LOCK_VIOLATION) return 'busy';
  if (result === -EDEADLK) return 'deadlock';
  if (result === -EINTR || result === ERROR_OPERATION_ABORTED) return 'interrupted';
  return 'error';
}

type Pieces = LockRecord[];

/** Pieces overlapping [start, end], by binary search on the sorted, non-overlapping list. */
function overlapping(ps: Pieces, start: number, end: number): [number, number] {
  let lo = 0;
  let hi = ps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ps[mid]!.end < start) lo = mid + 1;
    else hi = mid;
  }
  let j = lo;
  while (j < ps.length && ps[j]!.start <= end) j++;
  return [lo, j];
}

export class ClientObserver {
  private readonly classic = new Map<number, Pieces>();
  private readonly ofd = new Map<number, Pieces>();
  private readonly flocks = new Map<number, LockRecord>();
  private readonly windows = new Map<number, Map<string, LockRecord[]>>();
  private current: { req: RequestRecord; op: Op; released: LockRecord[] } | undefined;
  /** Of the locks the close in begin() ends: those of the descriptor itself (OFD, flock), gone only at RELEASE. */
  private readonly goAtRelease = new Set<LockRecord>();
  /**
   * Prefixed to every owner key: the node a client runs on, where identities belong to their
   * node (a shared lock space: lockOwner 7 on two nodes is two owners).
   */
  ownerPrefix = '';

  constructor(
    readonly client: number,
    private readonly naming: Naming,
    private readonly ids: Ids,
    private readonly emit: (e: LogEvent) => void,
  ) {}

  /** Call just before issuing `op`, with the stamp taken then. */
  begin(op: Op, t: number): void {
    if (this.current !== undefined) throw new Error(`client ${this.client}: begin before the previous operation ended`);
    const req = this.request(op);
    const released = this.releasedBy(op, req);
    const lag = this.naming.releaseListedNs;
    for (const l of released) {
      const late = lag !== undefined && this.goAtRelease.has(l);
      this.emit({ t, ev: 'release', lock: l.id, req: req.id, ...(late ? { listedFor: lag } : {}) });
    }
    this.goAtRelease.clear();
    this.current = { req, op, released };
    this.emit({ t, ev: 'request', req });
  }

  /** Call just after the answer, with the stamp taken then. */
  end(t: number, result: number, answer?: GetlkAnswer): Outcome {
    const cur = this.current;
    if (cur === undefined) throw new Error(`client ${this.client}: end without begin`);
    this.current = undefined;
    const outcome = outcomeOf(result);
    const { op, req, released } = cur;
    const grants: LockRecord[] = [];
    const grant = (c: Claim) => {
      const l: LockRecord = { file: c.file, owner: c.owner, kind: c.kind, write: c.write, start: c.start, end: c.end, pids: c.pids, id: ++this.ids.lock, req: req.id };
      grants.push(l);
      return l;
    };
    if (op.op === 'lock') {
      const ps = this.pieces(op.role, op.file);
      const keep = outcome === 'ok' ? released.flatMap((l) => outside(l, req.start, req.end)) : released;
      for (const l of keep) insert(ps, grant(l));
      if (outcome === 'ok' && op.type !== F_UNLCK) insert(ps, grant(req));
    } else if (op.op === 'flock') {
      if (outcome === 'ok' && op.type !== F_UNLCK) this.flocks.set(op.file, grant(req));
    } else if (op.op === 'winlock' && outcome === 'ok') {
      const key = `${req.start}:${req.end}`;
      const m = this.winRecords(op.file);
      m.set(key, [...(m.get(key) ?? []), grant(req)]);
    }
    for (const l of grants) this.emit({ t, ev: 'grant', lock: l });
    this.emit({ t, ev: 'reply', req: req.id, result, outcome, ...(answer === undefined ? {} : { answer }) });
    return outcome;
  }

  /**
   * Every lock the client knows it holds now (between operations): its classic and OFD locks with
   * adjacent pieces of one type joined, as a lock table keeps them (an owner's same-type ranges
   * never touch), its flock locks and its Windows records (never joined).
   */
  held(): LockRecord[] {
    const out: LockRecord[] = [];
    for (const m of [this.classic, this.ofd]) {
      for (const ps of m.values()) {
        let run: LockRecord | undefined;
        for (const l of ps) {
          if (run !== undefined && run.write === l.write && run.end + 1 === l.start) run = { ...run, end: l.end };
          else {
            if (run !== undefined) out.push(run);
            run = l;
          }
        }
        if (run !== undefined) out.push(run);
      }
    }
    out.push(...this.flocks.values());
    for (const m of this.windows.values()) for (const rs of m.values()) out.push(...rs);
    return out;
  }

  /** Drops the operation in flight without an answer (its node died; the log abandons its request). */
  abandon(): void {
    this.current = undefined;
  }

  /**
   * Drops everything the client knows it holds, without logging releases: its locks went with its
   * node's session (the log says so with revoke events). Call between operations only.
   */
  forget(): void {
    if (this.current !== undefined) throw new Error(`client ${this.client}: forget during an operation`);
    this.classic.clear();
    this.ofd.clear();
    this.flocks.clear();
    this.windows.clear();
  }

  private pieces(role: 'posix' | 'ofd', file: number): Pieces {
    const m = role === 'posix' ? this.classic : this.ofd;
    let ps = m.get(file);
    if (ps === undefined) m.set(file, (ps = []));
    return ps;
  }

  private winRecords(file: number): Map<string, LockRecord[]> {
    let m = this.windows.get(file);
    if (m === undefined) this.windows.set(file, (m = new Map()));
    return m;
  }

  private owner(role: Role, file: number): string {
    return this.ownerPrefix + (role === 'posix' ? `p${this.client}` : `${role[0]}${this.client}.${file}`);
  }

  private request(op: Op): RequestRecord {
    const c = this.client;
    const kind: LockKind = op.role === 'ofd' ? (this.naming.ofdKind ?? 'ofd') : op.role;
    const pids = op.role === 'posix' ? this.naming.classicPids(c) : op.role === 'ofd' ? this.naming.ofdPids(c) : op.role === 'windows' ? this.naming.windowsPids(c) : [];
    let start = 0;
    let end = Infinity;
    let write = false;
    let what: RequestRecord['what'] = 'close';
    let wait = false;
    if (op.op === 'lock' || op.op === 'getlk') {
      start = op.start;
      end = op.len === 0 ? Infinity : op.start + op.len - 1;
      write = op.type === F_WRLCK;
      what = op.op === 'getlk' ? 'getlk' : op.type === F_UNLCK ? 'unlock' : 'lock';
      wait = op.op === 'lock' && op.wait;
    } else if (op.op === 'flock') {
      write = op.type === F_WRLCK;
      what = op.type === F_UNLCK ? 'unlock' : 'lock';
      wait = op.wait;
    } else if (op.op === 'winlock' || op.op === 'winunlock') {
      start = op.start;
      end = op.start + op.len - 1;
      write = op.op === 'winlock' && op.exclusive;
      what = op.op === 'winlock' ? 'lock' : 'unlock';
      wait = op.op === 'winlock' && op.wait;
    }
    return { id: ++this.ids.req, client: c, file: this.naming.file(op.file), owner: this.owner(op.role, op.file), kind, pids, write, start, end, what, wait, text: text(op) };
  }

  /** The locks `op` may end, removed from the client's knowledge. */
  private releasedBy(op: Op, req: RequestRecord): LockRecord[] {
    const take = (role: 'posix' | 'ofd', start: number, end: number): LockRecord[] => {
      const ps = this.pieces(role, op.file);
      const [i, j] = overlapping(ps, start, end);
      return ps.splice(i, j - i);
    };
    const flock = (): LockRecord[] => {
      const l = this.flocks.get(op.file);
      this.flocks.delete(op.file);
      return l === undefined ? [] : [l];
    };
    const allWindows = (): LockRecord[] => {
      const m = this.winRecords(op.file);
      const all = [...m.values()].flat();
      m.clear();
      return all;
    };
    switch (op.op) {
      case 'lock':
        return take(op.role, req.start, req.end);
      case 'flock':
        return flock();
      case 'winunlock': {
        if (op.start === -1) return allWindows();
        const m = this.winRecords(op.file);
        const key = `${req.start}:${req.end}`;
        const rs = m.get(key) ?? [];
        const i = rs.findIndex((r) => r.write) >= 0 ? rs.findIndex((r) => r.write) : rs.length - 1;
        if (i < 0) return [];
        const [r] = rs.splice(i, 1);
        if (rs.length === 0) m.delete(key);
        return [r!];
      }
      case 'close': {
        const classic = op.role === 'posix' || this.naming.closeDropsClassic ? take('posix', 0, Infinity) : [];
        const own = op.role === 'ofd' ? take('ofd', 0, Infinity) : op.role === 'flock' ? flock() : [];
        for (const l of own) this.goAtRelease.add(l);
        if (op.role === 'ofd' || op.role === 'flock') return [...classic, ...own];
        if (op.role === 'windows') return allWindows();
        return classic;
      }
      case 'getlk':
      case 'winlock':
        return [];
    }
  }
}

/** The parts of `l` outside [start, end]. */
function outside(l: LockRecord, start: number, end: number): LockRecord[] {
  const out: LockRecord[] = [];
  if (l.start < start) out.push({ ...l, end: start - 1 });
  if (l.end > end) out.push({ ...l, start: end + 1 });
  return out;
}

function insert(ps: Pieces, l: LockRecord): void {
  const [i] = overlapping(ps, l.start, l.end);
  ps.splice(i, 0, l);
}

const TYPE = ['F_RDLCK', 'F_WRLCK', 'F_UNLCK'];
const FLOCK = ['LOCK_SH', 'LOCK_EX', 'LOCK_UN'];

function limits(op: { timeoutMs?: number; cancelMs?: number }): string {
  return op.timeoutMs !== undefined ? ` timeout ${op.timeoutMs} ms` : op.cancelMs !== undefined ? ` cancelled after ${op.cancelMs} ms` : '';
}

/** The call as a person would write it. */
export function text(op: Op): string {
  const f = `f${op.file}`;
  switch (op.op) {
    case 'lock': {
      const cmd = (op.role === 'ofd' ? 'F_OFD_' : 'F_') + (op.wait ? 'SETLKW' : 'SETLK');
      return `fcntl(${f}, ${cmd}, ${TYPE[op.type]}, ${op.start}, ${op.len})${limits(op)}`;
    }
    case 'getlk':
      return `fcntl(${f}, ${op.role === 'ofd' ? 'F_OFD_GETLK' : 'F_GETLK'}, ${TYPE[op.type]}, ${op.start}, ${op.len})`;
    case 'flock':
      return `flock(${f}, ${FLOCK[op.type]}${op.wait ? '' : '|LOCK_NB'})${limits(op)}`;
    case 'winlock':
      return `LockFileEx(${f}, ${op.exclusive ? 'exclusive' : 'shared'}, ${op.start}, ${op.len}${op.wait ? '' : ', fail immediately'})${limits(op)}`;
    case 'winunlock':
      return op.start === -1 ? `UnlockFileEx(${f}, unlock-all)` : `UnlockFileEx(${f}, ${op.start}, ${op.len})`;
    case 'close':
      return op.role === 'windows' ? `CloseHandle(${f})` : `close(${f} ${op.role} descriptor)`;
  }
}
