/**
 * locksmith's version, read from its package.json at run time (not copied in at build time), so
 * `--version` always names the package that is installed. Works from src/ (tests) and dist/src/.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The "version" of the nearest package.json named "locksmith" above this file, or "unknown". */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'locksmith' && typeof pkg.version === 'string') {
        cached = pkg.version;
        return cached;
      }
    } catch {
      // no (readable) package.json here: look further up
    }
    const up = dirname(dir);
    if (up === dir) {
      cached = 'unknown';
      return cached;
    }
    dir = up;
  }
}

/** The line every `--version` prints. */
export function versionLine(): string {
  return `locksmith ${packageVersion()}\n`;
}
