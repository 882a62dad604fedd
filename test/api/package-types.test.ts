/**
 * The published types, as a strict TypeScript consumer gets them (issue 14, API.md "Types").
 *
 * The package is built and packed once, from a staging copy (so the repository's own dist/, which
 * other test files' workers run from, is never rewritten under them), installed from its tarball into
 * a fresh project with typescript, and `tsc --strict --noEmit` runs on consumer files there: a correct
 * use of every request, reply, event, entry, stats and option type compiles; a misspelled field
 * (`timeoutMS`, `filename`, an `offset` that is no field) is a compile error naming it.
 *
 * Slow (a build, a pack and an install from npm's cache): it has a budget of its own.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

t.setTimeout(15 * 60_000);

const root = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'locksmith-types-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** Runs a command to its end (asynchronously: tap keeps hearing from this process meanwhile). */
function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, env: { ...process.env, npm_config_update_notifier: 'false' } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', (e) => resolve({ code: -1, out: `${out}${String(e)}` }));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

function versionOf(dep: string): string {
  return (JSON.parse(readFileSync(path.join(root, 'node_modules', dep, 'package.json'), 'utf8')) as { version: string }).version;
}

// ---- pack once ------------------------------------------------------------------------------------

const consumer = path.join(work, 'consumer');
let ready = false;

t.test('the package builds, packs and installs into a fresh project', async (t) => {
  const stage = path.join(work, 'stage');
  mkdirSync(stage);
  for (const f of ['package.json', 'README.md', 'binding.gyp', 'src', 'driver']) cpSync(path.join(root, f), path.join(stage, f), { recursive: true });
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = await run(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json'), '--outDir', path.join(stage, 'dist')], root);
  if (!t.equal(build.code, 0, `tsc build:\n${build.out}`)) return;
  const pack = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], stage);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!t.ok(tarball, `npm pack made a tarball:\n${pack.out}`)) return;
  mkdirSync(consumer);
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // The native addon is not needed to type-check (--ignore-scripts skips its build); dependencies come from npm's cache.
  const install = await run(
    'npm',
    ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, tarball!), `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`],
    consumer,
  );
  ready = t.equal(install.code, 0, `npm install of the tarball:\n${install.out}`);
});

function typecheck(files: Record<string, string>): Promise<{ code: number; out: string }> {
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(consumer, name), text);
  return run(
    process.execPath,
    [path.join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', ...Object.keys(files)],
    consumer,
  );
}

const GOOD = `
import {
  LockCoordinator, ERROR_LOCK_VIOLATION, F_GETLK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, OFFSET_MAX,
  type CheckIoRequest, type CloseHandleRequest, type FlushRequest, type LockEntry, type LockEvent,
  type LockFileEvent, type LockFileRequest, type LockReply, type LockRequest, type ReleaseRequest,
  type StartOptions, type Stats, type StoreOptions, type UnlockFileEvent, type UnlockFileRequest,
  type CoordinatorOptions, type CoordinatorStats, type PosixReply,
} from 'locksmith';

const seen: string[] = [];
const options: StartOptions = {
  workers: 2,
  policy: 'fifo',
  hookTimeoutMs: 1000,
  onLockFile: (e: LockFileEvent) => (e.byteOffset + e.length > 100n && e.exclusiveLock ? ERROR_LOCK_VIOLATION : undefined),
  onUnlockFile: async (e: UnlockFileEvent) => { seen.push(\`\${e.fileName} \${e.byteOffset} \${String(e.handle)}\`); },
  onLock: (e: LockEvent) => (e.kind === 'flock' || e.lockStart > OFFSET_MAX - 1n ? -37 : 0),
};
const store: StoreOptions = { url: 'redis://10.0.0.5:6379', namespace: 'vol1', node: 'fs-a', sessionTtlMs: 10_000, requestTimeoutMs: 5_000 };
const old: CoordinatorOptions = { ...options, store };
void old;

export async function main(): Promise<void> {
  const c = await LockCoordinator.start(options);
  const ac = new AbortController();
  const lf: LockFileRequest = { fileName: '/f', byteOffset: 0, length: 10n, exclusiveLock: true, failImmediately: false, handle: 'h1', processId: 7, key: 0, fileContext: { id: 1 }, handleContext: 2, handleInfo: 'x', timeoutMs: 50, signal: ac.signal };
  const code: number = await c.lockFile(lf);
  const uf: UnlockFileRequest = { fileName: '/f', byteOffset: -1, length: -1, handle: 'h1', processId: 7 };
  const u: number = await c.unlockFile(uf);
  const ch: CloseHandleRequest = { fileName: '/f', handle: 'h1' };
  await c.closeHandle(ch);
  const io: CheckIoRequest = { fileName: '/f', handle: 3n, byteOffset: 0, length: 1, write: true };
  const allowed: number = await c.checkIo(io);
  const lr: LockRequest = { path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLKW, lockOwner: 0x7f3an, lockPid: 42, kind: 'ofd', fileHandle: 3, fileContext: [1], timeoutMs: 10, signal: ac.signal };
  const r: LockReply = await c.lock(lr);
  const probe: PosixReply = await c.lock({ path: '/p', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_GETLK, lockOwner: 1 });
  await c.lock({ path: '/p', lockType: F_UNLCK, cmd: F_SETLK, lockOwner: 'o', kind: 'flock' });
  const fl: FlushRequest = { path: '/p', lockOwner: 1 };
  await c.flush(fl);
  const rl: ReleaseRequest = { path: '/p', fileHandle: 3 };
  await c.release(rl);
  await c.release({ path: '/p', fileHandle: 3, lockOwner: 'o' });
  const entries: LockEntry[] = await c.locks('/p');
  const kinds: string[] = entries.map((e) => \`\${e.kind} \${e.type} \${e.start}-\${e.end} \${e.state}\`);
  const s: Stats = await c.stats();
  const s2: CoordinatorStats = s;
  const waiting: number = s.waiting + s2.inFlight + s.workers[0]!.restarts;
  const lockStart: bigint = r.lockStart + probe.lockLen;
  void [code, u, allowed, kinds, waiting, lockStart];
  await c.stop();
}
`;

/**
 * Patterns of consumer code the types must keep taking (found by review, issue 13): union types
 * for "both Windows hooks or neither" and "a range unless flock" refused every one of them (an
 * interface cannot extend a union, a class cannot implement one, a conditional, a spread, Partial
 * or Omit loses the pairing, a variable narrowed refuses a field set later). The run time refuses
 * one hook alone and a missing range, with a TypeError naming it.
 */
const PATTERNS = `import { F_SETLK, F_WRLCK, type LockCoordinator, type LockFileEvent, type LockRequest, type StartOptions, type UnlockFileEvent } from 'locksmith';

declare const windows: boolean;
declare const onLF: (e: LockFileEvent) => number;
declare const onULF: (e: UnlockFileEvent) => void;

export const ternary: StartOptions = { workers: 2, onLockFile: windows ? onLF : undefined, onUnlockFile: windows ? onULF : undefined };
export const spread: StartOptions = { workers: 2, ...(windows ? { onLockFile: onLF, onUnlockFile: onULF } : {}) };
const later: StartOptions = { workers: 2 };
if (windows) later.onLockFile = onLF;
if (windows) later.onUnlockFile = onULF;
export function withDefaults(o: Partial<StartOptions>): StartOptions { return { workers: 1, ...o }; }
export interface AppOptions extends StartOptions { label: string }
export interface TracedLock extends LockRequest { traceId: string }
export class Opts implements StartOptions { workers = 1; }
export type NoPath = Omit<LockRequest, 'path'>;
const base: NoPath = { lockType: F_WRLCK, cmd: F_SETLK, lockOwner: 1, lockStart: 0, lockLen: 0 };
export const full: LockRequest = { ...base, path: '/p' };
export async function lockAs(c: LockCoordinator, r: Omit<LockRequest, 'lockOwner'>) { return c.lock({ ...r, lockOwner: 7 }); }
const r: LockRequest = { path: '/p', lockType: F_WRLCK, cmd: F_SETLK, lockOwner: 1, lockStart: 0, lockLen: 0 };
if (windows) r.kind = 'flock';
`;

t.test('a strict consumer compiles a correct use of every type, and the usual ways to build options', async (t) => {
  if (!ready) return t.fail('the package did not install');
  const r = await typecheck({ 'good.ts': GOOD, 'patterns.ts': PATTERNS });
  t.equal(r.code, 0, `tsc --strict --noEmit good.ts patterns.ts:\n${r.out}`);
});

t.test('a misspelled field is a compile error naming it', async (t) => {
  if (!ready) return t.fail('the package did not install');
  const bad = (body: string): string => `import { LockCoordinator, F_SETLKW, F_WRLCK } from 'locksmith';\nexport async function main(): Promise<void> {\n  const c = await LockCoordinator.start();\n  ${body}\n}\n`;
  const r = await typecheck({
    'bad-timeout.ts': bad(`await c.lockFile({ fileName: '/f', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: false, handle: 1, timeoutMS: 1000 });`),
    'bad-filename.ts': bad(`await c.unlockFile({ filename: '/f', byteOffset: 0, length: 1, handle: 1 });`),
    'bad-offset.ts': bad(`await c.lock({ path: '/p', lockType: F_WRLCK, offset: 0, lockLen: 1, cmd: F_SETLKW, lockOwner: 1 });`),
    'bad-hook.ts': `import { LockCoordinator } from 'locksmith';\nawait LockCoordinator.start({ onLock: (e) => (e.lockOwnr === 1 ? -1 : 0) });\n`,
  });
  t.not(r.code, 0, 'tsc fails');
  t.match(r.out, /bad-timeout\.ts\(\d+,\d+\): error TS2561: .*'timeoutMS'.*'LockFileRequest'.*Did you mean.*'timeoutMs'/, `timeoutMS is named:\n${r.out}`);
  t.match(r.out, /bad-filename\.ts\(\d+,\d+\): error TS2561: .*'filename'.*'UnlockFileRequest'.*'fileName'/, 'filename is named');
  t.match(r.out, /bad-offset\.ts\(\d+,\d+\): error TS2353: .*'offset'.*'LockRequest'/, 'offset is named');
  t.match(r.out, /bad-hook\.ts\(\d+,\d+\): error TS2551: Property 'lockOwnr' does not exist on type 'LockEvent'/, 'a hook event field is typed');
});
