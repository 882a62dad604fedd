/**
 * The mount target: the runner mounts a FUSE passthrough whose locks locksmith decides
 * (mountFuse), then client processes call fcntl and flock on files of the mount, while the
 * workload's Windows clients call the mount's coordinator on the same files (by their lock keys),
 * so both families meet. The mount is always undone: on success, on error, on SIGINT, and at exit
 * as a last resort (fusermount3 -u -z).
 *
 * Over FUSE every byte-range owner (classic or OFD) reaches the server as a POSIX owner with
 * deadlock detection (SEMANTICS-POSIX.md §12.6); F_GETLK shows an OFD holder's pid, F_OFD_GETLK -1.
 */
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forceUnmount, fuseUnavailable, mountFuse } from '../../src/mount.js';
import type { Naming } from '../observer.js';
import { Stage, type Progress, type StageResult, type StageSpec } from '../stage.js';
import { driveClients, processUnavailable } from './process.js';

/**
 * How long after close(2) returns the OFD and flock locks of a descriptor on the mount may still
 * be listed (Naming.releaseListedNs): close returns before the kernel's RELEASE, sent in the
 * background, is answered. Without a store nothing is owed and nothing waits for an engine: the
 * RELEASE waits only for a worker of this process to read it and the lock table to apply it, a lag
 * of scheduling alone, so the bound is the one the oracle's stuck-waiter check gives that lag by
 * default (5 s), generous on a loaded machine.
 */
const MOUNT_CLOSE_LISTED_NS = 5e9;

export async function mountUnavailable(): Promise<string | undefined> {
  const why = fuseUnavailable();
  if (why !== undefined) return why;
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/fuse is missing or not accessible';
  }
  if (process.getuid?.() !== 0) return 'mounting FUSE here needs root';
  return processUnavailable();
}

/** Why locks on a mount would not reach locksmith (the kernel did not grant FUSE's lock capabilities), or undefined. */
export function lockCapabilitiesMissing(info: { posixLocks?: boolean; flockLocks?: boolean }): string | undefined {
  // Undefined (not known) counts as not granted, as `!info.posixLocks` did.
  if (info.posixLocks === true && info.flockLocks === true) return undefined;
  return 'the kernel did not grant the FUSE lock capabilities, so locks on the mount would not reach locksmith';
}

/** Why the nodes target runs without mounts (FUSE missing here, or --no-mounts), or undefined when they run. */
export async function nodesMountsUnavailable(o: { mounts?: boolean }): Promise<string | undefined> {
  if (o.mounts === false) return 'turned off (--no-mounts)';
  return mountUnavailable();
}

export async function runMount(spec: StageSpec, onProgress?: (p: Progress) => void): Promise<StageResult> {
  const stage = new Stage(spec, ['posix', 'ofd'], onProgress);
  const base = await mkdtemp(join(tmpdir(), 'locksmith-stress-mount-'));
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  await Promise.all([mkdir(backing), mkdir(mnt)]);
  const keys: string[] = [];
  for (let i = 0; i < spec.files; i++) {
    await writeFile(join(backing, `f${i}`), '');
    const st = await stat(join(backing, `f${i}`));
    keys.push(`fuse:${st.dev}:${st.ino}`);
  }
  const atExit = () => forceUnmount(mnt);
  process.on('exit', atExit);
  const m = await mountFuse({ backing, mountpoint: mnt, workers: spec.workers });
  const stopSampling = stage.startSampling(async () => (await m.coordinator.stats()).waiting);
  try {
    const missing = lockCapabilitiesMissing(m.info());
    if (missing !== undefined) throw new Error(missing);
    // F_OFD_GETLK over FUSE shows -1 for any holder; the kernel shows a pid outside the caller's
    // namespace (a Windows processId) as 0.
    const naming = (pidOf: (c: number) => number): Naming => ({
      file: (i) => keys[i]!,
      classicPids: (c) => [pidOf(c), -1],
      ofdPids: (c) => [-1, pidOf(c)],
      windowsPids: (c) => [20000 + c, 0, -1],
      closeDropsClassic: true,
      releaseListedNs: MOUNT_CLOSE_LISTED_NS,
    });
    const clientsRun = await driveClients(stage, mnt, naming, m.coordinator);
    const oracle = stage.close();
    const after = m.info();
    stage.notes.push(`FUSE: ${after.events} lock events, ${after.interrupts ?? 0} interrupts`);
    return stage.result(oracle, clientsRun);
  } finally {
    stopSampling();
    await m.unmount();
    forceUnmount(mnt);
    process.removeListener('exit', atExit);
    await rm(base, { recursive: true, force: true });
  }
}
