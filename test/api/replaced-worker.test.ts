/**
 * A worker replaced after a crash, in a shared lock space (SharedConfig.blank is false for it: its
 * predecessor's locks may be in the engine, so its first release of a file asks the engine). Two nodes as LockCoordinators with a `store`
 * in this process, over a real redis-server this file starts on a free port. Model: the kernel,
 * where a lock is held until its owner releases it or closes, whatever happens to the threads
 * deciding it, and no two conflicting locks are ever granted.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { LockCoordinator } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { HANG_MS } from './helpers.js';

let server: RedisServer;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const win = (fileName: string, handle: number) => ({ fileName, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: true, handle, processId: 1 });

/** Asks again until `pred` holds (within HANG_MS: a hang, never a slow machine). */
async function _until<T>(ask: () => Promise<T>, pred: (x: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + HANG_MS;
  for (;;) {
    const x = await ask();
    if (pred(x)) return x;
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${HANG_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function pair(t: Test, ttl: number): Promise<[LockCoordinator, LockCoordinator]> {
  const namespace = `rw-${randomUUID().slice(0, 8)}`;
  const a = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'a', sessionTtlMs: ttl } });
  const b = await LockCoordinator.start({ workers: 2, store: { url: server.url, namespace, node: 'b', sessionTtlMs: ttl } });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return [a, b];
}

// Held: a's handle 1 locks /w through worker k; worker k dies, and its replacement (not blank)
// asks the engine at the handle's close, which releases the lock.
t.test("a close through a replaced worker releases the lock its predecessor took", { skip: noRedis }, async (t) => {
  const [a, b] = await pair(t, 2000);
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  await a.crashWorker(routeOf('/w', 2));
  await a.closeHandle({ fileName: '/w', handle: 1 });
  t.equal(await b.lockFile(win('/w', 2)), 0, "b locks /w: a's close released its lock");
});

/** sessionTtlMs of nodes whose sessions must outlive an engine restart (several-nodes.test.ts RESTART_TTL_MS). */
const RESTART_TTL_MS = 6000;

const io = (fileName: string, handle: number) => ({ fileName, handle, processId: 1, byteOffset: 0, length: 10, write: true });

/** Both nodes heard of the restart: each has a new session, not fenced. */
async function newSessions(a: LockCoordinator, b: LockCoordinator): Promise<void> {
  await _until(
    () => Promise.all([a.stats(), b.stats()]),
    (s) => s.every((x) => x.store!.sessions === 2 && !x.store!.session.fenced),
    'new sessions on both nodes after the restart',
  );
}

// a's handle 1 holds /w through worker k; worker k dies. The engine then loses its data: a's
// lock is either put back in the grace period (b cannot get /w, a's I/O goes on) or counted lost
// (a's I/O through handle 1 fails) — never b granted while a's handle still says it holds /w.
t.test('the engine restarts after a worker was replaced: the lock its predecessor took is put back (or counted lost), never granted to another node', { skip: noRedis }, async (t) => {
  const [a, b] = await pair(t, RESTART_TTL_MS);
  t.equal(await a.lockFile(win('/w', 1)), 0, "a's handle 1 locks /w");
  const k = routeOf('/w', 2);
  await a.crashWorker(k);
  await server.restart();
  await newSessions(a, b);
  // a's check first (b holding /w would make it fail for that reason): in the grace period it
  // waits (parked) until it ends, as b's request does, so a's re-assertion comes before both.
  const aIo = await a.checkIo(io('/w', 1));
  const got = await b.lockFile(win('/w', 2));
  t.not(got === 0 && aIo === 0, true, `never two holders: b's LockFileEx ${got}, a's checkIo ${aIo}`);
  // Which of the two depends on whether the replacement had read its predecessor's records from
  // the engine before the restart (it does at its start, in the background): put back, or lost.
  if (got === 0) t.equal(aIo, 33, "a's lock was counted lost: I/O through handle 1 fails (33)");
  else {
    t.equal(got, 33, "b cannot lock /w: a's lock was put back");
    t.equal(aIo, 0, "a's I/O through handle 1 goes on: nothing was lost");
    t.match(
      (await b.locks('/w')).map((e) => [e.node, e.state]),
      [['a', 'granted']],
      "the engine holds a's lock again",
    );
  }
});

// a holds a lock only in a file the other worker serves: worker k's replacement reads the
// session's index (crashWorker resolves once it has), finds nothing of its own, makes no actor.
t.test('a replacement whose predecessor took no lock makes no actor; the locks of other workers go on', { skip: noRedis }, async (t) => {
  const [a, b] = await pair(t, 2000);
  const k = routeOf('/w', 2);
  let other = '/o';
  for (let i = 0; routeOf(other, 2) === k; i++) other = `/o${i}`;
  t.equal(await a.lockFile(win(other, 1)), 0, `a's handle 1 locks ${other} (the other worker's)`);
  await a.crashWorker(k);
  const s = await a.stats();
  t.equal(s.workers[k]!.files, 0, 'the replacement has no actor');
  t.equal(s.workers[k]!.locks, 0, 'and no lock of a');
  t.equal(await b.lockFile(win(other, 2)), 33, `b cannot lock ${other}: a still holds it`);
});
