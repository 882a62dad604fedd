/**
 * The public types refuse what the run time refuses (issue 13): tsc, strict, on two files that
 * import the package's source. fixtures/good.ts holds correct uses (both Windows hooks or neither,
 * lock() with a range, flock without one) and must compile clean; every line of fixtures/bad.ts
 * marked `// BAD: X` is a misuse (one Windows hook without the other, a 'posix' or 'ofd' lock()
 * without lockStart or lockLen, a misspelt option) and must get a diagnostic on that line naming X.
 *
 * One tsc run over the source (about 20 s on a quiet machine): a budget of its own.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

t.setTimeout(10 * 60_000);

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = path.join(root, 'test', 'types', 'fixtures');

/** tsc --noEmit --strict on the files, to its end: its exit code and its diagnostics. */
function tsc(files: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const args = [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--pretty', 'false', '--module', 'nodenext'];
    args.push('--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', ...files);
    const p = spawn(process.execPath, args, { cwd: root });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', (e) => resolve({ code: -1, out: `${out}${String(e)}` }));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** The diagnostics of one file by line (1-based), each with its continuation lines. */
function diagnostics(out: string, file: string): Map<number, string> {
  const byLine = new Map<number, string>();
  let current: number | undefined;
  for (const line of out.split('\n')) {
    const m = /^(.*)\((\d+),\d+\): error /.exec(line);
    if (m !== null) current = path.resolve(root, m[1]!) === file ? Number(m[2]) : undefined;
    else if (!/^\s/.test(line)) current = undefined;
    if (current !== undefined) byLine.set(current, `${byLine.get(current) ?? ''}${line}\n`);
  }
  return byLine;
}

t.test('correct uses compile; each misuse is a compile error naming what is wrong', async (t) => {
  const good = path.join(fixtures, 'good.ts');
  const bad = path.join(fixtures, 'bad.ts');
  const r = await tsc([good, bad]);
  t.equal(r.code, 2, 'tsc ran and reported errors (exit 2)');
  t.match(r.out, /error TS/, 'the errors are diagnostics, not a failure of tsc itself');
  const goodErrors = diagnostics(r.out, good);
  t.same([...goodErrors.values()], [], 'good.ts compiles: both hooks, neither, lock() with a range, flock without one');
  const marked = readFileSync(bad, 'utf8')
    .split('\n')
    .map((text, i) => ({ line: i + 1, text, want: /;\s*\/\/ BAD: (.*)$/.exec(text)?.[1] }))
    .filter((m) => m.want !== undefined);
  t.equal(marked.length, 7, 'bad.ts marks its seven misuses');
  const badErrors = diagnostics(r.out, bad);
  for (const m of marked) {
    const d = badErrors.get(m.line) ?? '';
    t.match(d, m.want!, `line ${m.line} is an error naming ${m.want}: ${m.text.trim()}`);
  }
  t.same(
    [...badErrors.keys()].filter((l) => !marked.some((m) => m.line === l)),
    [],
    'no error on an unmarked line of bad.ts',
  );
});
