/**
 * stuck-waiter: a wait outstanding for longer than the tolerance with nothing that could explain
 * it is named (the shape of a lock kept by the lock manager after its release was answered); a
 * wait behind a held lock, behind an earlier request, behind a lock the log says may still be
 * listed (revoke, maybe, abandon), inside a window withholding grants, or unblocked just within the
 * tolerance is not.
 */
import t from 'tap';
import { Oracle, describe, type LogEvent, type OracleOptions, type RequestRecord } from '../../driver/oracle.js';

const ms = 1e6;
const TOL = 3000 * ms;
const OPTS: OracleOptions = { deadlockKinds: ['posix'], cycleTolerance: 3e9, stuckTolerance: TOL };

type Req = Extract<LogEvent, { ev: 'request' }>;

let ids = 0;
function req(at: number, owner: string, o: Partial<RequestRecord> = {}): Req {
  const r: RequestRecord = { id: ++ids, client: ids, file: '/s', owner, kind: 'posix', write: true, start: 0, end: 9, pids: [1], what: 'lock', wait: true, text: `${owner} F_SETLKW [0, 9]`, ...o };
  return { t: at, ev: 'request', req: r };
}
/** The request granted at `at`: its grant (lock id returned through `lock`) and its reply. */
function granted(at: number, r: Req): { events: LogEvent[]; lock: number } {
  const lock = ++ids;
  return { lock, events: [{ t: at, ev: 'grant', lock: { ...r.req, id: lock, req: r.req.id } }, { t: at, ev: 'reply', req: r.req.id, result: 0, outcome: 'ok' }] };
}
/** A lock held by `owner` from `from` (a non-blocking request) until its unlock at `to`, answered 1 ms later. */
function held(owner: string, from: number, to: number, o: Partial<RequestRecord> = {}): LogEvent[] {
  const r = req(from, owner, { wait: false, text: `${owner} F_SETLK`, ...o });
  const g = granted(from + 1, r);
  const u = req(to, owner, { what: 'unlock', wait: false, text: `${owner} unlock`, ...o });
  return [r, ...g.events, { t: to, ev: 'release', lock: g.lock, req: u.req.id }, u, { t: to + ms, ev: 'reply', req: u.req.id, result: 0, outcome: 'ok' }];
}
/** An event at `at` that changes nothing (the log goes on). */
function tick(at: number): LogEvent[] {
  const r = req(at, 'bystander', { file: '/elsewhere', what: 'getlk', wait: false, text: 'F_GETLK' });
  return [r, { t: at + 1, ev: 'reply', req: r.req.id, result: 0, outcome: 'ok', answer: { free: true } }];
}
const check = (log: LogEvent[], o: OracleOptions = OPTS) => Oracle.check(log, o);

t.test('the defect: a lock released per the log, a waiter blocked until the end with nothing held', async (t) => {
  const b = req(10 * ms, 'B');
  const log = [...held('A', 0, 1000 * ms), b, ...tick(9000 * ms)];
  const s = check(log);
  t.equal(s.byKind['stuck-waiter'], 1, 'named');
  t.equal(s.byKind.unanswered, 1, 'and unanswered, as before');
  const v = s.examples.find((x) => x.kind === 'stuck-waiter')!;
  t.match(v.message, /B F_SETLKW \[0, 9\] by client \d+ \(#\d+\) waited \d+ ms since 1001\.000 ms/);
  t.ok(v.trace.includes(b), 'the trace holds the wait');
  t.ok(v.trace.some((e) => e.ev === 'release'), 'and the release of the last lock that blocked it');
  for (const e of v.trace) t.comment(describe(e));
});

t.test('the defect, answered at last: a waiter blocked for longer than the tolerance is named at its answer', async (t) => {
  const b = req(10 * ms, 'B');
  const s = check([...held('A', 0, 1000 * ms), b, ...granted(8000 * ms, b).events]);
  t.same(s.byKind, { 'stuck-waiter': 1 });
  t.match(s.examples[0]!.message, /waited 6999 ms/);
});

t.test('a wait stuck in its middle is named before its end (checked every quarter tolerance)', async (t) => {
  const b = req(10 * ms, 'B');
  // A holds [0, 9] until 1 s; nothing until 9 s, when C (a later request) holds it; B still waits.
  const c = req(8990 * ms, 'C', { wait: false });
  const log = [...held('A', 0, 1000 * ms), b, c, ...granted(9000 * ms, c).events, { t: 12_000 * ms, ev: 'reply', req: b.req.id, result: -4, outcome: 'interrupted' } as LogEvent];
  const s = check(log);
  t.same(s.byKind, { 'stuck-waiter': 1 });
  t.match(s.examples[0]!.message, /still waits/, 'named while it waited');
});

t.test('a waiter behind a held lock is not stuck', async (t) => {
  const b = req(10 * ms, 'B');
  const s = check([...held('A', 0, 20_000 * ms), b, ...tick(10_000 * ms), ...granted(20_002 * ms, b).events]);
  t.equal(s.violations, 0);
});

t.test('a wait for a range nothing conflicts with: another file, a shared lock, its own lock', async (t) => {
  const b = req(10 * ms, 'B');
  const other = check([...held('A', 0, 20_000 * ms, { file: '/other' }), b, ...granted(20_002 * ms, b).events]);
  t.same(other.byKind, { 'stuck-waiter': 1 }, 'a lock on another file explains nothing');
  const r = req(10 * ms, 'R', { write: false });
  const shared = check([...held('A', 0, 20_000 * ms, { write: false }), r, ...granted(20_002 * ms, r).events]);
  t.same(shared.byKind, { 'stuck-waiter': 1 }, 'nor a shared lock a shared request');
});

t.test('a waiter behind an earlier outstanding request (Windows fifo) is not stuck', async (t) => {
  const win = { kind: 'windows' as const, text: 'LockFileEx' };
  // A holds a shared lock; B asks for an exclusive one (blocked by A); C asks for a shared one,
  // compatible with A, but queued behind B.
  const fifo = (bAt: number) => {
    const b = req(bAt, 'B', win);
    const c = req(20 * ms, 'C', { ...win, write: false });
    const gb = granted(6000 * ms, b);
    const log: LogEvent[] = [...held('A', 0, 5999 * ms, { ...win, write: false }), b, c, ...tick(4000 * ms), ...gb.events];
    const u = req(6500 * ms, 'B', { ...win, what: 'unlock', wait: false });
    log.push({ t: 6500 * ms, ev: 'release', lock: gb.lock, req: u.req.id }, u, { t: 6501 * ms, ev: 'reply', req: u.req.id, result: 0, outcome: 'ok' }, ...granted(6502 * ms, c).events);
    return log;
  };
  t.equal(check(fifo(10 * ms)).violations, 0, 'C queued behind the earlier B for 6.5 s');
  const late = check(fifo(30 * ms));
  t.same(late.byKind, { 'stuck-waiter': 1 }, 'a later B explains nothing: C is named');
  t.match(late.examples[0]!.message, /^LockFileEx by client/);
});

t.test('an earlier request that ended explains a wait until its end', async (t) => {
  const b = req(10 * ms, 'B');
  const c = req(20 * ms, 'C');
  // B waits until 4 s (timed out), C until 6.5 s: at most 2.5 s with nothing.
  const log: LogEvent[] = [b, c, ...tick(2000 * ms), { t: 4000 * ms, ev: 'reply', req: b.req.id, result: -4, outcome: 'interrupted' }, ...granted(6500 * ms, c).events];
  const s = check(log);
  t.same(s.byKind, { 'stuck-waiter': 1 }, 'B itself, with nothing ahead of it for 4 s, is named');
  t.match(s.examples[0]!.message, /B F_SETLKW/);
});

t.test('a waiter behind a lock the log says may still be listed is not stuck', async (t) => {
  const b = (at: number) => req(at, 'B');
  // revoke: A's node lost its session at 1 s; its lock listed until 6 s.
  const revoked = (until: number) => {
    const a = req(0, 'A', { wait: false });
    const g = granted(1, a);
    const w = b(10 * ms);
    return [a, ...g.events, w, { t: 1000 * ms, ev: 'revoke', lock: g.lock, until } as LogEvent, ...tick(4000 * ms), ...granted(6500 * ms, w).events];
  };
  t.equal(check(revoked(6000 * ms)).violations, 0, 'revoked, listed until 6 s, granted at 6.5 s');
  t.same(check(revoked(1500 * ms)).byKind, { 'stuck-waiter': 1 }, 'listed only until 1.5 s: named');
  // maybe: a grant learned while the node had lost its session, listed until 6 s.
  const maybe = (until: number) => {
    const m = req(0, 'M', { wait: false });
    const w = b(10 * ms);
    return [m, w, { t: 5, ev: 'maybe', lock: { ...m.req, id: ++ids, req: m.req.id }, until } as LogEvent, { t: 6, ev: 'reply', req: m.req.id, result: 0, outcome: 'ok' } as LogEvent, ...tick(4000 * ms), ...granted(6500 * ms, w).events];
  };
  t.equal(check(maybe(6000 * ms)).violations, 0, 'maybe held until 6 s');
  t.same(check(maybe(100 * ms)).byKind, { 'stuck-waiter': 1 }, 'maybe held until 0.1 s: named');
  // abandon: D's request (later than B's) died with its node at 1 s; it may have been granted, listed until 6 s.
  const abandoned = (until: number) => {
    const w = b(10 * ms);
    const d = req(20 * ms, 'D', { wait: false });
    return [w, d, { t: 1000 * ms, ev: 'abandon', req: d.req.id, until } as LogEvent, ...tick(4000 * ms), ...granted(6500 * ms, w).events];
  };
  t.equal(check(abandoned(6000 * ms)).violations, 0, 'abandoned, listed until 6 s');
  t.same(check(abandoned(1000 * ms)).byKind, { 'stuck-waiter': 1 }, 'listed until 1 s: named');
  // A release answered without a session: listed until listedUntil.
  const lost = (listedUntil: number) => {
    const log = held('A', 0, 1000 * ms);
    const r = log[log.length - 1] as Extract<LogEvent, { ev: 'reply' }>;
    r.lost = true;
    r.listedUntil = listedUntil;
    const w = b(10 * ms);
    return [...log, w, ...tick(4000 * ms), ...granted(6500 * ms, w).events];
  };
  t.equal(check(lost(6000 * ms)).violations, 0, 'a lost release, listed until 6 s');
  t.same(check(lost(1000 * ms)).byKind, { 'stuck-waiter': 1 }, 'listed until 1 s: named');
});

t.test('a waiter within a window withholding grants (a grace period) is not stuck', async (t) => {
  const grace = (scope: string | undefined, end: number) => {
    const w = req(10 * ms, 'n0:B');
    return [
      ...held('n1:A', 0, 1000 * ms),
      w,
      // The node's window opens with no end known, and is given one when it closes.
      { t: 1000 * ms, ev: 'withhold', key: 'n0 window 1', until: Infinity, ...(scope === undefined ? {} : { scope }) } as LogEvent,
      ...tick(3000 * ms),
      { t: 3500 * ms, ev: 'withhold', key: 'n0 window 1', until: end, ...(scope === undefined ? {} : { scope }) } as LogEvent,
      ...tick(5000 * ms),
      ...granted(8000 * ms, w).events,
    ];
  };
  t.equal(check(grace('n0:', 5500 * ms)).violations, 0, "its node's window, until 5.5 s");
  t.equal(check(grace(undefined, 5500 * ms)).violations, 0, 'a window for every owner');
  t.same(check(grace('n1:', 5500 * ms)).byKind, { 'stuck-waiter': 1 }, "another node's window explains nothing");
  t.same(check(grace('n0:', 4000 * ms)).byKind, { 'stuck-waiter': 1 }, 'a window closed at 4 s: 4 s of nothing after it');
  // A window that closed long ago is not reopened by a later event with its key: a new one begins.
  const w = req(10 * ms, 'B');
  const reopened: LogEvent[] = [
    { t: 1, ev: 'withhold', key: 'k', until: 5 * ms },
    w,
    { t: 6000 * ms, ev: 'withhold', key: 'k', until: 7000 * ms },
    ...granted(7500 * ms, w).events,
  ];
  const s = check(reopened);
  t.same(s.byKind, { 'stuck-waiter': 1 }, 'nothing from 10 ms to 6 s');
  t.match(s.examples[0]!.message, /since it was issued/);
});

t.test('a waiter unblocked just within the tolerance is not stuck; just past it, it is', async (t) => {
  // A's unlock is answered at 1001 ms: the release may reach the lock manager only then.
  const at = (grantAt: number) => {
    const b = req(10 * ms, 'B');
    return check([...held('A', 0, 1000 * ms), b, ...tick(2000 * ms), ...granted(grantAt, b).events]);
  };
  t.equal(at(1001 * ms + TOL - ms).violations, 0, 'granted 1 ms within the tolerance');
  t.equal(at(1001 * ms + TOL).violations, 0, 'granted exactly at the tolerance');
  t.same(at(1001 * ms + TOL + ms).byKind, { 'stuck-waiter': 1 }, 'granted 1 ms past it');
  t.same(check([...held('A', 0, 1000 * ms), req(10 * ms, 'B'), ...tick(1001 * ms + 6 * TOL)], { ...OPTS, stuckTolerance: 10 * TOL }).byKind, { unanswered: 1 }, 'the tolerance is an option');
});

t.test('flock waits see only flock locks', async (t) => {
  const fl = { kind: 'flock' as const, start: 0, end: Infinity, text: 'flock LOCK_EX' };
  const b = req(10 * ms, 'B', fl);
  t.equal(check([...held('A', 0, 20_000 * ms, fl), b, ...granted(20_002 * ms, b).events]).violations, 0, 'behind a flock lock');
  const c = req(10 * ms, 'C', fl);
  t.same(check([...held('A', 0, 20_000 * ms), c, ...granted(20_002 * ms, c).events]).byKind, { 'stuck-waiter': 1 }, 'a byte-range lock never blocks flock');
});

t.test('bad options are refused clearly', async (t) => {
  t.throws(() => new Oracle({ ...OPTS, stuckTolerance: 0 }), /stuckTolerance must be a positive number of ns, got 0/);
  t.throws(() => new Oracle({ ...OPTS, stuckTolerance: Number.NaN }), /stuckTolerance/);
});

t.test('a long log with a wait that stays explained all along is checked in time linear in its length', async (t) => {
  // B waits 200 s for [0, 9] behind A's lock while others lock and unlock [100, 109] 100k times.
  const n = 50_000;
  const b = req(10 * ms, 'B');
  const log: LogEvent[] = [...held('A', 0, 200_000 * ms), b];
  for (let i = 0; i < n; i++) log.push(...held(`o${i % 7}`, 20 * ms + i * 3 * ms, 20 * ms + i * 3 * ms + ms, { start: 100, end: 109 }));
  log.push(...granted(200_002 * ms, b).events);
  const s = check(log);
  t.equal(s.violations, 0);
  t.ok(s.events > 4 * n, `${s.events} events`);
});

t.test('planted in a real log: a wait that never ended while the log went on is named, and nothing else', async (t) => {
  const { runApi } = await import('../../driver/targets/api.js');
  const r = await runApi({ target: 'api', workload: 'all', seed: 7, clients: 8, files: 2, workers: 2, ops: 2000, keepLog: true });
  const log = r.log!;
  t.equal(check(log).violations, 0, 'the real log is clean');
  // The first wait that had to wait for a lock released later: cut its grant and answer, and let
  // the log go on past the tolerance.
  const waits = log.filter((e): e is Req => e.ev === 'request' && e.req.wait && e.req.what === 'lock');
  const answered = new Map(log.flatMap((e) => (e.ev === 'reply' ? [[e.req, e] as const] : [])));
  const w = waits.find((x) => answered.get(x.req.id)!.outcome === 'ok' && answered.get(x.req.id)!.t - x.t > 2 * ms)!;
  t.ok(w, 'a wait that waited');
  const cut = log.filter((e) => !((e.ev === 'reply' && e.req === w.req.id) || (e.ev === 'grant' && e.lock.req === w.req.id)));
  const end = log[log.length - 1]!.t;
  const s = check([...cut, ...tick(end + 2 * TOL)]);
  t.same(s.byKind, { 'stuck-waiter': 1, unanswered: 1 });
  t.ok(s.examples.find((v) => v.kind === 'stuck-waiter')!.trace.includes(w), 'the stuck wait is the one cut');
});
