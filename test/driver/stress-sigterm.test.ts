/**
 * `locksmith stress --nodes 2` ended by SIGTERM (what `timeout`, `kill`, systemd and CI runners
 * send): it ends as when interrupted by Ctrl-C, cleaning up and writing its reports, exit status
 * 130. Before, only SIGINT was handled: SIGTERM killed the runner at once, leaving the run's
 * redis-server running as an orphan, a node's FUSE mount dead behind it, and no report. Needs
 * redis-server and FUSE (skipped without, saying why; with CI set their absence fails).
 */
import t from 'tap';
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
  console.error(`\n!! SKIPPING test/driver/stress-sigterm.test.ts: ${why}\n`);
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

t.test('SIGTERM during a nodes run: cleaned up, reports written, exit status 130', { skip: why }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'locksmith-sigterm-'));
  const tmp = join(base, 'tmp');
  mkdirSync(tmp);
  let children: number[] = [];
  t.teardown(() => {
    for (const pid of children) {
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
  const p = spawn(process.execPath, args, { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  p.kill('SIGTERM');
  const ended = await within(exited, 120_000, () => `the run did not end within 120 s of SIGTERM: ${stdout.slice(-2000)}`);
  t.same(ended, { code: 130, signal: null }, 'it ended as interrupted: exit status 130, not killed by the signal');
  t.match(stdout, /^seed 7: interrupted; /m, 'its verdict line says interrupted');
  t.ok(existsSync(join(out, 'report.json')), 'report.json was written');
  if (existsSync(join(out, 'report.json'))) {
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    t.equal(report.verdict.interrupted, true, "report.json's verdict says interrupted");
  }
  t.same(children.filter(alive), [], "none of its processes (the redis-server, the nodes, the mounts' clients) is left");
  t.same(mountsUnder(tmp), [], 'no mount left behind');
});
