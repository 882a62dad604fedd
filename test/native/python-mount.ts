/**
 * One mount served by the test's own process, for the test files whose processes on it are python3:
 * whether it can work here (skipping outside CI, saying why loudly; with CI set, failing), and the
 * mount itself, made with the daemon's umask 022 (a library's process: the daemon does not change
 * it) and removed after the test.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseUnavailable, mountFuse, type FuseMount } from '../../src/index.js';
import { forceUnmount, mountEnvironmentMissing } from './proc.js';

const noPython = (): string | undefined => {
  try {
    execFileSync('python3', ['-c', 'import os'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no python3 for the processes on the mount';
  }
};

/**
 * Whether test file `file` is skipped: outside CI when a mount or python3 (or what `more` names)
 * cannot work here, saying why loudly; with CI set it is not skipped, and its tests fail instead.
 */
export function skipWithoutPythonMount(file: string, more?: () => string | undefined): boolean {
  const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? noPython() ?? more?.();
  if (why !== undefined && !process.env.CI) {
    const bar = '!'.repeat(100);
    console.error(`\n${bar}\n!! SKIPPING ${file}: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
    t.plan(0, `unavailable here: ${why}`);
    return true;
  }
  if (why !== undefined) t.fail(`required in CI but unavailable: ${why}`);
  return false;
}

export interface PythonMount {
  readonly base: string;
  readonly backing: string;
  readonly mnt: string;
  readonly mount: FuseMount;
}

/**
 * A mount of a new backing directory in a temporary directory named after `prefix`, this
 * process's umask 022 while it serves; unmounted, the umask restored and the directory removed at
 * `t`'s teardown. `threads`: the mount's reader threads (default: the mount's).
 */
export async function pythonMount(t: Test, prefix: string, o: { threads?: number } = {}): Promise<PythonMount> {
  const base = mkdtempSync(join(tmpdir(), prefix));
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const umask = process.umask(0o022);
  const mount = await mountFuse({ backing, mountpoint: mnt, workers: 1, ...(o.threads === undefined ? {} : { threads: o.threads }) });
  t.teardown(async () => {
    await mount.unmount();
    forceUnmount(mnt);
    process.umask(umask);
    rmSync(base, { recursive: true, force: true });
  });
  return { base, backing, mnt, mount };
}
