/**
 * The parent's side of ./child.ts: a node in another process, its printed lines as a Feed, one
 * command at a time. The child loads TypeScript through the loader tap gave this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SessionEvent } from '../../src/store/index.js';
import { Feed } from './fixture.js';
import { EVENT_BUDGET_MS, within } from './redis-server.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'child.ts');
// Only the TypeScript loader: the coverage and mock loaders have no business in a child node.
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

// biome-ignore lint/suspicious/noExplicitAny: lines are JSON written by child.ts
type Line = Record<string, any>;

export class ChildNode {
  readonly proc: ChildProcess;
  readonly lines = new Feed<Line>();
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(cfg: { url: string; namespace: string; node: string; sessionTtlMs: number; tuning?: Record<string, number> }) {
    this.proc = spawn(process.execPath, [...loader, script, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
    process.once('exit', () => this.proc.kill('SIGKILL'));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.lines.push(JSON.parse(l) as Line));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.stderr.push(l));
  }

  /** The session epoch it printed once its store was open. */
  async ready(): Promise<number> {
    const l = await Promise.race([
      this.lines.next('the child node to open its store', (x) => 'ready' in x || 'error' in x),
      this.exited.then((c) => ({ error: `exited ${c}: ${this.stderr.join('\n')}` })),
    ]);
    if ('error' in l) throw new Error(String(l.error));
    return l.ready as number;
  }

  /** Sends one command and waits for its reply line. */
  async run(cmd: Line, ms = EVENT_BUDGET_MS): Promise<Line> {
    this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const l = await this.lines.next(`the child's reply to ${cmd.op}`, (x) => 'reply' in x || 'error' in x, ms);
    if ('error' in l) throw new Error(`child: ${l.error}`);
    return l.reply;
  }

  session(what: string, pred: (e: SessionEvent) => boolean): Promise<SessionEvent> {
    return this.lines.next(what, (x) => 'session' in x && pred(x.session as SessionEvent)).then((x) => x.session as SessionEvent);
  }

  signal(s: NodeJS.Signals): void {
    this.proc.kill(s);
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGKILL');
    await within(this.exited, EVENT_BUDGET_MS, 'the child node to exit');
  }
}
