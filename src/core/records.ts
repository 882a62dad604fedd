/**
 * A file's locks as the records of a shared lock space (src/store/): what a granted lock or a
 * waiting request becomes in a record's `data`, and back. The store never reads `data`; only the
 * actors of every node do, with this codec, so all of them rebuild the same FileLocks.
 *
 * Owners, handles and processes belong to their node (API.md "One lock space across machines"):
 * `qualify` suffixes every key of a call with '@' and the node name, so lockOwner 7 on node A and
 * on node B are two owners, and a release of fileHandle 3 on A never touches B's locks. Node names
 * have no '@' (src/store/options.ts), so `nodeOf` reads the node back from any qualified key.
 */
import { Lock, nextSeq, type LockKind, type LockOrigin, type LockRequest } from './file-locks.js';
import type { Identity } from './input.js';
import type { Call } from './requests.js';
import { entry, type LockEntry } from './views.js';

/** The JSON form of a lock or a request (short keys: a record is written on every step). */
interface Encoded {
  /** kind */
  k: LockKind;
  /** write / exclusive */
  w: 0 | 1;
  /** owner key, qualified */
  o: string;
  /** start, end (inclusive) as decimal strings */
  s: string;
  e: string;
  /** holder (lockOwner or Windows handle), pid, handle key, process key */
  h: EncodedIdentity;
  p: number;
  hk: string;
  pk: string;
  /** fileHandle (POSIX kinds) or processId (Windows), as the caller gave it, for listings */
  x?: EncodedIdentity;
  /** A waiter: when it queued (ms since the epoch, its node's clock; listings only) */
  t?: number;
  /** The request that asked for it (LockOrigin.request), if known */
  r?: number;
  /** A granted lock: the fence number of its grant (Lock.fence), if one was given */
  f?: number;
}

type EncodedIdentity = number | { s: string } | { b: string };

function encodeIdentity(v: Identity): EncodedIdentity {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return { b: v.toString() };
  return { s: v };
}

function decodeIdentity(v: EncodedIdentity): Identity {
  if (typeof v === 'number') return v;
  return 'b' in v ? BigInt(v.b) : v.s;
}

/** The record data of a granted lock or (with `since`) of a waiting request; `pid` replaces its origin's. */
export function encodeLock(l: Lock | LockRequest, since?: number, pid?: number): string {
  const o = l.origin;
  const x = l.kind === 'windows' ? o.event.processId : o.event.fileHandle;
  const e: Encoded = { k: l.kind, w: l.write ? 1 : 0, o: l.owner, s: l.start.toString(), e: l.end.toString(), h: encodeIdentity(o.holder), p: pid ?? o.pid, hk: o.handleKey, pk: o.processKey };
  if (x !== undefined) e.x = encodeIdentity(x as Identity);
  if (since !== undefined) e.t = since;
  if (o.request !== undefined) e.r = o.request;
  if (l.fence !== undefined) e.f = l.fence;
  return JSON.stringify(e);
}

/** What a record's data says; `origin` is rebuilt with the event fields listings and replies read. */
export interface DecodedRecord {
  readonly req: LockRequest;
  readonly since: number;
}

/** The request (or lock) a record's data describes. A malformed one throws: a bug of some node. */
export function decodeRecord(data: string, path: string): DecodedRecord {
  const e = JSON.parse(data) as Encoded;
  const holder = decodeIdentity(e.h);
  const x = e.x === undefined ? undefined : decodeIdentity(e.x);
  const start = BigInt(e.s);
  const end = BigInt(e.e);
  const event: Record<string, unknown> =
    e.k === 'windows'
      ? { fileName: path, byteOffset: start, length: end - start + 1n, exclusiveLock: e.w === 1, handle: holder, processId: x ?? 0 }
      : { path, lockOwner: holder, lockPid: e.p, kind: e.k, ...(x === undefined ? {} : { fileHandle: x }) };
  const origin: LockOrigin = { holder, pid: e.p, handleKey: e.hk, processKey: e.pk, event, ...(e.r === undefined ? {} : { request: e.r }) };
  const req: LockRequest = e.f === undefined ? { kind: e.k, write: e.w === 1, owner: e.o, start, end, origin } : { kind: e.k, write: e.w === 1, owner: e.o, start, end, origin, fence: e.f };
  return { req, since: e.t ?? 0 };
}

/** A record's decoding (Decoded.d), and what its reader derives of it once per version (`view`). */
export interface Decoded {
  readonly data: string;
  readonly d: DecodedRecord;
  /** The reader's own form of the request (a file's actor: another node's lock as rebuilt here). */
  view?: LockRequest;
}

/**
 * A file's records decoded once per version: by record id, kept while the record's data is the
 * very same text (a record's id may come back with other data: a waiter stood in for as held
 * keeps its id). Readers must not change what it returns. Entries of records gone are dropped by
 * `sweep`, called with the records left.
 */
export class DecodedRecords {
  private readonly byId = new Map<string, Decoded>();
  constructor(private readonly path: string) {}

  get size(): number {
    return this.byId.size;
  }

  /** Record `id` with `data`, decoded (a malformed one throws, as decodeRecord). */
  get(id: string, data: string): Decoded {
    const known = this.byId.get(id);
    if (known !== undefined && known.data === data) return known;
    const e: Decoded = { data, d: decodeRecord(data, this.path) };
    this.byId.set(id, e);
    return e;
  }

  /**
   * Keeps the entries of `records` only, once there are more than 2n + 8 for n records (amortized
   * O(1) a record). A small constant: every file in use keeps its own (10,000 files each at 2n + 64
   * entries of ~800 B held ~550 MB).
   */
  sweep(records: readonly { readonly id: string }[]): void {
    if (this.byId.size <= 2 * records.length + 8) return;
    const ids = new Set(records.map((r) => r.id));
    for (const id of this.byId.keys()) if (!ids.has(id)) this.byId.delete(id);
  }
}

/**
 * A file's records as `locks()` entries, with the node each belongs to; a waiter's `waitingMs`
 * counted to `now` (Date.now()). Used by the engine's listing and by a worker's last-known one.
 */
export function recordEntries(file: string, records: readonly { readonly node: string; readonly state: 'held' | 'waiting'; readonly data: string }[], now: number): LockEntry[] {
  return records.map((r) => {
    const { req, since } = decodeRecord(r.data, file);
    const e = entry(file, req.kind, req.write, req.start, req.end, req.origin, r.state === 'held' ? 'granted' : 'waiting');
    e.node = r.node;
    if (r.state === 'waiting') e.waitingMs = Math.max(0, now - since);
    return e;
  });
}

/** A granted lock rebuilt from its record (a fresh grant order: records are kept in file order). */
export function lockOf(req: LockRequest): Lock {
  return new Lock(req.start, req.end, nextSeq(), req.kind, req.write, req.owner, req.origin, req.fence);
}

/** The handle key inside a Windows owner key (requests.ts windowsOwner: length-prefixed parts). */
export function windowsHandleOf(owner: string): string {
  const colon = owner.indexOf(':');
  return owner.slice(colon + 1, colon + 1 + Number(owner.slice(1, colon)));
}

/** The node a qualified owner, handle or process key belongs to. */
export function nodeOf(key: string): string {
  return key.slice(key.lastIndexOf('@') + 1);
}

function q(key: string, suffix: string): string {
  return key + suffix;
}

function qualifyReq(r: LockRequest, suffix: string): LockRequest {
  const o = r.origin;
  return {
    ...r,
    owner: q(r.owner, suffix),
    origin: { ...o, handleKey: o.handleKey === '' ? '' : q(o.handleKey, suffix), processKey: q(o.processKey, suffix) },
  };
}

/** `c` with every owner, handle and process key made this node's (see the file comment). */
export function qualify(c: Call, node: string): Call {
  const s = `@${node}`;
  switch (c.op) {
    case 'lockFile':
      return { ...c, req: qualifyReq(c.req, s) };
    case 'lock':
      return { ...c, req: qualifyReq(c.req, s) };
    case 'unlockFile':
    case 'checkIo':
    case 'flush':
      return { ...c, owner: q(c.owner, s) };
    case 'unlockAll':
      return { ...c, handleKey: q(c.handleKey, s), processKey: q(c.processKey, s) };
    case 'closeHandle':
      return { ...c, handleKey: q(c.handleKey, s) };
    case 'release':
      return { ...c, handleKey: q(c.handleKey, s), flockOwner: c.flockOwner === null ? null : q(c.flockOwner, s) };
  }
}
