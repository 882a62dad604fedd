/**
 * `locksmith stress`: plans the stages (which targets, for how long), runs them one after another
 * with live progress, prints the summary and writes report.json and report.html.
 *
 * Exit codes: 0 no violation, 1 violations (or a stage failed), 2 bad options or an unavailable
 * target that was asked for, 130 interrupted (SIGINT; reports are still written).
 */
import { DEFAULT_DURATION_SEC, UsageError, parse, usage, type Options } from './options.js';
import { ProgressDisplay } from './progress.js';
import { makeReport, stageName, summary, writeReports } from './report.js';
import type { Progress, StageResult, StageSpec, TargetName } from './stage.js';
import { availability, runTarget } from './targets/index.js';

const MIN_DEFAULT_STAGE_SEC = 5;

interface Plan {
  targets: TargetName[];
  lines: string[];
}

async function plan(o: Options): Promise<Plan> {
  const lines: string[] = [];
  const wanted: TargetName[] = o.targets ?? ['api', 'pump', 'mount'];
  const targets: TargetName[] = [];
  for (const t of wanted) {
    const why = await availability(t);
    if (why === undefined) {
      targets.push(t);
      lines.push(`${t}: runs (${DESCRIPTIONS[t]})`);
    } else if (o.targets !== undefined) {
      throw new UsageError(`the ${t} target is unavailable: ${why}.`);
    } else {
      lines.push(`${t}: skipped, ${why}`);
    }
  }
  if (o.compareKernel) {
    const why = await availability('kernel');
    if (why !== undefined) throw new UsageError(`--compare kernel is unavailable: ${why}.`);
    targets.push('kernel');
    lines.push(`kernel: runs (${DESCRIPTIONS.kernel})`);
  }
  return { targets, lines };
}

const DESCRIPTIONS: Record<TargetName, string> = {
  api: 'the library in this process, clients calling the public API',
  pump: "the native synthetic source's recorded random requests, decided by the workers",
  mount: 'a FUSE passthrough mount, client processes calling fcntl and flock on it, Windows clients through its coordinator',
  kernel: "the same POSIX client processes on a tmpfs directory, locks decided by the kernel",
};

export async function main(argv: string[]): Promise<number> {
  let o: Options;
  let p: Plan;
  try {
    o = parse(argv);
    if (o.help) {
      process.stdout.write(usage());
      return 0;
    }
    p = await plan(o);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`locksmith stress: ${e.message}\n`);
    return 2;
  }
  const perStage = o.durationSec ?? (o.ops === undefined ? Math.max(MIN_DEFAULT_STAGE_SEC, Math.round(DEFAULT_DURATION_SEC / p.targets.length)) : undefined);
  process.stdout.write(`locksmith stress: workload ${o.workload}, seed ${o.seed}, ${o.clients} clients, ${o.files} files, ${o.workers} workers, ` +
    (perStage !== undefined ? `${perStage} s per target` : `${o.ops} operations per target`) + '\n' + p.lines.map((l) => `  ${l}\n`).join(''));

  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(130); // the 'exit' handlers still unmount
    process.stderr.write('\nlocksmith stress: interrupted; cleaning up (again to force)\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  const display = new ProgressDisplay();
  const startedAt = new Date();
  const results: StageResult[] = [];
  let failed = false;
  try {
    for (const target of p.targets) {
      if (interrupt.signal.aborted) break;
      const spec: StageSpec = {
        target,
        workload: o.workload,
        seed: o.seed,
        clients: o.clients,
        files: o.files,
        workers: o.workers,
        signal: interrupt.signal,
        ...(perStage !== undefined ? { durationSec: perStage } : { ops: o.ops! }),
      };
      const progress: (p: Progress) => void = display.stage(stageName(spec));
      try {
        results.push(await runTarget(spec, progress));
      } catch (e) {
        failed = true;
        display.end();
        process.stderr.write(`locksmith stress: the ${target} stage failed: ${e instanceof Error ? e.message : String(e)}\n`);
      }
      display.end();
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    display.end();
  }
  const report = makeReport(o.seed, argv, p.lines, results, startedAt);
  const paths = await writeReports(o.out, report);
  process.stdout.write('\n' + summary(report, paths));
  if (interrupt.signal.aborted) return 130;
  return report.violations === 0 && !failed ? 0 : 1;
}
