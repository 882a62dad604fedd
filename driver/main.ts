/**
 * `locksmith stress`: plans the stages (which targets, for how long), runs them one after another
 * with live progress, prints the summary and writes report.json and report.html.
 *
 * Exit codes (EXIT in report.ts): 0 no violation and every fault check passed, 1 violations (or
 * a stage failed, or the reports could not be written), 2 bad options, an --out folder that cannot
 * be written or an unavailable target that was asked for, 3 no violation but a fault check of the
 * nodes target failed, 130 interrupted (SIGINT, SIGTERM or SIGHUP; reports are still written). The summary, whose
 * last line is the verdict, is printed before the reports are written, so it is never lost; the
 * verdict is in report.json too.
 */
import { DEFAULT_DURATION_SEC, FAULT_ROUND, UsageError, parse, usage, version, type Options } from './options.js';
import { ProgressDisplay, type ProgressStream } from './progress.js';
import { EXIT, FAULT_NAMES, OutDirError, makeReport, prepareOutDir, stageName, summary, writeReports } from './report.js';
import { FAULT_KINDS, type Progress, type StageResult, type StageSpec, type TargetName } from './stage.js';
import { availability, runTarget } from './targets/index.js';
import { nodesMountsUnavailable } from './targets/mount.js';

const MIN_DEFAULT_STAGE_SEC = 5;

interface Plan {
  targets: TargetName[];
  lines: string[];
  /** Said on stderr too: what runs with less than asked for. */
  warnings: string[];
}

async function plan(o: Options): Promise<Plan> {
  const lines: string[] = [];
  const warnings: string[] = [];
  const wanted: TargetName[] = o.targets ?? ['api', 'pump', 'mount'];
  const targets: TargetName[] = [];
  for (const t of wanted) {
    const why = await availability(t);
    if (why === undefined) {
      targets.push(t);
      let extra = '';
      if (t === 'nodes') {
        const noMounts = await nodesMountsUnavailable({ mounts: o.mounts });
        extra = `; ${o.nodes} nodes (${noMounts === undefined ? 'API clients and mounts' : `API clients only; MOUNTS SKIPPED: ${noMounts}`}), ${o.faults ? `faults: ${(o.faultKinds ?? FAULT_KINDS).map((k) => FAULT_NAMES[k]).join(', ')}` : 'no faults'}`;
        if (noMounts !== undefined && o.mounts) warnings.push(`the nodes target runs WITHOUT MOUNTS: ${noMounts}`);
      }
      lines.push(`${t}: runs (${DESCRIPTIONS[t]}${extra})`);
    } else if (o.targets !== undefined || why.includes('failed to load')) {
      // A target asked for by name, or an addon that is there but broken or stale (a build to
      // repair, not a machine without FUSE), is an error rather than a skip.
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
  return { targets, lines, warnings };
}

const DESCRIPTIONS: Record<TargetName, string> = {
  api: 'the library in this process, clients calling the public API',
  pump: "the native synthetic source's recorded random requests, decided by the workers",
  mount: 'a FUSE passthrough mount, client processes calling fcntl and flock on it, Windows clients through its coordinator',
  kernel: "the same POSIX client processes on a tmpfs directory, locks decided by the kernel",
  nodes: 'node processes sharing one lock space on a redis-server of their own, every grant checked by one oracle',
};

/** Where `main` writes: the summary to `out`, progress and errors to `err`. */
export interface Io {
  out: { write(s: string): unknown };
  err: ProgressStream;
}

export async function main(argv: string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  let o: Options;
  let p: Plan;
  try {
    o = parse(argv);
    if (o.help) {
      io.out.write(usage());
      return 0;
    }
    if (o.version) {
      io.out.write(`locksmith ${version()}\n`);
      return 0;
    }
    await prepareOutDir(o.out);
    p = await plan(o);
  } catch (e) {
    if (!(e instanceof UsageError || e instanceof OutDirError)) throw e;
    io.err.write(`locksmith stress: ${e.message}\n`);
    return EXIT.usage;
  }
  const perStage = o.durationSec ?? (o.ops === undefined ? Math.max(MIN_DEFAULT_STAGE_SEC, Math.round(DEFAULT_DURATION_SEC / p.targets.length)) : undefined);
  io.out.write(`locksmith stress: workload ${o.workload}, seed ${o.seed}, ${o.clients} clients, ${o.files} files, ${o.workers} workers, ` +
    (perStage !== undefined ? `${perStage} s per target` : `${o.ops} operations per target`) +
    (p.targets.includes('nodes') && o.faults ? ` (${FAULT_ROUND})` : '') + '\n' + p.lines.map((l) => `  ${l}\n`).join(''));
  for (const w of p.warnings) io.err.write(`locksmith stress: WARNING: ${w}\n`);

  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(130); // the 'exit' handlers still unmount
    io.err.write('\nlocksmith stress: interrupted; cleaning up (again to force)\n');
    interrupt.abort();
  };
  // SIGTERM (timeout, kill, a CI runner's cancel) ends the run as Ctrl-C does: without a handler
  // it killed the runner at once, leaving its redis-server and mounts behind, and no report.
  // SIGHUP (its terminal closed) too: the run's processes have process groups of their own, so the
  // runner stops them, the redis-server included, which the default action would leave running.
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of SIGNALS) process.on(s, onSigint);
  const display = new ProgressDisplay(io.err);
  const startedAt = new Date();
  const results: StageResult[] = [];
  const stageFailures: string[] = [];
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
        ...(target === 'nodes' ? { nodes: o.nodes, faults: o.faults, mounts: o.mounts, ...(o.faultKinds === undefined ? {} : { faultKinds: o.faultKinds }) } : {}),
        ...(perStage !== undefined ? { durationSec: perStage } : { ops: o.ops! }),
      };
      const progress: (p: Progress) => void = display.stage(stageName(spec));
      try {
        results.push(await runTarget(spec, progress));
      } catch (e) {
        const why = `the ${target} stage failed: ${e instanceof Error ? e.message : String(e)}`;
        stageFailures.push(why.split('\n')[0]!);
        display.end();
        io.err.write(`locksmith stress: ${why}\n`);
      }
      display.end();
    }
  } finally {
    for (const s of SIGNALS) process.removeListener(s, onSigint);
    display.end();
  }
  const report = makeReport(o.seed, argv, p.lines, results, startedAt, { stageFailures, interrupted: interrupt.signal.aborted });
  io.out.write(`\n${summary(report)}`);
  try {
    const paths = await writeReports(o.out, report);
    io.out.write(`reports: ${paths.json}, ${paths.html}\n`);
  } catch (e) {
    io.err.write(`locksmith stress: ${e instanceof Error ? e.message : String(e)}\n`);
    if (!report.verdict.interrupted) return EXIT.failed;
  }
  return report.verdict.exitCode;
}
