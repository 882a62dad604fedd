/**
 * The reports: report.json (everything measured, and the oracle's findings with their traces),
 * report.html (the same, plotted with Chart.js inlined: it works offline) and the short summary
 * printed at the end.
 */
import { readFileSync } from 'node:fs';
import { mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { RATE_KINDS, SIGNIFICANT_DIGITS, formatNs, type HistogramSummary } from './metrics.js';
import { describe } from './oracle.js';
import { SAMPLE_MS, type NodesResult, type StageResult } from './stage.js';

export interface Report {
  tool: 'locksmith stress';
  startedAt: string;
  seed: number;
  command: string;
  /** Why these targets ran (or did not). */
  plan: string[];
  stages: Omit<StageResult, 'log'>[];
  violations: number;
  /** The nodes target's fault checks over every stage: tried, and failed. */
  faultChecks: { tries: number; failures: number };
  verdict: Verdict;
}

/**
 * `locksmith stress`'s exit statuses (the help and the README list them). A run that failed in
 * more than one way exits with the first of interrupted, failed, faultChecks.
 */
export const EXIT = {
  passed: 0,
  /** A violation, a stage that failed, or reports that could not be written. */
  failed: 1,
  /** Bad options, an --out folder that cannot be written, an unavailable target asked for. */
  usage: 2,
  /** No violation, but a fault check of the nodes target failed. */
  faultChecks: 3,
  interrupted: 130,
} as const;

/** How the run went, as its exit status says it. */
export interface Verdict {
  exitCode: number;
  /** Why the run failed, one clause each (violations first); empty when it passed. */
  failures: string[];
  interrupted: boolean;
}

/** How the run ended besides what its stages found. */
export interface RunEnd {
  /** One sentence for each stage that failed (threw) and so has no result. */
  stageFailures?: string[];
  interrupted?: boolean;
}

export const FAULT_NAMES: Record<string, string> = { kill: 'kill -9', stop: 'SIGSTOP', engine: 'engine restart', snapshot: 'engine restart from an older snapshot' };

/** Each kind of fault's checks over every stage, in the order they were first tried. */
function faultChecks(stages: readonly Pick<StageResult, 'nodes'>[]): Map<string, { tries: number; failures: number }> {
  const byKind = new Map<string, { tries: number; failures: number }>();
  for (const s of stages) {
    for (const [kind, f] of Object.entries(s.nodes?.faults ?? {})) {
      const c = byKind.get(kind) ?? { tries: 0, failures: 0 };
      c.tries += f.tries;
      c.failures += f.failures;
      byKind.set(kind, c);
    }
  }
  return byKind;
}

export function verdict(stages: readonly Pick<StageResult, 'oracle' | 'nodes'>[], end: RunEnd = {}): Verdict {
  const violations = stages.reduce((n, s) => n + s.oracle.violations, 0);
  const stageFailures = end.stageFailures ?? [];
  const failures: string[] = [];
  if (violations > 0) failures.push(`${violations} violation(s)`);
  failures.push(...stageFailures);
  let faultFailures = 0;
  for (const [kind, c] of faultChecks(stages)) {
    if (c.failures === 0) continue;
    faultFailures += c.failures;
    failures.push(`${c.failures} of ${c.tries} ${FAULT_NAMES[kind] ?? kind} ${c.tries === 1 ? 'check' : 'checks'} failed`);
  }
  const interrupted = end.interrupted === true;
  const exitCode = interrupted
    ? EXIT.interrupted
    : violations > 0 || stageFailures.length > 0
      ? EXIT.failed
      : faultFailures > 0
        ? EXIT.faultChecks
        : EXIT.passed;
  return { exitCode, failures, interrupted };
}

export function makeReport(seed: number, argv: readonly string[], plan: string[], stages: StageResult[], startedAt: Date, end: RunEnd = {}): Report {
  const checks = [...faultChecks(stages).values()];
  return {
    tool: 'locksmith stress',
    startedAt: startedAt.toISOString(),
    seed,
    command: ['locksmith', 'stress', ...argv].join(' '),
    plan,
    stages: stages.map(({ log: _log, ...s }) => s),
    violations: stages.reduce((n, s) => n + s.oracle.violations, 0),
    faultChecks: { tries: checks.reduce((n, c) => n + c.tries, 0), failures: checks.reduce((n, c) => n + c.failures, 0) },
    verdict: verdict(stages, end),
  };
}

/**
 * The run's verdict in one line, without the seed: 'zero violations.' (with how many fault checks
 * passed, when there were any), or 'FAILED: ' and why.
 */
export function verdictLine(r: Report): string {
  const v = r.verdict;
  const head = v.interrupted ? 'interrupted; ' : '';
  if (v.failures.length === 0) {
    const n = r.faultChecks.tries;
    const checks = n === 0 ? '' : n === 1 ? ', its 1 fault check passed' : `, all ${n} fault checks passed`;
    return `${head}zero violations${checks}.`;
  }
  return `${head}FAILED: ${v.failures.join('; ')}${r.violations === 0 ? ' (zero violations)' : ''}`;
}

/** JSON with Infinity (ranges to OFFSET_MAX) written as the string "EOF". */
function json(v: unknown, indent?: number): string {
  return JSON.stringify(v, (_k, x) => (x === Infinity ? 'EOF' : x), indent);
}

function chartJs(): string {
  const main = createRequire(import.meta.url).resolve('chart.js');
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
}

/** Why reports cannot go to --out: one sentence naming the folder. */
export class OutDirError extends Error {}

/**
 * Creates `dir` and its missing parents and checks that a file can be written in it, so a run
 * never ends with nowhere to put its reports. Creates one level at a time: Node 20's recursive
 * mkdir loops forever on a missing path under /proc.
 */
export async function prepareOutDir(dir: string): Promise<string> {
  const abs = resolve(dir);
  const fail = (e: unknown): never => {
    throw new OutDirError(`cannot write reports to '${dir}': ${e instanceof Error ? e.message : String(e)}.`);
  };
  const missing: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    const st = await stat(p).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : fail(e)));
    if (st !== undefined) {
      if (!st.isDirectory()) fail(`${p} is not a folder`);
      break;
    }
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing) await mkdir(p).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : fail(e)));
  const probe = join(abs, `.locksmith-write-check-${process.pid}`);
  await writeFile(probe, '', { flag: 'wx' }).catch(fail);
  await unlink(probe).catch(fail);
  return abs;
}

export async function writeReports(dir: string, r: Report): Promise<{ json: string; html: string }> {
  const abs = await prepareOutDir(dir);
  const paths = { json: join(abs, 'report.json'), html: join(abs, 'report.html') };
  await writeFile(paths.json, `${json(r, 2)}\n`);
  await writeFile(paths.html, html(r));
  return paths;
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d });

export function stageName(s: Pick<StageResult, 'target' | 'workload'>): string {
  return `${s.target} / ${s.workload}`;
}

const INDENT = ''.padEnd(18);

/** The lines printed at the end of a run; `paths` adds where the reports went. */
export function summary(r: Report, paths?: { json: string; html: string }): string {
  const lines: string[] = [];
  for (const s of r.stages) {
    lines.push(
      `${stageName(s).padEnd(18)} ${fmt(s.ops).padStart(10)} ops in ${fmt(s.durationSec, 1)} s = ${fmt(s.opsPerSec).padStart(7)} ops/s, ` +
        `${s.clientsRun} clients, ${fmt(s.oracle.grants)} holds checked, ${fmt(s.oracle.deadlocks)} EDEADLK, ${fmt(s.oracle.getlks)} F_GETLK answers checked: ` +
        (s.oracle.violations === 0 ? 'no violation' : `${s.oracle.violations} VIOLATIONS ${json(s.oracle.byKind)}`),
    );
    const lat = ['setlk', 'setlkw', 'lockfile', 'getlk', 'unlock']
      .flatMap((k) => (s.latency[k] ? [`${k} p50 ${formatNs(s.latency[k].p50)} p99 ${formatNs(s.latency[k].p99)}`] : []))
      .join(', ');
    if (lat) lines.push(`${INDENT} latency: ${lat}; blocking requests' waits p50 ${formatNs(s.waits.p50)} p99 ${formatNs(s.waits.p99)} max ${formatNs(s.waits.max)} (${fmt(s.waits.count)})`);
    const answers = RATE_KINDS.filter((k) => s.answers[k]).map((k) => `${fmt(s.answers[k]!)} ${k}`);
    if (answers.length > 0) lines.push(`${INDENT} lock requests: ${answers.join(', ')}`);
    if (s.nodes) lines.push(...nodesLines(s.nodes).map((l) => `${INDENT} ${l}`));
    for (const n of s.notes) lines.push(`${INDENT} note: ${n}`);
  }
  if (r.stages.some((s) => s.waits.count > 0 || Object.keys(s.latency).length > 0)) {
    lines.push('', `latencies are nearest-rank percentiles recorded by HdrHistogram at ${SIGNIFICANT_DIGITS} significant digits (each at most 0.1% above the measured value of its rank)`);
  }
  for (const s of r.stages) {
    for (const v of s.oracle.examples) {
      lines.push('', `VIOLATION (${v.kind}) in ${stageName(s)}, seed ${r.seed}: ${v.message}`, ...v.trace.map((e) => `    ${describe(e)}`));
    }
  }
  lines.push('', `seed ${r.seed}: ${verdictLine(r)}${r.violations > 0 ? `; replay with: ${replay(r)}` : ''}`);
  if (paths) lines.push(`reports: ${paths.json}, ${paths.html}`);
  return `${lines.join('\n')}\n`;
}

/** Times of one measure as text: the value, or min/median/max over the tries. */
function times(v: number[]): string {
  const xs = [...v].sort((a, b) => a - b);
  if (xs.length === 1) return `${fmt(xs[0]!)} ms`;
  return `${fmt(xs[0]!)}/${fmt(xs[Math.floor(xs.length / 2)]!)}/${fmt(xs[xs.length - 1]!)} ms (min/median/max)`;
}

/** The nodes target's own lines: operations per node, and how each kind of fault went. */
export function nodesLines(n: NodesResult): string[] {
  const lines = [
    mountsLine(n),
    `nodes: ${n.perNode.map((x) => `${x.node} ${fmt(x.ops)} ops (${x.onMount === undefined ? '' : `${x.onMount} ${x.onMount === 1 ? 'client' : 'clients'} on its mount, `}${x.ended}${x.sessions > 1 ? `, ${x.sessions} sessions` : ''})`).join(', ')}; ` +
      `session TTL ${fmt(n.sessionTtlMs)} ms, ${n.engine}`,
    `while a node had lost its session: ${fmt(n.grantsWhileLost)} grants not counted as holds, ${fmt(n.repliesWhileLost)} replies allowed the generic code`,
  ];
  for (const [kind, f] of Object.entries(n.faults)) {
    const t = Object.entries(f.timesMs).map(([k, v]) => `${k.replace(/Ms$/, '')} ${times(v)}`);
    lines.push(`fault ${kind}: ${f.tries} tries, ${f.failures} failures${t.length > 0 ? `; ${t.join(', ')}` : ''}`);
    for (const w of f.why) lines.push(`  FAILED: ${w}`);
  }
  return lines;
}

function replay(r: Report): string {
  return r.command.includes('--seed') ? r.command : `${r.command} --seed ${r.seed}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** A chart of a stage: drawn by the page's script, or, when it would be empty, a note saying why. */
interface Slot {
  key: string;
  title: string;
  why?: string | undefined;
}

const BEFORE_FIRST_SAMPLE = `the stage ended before its first sample (one every ${SAMPLE_MS} ms)`;

/** The charts of stage `s`, in order, each with why it is empty when it would be. */
export function slots(s: Omit<StageResult, 'log'>): { main: Slot[]; byOperation: Slot[] } {
  const kinds = Object.keys(s.latency);
  const noLatency = kinds.length > 0 ? undefined : (s.untimed ?? 'no operation of this stage was timed');
  const sampled = s.timeline.length > 0;
  const main: Slot[] = [
    { key: 'throughput', title: 'Throughput over time (operations/s)', why: sampled ? undefined : BEFORE_FIRST_SAMPLE },
    {
      key: 'rates',
      title: 'Answers to lock requests over time, by outcome (per second, log scale)',
      why: !sampled ? BEFORE_FIRST_SAMPLE : s.timeline.some((p) => Object.keys(p.rates).length > 0) ? undefined : 'no lock request was answered while the stage was sampled',
    },
    {
      key: 'queue',
      title: 'Queue depth over time',
      why: !sampled
        ? BEFORE_FIRST_SAMPLE
        : s.timeline.some((p) => p.waitingClients !== null || p.waitingServer !== null)
          ? undefined
          : "the target reports neither its clients' waiting requests nor the lock manager's queue (see the notes)",
    },
    { key: 'percentiles', title: 'Latency percentiles by operation (µs, log scale)', why: noLatency },
    {
      key: 'waits',
      title: `Time blocking requests took, ${fmt(s.waits.count)} requests (log scale)`,
      why: s.waits.count > 0 ? undefined : (s.untimed ?? 'no blocking request finished in this stage'),
    },
  ];
  const byOperation: Slot[] =
    kinds.length > 0
      ? kinds.map((k) => ({ key: `hist:${k}`, title: `${k}: ${fmt(s.latency[k]!.count)} ops, p50 ${formatNs(s.latency[k]!.p50)}, p99 ${formatNs(s.latency[k]!.p99)}` }))
      : [{ key: 'hist', title: 'Latency distribution by operation', why: noLatency }];
  return { main, byOperation };
}

function slotHtml(stage: number, x: Slot): string {
  if (x.why !== undefined) return `<div class="empty"><h4>${escapeHtml(x.title)}</h4><p>Empty: ${escapeHtml(x.why)}.</p></div>`;
  return `<div class="chart"><canvas data-stage="${stage}" data-chart="${escapeHtml(x.key)}" data-title="${escapeHtml(x.title)}"></canvas></div>`;
}

function latencyTable(s: Omit<StageResult, 'log'>): string {
  const kinds = Object.keys(s.latency);
  if (kinds.length === 0) return '';
  const row = (name: string, h: HistogramSummary) =>
    `<tr><td>${escapeHtml(name)}</td><td>${fmt(h.count)}</td>${[h.mean, h.min, h.p50, h.p90, h.p99, h.p999, h.max].map((v) => `<td>${formatNs(v)}</td>`).join('')}</tr>`;
  return (
    '<table class="lat"><tr><th>operation</th><th>count</th><th>mean</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>' +
    kinds.map((k) => row(k, s.latency[k]!)).join('') +
    (s.waits.count > 0 ? row('(waits of blocking requests)', s.waits) : '') +
    '</table>'
  );
}

/** Whether the nodes mounted, or why not (loud: a run without mounts tests less). */
export function mountsLine(n: NodesResult): string {
  const m = n.mounts;
  if (m === undefined || !m.ran) return `nodes: ${n.nodes} (API clients only; MOUNTS SKIPPED: ${m?.why ?? 'not recorded'})`;
  return `nodes: ${n.nodes} (API clients and mounts: ${m.processes} client processes on the nodes' mounts of one shared directory)`;
}

function nodesHtml(n: NodesResult): string {
  const nodes = n.perNode
    .map((x) => `<tr><td>${escapeHtml(x.node)}</td><td>${x.slot}</td><td>${x.clients}</td><td>${fmt(x.ops)}</td><td>${x.sessions}</td><td>${fmt(x.commits)}</td><td>${fmt(x.stale)}</td><td>${fmt(x.fencedLocally)}</td><td>${escapeHtml(x.ended)}</td></tr>`)
    .join('');
  const faults = Object.entries(n.faults)
    .map(
      ([kind, f]) =>
        `<tr><td>${escapeHtml(kind)}</td><td>${f.tries}</td><td class="${f.failures ? 'bad' : 'ok'}">${f.failures}</td><td>${escapeHtml(
          Object.entries(f.timesMs)
            .map(([k, v]) => `${k.replace(/Ms$/, '')} ${times(v)}`)
            .join('; '),
        )}</td><td>${escapeHtml(f.why.join(' | '))}</td></tr>`,
    )
    .join('');
  return `<h3>Nodes (session TTL ${fmt(n.sessionTtlMs)} ms, ${escapeHtml(n.engine)})</h3>
<p>${escapeHtml(mountsLine(n))}</p>
<table><tr><th>node</th><th>slot</th><th>clients</th><th>ops</th><th>sessions</th><th>commits</th><th>stale commits</th><th>fenced locally</th><th>ended</th></tr>${nodes}</table>
<p>While a node had lost its session: ${fmt(n.grantsWhileLost)} grants not counted as holds, ${fmt(n.repliesWhileLost)} replies allowed the generic code.</p>
${faults ? `<h3>Faults</h3><table><tr><th>fault</th><th>tries</th><th>failures</th><th>times</th><th>why failed</th></tr>${faults}</table>` : '<p>No faults injected.</p>'}
${n.log.length > 0 ? `<pre>${escapeHtml(n.log.join('\n'))}</pre>` : ''}`;
}

function stageHtml(s: Omit<StageResult, 'log'>, i: number): string {
  const { main, byOperation } = slots(s);
  const answers = RATE_KINDS.filter((k) => s.answers[k]).map((k) => `${fmt(s.answers[k]!)} ${k}`);
  return `<section>
<h2>${escapeHtml(stageName(s))}: ${fmt(s.opsPerSec)} ops/s, <span class="${s.oracle.violations ? 'bad' : 'ok'}">${s.oracle.violations} violations</span></h2>
<h3>Notes</h3>
${s.notes.length > 0 ? `<ul class="notes">${s.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : '<p class="notes">none</p>'}
${answers.length > 0 ? `<p>Lock requests: ${answers.join(', ')}.</p>` : ''}
${s.nodes ? nodesHtml(s.nodes) : ''}
${latencyTable(s)}
<div class="grid">${main.map((x) => slotHtml(i, x)).join('\n')}</div>
<h3>Latency distribution by operation (share of that operation's calls, log scale)</h3>
<div class="${byOperation.length > 1 ? 'grid4' : 'grid'}">${byOperation.map((x) => slotHtml(i, x)).join('\n')}</div>
</section>`;
}

export function html(r: Report): string {
  const data = json(r).replace(/</g, '\\u003c');
  const rows = r.stages
    .map(
      (s) =>
        `<tr><td>${escapeHtml(stageName(s))}</td><td>${s.clientsRun}</td><td>${fmt(s.durationSec, 1)}</td><td>${fmt(s.ops)}</td><td>${fmt(s.opsPerSec)}</td>` +
        `<td>${fmt(s.oracle.grants)}</td><td>${fmt(s.oracle.maxHeld)}</td><td>${fmt(s.oracle.deadlocks)}</td><td>${s.waits.count > 0 ? formatNs(s.waits.p99) : '–'}</td>` +
        `<td class="${s.oracle.violations ? 'bad' : 'ok'}">${s.oracle.violations}</td></tr>`,
    )
    .join('\n');
  const violations = r.stages
    .flatMap((s) => s.oracle.examples.map((v) => `<h3>${escapeHtml(stageName(s))}: ${v.kind}</h3><p>${escapeHtml(v.message)}</p><pre>${escapeHtml(v.trace.map(describe).join('\n'))}</pre>`))
    .join('\n');
  const sideBySide =
    r.stages.length > 1
      ? `<section><h2>Side by side</h2><div class="grid">${slotHtml(-1, { key: 'all:throughput', title: 'Throughput over time (operations/s)' })}${slotHtml(-1, {
          key: 'all:latency',
          title: 'Latency p50 and p99 by operation (µs, log scale)',
          why: r.stages.some((s) => Object.keys(s.latency).length > 0) ? undefined : 'no stage timed its operations',
        })}</div>${r.stages
          .filter((s) => s.untimed !== undefined)
          .map((s) => `<p class="notes">${escapeHtml(stageName(s))} has no latencies: ${escapeHtml(s.untimed!)}.</p>`)
          .join('')}</section>`
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>locksmith stress, seed ${r.seed}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}
.ok{color:#070}.bad{color:#b00;font-weight:bold}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}.grid4{display:grid;grid-template-columns:repeat(4,1fr);gap:1em}
.grid>div,.grid4>div{min-width:0}
.empty{border:1px dashed #aaa;background:#fafafa;padding:.5em 1em;color:#444}.empty h4{margin:.3em 0;color:#222}
.notes{color:#444}section{border-top:2px solid #ddd;margin-top:2em}h3{margin-bottom:.3em}
pre{background:#f6f6f6;padding:.5em;overflow:auto}code{background:#f3f3f3}
</style></head><body>
<h1>locksmith stress</h1>
<p>${escapeHtml(r.startedAt)} &middot; <code>${escapeHtml(r.command)}</code> &middot; seed ${r.seed} &middot;
<span class="${r.verdict.failures.length > 0 ? 'bad' : 'ok'}">${escapeHtml(verdictLine(r))}</span></p>
<ul>${r.plan.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>
<table><tr><th>target / workload</th><th>clients</th><th>s</th><th>ops</th><th>ops/s</th><th>holds checked</th><th>max held</th><th>EDEADLK</th><th>wait p99</th><th>violations</th></tr>
${rows}</table>
<p class="notes">Latencies: nearest-rank percentiles recorded by HdrHistogram at ${SIGNIFICANT_DIGITS} significant digits (each at most 0.1% above the measured value of its rank); mean, min and max are exact. The distribution charts group them in bins of a tenth of a decade for drawing only.</p>
${violations ? `<h2>Violations</h2>${violations}` : ''}
${sideBySide}
${r.stages.map(stageHtml).join('\n')}
<script>${chartJs()}</script>
<script type="application/json" id="data">${data}</script>
<script>${CLIENT_SCRIPT}</script>
</body></html>
`;
}

/** Runs in the page: draws every canvas the server laid out (empty charts are notes, not canvases). */
const CLIENT_SCRIPT = `
const report = JSON.parse(document.getElementById('data').textContent);
const stages = report.stages;
const palette = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
const outcomeColour = { granted: '#2ca02c', conflict: '#ff7f0e', EDEADLK: '#d62728', timeout: '#9467bd', cancelled: '#7f7f7f', error: '#000000' };
const name = (s) => s.target + ' / ' + s.workload;
/** ns at 3 significant digits, with its unit (as the summary prints it). */
function fmtNs(ns) {
  const sig = (x) => Number(x.toPrecision(3));
  for (const [scale, unit] of [[1e9, 's'], [1e6, 'ms'], [1e3, 'µs']]) if (sig(ns) >= scale) return sig(ns / scale).toLocaleString('en-US', { maximumFractionDigits: 2 }) + ' ' + unit;
  return sig(ns) + ' ns';
}
const us = (ns) => ns / 1000;
const isDecade = (v) => v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-6;
/** A log axis with ticks at whole decades only, then suffixed. */
const logAxis = (label, suffix) => ({ type: 'logarithmic', title: { display: true, text: label },
  ticks: { callback: (v) => isDecade(v) ? Number(v).toLocaleString('en-US', { maximumSignificantDigits: 1 }) + (suffix || '') : '' } });
const linAxis = (label) => ({ type: 'linear', beginAtZero: true, title: { display: true, text: label } });
/** A category axis of bins labelled at whole decades only (10 µs, 100 µs, 1 ms ...). */
const decadeAxis = (edges, label) => ({ title: { display: !!label, text: label }, ticks: { autoSkip: false, maxRotation: 0,
  callback: (v, i) => isDecade(edges[i]) ? fmtNs(edges[i]) : '' } });
const usAxis = (label) => ({ type: 'logarithmic', title: { display: true, text: label }, ticks: { callback: (v) => isDecade(v) ? fmtNs(v * 1000) : '' } });
function line(points, label, colour, dashed) {
  return { label, data: points, borderColor: colour, backgroundColor: colour, pointRadius: 0, borderWidth: 1.5, borderDash: dashed ? [5, 3] : [] };
}
const throughput = (s, i) => line(s.timeline.map((p) => ({ x: p.at, y: p.opsPerSec })), name(s), palette[i % palette.length]);
/** Bars over the plotting bins [lower edge ns, count] of several histograms sharing one axis. */
function binLabels(hs) {
  const edges = [...new Set(hs.flatMap((h) => h.bins.map(([ns]) => ns)))].sort((a, b) => a - b);
  if (edges.length === 0) return [];
  const step = 10 ** 0.1, out = [];
  for (let e = edges[0]; e <= edges[edges.length - 1] * 1.0001; e = e === 0 ? 1 : e * step) out.push(e);
  return out;
}
function binValues(h, edges, share) {
  const m = new Map(h.bins.map(([ns, n]) => [Math.round(Math.log10(Math.max(ns, 1)) * 10), n]));
  return edges.map((e) => { const n = m.get(Math.round(Math.log10(Math.max(e, 1)) * 10)); return n ? (share ? (100 * n) / h.count : n) : null; });
}
const configs = {
  'all:throughput': () => ({ type: 'line', data: { datasets: stages.map(throughput) }, options: { scales: { x: linAxis('s'), y: linAxis('operations/s') } } }),
  'all:latency': () => {
    const kinds = [...new Set(stages.flatMap((s) => Object.keys(s.latency)))];
    const timed = stages.filter((s) => Object.keys(s.latency).length > 0);
    return { type: 'bar', data: { labels: kinds, datasets: timed.flatMap((s, i) => [
      { label: name(s) + ' p50', data: kinds.map((k) => s.latency[k] ? us(s.latency[k].p50) : null), backgroundColor: palette[(2 * i) % palette.length] },
      { label: name(s) + ' p99', data: kinds.map((k) => s.latency[k] ? us(s.latency[k].p99) : null), backgroundColor: palette[(2 * i + 1) % palette.length] }]) },
      options: { scales: { y: usAxis('latency') } } };
  },
  throughput: (s) => ({ type: 'line', data: { datasets: [line(s.timeline.map((p) => ({ x: p.at, y: p.opsPerSec })), 'operations/s', palette[0])] },
    options: { plugins: { legend: { display: false } }, scales: { x: linAxis('s'), y: linAxis('operations/s') } } }),
  rates: (s) => {
    const kinds = Object.keys(outcomeColour).filter((k) => s.timeline.some((p) => p.rates[k]));
    return { type: 'line', data: { datasets: kinds.map((k) => Object.assign(line(s.timeline.map((p) => ({ x: p.at, y: p.rates[k] || null })), k + ' (' + (s.answers[k] || 0).toLocaleString('en-US') + ')', outcomeColour[k]), { pointRadius: 1.5 })) },
      options: { scales: { x: linAxis('s'), y: logAxis('answers/s') } } };
  },
  queue: (s) => {
    const ds = [];
    if (s.timeline.some((p) => p.waitingClients !== null)) ds.push(line(s.timeline.filter((p) => p.waitingClients !== null).map((p) => ({ x: p.at, y: p.waitingClients })), 'blocking requests outstanding (clients)', palette[1]));
    if (s.timeline.some((p) => p.waitingServer !== null)) ds.push(line(s.timeline.filter((p) => p.waitingServer !== null).map((p) => ({ x: p.at, y: p.waitingServer })), 'queued in the lock manager', palette[3], true));
    return { type: 'line', data: { datasets: ds }, options: { scales: { x: linAxis('s'), y: linAxis('requests') } } };
  },
  percentiles: (s) => {
    const kinds = Object.keys(s.latency);
    return { type: 'bar', data: { labels: kinds, datasets: [['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'], ['p999', 'p99.9']].map(([q, label], i) =>
      ({ label, data: kinds.map((k) => us(s.latency[k][q])), backgroundColor: palette[i] })) }, options: { scales: { y: usAxis('latency') } } };
  },
  waits: (s) => {
    const edges = binLabels([s.waits]);
    return { type: 'bar', data: { labels: edges.map(fmtNs), datasets: [{ label: 'requests', data: binValues(s.waits, edges, false), backgroundColor: palette[4], barPercentage: 1, categoryPercentage: 1 }] },
      options: { plugins: { legend: { display: false } }, scales: { x: decadeAxis(edges, 'time taken'), y: logAxis('requests') } } };
  },
  hist: (s, kind) => {
    const edges = binLabels(Object.values(s.latency));
    const h = s.latency[kind];
    return { type: 'bar', data: { labels: edges.map(fmtNs), datasets: [{ label: kind, data: binValues(h, edges, true), backgroundColor: palette[Object.keys(s.latency).indexOf(kind) % palette.length], barPercentage: 1, categoryPercentage: 1 }] },
      options: { aspectRatio: 1.3, plugins: { legend: { display: false } }, scales: { x: decadeAxis(edges), y: Object.assign(logAxis('share of calls', '%'), { min: 0.001, max: 100 }) } } };
  },
};
for (const c of document.querySelectorAll('canvas[data-chart]')) {
  const [key, arg] = c.dataset.chart.split(/:(.*)/s);
  const s = stages[Number(c.dataset.stage)];
  const config = key === 'all' ? configs['all:' + arg]() : configs[key](s, arg);
  config.options = Object.assign({ animation: false, responsive: true }, config.options);
  config.options.plugins = Object.assign({ title: { display: true, text: c.dataset.title } }, config.options.plugins);
  new Chart(c, config);
}
`;
