/**
 * Drives a LockTable and the reference model (model.ts) side by side, one command at a time, and
 * checks after every command:
 * - the call's outcome and the waiters it ended (in order) equal the model's (F_GETLK: one of the
 *   model's acceptable replies; EDEADLK victims: one the model accepts, see model.ts);
 * - `locks(path)` equals the model's snapshot, for every path;
 * - invariants read straight off `locks()`, independent of the model: no two conflicting granted
 *   locks; POSIX/OFD owners' locks canonical; no lost wake-up; F_GETLK reports a real conflicting
 *   lock (F_UNLCK only when there is none); grants of one step in arrival order (restarting after a
 *   grant that frees bytes); under 'fifo' no waiter granted past an earlier conflicting waiter unless
 *   exempt; optionally (default policy) the wait-for graph built from `locks()` is acyclic and a new
 *   F_SETLKW gets EDEADLK exactly when its edges would close a cycle in it.
 * Any violation throws, which fast-check shrinks to a minimal command sequence.
 */
import fc from 'fast-check';
import { LockTable, type LockEntry, type Pending, type PosixReply } from '../src/index.js';
import {
  EDEADLK,
  F_GETLK,
  F_SETLKW,
  F_UNLCK,
  getlkView,
  idKey,
  idValue,
  line,
  ModelTypeError,
  RefModel,
  replyOut,
  type Kind,
  type MReq,
  type Policy,
} from './model.js';

export type Method = 'lockFile' | 'unlockFile' | 'closeHandle' | 'checkIo' | 'lock' | 'flush' | 'release';

export type Op =
  | { readonly t: 'call'; readonly method: Method; readonly input: unknown; readonly garbage?: boolean }
  /** unlockFile of the k-th granted Windows record of `path` (by the model), encoded by `enc`. */
  | { readonly t: 'unlockHeld'; readonly path: string; readonly k: number; readonly enc: number }
  | { readonly t: 'cancel'; readonly k: number; readonly reason: 'abort' | 'timeout' };

export interface EnvOptions {
  readonly policy: Policy;
  readonly paths: readonly string[];
  /** Check the wait-for graph read off locks(): acyclic, and EDEADLK exactly when a new request closes a cycle. */
  readonly graphChecks?: boolean;
  /**
   * Compare outcomes, ended waiters and listings with the model (default true). False where the
   * documents leave the behaviour open (see model.ts): only the invariants read off locks() apply.
   */
  readonly exact?: boolean;
}

/** A listing entry reduced to what the checks need. */
interface E {
  readonly path: string;
  readonly kind: Kind;
  readonly write: boolean;
  readonly start: bigint;
  readonly end: bigint;
  readonly holder: string;
  /** Windows processId key ('' for other kinds). */
  readonly pk: string;
  readonly state: 'granted' | 'waiting';
  readonly pid: number;
}

export class Env {
  readonly table: LockTable;
  readonly m: RefModel;
  readonly pendings: Pending[] = [];
  readonly ids = new Map<object, number>();
  /** The decoded request of each pending, by id (decoding is pure: it touches no state). */
  readonly reqs: MReq[] = [];
  events: { h: { id: number }; out: string }[] = [];
  /** Listings seen during the current step (before it, and after each waiter ended). */
  stepSnaps: E[][] = [];
  step = 0;

  constructor(readonly opts: EnvOptions) {
    this.table = new LockTable({ policy: opts.policy, now: () => 0 });
    this.m = new RefModel(opts.policy);
  }

  entries(): E[] {
    return this.opts.paths.flatMap((p) => this.table.locks(p).map(toE));
  }
}

// ---- formatting -----------------------------------------------------------------------------

export function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${k}: ${show(x)}`)
      .join(', ')} }`;
  }
  return String(v);
}

export function showOp(op: Op): string {
  if (op.t === 'call') return `${op.garbage === true ? '/*garbage*/ ' : ''}${op.method}(${show(op.input)})`;
  if (op.t === 'unlockHeld') return `unlockHeld(${show(op.path)}, #${op.k}, enc ${op.enc})`;
  return `cancel(pending #${op.k}, '${op.reason}')`;
}

export function normReply(r: PosixReply): string {
  if (typeof r.lockStart !== 'bigint' || typeof r.lockLen !== 'bigint') return `badreply:${show(r)}`;
  return replyOut(r.result, r.lockType, r.lockStart, r.lockLen, r.lockPid);
}

export function entryLine(e: LockEntry): string {
  const holder = idKey(e.owner);
  const extra = e.kind === 'windows' ? `pk=${idKey(e.processId ?? 0)}` : `fh=${e.fileHandle === undefined ? '-' : idKey(e.fileHandle)}`;
  return line(e.kind, e.type === 'write' || e.type === 'exclusive', e.start, e.end, holder, e.pid, e.state, extra);
}

function toE(e: LockEntry): E {
  return {
    path: e.path,
    kind: e.kind,
    write: e.type === 'write' || e.type === 'exclusive',
    start: e.start,
    end: e.end,
    holder: idKey(e.owner),
    pk: e.kind === 'windows' ? idKey(e.processId ?? 0) : '',
    state: e.state,
    pid: e.pid,
  };
}

function snapshot(table: LockTable, path: string): string[] {
  const all = table.locks(path);
  const g = all.filter((e) => e.state === 'granted').map(entryLine).sort();
  const w = all.filter((e) => e.state === 'waiting').map(entryLine);
  return [...g, ...w];
}

// ---- an independent conflict predicate on listing entries -----------------------------------

type Same = 'same' | 'maybe' | 'different';

/** Owners of two entries. Windows entries do not show the key: same (handle, processId) is 'maybe'. */
function sameOwner(a: E, b: E): Same {
  if (a.kind !== b.kind) return 'different';
  if (a.holder !== b.holder) return 'different';
  if (a.kind === 'windows') return a.pk === b.pk ? 'maybe' : 'different';
  return 'same';
}

/** Inclusive ranges; a zero-length Windows range [X, X-1] with [a, b] gives a <= X-1 && X <= b. */
function overlap(a: { kind: Kind; start: bigint; end: bigint }, b: { kind: Kind; start: bigint; end: bigint }): boolean {
  if ((a.kind === 'flock') !== (b.kind === 'flock')) return false;
  if (a.kind === 'flock') return true;
  return a.start <= b.end && b.start <= a.end;
}

/** Could request `r` conflict with lock (or earlier waiter) `l`? Lenient only where the key is unknown. */
function mayConflict(r: E, l: E): boolean {
  if (!overlap(r, l) || (!r.write && !l.write)) return false;
  const s = sameOwner(r, l);
  if (s === 'different') return true;
  if (s === 'same') return false;
  return true; // Windows, same handle and process: another key, or an exclusive request
}

/** Two granted entries that certainly must not coexist. */
function mustNotCoexist(a: E, b: E): boolean {
  if (!overlap(a, b) || (!a.write && !b.write)) return false;
  const s = sameOwner(a, b);
  if (s === 'different') return true;
  if (s === 'maybe') return a.write && b.write; // overlapping exclusive records never coexist
  return false;
}

function exactConflict(r: MReq, l: MReq): boolean {
  if (!overlap(r, l) || (!r.write && !l.write)) return false;
  if (r.owner === l.owner) return r.kind === 'windows' && r.write;
  return true;
}

// ---- invariant checks -----------------------------------------------------------------------

class Violation extends Error {}

function fail(msg: string): never {
  throw new Violation(msg);
}

/** A waiting POSIX/OFD entry widened over its owner's touching same-type granted locks. */
function widened(w: E, granted: E[]): E {
  if (w.kind !== 'posix' && w.kind !== 'ofd') return w;
  let { start, end } = w;
  for (let moved = true; moved; ) {
    moved = false;
    for (const g of granted) {
      if (g.kind !== w.kind || sameOwner(w, g) !== 'same' || g.write !== w.write) continue;
      if (g.end + 1n >= start && g.start <= end + 1n && (g.start < start || g.end > end)) {
        if (g.start < start) start = g.start;
        if (g.end > end) end = g.end;
        moved = true;
      }
    }
  }
  return start === w.start && end === w.end ? w : { ...w, start, end };
}

function checkListing(env: Env, all: E[]): void {
  for (const path of env.opts.paths) {
    const es = all.filter((e) => e.path === path);
    const granted = es.filter((e) => e.state === 'granted');
    const waiting = es.filter((e) => e.state === 'waiting');
    // 1. No two conflicting granted locks.
    for (let i = 0; i < granted.length; i++) {
      for (let j = i + 1; j < granted.length; j++) {
        if (mustNotCoexist(granted[i]!, granted[j]!)) fail(`conflicting granted locks on ${path}: ${show(granted[i])} and ${show(granted[j])}`);
      }
    }
    const flockOwners = granted.filter((e) => e.kind === 'flock').map((e) => e.holder);
    if (new Set(flockOwners).size !== flockOwners.length) fail(`an flock owner holds two locks on ${path}`);
    // 2. A POSIX/OFD owner's locks are canonical: no overlap at all, same type never touching.
    for (const a of granted) {
      for (const b of granted) {
        if (a === b || (a.kind !== 'posix' && a.kind !== 'ofd') || sameOwner(a, b) !== 'same') continue;
        if (overlap(a, b)) fail(`owner's locks overlap on ${path}: ${show(a)} ${show(b)}`);
        if (a.write === b.write && b.start === a.end + 1n) fail(`owner's same-type locks touch on ${path}: ${show(a)} ${show(b)}`);
      }
    }
    // 3. No lost wake-up: a waiter conflicts with a granted lock or, under 'fifo' and not exempt,
    //    with an earlier waiter.
    waiting.forEach((w, i) => {
      if (granted.some((g) => mayConflict(w, g))) return;
      // A POSIX/OFD set is refused when the lock it would leave (merged with its owner's touching
      // same-type locks) conflicts: a zero-length Windows lock at the junction.
      const m = widened(w, granted);
      if (m !== w && granted.some((g) => mayConflict(m, g))) return;
      if (env.opts.policy === 'fifo') {
        const exempt = w.kind !== 'windows' && granted.some((g) => sameOwner(w, g) === 'same');
        if (!exempt && waiting.slice(0, i).some((v) => mayConflict(w, v))) return;
      }
      fail(`lost wake-up on ${path}: ${show(w)} is queued but fits`);
    });
  }
  if (env.opts.graphChecks === true) {
    const cycle = findCycle(graphOf(all));
    if (cycle !== null) fail(`wait-for cycle left in locks(): ${cycle.join(' -> ')}`);
  }
}

/** Wait-for graph read off a listing: A -> B when a waiting 'posix' request of A conflicts with a granted 'posix' lock of B. */
function graphOf(all: E[]): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const w of all) {
    if (w.state !== 'waiting' || w.kind !== 'posix') continue;
    for (const l of all) {
      if (l.state !== 'granted' || l.kind !== 'posix' || l.path !== w.path || l.holder === w.holder) continue;
      if (!mayConflict(w, l)) continue;
      let s = g.get(w.holder);
      if (s === undefined) g.set(w.holder, (s = new Set()));
      s.add(l.holder);
    }
  }
  return g;
}

/** graphOf plus, under 'fifo', A -> B when A's 'posix' waiter queues behind an earlier conflicting 'posix' waiter of B. */
function fullGraph(all: E[]): Map<string, Set<string>> {
  const g = graphOf(all);
  for (const path of new Set(all.map((e) => e.path))) {
    const waiting = all.filter((e) => e.path === path && e.state === 'waiting');
    waiting.forEach((w, i) => {
      if (w.kind !== 'posix' || all.some((e) => e.path === path && e.state === 'granted' && sameOwner(w, e) === 'same')) return;
      for (const v of waiting.slice(0, i)) {
        if (v.kind !== 'posix' || v.holder === w.holder || !mayConflict(w, v)) continue;
        let s = g.get(w.holder);
        if (s === undefined) g.set(w.holder, (s = new Set()));
        s.add(v.holder);
      }
    });
  }
  return g;
}

function reaches(g: Map<string, Set<string>>, from: Iterable<string>, target: string): boolean {
  const seen = new Set<string>();
  const stack = [...from];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n === target) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(g.get(n) ?? []));
  }
  return false;
}

function findCycle(g: Map<string, Set<string>>): string[] | null {
  for (const n of g.keys()) {
    for (const m of g.get(n)!) if (reaches(g, [m], n)) return [n, m, '...', n];
  }
  return null;
}

function reqAsE(r: MReq): E {
  return { path: r.path, kind: r.kind, write: r.write, start: r.start, end: r.end, holder: r.holderKey, pk: r.kind === 'windows' ? r.processKey : '', state: 'waiting', pid: r.pid };
}

/** F_GETLK answers, checked against the listing before the call. */
function checkGetlk(env: Env, input: unknown, pre: E[], out: string): void {
  let d: ReturnType<RefModel['decodeLock']>;
  try {
    d = env.m.decodeLock(input);
  } catch {
    return;
  }
  if (typeof d === 'string' || d.cmd !== F_GETLK || !out.startsWith('reply:0|')) return;
  const r = reqAsE(d.req);
  const granted = pre.filter((e) => e.path === r.path && e.state === 'granted');
  const reportsNone = out.startsWith(`reply:0|${F_UNLCK}|`);
  const candidates =
    d.lockType === F_UNLCK ? granted.filter((l) => sameOwner(r, l) === 'same' && overlap(r, l)) : granted.filter((l) => mayConflict(r, l));
  if (reportsNone) {
    if (candidates.length > 0) fail(`F_GETLK reported F_UNLCK but ${show(candidates[0])} conflicts`);
    return;
  }
  const match = candidates.filter((l) => getlkView(l) === out);
  if (match.length === 0) fail(`F_GETLK reported ${out}, which is no conflicting lock in ${show(candidates)}`);
  const min = candidates.reduce((m, l) => (l.start < m ? l.start : m), candidates[0]!.start);
  if (!match.some((l) => l.start === min)) fail(`F_GETLK reported ${out}, not the conflicting lock with the lowest start (${min})`);
}

/** A new classic F_SETLKW fails with EDEADLK exactly when its edges would close a cycle. */
function checkDeadlockAnswer(env: Env, input: unknown, pre: E[], out: string): void {
  let d: ReturnType<RefModel['decodeLock']>;
  try {
    d = env.m.decodeLock(input);
  } catch {
    return;
  }
  if (typeof d === 'string' || d.req.kind !== 'posix' || d.cmd !== F_SETLKW || d.lockType === F_UNLCK) return;
  const r = reqAsE(d.req);
  const granted = pre.filter((e) => e.path === r.path && e.state === 'granted');
  const mustWait = granted.some((l) => mayConflict(r, l));
  const blockers = granted.filter((l) => l.kind === 'posix' && mayConflict(r, l)).map((l) => l.holder);
  const cycle = mustWait && reaches(graphOf(pre), blockers, r.holder);
  const gotEdeadlk = out.startsWith(`reply:${-EDEADLK}|`);
  if (cycle !== gotEdeadlk) fail(`F_SETLKW ${gotEdeadlk ? 'got' : 'did not get'} EDEADLK, but the wait-for graph ${cycle ? 'has' : 'has no'} cycle through ${r.holder} (blockers ${blockers.join(',')}; graph ${show([...graphOf(pre)].map(([k, v]) => `${k}->${[...v].join('/')}`))})`);
}

/** Under 'fifo', at the moment waiter `id` is granted: no earlier conflicting waiter still queued, unless exempt. */
function checkFifoGrant(env: Env, id: number): void {
  const r = env.reqs[id];
  if (r === undefined) return;
  const state = env.table.fileState(r.path);
  if (state === undefined) return;
  const owns = (snap: E[]): boolean =>
    snap.some((e) => e.path === r.path && e.state === 'granted' && e.kind === r.kind && e.holder === r.holderKey && (r.kind !== 'windows' || e.pk === r.processKey));
  // Exempt: the owner holds a lock now (a grant earlier in this step may have made it so), or in
  // any listing taken during this step (lenient).
  if (owns(env.entries()) || env.stepSnaps.some(owns)) return;
  const graphs = [...env.stepSnaps, env.entries()].map(fullGraph);
  for (const w of state.waiters) {
    const wid = env.ids.get(w);
    if (wid === undefined || wid >= id) continue;
    const v = env.reqs[wid]!;
    // 'fifo' must not create deadlocks: a waiter may pass one whose owner waits for it.
    if (r.kind === 'posix' && v.kind === 'posix' && graphs.some((g) => reaches(g, [v.holderKey], r.holderKey))) continue;
    if (exactConflict(r, v)) fail(`'fifo': waiter #${id} ${show(reqAsE(r))} granted while earlier conflicting waiter #${wid} ${show(reqAsE(v))} is queued`);
  }
}

// ---- running one command ----------------------------------------------------------------------

function onDone(env: Env, h: { id: number }, out: string): void {
  env.events.push({ h, out });
  if (env.opts.policy === 'fifo' && (out === 'code:0' || out.startsWith('reply:0|'))) checkFifoGrant(env, h.id);
  env.stepSnaps.push(env.entries());
}

function pending(env: Env, p: Pending, h: { id: number }, method: Method, input: unknown): string {
  h.id = env.pendings.length;
  env.pendings.push(p);
  env.ids.set(p.waiter, h.id);
  const d = method === 'lockFile' ? env.m.decodeLockFile(input) : env.m.decodeLock(input);
  if (typeof d === 'object') env.reqs[h.id] = d.req;
  return `pending:${h.id}`;
}

function isPending(v: unknown): v is Pending {
  return typeof v === 'object' && v !== null && 'waiter' in v && 'path' in v;
}

function execReal(env: Env, method: Method, input: unknown): string {
  const t = env.table;
  const h = { id: -1 };
  let r: unknown;
  switch (method) {
    case 'lockFile':
      r = t.lockFile(input, (code) => onDone(env, h, `code:${code}`));
      break;
    case 'lock':
      r = t.lock(input, (reply) => onDone(env, h, normReply(reply)));
      break;
    case 'unlockFile':
      r = t.unlockFile(input);
      break;
    case 'closeHandle':
      r = t.closeHandle(input);
      break;
    case 'checkIo':
      r = t.checkIo(input);
      break;
    case 'flush':
      r = t.flush(input);
      break;
    case 'release':
      r = t.release(input);
      break;
  }
  if (r instanceof Promise) fail('synchronous table returned a Promise');
  if (isPending(r)) return pending(env, r, h, method, input);
  if (typeof r === 'number') return `code:${r}`;
  if (r === undefined) return 'void';
  return normReply(r as PosixReply);
}

function execModel(env: Env, method: Method, input: unknown): string | string[] {
  const m = env.m;
  switch (method) {
    case 'lockFile':
      return m.lockFile(input);
    case 'lock':
      return m.lock(input);
    case 'unlockFile':
      return m.unlockFile(input);
    case 'closeHandle':
      return m.closeHandle(input);
    case 'checkIo':
      return m.checkIo(input);
    case 'flush':
      return m.flush(input);
    case 'release':
      return m.release(input);
  }
}

/** Windows encodings of a 64-bit value: bigint, number, or the signed int64 CBFS passes. */
export function encWin(v: bigint, e: number): bigint | number {
  const signed = v >= 1n << 63n ? v - (1n << 64n) : v;
  const w = e & 2 ? signed : v;
  return e & 1 && w >= BigInt(Number.MIN_SAFE_INTEGER) && w <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(w) : w;
}

/** An identity from its key, as a number or a bigint. */
export function encId(key: string, e: number): bigint | number | string {
  const v = idValue(key);
  return typeof v === 'bigint' && e & 1 ? Number(v) : v;
}

function resolveUnlockHeld(env: Env, op: Extract<Op, { t: 'unlockHeld' }>): unknown {
  const recs = env.m.winRecords(op.path);
  if (recs.length === 0) return { fileName: op.path, byteOffset: 0, length: 1, handle: 1 };
  const r = recs[op.k % recs.length]!;
  const input: Record<string, unknown> = {
    fileName: op.path,
    byteOffset: encWin(r.start, op.enc),
    length: encWin(r.end - r.start + 1n, op.enc >> 2),
    handle: encId(r.handleKey, op.enc >> 4),
  };
  if (r.processKey !== 'n:0' || op.enc & 32) input.processId = encId(r.processKey, op.enc >> 6);
  if (r.keyKey !== 'n:0' || op.enc & 128) input.key = encId(r.keyKey, op.enc >> 7);
  return input;
}

function isDeadlock(out: string): boolean {
  return out === `code:${-EDEADLK}` || out.startsWith(`reply:${-EDEADLK}|`);
}

export function runOp(env: Env, op: Op): void {
  env.step++;
  const exact = env.opts.exact !== false;
  const pre = env.entries();
  env.stepSnaps = [pre];
  env.events = [];
  let realOut: string;
  let modelOut: string | string[] = '';
  let method: Method | null = null;
  let input: unknown;
  if (op.t === 'cancel') {
    if (env.pendings.length === 0) return;
    const id = op.k % env.pendings.length;
    realOut = `bool:${String(env.table.cancel(env.pendings[id]!, op.reason))}`;
    if (exact) {
      env.m.events = [];
      env.m.pickVictim = pickFrom(env.events.filter((e) => isDeadlock(e.out)).map((e) => e.h.id));
      modelOut = env.m.cancel(id, op.reason);
    }
  } else {
    method = op.t === 'unlockHeld' ? 'unlockFile' : op.method;
    input = op.t === 'unlockHeld' ? resolveUnlockHeld(env, op) : op.input;
    try {
      realOut = execReal(env, method, input);
    } catch (e) {
      if (e instanceof Violation) throw e;
      if (!(e instanceof TypeError)) throw e;
      realOut = `TypeError:${e.message}`;
    }
    if (exact) {
      env.m.events = [];
      env.m.pickVictim = pickFrom(env.events.filter((e) => isDeadlock(e.out)).map((e) => e.h.id));
      try {
        modelOut = execModel(env, method, input);
      } catch (e) {
        if (!(e instanceof ModelTypeError)) throw e;
        modelOut = `TypeError:${e.field}`;
      }
    } else if (op.t === 'call' && op.garbage === true) {
      // The expected refusal is still the model's decoding (pure, no state).
      modelOut = expectedRefusal(env, method, input);
    }
  }
  const where = `step ${env.step}`;
  if (exact || modelOut !== '') compareOutcome(where, realOut, modelOut);
  if (exact) {
    // Waiters ended by this step, in order.
    const real = env.events.map((e) => `#${e.h.id} ${e.out}`);
    const model = env.m.events.map((e) => `#${e.id} ${e.out}`);
    if (real.join('; ') !== model.join('; ')) fail(`${where}: waiters ended [${real.join('; ')}], expected [${model.join('; ')}]`);
    // Grants of one step in arrival order, restarting only after a grant that let earlier waiters in.
    let last = -1;
    for (const e of env.m.events) {
      if (!e.out.startsWith('code:0') && !e.out.startsWith('reply:0|')) continue;
      if (e.id < last) fail(`${where}: waiter #${e.id} granted after #${last}, out of arrival order`);
      last = e.restart ? -1 : e.id;
    }
    // Listing equals the model's snapshot.
    for (const path of env.opts.paths) {
      const r = snapshot(env.table, path);
      const m = env.m.snapshot(path);
      if (r.join('\n') !== m.join('\n')) fail(`${where}: locks(${show(path)}) differs from the model\n  actual:\n    ${r.join('\n    ')}\n  model:\n    ${m.join('\n    ')}`);
    }
    // The model's own wait-for graph stays acyclic (a sanity check of the model).
    const mc = findCycle(env.m.graph(env.opts.policy === 'fifo'));
    if (mc !== null) fail(`${where}: model wait-for graph has a cycle ${mc.join(' -> ')}`);
  }
  const post = env.entries();
  checkListing(env, post);
  if (method === 'lock') {
    checkGetlk(env, input, pre, realOut);
    if (env.opts.graphChecks === true) checkDeadlockAnswer(env, input, pre, realOut);
  }
  if (op.t === 'call' && op.garbage === true) {
    const before = pre.map((e) => show(e)).join('\n');
    const after = post.map((e) => show(e)).join('\n');
    if (before !== after) fail(`${where}: a rejected request changed locks()`);
    if (env.events.length > 0) fail(`${where}: a rejected request ended waiters`);
  }
}

function compareOutcome(where: string, realOut: string, modelOut: string | string[]): void {
  if (Array.isArray(modelOut)) {
    if (!modelOut.includes(realOut)) fail(`${where}: result ${realOut}, expected one of ${modelOut.join(' or ')}`);
  } else if (modelOut.startsWith('TypeError:')) {
    const field = modelOut.slice('TypeError:'.length);
    if (!realOut.startsWith('TypeError:') || !realOut.includes(field)) fail(`${where}: result ${realOut}, expected a TypeError naming ${field}`);
  } else if (realOut !== modelOut) {
    fail(`${where}: result ${realOut}, expected ${modelOut}`);
  }
}

/** What a garbage request must give, by the model's (pure) decoding. */
function expectedRefusal(env: Env, method: Method, input: unknown): string {
  try {
    const scratch = new RefModel(env.opts.policy);
    const out = execModel({ m: scratch } as Env, method, input);
    return Array.isArray(out) ? out[0]! : out;
  } catch (e) {
    if (!(e instanceof ModelTypeError)) throw e;
    return `TypeError:${e.field}`;
  }
}

function pickFrom(victims: number[]): (c: readonly number[]) => number {
  return (c) => {
    const v = victims[0];
    if (v !== undefined && c.includes(v)) {
      victims.shift();
      return v;
    }
    return c[0]!;
  };
}

// ---- fast-check glue ----------------------------------------------------------------------------

export class OpCommand implements fc.Command<Env, Env> {
  constructor(readonly op: Op) {}
  check(): boolean {
    return true;
  }
  run(_m: Env, r: Env): void {
    runOp(r, this.op);
  }
  toString(): string {
    return showOp(this.op);
  }
}

/** numRuns of a property: at least `n`; LOCKSMITH_PROPERTY_RUNS raises it for a deeper search. */
export function runs(n: number): number {
  return Math.max(n, Number(process.env.LOCKSMITH_PROPERTY_RUNS ?? 0) || 0);
}

/** One property run: a fresh table and model, then the commands. */
export function modelRun(opts: EnvOptions, cmds: Iterable<fc.Command<Env, Env>>): void {
  fc.modelRun(() => {
    const env = new Env(opts);
    return { model: env, real: env };
  }, cmds);
}
