/**
 * A worker that polls after answering reads /dev/fuse itself (src/native/pump.cc pollForEvents,
 * fuse_session.cc readWhilePolling): while one process keeps locking and unlocking on the mount,
 * most requests are read by a worker, not by a libfuse reader thread. What that path must keep:
 * other processes' file I/O is served (the worker hands non-lock requests to the reader threads),
 * a blocked F_SETLKW still ends with EINTR on a signal (the worker may read the FUSE_INTERRUPT),
 * and unmount still answers everyone. Each test waits until the session counts requests read that
 * way, so it exercises the path whatever the machine's speed.
 */
import t from 'tap';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { buildLockClient, Client, forceUnmount, HANG_MS, mountEnvironmentMissing, mounted, until } from './proc.js';

const EINTR = 4;
const run = promisify(execFile);
/** bench/fuse/loader.c, found from this module whether it runs as TypeScript or from dist/. */
const LOADER_SOURCE = ((): string => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'bench', 'fuse', 'loader.c');
    if (existsSync(candidate) || dirname(dir) === dir) return candidate;
  }
})();

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/poll-read.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE is required in CI but unavailable: ${why}`);

  const base = mkdtempSync(join(tmpdir(), 'locksmith-poll-'));
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const bin = buildLockClient(join(base, 'lockclient'));
  const loader = join(base, 'loader');
  execFileSync('cc', ['-O2', '-Wall', '-o', loader, LOADER_SOURCE]);
  writeFileSync(join(backing, 'busy'), '');
  process.on('exit', () => forceUnmount(mnt));

  let m: FuseMount;
  const clients: Client[] = [];
  const client = (name: string, cmds: string[]) => {
    const c = new Client(bin, join(mnt, name), cmds);
    clients.push(c);
    return c;
  };
  const kids = new Set<ChildProcess>();

  /** The session's count of requests a polling worker read itself (and of those it handed to the readers). */
  const polled = () => m.info().polledReads ?? 0;
  const handed = () => m.info().handedToReaders ?? 0;

  /**
   * One process locking and unlocking a byte of `busy` in a loop, round after round (each round
   * 20,000 pairs, every call checked), until stop() (which kills the round running) or finish()
   * (which lets it end and ignores its result). It keeps a worker polling.
   */
  function busy(): { stop(): Promise<void>; finish(): Promise<void> } {
    let stopped = false;
    let current: ChildProcess | undefined;
    const run = async (): Promise<void> => {
      while (!stopped) {
        const p = spawn(loader, [join(mnt, 'busy'), String(HANG_MS), '20000'], { stdio: ['pipe', 'pipe', 'inherit'] });
        current = p;
        kids.add(p);
        const lines = createInterface({ input: p.stdout! });
        const exited = new Promise((r) => p.once('exit', r));
        const out: string[] = [];
        lines.on('line', (l) => {
          out.push(l);
          if (l === 'open') p.stdin!.write('go\n');
        });
        await exited;
        kids.delete(p);
        if (stopped) return;
        const result = out.find((l) => l.startsWith('ops '));
        if (result === undefined || !/ errors 0$/.test(result)) throw new Error(`the busy process failed: ${out.join(' | ')}`);
      }
    };
    const done = run();
    return {
      stop: async () => {
        stopped = true;
        current?.kill('SIGKILL');
        await done;
      },
      finish: async () => {
        stopped = true;
        await done;
      },
    };
  }

  t.before(async () => {
    m = await mountFuse({ backing, mountpoint: mnt, workers: 2 });
  });

  t.teardown(async () => {
    for (const c of clients) if (c.running) c.proc.kill('SIGKILL');
    for (const k of kids) k.kill('SIGKILL');
    await m?.unmount();
    forceUnmount(mnt);
    await Promise.all(clients.map((c) => c.ended().catch((e: Error) => console.error(e.message))));
    if (mounted(mnt)) throw new Error(`${mnt} is still mounted`);
    rmSync(base, { recursive: true, force: true });
  });

  t.test('file I/O of other processes is served while a worker reads the device', async (t) => {
    const b = busy();
    await until('a worker reading requests itself', () => polled() > 0);
    // Each round: 200 appends (open, write, flush, release through the mount) and a read back.
    const script = 'i=0; while [ $i -lt 200 ]; do echo $i >> io; i=$((i+1)); done; wc -l < io; rm io';
    let rounds = 0;
    const before = handed();
    while (handed() === before) {
      const { stdout } = await run('sh', ['-c', script], { cwd: mnt, encoding: 'utf8', timeout: HANG_MS });
      t.equal(stdout.trim(), '200', `round ${++rounds}: every line written through the mount reads back`);
    }
    t.ok(handed() > before, 'some of those requests were read by a polling worker and run by a reader thread');
    await b.stop();
  });

  t.test('a signal ends a blocked F_SETLKW with EINTR while a worker reads the device', async (t) => {
    const b = busy();
    const a = client('signal', ['open', 'lock', 'w', '0', '0', 'wait']);
    t.same(await a.take(2), ['open ok', 'lock ok']);
    const w = client('signal', ['trapint', 'open', 'lockw', 'w', '0', '1', 'wait']);
    t.same(await w.take(2), ['trapint ok', 'open ok']);
    await until("the waiter's F_SETLKW queued", async () => (await m.coordinator.locks()).some((l) => l.state === 'waiting' && l.pid === w.pid) || undefined);
    const from = polled();
    await until('a worker reading requests itself', () => polled() > from);
    w.proc.kill('SIGINT');
    t.equal(await w.next(), `lockw err ${EINTR}`, 'SIGINT interrupts F_SETLKW');
    await until('no waiter left', async () => !(await m.coordinator.locks()).some((l) => l.state === 'waiting') || undefined);
    a.go();
    w.go();
    await Promise.all([a.ended(), w.ended()]);
    await b.stop();
  });

  t.test('unmount answers the waiter and the busy process while a worker reads the device', async (t) => {
    const b = busy();
    const a = client('unmount', ['open', 'lock', 'w', '0', '0', 'wait']);
    t.same(await a.take(2), ['open ok', 'lock ok']);
    const w = client('unmount', ['open', 'lockw', 'w', '0', '1']);
    t.equal(await w.next(), 'open ok');
    await until("the waiter's F_SETLKW queued", async () => (await m.coordinator.locks()).some((l) => l.state === 'waiting' && l.pid === w.pid) || undefined);
    const from = polled();
    await until('a worker reading requests itself', () => polled() > from);
    const busyEnded = b.finish(); // the round running goes on through the unmount; its calls then fail
    await m.unmount();
    t.match(await w.next(), /^lockw err \d+$/, 'the waiter returned with an error');
    t.same(await w.ended(), { code: 0, signal: null }, 'and exited');
    t.notOk(mounted(mnt), 'nothing is mounted');
    await busyEnded;
    a.go();
    await a.ended();
  });
}
