/**
 * The reports: report.json (everything measured, and the oracle's findings with their traces),
 * report.html (the same, plotted with Chart.js inlined: it works offline) and the short summary
 * printed at the end.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { describe } from './oracle.js';
import type { StageResult } from './stage.js';

export interface Report {
  tool: 'locksmith stress';
  startedAt: string;
  seed: number;
  command: string;
  /** Why these targets ran (or did not). */
  plan: string[];
  stages: Omit<StageResult, 'log'>[];
  violations: number;
}

export function makeReport(seed: number, argv: readonly string[], plan: string[], stages: StageResult[], startedAt: Date): Report {
  return {
    tool: 'locksmith stress',
    startedAt: startedAt.toISOString(),
    seed,
    command: ['locksmith', 'stress', ...argv].join(' '),
    plan,
    stages: stages.map(({ log: _log, ...s }) => s),
    violations: stages.reduce((n, s) => n + s.oracle.violations, 0),
  };
}

/** JSON with Infinity (ranges to OFFSET_MAX) written as the string "EOF". */
function json(v: unknown, indent?: number): string {
  return JSON.stringify(v, (_k, x) => (x === Infinity ? 'EOF' : x), indent);
}

function chartJs(): string {
  const main = createRequire(import.meta.url).resolve('chart.js');
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
}

export async function writeReports(dir: string, r: Report): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const paths = { json: resolve(dir, 'report.json'), html: resolve(dir, 'report.html') };
  await writeFile(paths.json, json(r, 2) + '\n');
  await writeFile(paths.html, html(r));
  return paths;
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d });

export function stageName(s: Pick<StageResult, 'target' | 'workload'>): string {
  return `${s.target} / ${s.workload}`;
}

/** The lines printed at the end of a run. */
export function summary(r: Report, paths?: { json: string; html: string }): string {
  const lines: string[] = [];
  for (const s of r.stages) {
    const p = (k: string) => s.latency[k];
    const lat = ['setlk', 'lockfile', 'getlk', 'unlock']
      .filter((k) => p(k))
      .map((k) => `${k} p50 ${fmt(p(k)!.p50Us)} µs p99 ${fmt(p(k)!.p99Us)} µs`)
      .join(', ');
    lines.push(
      `${stageName(s).padEnd(18)} ${fmt(s.ops).padStart(10)} ops in ${fmt(s.durationSec, 1)} s = ${fmt(s.opsPerSec).padStart(7)} ops/s, ` +
        `${s.clientsRun} clients, ${s.oracle.grants} holds checked, ${s.oracle.deadlocks} EDEADLK, ${s.oracle.getlks} F_GETLK answers checked: ` +
        (s.oracle.violations === 0 ? 'no violation' : `${s.oracle.violations} VIOLATIONS ${json(s.oracle.byKind)}`),
    );
    if (lat) lines.push(`${''.padEnd(18)} ${lat}; waits p50 ${fmt(s.waits.p50Us)} µs p99 ${fmt(s.waits.p99Us)} µs (${fmt(s.waits.count)})`);
    for (const n of s.notes) lines.push(`${''.padEnd(18)} note: ${n}`);
  }
  for (const s of r.stages) {
    for (const v of s.oracle.examples) {
      lines.push('', `VIOLATION (${v.kind}) in ${stageName(s)}, seed ${r.seed}: ${v.message}`, ...v.trace.map((e) => '    ' + describe(e)));
    }
  }
  lines.push('', r.violations === 0 ? `seed ${r.seed}: zero violations.` : `seed ${r.seed}: ${r.violations} violation(s); replay with: ${replay(r)}`);
  if (paths) lines.push(`reports: ${paths.json}, ${paths.html}`);
  return lines.join('\n') + '\n';
}

function replay(r: Report): string {
  return r.command.includes('--seed') ? r.command : `${r.command} --seed ${r.seed}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function html(r: Report): string {
  const data = json(r).replace(/</g, '\\u003c');
  const rows = r.stages
    .map(
      (s) =>
        `<tr><td>${escapeHtml(stageName(s))}</td><td>${s.clientsRun}</td><td>${fmt(s.durationSec, 1)}</td><td>${fmt(s.ops)}</td><td>${fmt(s.opsPerSec)}</td>` +
        `<td>${fmt(s.oracle.grants)}</td><td>${fmt(s.oracle.maxHeld)}</td><td>${fmt(s.oracle.deadlocks)}</td><td>${fmt(s.waits.p99Us)}</td>` +
        `<td class="${s.oracle.violations ? 'bad' : 'ok'}">${s.oracle.violations}</td></tr>`,
    )
    .join('\n');
  const violations = r.stages
    .flatMap((s) => s.oracle.examples.map((v) => `<h3>${escapeHtml(stageName(s))}: ${v.kind}</h3><p>${escapeHtml(v.message)}</p><pre>${escapeHtml(v.trace.map(describe).join('\n'))}</pre>`))
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>locksmith stress, seed ${r.seed}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}
.ok{color:#070}.bad{color:#b00;font-weight:bold}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}
.grid div{min-width:0}pre{background:#f6f6f6;padding:.5em;overflow:auto}code{background:#f3f3f3}
</style></head><body>
<h1>locksmith stress</h1>
<p>${escapeHtml(r.startedAt)} &middot; <code>${escapeHtml(r.command)}</code> &middot; seed ${r.seed} &middot;
<span class="${r.violations ? 'bad' : 'ok'}">${r.violations === 0 ? 'zero violations' : `${r.violations} violations`}</span></p>
<ul>${r.plan.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>
<table><tr><th>target / workload</th><th>clients</th><th>s</th><th>ops</th><th>ops/s</th><th>holds checked</th><th>max held</th><th>EDEADLK</th><th>wait p99 µs</th><th>violations</th></tr>
${rows}</table>
${violations ? `<h2>Violations</h2>${violations}` : ''}
<div id="charts"></div>
<script>${chartJs()}</script>
<script type="application/json" id="data">${data}</script>
<script>${CLIENT_SCRIPT}</script>
</body></html>
`;
}

/** Runs in the page: one section per stage, plus a side-by-side section when there are several. */
const CLIENT_SCRIPT = `
const report = JSON.parse(document.getElementById('data').textContent);
const root = document.getElementById('charts');
const palette = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf','#393b79','#637939'];
const name = (s) => s.target + ' / ' + s.workload;
function section(title) {
  const h = document.createElement('h2'); h.textContent = title; root.appendChild(h);
  const g = document.createElement('div'); g.className = 'grid'; root.appendChild(g); return g;
}
function chart(grid, title, config) {
  const d = document.createElement('div'); const c = document.createElement('canvas'); d.appendChild(c); grid.appendChild(d);
  config.options = Object.assign({ animation: false, responsive: true, plugins: { title: { display: true, text: title } } }, config.options || {});
  new Chart(c, config);
}
const logAxis = (label) => ({ type: 'logarithmic', title: { display: true, text: label } });
const linAxis = (label) => ({ type: 'linear', title: { display: true, text: label } });
function line(points, label, i, dashed) {
  return { label, data: points, borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], pointRadius: 0, borderWidth: 1.5, borderDash: dashed ? [5, 3] : [] };
}
const stages = report.stages;
if (stages.length > 1) {
  const g = section('Side by side');
  chart(g, 'Throughput over time (ops/s)', { type: 'line', data: { datasets: stages.map((s, i) => line(s.timeline.map((p) => ({ x: p.at, y: p.opsPerSec })), name(s), i)) },
    options: { scales: { x: linAxis('s'), y: linAxis('ops/s') } } });
  const kinds = [...new Set(stages.flatMap((s) => Object.keys(s.latency)))];
  chart(g, 'Latency p50 and p99 by operation (µs)', { type: 'bar', data: { labels: kinds, datasets: stages.flatMap((s, i) => [
      { label: name(s) + ' p50', data: kinds.map((k) => s.latency[k] ? s.latency[k].p50Us : null), backgroundColor: palette[(2 * i) % palette.length] },
      { label: name(s) + ' p99', data: kinds.map((k) => s.latency[k] ? s.latency[k].p99Us : null), backgroundColor: palette[(2 * i + 1) % palette.length] }]) },
    options: { scales: { y: logAxis('µs') } } });
}
stages.forEach((s) => {
  const g = section(name(s) + ': ' + Math.round(s.opsPerSec).toLocaleString() + ' ops/s, ' + s.oracle.violations + ' violations');
  chart(g, 'Throughput over time', { type: 'line', data: { datasets: [line(s.timeline.map((p) => ({ x: p.at, y: p.opsPerSec })), 'ops/s', 0)] },
    options: { scales: { x: linAxis('s'), y: linAxis('ops/s') } } });
  chart(g, 'Queue depth over time', { type: 'line', data: { datasets: [
      line(s.timeline.map((p) => ({ x: p.at, y: p.waitingClients })), 'blocking requests outstanding (clients)', 1),
      line(s.timeline.filter((p) => p.waitingServer !== null).map((p) => ({ x: p.at, y: p.waitingServer })), 'queued in the lock manager', 3, true)] },
    options: { scales: { x: linAxis('s'), y: linAxis('requests') } } });
  const kinds = Object.keys(s.latency);
  chart(g, 'Latency percentiles by operation (µs)', { type: 'bar', data: { labels: kinds, datasets: ['p50Us', 'p90Us', 'p99Us', 'p999Us'].map((q, i) =>
      ({ label: q.replace('Us', ''), data: kinds.map((k) => s.latency[k][q]), backgroundColor: palette[i] })) },
    options: { scales: { y: logAxis('µs') } } });
  chart(g, 'Latency histogram by operation', { type: 'line', data: { datasets: kinds.map((k, i) =>
      line(s.latency[k].buckets.map(([us, n]) => ({ x: Math.max(us, 0.5), y: n })), k, i)) },
    options: { scales: { x: logAxis('µs'), y: logAxis('operations') } } });
  chart(g, 'Wait time of blocking requests (' + s.waits.count.toLocaleString() + ')', { type: 'bar', data: {
      labels: s.waits.buckets.map(([us]) => us < 1000 ? Math.round(us) + ' µs' : (us / 1000).toFixed(1) + ' ms'),
      datasets: [{ label: 'requests', data: s.waits.buckets.map(([, n]) => n), backgroundColor: palette[4] }] },
    options: { scales: { y: logAxis('requests') } } });
});
`;
