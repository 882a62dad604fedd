/**
 * A redis-server of our own, the one way this project starts one (the nodes target of the stress
 * runner, the store tests, bench:store, bench:cluster): a free loopback port (another one when the
 * port is taken between the check and the start), a temporary --dir removed on stop, no
 * persistence of its own (--save '' --appendonly no). Started, and restarted (kill -9) on the same
 * port, by waiting for its "Ready to accept connections" line (an event, not a sleep): restart()
 * keeps nothing (the dump and any append-only file in its --dir are removed first, so a SAVE by
 * anyone is not loaded back); restart({ fromSnapshot: true }) loads the dump the last snapshot()
 * (SAVE) wrote, the engine back with data older than what its clients were told. Paused and
 * resumed (SIGSTOP / SIGCONT); killed on stop, and when this process exits. Several run at once.
 * With `tls`, it speaks TLS only on its port (a self-signed certificate for localhost made in its
 * directory): what a client reaching it through redis:// meets.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';

/** The longest a redis-server may take to say it is ready, or to exit after SIGKILL (milliseconds when quiet; a loaded machine is slow). */
export const START_BUDGET_MS = 60_000;

const NOT_INSTALLED = 'redis-server is not installed (install it with: apt-get install redis-server)';

/** The server's version ('redis-server 7.0.15'), or undefined when redis-server is not installed. */
export function redisVersion(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0 || typeof r.stdout !== 'string') return undefined;
  return /v=\S+/.exec(r.stdout)?.[0]?.replace('v=', 'redis-server ') ?? r.stdout.trim();
}

/** Why no redis-server can be started here (one clause, with how to install it), or undefined. */
export function redisUnavailable(): string | undefined {
  return redisVersion() === undefined ? NOT_INSTALLED : undefined;
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

/**
 * Resolves once `cond` holds, checked every `everyMs`, or rejects naming `what` after `ms`; past
 * the budget the checks stop too (a loop left checking would hold the process open, and a test
 * file that failed a wait would then run to the runner's own timeout).
 */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string, everyMs = 10): Promise<void> {
  let over = false;
  try {
    await within(
      (async () => {
        while (!over && !(await cond())) await new Promise((r) => setTimeout(r, everyMs));
      })(),
      ms,
      what,
    );
  } finally {
    over = true;
  }
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
  private admin: Redis | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'locksmith-redis-'));

  private constructor(
    readonly port: number,
    private readonly settings: readonly string[],
    readonly tls: boolean,
  ) {}

  /** rediss:// for a server with `tls` (its certificate is self-signed: a client must be given it, or not check it). */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  /** With `tls`: its self-signed certificate (PEM), for localhost: the CA a client is given (NODE_EXTRA_CA_CERTS). */
  get certFile(): string {
    return join(this.dir, 'cert.pem');
  }

  /**
   * A server on a free port (another port when one is taken between the check and the start).
   * `settings`: more command-line settings, kept on restart (['--rename-command', 'AUTH', '']).
   * `tls`: TLS only on that port (no plain port).
   */
  static async start(settings: readonly string[] = [], o: { tls?: boolean } = {}): Promise<RedisServer> {
    let last = '';
    for (let i = 0; i < 10; i++) {
      const s = new RedisServer(await freePort(), settings, o.tls === true);
      const r = await s.launch();
      if (r.ok) return s;
      s.removeDir();
      last = r.why;
      if (!r.inUse) break;
    }
    throw new Error(last === NOT_INSTALLED ? last : `redis-server did not start: ${last}`);
  }

  /** The arguments that give the server its port: a plain one, or a TLS one with a certificate made here once. */
  private portArgs(): string[] | Outcome {
    if (!this.tls) return ['--port', String(this.port)];
    const cert = this.certFile;
    const key = join(this.dir, 'key.pem');
    if (!existsSync(cert)) {
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
      if (made.status !== 0) return { ok: false, inUse: false, why: `openssl could not make a certificate: ${made.error?.message ?? made.stderr}` };
    }
    return ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert];
  }

  private launch(): Promise<Outcome> {
    const ports = this.portArgs();
    if (!Array.isArray(ports)) return Promise.resolve(ports);
    const p = spawn(
      'redis-server',
      [...ports, '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '', '--loglevel', 'notice', ...this.settings],
      // Its own process group: a terminal's Ctrl-C signals the runner's whole group, and the server
      // shutting down on it under the runner's orderly stop left every node without its engine.
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    this.proc = p;
    live.add(p);
    // The last lines only (the server logs for as long as it runs; the output is read to the end, or it would block).
    const lines: string[] = [];
    const started = new Promise<Outcome>((resolve) => {
      const onLine = (l: string) => {
        if (lines.push(l) > 20) lines.shift();
        if (l.includes('Ready to accept connections')) resolve({ ok: true });
      };
      createInterface({ input: p.stdout! }).on('line', onLine);
      createInterface({ input: p.stderr! }).on('line', onLine);
      p.once('error', (e: NodeJS.ErrnoException) => {
        live.delete(p);
        resolve({ ok: false, inUse: false, why: e.code === 'ENOENT' ? NOT_INSTALLED : e.message });
      });
      p.once('exit', (code, signal) => {
        live.delete(p);
        const why = `exit ${code ?? signal}: ${lines.slice(-5).join(' | ')}`;
        resolve({ ok: false, inUse: /in use|bind/i.test(why), why });
      });
    });
    return within(started, START_BUDGET_MS, `redis-server on port ${this.port} to accept connections`).catch((e: Error): Outcome => {
      p.kill('SIGKILL');
      return { ok: false, inUse: false, why: `${e.message}: ${lines.slice(-5).join(' | ')}` };
    });
  }

  /** A plain client of this server (not one with `tls`) for commands around the code under test (DEL, CLIENT KILL, INFO, CONFIG SET); one, kept until restart or stop. */
  async client(): Promise<Redis> {
    if (this.admin === undefined || this.admin.status === 'end') {
      const { Redis } = await import('ioredis');
      this.admin = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: null, disableClientInfo: true, retryStrategy: () => 50 });
      this.admin.on('error', () => {});
      await this.admin.connect();
    }
    return this.admin;
  }

  private dropClient(): void {
    this.admin?.disconnect();
    this.admin = undefined;
  }

  private async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p === undefined || p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    // SIGKILL first: a paused server never runs again, so nothing it had queued is answered.
    p.kill('SIGKILL');
    p.kill('SIGCONT');
    await within(gone, START_BUDGET_MS, `redis-server on port ${this.port} to exit after SIGKILL`);
  }

  /** A setting given on the command line (`--dbfilename x`), or `fallback`. */
  private setting(name: string, fallback: string): string {
    const i = this.settings.lastIndexOf(`--${name}`);
    return i >= 0 && i + 1 < this.settings.length ? this.settings[i + 1]! : fallback;
  }

  /** The dump a SAVE writes and a start loads: in its --dir. */
  private get dumpFile(): string {
    return join(this.dir, this.setting('dbfilename', 'dump.rdb'));
  }

  /** SAVE through its admin client: the dump restart({ fromSnapshot: true }) loads. */
  async snapshot(): Promise<void> {
    const r = await (await this.client()).save();
    if (r !== 'OK') throw new Error(`SAVE on port ${this.port} answered ${String(r)}`);
  }

  /**
   * kill -9, then the same port again. With nothing kept (the default): the dump and any
   * append-only file are removed first, the engine lost its data. `fromSnapshot`: the dump the last
   * snapshot() wrote is loaded, the engine back with older data (a new run of it all the same).
   * `whileDown`: awaited between the kill and the new start (what a test waits for while the port
   * refuses connections).
   */
  async restart(o: { fromSnapshot?: boolean; whileDown?: () => Promise<void> } = {}): Promise<void> {
    this.dropClient();
    await this.kill();
    await o.whileDown?.();
    if (o.fromSnapshot === true) {
      if (!existsSync(this.dumpFile)) throw new Error(`redis-server on port ${this.port}: no snapshot to restart from (${this.dumpFile}); snapshot() first`);
    } else {
      for (const f of [this.dumpFile, join(this.dir, this.setting('appenddirname', 'appendonlydir')), join(this.dir, this.setting('appendfilename', 'appendonly.aof'))]) {
        rmSync(f, { recursive: true, force: true });
      }
    }
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

  /** SIGSTOP: an engine that accepts connections and never answers, until resume(). */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  /** SIGCONT: the paused engine answers again. */
  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  private removeDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    this.dropClient();
    await this.kill();
    this.removeDir();
  }
}
