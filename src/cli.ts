#!/usr/bin/env node
/**
 * The `locksmith` command. Subcommands arrive with the pieces behind them: `mount` needs the native
 * FUSE pump, `stress` the stress runner; until they exist they say so and exit non-zero.
 */
const USAGE = `usage: locksmith <command> [options]

commands:
  mount <backing-dir> <mountpoint> [--workers N]   serve a FUSE mount whose locks locksmith decides
  stress [options]                                 load the lock manager and check every grant
  --help                                           show this text
`;

function main(argv: string[]): number {
  const [cmd] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'mount' || cmd === 'stress') {
    process.stderr.write(`locksmith: '${cmd}' is not part of this build yet.\n`);
    return 2;
  }
  process.stderr.write(`locksmith: unknown command '${cmd}'. Run 'locksmith --help'.\n`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
