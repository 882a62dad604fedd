#!/usr/bin/env node
/**
 * npm's `install` script: builds the native addon (binding.gyp -> build/Release/locksmith_native.node).
 *
 * - Skips the build when the addon is up to date: newer than binding.gyp and src/native/*, and built
 *   with the libfuse 3 that `pkg-config fuse3` finds now (or without it, when it finds none). `npx
 *   locksmith` in a clone installs the clone into npx's cache as a link and runs this script there:
 *   it must not wipe and rebuild a working addon (an interrupted rebuild would leave it missing).
 *   Under `npx` an existing addon is kept even when stale; `npm rebuild locksmith` (a dependency) and
 *   `npm run build:native` (a clone: `--force`) always build.
 * - A failed build does not fail the install: the coordinator is pure JavaScript and works without
 *   the addon. It prints one line saying what to install and what to run, and exits 0. Only the
 *   native parts (FUSE mount, native pump) then refuse, with the same line.
 * - Except where the addon is required: LOCKSMITH_REQUIRE_NATIVE=1, or CI set in a clone (not an
 *   install as a dependency): there a failed build fails the install, with node-gyp's output.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const addon = join(root, 'build', 'Release', 'locksmith_native.node');
const stamp = join(root, 'build', 'locksmith-build.json');
const APT = 'apt-get install build-essential python3 pkg-config libfuse3-dev fuse3';

const env = process.env;
const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
const asDependency = root.split(sep).includes('node_modules');
const required = truthy(env.LOCKSMITH_REQUIRE_NATIVE) || (truthy(env.CI) && !asDependency);
const explicit = process.argv.includes('--force');
const force = explicit || env.npm_command === 'rebuild';
// What rebuilds it: npm rebuild runs a dependency's install script, not the root project's.
const RERUN = asDependency ? 'npm rebuild locksmith' : 'npm run build:native';

function haveFuse() {
  return spawnSync('pkg-config', ['--exists', 'fuse3'], { stdio: 'ignore' }).status === 0;
}

function nativeSources() {
  const native = join(root, 'src', 'native');
  return [join(root, 'binding.gyp'), ...readdirSync(native).filter((f) => /\.(cc|h)$/.test(f)).sort().map((f) => join(native, f))];
}

function newestSource() {
  return Math.max(...nativeSources().map((f) => statSync(f).mtimeMs));
}

/**
 * What the addon was built from: sha256 over binding.gyp and src/native/*.{cc,h}, sorted by name.
 * src/native/index.ts computes the same when it loads the addon and refuses a stale one (built from
 * other sources: a pull without a rebuild), which would otherwise lack what the TypeScript expects.
 */
function sourcesHash() {
  const h = createHash('sha256');
  for (const f of nativeSources()) h.update(readFileSync(f));
  return h.digest('hex');
}

/** Why the addon must be built, or undefined when the one there will do. */
function reasonToBuild() {
  if (force) return 'asked to rebuild';
  if (!existsSync(addon)) return 'not built yet';
  if (env.npm_command === 'exec') return undefined;
  if (statSync(addon).mtimeMs < newestSource()) return 'sources changed';
  let built;
  try {
    built = JSON.parse(readFileSync(stamp, 'utf8'));
  } catch {
    return 'no build record';
  }
  // The record names the sources it was built from: the loader refuses an addon whose record differs.
  if (built.sources !== sourcesHash()) return 'sources changed';
  return built.fuse === haveFuse() ? undefined : haveFuse() ? 'libfuse 3 is now installed' : 'libfuse 3 is gone';
}

function nodeGyp(args, stdio) {
  // Inside an npm script npm names its own node-gyp; outside one, node-gyp must be on PATH.
  const gyp = env.npm_config_node_gyp;
  return gyp ? spawnSync(process.execPath, [gyp, ...args], { cwd: root, stdio }) : spawnSync('node-gyp', args, { cwd: root, stdio });
}

if (process.platform === 'win32') {
  process.stderr.write('locksmith: the native addon (FUSE mount, native pump) is Linux-only; the coordinator needs none\n');
  process.exit(0);
}
const why = reasonToBuild();
if (why === undefined) process.exit(0);

const fuse = haveFuse();
process.stderr.write(`locksmith: building the native addon (${why}; ${fuse ? 'with' : 'without'} FUSE), about a minute\n`);
const shown = required || explicit;
const r = nodeGyp(['rebuild'], shown ? 'inherit' : 'pipe');
if (r.status === 0) {
  writeFileSync(stamp, `${JSON.stringify({ fuse, sources: sourcesHash() })}\n`);
  if (!fuse) process.stderr.write(`locksmith: built without FUSE (no libfuse3-dev): for \`locksmith mount\`, ${APT}, then ${RERUN}\n`);
  process.exit(0);
}

let log = '';
if (!shown) {
  const dir = existsSync(join(root, 'build')) ? join(root, 'build') : tmpdir();
  log = join(dir, 'locksmith-node-gyp.log');
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(log, Buffer.concat([r.stdout ?? Buffer.alloc(0), r.stderr ?? Buffer.alloc(0)]));
  } catch {
    log = '';
  }
}
const cause = r.error ? `node-gyp did not start: ${r.error.message}` : `node-gyp failed${log ? `, see ${log}` : ''}`;
process.stderr.write(
  `locksmith: native addon not built (${cause}); the coordinator works without it, FUSE mount and native pump need it: ${APT}, then ${RERUN}\n`,
);
process.exit(required ? 1 : 0);
