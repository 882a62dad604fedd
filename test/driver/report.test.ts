/**
 * report.html and the summary: each stage's notes are shown, a chart with nothing to draw is a
 * note saying why (never a blank canvas), and the printed percentiles are the recorded ones, with
 * their unit.
 */
import t from 'tap';
import { formatNs } from '../../driver/metrics.js';
import { html, makeReport, summary } from '../../driver/report.js';
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
