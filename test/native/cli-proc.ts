/**
 * Test support for the built `locksmith` command on real mounts: a served mount in a child process
 * (waiting on its "serving" line and its exit, never on sleeps) and one-shot CLI runs that do not
 * block this file's event loop (the lock clients' lines keep arriving while a run is in progress).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { until } from './proc.js';

export const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src', 'cli.js');

export interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `locksmith ARGS` to its end (failing after `ms`, naming the command). */
export function runCli(args: string[], o: { env?: NodeJS.ProcessEnv; ms?: number; argv0?: string[]; cwd?: string } = {}): Promise<Ran> {
  const [cmd, ...pre] = o.argv0 ?? [process.execPath];
  const p = spawn(cmd!, [...pre, cli, ...args], { env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: o.cwd ?? '/' });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ms = o.ms ?? 120_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`'locksmith ${args.join(' ')}' did not finish within ${ms / 1000} s`));
    }, ms);
    p.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** `p`, or a failure naming `what` after `ms` (the timer is cleared: it never holds the test open). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A `locksmith mount` child process. */
export class Server {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  readonly errors: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** `wrapper`: a command that runs node (its arguments after it), e.g. setpriv with its options. */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, wrapper: string[] = []) {
    const [cmd, ...pre] = [...wrapper, process.execPath];
    this.proc = spawn(cmd!, [...pre, cli, 'mount', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.exited = new Promise((r) => this.proc.once('exit', (code, signal) => r({ code, signal })));
    // If this file is ended early (tap's timeout) its teardown never runs: SIGTERM still makes the
    // server answer its waiters and unmount on its own, instead of serving on as an orphan.
    const orphaned = () => {
      if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    };
    process.once('exit', orphaned);
    void this.exited.then(() => process.off('exit', orphaned));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.lines.push(l));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => {
      this.errors.push(l);
      process.stderr.write(`[locksmith mount] ${l}\n`);
    });
  }

  /** Waits for the "serving" line (or fails with what the server said if it exits first). */
  async serving(ms = 120_000): Promise<string> {
    let ended = false;
    void this.exited.then(() => (ended = true));
    const line = await until('the serving line of locksmith mount', () => this.lines.find((l) => l.startsWith('locksmith: serving')) ?? (ended ? 'EXITED' : undefined), ms);
    if (line === 'EXITED') throw new Error(`locksmith mount exited before serving: ${this.errors.join(' | ')}`);
    return line;
  }

  /** Waits for the exit (failing after `ms`, naming what it waited for). */
  async ended(ms = 120_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.exited, new Promise<undefined>((res) => (timer = setTimeout(res, ms)))]);
    clearTimeout(timer);
    if (r === undefined) throw new Error(`locksmith mount (pid ${this.proc.pid}) did not exit within ${ms / 1000} s`);
    return r;
  }
}
