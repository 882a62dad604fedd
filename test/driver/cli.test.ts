/** `locksmith stress` options: help, and one clear sentence with exit code 2 for bad ones. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UsageError, parse } from '../../driver/options.js';

const MAIN = fileURLToPath(new URL('../../driver/main.ts', import.meta.url));

t.test('parse', async (t) => {
  const o = parse(['--workload', 'hot', '--clients=4', '--files', '2', '--ops', '100', '--seed', '7', '--target', 'api,mount', '--compare', 'kernel']);
  t.match(o, { workload: 'hot', clients: 4, files: 2, ops: 100, seed: 7, targets: ['api', 'mount'], compareKernel: true });
  for (const bad of [['--workload', 'nope'], ['--clients', '0'], ['--clients', 'x'], ['--target', 'disk'], ['--compare', 'disk'], ['--duration', '1', '--ops', '5'], ['--frobnicate']]) {
    let caught: unknown;
    try {
      parse(bad);
    } catch (e) {
      caught = e;
    }
    t.ok(caught instanceof UsageError && !caught.message.includes('\n'), `${bad.join(' ')}: ${String(caught)}`);
  }
});

/** Runs `main(args)` in a child (it writes to stdout, which carries this test's TAP). */
function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(${JSON.stringify(args)});`;
  return spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { encoding: 'utf8' });
}

t.test('main', async (t) => {
  const help = run(['--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: locksmith stress/);
  for (const [args, sentence] of [
    [['--clients', 'many'], /^locksmith stress: --clients needs a whole number, got 'many'\.\n$/],
    [['--workload', 'nope'], /^locksmith stress: --workload must be one of .*; got 'nope'\.\n$/],
  ] as const) {
    const r = run([...args]);
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, sentence, 'one clear sentence');
  }
});
