/**
 * Review of issue 13's types: consumer code that compiled before them (81ae724) and that the run time
 * accepts must still compile under tsc --strict. fixtures/review-valid.ts marks each such use
 * `// VALID: what`; every marked line must be free of diagnostics.
 *
 * Found by review, not fixed: a union type (WindowsHooks, LockRange) cannot be extended by an
 * interface or implemented by a class (TS2312, TS2422), loses the correlation of the two hooks
 * through a conditional, a spread, Partial or Omit, and narrows a variable so that a field set
 * afterwards is refused. Whether to keep the refusals is the lead's call, hence todo.
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
const file = path.join(root, 'test', 'types', 'fixtures', 'review-valid.ts');

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

/** Each marked line's check is todo (so tsc still runs and each refusal is listed). */
const TODO = 'found by review: the union types of issue 13 refuse valid uses (interface extends, class implements, conditional/spread/Partial/Omit, a field set later)';

t.test(
  'valid consumer code of StartOptions and LockRequest still compiles',
  async (t) => {
    const r = await tsc([file]);
    t.not(r.code, -1, `tsc ran (${r.out.slice(0, 200)})`);
    const errLines = new Set<number>();
    for (const line of r.out.split('\n')) {
      const m = /^(.*)\((\d+),\d+\): error /.exec(line);
      if (m !== null && path.resolve(root, m[1]!) === file) errLines.add(Number(m[2]));
    }
    const marked = readFileSync(file, 'utf8')
      .split('\n')
      .map((text, i) => ({ line: i + 1, what: /\/\/ VALID: (.*)$/.exec(text)?.[1] }))
      .filter((m) => m.what !== undefined);
    t.equal(marked.length, 11, 'the fixture marks its eleven uses');
    for (const m of marked) t.notOk(errLines.has(m.line), `line ${m.line} compiles: ${m.what}`, { todo: TODO });
  },
);
