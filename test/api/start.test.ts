/**
 * start() in hostile process settings: a worker that cannot start makes start() reject with an
 * Error naming the cause (it once relaunched the worker forever and start() never settled), and
 * `node --input-type=module -e` (whose flag workers inherit) starts and stops normally. Each case
 * runs in a child process on the built package; the test waits for the child's exit.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../../dist/src/index.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'locksmith-start-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, out: stdout + stderr });
    });
  });
}

t.test('a worker that cannot start: start() rejects with the cause, the process exits', async (t) => {
  const noWorkers = join(dir, 'no-workers.mjs');
  writeFileSync(noWorkers, "import { isMainThread } from 'node:worker_threads';\nif (!isMainThread) throw new Error('no workers here');\n");
  const main = join(dir, 'main.mjs');
  writeFileSync(
    main,
    `import { LockCoordinator } from ${JSON.stringify(entry)};
try { await LockCoordinator.start({ workers: 2 }); console.log('started'); }
catch (e) { console.log('rejected: ' + e.message); }
`,
  );
  const r = await run(['--import', noWorkers, main]);
  t.equal(r.code, 0, 'the child exited by itself');
  t.match(r.out, /rejected: locksmith: worker \d could not start: no workers here/);
  t.notMatch(r.out, /started/);
});

t.test('node --input-type=module -e: workers start and stop', async (t) => {
  const code = `import { LockCoordinator, F_SETLK, F_WRLCK } from ${JSON.stringify(entry)};
const c = await LockCoordinator.start({ workers: 2 });
const r = await c.lock({ path: '/e', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 1 });
await c.stop();
console.log('result ' + r.result);`;
  const r = await run(['--input-type=module', '-e', code]);
  t.equal(r.code, 0);
  t.match(r.out, /^result 0$/m);
  t.notMatch(r.out, /LocksmithWorkerWarning/, 'no worker died');
});

t.test('an unknown start option is a TypeError naming it (a misspelled hookTimeoutMS would be ignored)', async (t) => {
  const { LockCoordinator } = await import('../../src/index.js');
  await t.rejects(LockCoordinator.start({ workers: 1, hookTimeoutMS: 10 } as never), { name: 'TypeError', message: /unknown field 'hookTimeoutMS' in options/ });
});
