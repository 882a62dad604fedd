/**
 * The kernel comparison: the same POSIX client processes and streams on a tmpfs directory, locks
 * decided by the kernel's own fs/locks.c. Windows clients have no kernel counterpart and sit out.
 * The oracle checks the kernel too (it should find nothing; it is a check of the oracle as well).
 */
import { existsSync, statfsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Naming } from '../observer.js';
import { Stage, type Progress, type StageResult, type StageSpec } from '../stage.js';
import { driveClients } from './process.js';

const TMPFS_MAGIC = 0x01021994;

/** /dev/shm when it is a tmpfs, else the temp directory. */
function scratch(): string {
  return existsSync('/dev/shm') && statfsSync('/dev/shm').type === TMPFS_MAGIC ? '/dev/shm' : tmpdir();
}

export async function runKernel(spec: StageSpec, onProgress?: (p: Progress) => void): Promise<StageResult> {
  // The kernel detects deadlocks among classic owners only, but its walk passes through OFD holders.
  const stage = new Stage(spec, ['posix', 'ofd'], onProgress);
  const dir = await mkdtemp(join(scratch(), 'locksmith-stress-kernel-'));
  const stopSampling = stage.startSampling();
  try {
    const naming = (pidOf: (c: number) => number): Naming => ({
      file: (i) => `kernel:f${i}`,
      classicPids: (c) => [pidOf(c)],
      ofdPids: () => [-1],
      windowsPids: () => [],
      closeDropsClassic: true,
    });
    const clientsRun = await driveClients(stage, dir, naming);
    if (clientsRun < spec.clients) stage.notes.push(`${spec.clients - clientsRun} Windows clients sat out (the kernel has no Windows locks)`);
    stage.notes.push(`files on ${dir.startsWith('/dev/shm') ? 'tmpfs (/dev/shm)' : dir}`);
    return stage.result(stage.close(), clientsRun);
  } finally {
    stopSampling();
    await rm(dir, { recursive: true, force: true });
  }
}
