/**
 * A native method that throws while its thread's environment is being torn down (here: a worker
 * terminated while it calls sessionInfo on a session that does not exist, which throws) must not
 * end the process. node-addon-api turns a thrown Napi::Error into a JavaScript exception; when the
 * environment is going away that cannot be done, and unless NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
 * is defined (binding.gyp) it throws again out of its callback wrapper: std::terminate, "terminate
 * called after throwing an instance of 'Napi::Error'" (once seen at the exit of a failing native
 * test run). A child process terminates such workers WORKERS times and must exit cleanly.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nativeAvailable } from '../../src/native/index.js';

const WORKERS = 40;
const native = nativeAvailable();
if (!native.ok) {
  console.error(`\n!! SKIPPING test/native/napi-teardown.test.ts: ${native.reason}\n`);
  t.plan(0, `the native addon is unavailable: ${native.reason}`);
} else {
  t.test('terminating workers inside a throwing native call does not abort the process', async (t) => {
    const index = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src', 'native', 'index.js')).href;
    // The worker says "ready" and from then on calls the addon in a loop (nearly all its time is
    // in the native call), so a terminate right after "ready" lands inside one, or close to it.
    const worker = [
      `const { sessionInfo } = await import(${JSON.stringify(index)});`,
      "const { parentPort } = await import('node:worker_threads');",
      "parentPort.postMessage('ready');",
      'for (;;) { try { sessionInfo(2147483647); } catch {} }',
    ].join('\n');
    const main = [
      "import { Worker } from 'node:worker_threads';",
      `const code = ${JSON.stringify(worker)};`,
      `for (let i = 0; i < ${WORKERS}; i++) {`,
      "  const w = new Worker(new URL('data:text/javascript,' + encodeURIComponent(code)));",
      "  await new Promise((r) => w.once('message', r));",
      '  await w.terminate();',
      '}',
      "console.log('survived');",
    ].join('\n');
    const p = spawn(process.execPath, ['--input-type=module', '-e', main], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => p.on('exit', (c, s) => r([c, s])));
    t.notMatch(err, /terminate called/, 'no std::terminate');
    t.same({ code, signal }, { code: 0, signal: null }, `the process exited cleanly (stderr: ${err.trim().slice(0, 300)})`);
    t.match(out, /survived/, `all ${WORKERS} workers terminated`);
  });
}
