/**
 * The synthetic native source through the actors (no FUSE needed): every event the native threads
 * generate is decided by a worker's LockTable and answered natively, exactly once; a worker that
 * dies, or a coordinator that stops, while native threads are delivering never takes the process
 * down and strands no request.
 */
import t from 'tap';
import { LockCoordinator } from '../../src/caller/coordinator.js';
import { routeOf } from '../../src/wire/route.js';
import { runSynthetic } from '../../src/mount.js';
import * as pump from '../../src/native/index.js';
import { until } from '../native/proc.js';

const why = pump.nativeAvailable().ok ? undefined : pump.nativeAvailable().reason;
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/actors/native-session.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `native addon unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`the native addon is required in CI but unavailable: ${why}`);

  t.test('runSynthetic: every event is decided by the actors and answered once', async (t) => {
    const r = await runSynthetic({ workers: 2, threads: 2, files: 16, opsPerThread: 20_000, window: 256 });
    t.equal(r.generated, 40_000);
    t.equal(r.replied, 40_000, 'every request answered');
    t.equal(r.info.outstanding, 0);
    t.equal(r.info.errors, 0, 'no lock was refused: each producer is its own owner on its own lock/unlock pairs');
    t.ok(r.opsPerSecond > 0);
  });

  t.test('the workers hold the locks the native requests took, visible in locks()', async (t) => {
    const c = await LockCoordinator.start({ workers: 2 });
    t.teardown(() => c.stop());
    // One producer, one event: a write lock on synth:0 that is never unlocked.
    const sid = pump.synthStart({ destinations: 2, threads: 1, files: 1, opsPerThread: 1 });
    t.teardown(() => void pump.synthStop(sid));
    await c.attachNative(sid);
    await until('the reply', () => pump.synthStats(sid).done);
    const locks = await c.locks('synth:0');
    t.match(locks, [{ path: 'synth:0', kind: 'posix', type: 'write', state: 'granted', owner: 1n }], 'owner 1 holds synth:0');
    const other = await c.lock({ path: 'synth:0', lockType: 1, lockStart: 0, lockLen: 0, cmd: 6, lockOwner: 99 });
    t.equal(other.result, -11, 'an API caller conflicts with the native owner: one lock table');
  });

  t.test('a worker crash loses no lock a native request took: the journal rebuilds it', async (t) => {
    const c = await LockCoordinator.start({ workers: 2 });
    t.teardown(() => c.stop());
    const sid = pump.synthStart({ destinations: 2, threads: 1, files: 1, opsPerThread: 1 });
    t.teardown(() => void pump.synthStop(sid));
    await c.attachNative(sid);
    await until('the reply', () => pump.synthStats(sid).done);
    await c.crashWorker(routeOf('synth:0', 2));
    t.equal((await c.stats()).workerRestarts, 1);
    t.match(await c.locks('synth:0'), [{ kind: 'posix', type: 'write', state: 'granted', owner: 1 }], 'owner 1 still holds synth:0');
    const other = await c.lock({ path: 'synth:0', lockType: 1, lockStart: 0, lockLen: 0, cmd: 6, lockOwner: 99 });
    t.equal(other.result, -11, 'and an API caller still conflicts with it');
  });

  t.test('a native unlock that empties a file the API journaled drops that journal (no lock comes back after a crash)', async (t) => {
    const c = await LockCoordinator.start({ workers: 2 });
    t.teardown(() => c.stop());
    // Owner 1 through the API, before the pump is attached: the coordinator journals this lock
    // (bytes 0-4095, the range the synthetic source locks and unlocks).
    const api = await c.lock({ path: 'synth:0', lockType: 1, lockStart: 0, lockLen: 4096, cmd: 6, lockOwner: 1 });
    t.equal(api.result, 0);
    // The synthetic producer is POSIX owner 1 too: its lock replaces that one, its unlock frees the file.
    const sid = pump.synthStart({ destinations: 2, threads: 1, files: 1, opsPerThread: 2 });
    t.teardown(() => void pump.synthStop(sid));
    await c.attachNative(sid);
    await until('both replies', () => pump.synthStats(sid).done);
    t.same(await c.locks('synth:0'), [], 'the file is free');
    await c.crashWorker(routeOf('synth:0', 2));
    t.same(await c.locks('synth:0'), [], 'and still free on the replacement: the stale journal was dropped');
  });

  t.test('a worker crash while native threads deliver: no process crash, every request answered', async (t) => {
    const c = await LockCoordinator.start({ workers: 2 });
    t.teardown(() => c.stop());
    const sid = pump.synthStart({ destinations: 2, threads: 2, files: 64, opsPerThread: 60_000, window: 128 });
    t.teardown(() => void pump.synthStop(sid));
    await c.attachNative(sid);
    await until('traffic', () => pump.synthStats(sid).replied > 5_000);
    await c.crashWorker(0);
    await until('every reply after the crash', () => pump.synthStats(sid).done);
    const s = pump.synthStats(sid);
    t.equal(s.generated, 120_000);
    t.equal(s.replied, 120_000, 'every request was answered exactly once, across the crash');
    t.equal((await c.stats()).workerRestarts, 1, 'the replacement took over the destination');
    t.equal(pump.synthStats(sid).attached, 2);
  });

  t.test('stopping the coordinator while native threads deliver never crashes the process', async (t) => {
    const c = await LockCoordinator.start({ workers: 2 });
    const sid = pump.synthStart({ destinations: 2, threads: 2, files: 64, window: 128 });
    await c.attachNative(sid);
    await until('traffic', () => pump.synthStats(sid).replied > 5_000);
    await c.stop();
    const atStop = pump.synthStats(sid);
    t.equal(atStop.attached, 0, 'no worker is attached after stop()');
    const last = pump.synthStop(sid);
    t.ok(last.generated! >= atStop.generated!, 'the source stopped cleanly afterwards');
    t.pass('the process is alive');
  });
}
