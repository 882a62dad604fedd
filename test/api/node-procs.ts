/**
 * Nodes in their own processes for the test/api files that run several of them (node-child.ts: a
 * LockCoordinator with a `store`, real worker threads): calls by tag, replies whenever they settle;
 * and the two waits those files use, each within HANG_MS.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Spawned } from '../spawned.js';
import { HANG_MS } from './helpers.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'node-child.ts');

// biome-ignore lint/suspicious/noExplicitAny: replies are JSON from node-child.ts
export type Reply = any;

/** A node in its own process: calls by tag, replies whenever they settle. */
export class Node extends Spawned {
  private readonly waiting = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private ready1!: (r: Reply) => void;
  private readonly readyLine = new Promise<Reply>((r) => (this.ready1 = r));
  private n = 0;
  readonly namespace: string;

  constructor(store: Record<string, unknown>, policy?: 'default' | 'fifo') {
    super(script, { store, workers: 2, ...(policy === undefined ? {} : { policy }) });
    this.namespace = String(store.namespace);
  }

  protected line(l: string): void {
    const x = JSON.parse(l, (_k, v) => (v !== null && typeof v === 'object' && '$big' in v ? BigInt(v.$big) : v));
    if ('ready' in x || ('error' in x && !('tag' in x))) {
      this.ready1(x);
      return;
    }
    const w = this.waiting.get(x.tag);
    this.waiting.delete(x.tag);
    if ('error' in x) w?.reject(new Error(x.error));
    else w?.resolve(x.reply);
  }

  async ready(): Promise<Reply> {
    const r = await this.orExit(this.readyLine);
    if ('error' in r) throw new Error(r.error);
    return r;
  }

  /** Calls a public method in the node; resolves with what it resolved with. */
  call(method: string, req?: unknown): Promise<Reply> {
    return this.send(`c${++this.n}`, method, req, false);
  }

  /** Calls a public method with an AbortSignal in the request; `abort()` aborts it. */
  abortable(method: string, req: unknown): { reply: Promise<Reply>; abort: () => void } {
    const tag = `c${++this.n}`;
    return { reply: this.send(tag, method, req, true), abort: () => this.proc.stdin!.write(`${JSON.stringify({ abort: tag })}\n`) };
  }

  private send(tag: string, method: string, req: unknown, abortable: boolean): Promise<Reply> {
    const p = new Promise<Reply>((resolve, reject) => this.waiting.set(tag, { resolve, reject }));
    this.proc.stdin!.write(`${JSON.stringify({ tag, method, req, ...(abortable ? { abortable } : {}) }, (_k, v) => (typeof v === 'bigint' ? { $big: v.toString() } : v))}\n`);
    return p;
  }

  kill(): Promise<void> {
    return this.killWith((exited) => exited);
  }
}

/** `p`, or a failure naming what it waited for after HANG_MS (a hang, never a slow machine). */
export async function event<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${HANG_MS / 1000} s`)), HANG_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asks again, one round trip at a time, until `pred` holds (what a node has committed shows in every node's listing). */
export async function until<T>(ask: () => Promise<T>, pred: (x: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + HANG_MS;
  for (;;) {
    const x = await ask();
    if (pred(x)) return x;
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${HANG_MS / 1000} s (last seen: ${JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
