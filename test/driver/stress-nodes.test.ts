/**
 * `locksmith stress --nodes 2`: two node processes sharing one lock space on a redis-server the
 * run starts, each also a FUSE mount of one shared directory with client processes on it, one
 * fault of each kind (kill -9 of a node, SIGSTOP past its session's TTL, an engine restart, an
 * engine restart from an older snapshot).
 * Asserts the oracle's verdict over every node's grants (API clients' and mount processes' alike),
 * that the mounts ran and were all undone, that each fault was tried once and resolved within its
 * bounds, and what the reports say. Needs redis-server, and FUSE for the mounts: in CI (CI set)
 * the absence of either fails this file; elsewhere the run is skipped (no redis-server) or runs
 * without mounts (no FUSE), loudly.

 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../driver/main.js';
import { Oracle, type LockRecord, type LogEvent, type RequestRecord } from '../../driver/oracle.js';
import { redisUnavailable } from '../../driver/redis-server.js';
import { sink, skipLoudly } from './nodes-run.js';
import type { Report } from '../../driver/report.js';
import { mountUnavailable } from '../../driver/targets/mount.js';
import { FAULT_KINDS, SESSION_TTL_MS, faultFits } from '../../driver/targets/nodes.js';

const noRedis = redisUnavailable();
skipLoudly('test/driver/stress-nodes.test.ts', noRedis);

const noFuse = await mountUnavailable();
if (noFuse !== undefined) {
  if (process.env.CI) throw new Error(`the nodes target's mounts need FUSE in CI: ${noFuse}`);
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! test/driver/stress-nodes.test.ts runs the nodes WITHOUT MOUNTS: ${noFuse} (in CI, with CI set, this is a failure)\n${bar}\n`);
}

/** The FUSE mounts of this process's mount namespace whose mountpoint is under a run's directory. */
/**
 * The run's temporary directory (TMPDIR while it runs): its mounts are made under it, so the check
 * for mounts left behind sees this run's only, not those of another test file running beside it.
 */
const runTmp = mkdtempSync(join(tmpdir(), 'locksmith-stress-nodes-tmp-'));
t.teardown(() => rmSync(runTmp, { recursive: true, force: true }));
const stressMounts = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(`${runTmp}/`));

const out = mkdtempSync(join(tmpdir(), 'locksmith-stress-nodes-test-'));
t.teardown(() => rmSync(out, { recursive: true, force: true }));

t.test('--nodes 2: one oracle over both nodes, one fault of each kind, each resolved', { skip: noRedis }, async (t) => {
  const dir = join(out, 'run');
  // A short budget: the first round of faults keeps the load going until it has completed.
  const argv = ['--nodes', '2', '--workload', 'all', '--clients', '8', '--files', '3', '--workers', '1', '--duration', '2', '--seed', '7', '--out', dir];
  const stdout = sink();
  const stderr = Object.assign(sink(), { isTTY: false });
  const tmpBefore = process.env.TMPDIR;
  process.env.TMPDIR = runTmp;
  let code: number;
  try {
    code = await main(argv, { out: stdout, err: stderr });
  } finally {
    if (tmpBefore === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpBefore;
  }
  t.comment(stdout.text);
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
  t.equal(report.stages.length, 1);
  const s = report.stages[0]!;
  t.equal(s.target, 'nodes');
  t.ok(s.ops > 300, `${s.ops} operations ran`);
  t.ok(s.oracle.grants > 100, `${s.oracle.grants} grants checked`);

  // The oracle's verdict.
  const byKind = s.oracle.byKind as Record<string, number>;
  const notes = s.notes.join('\n');
  const hung = /still waiting/.test(notes);
  for (const kind of ['conflict', 'unanswered', 'getlk-free', 'getlk-phantom', 'false-deadlock', 'undetected-deadlock', 'bad-reply']) {
    const n = byKind[kind] ?? 0;
    t.equal(n, 0, `no ${kind} violation`);
  }
  for (const v of s.oracle.examples) t.comment(`${v.kind}: ${v.message}`);
  t.same(
    Object.entries(byKind).filter(([, n]) => n > 0),
    [],
    'no violation of any kind',
  );
  const faultFailures = Object.values(s.nodes?.faults ?? {}).reduce((n, f) => n + f.failures, 0);
  t.equal(code, s.oracle.violations > 0 ? 1 : faultFailures > 0 ? 3 : 0, 'the exit code follows the verdict: 1 on a violation, else 3 on a failed fault check');
  t.equal(report.verdict.exitCode, code, 'report.json carries the same verdict');

  // The mounts: each node mounted the shared directory, processes on the mounts called fcntl and
  // flock through them, and no mount is left behind (the killed node's dead one included).
  const m = s.nodes!.mounts;
  if (noFuse === undefined) {
    t.match(m, { ran: true }, 'the nodes mounted');
    t.ok(m?.ran === true && m.processes >= 2, `${m?.ran === true ? m.processes : 0} client processes ran on the mounts`);
    t.match(stdout.text, /nodes: runs \(.*2 nodes \(API clients and mounts\)/, 'the plan says mounts run');
    t.match(stdout.text, /nodes: 2 \(API clients and mounts: \d+ client processes/, 'the report says mounts ran');
    t.match(notes, /FUSE: \d+ processes on 2 mounts; [1-9][\d]* lock events/, 'lock requests reached the mounts');
    t.ok(s.nodes!.perNode.every((x) => (x.onMount ?? 0) >= 1), 'every node had a client on its mount');
  } else {
    t.match(m, { ran: false, why: noFuse });
    t.match(stdout.text, /MOUNTS SKIPPED/);
  }
  t.same(stressMounts(), [], 'no mount left behind');
  for (const n of s.notes) t.comment(`note: ${n}`);
  // Two faults are the documented outcome of the engine restarts this run injects (docs/API.md,
  // "An engine that lost its data"): a step whose connection closed before its reply, and a lock
  // request answered as failed whose step got no reply (a connection closed, or requestTimeoutMs
  // passed while it waited for the restarted engine) and may have applied before the loss. Any
  // other fault is an internal error.
  const documented = /connection closed before the reply|that got no reply from the engine \(the request was answered as failed\) may have applied when the engine lost its data/;
  const faults = notes.split('\n').filter((l) => l.includes('LocksmithFaultWarning: '));
  t.same(faults.filter((l) => !documented.test(l)), [], 'no node hit an internal error (only the documented faults of an engine restart)');
  t.notMatch(notes, /did not exit|exited unexpectedly/, 'no node died by itself');
  t.notOk(hung, 'every client finished');

  // The faults: one of each, each resolved within its bounds.
  const n = s.nodes!;
  t.equal(n.nodes, 2);
  for (const kind of FAULT_KINDS) {
    const f = n.faults[kind];
    t.ok(f !== undefined, `a ${kind} fault was injected`);
    if (f === undefined) continue;
    t.ok(f.tries >= 1, `${kind}: ${f.tries} tries`);
    t.equal(f.failures, 0, `${kind}: resolved ${JSON.stringify(f.timesMs)}${f.why.length > 0 ? `; ${f.why.join(' | ')}` : ''}`);
  }
  for (const v of n.faults.kill?.timesMs.failoverMs ?? []) t.ok(v <= SESSION_TTL_MS + 1000, `kill -9: the witness was granted ${v} ms after the kill`);
  for (const v of n.faults.stop?.timesMs.failoverMs ?? []) t.ok(v <= SESSION_TTL_MS + 1000, `SIGSTOP: the witness was granted ${v} ms after the stop`);
  t.match(n.log.join('\n'), /checkIo through n\S+'s lost probe handle: 33/, 'checkIo answered 33 on the lost handle after the stop');
  t.match(n.log.join('\n'), /with nothing kept\n[^\n]*n\S+'s probe lock was re-asserted; checkIo through its handle: 0/, 'the live holder re-asserted its lock after the engine restart');
  t.match(n.log.join('\n'), /from its snapshot of [\d.]+ ms \(before n\S+ took the probe lock\)\n[^\n]*n\S+'s probe lock was re-asserted; checkIo through its handle: 0/, 'and after the restart from a snapshot that lacked it');
  t.ok(n.perNode.length >= 3, 'the killed node was replaced by a new one');
  t.ok(n.perNode.every((x) => x.ops > 0 || x.ended.startsWith('killed')), 'every node ran operations');
  t.ok(
    n.perNode.filter((x) => !x.ended.startsWith('killed')).every((x) => x.sessions >= 2),
    'every node that lived through the engine restarts opened a new session',
  );

  // What the budget came to: the first round of faults outlasts the 2 s asked for, and the run says so.
  t.match(stdout.text, /, 2 s per target \(nodes with faults: until their first round has completed, about 14 s, past the budget if need be\)\n/);
  t.match(notes, /the load ran [\d.]+ s, past its 2 s budget: the first round of faults \(kill -9, SIGSTOP, engine restart, engine restart from an older snapshot\) completes whatever the budget/);

  // What the reports show.
  t.match(stdout.text, /nodes: n0 [\d,]+ ops \((?:\d+ clients? on its mount, )?killed \(kill -9\)\)/);
  t.match(stdout.text, /fault kill: 1 tries, 0 failures; failover [\d,]+ ms/);
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  t.match(html, /<h3>Faults<\/h3>/);
});

t.test("the oracle's rules for lost locks: revoke, abandon, replies of a node without a session", async (t) => {
  const claim = (owner: string, write: boolean): Omit<LockRecord, 'id' | 'req'> => ({ file: '/f', owner, kind: 'posix', write, start: 0, end: 9, pids: [1] });
  const req = (id: number, client: number, owner: string, wait = false): RequestRecord => ({ ...claim(owner, true), id, client, what: 'lock', wait, text: `lock #${id}` });
  const o = { deadlockKinds: ['posix'] as const, cycleTolerance: 3e9 };
  // A holds [0, 9]; its node loses its session (revoke at 20); B is granted the range at 30.
  const base: LogEvent[] = [
    { t: 1, ev: 'request', req: req(1, 0, 'A') },
    { t: 2, ev: 'grant', lock: { ...claim('A', true), id: 1, req: 1 } },
    { t: 2, ev: 'reply', req: 1, result: 0, outcome: 'ok' },
    { t: 25, ev: 'request', req: req(2, 1, 'B') },
    { t: 30, ev: 'grant', lock: { ...claim('B', true), id: 2, req: 2 } },
    { t: 30, ev: 'reply', req: 2, result: 0, outcome: 'ok' },
  ];
  t.match(Oracle.check(base, o).byKind, { conflict: 1 }, 'without a revoke, a double grant');
  t.equal(Oracle.check([...base, { t: 20, ev: 'revoke', lock: 1, until: 40 }], o).violations, 0, 'a revoked lock no longer counts as held');
  // A request whose node died: abandoned, not unanswered.
  const dead: LogEvent[] = [{ t: 1, ev: 'request', req: req(3, 2, 'C', true) }];
  t.match(Oracle.check(dead, o).byKind, { unanswered: 1 });
  t.equal(Oracle.check([...dead, { t: 5, ev: 'abandon', req: 3, until: 10 }], o).violations, 0, 'an abandoned request needs no reply');
  // E held [0, 9] and asked to release it at 3; its node died before the answer (abandoned at 5).
  // The release may never have reached the engine: the lock is listed until the dead session's
  // records are reaped (`until` 40), so an F_GETLK at 20 may name it, one at 50 may not.
  const getlk = (id: number, at: number): LogEvent[] => [
    { t: at, ev: 'request', req: { ...req(id, 5, 'F'), what: 'getlk' } },
    { t: at + 1, ev: 'reply', req: id, result: 0, outcome: 'ok', answer: { free: false, write: true, start: 0, end: 9, pid: 1 } },
  ];
  const releasing = (end: LogEvent): LogEvent[] => [
    { t: 1, ev: 'request', req: req(5, 4, 'E') },
    { t: 2, ev: 'grant', lock: { ...claim('E', true), id: 5, req: 5 } },
    { t: 2, ev: 'reply', req: 5, result: 0, outcome: 'ok' },
    { t: 3, ev: 'request', req: { ...req(6, 4, 'E'), what: 'unlock' } },
    { t: 3, ev: 'release', lock: 5, req: 6 },
    end,
  ];
  const abandoned = releasing({ t: 5, ev: 'abandon', req: 6, until: 40 });
  t.equal(Oracle.check([...abandoned, ...getlk(7, 20)], o).violations, 0, 'a release abandoned with its node: the lock may be listed until reaped');
  t.match(Oracle.check([...abandoned, ...getlk(7, 50)], o).byKind, { 'getlk-phantom': 1 }, 'and not after');
  // The same release answered while its node had lost its session: the lock went with the session.
  const lostReply = releasing({ t: 5, ev: 'reply', req: 6, result: 0, outcome: 'ok', lost: true, listedUntil: 40 });
  t.equal(Oracle.check([...lostReply, ...getlk(7, 20)], o).violations, 0, 'a release answered without a session: listed until reaped');
  t.match(Oracle.check([...lostReply, ...getlk(7, 50)], o).byKind, { 'getlk-phantom': 1 }, 'and not after');
  // B holds /g and waits for A's /f (blocked by A); B's node dies at 5: its lock and its wait stay
  // in the lock manager until its session is reaped (40). A's wait for /g closing the cycle at 10
  // may get EDEADLK then; at 50 it may not.
  const g = (owner: string, id: number, client: number, file: string, wait: boolean): RequestRecord => ({ ...req(id, client, owner, wait), file });
  const cycle = (at: number): LogEvent[] => [
    { t: 1, ev: 'request', req: g('A', 10, 6, '/f', false) },
    { t: 2, ev: 'grant', lock: { ...claim('A', true), id: 10, req: 10 } },
    { t: 2, ev: 'reply', req: 10, result: 0, outcome: 'ok' },
    { t: 3, ev: 'request', req: g('B', 11, 7, '/g', false) },
    { t: 3, ev: 'grant', lock: { ...claim('B', true), file: '/g', id: 11, req: 11 } },
    { t: 3, ev: 'reply', req: 11, result: 0, outcome: 'ok' },
    { t: 4, ev: 'request', req: g('B', 12, 7, '/f', true) },
    { t: 5, ev: 'revoke', lock: 11, until: 40 },
    { t: 5, ev: 'abandon', req: 12, until: 40 },
    { t: at, ev: 'request', req: g('A', 13, 6, '/g', true) },
    { t: at + 1, ev: 'reply', req: 13, result: -35, outcome: 'deadlock' },
  ];
  t.equal(Oracle.check(cycle(10), o).violations, 0, "EDEADLK through a dead node's wait, before its session is reaped");
  t.match(Oracle.check(cycle(50), o).byKind, { 'false-deadlock': 1 }, 'and not after');
  const healthy = releasing({ t: 5, ev: 'reply', req: 6, result: 0, outcome: 'ok' });
  t.match(Oracle.check([...healthy, ...getlk(7, 20)], o).byKind, { 'getlk-phantom': 1 }, 'a release answered by a live node: gone at its reply');
  // -ENOLCK for a lock request: a bad reply, unless its node had lost its session.
  const enolck = (lost: boolean): LogEvent[] => [
    { t: 1, ev: 'request', req: req(4, 3, 'D') },
    { t: 2, ev: 'reply', req: 4, result: -37, outcome: 'error', ...(lost ? { lost } : {}) },
  ];
  t.match(Oracle.check(enolck(false), o).byKind, { 'bad-reply': 1 });
  t.equal(Oracle.check(enolck(true), o).violations, 0, 'the generic code from a node without a session');
});

t.test('--nodes without redis-server: one line saying how to install it, exit code 2', async (t) => {
  const path = process.env.PATH;
  process.env.PATH = join(out, 'nowhere');
  try {
    const stdout = sink();
    const stderr = Object.assign(sink(), { isTTY: false });
    const code = await main(['--nodes', '2', '--out', join(out, 'none')], { out: stdout, err: stderr });
    t.equal(code, 2);
    t.equal(stderr.text, 'locksmith stress: the nodes target is unavailable: redis-server is not installed (install it with: apt-get install redis-server).\n');
    t.equal(stdout.text, '');
  } finally {
    process.env.PATH = path;
  }
});

t.test('--nodes and --faults options', async (t) => {
  for (const [argv, message] of [
    [['--nodes', '1'], '--nodes must be between 2 and 64, got 1.'],
    [['--faults'], '--faults and --no-faults apply to the nodes target (--nodes N).'],
    [['--nodes', '2', '--faults', '--no-faults'], 'give either --faults or --no-faults, not both.'],
    [['--no-mounts'], '--no-mounts applies to the nodes target (--nodes N).'],
  ] as const) {
    const stderr = Object.assign(sink(), { isTTY: false });
    t.equal(await main([...argv], { out: sink(), err: stderr }), 2, argv.join(' '));
    t.equal(stderr.text, `locksmith stress: ${message}\n`);
  }
});

t.test('a fault of a later round begins only when the budget left covers what its kind took in the first', async (t) => {
  t.ok(faultFits(0, undefined, 0), 'the first round always completes');
  t.ok(faultFits(0, 3000, 0), 'even with no budget left');
  t.ok(faultFits(1, 3000, 3500), 'a later fault that fits');
  t.notOk(faultFits(1, 3000, 2500), 'one that would run past the budget does not begin');
  t.notOk(faultFits(1, undefined, 0), 'nor anything once the budget is spent');
  t.ok(faultFits(2, undefined, Infinity), 'with an operation count, while it is not used up');
});
