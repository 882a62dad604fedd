/**
 * Logical nodes over one engine, for tests that run the same scenario on both engines: each node
 * is a NodeStore with its own session (and, on Redis, its own connections), its hook events
 * queued so a test can wait for the next one.
 */
import { randomUUID } from 'node:crypto';
import { MemoryEngine, memoryStore, openStore, type InboxEvent, type NodeStore, type SessionEvent, type Tuning } from '../../src/store/index.js';
import { EVENT_BUDGET_MS, type RedisServer, within } from './redis-server.js';

/** Things that happen, in order; next() takes the first one not taken yet that matches, or waits for it. */
export class Feed<T> {
  readonly seen: T[] = [];
  private readonly taken = new Set<number>();
  private readonly waiting: { pred: (x: T) => boolean; resolve: (x: T) => void }[] = [];

  push(x: T): void {
    this.seen.push(x);
    const i = this.waiting.findIndex((w) => w.pred(x));
    if (i >= 0) {
      const [w] = this.waiting.splice(i, 1);
      this.taken.add(this.seen.length - 1);
      w!.resolve(x);
    }
  }

  /** Marks everything seen so far as taken: next() then waits for what happens from now on. */
  skip(): void {
    for (let i = 0; i < this.seen.length; i++) this.taken.add(i);
  }

  /** The first item not taken yet that matches, waiting for it within the budget. */
  next(what: string, pred: (x: T) => boolean = () => true, ms = EVENT_BUDGET_MS): Promise<T> {
    for (let i = 0; i < this.seen.length; i++) {
      if (!this.taken.has(i) && pred(this.seen[i]!)) {
        this.taken.add(i);
        return Promise.resolve(this.seen[i]!);
      }
    }
    let entry: { pred: (x: T) => boolean; resolve: (x: T) => void } | undefined;
    const p = new Promise<T>((resolve) => this.waiting.push((entry = { pred, resolve })));
    return within(p, ms, what).finally(() => {
      const i = this.waiting.indexOf(entry!);
      if (i >= 0) this.waiting.splice(i, 1);
    });
  }
}

export interface Node {
  name: string;
  store: NodeStore;
  events: Feed<InboxEvent>;
  session: Feed<SessionEvent>;
  /** One entry per renewal that said reap() has work. */
  reapDue: Feed<number>;
  errors: Error[];
}

export type Kind = 'memory' | 'redis';

export interface Cluster {
  kind: Kind;
  namespace: string;
  nodes: Node[];
  memory?: MemoryEngine;
  /** The node's session key vanishes, as when its TTL runs out. */
  expire(node: string): Promise<void>;
  add(name: string, tuning?: Partial<Tuning> & { sessionTtlMs?: number }): Promise<Node>;
  close(): Promise<void>;
}

export async function cluster(kind: Kind, names: string[], server: RedisServer | undefined, tuning: Partial<Tuning> & { sessionTtlMs?: number } = {}): Promise<Cluster> {
  const namespace = `t-${randomUUID().slice(0, 8)}`;
  const memory = kind === 'memory' ? new MemoryEngine() : undefined;
  const nodes: Node[] = [];
  const add = async (name: string, tu: Partial<Tuning> & { sessionTtlMs?: number } = {}): Promise<Node> => {
    const events = new Feed<InboxEvent>();
    const session = new Feed<SessionEvent>();
    const errors: Error[] = [];
    const reapDue = new Feed<number>();
    const hooks = {
      onReapDue: () => reapDue.push(reapDue.seen.length), onEvents: (es: readonly InboxEvent[]) => {
        for (const e of es) events.push(e);
      }, onSession: (e: SessionEvent) => session.push(e), onError: (e: Error) => errors.push(e) };
    const tt = { graceMs: 0, ...tuning, ...tu };
    const store =
      kind === 'memory'
        ? await memoryStore(hooks, { engine: memory!, node: name, sessionTtlMs: tt.sessionTtlMs ?? 60_000, ...tt })
        : await openStore({ url: server!.url, namespace, node: name, sessionTtlMs: tt.sessionTtlMs ?? 60_000, requestTimeoutMs: 10_000 }, hooks, tt);
    const n = { name, store, events, session, reapDue, errors };
    nodes.push(n);
    return n;
  };
  for (const n of names) await add(n);
  return {
    kind,
    namespace,
    nodes,
    memory,
    add,
    async expire(node: string) {
      if (memory !== undefined) memory.expire(node);
      else await (await server!.client()).del(`{${namespace}}:s:${node}`);
    },
    async close() {
      await Promise.all(nodes.map((n) => n.store.close()));
    },
  };
}
