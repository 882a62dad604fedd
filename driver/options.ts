/**
 * `locksmith stress` options: parsed and validated once, here; a bad option is one sentence and
 * exit code 2.
 */
import { workersArg } from '../src/caller/options.js';
import { joinNegativeValues } from '../src/log.js';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { WORKLOADS, isWorkload } from './workloads.js';
import { FAULT_KINDS, type FaultKind, type TargetName } from './stage.js';

export interface Options {
  workload: string;
  /** Targets asked for; undefined: the default plan (api, pump and mount, each when available). */
  targets?: TargetName[];
  clients: number;
  files: number;
  durationSec?: number;
  ops?: number;
  seed: number;
  workers: number;
  out: string;
  compareKernel: boolean;
  /** Node processes of the nodes target (--nodes N, which adds that target to the others; 2 with --target nodes alone). */
  nodes: number;
  /** The nodes target injects faults (--no-faults turns them off). */
  faults: boolean;
  /** The faults of a round, in order (--fault-kinds); undefined: all of FAULT_KINDS. */
  faultKinds?: FaultKind[];
  /** The nodes target mounts when FUSE is there (--no-mounts turns that off). */
  mounts: boolean;
  help: boolean;
  version: boolean;
}

export class UsageError extends Error {}

/** The default run's load in all, split over its targets; setup and the oracle's last checks add about 3 s. */
export const DEFAULT_DURATION_SEC = 27;

/**
 * What the nodes target with faults does to the budget, as the help and the run's first line say
 * it: its first round of faults completes whatever the budget (each fault waits out a session TTL,
 * 2 s there: about 14 s for the round of four).
 */
export const FAULT_ROUND = 'nodes with faults: until their first round has completed, about 14 s, past the budget if need be';

export function usage(): string {
  const w = WORKLOADS.map((x) => `  ${x.name.padEnd(10)} ${x.description}`).join('\n');
  return `usage: locksmith stress [options]

Loads the lock manager with many clients and checks every grant with an independent oracle.
The last line of the summary is the verdict, also in report.json. Exit status:
  0    the oracle found no violation and every fault check passed
  1    a violation (or a target that failed, or reports that could not be written)
  2    bad options, an --out folder that cannot be written, or a target asked for
       that is unavailable here
  3    no violation, but a fault check of the nodes target failed (see --faults)
  130  interrupted by Ctrl-C (SIGINT), SIGTERM or SIGHUP (the reports are still written)

options:
  --workload NAME     the operation mix (default: all); one of:
${w}
  --target T[,T...]   api (the library in-process), mount (a FUSE mount driven by client
                      processes), pump (the native synthetic source), nodes (node processes
                      sharing one lock space on Redis, see --nodes). Default: ${DEFAULT_DURATION_SEC} s of
                      load split over api, pump and mount, each when available.
  --nodes N           the nodes target with N node processes (2 to 64), added to those of
                      --target ('--target api --nodes 2' runs api, then nodes): each node a
                      coordinator on one store (a redis-server the run starts; apt-get install
                      redis-server), the clients spread over them, every node's grants
                      checked by one oracle.
                      When FUSE is there (root, /dev/fuse, cc), each node also mounts one
                      shared directory (API clients and mounts): every other POSIX client of a
                      node is a process calling fcntl and flock on its mount; without FUSE the
                      run says why it skipped the mounts, and runs API clients only
  --faults            with the nodes target (the default): kill -9 a node, SIGSTOP one past
                      its session's TTL, restart the engine with nothing kept, restart it
                      from an older snapshot (one that lacks a lock a node holds), and check
                      how each resolved (a check that failed: exit status 3, unless a
                      violation makes it 1).
                      The first round of the four always completes, so the nodes target's
                      load lasts at least about 14 s (each fault waits out a 2 s session TTL;
                      more with mounts), past --duration if need be; a later fault begins only
                      when the time left covers what its kind took in the first round
  --fault-kinds K[,K...]
                      only these faults, in this order, round after round: kill, stop,
                      engine (restart with nothing kept), snapshot (restart from an older
                      snapshot); e.g. --fault-kinds snapshot to drill one
  --no-faults         the nodes target without faults
  --no-mounts         the nodes target with API clients only, even where FUSE is there
  --clients N         concurrent clients (default 16)
  --files N           files the clients share (default 8)
  --duration S        seconds of load per target, start-up not counted (default: ${DEFAULT_DURATION_SEC} s
                      split over the targets); the nodes target with faults: see --faults
  --ops N             operations per target instead of a duration
  --seed N            seed of the operation streams (default: random, printed); the same seed
                      replays the same streams
  --workers N         worker threads deciding locks (default 2)
  --out DIR           where report.json and report.html go (default: stress-report); created
                      and checked for writing before the run starts
  --compare kernel    also run the workload's POSIX clients on a tmpfs directory with the
                      kernel's own locks, and report both side by side
  --version           print locksmith's version
  --help, -h          this text
`;
}

/** Runs `f`, turning its TypeError into the command line's usage error. */
function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError(`${e instanceof Error ? e.message : String(e)}.`);
  }
}

/** A whole-number option from `min` to `max` (`unit`: what it counts, for the message). */
function integer(name: string, v: string | undefined, min: number, max: number, unit = ''): number | undefined {
  if (v === undefined) return undefined;
  const range = `--${name} must be between ${min} and ${max}${unit === '' ? '' : ` ${unit}`}`;
  // A negative number is a number out of range, said as such (not "needs a whole number").
  if (/^-\d+$/.test(v)) throw new UsageError(`${range}, got ${v}.`);
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} needs a whole number, got '${v}'.`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`${range}, got ${n}.`);
  return n;
}

const TARGETS: readonly TargetName[] = ['api', 'mount', 'pump', 'nodes'];

const SPEC = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  workload: { type: 'string' },
  target: { type: 'string' },
  clients: { type: 'string' },
  files: { type: 'string' },
  duration: { type: 'string' },
  ops: { type: 'string' },
  seed: { type: 'string' },
  workers: { type: 'string' },
  out: { type: 'string' },
  compare: { type: 'string' },
  nodes: { type: 'string' },
  faults: { type: 'boolean' },
  'no-faults': { type: 'boolean' },
  'fault-kinds': { type: 'string' },
  'no-mounts': { type: 'boolean' },
} as const;

/** parseArgs' own errors, as one sentence of ours. */
function argsError(e: unknown): UsageError {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option '${quoted}'; run 'locksmith stress --help'.`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument '${quoted}' (stress takes options only); run 'locksmith stress --help'.`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
      if (/does not take an argument/.test(message)) return new UsageError(`${option} takes no value.`);
      return new UsageError(`${option} needs a value.`);
    }
    default:
      return new UsageError(message.split('\n')[0]!);
  }
}

export function parse(argv: readonly string[]): Options {
  let values: { [K in keyof typeof SPEC]?: (typeof SPEC)[K]['type'] extends 'boolean' ? boolean : string };
  try {
    const valued = Object.entries(SPEC).flatMap(([name, o]) => (o.type === 'string' ? [name] : []));
    ({ values } = parseArgs({ args: joinNegativeValues(argv, valued), options: SPEC, strict: true, allowPositionals: false }));
  } catch (e) {
    throw argsError(e);
  }
  const o: Options = {
    workload: 'all',
    clients: integer('clients', values.clients, 1, 1024) ?? 16,
    files: integer('files', values.files, 1, 100000) ?? 8,
    seed: integer('seed', values.seed, 0, 0xffffffff) ?? (Date.now() ^ (process.pid << 8)) >>> 0,
    workers: values.workers === undefined ? 2 : asUsage(() => workersArg(values.workers!)),
    out: 'stress-report',
    compareKernel: false,
    nodes: integer('nodes', values.nodes, 2, 64) ?? 2,
    faults: values['no-faults'] !== true,
    mounts: values['no-mounts'] !== true,
    help: values.help === true,
    version: values.version === true,
  };
  const duration = integer('duration', values.duration, 1, 86400, 'seconds');
  if (duration !== undefined) o.durationSec = duration;
  const ops = integer('ops', values.ops, 1, 1e12);
  if (ops !== undefined) o.ops = ops;
  if (values.workload !== undefined) {
    if (!isWorkload(values.workload)) throw new UsageError(`--workload must be one of ${WORKLOADS.map((w) => w.name).join(', ')}; got '${values.workload}'.`);
    o.workload = values.workload;
  }
  if (values.target !== undefined) {
    const ts = values.target.split(',').filter((t) => t !== '');
    const bad = ts.find((t) => !TARGETS.includes(t as TargetName));
    if (ts.length === 0 || bad !== undefined) throw new UsageError(`--target must be api, mount, pump or nodes (or a comma-separated list); got '${bad ?? values.target}'.`);
    o.targets = [...new Set(ts as TargetName[])];
  }
  if (values.nodes !== undefined && !o.targets?.includes('nodes')) o.targets = [...(o.targets ?? []), 'nodes'];
  if (values.faults === true && values['no-faults'] === true) throw new UsageError('give either --faults or --no-faults, not both.');
  if ((values.faults !== undefined || values['no-faults'] !== undefined) && !o.targets?.includes('nodes')) {
    throw new UsageError('--faults and --no-faults apply to the nodes target (--nodes N).');
  }
  if (values['fault-kinds'] !== undefined) {
    if (!o.targets?.includes('nodes')) throw new UsageError('--fault-kinds applies to the nodes target (--nodes N).');
    if (!o.faults) throw new UsageError('give either --fault-kinds or --no-faults, not both.');
    const ks = values['fault-kinds'].split(',').filter((k) => k !== '');
    const bad = ks.find((k) => !FAULT_KINDS.includes(k as FaultKind));
    if (ks.length === 0 || bad !== undefined) throw new UsageError(`--fault-kinds must be ${FAULT_KINDS.join(', ')} (or a comma-separated list); got '${bad ?? values['fault-kinds']}'.`);
    o.faultKinds = [...new Set(ks as FaultKind[])];
  }
  if (values['no-mounts'] !== undefined && !o.targets?.includes('nodes')) throw new UsageError('--no-mounts applies to the nodes target (--nodes N).');
  if (values.out !== undefined) {
    if (values.out === '') throw new UsageError('--out needs a folder.');
    o.out = values.out;
  }
  if (values.compare !== undefined) {
    if (values.compare !== 'kernel') throw new UsageError(`--compare only knows 'kernel'; got '${values.compare}'.`);
    o.compareKernel = true;
  }
  if (o.durationSec !== undefined && o.ops !== undefined) throw new UsageError('give either --duration or --ops, not both.');
  return o;
}

/** This package's version (package.json). */
export function version(): string {
  return (createRequire(import.meta.url)('locksmith/package.json') as { version: string }).version;
}
