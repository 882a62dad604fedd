/**
 * report.html and the summary: each stage's notes are shown, a chart with nothing to draw is a
 * note saying why (never a blank canvas), and the printed percentiles are the recorded ones, with
 * their unit. The verdict (the summary's last line, report.json's and the exit status): a failed
 * fault check fails the run.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatNs } from '../../driver/metrics.js';
import { html, makeReport, summary, type Report } from '../../driver/report.js';
import { Stage, type StageResult } from '../../driver/stage.js';
import type { Op } from '../../driver/workloads.js';

const setlk: Op = { op: 'lock', role: 'posix', file: 0, type: 1, start: 0, len: 10, wait: false };

/** A timed stage (like api or mount) with known latencies and no blocking request. */
function timed(): StageResult {
  const stage = new Stage({ target: 'api', workload: 'all', seed: 1, clients: 2, files: 1, workers: 1, ops: 10 }, ['posix']);
  for (let i = 1; i <= 100; i++) stage.metrics.record(setlk, 0, i * 10_000, i % 10 === 0 ? 'busy' : 'ok');
  stage.metrics.sample(0.25, 0);
  stage.notes.push('a note of the timed stage');
  return stage.result(stage.close(), 2);
}

/** An untimed stage (like pump): answers counted, no latencies. */
function untimed(): StageResult {
  const stage = new Stage({ target: 'pump', workload: 'all', seed: 1, clients: 2, files: 1, workers: 1, ops: 10 }, ['posix']);
  stage.untimed = "the synthetic source's log is ordered, not timed: it has no latencies";
  stage.metrics.waitingKnown = false;
  stage.metrics.ops = 3;
  stage.metrics.sample(0.25, null);
  stage.metrics.placeRates([stage.metrics.count(setlk, 'ok'), stage.metrics.count(setlk, 'busy'), stage.metrics.count(setlk, 'deadlock')]);
  stage.notes.push('classic POSIX setlk only & <no> latencies');
  return stage.result(stage.close(), 2);
}

const report = makeReport(1, ['--target', 'api,pump'], ['api: runs', 'pump: runs'], [timed(), untimed()], new Date(0));
const page = html(report);

/** The chart slot whose title starts with `title` in the section of `stage`: a canvas, or an empty note. */
function slot(stage: string, title: string): string | undefined {
  const section = page.split('<section>').find((s) => s.startsWith(`\n<h2>${stage}`)) ?? '';
  const slots = section.match(/<div class="(?:chart|empty)">.*?<\/div>/gs) ?? [];
  return slots.find((s) => s.includes(`data-title="${title}`) || s.includes(`<h4>${title}`));
}

t.test('every stage shows its notes, escaped', async (t) => {
  t.match(page, '<li>a note of the timed stage</li>');
  t.match(page, '<li>classic POSIX setlk only &amp; &lt;no&gt; latencies</li>');
});

t.test('an untimed stage: its latency charts are notes saying why, not canvases', async (t) => {
  const why = "Empty: the synthetic source's log is ordered, not timed: it has no latencies.";
  for (const title of ['Latency percentiles by operation', 'Time blocking requests took', 'Latency distribution by operation']) {
    const s = slot('pump / all', title);
    t.ok(s?.startsWith('<div class="empty">'), `${title}: an empty note`);
    t.ok(s?.includes(why), `${title}: says why (${s})`);
    t.notMatch(s ?? '', /<canvas/);
  }
  t.match(slot('pump / all', 'Answers to lock requests over time'), /<canvas data-stage="1" data-chart="rates"/, 'its outcome rates are drawn');
  t.match(slot('pump / all', 'Queue depth over time'), /^<div class="empty">.*Empty: the target reports neither its clients' waiting requests/s, 'no queue depth known: says so');
});

t.test('a timed stage without blocking requests: only the waits chart is empty, and says so', async (t) => {
  t.match(slot('api / all', 'Time blocking requests took'), /^<div class="empty">.*no blocking request finished in this stage/s);
  for (const [title, key] of [
    ['Throughput over time', 'throughput'],
    ['Answers to lock requests over time', 'rates'],
    ['Latency percentiles by operation', 'percentiles'],
    ['setlk: 100 ops', 'hist:setlk'],
  ]) {
    t.match(slot('api / all', title!), new RegExp(`<canvas data-stage="0" data-chart="${key}"`), `${title}: drawn`);
  }
  t.equal(page.match(/<div class="empty">/g)?.length, 5, 'five empty charts in all: four of pump, one of api');
});

t.test('latencies in the page and the summary are the recorded values, with units', async (t) => {
  // 100 values 10 µs, 20 µs, ... 1 ms: nearest-rank p50 is 500 µs, p99 990 µs, max 1 ms.
  const lat = report.stages[0]!.latency.setlk!;
  t.equal(formatNs(lat.p50), '500 µs');
  t.equal(formatNs(lat.p99), '990 µs');
  t.equal(lat.max, 1_000_000);
  t.match(page, '<td>setlk</td><td>100</td><td>505 µs</td><td>10 µs</td><td>500 µs</td><td>900 µs</td><td>990 µs</td><td>1 ms</td><td>1 ms</td>');
  const text = summary(report);
  t.match(text, 'setlk p50 500 µs p99 990 µs');
  t.match(text, 'lock requests: 90 granted, 10 conflict');
  t.match(text, 'lock requests: 1 granted, 1 conflict, 1 EDEADLK');
  t.match(text, /HdrHistogram at 3 significant digits/);
  t.notMatch(text, /reports:/, 'no paths until the reports are written');
});

/** A nodes stage of seed 7 whose faults were checked: `failedKills` of its two kill -9 checks failed. */
function nodes(failedKills: number, violations = 0): StageResult {
  const stage = new Stage({ target: 'nodes', workload: 'all', seed: 7, clients: 2, files: 1, workers: 1, ops: 10, nodes: 2 }, ['posix']);
  const r = stage.result(stage.close(), 2);
  r.oracle = { ...r.oracle, violations, byKind: violations > 0 ? { conflict: violations } : {} };
  const passed = { tries: 1, failures: 0, timesMs: {}, why: [] };
  r.nodes = {
    nodes: 2,
    sessionTtlMs: 2000,
    engine: 'redis-server',
    mounts: { ran: false, why: 'not here' },
    perNode: [],
    faults: {
      kill: { tries: 2, failures: failedKills, timesMs: { failoverMs: [2100] }, why: Array.from({ length: failedKills }, () => 'the witness was never answered') },
      stop: passed,
      engine: passed,
    },
    grantsWhileLost: 0,
    repliesWhileLost: 0,
    log: [],
  };
  return r;
}

const nodesReport = (stages: StageResult[], end?: Parameters<typeof makeReport>[5]) => makeReport(7, ['--nodes', '2', '--seed', '7'], ['nodes: runs'], stages, new Date(0), end);
/** The summary's last line: the verdict. */
const lastLine = (r: Report) => summary(r).trimEnd().split('\n').at(-1);
/** report.json as a reader of it sees it. */
const asJson = (r: Report) => JSON.parse(JSON.stringify(r)) as Report;

t.test('every fault check passed: the run passes, and says how many checks it made', async (t) => {
  const r = nodesReport([nodes(0)]);
  t.match(asJson(r), { violations: 0, faultChecks: { tries: 4, failures: 0 }, verdict: { exitCode: 0, failures: [] } });
  t.equal(lastLine(r), 'seed 7: zero violations, all 4 fault checks passed.');
  t.equal(lastLine(report), 'seed 1: zero violations.', 'without faults, as before');
  t.equal(report.verdict.exitCode, 0);
});

t.test('one fault check made (an interrupted run, or one whose other nodes were gone): said in the singular', async (t) => {
  const one = nodes(0);
  one.nodes!.faults = { kill: { tries: 1, failures: 0, timesMs: { failoverMs: [2100] }, why: [] } };
  const r = nodesReport([one], { interrupted: true });
  t.equal(lastLine(r), 'seed 7: interrupted; zero violations, its 1 fault check passed.', 'not "all 1 fault checks passed"');
});

t.test('a fault check that failed fails the run: exit status 3, the FAILED line, report.json and the page say so', async (t) => {
  const r = nodesReport([nodes(1)]);
  t.match(asJson(r), { violations: 0, faultChecks: { tries: 4, failures: 1 }, verdict: { exitCode: 3, failures: ['1 of 2 kill -9 checks failed'], interrupted: false } });
  const text = summary(r);
  t.match(text, 'fault kill: 2 tries, 1 failures; failover 2,100 ms\n');
  t.match(text, '  FAILED: the witness was never answered\n', 'why, under its fault');
  t.equal(lastLine(r), 'seed 7: FAILED: 1 of 2 kill -9 checks failed (zero violations)');
  t.match(html(r), '<span class="bad">FAILED: 1 of 2 kill -9 checks failed (zero violations)</span>');
});

t.test('violations come first: exit status 1, the fault checks that failed said too', async (t) => {
  const r = nodesReport([nodes(2, 3)]);
  t.match(r.verdict, { exitCode: 1, failures: ['3 violation(s)', '2 of 2 kill -9 checks failed'] });
  t.equal(lastLine(r), 'seed 7: FAILED: 3 violation(s); 2 of 2 kill -9 checks failed; replay with: locksmith stress --nodes 2 --seed 7');
});

t.test('a stage that failed: exit status 1, said in the verdict; interrupted: 130', async (t) => {
  const failed = nodesReport([timed()], { stageFailures: ['the nodes stage failed: redis-server exited'] });
  t.match(failed.verdict, { exitCode: 1, failures: ['the nodes stage failed: redis-server exited'] });
  t.equal(lastLine(failed), 'seed 7: FAILED: the nodes stage failed: redis-server exited (zero violations)');
  const stopped = nodesReport([nodes(1)], { interrupted: true });
  t.match(stopped.verdict, { exitCode: 130, interrupted: true });
  t.equal(lastLine(stopped), 'seed 7: interrupted; FAILED: 1 of 2 kill -9 checks failed (zero violations)');
});

t.test('main: a run whose fault check failed exits 3, its last lines the verdict and the reports, report.json the same verdict', async (t) => {
  const { main } = await t.mockImport<typeof import('../../driver/main.js')>('../../driver/main.js', {
    '../../driver/targets/index.js': { availability: async () => undefined, runTarget: async () => nodes(1) },
  });
  const out = t.testdir();
  let stdout = '';
  let stderr = '';
  const io = { out: { write: (s: string) => (stdout += s) }, err: { write: (s: string) => (stderr += s), isTTY: false } };
  const status = await main(['--target', 'nodes', '--no-mounts', '--seed', '7', '--out', out], io);
  t.equal(status, 3, `exit status 3; stderr: ${stderr}`);
  t.match(stdout, `\nseed 7: FAILED: 1 of 2 kill -9 checks failed (zero violations)\nreports: ${join(out, 'report.json')}, `);
  t.match(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')), { faultChecks: { tries: 4, failures: 1 }, verdict: { exitCode: 3, failures: ['1 of 2 kill -9 checks failed'] } });
});
