/**
 * `locksmith stress` options: help, --version, one clear sentence with exit code 2 for bad ones,
 * and an --out folder that cannot be written refused before the run starts.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../driver/main.js';
import { UsageError, parse, usage } from '../../driver/options.js';
import { OutDirError, prepareOutDir } from '../../driver/report.js';
import { Stage } from '../../driver/stage.js';

t.test('parse', async (t) => {
  const o = parse(['--workload', 'hot', '--clients=4', '--files', '2', '--ops', '100', '--seed', '7', '--target', 'api,mount', '--compare', 'kernel']);
  t.match(o, { workload: 'hot', clients: 4, files: 2, ops: 100, seed: 7, targets: ['api', 'mount'], compareKernel: true });
  t.match(parse(['--version']), { version: true, help: false });
  t.match(parse(['-h']), { help: true, out: 'stress-report', clients: 16 });
  t.equal(parse(['--out=x/y']).out, 'x/y');
  for (const [bad, sentence] of [
    [['--frobnicate'], "unknown option '--frobnicate'; run 'locksmith stress --help'."],
    [['--clients'], '--clients needs a value.'],
    [['--clients', '--seed', '5'], '--clients needs a value.'],
    [['--help=yes'], '--help takes no value.'],
    [['fast'], "unexpected argument 'fast' (stress takes options only); run 'locksmith stress --help'."],
    [['--out', ''], '--out needs a folder.'],
  ] as const) {
    let caught: unknown;
    try {
      parse(bad);
    } catch (e) {
      caught = e;
    }
    t.ok(caught instanceof UsageError, bad.join(' '));
    t.equal((caught as Error | undefined)?.message, sentence);
  }
  for (const bad of [['--workload', 'nope'], ['--clients', '0'], ['--clients', 'x'], ['--target', 'disk'], ['--compare', 'disk'], ['--duration', '1', '--ops', '5'], ['--frobnicate'], ['-x']]) {
    let caught: unknown;
    try {
      parse(bad);
    } catch (e) {
      caught = e;
    }
    t.ok(caught instanceof UsageError && !caught.message.includes('\n'), `${bad.join(' ')}: ${String(caught)}`);
  }
});

t.test('--fault-kinds: only these faults, in this order; one sentence for a bad one', async (t) => {
  t.same(parse(['--nodes', '2', '--fault-kinds', 'snapshot,kill,snapshot']).faultKinds, ['snapshot', 'kill'], 'in the order given, once each');
  t.equal(parse(['--nodes', '2']).faultKinds, undefined, 'all of them by default');
  for (const [args, sentence] of [
    [['--fault-kinds', 'kill'], '--fault-kinds applies to the nodes target (--nodes N).'],
    [['--nodes', '2', '--fault-kinds', 'kill,reboot'], "--fault-kinds must be kill, stop, engine, snapshot (or a comma-separated list); got 'reboot'."],
    [['--nodes', '2', '--fault-kinds', ','], "--fault-kinds must be kill, stop, engine, snapshot (or a comma-separated list); got ','."],
    [['--nodes', '2', '--no-faults', '--fault-kinds', 'kill'], 'give either --fault-kinds or --no-faults, not both.'],
  ] as const) {
    t.throws(() => parse([...args]), new UsageError(sentence), args.join(' '));
  }
  t.match(usage().replace(/\s+/g, ' '), '--fault-kinds K[,K...] only these faults, in this order, round after round');
});

t.test('the budget: what --duration counts, what --nodes adds, what faults need, as the help says', async (t) => {
  t.same(parse(['--target', 'api', '--nodes', '2']).targets, ['api', 'nodes'], '--nodes adds the nodes target to those of --target');
  const help = usage().replace(/\s+/g, ' ');
  t.match(help, "added to those of --target ('--target api --nodes 2' runs api, then nodes)");
  t.match(help, '--duration S seconds of load per target, start-up not counted');
  t.match(help, 'The first round of the four always completes, so the nodes target\'s load lasts at least about 14 s');

  // A stage's duration runs from begin(): what a target does before (nodes, mounts, workers
  // starting) is no part of it. The pause stands in for a slow start-up.
  const stage = new Stage({ target: 'api', workload: 'all', seed: 1, clients: 2, files: 1, workers: 1, durationSec: 60 }, ['posix']);
  t.equal(stage.remainingMs, Infinity, 'no budget running before begin()');
  await new Promise((r) => setTimeout(r, 300));
  stage.begin();
  t.ok(stage.remainingMs > 59_000 && stage.remainingMs <= 60_000, `the whole budget is left at begin(): ${stage.remainingMs} ms`);
  stage.loadEnded();
  const d = stage.result(stage.close(), 2).durationSec;
  t.ok(d < 0.25, `the load lasted ${d} s: the start-up is not counted`);
});

/** Runs `main(args)` in this process, its output captured (stdout carries this test's TAP). */
async function call(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { out: { write: (s: string) => (stdout += s) }, err: { write: (s: string) => (stderr += s), isTTY: false } });
  return { status, stdout, stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'locksmith-stress-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('main', async (t) => {
  const help = await call(['--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: locksmith stress/);
  t.match(help.stdout, /--version/);
  for (const [args, sentence] of [
    [['--clients', 'many'], /^locksmith stress: --clients needs a whole number, got 'many'\.\n$/],
    [['--workload', 'nope'], /^locksmith stress: --workload must be one of .*; got 'nope'\.\n$/],
    [['--frobnicate'], /^locksmith stress: unknown option '--frobnicate'; run 'locksmith stress --help'\.\n$/],
  ] as const) {
    const r = await call([...args]);
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, sentence, 'one clear sentence');
    t.equal(r.stdout, '');
  }
});

t.test('--version prints the package version', async (t) => {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
  const r = await call(['--version']);
  t.equal(r.status, 0);
  t.equal(r.stdout, `locksmith ${pkg.version}\n`);
});

t.test('prepareOutDir', async (t) => {
  const nested = join(tmp, 'a', 'b', 'c');
  t.equal(await prepareOutDir(nested), nested, 'creates missing parents');
  t.ok(existsSync(nested));
  t.same(readdirSync(nested), [], 'and leaves nothing behind from its check');
  t.equal(await prepareOutDir(nested), nested, 'an existing folder is fine');
  const file = join(tmp, 'a-file');
  writeFileSync(file, '');
  for (const [dir, error] of [
    [file, /^cannot write reports to '.*a-file': .* is not a folder\.$/],
    [join(file, 'sub'), /^cannot write reports to '.*a-file\/sub': ENOTDIR/],
    ['/proc/nope', /^cannot write reports to '\/proc\/nope': ENOENT.*mkdir '\/proc\/nope'\.$/],
    ['/proc/nope/deeper', /^cannot write reports to '\/proc\/nope\/deeper': ENOENT/],
    ['/proc', /^cannot write reports to '\/proc': /],
  ] as const) {
    const e = await prepareOutDir(dir).then(() => undefined, (e: unknown) => e);
    t.ok(e instanceof OutDirError, `${dir}: refused`);
    t.match((e as Error | undefined)?.message, error, `${dir}: ${(e as Error | undefined)?.message}`);
  }
});

t.test('--out that cannot be written: one sentence naming it, exit 2, before any load', async (t) => {
  const under = (dir: string) => new RegExp(`^locksmith stress: cannot write reports to '${dir.replace(/[/.]/g, '\\$&')}': [^\n]*\n$`);
  // Node 20's recursive mkdir never returns for a missing path under /proc: a hang fails this
  // file by tap's timeout.
  for (const dir of [join(tmp, 'a-file', 'sub'), '/proc/nope']) {
    const r = await call(['--target', 'api', '--duration', '600', '--out', dir]);
    t.equal(r.status, 2, dir);
    t.match(r.stderr, under(dir), 'one line naming the folder');
    t.equal(r.stdout, '', 'the run never started');
  }
});

t.test('a short run writes its reports into a new folder and prints the summary', async (t) => {
  const out = join(tmp, 'new', 'reports');
  const r = await call(['--target', 'api', '--ops', '300', '--clients', '4', '--seed', '3', '--out', out]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /api \/ all .* no violation/);
  t.match(r.stdout, /latency: .*p50 [\d.,]+ (ns|µs|ms|s) p99 [\d.,]+ (ns|µs|ms|s)/, 'percentiles with their unit');
  t.match(r.stdout, `reports: ${join(out, 'report.json')}, ${join(out, 'report.html')}\n`);
  t.ok(existsSync(join(out, 'report.html')));
});
