/**
 * A worker dies, and this node's session is lost before its replacement learned which locks its
 * predecessor took: those locks went with the session, and the handles that held them are told so
 * (checkIo 33), as a live worker's are (SharedFiles.recoverLost, HostInit.shared.predecessor). One
 * node as a LockCoordinator in this process, over a real redis-server this file starts. Every wait
 * is for an event (a session event, the worker's replacement, an answer), within HANG_MS.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis, within } from '../store/redis-server.js';
import { HANG_MS, replacementLaunched, sessionEvents } from './helpers.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const win = (fileName: string, handle: number) => ({ fileName, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle, processId: 1 });
const io = (fileName: string, handle: number) => ({ fileName, handle, processId: 1, byteOffset: 0, length: 10, write: true });

// a's handle 1 locks /w through worker k. The engine stops answering: a's session expires (its
// workers are told: session 0, none for now) and the next cannot open yet. Worker k dies then: its
// replacement starts with no session, and learns of the new one, once the engine answers again,
// as a new session ('lost'), not as the one its predecessor's lock was taken under. Before, it
// read only the session it started on: nothing, and handle 1's I/O went on (checkIo 0) with its
// lock gone. A single node: the old session's records are reaped by this node only, whose
// reaping in the replacement waits for its reading (another node's could remove them first,
// unseen). A long requestTimeoutMs: crashWorker resolves once the replacement read its
// predecessor's session (its first stats() waits for that up to requestTimeoutMs), which the
// paused engine answers once resumed.
t.test('a worker replaced while its session was lost: the handle that held a lock through it is told its lock is lost (checkIo 33)', { skip: noRedis }, async (t) => {
  const namespace = `rwl-${randomUUID().slice(0, 8)}`;
  const a = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: 1000, requestTimeoutMs: 60_000 } });
  t.teardown(() => a.stop());
  /** A session event of `kind` (from a's start). */
  const seen = sessionEvents(a);
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  const first = (await a.stats()).store!.session.epoch;
  const k = routeOf('/w', 2);

  server.pause();
  let resumed = false;
  t.teardown(() => (resumed ? undefined : server.resume()));
  await seen('expired');
  // The replacement is launched (onWorkerEnd warns just before) while a has no session.
  const replaced = replacementLaunched(`worker ${k}'s replacement`);
  const crashed = a.crashWorker(k);
  await replaced;
  server.resume();
  resumed = true;
  await within(crashed, HANG_MS, 'crashWorker: the replacement answers once it read what its predecessor held');
  await seen('lost');
  const now = (await a.stats()).store!;
  t.not(now.session.epoch, first, `a acts on a new session (${first} -> ${now.session.epoch})`);

  t.equal(await a.checkIo(io('/w', 1)), 33, "handle 1's lock went with the lost session: its I/O fails (33)");
  t.equal(await a.checkIo(io('/w', 2)), 0, 'handle 2 held nothing: its I/O goes on');
  t.equal((await a.stats()).faults, 0, 'no fault: the old session was read to its end');
  await a.closeHandle({ fileName: '/w', handle: 1 });
  t.equal(await a.lockFile(win('/w', 1)), 0, 'a handle 1 opened again locks /w');
  t.equal(await a.checkIo(io('/w', 1)), 0, 'and its I/O goes on');
});

// The normal case beside it: the engine restarts (a's session is carried over: its locks go back
// in the grace period), worker k hears of the new session and says so, then dies. Its replacement
// reads that session only: nothing of an older one is missing or reported, and a's lock holds.
t.test('a worker that heard of the new session before it died: its replacement reads only that one', { skip: noRedis }, async (t) => {
  const namespace = `rwl-${randomUUID().slice(0, 8)}`;
  const a = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: 6000 } });
  t.teardown(() => a.stop());
  let resetSeen!: () => void;
  const reset = new Promise<void>((resolve) => (resetSeen = resolve));
  a.onStoreSession((e) => {
    if (e.kind === 'reset') resetSeen();
  });
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  const k = routeOf('/w', 2);
  await server.restart();
  await within(reset, HANG_MS, "a's session carried over the engine's restart");
  // Sent after the session's message on worker k's port, and decided once /w's re-assertion is
  // back: answered after worker k's word that it acts on the session (said once its locks are back).
  t.equal(await a.lockFile(win('/w', 2)), 33, "worker k answers: a's handle 1 holds /w (handle 2 cannot lock it)");
  await within(a.crashWorker(k), HANG_MS, 'crashWorker');
  t.equal((await a.stats()).faults, 0, 'no fault: no older session to read');
  t.equal(await a.checkIo(io('/w', 1)), 0, "a's lock was put back: its I/O goes on");
});
