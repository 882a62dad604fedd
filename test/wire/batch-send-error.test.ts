/**
 * CallBatcher when posting a batch throws (src/wire/batcher.ts): the last line of defence behind
 * the request snapshot (issue 11 item 2). Model: the messages in append order. Invariant: every
 * message that can be cloned is posted, in order; each one that cannot is handed to `unsendable`
 * (the coordinator rejects that request alone); nothing throws out of the flush, flat or in lanes.
 */
import t from 'tap';
import { CallBatcher } from '../../src/wire/batcher.js';
import { T_OBJECT, encodeCall, readBatch } from '../../src/wire/calls.js';
import { F_SETLK, F_WRLCK } from '../../src/core/codes.js';
import { decodeLock, type DecodedLock } from '../../src/core/requests.js';

function lockOf(path: string, owner: number): DecodedLock {
  return decodeLock({ path, lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: owner }) as DecodedLock;
}

/** Appends n messages: locks (number lane), closeHandle wire calls, and every 5th a call that cannot be cloned. */
function fill(out: CallBatcher, n: number): { good: number[]; bad: number[] } {
  const good: number[] = [];
  const bad: number[] = [];
  for (let id = 1; id <= n; id++) {
    if (id % 5 === 0) {
      // What a caller's object could once put in a batch: a value the structured clone refuses.
      out.call(encodeCall('closeHandle', id, { fileName: `/f${id}`, handle: () => id }));
      bad.push(id);
    } else if (id % 2 === 0) {
      out.call(encodeCall('closeHandle', id, { fileName: `/f${id}`, handle: id }));
      good.push(id);
    } else {
      out.lock(id, lockOf(`/f${id}`, id));
      good.push(id);
    }
  }
  out.object({ t: 'sync', token: 7 });
  return { good, bad };
}

for (const n of [6, 40]) {
  t.test(`${n} messages (${n <= 16 ? 'flat' : 'lanes'}): the cloneable ones are posted in order, the others reported`, async (t) => {
    const posted: unknown[][] = [];
    const unsendable: unknown[][] = [];
    const out = new CallBatcher(
      (b) => posted.push(structuredClone(b)),
      64,
      () => false,
      (m, e) => {
        t.match(e, { name: 'DataCloneError' });
        unsendable.push(m);
      },
    );
    const { good, bad } = fill(out, n);
    t.doesNotThrow(() => out.flushNow(), 'the flush does not throw');
    const ids: number[] = [];
    const objects: unknown[] = [];
    for (const b of posted) readBatch(b, (id) => ids.push(id), (m) => objects.push(m));
    t.strictSame(ids, good, 'every cloneable call, in order');
    t.strictSame(objects, [{ t: 'sync', token: 7 }], 'and the object after them');
    t.strictSame(
      unsendable.map((m) => (m[0] === T_OBJECT ? -1 : (m[1] as number))),
      bad,
      'each call that cannot be cloned is reported once, with its id',
    );
    // The batcher goes on: the next batch posts as usual.
    out.lock(1000, lockOf('/next', 1));
    out.flushNow();
    const after: number[] = [];
    readBatch(posted.at(-1)!, (id) => after.push(id), () => {});
    t.strictSame(after, [1000]);
  });
}

t.test('without an unsendable handler, a message that cannot be cloned is reported as a warning, not thrown', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const posted: unknown[][] = [];
  const out = new CallBatcher((b) => posted.push(structuredClone(b)));
  out.call(encodeCall('closeHandle', 1, { fileName: '/a', handle: Symbol('no') }));
  out.lock(2, lockOf('/b', 2));
  t.doesNotThrow(() => out.flushNow());
  await new Promise((r) => setImmediate(r));
  t.equal(posted.length, 1, 'the other message was posted');
  t.match(warnings, [/could not be posted/]);
});
