/**
 * Test support for real mounts: the scripted client process (the stress runner's client,
 * driver/lockclient.c, in its --script mode), polling, and the last-resort unmount. Never touch a
 * mount synchronously from a thread that decides its locks.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { SOURCE as LOCKCLIENT_SOURCE } from '../../driver/targets/process.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The safety budget for something that must happen (a line from a client, a process exit, a state
 * becoming visible). Tests wait for the event itself; this budget exists only so that a hang fails
 * naming what it waited for instead of at tap's file timeout. It is minutes where the thing takes
 * milliseconds, so a slow, shared machine (both cores busy) never reaches it: five minutes (see
 * HANG_MS in test/api/helpers.ts).
 */
export const HANG_MS = 300_000;

/** Polls `f` until it returns a value other than undefined/false; fails naming `what` after `ms` (a hang). */
export async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = HANG_MS): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`still waiting after ${ms / 1000} s for: ${what}`);
    await sleep(5);
  }
}

/** A thread's state letter in /proc/PID/task/TID/stat (after the name, which may hold spaces and parentheses). */
const stateOf = (pid: number, tid: string): string => readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]!;

/**
 * Whether every thread of process `pid` is stopped (state T). SIGSTOP's group stop reaches each
 * thread on its own: the process's own line may say T while a worker thread still runs, and may
 * still write to a socket or answer a request.
 */
export function stopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => stateOf(pid, tid) === 'T');
}

/** Each thread of process `pid`: its name, state and kernel wait channel, for a failure's message. */
export function threadStates(pid: number): string {
  try {
    const one = (tid: string) => `${readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()} ${stateOf(pid, tid)} ${readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8')}`;
    return readdirSync(`/proc/${pid}/task`).map(one).join(', ');
  } catch (e) {
    return `not readable (${(e as Error).message})`;
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
    return 'no C compiler (cc) to build driver/lockclient.c';
  }
  return undefined;
}

/** Compiles driver/lockclient.c to `out`. */
export function buildLockClient(out: string): string {
  execFileSync('cc', ['-O2', '-Wall', '-o', out, LOCKCLIENT_SOURCE]);
  return out;
}

/** One lockclient process running `cmds` (its --script mode): one after another, each printing one line. */
export class Client {
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly lines: string[] = [];
  private pidValue = 0;
  private readonly name: string;

  constructor(bin: string, file: string, cmds: string[]) {
    this.name = `lockclient on ${basename(file)} (${cmds.join(' ')})`;
    this.proc = spawn(bin, ['--script', file, ...cmds], { stdio: ['pipe', 'pipe', 'inherit'] });
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

  /** Waits for the exit, failing (instead of hanging the file) if the process is stuck (HANG_MS). */
  async ended(ms = HANG_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.exited, new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), ms)))]).finally(() => clearTimeout(timer));
    if (r === undefined) throw new Error(`still waiting after ${ms / 1000} s for ${this.name}, pid ${this.pid}, to exit`);
    return r;
  }

  /** The next line the client printed. */
  next(ms = HANG_MS): Promise<string> {
    return until(`the next line from ${this.name}, pid ${this.pid}`, () => this.lines.shift(), ms);
  }

  /** The next `n` lines. */
  async take(n: number, ms = HANG_MS): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(ms));
    return out;
  }

  /**
   * True if the client printed nothing more within `ms`. Only a negative check: on a slow machine
   * the client may not even have reached its call yet, so a test that needs the call to be blocked
   * waits for the decider to hold it (the coordinator's or the pump's queue), not for this.
   */
  async silentFor(ms: number): Promise<boolean> {
    await sleep(ms);
    return this.lines.length === 0;
  }

  /** Lets a client waiting at 'wait' go on. */
  go(): void {
    this.proc.stdin!.write('\n');
  }
}
