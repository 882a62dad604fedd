/**
 * A locksmith node in its own process (test support for several-nodes.test.ts). argv[2] is JSON
 * { store, workers, policy? }. It starts a LockCoordinator on that store, prints {"ready": node}, then runs
 * one JSON command per stdin line: { tag, method, req } calls that public method and prints
 * { tag, reply } when it settles (blocking calls answer whenever they end), or { tag, error }.
 * Bigints travel as { $big: "..." } both ways. A command sent with { abortable: true } gets an
 * AbortSignal, which { abort: tag } aborts. Only the package entry is used.
 */
import { createInterface } from 'node:readline';
import { LockCoordinator } from '../../src/index.js';

const cfg = JSON.parse(process.argv[2]!) as { store: Record<string, unknown>; workers?: number; policy?: 'default' | 'fifo' };
const out = (x: unknown): void => {
  process.stdout.write(`${JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? { $big: v.toString() } : v))}\n`);
};
const revive = (_k: string, v: unknown): unknown => (v !== null && typeof v === 'object' && '$big' in v ? BigInt((v as { $big: string }).$big) : v);

let c: LockCoordinator;
try {
  c = await LockCoordinator.start({ workers: cfg.workers ?? 2, store: cfg.store as never, ...(cfg.policy === undefined ? {} : { policy: cfg.policy }) });
} catch (e) {
  out({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  process.exit(1);
}
out({ ready: (await c.stats()).store?.node });

// The AbortControllers of requests sent { abortable: true }, by tag, until { abort: tag } aborts one.
const controllers = new Map<string, AbortController>();
createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line, revive) as { tag: string; method: string; req?: unknown; abortable?: boolean; abort?: string };
  if (cmd.abort !== undefined) {
    controllers.get(cmd.abort)?.abort();
    controllers.delete(cmd.abort);
    return;
  }
  if (cmd.abortable === true) {
    const ac = new AbortController();
    controllers.set(cmd.tag, ac);
    (cmd.req as { signal?: AbortSignal }).signal = ac.signal;
  }
  const m = (c as unknown as Record<string, (r?: unknown) => Promise<unknown>>)[cmd.method]!;
  m.call(c, cmd.req).then(
    (reply) => out({ tag: cmd.tag, reply: reply ?? null }),
    (e: unknown) => out({ tag: cmd.tag, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }),
  );
});
