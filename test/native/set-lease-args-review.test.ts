/**
 * Review of 6d03fc2: pump.setLease keeps a raw pointer into the lease's memory for the session's
 * threads. The native side accepts any Float64Array of 3: one over a plain ArrayBuffer can be
 * transferred (detached) while the mount's threads go on reading the freed memory, and a second
 * call replaces (and releases) the array a reader may be loading from (the header says "set once").
 * Needs root and /dev/fuse; skipped (loudly) without them.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pump from '../../src/native/index.js';
import { fuseUnavailable } from '../../src/index.js';
import { forceUnmount, mountEnvironmentMissing } from './proc.js';

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined) {
  console.error(`\n!! SKIPPING ${import.meta.url}: ${why}\n`);
  t.plan(0, why);
} else {
  const base = mkdtempSync(join(tmpdir(), 'locksmith-set-lease-'));
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  for (const d of [backing, mnt]) mkdirSync(d);
  process.on('exit', () => forceUnmount(mnt));
  const sid = pump.mount({ backing, mountpoint: mnt, destinations: 1, threads: 2 });
  t.teardown(() => {
    pump.unmount(sid);
    forceUnmount(mnt);
    rmSync(base, { recursive: true, force: true });
  });

  t.test('setLease refuses a lease its threads cannot keep reading', async (t) => {
    t.throws(() => pump.setLease(sid, new Float64Array(3)), /SharedArrayBuffer/, 'a Float64Array over a plain (transferable) ArrayBuffer is refused');
    const lease = new Float64Array(new SharedArrayBuffer(24));
    t.doesNotThrow(() => pump.setLease(sid, lease), 'a shared lease is taken');
    t.throws(() => pump.setLease(sid, new Float64Array(new SharedArrayBuffer(24))), /once|already/, 'a second lease for the same session is refused');
  });
}
