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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // mount, locks and stats are done when they return: nothing left behind (a control
    // connection's teardown) may hold the exit up. Their output is written synchronously (files
    // and pipes on Linux).
    const cmd = process.argv[2];
    if (cmd === 'mount' || cmd === 'locks' || cmd === 'stats') process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`locksmith: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
