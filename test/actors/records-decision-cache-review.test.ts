/**
 * Review guard of DecodedRecords in SharedFile (e9d8f73): a file's actor keeps each record's
 * decoding (and another node's pid-0 view of it) while the record's data is the same text, and
 * shares it across builds, the table, its waiters and the readers (coveredBefore, restorable,
 * grantedRemotely...). Nothing may change what it shares: after every answer of a long run of
 * two nodes' locks, unlocks and F_GETLKs over one file, every decoding each node keeps equals a
 * fresh decoding of its data, and every view is that decoding with pid 0 and the REMOTE mark
 * (records-decision-cache-leak-review bounds their number), and an F_GETLK never reports another node's
 * pid (API.md: lockPid 0). Then a waiter of a granted by b's unlock (its record keeps its id
 * with new data: held) is decoded again. Real SharedFiles over a MemoryEngine (lost-link
 * harness); every wait is for an answer within its budget.
 */
import t from 'tap';
import { F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { LockRequest } from '../../src/core/file-locks.js';
import { REMOTE } from '../../src/actors/shared-file.js';
import { decodeRecord } from '../../src/core/records.js';
import { answered, lk, type TestNode } from './lost-link.js';
import { twoNodes } from './stages.js';

interface Entry {
  data: string;
  d: { req: LockRequest; since: number };
  view?: LockRequest;
}
interface FileView {
  records: { id: string; data: string; state: string }[];
  decoded: { byId: Map<string, Entry> };
}

const fileOf = (n: TestNode) => (n.sf as unknown as { files: Map<string, FileView> }).files.get('/a');

/** What is wrong with `n`'s cached decodings of /a now ('' if nothing). */
function check(n: TestNode): string {
  const f = fileOf(n);
  if (f === undefined) return '';
  const byId = f.decoded.byId;
  for (const [id, e] of byId) {
    const fresh = decodeRecord(e.data, '/a');
    if (JSON.stringify(e.d, big) !== JSON.stringify(fresh, big)) return `${n.name}: ${id}'s decoding changed: ${JSON.stringify(e.d, big)} vs ${JSON.stringify(fresh, big)}`;
    if (e.view !== undefined) {
      const v = e.view;
      const want = { ...fresh.req, origin: { ...fresh.req.origin, pid: 0 } };
      if (JSON.stringify(v, big) !== JSON.stringify(want, big) || (v.origin.event as Record<symbol, unknown>)[REMOTE] !== true) return `${n.name}: ${id}'s view changed: ${JSON.stringify(v, big)}`;
    }
  }
  return '';
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}

t.test('two nodes, 400 random locks, unlocks and F_GETLKs: the decodings each keeps stay those of their data; F_GETLK reports another node’s pid as 0', async (t) => {
  const { a, b } = await twoNodes(t);
  let seed = 4242;
  const rnd = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  let first = '';
  let getlks = 0;
  const pids = { a: [10, 11, 12], b: [20, 21, 22] };
  for (let i = 0; i < 400; i++) {
    const n = rnd(2) === 0 ? a : b;
    const o = rnd(3);
    const pid = pids[n.name as 'a' | 'b'][o]!;
    const start = rnd(40);
    const len = 1 + rnd(12);
    const getlk = rnd(5) === 0;
    const type = getlk ? F_WRLCK : [F_RDLCK, F_WRLCK, F_UNLCK][rnd(3)]!;
    n.sf.run(100 + i, lk(`${n.name}${o}`, pid, type, getlk ? F_GETLK : F_SETLK, start, len), n.target);
    const reply = (await answered(n, 100 + i, `op ${i}`)) as { lockType?: number; lockPid?: number };
    if (getlk && reply.lockType !== F_UNLCK) {
      getlks++;
      if (first === '' && reply.lockPid !== 0 && !pids[n.name as 'a' | 'b'].includes(reply.lockPid!)) first = `op ${i}: ${n.name}'s F_GETLK reports pid ${reply.lockPid}`;
    }
    if (first === '') first = check(a) || check(b);
  }
  t.equal(first, '', 'every cached decoding is its data’s, every view its pid-0 form; F_GETLK never reports another node’s pid');
  t.ok(getlks > 0, `some F_GETLK found a lock (${getlks})`);
  t.same(a.faults, [], 'nothing reported on a');
  t.same(b.faults, [], 'nothing reported on b');
});

t.test('a waiter of a granted by b’s unlock keeps its record id with held data: decoded again, its lock then blocks b', async (t) => {
  const { a, b } = await twoNodes(t);
  b.sf.run(1, lk('q', 5, F_WRLCK, F_SETLK, 100, 10), b.target);
  t.match(await answered(b, 1, "b's lock of [100,110)"), { result: 0 });
  a.sf.run(1, lk('p', 6, F_WRLCK, F_SETLKW, 100, 10), a.target);
  await answered(a, -1, "a's waiter queued behind b's lock");
  const waiting = fileOf(a)!.records.find((r) => r.state === 'waiting')!;
  t.ok(waiting, "a's waiter record");
  t.equal(check(a) || check(b), '', 'decodings before the grant');
  b.sf.run(2, lk('q', 5, F_UNLCK, F_SETLK, 100, 10), b.target);
  t.match(await answered(b, 2, "b's unlock"), { result: 0 });
  t.match(await answered(a, 1, "a's waiter granted by b's unlock"), { result: 0 });
  b.sf.run(3, lk('q', 5, F_WRLCK, F_GETLK, 100, 10), b.target);
  t.match(await answered(b, 3, "b's F_GETLK over a's granted lock"), { result: 0, lockType: F_WRLCK, lockPid: 0 }, "b sees a's lock, pid 0");
  t.equal(check(a) || check(b), '', 'decodings after the grant: each its data’s');
  b.sf.run(4, lk('q', 5, F_WRLCK, F_SETLK, 100, 10), b.target);
  t.notMatch(await answered(b, 4, "b's F_SETLK over a's lock"), { result: 0 }, "a's lock blocks b");
  t.same(a.faults, [], 'nothing reported on a');
  t.same(b.faults, [], 'nothing reported on b');
});
