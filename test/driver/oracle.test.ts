/**
 * The oracle catches what it must: violations planted in a log recorded from a real API run
 * (a release moved later, a grant duplicated to another owner, a wait left unanswered, false
 * F_GETLK answers, a false EDEADLK), cycles of waits left undetected; and it accepts the clean log,
 * a real deadlock and the documented conflict rules.
 */
import t from 'tap';
import { Oracle, conflicts, snapshotConflicts, type Claim, type LockRecord, type LogEvent, type OracleOptions, type Outcome, type RequestRecord } from '../../driver/oracle.js';
import { runApi } from '../../driver/targets/api.js';

const OPTS: OracleOptions = { deadlockKinds: ['posix'], cycleTolerance: 3e9 };

const claim = (c: Partial<Claim>): Claim => ({ file: '/f', owner: 'a', kind: 'posix', write: true, start: 0, end: 9, pids: [1], ...c });

t.test('conflict rules', async (t) => {
  t.ok(conflicts(claim({}), claim({ owner: 'b', write: false })), 'write vs read of another owner');
  t.notOk(conflicts(claim({ write: false }), claim({ owner: 'b', write: false })), 'two readers');
  t.notOk(conflicts(claim({}), claim({})), 'a POSIX owner never conflicts with itself');
  t.notOk(conflicts(claim({}), claim({ owner: 'b', start: 10, end: 19 })), 'adjacent ranges');
  t.notOk(conflicts(claim({ kind: 'flock', start: 0, end: Infinity }), claim({ owner: 'b' })), 'flock and byte-range locks never meet');
  const win = (c: Partial<Claim>) => claim({ kind: 'windows', owner: 'w', ...c });
  t.ok(conflicts(win({ write: false }), win({ write: true })), 'a Windows exclusive request conflicts with its own shared lock');
  t.notOk(conflicts(win({ write: true }), win({ write: false })), 'a shared lock stacks on its own exclusive one');
  const zero = win({ owner: 'z', start: 100, end: 99 });
  t.ok(conflicts(zero, claim({ owner: 'b', start: 99, end: 100 })), 'zero-length at 100 is overlapped by (99, 2)');
  t.notOk(conflicts(zero, claim({ owner: 'b', start: 95, end: 99 })), 'not by (95, 5)');
  t.notOk(conflicts(zero, claim({ owner: 'b', start: 100, end: 104 })), 'not by (100, 5)');
  t.notOk(conflicts(win({ owner: 'z', start: 0, end: -1 }), claim({ owner: 'b', start: 0, end: Infinity })), '(0, 0) overlaps nothing');
});

t.test('conflict rules over a listing (grant order unknown)', async (t) => {
  const win = (c: Partial<Claim>) => claim({ kind: 'windows', owner: 'w', ...c });
  t.equal(snapshotConflicts([claim({}), claim({ owner: 'b', write: false })]).length, 1, 'write and read of two owners');
  t.equal(snapshotConflicts([claim({}), claim({ owner: 'b', file: '/g' })]).length, 0, 'different files never meet');
  t.equal(snapshotConflicts([win({ write: false }), win({})]).length, 0, 'a shared and an exclusive record of one owner may be stacked (in one order)');
  t.equal(snapshotConflicts([win({}), win({})]).length, 1, 'two exclusive records of one owner never');
  t.equal(snapshotConflicts([claim({}), claim({}), claim({ owner: 'b', write: false })]).length, 2, 'every pair is named');
});

// ---- a real recorded log ---------------------------------------------------------------------

const recorded = runApi({ target: 'api', workload: 'all', seed: 5, clients: 8, files: 2, workers: 2, ops: 4000, keepLog: true });

async function realLog(): Promise<LogEvent[]> {
  const r = await recorded;
  return r.log!.map((e) => ({ ...e }));
}

const grants = (log: LogEvent[]) => log.filter((e): e is Extract<LogEvent, { ev: 'grant' }> => e.ev === 'grant');
const check = (log: LogEvent[]) => Oracle.check(log, OPTS);

t.test('the recorded log is clean and rich enough to plant in', async (t) => {
  const log = await realLog();
  const s = check(log);
  t.equal(s.violations, 0, 'no violation in the real log');
  t.ok(s.grants > 500, `grants: ${s.grants}`);
  t.ok(s.getlks > 50, `F_GETLK answers: ${s.getlks}`);
  t.ok(log.some((e) => e.ev === 'request' && e.req.wait), 'blocking requests');
});

/** A release of one lock followed by a conflicting grant to another owner, in the same file. */
function releaseThenConflict(log: LogEvent[]): { release: Extract<LogEvent, { ev: 'release' }>; held: LockRecord; grant: Extract<LogEvent, { ev: 'grant' }> } {
  const locks = new Map(grants(log).map((g) => [g.lock.id, g.lock]));
  const released: { release: Extract<LogEvent, { ev: 'release' }>; held: LockRecord }[] = [];
  for (const e of log) {
    if (e.ev === 'release') released.push({ release: e, held: locks.get(e.lock)! });
    if (e.ev !== 'grant') continue;
    const hit = released.find((r) => r.held.file === e.lock.file && r.held.owner !== e.lock.owner && conflicts(r.held, e.lock));
    if (hit) return { ...hit, grant: e };
  }
  throw new Error('no release followed by a conflicting grant in the log');
}

t.test('planted: a release moved after a conflicting grant', async (t) => {
  const log = await realLog();
  const { release, held, grant } = releaseThenConflict(log);
  release.t = grant.t + 0.5;
  const s = check(log);
  t.equal(s.byKind.conflict, 1, 'exactly one conflict');
  const v = s.examples.find((x) => x.kind === 'conflict')!;
  t.ok(v.trace.length <= 4, `a short trace (${v.trace.length} events)`);
  const granted = v.trace.filter((e) => e.ev === 'grant').map((e) => (e as { lock: LockRecord }).lock.id);
  t.same(granted.sort(), [held.id, grant.lock.id].sort(), 'the trace shows both grants');
  t.match(v.message, /was granted to client .* while .* was held/);
});

t.test('planted: a grant duplicated to another owner', async (t) => {
  const log = await realLog();
  const g = grants(log).find((e) => e.lock.write && e.lock.kind !== 'flock')!;
  const copy: LogEvent = { t: g.t + 0.5, ev: 'grant', lock: { ...g.lock, id: 1e9, owner: 'intruder' } };
  log.splice(log.indexOf(g) + 1, 0, copy);
  const s = check(log);
  t.ok((s.byKind.conflict ?? 0) >= 1, 'caught as a conflict');
  t.ok(s.examples.some((v) => v.kind === 'conflict' && v.trace.includes(copy) && v.trace.includes(g)), 'the trace holds the original and the copy');
});

t.test('planted: a wait that never ended', async (t) => {
  const log = await realLog();
  const req = log.find((e): e is Extract<LogEvent, { ev: 'request' }> => e.ev === 'request' && e.req.wait)!;
  const cut = log.filter((e) => !((e.ev === 'reply' && e.req === req.req.id) || (e.ev === 'grant' && e.lock.req === req.req.id)));
  const s = check(cut);
  t.equal(s.byKind.unanswered, 1);
  const v = s.examples.find((x) => x.kind === 'unanswered')!;
  t.same(v.trace, [req], 'the trace is the request');
});

t.test('planted: false F_GETLK answers', async (t) => {
  const log = await realLog();
  const reply = log.find((e): e is Extract<LogEvent, { ev: 'reply' }> => e.ev === 'reply' && e.answer?.free === true)!;
  const q = (log.find((e) => e.ev === 'request' && e.req.id === reply.req) as Extract<LogEvent, { ev: 'request' }>).req;
  // "No conflict" while another owner's write lock over the range was held throughout.
  const blocker: LockRecord = { ...q, id: 2e9, req: -1, owner: 'holder', kind: 'posix', write: true, pids: [7] };
  const planted: LogEvent[] = [{ t: -1, ev: 'grant', lock: blocker }, { t: reply.t + 0.5, ev: 'release', lock: blocker.id, req: -1 }];
  let s = check([...planted, ...log]);
  t.ok((s.byKind['getlk-free'] ?? 0) >= 1, '"no conflict" contradicted by a lock held over the whole request');
  const v = s.examples.find((x) => x.kind === 'getlk-free' && x.trace.some((e) => e === reply))!;
  t.ok(v, 'the planted answer is among those caught');
  t.ok(v.trace.length <= 4, 'short trace');
  // A conflict naming a lock nobody could have held.
  reply.answer = { free: false, write: true, start: q.start, end: q.end, pid: 4242 };
  s = check(log);
  t.equal(s.byKind['getlk-phantom'], 1, 'a phantom holder');
  t.same(s.examples.find((v) => v.kind === 'getlk-phantom')!.trace.map((e) => e.ev), ['request', 'reply']);
});

t.test('planted: answers a request cannot have', async (t) => {
  const log = await realLog();
  const requests = new Map(log.filter((e): e is Extract<LogEvent, { ev: 'request' }> => e.ev === 'request').map((e) => [e.req.id, e.req]));
  const released = new Set(log.flatMap((e) => (e.ev === 'release' ? [e.req] : [])));
  const replies = log.filter((e): e is Extract<LogEvent, { ev: 'reply' }> => e.ev === 'reply');
  const find = (what: string, f: (q: RequestRecord, r: Extract<LogEvent, { ev: 'reply' }>) => boolean) => {
    const r = replies.find((r) => f(requests.get(r.req)!, r));
    if (r === undefined) throw new Error(`no ${what} in the recorded log`);
    return r;
  };
  const notLocked = find('refused UnlockFileEx', (q, r) => q.kind === 'windows' && q.what === 'unlock' && r.result === 158);
  t.notOk(released.has(notLocked.req), 'the clean log has UnlockFileEx calls refused (ERROR_NOT_LOCKED) for records the client did not hold');
  const plants: [string, Extract<LogEvent, { ev: 'reply' }>, number, Outcome][] = [
    ['an unlock refused as busy', find('POSIX unlock', (q) => q.what === 'unlock' && q.kind === 'posix'), -11, 'busy'],
    ['a non-blocking lock interrupted', find('F_SETLK', (q) => q.what === 'lock' && !q.wait), -4, 'interrupted'],
    ['EDEADLK for a non-blocking lock', find('F_SETLK', (q) => q.what === 'lock' && !q.wait && q.kind === 'posix'), -35, 'deadlock'],
    ['F_GETLK failing', find('F_GETLK', (q) => q.what === 'getlk'), -22, 'error'],
    ['a lock failing with an error', find('lock', (q) => q.what === 'lock'), -37, 'error'],
    ['UnlockFileEx of a held record refused', find('UnlockFileEx of a held record', (q, r) => q.kind === 'windows' && q.what === 'unlock' && released.has(r.req)), 158, 'error'],
    ['LockFileEx answered with an errno', find('refused LockFileEx', (q, r) => q.kind === 'windows' && q.what === 'lock' && r.result === 33), -11, 'busy'],
    ['F_SETLK answered with a Win32 code', find('refused F_SETLK', (q, r) => q.kind === 'posix' && q.what === 'lock' && r.result === -11), 33, 'busy'],
  ];
  for (const [what, r, result, outcome] of plants) {
    const copy = log.map((e) => (e === r ? { ...r, result, outcome } : e));
    const s = check(copy);
    t.equal(s.byKind['bad-reply'], 1, what);
    t.same(s.examples.find((v) => v.kind === 'bad-reply')?.trace.map((e) => e.ev), ['request', 'reply'], `${what}: the trace is the request and its answer`);
  }
});

// ---- small synthetic logs --------------------------------------------------------------------

let ids = 0;
function req(t: number, owner: string, start: number, end: number, wait = true): Extract<LogEvent, { ev: 'request' }> {
  const r: RequestRecord = { id: ++ids, client: 0, file: '/d', owner, kind: 'posix', write: true, start, end, pids: [1], what: 'lock', wait, text: `${owner} wants [${start}, ${end}]` };
  return { t, ev: 'request', req: r };
}
function grant(t: number, r: Extract<LogEvent, { ev: 'request' }>): LogEvent {
  return { t, ev: 'grant', lock: { ...r.req, id: ++ids, req: r.req.id } };
}
function reply(t: number, r: Extract<LogEvent, { ev: 'request' }>, result: number, outcome: 'ok' | 'deadlock' | 'interrupted'): LogEvent {
  return { t, ev: 'reply', req: r.req.id, result, outcome };
}
const ms = 1e6;

/** A holds [0, 9] and waits for [10, 19]; B holds [10, 19] and waits for [0, 9]; B's wait ends at `bEnd`. */
function cycle(bOutcome: 'deadlock' | 'interrupted', bEnd: number): LogEvent[] {
  const a1 = req(0, 'A', 0, 9, false);
  const b1 = req(1, 'B', 10, 19, false);
  const a2 = req(10 * ms, 'A', 10, 19);
  const b2 = req(11 * ms, 'B', 0, 9);
  return [
    a1, grant(1, a1), reply(1, a1, 0, 'ok'),
    b1, grant(2, b1), reply(2, b1, 0, 'ok'),
    a2, b2,
    reply(bEnd, b2, bOutcome === 'deadlock' ? -35 : -4, bOutcome),
    reply(bEnd + 1, a2, -4, 'interrupted'),
  ];
}

t.test('a real cycle answered with EDEADLK is accepted', async (t) => {
  const s = Oracle.check(cycle('deadlock', 12 * ms), OPTS);
  t.equal(s.deadlocks, 1);
  t.equal(s.violations, 0, 'the EDEADLK names a real cycle, broken at once');
});

t.test('a cycle nobody broke for seconds is an undetected deadlock', async (t) => {
  const s = Oracle.check(cycle('interrupted', 5000 * ms), OPTS);
  t.equal(s.byKind['undetected-deadlock'], 1);
  const v = s.examples.find((x) => x.kind === 'undetected-deadlock')!;
  t.match(v.message, /cycle of 2 waits/);
  t.equal(v.trace.length, 4, 'both holds and both waits');
});

/** Something later on another file, for the checks to run at `at`. */
function tickAt(at: number): LogEvent[] {
  const tick = req(at, 'Z', 0, 0, false);
  tick.req.file = '/elsewhere';
  return [tick, reply(at + 1, tick, 0, 'ok')];
}

/**
 * D, then C wait on A's byte 0 (issued first, so the search starts there); A and B, each holding a
 * byte, wait for each other from `abAt` on. Checked at 4.5 s.
 */
function youngBesideWaits(abAt: number): LogEvent[] {
  const a = req(0, 'A', 0, 0, false);
  const b = req(1, 'B', 1, 1, false);
  return [
    a, grant(1, a), reply(1, a, 0, 'ok'),
    b, grant(2, b), reply(2, b, 0, 'ok'),
    req(10, 'D', 0, 0), req(20, 'C', 0, 0),
    req(abAt, 'A', 1, 1), req(abAt + 1, 'B', 0, 0),
    ...tickAt(4500 * ms),
  ];
}

t.test('a young cycle beside waits on one of its owners is not a cycle of one wait', async (t) => {
  // Tolerance 3 s: the A <-> B cycle is 1 s old at 4.5 s.
  const s = Oracle.check(youngBesideWaits(3500 * ms), OPTS);
  t.same(s.byKind, { unanswered: 4 }, 'only the waits left without an answer: no undetected deadlock');
  // The same shape with the A <-> B cycle old: named once, with both its waits.
  const old = Oracle.check(youngBesideWaits(100 * ms), OPTS);
  t.equal(old.byKind['undetected-deadlock'], 1);
  t.match(old.examples.find((v) => v.kind === 'undetected-deadlock')!.message, /cycle of 2 waits \((A -> B|B -> A)\)/);
});

t.test('an old cycle beside a young one through the same owner is still named', async (t) => {
  // A holds byte 0; B and G hold byte 1 shared (B first). A waits for byte 1 (blocked by both)
  // and G for byte 0 since 100 ms: the cycle A <-> G is old at 4.5 s. B waits for byte 0 from
  // 3.5 s: the cycle A <-> B is young, and the search from A meets it first.
  const a = req(0, 'A', 0, 0, false);
  const b = req(1, 'B', 1, 1, false);
  b.req.write = false;
  const g = req(2, 'G', 1, 1, false);
  g.req.write = false;
  const log: LogEvent[] = [
    a, grant(1, a), reply(1, a, 0, 'ok'),
    b, grant(2, b), reply(2, b, 0, 'ok'),
    g, grant(3, g), reply(3, g, 0, 'ok'),
    req(100 * ms, 'A', 1, 1), req(101 * ms, 'G', 0, 0), req(3500 * ms, 'B', 0, 0),
    ...tickAt(4500 * ms),
  ];
  const s = Oracle.check(log, OPTS);
  t.equal(s.byKind['undetected-deadlock'], 1, 'one undetected deadlock');
  t.match(s.examples.find((x) => x.kind === 'undetected-deadlock')!.message, /cycle of 2 waits \((A -> G|G -> A)\)/, 'the old one, A <-> G');
});

t.test('planted: EDEADLK without any cycle', async (t) => {
  const log = await realLog();
  const lone = req(log[log.length - 1]!.t + 1, 'p999', 0, 9);
  lone.req.file = '/nowhere';
  const s = check([...log, lone, reply(lone.t + 1, lone, -35, 'deadlock')]);
  t.equal(s.byKind['false-deadlock'], 1);
  t.same(s.examples.find((v) => v.kind === 'false-deadlock')!.trace.map((e) => e.ev), ['request', 'reply']);
});

t.test('a log as long as a stress run\'s is checked whole (its last stamp found without spreading every stamp into one call)', async (t) => {
  const n = 100_000;
  const log: LogEvent[] = [];
  for (let i = 0; i < n; i++) {
    const req: RequestRecord = { ...claim({ owner: `o${i % 7}`, start: (i % 50) * 10, end: (i % 50) * 10 + 9 }), id: i + 1, client: i % 7, what: 'getlk', wait: false, text: `getlk ${i}` };
    log.push({ t: 2 * i + 1, ev: 'request', req }, { t: 2 * i + 2, ev: 'reply', req: i + 1, result: 0, outcome: 'ok', answer: { free: true } });
  }
  const s = Oracle.check(log, OPTS);
  t.equal(s.events, 2 * n, 'every event fed');
  t.equal(s.getlks, n, 'every F_GETLK checked');
  t.equal(s.violations, 0, 'nothing wrong with it');
});
