/**
 * `locksmith stress --nodes 2` interrupted: it cleans up, writes its reports and exits 130.
 * - SIGTERM to the runner (what `kill`, systemd and CI runners send): before, only SIGINT was
 *   handled, and SIGTERM killed the runner at once, leaving the run's redis-server running as an
 *   orphan, a node's FUSE mount dead behind it, and no report.
 * - SIGINT or SIGTERM to the runner's whole process group, as a terminal's Ctrl-C and `timeout`
 *   send them: before, the run's redis-server, nodes and mount clients shared the runner's process
 *   group, died of the same signal, and the runner's orderly cleanup then waited for ever on them
 *   ("0 ops/s, waiting 5", nodes "exited unexpectedly (SIGINT)", the engine "Connection is
   closed") for two 15 s stall limits, and a fault under way was judged failed.
 * Needs redis-server and FUSE (skipped without, saying why; with CI set their absence fails).
 */
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisUnavailable } from '../../driver/redis-server.js';
import type { Report } from '../../driver/report.js';
import { mountUnavailable } from '../../driver/targets/mount.js';

t.setTimeout(10 * 60_000);

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src', 'cli.js');
const why = redisUnavailable() ?? (await mountUnavailable());
if (why !== undefined) {
  if (process.env.CI) throw new Error(`this test needs redis-server and FUSE in CI: ${why}`);
  console.error(`\n!! SKIPPING test/driver/stress-signals.test.ts: ${why}\n`);
}

/** The pids of the live children of `pid` (their parent as /proc/<child>/stat says). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** `p`, or a rejection saying `what` after `ms` (a budget for a hang only; the timer is cleared). */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const mountsUnder = (base: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(base));

/** A nodes run, `signal` sent to the runner (`group`: to its process group, the runner leading it) once its load runs. */
async function interrupted(t: Test, signal: NodeJS.Signals, group: boolean): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'locksmith-signals-'));
  const tmp = join(base, 'tmp');
  mkdirSync(tmp);
  let children: number[] = [];
  let runner: number | undefined;
  t.teardown(() => {
    for (const pid of [...(runner === undefined ? [] : [runner]), ...children]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const m of mountsUnder(tmp).reverse()) execFileSync('fusermount3', ['-u', '-z', m], { stdio: 'ignore' });
    rmSync(base, { recursive: true, force: true });
  });
  const out = join(base, 'out');
  const args = [cli, 'stress', '--nodes', '2', '--workload', 'all', '--clients', '4', '--files', '2', '--workers', '1', '--duration', '60', '--seed', '7', '--out', out];
  const p = spawn(process.execPath, args, { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  runner = p.pid;
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const loadRuns = new Promise<void>((resolve) =>
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/^nodes \/ all: /m.test(stderr)) resolve();
    }),
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
  // The load runs (a progress line), so the redis-server and both nodes are up (a budget for a hang only).
  await within(Promise.race([loadRuns, exited]), 120_000, () => `no progress within 120 s: ${stderr.slice(-2000)}`);
  children = childrenOf(p.pid!);
  t.ok(children.length >= 3, `the run's redis-server and nodes are its children (${children.length})`);
  if (group) process.kill(-p.pid!, signal);
  else p.kill(signal);
  const ended = await within(exited, 120_000, () => `the run did not end within 120 s of ${signal}: ${stdout.slice(-2000)}`);
  t.same(ended, { code: 130, signal: null }, 'it ended as interrupted: exit status 130, not killed by the signal');
  t.match(stdout, /^seed 7: interrupted; /m, 'its verdict line says interrupted');
  t.ok(existsSync(join(out, 'report.json')), 'report.json was written');
  if (existsSync(join(out, 'report.json'))) {
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    t.equal(report.verdict.interrupted, true, "report.json's verdict says interrupted");
    const notes = report.stages.flatMap((x) => x.notes).join('\n');
    t.notMatch(notes, /exited unexpectedly|ended by itself|no operation finished|the engine: no answer/, 'the nodes, their clients and the engine were stopped by the runner, not killed by the signal under it');
  }
  t.same(children.filter(alive), [], "none of its processes (the redis-server, the nodes, the mounts' clients) is left");
  t.same(mountsUnder(tmp), [], 'no mount left behind');
}

t.test('SIGTERM to the runner: cleaned up, reports written, exit status 130', { skip: why }, (t) => interrupted(t, 'SIGTERM', false));
t.test("SIGINT to the runner's process group (a terminal's Ctrl-C): the same", { skip: why }, (t) => interrupted(t, 'SIGINT', true));
t.test("SIGTERM to the runner's process group (timeout): the same", { skip: why }, (t) => interrupted(t, 'SIGTERM', true));
t.test("SIGHUP to the runner's process group (its terminal closed): the same", { skip: why }, (t) => interrupted(t, 'SIGHUP', true));
