/**
 * A random multi-owner workload against the public API, with a caller-side model. Shares no code
 * with src/.
 *
 * Each owner runs its requests one after another (as one process or handle would), on a few small
 * files, and keeps a model of what it holds:
 * - 'posix' and 'ofd' owners: one type per byte (none / read / write), as fcntl gives one owner;
 * - 'windows' owners: their lock records (never merged; unlock names one exactly).
 * Time is a caller-side event counter (`clock`): a lock is *known held* from the moment its grant
 * resolved until the moment the caller issued the request that releases or changes it. Two known
 * held spans that overlap in time and conflict are a safety violation (checker.ts).
 */
import { historyConflicts, type HeldSpan } from './checker.js';
import { HANG_MS, within, isPending } from './helpers.js';

const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const F_SETLK = 6;
const F_SETLKW = 7;
const EAGAIN = 11;
const EDEADLK = 35;

export interface Api {
  lockFile(r: unknown): Promise<number>;
  unlockFile(r: unknown): Promise<number>;
  closeHandle(r: unknown): Promise<void>;
  lock(r: unknown): Promise<{ result: number }>;
  flush(r: unknown): Promise<void>;
  release(r: unknown): Promise<void>;
}

export interface OwnerSpec {
  kind: 'posix' | 'ofd' | 'windows';
  /** lockOwner (posix, ofd) or handle (windows). */
  id: number;
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface WinRecord {
  file: string;
  start: number;
  len: number;
  excl: boolean;
  since: number;
}

interface ByteState {
  type: Uint8Array; // 0 none, 1 read, 2 write
  since: number[];
}

export interface WorkloadOptions {
  api: Api;
  files: readonly string[];
  owners: readonly OwnerSpec[];
  opsPerOwner: number;
  seed: number;
  /** Bytes per file the workload uses: [0, bytes). */
  bytes: number;
  /**
   * A request that has not settled after this long is reported as hung (default HANG_MS: minutes,
   * so a slow machine never reaches it; the timeoutMs of the waits themselves is 5-40 ms).
   */
  hangMs?: number;
  /** When it returns true, owners stop issuing new requests. */
  stop?: () => boolean;
  /** Called after each request settled (or was reported hung): progress a test can wait on. */
  onSettled?: () => void;
}

export interface WorkloadResult {
  spans: HeldSpan[];
  errors: string[];
  /** Expected granted locks at the end, as listing lines (see listingLines). */
  expected: string[];
  ops: number;
  grants: number;
  refusals: number;
  deadlocks: number;
  waits: number;
}

/** Granted entries of a listing as lines comparable with WorkloadResult.expected. */
export function listingLines(entries: readonly { path: string; kind: string; type: string; start: bigint; end: bigint; owner: unknown; pid: number; state: string }[]): string[] {
  return entries
    .filter((e) => e.state === 'granted')
    .map((e) => `${e.path} ${e.kind} ${e.type} ${e.start}-${e.end} ${String(e.owner)} pid=${e.pid}`)
    .sort();
}

export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  let clock = 0;
  const tick = (): number => ++clock;
  const spans: HeldSpan[] = [];
  const errors: string[] = [];
  const res = { ops: 0, grants: 0, refusals: 0, deadlocks: 0, waits: 0 };
  const hangMs = o.hangMs ?? HANG_MS;
  const api = o.api;
  const expected: string[] = [];

  async function settle<T>(p: Promise<T>, what: string): Promise<T | undefined> {
    const r = await within(p, hangMs);
    o.onSettled?.();
    if (isPending(r)) {
      errors.push(`hung for ${hangMs} ms: ${what}`);
      return undefined;
    }
    return r as T;
  }

  const pid = (s: OwnerSpec): number => (s.kind === 'ofd' ? -1 : s.id);

  async function posixOwner(s: OwnerSpec, rnd: () => number): Promise<void> {
    const state = new Map<string, ByteState>();
    for (const f of o.files) state.set(f, { type: new Uint8Array(o.bytes), since: new Array<number>(o.bytes).fill(0) });
    const owner = `${s.kind}|${s.id}`;
    const fileHandle = `fh-${s.kind}-${s.id}`;
    const close = (f: string, b: number, at: number): void => {
      const st = state.get(f)!;
      const ty = st.type[b]!;
      if (ty !== 0) spans.push({ path: f, kind: s.kind, write: ty === 2, start: BigInt(b), end: BigInt(b), owner, from: st.since[b]!, to: at });
    };
    for (let i = 0; i < o.opsPerOwner && !(o.stop?.() ?? false); i++) {
      const f = o.files[Math.floor(rnd() * o.files.length)]!;
      const st = state.get(f)!;
      const start = Math.floor(rnd() * o.bytes);
      const len = Math.min(1 + Math.floor(rnd() * 8), o.bytes - start);
      const r = rnd();
      res.ops++;
      if (r < 0.8) {
        const type = rnd() < 0.5 ? F_RDLCK : F_WRLCK;
        const wait = r >= 0.45;
        const req = {
          path: f,
          lockType: type,
          lockStart: start,
          lockLen: len,
          cmd: wait ? F_SETLKW : F_SETLK,
          lockOwner: s.id,
          lockPid: s.id,
          kind: s.kind,
          fileHandle,
          ...(wait ? { timeoutMs: 5 + Math.floor(rnd() * 35) } : {}),
        };
        if (wait) res.waits++;
        const issued = tick();
        const rep = await settle(api.lock(req), `${owner} ${JSON.stringify(req)}`);
        if (rep === undefined) return;
        const done = tick();
        if (rep.result === 0) {
          res.grants++;
          const nt = type === F_WRLCK ? 2 : 1;
          for (let b = start; b < start + len; b++) {
            if (st.type[b] === nt) continue; // held all along
            close(f, b, issued);
            st.type[b] = nt;
            st.since[b] = done;
          }
        } else if (rep.result === -EAGAIN) {
          res.refusals++;
        } else if (rep.result === -EDEADLK && wait && s.kind === 'posix') {
          res.deadlocks++;
          // A cycle through this owner needs someone waiting for a lock it holds: with nothing
          // held (the owner runs one request at a time, so the model is exact here) it is false.
          let holds = false;
          for (const x of state.values()) if (x.type.some((v) => v !== 0)) holds = true;
          if (!holds) errors.push(`${owner}: EDEADLK while holding no lock (a false deadlock) for ${JSON.stringify(req)}`);
        } else {
          errors.push(`${owner}: unexpected result ${rep.result} for ${JSON.stringify(req)}`);
        }
      } else if (r < 0.93) {
        const issued = tick();
        for (let b = start; b < start + len; b++) {
          close(f, b, issued);
          st.type[b] = 0;
        }
        const rep = await settle(api.lock({ path: f, lockType: F_UNLCK, lockStart: start, lockLen: len, cmd: F_SETLK, lockOwner: s.id, kind: s.kind }), `${owner} unlock`);
        if (rep === undefined) return;
        if (rep.result !== 0) errors.push(`${owner}: unlock gave ${rep.result}`);
      } else {
        const issued = tick();
        for (let b = 0; b < o.bytes; b++) {
          close(f, b, issued);
          st.type[b] = 0;
        }
        const p = s.kind === 'posix' ? api.flush({ path: f, lockOwner: s.id }) : api.release({ path: f, fileHandle });
        if ((await settle(p.then(() => true), `${owner} ${s.kind === 'posix' ? 'flush' : 'release'}`)) === undefined) return;
      }
    }
    for (const f of o.files) {
      for (let b = 0; b < o.bytes; b++) {
        const st = state.get(f)!;
        if (st.type[b] !== 0) close(f, b, Number.POSITIVE_INFINITY);
      }
    }
    for (const f of o.files) {
      const st = state.get(f)!;
      let b = 0;
      while (b < o.bytes) {
        const ty = st.type[b]!;
        if (ty === 0) {
          b++;
          continue;
        }
        let e = b;
        while (e + 1 < o.bytes && st.type[e + 1] === ty) e++;
        expected.push(`${f} ${s.kind} ${ty === 2 ? 'write' : 'read'} ${b}-${e} ${s.id} pid=${pid(s)}`);
        b = e + 1;
      }
    }
  }

  async function windowsOwner(s: OwnerSpec, rnd: () => number): Promise<void> {
    const handle = `h${s.id}`;
    const processId = s.id;
    const owner = `windows|${handle}|${processId}`;
    let records: WinRecord[] = [];
    const close = (rec: WinRecord, at: number): void => {
      spans.push({ path: rec.file, kind: 'windows', write: rec.excl, start: BigInt(rec.start), end: BigInt(rec.start + rec.len - 1), owner, from: rec.since, to: at });
    };
    for (let i = 0; i < o.opsPerOwner && !(o.stop?.() ?? false); i++) {
      const f = o.files[Math.floor(rnd() * o.files.length)]!;
      const r = rnd();
      res.ops++;
      const mine = records.filter((x) => x.file === f);
      if (r < 0.6 || mine.length === 0) {
        const start = Math.floor(rnd() * o.bytes);
        const len = Math.min(1 + Math.floor(rnd() * 8), o.bytes - start);
        const excl = rnd() < 0.5;
        const wait = r >= 0.3;
        if (wait) res.waits++;
        const req = {
          fileName: f,
          byteOffset: start,
          length: len,
          exclusiveLock: excl,
          failImmediately: !wait,
          handle,
          processId,
          ...(wait ? { timeoutMs: 5 + Math.floor(rnd() * 35) } : {}),
        };
        const rep = await settle(api.lockFile(req), `${owner} ${JSON.stringify(req)}`);
        if (rep === undefined) return;
        const done = tick();
        if (rep === 0) {
          res.grants++;
          records.push({ file: f, start, len, excl, since: done });
        } else if (rep === 33) {
          res.refusals++;
        } else {
          errors.push(`${owner}: unexpected lockFile result ${rep} for ${JSON.stringify(req)}`);
        }
      } else if (r < 0.92) {
        const pick = mine[Math.floor(rnd() * mine.length)]!;
        // UnlockFileEx removes an exclusive record of that exact range first, else a shared one.
        const same = records.filter((x) => x.file === f && x.start === pick.start && x.len === pick.len);
        const gone = same.find((x) => x.excl) ?? same[0]!;
        const issued = tick();
        close(gone, issued);
        records = records.filter((x) => x !== gone);
        const rep = await settle(api.unlockFile({ fileName: f, byteOffset: pick.start, length: pick.len, handle, processId }), `${owner} unlock`);
        if (rep === undefined) return;
        if (rep !== 0) errors.push(`${owner}: unlockFile of a held record (${f} ${pick.start}+${pick.len}) gave ${rep}`);
      } else {
        const issued = tick();
        for (const x of mine) close(x, issued);
        records = records.filter((x) => x.file !== f);
        if (r < 0.96) {
          const rep = await settle(api.unlockFile({ fileName: f, byteOffset: -1, length: -1, handle, processId }), `${owner} unlock-all`);
          if (rep === undefined) return;
          if (rep !== 0) errors.push(`${owner}: unlock-all gave ${rep}`);
        } else if ((await settle(api.closeHandle({ fileName: f, handle }).then(() => true), `${owner} closeHandle`)) === undefined) {
          return;
        }
      }
    }
    for (const x of records) {
      close(x, Number.POSITIVE_INFINITY);
      expected.push(`${x.file} windows ${x.excl ? 'exclusive' : 'shared'} ${x.start}-${x.start + x.len - 1} ${handle} pid=${processId}`);
    }
  }

  await Promise.all(
    o.owners.map((s, i) => {
      const rnd = prng(o.seed * 1000 + i);
      return s.kind === 'windows' ? windowsOwner(s, rnd) : posixOwner(s, rnd);
    }),
  );
  expected.sort();
  return { spans, errors, expected, ...res };
}

export { historyConflicts };
