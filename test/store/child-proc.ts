/**
 * The parent's side of ./child.ts: a node in another process, its printed lines as a Feed, one
 * command at a time. The child loads TypeScript through the loader tap gave this process.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SessionEvent } from '../../src/store/index.js';
import { Spawned } from '../spawned.js';
import { Feed } from './fixture.js';
import { EVENT_BUDGET_MS, within } from './redis-server.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'child.ts');

// biome-ignore lint/suspicious/noExplicitAny: lines are JSON written by child.ts
type Line = Record<string, any>;

export class ChildNode extends Spawned {
  readonly lines = new Feed<Line>();

  constructor(cfg: { url: string; namespace: string; node: string; sessionTtlMs: number; tuning?: Record<string, number> }) {
    super(script, cfg);
  }

  protected line(l: string): void {
    this.lines.push(JSON.parse(l) as Line);
  }

  /** The session epoch it printed once its store was open. */
  async ready(): Promise<number> {
    const l = await this.orExit(this.lines.next('the child node to open its store', (x) => 'ready' in x || 'error' in x));
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

  kill(): Promise<void> {
    return this.killWith((exited) => within(exited, EVENT_BUDGET_MS, 'the child node to exit'));
  }
}
