/**
 * The engine of the nodes target: a redis-server of its own, on a free loopback port, in a
 * temporary directory, with no persistence (--save '' --appendonly no). Started, and restarted on
 * the same port, by waiting for its "Ready to accept connections" line (an event, not a sleep);
 * killed at the end (and when this process exits).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The longest a redis-server may take to say it is ready (milliseconds when quiet; a loaded machine is slow). */
const START_BUDGET_MS = 60_000;

/** The server's version line ('Redis server v=7.0.15 ...'), or undefined when redis-server is not installed. */
export function redisVersion(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0 || typeof r.stdout !== 'string') return undefined;
  return /v=\S+/.exec(r.stdout)?.[0]?.replace('v=', 'redis-server ') ?? r.stdout.trim();
}

/** Why the nodes target cannot run here (one clause), or undefined. */
export function redisUnavailable(): string | undefined {
  return redisVersion() === undefined ? 'redis-server is not installed (install it with: apt-get install redis-server)' : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no free port'))));
    });
  });
}

/** Whether the server answers, and its slowest recent commands (a hang's diagnosis). */
export async function redisDiag(server: RedisServer): Promise<string> {
  const { Redis } = await import('ioredis');
  const c = new Redis(server.url, { lazyConnect: true, connectTimeout: 2000, commandTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await c.connect();
    const t0 = performance.now();
    await c.ping();
    const pingMs = performance.now() - t0;
    const slow = (await c.slowlog('GET', 3)) as [number, number, number, string[]][];
    const keys = await c.dbsize();
    return `PING ${pingMs.toFixed(1)} ms, ${keys} keys, slowest recent commands: ${slow.map((x) => `${x[2]} µs ${x[3].slice(0, 2).join(' ')}`).join('; ') || 'none'}`;
  } catch (e) {
    return `no answer: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    c.disconnect();
  }
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

type Outcome = { ok: true } | { ok: false; inUse: boolean; why: string };

export class RedisServer {
  private proc: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'locksmith-stress-redis-'));

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** A server on a free port (another port when one is taken between the check and the start). */
  static async start(): Promise<RedisServer> {
    let last = '';
    for (let i = 0; i < 10; i++) {
      const s = new RedisServer(await freePort());
      const r = await s.launch();
      if (r.ok) return s;
      s.removeDir();
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
    let timer: NodeJS.Timeout | undefined;
    return new Promise<Outcome>((resolve) => {
      const onLine = (l: string) => {
        if (lines.length < 50) lines.push(l);
        if (l.includes('Ready to accept connections')) resolve({ ok: true });
      };
      createInterface({ input: p.stdout! }).on('line', onLine);
      createInterface({ input: p.stderr! }).on('line', onLine);
      p.once('exit', (code, signal) => {
        live.delete(p);
        const why = `exit ${code ?? signal}: ${lines.slice(-5).join(' | ')}`;
        resolve({ ok: false, inUse: /in use|bind/i.test(why), why });
      });
      timer = setTimeout(() => {
        p.kill('SIGKILL');
        resolve({ ok: false, inUse: false, why: `not ready after ${START_BUDGET_MS / 1000} s: ${lines.slice(-5).join(' | ')}` });
      }, START_BUDGET_MS);
    }).finally(() => clearTimeout(timer));
  }

  private async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
  }

  /** kill -9, then the same port again with nothing kept: the engine lost its data. */
  async restart(): Promise<void> {
    await this.kill();
    let last = '';
    for (let i = 0; i < 20; i++) {
      const r = await this.launch();
      if (r.ok) return;
      last = r.why;
      if (!r.inUse) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not restart on port ${this.port}: ${last}`);
  }

  private removeDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    await this.kill();
    this.removeDir();
  }
}
