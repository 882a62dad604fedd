/**
 * `locksmith mount <backing-dir> <mountpoint> [--workers N]`: serves a passthrough of the backing
 * directory whose locks locksmith decides, until SIGINT or SIGTERM, then unmounts.
 */
import { parseArgs } from 'node:util';
import { mountFuse } from './mount.js';

const HELP = `usage: locksmith mount <backing-dir> <mountpoint> [--workers N] [--threads N]

Mounts a FUSE passthrough of <backing-dir> at <mountpoint>. Programs that open files under the
mountpoint read and write the backing files; their fcntl (F_SETLK, F_SETLKW, F_GETLK, OFD) and
flock locks are decided by locksmith's per-file actors on N worker threads, as Linux would decide
them on a local file system: waiting requests never hold a FUSE thread, a signal interrupts them,
close() and process exit release what they should, and deadlocks between processes get EDEADLK.

Serves until SIGINT (Ctrl-C) or SIGTERM, then answers every waiting request, unmounts and exits.
Needs /dev/fuse and the right to mount (root, or fusermount3 for the user).

options:
  --workers N   worker threads deciding locks (default: the number of CPUs)
  --threads N   libfuse threads serving file operations (default 4)
  --help        show this text
`;

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new UsageError(`--${name} must be a whole number from 1 to 1024, got '${v}'`);
  return n;
}

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  let backing: string;
  let mountpoint: string;
  let workers: number | undefined;
  let threads: number | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { workers: { type: 'string' }, threads: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length !== 2) throw new UsageError('mount needs a backing directory and a mountpoint');
    [backing, mountpoint] = positionals as [string, string];
    workers = positiveInt(values.workers, 'workers');
    threads = positiveInt(values.threads, 'threads');
  } catch (e) {
    process.stderr.write(`locksmith mount: ${e instanceof Error ? e.message : String(e)}. Run 'locksmith mount --help'.\n`);
    return 2;
  }

  let m;
  try {
    m = await mountFuse({ backing, mountpoint, ...(workers === undefined ? {} : { workers }), ...(threads === undefined ? {} : { threads }) });
  } catch (e) {
    process.stderr.write(`locksmith mount: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const info = m.info();
  process.stdout.write(
    `locksmith: serving ${backing} at ${mountpoint} with ${workers ?? 'default'} workers` +
      ` (POSIX locks ${info.posixLocks ? 'ours' : 'decided by the kernel'}, flock ${info.flockLocks ? 'ours' : 'decided by the kernel'});` +
      ' Ctrl-C or SIGTERM unmounts\n',
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const stats = await m.coordinator.stats().catch(() => undefined);
  await m.unmount();
  const served = stats === undefined ? '' : ` after ${stats.workers.reduce((n, w) => n + w.calls, 0)} lock requests`;
  process.stdout.write(`locksmith: ${signal}: unmounted ${mountpoint}${served}\n`);
  return 0;
}
