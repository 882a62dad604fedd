/**
 * A real redis-server per test file: its own free loopback port and temporary directory, no
 * persistence (--save '' --appendonly no), started and restarted by waiting for its "Ready to
 * accept connections" line (an event, never a sleep), killed in teardown. Several run at once:
 * a port is found by binding port 0, and a start that loses the port to someone else retries.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';

/** The longest a redis-server may take to say it is ready (it takes milliseconds; a loaded machine is slow). */
export const START_BUDGET_MS = 60_000;
/** How long a test waits for an event that must come (a hang fails here, saying what it waited for). */
export const EVENT_BUDGET_MS = 60_000;

function redisInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Why this machine cannot run the tests that need a real engine, or false. In CI a missing
 * redis-server fails the file at once (.ci/run installs it); elsewhere each such test is skipped
 * (`t.test(name, { skip: noRedis }, ...)`), and the reason is printed where nobody can miss it.
 */
export const noRedis: string | false = (() => {
  if (redisInstalled()) return false;
  const why = 'redis-server is not installed (apt-get install redis-server): the store tests need a real engine';
  if (process.env.CI) throw new Error(why);
  process.stderr.write(`\n*** SKIPPING: ${why} ***\n\n`);
  return why;
})();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** `p`, or an Error naming `what` after `ms` (the timer never holds the process open). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

type Outcome = { ok: true } | { ok: false; inUse: boolean; why: string };

export class RedisServer {
  private proc: ChildProcess | undefined;
  private admin: Redis | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'locksmith-redis-'));

  private constructor(public port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** A server on a free port (retrying with another port when one is taken meanwhile). */
  static async start(): Promise<RedisServer> {
    let last = '';
    for (let i = 0; i < 10; i++) {
      const s = new RedisServer(await freePort());
      const r = await s.launch();
      if (r.ok) return s;
      s.cleanup();
      last = r.why;
      if (!r.inUse) break;
    }
    throw new Error(`redis-server did not start: ${last}`);
  }

  private launch(): Promise<Outcome> {
    const p = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '', '--loglevel', 'notice'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = p;
    live.add(p);
    const lines: string[] = [];
    return within(
      new Promise<Outcome>((resolve) => {
        const onLine = (l: string) => {
          lines.push(l);
          if (l.includes('Ready to accept connections')) resolve({ ok: true });
        };
        createInterface({ input: p.stdout! }).on('line', onLine);
        createInterface({ input: p.stderr! }).on('line', onLine);
        p.once('exit', (code, signal) => {
          live.delete(p);
          const why = `exit ${code ?? signal}: ${lines.slice(-5).join(' | ')}`;
          resolve({ ok: false, inUse: /in use|bind/i.test(why), why });
        });
      }),
      START_BUDGET_MS,
      `redis-server on port ${this.port} to accept connections`,
    );
  }

  /** A plain client for test commands (DEL, CLIENT KILL, INFO). */
  async client(): Promise<Redis> {
    if (this.admin === undefined || this.admin.status === 'end') {
      this.admin = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: null, disableClientInfo: true, retryStrategy: () => 50 });
      this.admin.on('error', () => {});
      await this.admin.connect();
    }
    return this.admin;
  }

  private async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await within(gone, EVENT_BUDGET_MS, 'redis-server to exit after SIGKILL');
  }

  /** kill -9, and the same port again with nothing kept: the engine lost its data. */
  async restart(): Promise<void> {
    this.admin?.disconnect();
    this.admin = undefined;
    await this.kill();
    let last = '';
    for (let i = 0; i < 20; i++) {
      const r = await this.launch();
      if (r.ok) return;
      last = r.why;
      if (!r.inUse) break;
    }
    throw new Error(`redis-server did not restart on port ${this.port}: ${last}`);
  }

  /** SIGSTOP / SIGCONT: an engine that accepts connections and never answers. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  private cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    this.admin?.disconnect();
    this.admin = undefined;
    await this.kill();
    this.cleanup();
  }
}
