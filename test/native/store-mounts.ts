/**
 * Two `--store` mounts of one backing directory, each its own node on one real redis-server (two
 * file servers in front of one shared storage), for the test files whose processes (python3) use
 * both: mounted before the file's tests, unmounted and removed after. Outside CI, when a mount,
 * redis-server or python3 cannot work here, the file is skipped, saying why loudly; with CI set it
 * fails instead.
 */
import t, { type Test } from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Server } from './cli-proc.js';
import { HANG_MS, forceUnmount, mountEnvironmentMissing, mounted, stopped, until } from './proc.js';

export interface StoreMounts {
  readonly backing: string;
  readonly mntA: string;
  readonly mntB: string;
  /** Runs a python3 program (never synchronously: this process serves the mounts) and gives its stdout's lines. */
  readonly python: (program: string) => Promise<string[]>;
}

const noPython = (): string | undefined => {
  try {
    execFileSync('python3', ['-c', 'import fcntl, sqlite3'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no python3 (with fcntl and sqlite3) for the processes on the mounts';
  }
};

/**
 * Whether test file `file` is skipped because of `why` (FUSE, redis-server or python3 missing):
 * outside CI, saying why loudly; with CI set it is not, and fails instead.
 */
function skipped(file: string, why: string | undefined): boolean {
  if (why !== undefined && !process.env.CI) {
    const bar = '!'.repeat(100);
    console.error(`\n${bar}\n!! SKIPPING ${file}: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
    t.plan(0, `FUSE, redis-server or python3 unavailable: ${why}`);
    return true;
  }
  if (why !== undefined) t.fail(`FUSE, redis-server and python3 are required in CI but unavailable: ${why}`);
  return false;
}

/** The mounts for test file `file` (its temporary directory named after `prefix`), or undefined when it is skipped. */
export function twoStoreMounts(file: string, prefix: string): StoreMounts | undefined {
  const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined) ?? noPython();
  if (skipped(file, why)) return undefined;

  const base = mkdtempSync(join(tmpdir(), prefix));
  const backing = join(base, 'backing');
  const mntA = join(base, 'a');
  const mntB = join(base, 'b');
  for (const d of [backing, mntA, mntB]) mkdirSync(d);
  process.on('exit', () => {
    forceUnmount(mntA);
    forceUnmount(mntB);
  });

  let server: RedisServer;
  let a: FuseMount;
  let b: FuseMount;
  t.before(async () => {
    server = await RedisServer.start();
    const namespace = `c-${randomUUID().slice(0, 8)}`;
    // A new namespace starts with a grace period of sessionTtlMs: short, so the first grant comes soon.
    a = await mountFuse({ backing, mountpoint: mntA, workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: 2000 } });
    b = await mountFuse({ backing, mountpoint: mntB, workers: 2, store: { url: server.url, namespace, node: 'b', sessionTtlMs: 2000 } });
  });
  t.teardown(async () => {
    await a?.unmount();
    await b?.unmount();
    forceUnmount(mntA);
    forceUnmount(mntB);
    await server?.stop();
    if (mounted(mntA) || mounted(mntB)) throw new Error('a mount is still there');
    rmSync(base, { recursive: true, force: true });
  });

  const python = (program: string) =>
    new Promise<string[]>((resolve, reject) => {
      const p = spawn('python3', ['-c', program], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`still waiting after ${HANG_MS / 1000} s for the python3 process to exit`));
      }, HANG_MS);
      p.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out.trim().split('\n'));
        else reject(new Error(`python3 exited with ${code}: ${err}`));
      });
    });
  return { backing, mntA, mntB, python };
}

export interface StoreMount {
  readonly backing: string;
  readonly mnt: string;
  /** The mount's redis-server (started before the file's tests): pause it to cut the node off. */
  readonly server: RedisServer;
  /** The mount (made before the file's tests): its native counters (info()). */
  readonly mount: FuseMount;
}

/**
 * One `--store` mount (node 'a', sessionTtlMs `ttl`) of a new backing directory holding `files`
 * (name: contents), over a redis-server of its own, for test file `file` (its temporary directory
 * named after `prefix`); undefined when it is skipped (outside CI only, as twoStoreMounts).
 */
export function oneStoreMount(file: string, prefix: string, ttl: number, files: Record<string, string>): StoreMount | undefined {
  const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined);
  if (why !== undefined && !process.env.CI) {
    console.error(`\n!! SKIPPING ${file}: ${why} (in CI, with CI set, this is a failure)\n`);
    t.plan(0, `FUSE or redis-server unavailable: ${why}`);
    return undefined;
  }
  if (why !== undefined) t.fail(`FUSE and redis-server are required in CI but unavailable: ${why}`);
  const base = mkdtempSync(join(tmpdir(), prefix));
  const backing = join(base, 'backing');
  const mnt = join(base, 'a');
  for (const d of [backing, mnt]) mkdirSync(d);
  for (const [name, data] of Object.entries(files)) writeFileSync(join(backing, name), data);
  process.on('exit', () => forceUnmount(mnt));
  let server: RedisServer | undefined;
  let a: FuseMount | undefined;
  t.before(async () => {
    server = await RedisServer.start();
    a = await mountFuse({ backing, mountpoint: mnt, workers: 2, store: { url: server.url, namespace: `f-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: ttl } });
  });
  t.teardown(async () => {
    server?.resume();
    await a?.unmount();
    forceUnmount(mnt);
    await server?.stop();
    rmSync(base, { recursive: true, force: true });
  });
  return {
    backing,
    mnt,
    get server(): RedisServer {
      if (server === undefined) throw new Error('the redis-server is started before the tests');
      return server;
    },
    get mount(): FuseMount {
      if (a === undefined) throw new Error('the mount is made before the tests');
      return a;
    },
  };
}

export interface FencedProcess {
  readonly p: ChildProcess;
  /** Its stdout's lines as they come: "locked", then "fenced <errno>", then what `after` prints, then "end". */
  readonly lines: string[];
}

/**
 * A python3 process for the I/O fence tests on one store mount: opens each file of `locks` (name
 * of its descriptor's variable: path) O_RDWR and locks it whole (lockf), runs `before`, prints
 * "locked"; then writes byte 0 through `probe` (one of those variables) every 5 ms until a write
 * fails, printing "fenced <errno>"; then runs `after` and prints "end", and exits once its stdin
 * ends. Killed at the end of `test`. Python lines as given, without indentation of their own.
 */
export function lockUntilFenced(
  test: { teardown(f: () => void): void },
  o: { locks: Record<string, string>; probe: string; before?: string[]; after?: string[] },
): FencedProcess {
  const py = [
    'import fcntl, os, signal, sys, time',
    ...Object.entries(o.locks).map(([v, path]) => `${v} = os.open(${JSON.stringify(path)}, os.O_RDWR)`),
    ...Object.keys(o.locks).map((v) => `fcntl.lockf(${v}, fcntl.LOCK_EX, 0, 0)`),
    ...(o.before ?? []),
    'print("locked", flush=True)',
    'while True:',
    '    try:',
    `        os.pwrite(${o.probe}, b"p", 0)`,
    '    except OSError as e:',
    '        print("fenced", e.errno, flush=True); break',
    '    time.sleep(0.005)',
    ...(o.after ?? []),
    'print("end", flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
  test.teardown(() => p.kill('SIGKILL'));
  const lines: string[] = [];
  createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
  return { p, lines };
}

/** A python3 process on a mount: its stdout's lines as they come, its stdin, its exit. */
export interface PythonProcess {
  readonly p: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
}

/**
 * A store mount's backing directory that can be made to hold a write-back: it is itself a FUSE
 * mount (`dir` on a `locksmith mount` child, the inner server) which `stopInner` stops (SIGSTOP),
 * so laundering a page dirtied through a shared mapping cannot end while an invalidation thread of
 * the store mount waits for it (mount-store-inval-pool, -inval-unmount, -fence-held-review).
 */
export interface HeldBacking {
  /** The store mount's mountpoint (the test mounts it over `backing`). */
  readonly mnt: string;
  /** `dir` on the inner mount, holding `files` once `startInner` resolved. */
  readonly backing: string;
  /** The inner server's backing directory (what reached the storage, read around the inner mount), and its mountpoint. */
  readonly innerBacking: string;
  readonly innerMnt: string;
  /** writev and fcntl on this architecture (the first field of /proc/<pid>/task/<tid>/syscall). */
  readonly sys: { writev: string; fcntl: string };
  /** The inner server serving, and `backing` made on it with `files` (name: contents). */
  startInner(files: Record<string, string>): Promise<void>;
  readonly innerPid: number;
  /** SIGSTOP to the inner server, resolved once it is stopped. */
  stopInner(): Promise<void>;
  resumeInner(): void;
  /** SIGTERM to the inner server: its exit (code 0 once it unmounted). */
  endInner(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Removes the temporary directory (everything unmounted). */
  remove(): void;
  python(program: string): PythonProcess;
  /** The first field of a thread's /proc syscall file ('running' on a CPU), or undefined once it is gone. */
  syscallOf(pid: number, tid: number): string | undefined;
  /** This process's threads named `name` (pthread_setname_np). */
  threadsNamed(name: string): number[];
  /** The invalidation thread ("locksmith-inval") in a notify (writev to /dev/fuse), if any. */
  heldInvalidation(): number | undefined;
}

/** writev and fcntl, by architecture. */
const SYSCALLS: Record<string, { writev: string; fcntl: string }> = { x64: { writev: '20', fcntl: '72' }, arm64: { writev: '66', fcntl: '25' } };

/** The directories and helpers for test file `file` (`prefix` names its temporary directory), or undefined when it is skipped (outside CI only, as twoStoreMounts). */
export function heldBacking(file: string, prefix: string): HeldBacking | undefined {
  const noMmap = (() => {
    try {
      execFileSync('python3', ['-c', 'import fcntl, mmap'], { stdio: 'ignore' });
      return undefined;
    } catch {
      return 'no python3 (with fcntl and mmap) for the processes on the mount';
    }
  })();
  const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? (noRedis || undefined) ?? noMmap ?? (SYSCALLS[process.arch] ? undefined : `no syscall numbers for ${process.arch}`);
  if (skipped(file, why)) return undefined;
  const sys = SYSCALLS[process.arch] ?? { writev: '', fcntl: '' };

  const base = mkdtempSync(join(tmpdir(), prefix));
  const innerBacking = join(base, 'inner-backing');
  const innerMnt = join(base, 'inner');
  const mnt = join(base, 'a');
  const backing = join(innerMnt, 'dir');
  for (const d of [innerBacking, innerMnt, mnt]) mkdirSync(d);
  const procs: ChildProcess[] = [];
  let inner: Server | undefined;
  process.on('exit', () => {
    for (const p of procs) p.kill('SIGKILL');
    inner?.proc.kill('SIGCONT');
    forceUnmount(mnt);
    forceUnmount(innerMnt);
  });
  const server = () => {
    if (inner === undefined) throw new Error('startInner first');
    return inner;
  };
  const syscallOf = (pid: number, tid: number) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]!.trim();
    } catch {
      return undefined;
    }
  };
  const threadsNamed = (name: string) =>
    readdirSync('/proc/self/task')
      .map(Number)
      .filter((tid) => {
        try {
          return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name;
        } catch {
          return false;
        }
      });
  return {
    mnt,
    backing,
    innerBacking,
    innerMnt,
    sys,
    async startInner(files) {
      inner = new Server([innerBacking, innerMnt, '--workers', '1']);
      await inner.serving();
      mkdirSync(backing);
      for (const [name, data] of Object.entries(files)) writeFileSync(join(backing, name), data);
    },
    get innerPid() {
      return server().proc.pid!;
    },
    async stopInner() {
      const pid = server().proc.pid!;
      server().proc.kill('SIGSTOP');
      await until('every thread of the inner server stopped', () => stopped(pid));
    },
    resumeInner() {
      inner?.proc.kill('SIGCONT');
    },
    async endInner() {
      server().proc.kill('SIGTERM');
      return server().ended();
    },
    remove() {
      rmSync(base, { recursive: true, force: true });
    },
    python(program) {
      const p = spawn('python3', ['-c', program], { stdio: ['pipe', 'pipe', 'inherit'] });
      procs.push(p);
      const lines: string[] = [];
      createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      return { p, lines, exited };
    },
    syscallOf,
    threadsNamed,
    heldInvalidation: () => threadsNamed('locksmith-inval').find((tid) => syscallOf(process.pid, tid) === sys.writev),
  };
}

/**
 * The fence's scene over a held backing store (mount-store-fence-held-review, -fence-pool-review):
 * a store mount (node 'a', lease `ttl`) over `h`'s backing, holding `held` files and `g`. Q has `g`
 * locked and mapped read-only, its page faulted in (cached and mapped) while everything answers: a
 * mapped page is read without any request (a read(2) would ask for the attributes, which wait for
 * the stopped backing store); once dropped, the fault's READ is fenced: SIGBUS. Each holder P has
 * its held file's page dirtied through a shared mapping under its lock; once `heldFence` resolves
 * the inner server is stopped and every P has sent its unlock, which waits in the invalidation's
 * write-back (the test waits for the threads it needs held).
 */
export interface HeldFence {
  readonly a: FuseMount;
  /** Q, on `g`: a line on its stdin reads its mapping again ('read ok ...'), a second one ends it. */
  readonly other: PythonProcess;
  /** One P per held file, in order: 'unlocked' once its unlock is answered. */
  readonly holders: PythonProcess[];
  /** The lease runs out (the engine paused): resolved once the fence watcher acted at the deadline. */
  deadline(): Promise<void>;
  /**
   * Q reads its mapping after the deadline: its line ('read ok ...': read from the cache), or the
   * signal its exit began with (7, SIGBUS: fenced). Killed, Q cannot end yet: its exit closes g,
   * whose FLUSH closes a backing descriptor on the stopped inner mount; the signal is read while it
   * exits (PF_EXITING in flags, field 9 of /proc stat; exit_code, field 52).
   */
  readAfterDeadline(): Promise<string | number>;
  /** The engine and backing store back: every unlock answered, Q and every P exited, the mount unmounted. */
  end(): Promise<void>;
}

/** `threads`: the mount's reader threads (default 4), which a held write-back holds each (its WRITE). */
export async function heldFence(h: HeldBacking, t: Test, held: string[], { ttl = 2000, threads }: { ttl?: number; threads?: number } = {}): Promise<HeldFence> {
  const { mnt, backing, python } = h;
  // Held files first: the lower inode numbers, the watcher's first files (its table is ordered by them).
  await h.startInner({ ...Object.fromEntries(held.map((name) => [name, 'AAAA'])), g: 'GGGG' });
  const server = await RedisServer.start();
  t.teardown(async () => {
    server.resume();
    await server.stop();
  });
  const a: FuseMount = await mountFuse({ backing, mountpoint: mnt, workers: 2, ...(threads === undefined ? {} : { threads }), store: { url: server.url, namespace: `p-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: ttl } });
  t.teardown(async () => {
    h.resumeInner();
    server.resume();
    await a.unmount();
  });
  const other = python(
    [
      'import fcntl, mmap, os, sys',
      `fd = os.open(${JSON.stringify(join(mnt, 'g'))}, os.O_RDWR)`,
      'fcntl.lockf(fd, fcntl.LOCK_EX)',
      'm = mmap.mmap(fd, 4, prot=mmap.PROT_READ)',
      'm[0:4]',
      "print('locked', flush=True)",
      'sys.stdin.readline()',
      "print('read ok', m[0:4].decode(), flush=True)",
      'sys.stdin.readline()',
    ].join('\n'),
  );
  await until("Q's line: g locked and read", () => other.lines.includes('locked'));
  const holders = held.map((name) =>
    python(
      [
        'import fcntl, mmap, os, sys',
        `fd = os.open(${JSON.stringify(join(mnt, name))}, os.O_RDWR)`,
        'm = mmap.mmap(fd, 4)',
        'fcntl.lockf(fd, fcntl.LOCK_EX)',
        "m[0:4] = b'MMMM'",
        "print('dirty', flush=True)",
        'sys.stdin.readline()',
        "fcntl.lockf(fd, fcntl.LOCK_UN); print('unlocked', flush=True)",
      ].join('\n'),
    ),
  );
  for (const p of holders) await until("a holder's line: a page dirtied under its lock", () => p.lines.includes('dirty'));
  // Each held file's clean page in the inner mount's cache dropped (an OPEN there without
  // keep_cache invalidates it): the write-back's 4-byte WRITE into it must READ the page from the
  // stopped inner server, so it is held for sure (with the page cached it could end there unheld).
  for (const name of held) closeSync(openSync(join(backing, name), 'r'));
  await h.stopInner();
  for (const p of holders) p.p.stdin!.write('go\n');
  const exitSignal = (pid: number) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      return (Number(f[9 - 3]) & 0x4) !== 0 ? Number(f[52 - 3]) & 0x7f : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    a,
    other,
    holders,
    async deadline() {
      const before = a.info().fenceDeadlines ?? 0;
      server.pause();
      await until('the fence watcher at the deadline', () => (a.info().fenceDeadlines ?? 0) > before || undefined, 3 * ttl);
    },
    async readAfterDeadline() {
      other.p.stdin!.write('read\n');
      return until("Q's read of its mapping after the deadline (a line, or its exit begun)", () => other.lines.find((l) => l.startsWith('read')) ?? exitSignal(other.p.pid!));
    },
    async end() {
      server.resume();
      h.resumeInner();
      for (const p of holders) await until("a holder's unlock answered once the backing store is back", () => p.lines.includes('unlocked') || undefined);
      other.p.stdin!.end();
      for (const p of holders) await p.exited;
      await other.exited;
      await a.unmount();
    },
  };
}
