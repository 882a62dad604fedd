/**
 * `locksmith stress --nodes 2` when the node that replaces a killed one cannot start: here its
 * mountpoint stays a dead mount, because the fusermount3 and umount the runner finds on PATH fail
 * (as the runner's own cleanup missed a mountpoint with a space in it). The replacement's failure
 * came while the runner still waited for the failover, before it awaited the replacement's start:
 * an unhandled rejection ended the run with a stack trace, left the other node's process serving
 * as an orphan with its mount, and reported nothing. The failed start is the kill fault's failure,
 * and the run ends as a run does: its last line the verdict, FAILED with the kill -9 check, and
 * exit status 3 (it was 0). Needs redis-server and FUSE (skipped without, saying why; with CI set
 * their absence fails).
 */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisUnavailable } from '../../driver/redis-server.js';
import type { Report } from '../../driver/report.js';
import { isDeadMount } from '../../src/dead-mount.js';
import { mountUnavailable } from '../../driver/targets/mount.js';

t.setTimeout(10 * 60_000);

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src', 'cli.js');
const why = redisUnavailable() ?? (await mountUnavailable());
if (why !== undefined) {
  if (process.env.CI) throw new Error(`this test needs redis-server and FUSE in CI: ${why}`);
  console.error(`\n!! SKIPPING test/driver/stress-nodes-respawn.test.ts: ${why}\n`);
}

/** The pids of processes whose command line mentions `s`. */
function processesWith(s: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(s)) pids.push(Number(d));
    } catch {
      // gone
    }
  }
  return pids;
}

/** The mountpoints under `base` (mountinfo's field 5). */
const mountsUnder = (base: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(base));

t.test('a replacement node that cannot start: the kill fault fails, the run ends without a stack trace or an orphan', { skip: why }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'locksmith-respawn-'));
  const bin = join(base, 'bin');
  const tmp = join(base, 'tmp');
  mkdirSync(bin);
  mkdirSync(tmp);
  for (const name of ['fusermount3', 'umount']) {
    writeFileSync(join(bin, name), '#!/bin/sh\nexit 1\n');
    chmodSync(join(bin, name), 0o755);
  }
  t.teardown(() => {
    for (const pid of processesWith(base)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const m of mountsUnder(base).reverse()) {
      try {
        execFileSync('/usr/bin/fusermount3', ['-u', '-z', m], { stdio: 'ignore' });
      } catch {
        execFileSync('/usr/bin/umount', ['-l', m], { stdio: 'ignore' });
      }
    }
    rmSync(base, { recursive: true, force: true });
  });

  const args = [cli, 'stress', '--nodes', '2', '--workload', 'all', '--clients', '4', '--files', '2', '--workers', '1', '--duration', '2', '--seed', '7', '--out', join(base, 'out')];
  const p = spawn(process.execPath, args, { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The run's end, whatever it is (a budget for a hang only: the run takes about 15 s).
  const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stress run did not end within 300 s; stdout: ${stdout.slice(-2000)}`)), 300_000);
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  const progress = stderr
    .split('\n')
    .filter((l) => !/^nodes \/ /.test(l) && l.trim() !== '')
    .join('\n');
  t.notMatch(progress, /^\s+at /m, `no stack trace on stderr: ${progress.slice(0, 1500)}`);
  t.notMatch(progress, /Node\.js v\d/, 'not ended by an uncaught error');
  t.match(stdout, /did not start/, 'the replacement that did not start is reported');
  t.match(stdout, /fault kill: 1 tries, 1 failures/, 'as the kill fault failing');
  t.equal(ended.signal, null, 'not killed by a signal');
  t.match(stdout, /^seed 7: FAILED: (?:.*; )?1 of 1 kill -9 check failed.*\nreports: /m, 'the run ended as a run does: its verdict, the failed check, and its reports');
  const report = JSON.parse(readFileSync(join(base, 'out', 'report.json'), 'utf8')) as Report;
  t.equal(ended.code, report.violations > 0 ? 1 : 3, 'a failed fault check fails the run: exit status 3 (1 had the oracle found a violation)');
  t.equal(report.verdict.exitCode, ended.code, 'report.json carries the same verdict');
  t.same(processesWith(tmp), [], 'no node process of the run left behind');
  const left = mountsUnder(tmp);
  t.ok(left.length <= 1, `no mount left but the killed node's (${left.join(', ')})`);
  t.ok(left.every((m) => isDeadMount(m)), 'which is dead: the failing fusermount3 could not remove it');
});
