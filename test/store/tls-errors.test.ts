/**
 * rediss:// to a Redis with TLS: a coordinator started with the server's CA given
 * (NODE_EXTRA_CA_CERTS, as README.md and docs/API.md say) runs in its own process
 * (../store/start-child.ts: Node reads NODE_EXTRA_CA_CERTS at startup only), and its stop leaves
 * nothing of the store in the event loop, as ./handles.test.ts asks of any stop or failed start.
 * Before, a TLS socket's state, freed a turn after its close, was still there.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { EVENT_BUDGET_MS, RedisServer, noRedis, within } from './redis-server.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'start-child.ts');
// Only the TypeScript loader: the coverage and mock loaders have no business in the child.
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

/** What the event loop holds that a store's connection would: its timers and sockets. */
const STORE_KINDS = /Timeout|Immediate|TCP|TLS/;

interface Outcome {
  error?: string;
  stopped?: boolean;
  resources: string[];
  code: number | null;
  stderr: string;
}

/**
 * Runs start-child.ts (LockCoordinator.start with `url`, then stop) with NODE_EXTRA_CA_CERTS set
 * to `ca`, or unset (this machine's own may be set), SUDO_USER unset unless `more` sets it, and
 * waits for it to exit by itself.
 */
async function startIn(url: string, ca: string | undefined, what: string, more: Record<string, string> = {}): Promise<Outcome> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.SUDO_USER;
  if (ca !== undefined) env.NODE_EXTRA_CA_CERTS = ca;
  Object.assign(env, more);
  const p = spawn(process.execPath, [...loader, script, JSON.stringify({ url, requestTimeoutMs: 20_000 })], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const killer = () => p.kill('SIGKILL');
  process.once('exit', killer);
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  createInterface({ input: p.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  createInterface({ input: p.stderr! }).on('line', (l) => stderr.push(l));
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

function leftBehind(t: Test, o: Outcome, after: string): void {
  t.equal(o.code, 0, `exited by itself, with 0${o.code === 0 ? '' : ` (${o.stderr})`}`);
  t.strictSame(
    o.resources.filter((r) => STORE_KINDS.test(r)),
    [],
    `no timer or socket left right after ${after} (event loop: ${JSON.stringify(o.resources)})`,
  );
}

// A self-signed certificate for localhost (CN only, no alternative names); no client certificate
// asked for (locksmith sends none).
let tls: RedisServer;
t.before(async () => {
  if (!noRedis) tls = await RedisServer.start(['--tls-auth-clients', 'no'], { tls: true });
});
t.teardown(() => tls?.stop());

t.test('LockCoordinator.start with the CA in NODE_EXTRA_CA_CERTS: started', { skip: noRedis }, async (t) => {
  const o = await startIn(`rediss://localhost:${tls.port}`, tls.certFile, 'a Redis whose CA is given');
  t.equal(o.error, undefined, 'started');
  t.equal(o.stopped, true, 'stopped');
  leftBehind(t, o, 'stop() resolved');
});
