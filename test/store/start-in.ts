/**
 * Test helper: runs start-child.ts (a LockCoordinator started on a store, then stopped, in a
 * process of its own) and waits for that process to exit by itself; leftBehind checks it left
 * nothing of the store in its event loop. Shared by handles.test.ts
 * and tls-errors.test.ts.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { EVENT_BUDGET_MS, within } from './redis-server.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'start-child.ts');
// Only the TypeScript loader: the coverage and mock loaders have no business in the child.
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

/** What the child said (its JSON lines, merged), its exit code and its stderr. */
export interface Outcome {
  error?: string;
  stopped?: boolean;
  resources: string[];
  exitAfterMs?: number;
  code: number | null;
  stderr: string;
}

/**
 * Runs start-child.ts with `settings` (url, requestTimeoutMs, ...) in environment `env` (this
 * process's by default) and resolves once it exited by itself and its stdout ended; `what` names
 * the store in the failure of a child still running after EVENT_BUDGET_MS.
 */
export async function runStartChild(settings: Record<string, unknown>, what: string, env: NodeJS.ProcessEnv = process.env): Promise<Outcome> {
  const p = spawn(process.execPath, [...loader, script, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const killer = () => p.kill('SIGKILL');
  process.once('exit', killer);
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  createInterface({ input: p.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  createInterface({ input: p.stderr! }).on('line', (l) => stderr.push(l));
  // Its stdout read to the end too: the exit line comes last.
  const done = Promise.all([new Promise<number | null>((r) => p.once('exit', (code) => r(code))), new Promise<void>((r) => p.stdout!.once('end', () => r()))]);
  try {
    const [code] = await within(done, EVENT_BUDGET_MS, `the process that started a coordinator on ${what} to exit by itself`);
    const said = Object.assign({}, ...lines) as Omit<Outcome, 'code' | 'stderr'>;
    return { ...said, resources: said.resources ?? [], code, stderr: stderr.join('\n') };
  } finally {
    process.off('exit', killer);
    p.kill('SIGKILL');
  }
}

/** A store's kinds of event-loop resources (process.getActiveResourcesInfo()). */
const STORE_KINDS = /Timeout|Immediate|TCP|TLS/;

/** The child exited by itself with 0, and right after `after` its event loop held nothing of the store. */
export function leftBehind(t: Test, o: Outcome, after: string): void {
  t.equal(o.code, 0, `exited by itself, with 0${o.code === 0 ? '' : ` (${o.stderr})`}`);
  t.strictSame(
    o.resources.filter((r) => STORE_KINDS.test(r)),
    [],
    `no timer or socket left right after ${after} (event loop: ${JSON.stringify(o.resources)}; the exit came ${o.exitAfterMs} ms later)`,
  );
}
