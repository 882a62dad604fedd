/**
 * Store benchmark: the round trip of one commit (the COMMIT script: session, version, apply,
 * log) against the floor, a bare EVALSHA of an empty script on the same connection, measured in
 * the same run, interleaved one for one so that machine noise hits both alike.
 *
 *   npm run bench:store        (build, then node dist/bench/store.js; needs redis-server)
 *
 * One node, one file, uncontended: commits alternate "lock" (put a held record) and "unlock"
 * (remove it), each decided on the version the previous one returned. Prints p50 and p99 of each
 * series and the ratios; --n=N sets the number of samples per series (default 20,000).
 */
import { performance } from 'node:perf_hooks';
import { RedisServer } from '../driver/redis-server.js';
import { NodeStore } from '../src/store/node-store.js';
import { RedisEngine } from '../src/store/redis.js';
import { option } from './report.js';

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const n = Number(option('n') ?? 20_000);
const server = await RedisServer.start().catch((e: Error) => {
  console.error(`bench:store: ${e.message}`);
  process.exit(2);
});
try {
  const o = { url: server.url, shownUrl: server.url, namespace: 'bench', requestTimeoutMs: 5_000 };
  const engine = await RedisEngine.connect(o);
  const store = await NodeStore.start(engine, { node: 'bench', sessionTtlMs: 60_000, renewEveryMs: 15_000, fenceAfterMs: 45_000, graceMs: 0 }, {}, 'redis', true);
  let version = 0;
  let held = false;
  const commit = async (): Promise<void> => {
    const r = await store.commit(held ? { file: '/bench', base: version, remove: ['l1'] } : { file: '/bench', base: version, put: [{ id: 'l1', state: 'held', data: 'posix W [0,100) owner 7 pid 4242' }] });
    if (!r.ok) throw new Error(`bench commit refused: ${JSON.stringify(r)}`);
    version = r.version;
    held = !held;
  };
  for (let i = 0; i < 2_000; i++) {
    await commit();
    await engine.empty();
  }
  const commits: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    await commit();
    commits.push(performance.now() - t0);
    t0 = performance.now();
    await engine.empty();
    floor.push(performance.now() - t0);
  }
  const pairs: number[] = [];
  for (let i = 0; i + 1 < commits.length; i += 2) pairs.push(commits[i]! + commits[i + 1]!);
  const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
  const row = (name: string, xs: number[]) => console.log(`${name.padEnd(44)} p50 ${us(pct(xs, 0.5)).padStart(10)}   p99 ${us(pct(xs, 0.99)).padStart(10)}`);
  console.log(`redis-server on loopback, ${n} samples each, interleaved; node ${process.version}`);
  row('bare EVALSHA (return 1), same connection', floor);
  row('one commit (lock or unlock)', commits);
  row('lock + unlock (two commits)', pairs);
  console.log(`commit / bare script: p50 ${(pct(commits, 0.5) / pct(floor, 0.5)).toFixed(2)}x, p99 ${(pct(commits, 0.99) / pct(floor, 0.99)).toFixed(2)}x`);
  await store.close();
} finally {
  await server.stop();
}
