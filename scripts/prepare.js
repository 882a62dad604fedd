#!/usr/bin/env node
/**
 * npm's `prepare` script: compiles the TypeScript (`npm run build`) after an install in a clone.
 * `npx locksmith` in a clone installs the clone into npx's cache as a link and runs `prepare` there
 * too; a clone that is already built is left as it is (`npm run build` or `npm run stress` rebuild).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
if (process.env.npm_command === 'exec' && existsSync(join(root, 'dist', 'src', 'cli.js'))) process.exit(0);
const npm = process.env.npm_execpath;
const r = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: root, stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
process.exit(r.status ?? 1);
