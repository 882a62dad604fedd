/**
 * The built `locksmith` command (dist/, made by `npm test`'s pretest) without a mount: --version
 * everywhere, help texts, usage errors (one sentence, exit 2), and `locks` / `stats` when no mount
 * is running. test/native/control.test.ts and dead-mount.test.ts run them against real mounts.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The whole file runs about twenty `locksmith` processes, each a fresh Node; on a loaded machine
// that is minutes, beyond .taprc's 120 s for a file. Every wait inside names what it waits for.
t.setTimeout(10 * 60_000);

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'src', 'cli.js');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const runtime = mkdtempSync(join(tmpdir(), 'locksmith-cli-run-'));
t.teardown(() => rmSync(runtime, { recursive: true, force: true }));
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60000, env: { ...process.env, LOCKSMITH_RUNTIME_DIR: runtime, ...env } });

t.test('--version: top level and every subcommand, from package.json', async (t) => {
  for (const args of [['--version'], ['-V'], ['mount', '--version'], ['locks', '--version'], ['stats', '--version']]) {
    const r = run(args);
    t.equal(r.status, 0, `${args.join(' ')}: exit 0`);
    t.equal(r.stdout, `locksmith ${version}\n`, `${args.join(' ')}: the package's version`);
  }
});

t.test('help texts name the new commands and options', async (t) => {
  const top = run(['--help']);
  t.equal(top.status, 0);
  t.match(top.stdout, /locks \[<mountpoint>\] \[--json\]/);
  t.match(top.stdout, /stats \[<mountpoint>\] \[--json\]/);
  t.match(top.stdout, /--version/);
  const mount = run(['mount', '--help']);
  t.match(mount.stdout, /--clean-stale/, 'mount --help offers --clean-stale');
  t.match(mount.stdout, /fusermount3 -u -z <mountpoint>/, 'and names the command for a dead mount');
  t.match(mount.stdout, /--log-level LEVEL/);
  t.match(mount.stdout, /LOCKSMITH_LOG_LEVEL/);
  t.match(run(['locks', '--help']).stdout, /PID +the process/);
  t.match(run(['stats', '--help']).stdout, /usage: locksmith stats \[MOUNTPOINT\] \[--json\]/);
});

t.test('usage errors: one sentence, exit 2', async (t) => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['mount', '/tmp', '/mnt', '--log-level', 'loud'], {}, /^locksmith mount: --log-level must be one of error, warn, info, debug, got 'loud'\. /],
    [['mount', '/tmp', '/mnt'], { LOCKSMITH_LOG_LEVEL: 'chatty' }, /^locksmith mount: LOCKSMITH_LOG_LEVEL must be one of error, warn, info, debug, got 'chatty'\. /],
    [['locks', 'a', 'b'], {}, /^locksmith locks: locks takes at most one mountpoint\. /],
    [['stats', '--noheadings'], {}, /^locksmith stats: .*noheadings/],
    [['frobnicate'], {}, /^locksmith: unknown command 'frobnicate'/],
  ];
  for (const [args, env, re] of cases) {
    const r = run(args, env);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, re);
    t.match(r.stderr, /^[^\n]+\n$/, 'one line');
  }
});

// Node's parseArgs says "Unknown option '--node'. To specify a positional argument starting with a
// '-', place it at the end of the command after '--', as in '-- "--node"" (its quote unbalanced):
// mount, locks and stats now say it in a sentence of their own, as stress does.
t.test("unknown options and missing or extra option values: a sentence of locksmith's own, exit 2", async (t) => {
  const cases: [string[], string][] = [
    [['mount', '--bogus', '/tmp', '/mnt'], "locksmith mount: unknown option '--bogus'. Run 'locksmith mount --help'.\n"],
    [['mount', '-x', '/tmp', '/mnt'], "locksmith mount: unknown option '-x'. Run 'locksmith mount --help'.\n"],
    [['mount', '/tmp', '/mnt', '--workers'], "locksmith mount: --workers needs a value. Run 'locksmith mount --help'.\n"],
    [['mount', '/tmp', '/mnt', '--clean-stale=yes'], "locksmith mount: --clean-stale takes no value. Run 'locksmith mount --help'.\n"],
    [['locks', '--node', 'b'], "locksmith locks: unknown option '--node'. Run 'locksmith locks --help'.\n"],
    [['locks', '--json=1'], "locksmith locks: --json takes no value. Run 'locksmith locks --help'.\n"],
    [['stats', '--bogus'], "locksmith stats: unknown option '--bogus'. Run 'locksmith stats --help'.\n"],
  ];
  for (const [args, said] of cases) {
    const r = run(args);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stderr, said, `${args.join(' ')}: one sentence`);
  }
});

t.test('locks and stats with no running mount', async (t) => {
  const one = run(['locks', join(runtime, 'nowhere')]);
  t.equal(one.status, 1, 'a mountpoint nobody serves: exit 1');
  t.match(one.stderr, /^locksmith locks: no running locksmith mount at .*nowhere \(no control socket [0-9a-f]{24}\.sock in .*\)\n$/);
  const all = run(['locks']);
  t.equal(all.status, 0, 'listing every mount when there is none is not an error');
  t.equal(all.stdout, '  PID KIND TYPE START END STATE MOUNT PATH\n'.replace(/^ +/, ''), 'only the heading');
  t.match(all.stderr, /no running locksmith mount found/);
  const json = run(['stats', '--json']);
  t.equal(json.status, 0);
  t.same(JSON.parse(json.stdout), { mounts: [] });
});
