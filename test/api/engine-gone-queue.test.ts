/**
 * API.md "The engine unreachable": a new request that cannot reach the engine within
 * requestTimeoutMs completes with its family's generic code (33 for LockFileEx, -ENOLCK for
 * fcntl). Several non-blocking requests on one file at once, the engine gone (nothing listens):
 * each is answered within requestTimeoutMs of its own arrival, not one requestTimeoutMs after the
 * one queued ahead of it in the file's mailbox (k requests: k x requestTimeoutMs for the last).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ERROR_LOCK_VIOLATION, ENOLCK, F_SETLK, F_SETLKW, F_WRLCK } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Node, event } from './node-procs.js';

const setlk = (path: string, owner: number, pid: number, start: number, len: number, cmd = F_SETLK) => ({ path, lockType: F_WRLCK, lockStart: start, lockLen: len, cmd, lockOwner: owner, lockPid: pid });
const win = (fileName: string, handle: number, failImmediately: boolean) => ({ fileName, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately, handle, processId: 1 });

t.test('an engine gone (nothing listens): requests on one file at once, blocking or not, each end with the generic code within requestTimeoutMs of their arrival', { skip: noRedis }, async (t) => {
  const own = await RedisServer.start();
  t.teardown(() => own.stop());
  const timeout = 1500;
  const a = new Node({ url: own.url, namespace: `n-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 60_000, requestTimeoutMs: timeout });
  t.teardown(() => a.kill());
  await a.ready();
  // Each worker's own connection to the engine opens at its first commit: a request on the file
  // (and on a few others, so every worker has one), ended by its timeout in the new namespace's
  // grace period (60 s here).
  for (let i = 0; i < 4; i++) t.equal(await a.call('lockFile', { ...win(`/w${i}`, 1, false), timeoutMs: 100 }), ERROR_LOCK_VIOLATION, `a request on /w${i}, timed out in the grace period`);
  t.equal(await a.call('lockFile', { ...win('/q', 1, false), timeoutMs: 100 }), ERROR_LOCK_VIOLATION, 'a request on /q, timed out in the grace period');
  await own.stop();
  // Three rounds of four requests on /q at once, half LockFileEx, half fcntl: non-blocking in the
  // first two, blocking in the third.
  const took: number[] = [];
  for (let round = 0; round < 3; round++) {
    const blocking = round === 2;
    const replies = await event(
      Promise.all(
        [...Array(4).keys()].map(async (i) => {
          const t0 = performance.now();
          const o = 10 * round + i;
          const r = await (i % 2 === 0 ? a.call('lockFile', win('/q', 10 + o, !blocking)) : a.call('lock', setlk('/q', 10 + o, 10 + o, i * 10, 1, blocking ? F_SETLKW : F_SETLK)));
          took.push(Math.round(performance.now() - t0));
          return typeof r === 'number' ? r : r.result;
        }),
      ),
      'the answers with the engine gone',
    );
    t.same(replies, replies.map((_r: number, i: number) => (i % 2 === 0 ? ERROR_LOCK_VIOLATION : -ENOLCK)), `round ${round}${blocking ? ' (blocking)' : ''}: the generic codes`);
  }
  // Budget: requestTimeoutMs and half of it from each request's own arrival, the half for a loaded
  // machine (the 2-core test machines run other suites beside this one).
  t.ok(took.every((ms) => ms < timeout * 1.5), `every answer within requestTimeoutMs (${timeout} ms) of its arrival, and its slack: ${took.join(', ')} ms`);
});
