/**
 * A test's node in a process of its own (test/store/child-proc.ts, test/api/node-procs.ts): the
 * script started with only the TypeScript loader tap gave this process (the coverage and mock
 * loaders have no business there), killed if this process exits first, its stderr kept for the
 * message of a failed start, and the signals the fault tests send.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

export abstract class Spawned {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  protected readonly stderr: string[] = [];

  constructor(script: string, arg: unknown) {
    this.proc = spawn(process.execPath, [...loader, script, JSON.stringify(arg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
    process.once('exit', () => this.proc.kill('SIGKILL'));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.line(l));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.stderr.push(l));
  }

  /** One line the child printed (after the subclass's fields are set: lines come later). */
  protected abstract line(l: string): void;

  /** `p`, or an error with the child's exit code and stderr if it exits first. */
  protected orExit<T>(p: Promise<T>): Promise<T | { error: string }> {
    return Promise.race([p, this.exited.then((c) => ({ error: `exited ${c}: ${this.stderr.join('\n')}` }))]);
  }

  signal(s: NodeJS.Signals): void {
    this.proc.kill(s);
  }

  /** SIGKILL (a stopped child too), and `wait` for its exit. */
  protected async killWith(wait: (exited: Promise<number | null>) => Promise<unknown>): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGKILL');
    await wait(this.exited);
  }
}
