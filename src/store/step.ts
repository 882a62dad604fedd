/**
 * The boundary between an actor and an engine: steps and records checked once (TypeError naming
 * the field), resolved against this node's session, and the record text the Redis engine keeps.
 */
import { NAME } from './options.js';
import type { EdgeInput, EngineStep, NotifyInput, RecordInput, Step, StoreRecord } from './types.js';

function str(v: unknown, what: string, nonEmpty = true): string {
  if (typeof v !== 'string' || (nonEmpty && v === '')) throw new TypeError(`${what} must be a${nonEmpty ? ' non-empty' : ''} string, got ${typeof v === 'string' ? "''" : typeof v}`);
  return v;
}

function epochOf(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new TypeError(`${what} must be a session epoch (a positive integer), got ${String(v)}`);
  return v;
}

function nodeName(v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME.test(v)) throw new TypeError(`${what} must be a node name (1 to 64 of A-Z a-z 0-9 . _ -), got ${String(v)}`);
  return v;
}

function list<T>(v: readonly T[] | undefined, what: string): readonly T[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new TypeError(`${what} must be an array`);
  return v;
}

/** A record to put, with node and session resolved: this node's records get its current session. */
export function toRecord(r: RecordInput, self: string, epoch: number, what = 'record'): StoreRecord {
  if (r === null || typeof r !== 'object') throw new TypeError(`${what} must be an object`);
  const id = str(r.id, `${what}.id`);
  if (r.state !== 'held' && r.state !== 'waiting') throw new TypeError(`${what}.state must be 'held' or 'waiting', got ${String(r.state)}`);
  const data = str(r.data, `${what}.data`, false);
  const node = r.node === undefined ? self : nodeName(r.node, `${what}.node`);
  let e: number;
  if (r.epoch !== undefined) e = epochOf(r.epoch, `${what}.epoch`);
  else if (node === self) e = epoch;
  else throw new TypeError(`${what}.epoch is required for a record of another node (${node}): copy it from that node's records`);
  let requestId = '';
  if (r.state === 'waiting') {
    requestId = str(r.requestId, `${what}.requestId (a waiter's)`);
    if (requestId.includes('|')) throw new TypeError(`${what}.requestId must not contain '|'`);
  } else if (r.requestId !== undefined && r.requestId !== '') {
    throw new TypeError(`${what}.requestId belongs to waiters only`);
  }
  return { id, node, epoch: e, state: r.state, requestId, data, seq: 0 };
}

function toNotify(n: NotifyInput, what: string): Required<NotifyInput> {
  if (n === null || typeof n !== 'object') throw new TypeError(`${what} must be an object`);
  return {
    node: nodeName(n.node, `${what}.node`),
    epoch: epochOf(n.epoch, `${what}.epoch`),
    requestId: str(n.requestId, `${what}.requestId`, false),
    kind: str(n.kind, `${what}.kind`),
    data: n.data === undefined ? '' : str(n.data, `${what}.data`, false),
  };
}

export function toEdge(e: EdgeInput, what: string): Required<EdgeInput> {
  if (e === null || typeof e !== 'object') throw new TypeError(`${what} must be an object`);
  const owners = (v: readonly string[] | undefined, w: string) => list(v, w).map((o, i) => str(o, `${w}[${i}]`));
  return {
    waiter: str(e.waiter, `${what}.waiter`),
    owner: str(e.owner, `${what}.owner`),
    hard: owners(e.hard, `${what}.hard`),
    soft: owners(e.soft, `${what}.soft`),
    sessions: sessionsOf(e.sessions, `${what}.sessions`),
    check: e.check === undefined ? false : e.check === true,
  };
}

/** An edge's target sessions: owner -> `node|epoch` strings (a fresh object: no prototype keys). */
function sessionsOf(v: EdgeInput['sessions'], what: string): Readonly<Record<string, readonly string[]>> {
  const out: Record<string, readonly string[]> = Object.create(null);
  if (v === undefined) return out;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError(`${what} must be an object (owner -> ['node|epoch', ...])`);
  for (const [owner, ss] of Object.entries(v)) {
    const l = list(ss, `${what}[${JSON.stringify(owner)}]`);
    // An empty list would make the engine skip the target (no live session): a missed deadlock.
    if (l.length === 0) throw new TypeError(`${what}[${JSON.stringify(owner)}] must name at least one session (leave the owner out to name none)`);
    out[owner] = l.map((x, i) => {
      const m = typeof x === 'string' ? /^(.*)\|([1-9][0-9]{0,15})$/.exec(x) : null;
      if (m === null || !NAME.test(m[1]!) || !Number.isSafeInteger(Number(m[2]))) {
        throw new TypeError(`${what}[${JSON.stringify(owner)}][${i}] must be a session 'node|epoch' (a node name and a positive integer), got ${String(x)}`);
      }
      return x;
    });
  }
  return out;
}

function unique(ids: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new TypeError(`${what}: '${id}' appears twice`);
    seen.add(id);
  }
}

/**
 * How much earlier than its deadline a step is refused on the engine's clock: the clocks' drift
 * over a renewal interval (a few seconds) and the engine's whole milliseconds.
 */
export const LATE_MARGIN_MS = 5;

/**
 * A Step checked and resolved for the engines (this node `self` in session `epoch`). `offset`:
 * the engine's clock minus performance.timeOrigin + performance.now(), at least (NaN: not known,
 * the step gets no deadline on the engine).
 */
export function toEngineStep(s: Step, self: string, epoch: number, stepId: string, offset = Number.NaN): EngineStep {
  if (s === null || typeof s !== 'object') throw new TypeError('step must be an object');
  // Any string names a file, '' too (API.md: the same string is the same file): every key and
  // field a file name goes into ends with it or is its own value, and nothing tells a file by
  // its name being empty (the inbox's 'open' marker is told by its kind).
  const file = str(s.file, 'step.file', false);
  if (typeof s.base !== 'number' || !Number.isSafeInteger(s.base) || s.base < 0) throw new TypeError(`step.base must be a version (an integer >= 0), got ${String(s.base)}`);
  const remove = list(s.remove, 'step.remove').map((id, i) => str(id, `step.remove[${i}]`));
  const put = list(s.put, 'step.put').map((r, i) => toRecord(r, self, epoch, `step.put[${i}]`));
  const notify = list(s.notify, 'step.notify').map((n, i) => toNotify(n, `step.notify[${i}]`));
  const edges = list(s.edges, 'step.edges').map((e, i) => toEdge(e, `step.edges[${i}]`));
  unique(remove, 'step.remove');
  unique(
    put.map((r) => r.id),
    'step.put',
  );
  unique(
    edges.map((e) => e.waiter),
    'step.edges',
  );
  if (s.grants !== undefined && typeof s.grants !== 'boolean') throw new TypeError('step.grants must be a boolean');
  const grants = s.grants ?? put.some((r) => r.state === 'held');
  if (s.deadline !== undefined && (typeof s.deadline !== 'number' || !Number.isFinite(s.deadline))) throw new TypeError(`step.deadline must be a time in ms, got ${String(s.deadline)}`);
  const until = s.deadline === undefined || !Number.isFinite(offset) ? undefined : Math.floor(s.deadline + offset) - LATE_MARGIN_MS;
  const fence = s.fence === undefined ? undefined : fenceRange(s.fence);
  return { file, base: s.base, step: stepId, grants, remove, put, notify, edges, until, ...(fence === undefined ? {} : { fence }) };
}

function fenceRange(f: unknown): readonly [number, number] {
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
  if (!Array.isArray(f) || f.length !== 2 || !ok(f[0]) || !ok(f[1]) || f[0] > f[1]) throw new TypeError(`step.fence must be [lowest, highest], safe integers > 0, got ${String(f)}`);
  return [f[0], f[1]];
}

// ---- the record text kept by the Redis engine --------------------------------------------------
// A stored record is `seq|state|node|epoch|requestId|data` (state 'h' or 'w'): the script reads
// the first five fields (node and requestId never contain '|'), `data` is the rest, untouched.

/** A record as sent to the engine (the script prepends `seq|`). */
export function encodeRecord(r: StoreRecord): string {
  return `${r.state === 'held' ? 'h' : 'w'}|${r.node}|${r.epoch}|${r.requestId}|${r.data}`;
}

/** A stored record (`id` is its hash field). */
export function decodeRecord(id: string, text: string): StoreRecord {
  let at = 0;
  const field = (): string => {
    const bar = text.indexOf('|', at);
    if (bar < 0) throw new Error(`locksmith store: a record of the engine is malformed: ${JSON.stringify(text.slice(0, 80))}`);
    const f = text.slice(at, bar);
    at = bar + 1;
    return f;
  };
  const seq = Number(field());
  const state = field() === 'h' ? 'held' : 'waiting';
  const node = field();
  const epoch = Number(field());
  const requestId = field();
  return { id, node, epoch, state, requestId, data: text.slice(at), seq };
}

export function bySeq(a: StoreRecord, b: StoreRecord): number {
  return a.seq - b.seq;
}
