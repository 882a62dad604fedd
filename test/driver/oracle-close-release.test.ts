/**
 * A close through a FUSE mount returns before the kernel's RELEASE is answered (it is sent in the
 * background), so the OFD and flock locks of the descriptor may still be listed a while after the
 * close's reply (Naming.releaseListedNs, release.listedFor). Logs made by the clients' own
 * observers (driver/observer.ts), judged by the oracle: F_GETLK naming such a lock, or a wait
 * blocked by it, within the bound is no violation, past it is; the classic locks the same close
 * drops go at FLUSH, which close waits for, and get no such window; nor does an API close.
 */
import t from 'tap';
import { Ids, ClientObserver, type Naming } from '../../driver/observer.js';
import { Oracle, type GetlkAnswer, type LogEvent, type OracleOptions } from '../../driver/oracle.js';
import { F_WRLCK, type Op } from '../../driver/workloads.js';

const ms = 1e6;
const BOUND = 2000 * ms;
const OPTS: OracleOptions = { deadlockKinds: ['posix'], cycleTolerance: 3e9 };

const naming = (releaseListedNs: number | undefined): Naming => ({
  file: (i) => `fuse:1:${i}`,
  classicPids: (c) => [100 + c, -1],
  ofdPids: (c) => [-1, 100 + c],
  windowsPids: () => [],
  closeDropsClassic: true,
  ofdKind: 'posix',
  ...(releaseListedNs === undefined ? {} : { releaseListedNs }),
});

/** Two clients on one naming; `run` performs an op with its two stamps (and F_GETLK's answer). */
function clients(lag: number | undefined) {
  const log: LogEvent[] = [];
  const ids = new Ids();
  const n = naming(lag);
  const obs = [new ClientObserver(0, n, ids, (e) => log.push(e)), new ClientObserver(1, n, ids, (e) => log.push(e))];
  const run = (c: number, op: Op, t0: number, t1: number, result = 0, answer?: GetlkAnswer) => {
    obs[c]!.begin(op, t0);
    obs[c]!.end(t1, result, answer);
  };
  return { log, run };
}

const ofdLock = (wait = false): Op => ({ op: 'lock', role: 'ofd', file: 0, type: F_WRLCK, start: 0, len: 10, wait });
const classicLock: Op = { op: 'lock', role: 'posix', file: 0, type: F_WRLCK, start: 20, len: 10, wait: false };
const closeOfd: Op = { op: 'close', role: 'ofd', file: 0 };
/** Client 1's F_GETLK over [0, 29], answered with client 0's lock at `start` (pid 100, as F_GETLK shows an OFD holder through a mount). */
const getlk: Op = { op: 'getlk', role: 'posix', file: 0, type: F_WRLCK, start: 0, len: 30 };
const named = (start: number): GetlkAnswer => ({ free: false, write: true, start, end: start + 9, pid: 100 });

/** Client 0 takes an OFD lock on [0, 9] and a classic one on [20, 29], then closes its OFD descriptor at 10 ms (reply at 11 ms). */
function closed(lag: number | undefined) {
  const c = clients(lag);
  c.run(0, ofdLock(), 1 * ms, 2 * ms);
  c.run(0, classicLock, 3 * ms, 4 * ms);
  c.run(0, closeOfd, 10 * ms, 11 * ms);
  return c;
}

t.test('F_GETLK naming an OFD lock shortly after its descriptor was closed through a mount is no phantom', async (t) => {
  const c = closed(BOUND);
  c.run(1, getlk, 500 * ms, 501 * ms, 0, named(0));
  const s = Oracle.check(c.log, OPTS);
  t.equal(s.getlks, 1, 'the F_GETLK was judged');
  t.equal(s.violations, 0, 'the lock may still be listed 0.5 s after the close returned');
  const rel = c.log.filter((e): e is Extract<LogEvent, { ev: 'release' }> => e.ev === 'release' && e.t === 10 * ms);
  t.equal(rel.length, 2, 'the close ends both locks');
  t.same(rel.map((e) => e.listedFor), [undefined, BOUND], 'the classic lock (gone at FLUSH) gets no window, the OFD one the bound');
});

t.test('past the bound it is a phantom', async (t) => {
  const c = closed(BOUND);
  c.run(1, getlk, 11 * ms + BOUND + 1, 11 * ms + BOUND + 2, 0, named(0));
  const s = Oracle.check(c.log, OPTS);
  t.same(s.byKind, { 'getlk-phantom': 1 });
});

t.test('the classic lock the same close dropped gets no window, nor does a close answered after the release', async (t) => {
  const c = closed(BOUND);
  c.run(1, getlk, 500 * ms, 501 * ms, 0, named(20));
  t.same(Oracle.check(c.log, OPTS).byKind, { 'getlk-phantom': 1 }, 'the classic lock went at FLUSH, before close returned');
  const api = closed(undefined);
  api.run(1, getlk, 500 * ms, 501 * ms, 0, named(0));
  t.same(Oracle.check(api.log, OPTS).byKind, { 'getlk-phantom': 1 }, 'without releaseListedNs the window ends at the reply');
});

t.test('a wait blocked by the closed lock within the bound is explained; past it, stuck', async (t) => {
  // Client 1 waits for [0, 9] from 20 ms; granted at `at`. Stuck tolerance 1 s.
  const wait = (at: number) => {
    const c = closed(BOUND);
    c.run(1, ofdLock(true), 20 * ms, at);
    return Oracle.check(c.log, { ...OPTS, stuckTolerance: 1000 * ms });
  };
  t.equal(wait(11 * ms + BOUND + 900 * ms).violations, 0, 'granted 0.9 s after the bound: within the tolerance of the last explanation');
  t.same(wait(11 * ms + BOUND + 1500 * ms).byKind, { 'stuck-waiter': 1 }, 'granted 1.5 s after the bound: stuck');
});
