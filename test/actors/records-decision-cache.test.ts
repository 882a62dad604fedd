/**
 * DecodedRecords (src/core/records.ts): a file's actor decodes each record once per version
 * (SharedFile.build). A record id that comes back with other data (a waiter stood in for as held
 * keeps its id) is decoded again, never served from its old decoding; records gone are dropped.
 */
import t from 'tap';
import { Lock } from '../../src/core/file-locks.js';
import { DecodedRecords, decodeRecord, encodeLock } from '../../src/core/records.js';
import type { LockRequest } from '../../src/core/file-locks.js';

function req(start: bigint, end: bigint, write: boolean, pid: number): LockRequest {
  const event = { path: '/f', lockOwner: 7, lockPid: pid, kind: 'posix' };
  return { kind: 'posix', write, owner: '7@a', start, end, origin: { holder: 7, pid, handleKey: '', processKey: 'p@a', event } };
}

t.test('a record id reused with new data is decoded again', (t) => {
  const c = new DecodedRecords('/f');
  const waiting = encodeLock(req(0n, 99n, true, 11), 1234);
  const first = c.get('r1', waiting);
  t.equal(first.d.req.start, 0n);
  t.equal(first.d.since, 1234);
  first.view = first.d.req;
  // The same version again: the same decoding, with what its reader derived of it.
  t.equal(c.get('r1', waiting), first);
  t.equal(c.get('r1', `${waiting}`.slice(0)).view, first.d.req);
  // The same id, held now, over other bytes and by another pid: never the old decoding.
  const held = encodeLock(new Lock(10n, 19n, 1, 'posix', false, '7@a', req(10n, 19n, false, 12).origin));
  const second = c.get('r1', held);
  t.not(second, first);
  t.equal(second.view, undefined, 'what a reader derived of the old version is gone with it');
  t.same(second.d, decodeRecord(held, '/f'));
  t.equal(second.d.req.start, 10n);
  t.equal(second.d.req.write, false);
  t.equal(second.d.req.origin.pid, 12);
  t.end();
});

t.test('sweep keeps the records left only, once the others could be half', (t) => {
  const c = new DecodedRecords('/f');
  const data = encodeLock(req(0n, 0n, true, 1));
  for (let i = 0; i < 12; i++) c.get(`r${i}`, data);
  c.sweep([{ id: 'r0' }, { id: 'r1' }]);
  t.equal(c.size, 12, 'not yet: 12 <= 2 * 2 + 8');
  for (let i = 60; i < 200; i++) c.get(`r${i}`, data);
  const kept = c.get('r5', data);
  c.sweep([{ id: 'r5' }, { id: 'r150' }]);
  t.equal(c.size, 2);
  t.equal(c.get('r5', data), kept, 'a record left keeps its decoding');
  t.end();
});
