/**
 * Test support for real mounts: the scripted client process (lockclient.c), polling, and the
 * last-resort unmount. Never touch a mount synchronously from a thread that decides its locks.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `f` until it returns a value other than undefined/false, or fails after `ms`. */
export async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Whether something is mounted there, and the last-resort unmount: the library's own. */
export { isMounted as mounted, forceUnmount } from '../../src/mount.js';

/** Why a real mount cannot be tested here (beyond the addon itself), or undefined. */
export function mountEnvironmentMissing(): string | undefined {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/fuse is missing or not accessible';
  }
  if (process.getuid?.() !== 0) return 'these tests mount and unmount FUSE directly and need root';
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'no C compiler (cc) to build test/native/lockclient.c';
  }
  return undefined;
}

/** Compiles lockclient.c to `out`. */
export function buildLockClient(out: string): string {
  execFileSync('cc', ['-O2', '-Wall', '-o', out, join(dirname(fileURLToPath(import.meta.url)), 'lockclient.c')]);
  return out;
}

/** One lockclient process: its commands run one after another, each printing one line. */
export class Client {
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly lines: string[] = [];
  private pidValue = 0;

  constructor(bin: string, file: string, cmds: string[]) {
    this.proc = spawn(bin, [file, ...cmds], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((r) => this.proc.once('exit', (code, signal) => r({ code, signal })));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      if (l.startsWith('ready ')) this.pidValue = Number(l.slice(6));
      else this.lines.push(l);
    });
  }

  get pid(): number {
    return this.pidValue;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Waits for the exit, failing (instead of hanging the file) if the process is stuck. */
  async ended(ms = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const r = await Promise.race([this.exited, sleep(ms).then(() => undefined)]);
    if (r === undefined) throw new Error(`lockclient ${this.pid} did not exit within ${ms} ms`);
    return r;
  }

  /** The next line the client printed. */
  next(ms = 5000): Promise<string> {
    return until('a line from lockclient', () => this.lines.shift(), ms);
  }

  /** The next `n` lines. */
  async take(n: number, ms = 5000): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(ms));
    return out;
  }

  /** True if the client printed nothing more within `ms` (it is blocked). */
  async silentFor(ms: number): Promise<boolean> {
    await sleep(ms);
    return this.lines.length === 0;
  }

  /** Lets a client waiting at 'wait' go on. */
  go(): void {
    this.proc.stdin!.write('\n');
  }
}
