/**
 * Workloads: seeded, deterministic operation streams, one per client. A stream depends only on
 * (workload, seed, client index, clients, files), never on results, so the same seed replays the
 * same streams on every target.
 *
 * A client is either a POSIX process (classic fcntl locks, OFD locks and flock, one open file
 * description per file for each) or a Windows process (one handle per file). Each runs its
 * operations one after another.
 *
 * What keeps a stream from hanging a run on its own: only classic POSIX waits may go without a
 * timeout, because only they have deadlock detection (Windows, OFD and flock waits always carry a
 * timeout or a cancel), and only while the client holds no OFD lock (a cycle through an OFD owner
 * is invisible to the detection, so every member of a cycle must either be seen or time out); and a wait that the client's own locks of another owner could block (an OFD
 * lock against its own classic lock, a Windows exclusive request over its own records) is sent
 * non-blocking, since a sequential client would wait for itself. The generator knows what it asked
 * for (a superset of what it holds), which is enough to decide both.
 */
import { Rng } from './prng.js';

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

export type Role = 'posix' | 'ofd' | 'flock' | 'windows';

/** Bounds of a waiting request: `timeoutMs` (the call's own timeout) or `cancelMs` (a signal aborts it). */
export interface WaitLimits {
  timeoutMs?: number;
  cancelMs?: number;
}

export type Op =
  /** fcntl F_SETLK/F_SETLKW (or F_OFD_*): lockType F_RDLCK/F_WRLCK/F_UNLCK over [start, start+len), len 0 = to OFFSET_MAX. */
  | ({ op: 'lock'; role: 'posix' | 'ofd'; file: number; type: number; start: number; len: number; wait: boolean } & WaitLimits)
  /** fcntl F_GETLK (or F_OFD_GETLK). */
  | { op: 'getlk'; role: 'posix' | 'ofd'; file: number; type: number; start: number; len: number }
  /** flock(2): LOCK_SH (F_RDLCK), LOCK_EX (F_WRLCK), LOCK_UN (F_UNLCK); wait = without LOCK_NB. */
  | ({ op: 'flock'; role: 'flock'; file: number; type: number; wait: boolean } & WaitLimits)
  /** LockFileEx: failImmediately = !wait. */
  | ({ op: 'winlock'; role: 'windows'; file: number; exclusive: boolean; start: number; len: number; wait: boolean } & WaitLimits)
  /** UnlockFileEx of exactly (start, len); start = len = -1 is unlock-all of the handle. */
  | { op: 'winunlock'; role: 'windows'; file: number; start: number; len: number }
  /**
   * The end of an open: POSIX close(2) of that role's descriptor (API: flush for 'posix', release
   * for 'ofd' and 'flock'); Windows CloseHandle.
   */
  | { op: 'close'; role: Role; file: number };

export type Personality = 'posix' | 'windows';

interface Profile {
  /** Share of clients that are Windows processes. */
  windowsShare: number;
  /** Every client uses file 0. */
  hot: boolean;
  /** Offsets fall in [base, base + span); lengths in [1, maxLen]. */
  base: number;
  span: number;
  maxLen: number;
  writeShare: number;
  waitShare: number;
  /** Among waits: a short timeout, or a cancel after a few ms. */
  timeoutShare: number;
  cancelShare: number;
  getlkShare: number;
  flockShare: number;
  closeShare: number;
  /** POSIX clients: share of byte-range requests made as OFD locks. */
  ofdShare: number;
  /** Share of requests with length 0 (POSIX: to OFFSET_MAX; Windows: a zero-length lock). */
  zeroLenShare: number;
  /** Locks a client keeps before it releases one. */
  hold: number;
}

const BASE: Profile = {
  windowsShare: 0,
  hot: false,
  base: 0,
  span: 1 << 20,
  maxLen: 4096,
  writeShare: 0.5,
  waitShare: 0.1,
  timeoutShare: 0,
  cancelShare: 0,
  getlkShare: 0.1,
  flockShare: 0.05,
  closeShare: 0.01,
  ofdShare: 0.25,
  zeroLenShare: 0.01,
  hold: 4,
};

export interface WorkloadInfo {
  name: string;
  description: string;
}

type Shape = { kind: 'profile'; profile: Profile } | { kind: 'deadlock' } | { kind: 'many'; steady: Profile };

const SHAPES: Record<string, { description: string; shape: Shape }> = {
  uniform: { description: 'uniform random ranges over every file, mostly non-blocking', shape: { kind: 'profile', profile: { ...BASE } } },
  hot: {
    description: 'one hot file shared by every client, small ranges, heavy contention',
    shape: { kind: 'profile', profile: { ...BASE, hot: true, span: 256, maxLen: 16, waitShare: 0.3, windowsShare: 0.25 } },
  },
  many: {
    description: 'many locks on one file (100,000 held), then contention beside them and F_GETLK over them',
    shape: { kind: 'many', steady: { ...BASE, hot: true, base: 1 << 22, span: 4096, maxLen: 64, waitShare: 0.2, getlkShare: 0.3, zeroLenShare: 0 } },
  },
  rw: {
    description: 'reader/writer mix: 90% shared locks, 10% writers, waiting',
    shape: { kind: 'profile', profile: { ...BASE, span: 1024, maxLen: 128, writeShare: 0.1, waitShare: 0.6, windowsShare: 0.25 } },
  },
  blocking: {
    description: 'blocking-heavy: F_SETLKW, waiting flock and waiting LockFileEx on contended ranges',
    shape: { kind: 'profile', profile: { ...BASE, span: 512, maxLen: 64, waitShare: 0.9, windowsShare: 0.25, hold: 2 } },
  },
  deadlock: { description: 'deadlock-prone cycles: each client holds one file and waits for another (classic POSIX)', shape: { kind: 'deadlock' } },
  cancel: {
    description: 'cancel and timeout storms: waits ended by timeouts and signals after a few ms',
    shape: { kind: 'profile', profile: { ...BASE, span: 256, maxLen: 32, waitShare: 0.9, timeoutShare: 0.45, cancelShare: 0.45, windowsShare: 0.25, hold: 3 } },
  },
  mixed: {
    description: 'Windows and POSIX clients on the same files and ranges',
    shape: { kind: 'profile', profile: { ...BASE, span: 2048, maxLen: 256, waitShare: 0.3, windowsShare: 0.5, zeroLenShare: 0.05 } },
  },
  close: {
    description: 'close/flush/release storms: locks dropped by closing descriptors and handles',
    shape: { kind: 'profile', profile: { ...BASE, span: 1024, maxLen: 128, waitShare: 0.2, closeShare: 0.25, flockShare: 0.15, windowsShare: 0.25, hold: 6 } },
  },
  dense: {
    description: 'a few bytes per file shared by both families, every wait ended by a short timeout or a cancel',
    shape: {
      kind: 'profile',
      profile: { ...BASE, span: 32, maxLen: 8, waitShare: 0.45, timeoutShare: 0.75, cancelShare: 0.25, closeShare: 0.07, windowsShare: 0.375, ofdShare: 0.3, zeroLenShare: 0.03 },
    },
  },
  all: {
    description: 'a bit of everything: both families, waits, timeouts, cancels, F_GETLK, flock, closes',
    shape: {
      kind: 'profile',
      profile: { ...BASE, span: 4096, maxLen: 256, waitShare: 0.35, timeoutShare: 0.15, cancelShare: 0.15, closeShare: 0.05, windowsShare: 0.25, zeroLenShare: 0.03 },
    },
  },
};

export const WORKLOADS: WorkloadInfo[] = Object.entries(SHAPES).map(([name, w]) => ({ name, description: w.description }));

export interface StreamConfig {
  workload: string;
  seed: number;
  clients: number;
  files: number;
  /** Locks the 'many' workload takes before its steady phase (default 100,000). */
  manyLocks?: number;
}

/** One client's operations. `next()` never ends; `cleanup()` closes everything the client opened. */
export class ClientStream {
  readonly personality: Personality;
  private readonly rng: Rng;
  private readonly planned: Op[] = [];
  /** What the client asked for and has not released: a superset of what it holds. */
  private intents: { role: Exclude<Role, 'flock'>; file: number; start: number; end: number; write: boolean; len: number }[] = [];
  private readonly opened = new Set<string>();

  constructor(
    private readonly shape: Shape,
    readonly client: number,
    private readonly cfg: Required<StreamConfig>,
  ) {
    this.rng = new Rng(cfg.seed, client);
    const share = shape.kind === 'profile' ? shape.profile.windowsShare : shape.kind === 'many' ? 0.25 : 0;
    this.personality = client >= cfg.clients - Math.floor(cfg.clients * share) ? 'windows' : 'posix';
    if (shape.kind === 'many') this.planMany();
  }

  next(): Op {
    if (this.planned.length === 0) {
      if (this.shape.kind === 'deadlock') this.planCycle();
      else this.planned.push(this.fromProfile(this.shape.kind === 'many' ? this.shape.steady : this.shape.profile));
    }
    const op = this.planned.shift()!;
    this.note(op);
    return op;
  }

  /** Closes every descriptor and handle the client used, so it ends holding nothing. */
  cleanup(): Op[] {
    return [...this.opened].sort().map((k) => {
      const [role, file] = k.split(':') as [Role, string];
      return { op: 'close', role, file: Number(file) };
    });
  }

  private note(op: Op): void {
    this.opened.add(`${op.role}:${op.file}`);
    if (op.op === 'close') this.intents = this.intents.filter((i) => !(i.file === op.file && i.role === op.role));
    if (op.op === 'winunlock' && op.start === -1) this.intents = this.intents.filter((i) => !(i.file === op.file && i.role === 'windows'));
  }

  private file(p: Profile): number {
    return p.hot ? 0 : this.rng.int(this.cfg.files);
  }

  private range(p: Profile): { start: number; len: number } {
    const start = p.base + this.rng.int(p.span);
    const len = this.rng.chance(p.zeroLenShare) ? 0 : this.rng.between(1, p.maxLen);
    return { start, len };
  }

  private limits(p: Profile, mustBound: boolean): WaitLimits {
    const r = this.rng.float();
    if (r < p.cancelShare) return { cancelMs: this.rng.between(0, 10) };
    if (r < p.cancelShare + p.timeoutShare) return { timeoutMs: this.rng.between(1, 20) };
    return mustBound ? { timeoutMs: this.rng.between(100, 600) } : {};
  }

  /** Could the client's own locks of another owner block this request? */
  private selfBlocked(role: Role, file: number, start: number, end: number, write: boolean): boolean {
    return this.intents.some(
      (i) =>
        i.file === file &&
        (i.role !== role || role === 'windows') &&
        i.start <= end &&
        start <= i.end &&
        (write || i.write),
    );
  }

  private fromProfile(p: Profile): Op {
    const r = this.rng.float();
    const windows = this.personality === 'windows';
    if (r < p.closeShare) {
      const file = this.file(p);
      if (windows) return this.rng.chance(0.3) ? { op: 'winunlock', role: 'windows', file, start: -1, len: -1 } : { op: 'close', role: 'windows', file };
      return { op: 'close', role: this.rng.pick(['posix', 'ofd', 'flock'] as const), file };
    }
    if (!windows && r < p.closeShare + p.getlkShare) {
      const { start, len } = this.range(p);
      return { op: 'getlk', role: this.rng.chance(p.ofdShare) ? 'ofd' : 'posix', file: this.file(p), type: this.rng.chance(p.writeShare) ? F_WRLCK : F_RDLCK, start, len };
    }
    if (!windows && r < p.closeShare + p.getlkShare + p.flockShare) {
      const type = this.rng.pick([F_RDLCK, F_WRLCK, F_UNLCK]);
      const wait = type !== F_UNLCK && this.rng.chance(p.waitShare);
      return { op: 'flock', role: 'flock', file: this.file(p), type, wait, ...(wait ? this.limits(p, true) : {}) };
    }
    const held = this.intents;
    if (held.length > 0 && (held.length >= p.hold || this.rng.chance(0.4))) return this.releaseOne(held);
    return this.newLock(p);
  }

  private releaseOne(held: ClientStream['intents']): Op {
    const i = this.rng.pick(held);
    this.intents.splice(this.intents.indexOf(i), 1);
    if (i.role === 'windows') return { op: 'winunlock', role: 'windows', file: i.file, start: i.start, len: i.len };
    return { op: 'lock', role: i.role, file: i.file, type: F_UNLCK, start: i.start, len: i.len, wait: false };
  }

  private newLock(p: Profile): Op {
    const file = this.file(p);
    const { start, len } = this.range(p);
    const write = this.rng.chance(p.writeShare);
    const end = len === 0 ? (this.personality === 'windows' ? start - 1 : Infinity) : start + len - 1;
    let wait = this.rng.chance(p.waitShare);
    if (this.personality === 'windows') {
      if (wait && this.selfBlocked('windows', file, start, end, write)) wait = false;
      this.intents.push({ role: 'windows', file, start, end, write, len });
      return { op: 'winlock', role: 'windows', file, exclusive: write, start, len, wait, ...(wait ? this.limits(p, true) : {}) };
    }
    const role = this.rng.chance(p.ofdShare) ? 'ofd' : 'posix';
    if (wait && this.selfBlocked(role, file, start, end, write)) wait = false;
    // Detection sees classic owners only: a client blocked without a timeout while it holds OFD
    // locks could close a cycle through them that nothing would ever break.
    const untimed = role === 'posix' && !this.intents.some((i) => i.role === 'ofd');
    this.intents.push({ role, file, start, end, write, len });
    const type = write ? F_WRLCK : F_RDLCK;
    return { op: 'lock', role, file, type, start, len, wait, ...(wait ? this.limits(p, !untimed) : {}) };
  }

  /** Hold one range, wait for another (on another file when there are several): cycles form. */
  private planCycle(): void {
    const slots = this.cfg.files * 4;
    const x = this.rng.int(slots);
    let y = this.rng.int(slots - 1);
    if (y >= x) y++;
    const lock = (slot: number, type: number): Op => ({
      op: 'lock', role: 'posix', file: slot >> 2, type, start: (slot & 3) * 16, len: 16, wait: type !== F_UNLCK,
    });
    this.planned.push(lock(x, F_WRLCK), lock(y, F_WRLCK), lock(y, F_UNLCK), lock(x, F_UNLCK));
  }

  /** The 'many' prelude: this client's share of the held locks, single bytes two apart (never merged). */
  private planMany(): void {
    const { clients, manyLocks } = this.cfg;
    for (let k = this.client; k < manyLocks; k += clients) {
      const start = 2 * k;
      if (this.personality === 'windows') this.planned.push({ op: 'winlock', role: 'windows', file: 0, exclusive: k % 3 === 0, start, len: 1, wait: false });
      else this.planned.push({ op: 'lock', role: 'posix', file: 0, type: k % 3 === 0 ? F_WRLCK : F_RDLCK, start, len: 1, wait: false });
    }
  }
}

/** The streams of every client. Throws an Error naming the workload when it is unknown. */
export function streamsFor(cfg: StreamConfig): ClientStream[] {
  const w = SHAPES[cfg.workload];
  if (w === undefined) throw new Error(`unknown workload '${cfg.workload}'`);
  const full: Required<StreamConfig> = { manyLocks: 100_000, ...cfg };
  return Array.from({ length: cfg.clients }, (_, i) => new ClientStream(w.shape, i, full));
}

export function isWorkload(name: string): boolean {
  return name in SHAPES;
}
