/**
 * A reply of locks() or stats() belongs to its caller alone: once the caller drops it, the
 * collector can take it. (Each call once raced its reply against a promise that lived as long as
 * the worker, which kept every reply: 300 listings of 1,000 locks grew the heap by ~79 MB.)
 *
 * The check runs in a plain child process on the built package: tap's own async tracking keeps
 * promise results alive in the test process, which would hide the difference. Memory is measured
 * after forced collections, never time.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../../dist/src/index.js', import.meta.url));

const script = `
import { LockCoordinator, F_SETLK, F_RDLCK } from ${JSON.stringify(entry)};
const gc = globalThis.gc;
const settle = async () => { for (let i = 0; i < 3; i++) { await new Promise((r) => setImmediate(r)); gc(); } };
const c = await LockCoordinator.start({ workers: 2 });
for (let i = 0; i < 1000; i++) await c.lock({ path: '/f' + (i % 4), lockType: F_RDLCK, lockStart: i * 2, lockLen: 1, cmd: F_SETLK, lockOwner: 1 });
const refs = [];
for (let i = 0; i < 10; i++) {
  refs.push(new WeakRef(await c.locks()), new WeakRef(await c.locks('/f1')), new WeakRef(await c.stats()));
}
await settle();
const kept = refs.filter((r) => r.deref() !== undefined).length;
const growth = {};
for (const [name, call] of [['locks', () => c.locks()], ['locksPath', () => c.locks('/f1')], ['stats', () => c.stats()]]) {
  await settle();
  const h0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < 300; i++) await call();
  await settle();
  growth[name] = (process.memoryUsage().heapUsed - h0) / 1e6;
}
await c.stop();
console.log(JSON.stringify({ kept, growth }));
`;

t.test('replies of locks(), locks(path) and stats() are collected once dropped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'locksmith-replies-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'replies.mjs');
  writeFileSync(file, script);
  const out = execFileSync(process.execPath, ['--expose-gc', file], { encoding: 'utf8' });
  const { kept, growth } = JSON.parse(out.trim().split('\n').pop()!) as { kept: number; growth: Record<string, number> };
  t.equal(kept, 0, 'no reply of 30 is still reachable after the caller dropped it');
  for (const [name, mb] of Object.entries(growth)) {
    // A kept listing of 1,000 locks is ~0.25 MB: 300 of them would be ~75 MB.
    t.ok(mb < 8, `300 calls of ${name} grew the heap by ${mb.toFixed(1)} MB (bound 8 MB)`);
  }
});
