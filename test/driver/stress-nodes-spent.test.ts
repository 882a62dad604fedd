/**
 * `locksmith stress --nodes 2` with a budget used up before the first fault: the first round of
 * faults (kill -9, SIGSTOP, engine restart, engine restart from an older snapshot) still completes,
 * as the help and the plan line say. The killed node is replaced even though the budget is spent,
 * so that two nodes are there for the SIGSTOP and the engine restarts; before, it was not, the
 * round stopped after the kill ("fewer than two nodes are running"), and the run passed with one
 * fault check of three ("all 1 fault checks passed", exit status 0). API clients only (the kill's replacement is what is at stake,
 * not the mounts). Needs redis-server: in CI (CI set) its absence fails this file; elsewhere the
 * run is skipped, loudly.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../driver/main.js';
import { redisUnavailable } from '../../driver/redis-server.js';
import { sink, skipLoudly } from './nodes-run.js';
import type { Report } from '../../driver/report.js';
import { FAULT_KINDS } from '../../driver/targets/nodes.js';

const noRedis = redisUnavailable();
skipLoudly('test/driver/stress-nodes-spent.test.ts', noRedis);

const out = mkdtempSync(join(tmpdir(), 'locksmith-stress-nodes-spent-'));
t.teardown(() => rmSync(out, { recursive: true, force: true }));

t.test('--nodes 2 --ops 50: the budget is spent before the kill, and the first round of faults still completes', { skip: noRedis }, async (t) => {
  const dir = join(out, 'run');
  // 50 operations are issued well within the faults' 1 s warm-up: every fault begins past the budget.
  const argv = ['--nodes', '2', '--no-mounts', '--workload', 'all', '--clients', '4', '--files', '2', '--workers', '1', '--ops', '50', '--seed', '7', '--out', dir];
  const stdout = sink();
  const stderr = Object.assign(sink(), { isTTY: false });
  const code = await main(argv, { out: stdout, err: stderr });
  t.comment(stdout.text);
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
  const n = report.stages[0]!.nodes!;
  t.notMatch(report.stages[0]!.notes.join('\n'), /fewer than two nodes are running/, 'the round did not run out of nodes');
  t.ok(n.perNode.length >= 3, `the killed node was replaced (${n.perNode.map((x) => x.node).join(', ')})`);
  for (const kind of FAULT_KINDS) {
    const f = n.faults[kind];
    t.ok(f !== undefined && f.tries >= 1, `a ${kind} fault was tried (${f?.tries ?? 0} tries)`);
  }
  t.ok(report.faultChecks.tries >= FAULT_KINDS.length, `the verdict counts every fault of the first round (${report.faultChecks.tries} tried)`);
  t.equal(report.verdict.exitCode, code, 'report.json carries the exit status');
});
