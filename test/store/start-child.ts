/**
 * A program that starts a LockCoordinator sharing a lock space (test support: ./handles.test.ts).
 * argv[2] is JSON: the store's options ({ url, requestTimeoutMs, node?, sessionTtlMs? }). When start() rejects it prints {"error": message,
 * "resources": [...]} at once; when it resolves it stops the coordinator and prints
 * {"stopped": true, "resources": [...]}; resources are process.getActiveResourcesInfo() at that
 * moment. Then it does nothing more: whatever is left in the event loop decides when it exits, and
 * it prints {"exitAfterMs": ...} then (from the line above to the exit).
 */
import { LockCoordinator } from '../../src/index.js';

const store = JSON.parse(process.argv[2]!) as { url: string; requestTimeoutMs: number; node?: string; sessionTtlMs?: number };
const out = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);

let t0 = 0;
process.once('exit', () => out({ exitAfterMs: Math.round(performance.now() - t0) }));
try {
  const c = await LockCoordinator.start({ workers: 1, store });
  await c.stop();
  const resources = process.getActiveResourcesInfo();
  t0 = performance.now();
  out({ stopped: true, resources });
} catch (e) {
  const resources = process.getActiveResourcesInfo();
  t0 = performance.now();
  out({ error: e instanceof Error ? e.message : String(e), resources });
}
