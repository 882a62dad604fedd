/**
 * Command-line values a new user gets wrong (issue 13): a negative number after a flag
 * (`locksmith stress --duration -1`, `locksmith mount --workers -1`) was taken for an option, and
 * the user was told the flag "needs a value"; it now reaches the flag's own check, which says what
 * a valid value is. A --store URL with port 0 is a usage error naming it. In-process: the parse of
 * `stress` (driver/options.ts) and `mount`'s main (src/mount-cli.ts), which returns 2 on a usage
 * error before it mounts anything.
 */
import t from 'tap';
import { parse, UsageError } from '../../driver/options.js';
import { joinNegativeValues, resolveLogLevel } from '../../src/log.js';
import { main as locksMain } from '../../src/locks-cli.js';
import { main as mountMain } from '../../src/mount-cli.js';

/** The sentence parse() refuses `args` with, or undefined when it takes them. */
function refusal(args: string[]): string | undefined {
  try {
    parse(args);
    return undefined;
  } catch (e) {
    return e instanceof UsageError ? e.message : `not a UsageError: ${String(e)}`;
  }
}

t.test('joinNegativeValues: a negative number after a flag that takes a value is its value', async (t) => {
  t.same(joinNegativeValues(['--duration', '-1', '--ops', '5'], ['duration', 'ops']), ['--duration=-1', '--ops', '5']);
  t.same(joinNegativeValues(['--duration', '-1.5'], ['duration']), ['--duration=-1.5'], 'a negative fraction too');
  t.same(joinNegativeValues(['--json', '-1'], ['duration']), ['--json', '-1'], 'not after a flag that takes no value');
  t.same(joinNegativeValues(['--duration', '-h'], ['duration']), ['--duration', '-h'], 'not an option after it');
  t.same(joinNegativeValues(['--', '--duration', '-1'], ['duration']), ['--', '--duration', '-1'], "nothing after '--'");
  t.same(joinNegativeValues(['--duration'], ['duration']), ['--duration'], 'a flag at the end stays');
});

t.test('locksmith stress: a negative number says the valid range, not "needs a value"', async (t) => {
  for (const [args, sentence] of [
    [['--duration', '-1'], '--duration must be between 1 and 86400 seconds, got -1.'],
    [['--duration=-1'], '--duration must be between 1 and 86400 seconds, got -1.'],
    [['--duration', '0'], '--duration must be between 1 and 86400 seconds, got 0.'],
    [['--clients', '-3'], '--clients must be between 1 and 1024, got -3.'],
    [['--seed', '-5'], '--seed must be between 0 and 4294967295, got -5.'],
    [['--nodes', '-2'], '--nodes must be between 2 and 64, got -2.'],
    [['--workers', '-2'], "--workers must be an integer from 1 to 256, got '-2'."],
    // Unchanged: a missing value, and a value that is no number.
    [['--duration'], '--duration needs a value.'],
    [['--clients', '--seed', '5'], '--clients needs a value.'],
    [['--duration', '1.5'], "--duration needs a whole number, got '1.5'."],
  ] as const) {
    t.equal(refusal([...args]), sentence, args.join(' '));
  }
  t.equal(parse(['--duration', '5']).durationSec, 5, 'a good duration is taken');
});

/** Runs a command's main in-process: its exit status and what it wrote to stderr. */
async function captured(main: () => Promise<number>): Promise<{ status: number; stderr: string }> {
  const write = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { status: await main(), stderr };
  } finally {
    process.stderr.write = write;
  }
}

/** Runs `locksmith mount` in-process. */
const mount = (args: string[]) => captured(() => mountMain(args));

t.test('locksmith mount: a negative --workers or --threads, and a --store with port 0, are usage errors that say why', async (t) => {
  for (const [args, sentence] of [
    [['--workers', '-1'], "--workers must be an integer from 1 to 256, got '-1'"],
    [['--threads', '-1'], "--threads must be a whole number from 1 to 1024, got '-1'"],
    [['--store', 'redis://127.0.0.1:0'], "--store: malformed URL 'redis://127.0.0.1:0': port 0 cannot be connected to (give the engine's port, from 1 to 65535, or leave it out for 6379)"],
    [['--workers'], '--workers needs a value'],
    // Number() took these: --threads 0x4 mounted with 4 threads.
    [['--threads', '0x4'], "--threads must be a whole number from 1 to 1024, got '0x4'"],
    [['--threads', '1e1'], "--threads must be a whole number from 1 to 1024, got '1e1'"],
    // An empty --log-level was taken as 'warn'.
    [['--log-level', ''], "--log-level must be one of error, warn, info, debug, got ''"],
  ] as const) {
    const r = await mount(['/nonexistent-backing', '/nonexistent-mountpoint', ...args]);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stderr, `locksmith mount: ${sentence}. Run 'locksmith mount --help'.\n`, `${args.join(' ')}: ${sentence}`);
  }
});

t.test('an empty mountpoint or backing directory (an unset variable) is a usage error that says so', async (t) => {
  for (const [args, sentence] of [
    [['', '/nonexistent-mountpoint'], 'the backing directory is empty (an unset variable?)'],
    [['/nonexistent-backing', ''], 'the mountpoint is empty (an unset variable?)'],
  ] as const) {
    const r = await mount([...args]);
    t.equal(r.status, 2, `mount ${JSON.stringify(args)}: exit 2 (was 1, "backing must be a non-empty string")`);
    t.equal(r.stderr, `locksmith mount: ${sentence}. Run 'locksmith mount --help'.\n`, sentence);
  }
  for (const cmd of ['locks', 'stats'] as const) {
    const r = await captured(() => locksMain(cmd, ['']));
    t.equal(r.status, 2, `${cmd} '': exit 2 (was 1, "no running locksmith mount at " and nothing after it)`);
    t.equal(r.stderr, `locksmith ${cmd}: the mountpoint is empty (an unset variable?); leave it out to ask every running mount. Run 'locksmith ${cmd} --help'.\n`);
  }
});

t.test('--log-level given empty is refused; an empty LOCKSMITH_LOG_LEVEL stays unset', async (t) => {
  t.throws(() => resolveLogLevel('', {}), { message: "--log-level must be one of error, warn, info, debug, got ''" });
  t.equal(resolveLogLevel(undefined, { LOCKSMITH_LOG_LEVEL: '' }), 'warn');
});
