#!/usr/bin/env node
/**
 * The `locksmith` command: `mount` serves a FUSE mount whose locks the actors decide
 * (src/mount-cli.ts), `locks` and `stats` ask a running mount through its control socket
 * (src/locks-cli.ts), `stress` runs the stress runner (driver/). Each subcommand's module is loaded
 * only when it is asked for.
 */
import { versionLine } from './version.js';

const USAGE = `usage: locksmith <command> [options]

commands:
  mount <backing-dir> <mountpoint> [--workers N]   serve a FUSE mount whose locks locksmith decides
  locks [<mountpoint>] [--json]                    list the locks processes hold on running mounts
  locks --store URL [--namespace NAME] [--json]    list a lock space's locks from its engine (no mount)
  stats [<mountpoint>] [--json]                    show a running mount's counters
  stress [options]                                 load the lock manager and check every grant
  --version                                        print the version
  --help                                           show this text

'locksmith <command> --help' explains a command.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(versionLine());
    return 0;
  }
  if (cmd === 'mount') return (await import('./mount-cli.js')).main(rest);
  if (cmd === 'locks' || cmd === 'stats') return (await import('./locks-cli.js')).main(cmd, rest);
  if (cmd === 'stress') return (await import('../driver/main.js')).main(rest);
  process.stderr.write(`locksmith: unknown command '${cmd}'. Run 'locksmith --help'.\n`);
  return 2;
}

/**
 * Resolves once what was written to `stream` has left the process. stdout and stderr on a pipe
 * are not written synchronously: exiting at once cut a listing larger than the pipe's buffer (64
 * KiB) there. A reader gone (EPIPE: `| head -1`) ends the wait too.
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    // Kept: the stream says its error after the write's callback (the process exits meanwhile).
    stream.on('error', () => resolve());
    stream.write('', () => resolve());
  });
}

main(process.argv.slice(2)).then(
  async (code) => {
    process.exitCode = code;
    // mount, locks and stats are done when they return: nothing left behind (a control
    // connection's teardown) may hold the exit up, once their output has left.
    const cmd = process.argv[2];
    if (cmd === 'mount' || cmd === 'locks' || cmd === 'stats') {
      await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
      process.exit(code);
    }
  },
  (e: unknown) => {
    process.stderr.write(`locksmith: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
