/**
 * A mount's release answered owed (the engine paused, so its step cannot be written within
 * requestTimeoutMs), its worker killed before the engine has it: the setup and the sequence the
 * owed-release tests share (mount-store-owed-crash, mount-store-owed-kinds-review). A Python
 * process on mount `a` takes a lock, the engine pauses, the process releases (answered owed), the
 * file's worker (or every worker) is killed, the engine resumes, and node `b` checks what it can
 * take; the mount must keep no owed release at the end.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { LockCoordinator, fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { waitFor } from '../api/helpers.js';
import { forceUnmount, mountEnvironmentMissing, until } from './proc.js';

/** The caller's side's releases answered owed, not yet written. */
export const owedOf = (c: object) => (c as { owedReleases: Map<number, unknown> }).owedReleases;

export interface OwedScenario {
  /** Python lines run after `fd` is open; prints "ready" when done. */
  take: string[];
  /** Python lines run on the first stdin line (the release, answered owed; an unlock answered so gets ENOLCK, as before the change); prints "done" after. */
  release: string[];
  /** The line the process prints once the release returned (default "done"); the workers are killed then. */
  after?: string;
  /** Further files f1..fN opened as fds[1..N] (fds[0] is fd, file f) and their keys passed to check. */
  more?: number;
  /** Kill every worker at each crash, not only the file's. */
  all?: boolean;
  /** Run while the engine is still paused, after the kills (the mount is unmounted if it returns true). */
  during?: (m: FuseMount) => Promise<boolean>;
  /** The node's sessionTtlMs (default 60000: it lives throughout, and that is checked). */
  ttlMs?: number;
  /** The store's requestTimeoutMs (default 500). */
  timeoutMs?: number;
  /** Worker kills while the engine is paused. */
  crashes: number;
  /** With node b, after the engine resumed. */
  check: (t: Tap.Test, b: LockCoordinator, key: string, keys: string[], m: FuseMount | undefined) => Promise<void>;
}

/** Why the scenarios cannot run here (no FUSE, no mount environment, no redis-server), or undefined. */
export const owedWhy = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined);

export async function owedScenario(t: Tap.Test, s: OwedScenario): Promise<void> {
  if (owedWhy !== undefined) t.fail(`FUSE and redis-server are required in CI but unavailable: ${why}`);
  const base = mkdtempSync(join(tmpdir(), 'lsm-owedk-'));
  const backing = join(base, 'backing');
  const mnt = join(base, 'a');
  for (const d of [backing, mnt]) mkdirSync(d);
  writeFileSync(join(backing, 'f'), 'data');
  const names = ['f', ...Array.from({ length: s.more ?? 0 }, (_, i) => `f${i + 1}`)];
  for (const n of names) writeFileSync(join(backing, n), 'data');
  process.on('exit', () => forceUnmount(mnt));
  const server = await RedisServer.start();
  let m: FuseMount | undefined;
  let b: LockCoordinator | undefined;
  t.teardown(async () => {
    server.resume();
    await b?.stop();
    await m?.unmount();
    forceUnmount(mnt);
    await server.stop();
    rmSync(base, { recursive: true, force: true });
  });
  const store = { url: server.url, namespace: `owedk-${randomUUID().slice(0, 8)}`, sessionTtlMs: s.ttlMs ?? 60000, requestTimeoutMs: s.timeoutMs ?? 500 };
  const opener = await LockCoordinator.start({ workers: 1, store: { ...store, node: 'opener', sessionTtlMs: Math.min(1000, store.sessionTtlMs) } });
  await opener.stop();
  m = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { ...store, node: 'a' } });
  b = await LockCoordinator.start({ workers: 2, store: { ...store, node: 'b', sessionTtlMs: 60000 } });
  const key = `ino:${statSync(join(backing, 'f')).ino}`;
  const keys = names.map((n) => `ino:${statSync(join(backing, n)).ino}`);
  const py = [
    'import fcntl, os, sys',
    `FILE = ${JSON.stringify(join(mnt, 'f'))}`,
    'fd = os.open(FILE, os.O_RDWR)',
    `fds = [os.open(os.path.join(${JSON.stringify(mnt)}, n), os.O_RDWR) for n in ${JSON.stringify(names)}]`,
    'fds[0] = fd',
    ...s.take,
    'print("ready", flush=True)',
    'sys.stdin.readline()',
    'try:',
    ...s.release.map((l) => `    ${l}`),
    'except OSError as e:',
    '    print("release:", e, flush=True)',
    'print("done", flush=True)',
    'sys.stdin.readline()',
  ].join('\n');
  const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => p.kill('SIGKILL'));
  const lines: string[] = [];
  createInterface({ input: p.stdout }).on('line', (l) => lines.push(l));
  await until('the process on the mount took its lock', () => lines.includes('ready') || undefined);
  t.match(await m.coordinator.locks(key), [{ node: 'a', state: 'granted' }], "the engine holds the process's lock");
  const events: string[] = [];
  m.coordinator.onStoreSession((e) => events.push(e.kind));
  server.pause();
  try {
    p.stdin.write('\n');
    await until('the release returned while the engine was paused (answered owed)', () => lines.includes(s.after ?? 'done') || undefined);
    t.ok(await waitFor(() => owedOf(m!.coordinator).size >= 1, "the caller's side keeps the release answered owed"), 'kept owed');
    for (let i = 0; i < s.crashes; i++) {
      if (s.all === true) await Promise.all([0, 1].map((w) => m!.coordinator.crashWorker(w)));
      else await m.coordinator.crashWorker(routeOf(key, 2));
    }
    if (s.during !== undefined && (await s.during(m))) m = undefined;
  } finally {
    server.resume();
  }
  if (s.ttlMs === undefined) t.same(events, [], "the node's session lived throughout");
  else t.comment(`the node's session events: ${events.join(', ')}`);
  if (s.ttlMs !== undefined) await until("the node's session ended while the engine was paused", () => events.length > 0 || undefined, 120000);
  await until('the process went on', () => lines.includes('done') || undefined);
  t.comment(`the process said: ${lines.join(' | ')}`);
  await s.check(t, b, key, keys, m);
  if (m !== undefined) t.ok(await waitFor(() => owedOf(m!.coordinator).size === 0, "the mount's owed releases written"), 'the mount keeps no owed release');
  p.stdin.end('\n');
}

