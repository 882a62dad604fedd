/**
 * RequestWindow (src/caller/request-window.ts). Model: a Map from id to request, with ids added in
 * increasing order and dropped in any order. Invariant: after every step the window finds exactly
 * the requests the Map holds, reports the same size, and lists them in id order, whether a request
 * sits in its slot or overflowed because an older one still held that slot.
 */
import t from 'tap';
import fc from 'fast-check';
import { RequestWindow } from '../../src/caller/request-window.js';

interface Req {
  readonly id: number;
}

t.test('the window agrees with a Map through any sequence of adds and drops', async (t) => {
  fc.assert(
    fc.property(
      // A small window (8 slots), so laps and overflow happen all the time.
      fc.array(fc.oneof(fc.record({ add: fc.integer({ min: 1, max: 20 }) }), fc.record({ drop: fc.nat() })), { maxLength: 200 }),
      (steps) => {
        const w = new RequestWindow<Req>(3);
        const model = new Map<number, Req>();
        let next = 0;
        for (const s of steps) {
          if ('add' in s) {
            // Ids rise, with gaps (ids of requests answered on the caller's thread are never sent).
            next += s.add;
            const r = { id: next };
            w.add(r);
            model.set(r.id, r);
          } else if (model.size > 0) {
            const live = [...model.values()];
            const r = live[s.drop % live.length]!;
            w.delete(r);
            model.delete(r.id);
            // Dropping again, or a request that never was in the window, changes nothing.
            w.delete(r);
            w.delete({ id: r.id });
          }
          if (w.size !== model.size) return false;
          for (const [id, r] of model) if (w.get(id) !== r || !w.has(id)) return false;
          for (let id = 0; id <= next + 8; id++) if (!model.has(id) && w.get(id) !== undefined) return false;
          const listed = w.values();
          if (listed.length !== model.size || listed.some((r, i) => i > 0 && listed[i - 1]!.id >= r.id)) return false;
          if (listed.some((r) => model.get(r.id) !== r)) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random sequences agreed with the Map');
});

t.test('a long waiter keeps its slot while later requests with the same slot overflow', async (t) => {
  const w = new RequestWindow<Req>(2);
  const waiter = { id: 1 };
  w.add(waiter);
  const later = [5, 9, 13].map((id) => ({ id }));
  for (const r of later) w.add(r);
  t.equal(w.size, 4);
  for (const r of later) t.equal(w.get(r.id), r, `id ${r.id} found in the overflow`);
  w.delete(waiter);
  t.equal(w.get(1), undefined, 'the waiter is gone');
  t.equal(w.get(5), later[0], 'the overflowed requests are still found');
  t.strictSame(
    w.values().map((r) => r.id),
    [5, 9, 13],
  );
});
