/**
 * What the benchmarks share: command-line options, medians, and the report of a rounds-based run
 * (bench:api, bench:fuse): each series' median over rounds with its [min .. max] spread, split into
 * our rows and the floors they are compared to, ratios taken per round (noise that hits a whole round
 * cancels), printed as a table and written as `{ rows, floors, ratios, meta }`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `--name=value` (or a bare `--name`, giving '') from the command line. */
export function option(name: string): string | undefined {
  const hit = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (hit === undefined) return undefined;
  const eq = hit.indexOf('=');
  return eq < 0 ? '' : hit.slice(eq + 1);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export type Unit = 'ops/s' | 'tx/s' | 'rt/s' | 'µs' | 'MB' | 'B' | 'msg/batch';

export interface Row {
  name: string;
  value: number;
  unit: Unit;
}

export interface Ratio {
  name: string;
  value: number;
  target: string;
  met: boolean | null;
}

/** One series: its unit and its value in each round. */
export type Results = Map<string, { unit: Unit; rounds: number[] }>;

export class Report {
  readonly rows: Row[] = [];
  readonly floors: Record<string, { value: number; unit: Unit }> = {};
  readonly ratios: Ratio[] = [];
  private readonly spreads = new Map<string, [number, number]>();

  /**
   * @param floor names of the series that are floors (the references), not ours
   * @param decimals decimals kept per unit (0 when not listed)
   */
  constructor(
    private readonly results: Results,
    floor: RegExp,
    private readonly decimals: Partial<Record<Unit, number>>,
  ) {
    for (const [name, e] of results) {
      const value = this.round(median(e.rounds), e.unit);
      this.spreads.set(name, [Math.min(...e.rounds), Math.max(...e.rounds)]);
      if (floor.test(name)) this.floors[name] = { value, unit: e.unit };
      else this.rows.push({ name, value, unit: e.unit });
    }
  }

  round(v: number, unit: Unit): number {
    const k = 10 ** (this.decimals[unit] ?? 0);
    return Math.round(v * k) / k;
  }

  /** Median over rounds of the round's own ratio num / den; skipped if either series did not run. */
  ratio(num: string, den: string, target?: { op: '>=' | '<='; x: number }): void {
    const a = this.results.get(num)?.rounds;
    const b = this.results.get(den)?.rounds;
    if (a === undefined || b === undefined || a.length !== b.length) return;
    const v = Math.round(median(a.map((x, i) => x / b[i]!)) * 1000) / 1000;
    this.ratios.push({
      name: `${num} / ${den}`,
      value: v,
      target: target === undefined ? '' : `${target.op} ${target.x}`,
      met: target === undefined ? null : target.op === '>=' ? v >= target.x : v <= target.x,
    });
  }

  /** A target on an absolute value (not a ratio), listed with the ratios. */
  absolute(name: string, value: number, target: string, met: boolean): void {
    this.ratios.push({ name, value, target, met });
  }

  /** Prints the table: our rows, the floors (with what they are), then the ratios and their verdicts. */
  print(title: string, rounds: number, elapsedSec: number, floorsNote: string): void {
    const fmt = (v: number, unit: Unit): string =>
      unit === 'ops/s' || unit === 'rt/s' ? `${Math.round(v).toLocaleString('en-US')} ${unit}` : `${v.toLocaleString('en-US')} ${unit}`;
    const line = (name: string, v: number, unit: Unit): string => {
      const s = this.spreads.get(name);
      const range = s === undefined ? '' : `   [${fmt(this.round(s[0], unit), unit)} .. ${fmt(this.round(s[1], unit), unit)}]`;
      return `  ${name.padEnd(26)} ${fmt(v, unit).padStart(18)}${range}`;
    };
    console.log(
      `\n${title}: median of ${rounds} rounds [min .. max], node ${process.version}, ${os.availableParallelism()} cpus, load ${os.loadavg()[0]!.toFixed(2)}, ${elapsedSec.toFixed(0)} s`,
    );
    console.log('ours');
    for (const r of this.rows) console.log(line(r.name, r.value, r.unit));
    console.log(`floors (${floorsNote})`);
    for (const [name, f] of Object.entries(this.floors)) console.log(line(name, f.value, f.unit));
    console.log('ratios (median of per-round ratios)');
    for (const r of this.ratios) {
      const verdict = r.met === null ? '' : r.met ? 'met' : 'MISSED';
      console.log(`  ${r.name.padEnd(52)} ${String(r.value).padStart(9)}  ${r.target.padEnd(10)} ${verdict}`);
    }
  }

  /** Writes `{ rows, floors, ratios, meta }` to `file` (meta gains the date, node, cpus and load). */
  write(file: string, root: string, meta: Record<string, unknown>): void {
    mkdirSync(path.dirname(file), { recursive: true });
    const m = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.availableParallelism(),
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
      ...meta,
    };
    writeFileSync(file, `${JSON.stringify({ rows: this.rows, floors: this.floors, ratios: this.ratios, meta: m }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(root, file)}`);
  }
}
