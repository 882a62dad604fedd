/**
 * A lock that went with a lost session leaves its handle failing I/O (checkIo 33, EIO through a
 * mount) until the handle closes (API.md, fencing), and a worker's death is no close: what its
 * replacement says of a handle must be what the dead worker said. The replacement learns of a lost
 * session's locks from that session's index only when its predecessor died before it heard the
 * session was lost (SharedFiles.recoverLost, HostInit.shared.predecessor, Worker.session). The
 * cases here are the others:
 * - the worker heard of the new session, counted its locks lost, said so ('adopted'), then died:
 *   its replacement has no predecessor's session to read (the caller keeps the last word, the new
 *   session), and the lost session's records are reaped by then;
 * - the replacement that read its predecessor's lost session dies in turn: its own replacement
 *   starts on the new session, and the index it could read is reaped;
 * - the predecessor answered the handle's close while the session was gone (nothing to commit),
 *   then died: its replacement reads the lost session's index, whose record of the closed handle
 *   is not reaped yet, and tells the handle lost. A handle opened next under that number fails
 *   its I/O for a lock it never had.
 * What each worker knows of its lost handles (SharedFiles.lostHandles), and of the closes since,
 * would die with it: the caller keeps it per worker index ('lostHandles', 'lostClosed';
 * Workers.lostOf) and gives it to the replacement (HostInit.shared.lost). One node as a LockCoordinator in this process, over a real redis-server this file
 * starts; the engine paused to let a's session expire. Every wait is for an event (a session
 * event, a worker's replacement, an answer), within HANG_MS.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
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

/** Node a (2 workers, short session, long requestTimeoutMs) with its session events; handle 1 locks /w through worker k. */
async function start(t: Test) {
  const namespace = `rwh-${randomUUID().slice(0, 8)}`;
  const a = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: 1000, requestTimeoutMs: 60_000 } });
  t.teardown(() => a.stop());
  /** A session event of `kind` (from a's start). */
  const seen = sessionEvents(a);
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  const k = routeOf('/w', 2);
  let paused = false;
  t.teardown(() => (paused ? server.resume() : undefined));
  /** The engine stops answering until a's session expired (the workers told: session 0). */
  const expire = async (): Promise<void> => {
    server.pause();
    paused = true;
    await seen('expired');
  };
  const resume = (): void => {
    paused = false;
    server.resume();
  };
  /** Resolves once worker k's replacement was launched (onWorkerEnd warns just before). */
  const replacing = (): Promise<void> =>
    replacementLaunched(`worker ${k}'s replacement`);
  return { a, k, seen, expire, resume, replacing };
}

t.test("a worker that heard its session was lost, then died: its replacement still fails the lost lock's handle (checkIo 33)", { skip: noRedis }, async (t) => {
  const { a, k, seen, expire, resume } = await start(t);
  await expire();
  resume();
  await seen('lost');
  // Sent after the session's message on worker k's port: its answer comes after its 'adopted'.
  t.equal(await a.checkIo(io('/w', 1)), 33, 'worker k counted the lock lost: I/O through handle 1 fails');
  await within(a.crashWorker(k), HANG_MS, "crashWorker: worker k's replacement answers");
  t.equal(await a.checkIo(io('/w', 1)), 33, 'after the replacement, handle 1 (never closed) still fails its I/O');
  t.equal((await a.stats()).faults, 0, 'nothing reported');
});

t.test("a replacement that read its predecessor's lost session dies too: its replacement still fails the handle (checkIo 33)", { skip: noRedis }, async (t) => {
  const { a, k, seen, expire, resume, replacing } = await start(t);
  await expire();
  const replaced = replacing();
  const crashed = a.crashWorker(k);
  await replaced;
  resume();
  await within(crashed, HANG_MS, 'crashWorker: the replacement answers once it read what its predecessor held');
  await seen('lost');
  t.equal(await a.checkIo(io('/w', 1)), 33, "the replacement read its predecessor's session: handle 1's I/O fails");
  await within(a.crashWorker(k), HANG_MS, "crashWorker: the replacement's replacement answers");
  t.equal(await a.checkIo(io('/w', 1)), 33, 'after the second replacement, handle 1 (never closed) still fails its I/O');
  t.equal((await a.stats()).faults, 0, 'nothing reported');
});

t.test('a handle whose close the predecessor answered while the session was gone is not told lost by its replacement', { skip: noRedis }, async (t) => {
  const { a, k, seen, expire, resume, replacing } = await start(t);
  await expire();
  // Worker k counted handle 1's lock lost (session 0), and answers its close: nothing to commit.
  t.equal(await a.checkIo(io('/w', 1)), 33, "handle 1's lock went with the session: its I/O fails");
  // (Until a new session opens, every checkIo gets the generic code: nothing is answered from what the old one held.)
  await a.closeHandle({ fileName: '/w', handle: 1 });
  const replaced = replacing();
  const crashed = a.crashWorker(k);
  await replaced;
  resume();
  await within(crashed, HANG_MS, 'crashWorker: the replacement answers once it read what its predecessor held');
  await seen('lost');
  t.equal(await a.checkIo(io('/w', 1)), 0, 'after the replacement, the handle opened under number 1 is not told of a lock it never had');
  t.equal(await a.lockFile(win('/w', 1)), 0, 'it locks /w');
  t.equal(await a.checkIo(io('/w', 1)), 0, 'and its I/O goes on');
  t.equal((await a.stats()).faults, 0, 'nothing reported');
});
