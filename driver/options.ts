/**
 * `locksmith stress` options: parsed and validated once, here; a bad option is one sentence and
 * exit code 2.
 */
import { WORKLOADS, isWorkload } from './workloads.js';
import type { TargetName } from './stage.js';

export interface Options {
  workload: string;
  /** Targets asked for; undefined: the default plan (pump and mount when available, else api). */
  targets?: TargetName[];
  clients: number;
  files: number;
  durationSec?: number;
  ops?: number;
  seed: number;
  workers: number;
  out: string;
  compareKernel: boolean;
  help: boolean;
}

export class UsageError extends Error {}

/** The default run's load in all, split over its targets; setup and the oracle's last checks add about 3 s. */
export const DEFAULT_DURATION_SEC = 27;

export function usage(): string {
  const w = WORKLOADS.map((x) => `  ${x.name.padEnd(10)} ${x.description}`).join('\n');
  return `usage: locksmith stress [options]

Loads the lock manager with many clients and checks every grant with an independent oracle.
Exits 0 only when the oracle found no violation.

options:
  --workload NAME     the operation mix (default: all); one of:
${w}
  --target T[,T...]   api (the library in-process), mount (a FUSE mount driven by client
                      processes), pump (the native synthetic source). Default: a run of about
                      ${DEFAULT_DURATION_SEC} s through api, pump and mount, each when available.
  --clients N         concurrent clients (default 16)
  --files N           files the clients share (default 8)
  --duration S        seconds of load per target (default: ${DEFAULT_DURATION_SEC} s split over the targets)
  --ops N             operations per target instead of a duration
  --seed N            seed of the operation streams (default: random, printed); the same seed
                      replays the same streams
  --workers N         worker threads deciding locks (default 2)
  --out DIR           where report.json and report.html go (default: stress-report)
  --compare kernel    also run the workload's POSIX clients on a tmpfs directory with the
                      kernel's own locks, and report both side by side
  --help              this text
`;
}

function integer(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || !/^\d+$/.test(v)) throw new UsageError(`--${name} needs a whole number, got ${v === undefined ? 'nothing' : `'${v}'`}.`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}.`);
  return n;
}

const TARGETS: readonly TargetName[] = ['api', 'mount', 'pump'];

export function parse(argv: readonly string[]): Options {
  const o: Options = {
    workload: 'all',
    clients: 16,
    files: 8,
    seed: (Date.now() ^ (process.pid << 8)) >>> 0,
    workers: 2,
    out: 'stress-report',
    compareKernel: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq < 0 ? undefined : eq) : undefined;
    const value = (): string | undefined => (eq >= 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (name) {
      case 'help':
        o.help = true;
        break;
      case 'workload': {
        const v = value();
        if (v === undefined || !isWorkload(v)) throw new UsageError(`--workload must be one of ${WORKLOADS.map((w) => w.name).join(', ')}; got ${v === undefined ? 'nothing' : `'${v}'`}.`);
        o.workload = v;
        break;
      }
      case 'target': {
        const v = value() ?? '';
        const ts = v.split(',').filter((t) => t !== '');
        const bad = ts.find((t) => !TARGETS.includes(t as TargetName));
        if (ts.length === 0 || bad !== undefined) throw new UsageError(`--target must be api, mount or pump (or a comma-separated list); got '${bad ?? v}'.`);
        o.targets = [...new Set(ts as TargetName[])];
        break;
      }
      case 'clients':
        o.clients = integer('clients', value(), 1, 1024);
        break;
      case 'files':
        o.files = integer('files', value(), 1, 100000);
        break;
      case 'duration':
        o.durationSec = integer('duration', value(), 1, 86400);
        break;
      case 'ops':
        o.ops = integer('ops', value(), 1, 1e12);
        break;
      case 'seed':
        o.seed = integer('seed', value(), 0, 0xffffffff);
        break;
      case 'workers':
        o.workers = integer('workers', value(), 1, 64);
        break;
      case 'out': {
        const v = value();
        if (v === undefined || v === '') throw new UsageError('--out needs a directory.');
        o.out = v;
        break;
      }
      case 'compare': {
        const v = value();
        if (v !== 'kernel') throw new UsageError(`--compare only knows 'kernel'; got ${v === undefined ? 'nothing' : `'${v}'`}.`);
        o.compareKernel = true;
        break;
      }
      default:
        throw new UsageError(`unknown option '${arg}'; run 'locksmith stress --help'.`);
    }
  }
  if (o.durationSec !== undefined && o.ops !== undefined) throw new UsageError('give either --duration or --ops, not both.');
  return o;
}
