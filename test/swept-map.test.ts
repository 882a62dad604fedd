/**
 * SweptMap (src/core/swept-map.ts): emptied entries stay until a sweep, which drops them; with
 * `recent`, an empty entry used since the sweep before last survives a sweep, and one left alone is
 * gone after two. Entries that hold something are never dropped.
 */
import t from 'tap';
import { SweptMap } from '../src/core/swept-map.js';

interface Box {
  n: number;
  used: number;
}

/** A map of boxes plus `filler` entries that stay live, so sweeps happen on a known schedule. */
function setup(recent: boolean) {
  const m = new SweptMap<string, Box>(
    (b) => b.n === 0,
    recent ? (b, since) => b.used >= since : undefined,
  );
  const use = (k: string): Box => {
    let b = m.get(k);
    if (b === undefined) m.set(k, (b = { n: 0, used: 0 }));
    b.used = m.sweeps;
    return b;
  };
  /** Empties one entry 65 times, which makes the next emptying a sweep (no more than 64 live entries). */
  const sweep = (): void => {
    const before = m.sweeps;
    while (m.sweeps === before) {
      const b = use('churn');
      b.n = 1;
      b.n = 0;
      m.emptiedOne();
    }
  };
  return { m, use, sweep };
}

t.test('without recent, a sweep drops every empty entry and keeps the live ones', async (t) => {
  const { m, use, sweep } = setup(false);
  use('a').n = 1;
  const b = use('b');
  b.n = 1;
  b.n = 0;
  sweep();
  t.equal(m.get('a')?.n, 1, 'a live entry stays');
  t.equal(m.get('b'), undefined, 'an empty entry is gone');
  t.same([...m.values()].map((v) => v.n), [1], 'values() lists the live entries only');
  t.equal(m.liveCount(), 1);
});

t.test('with recent, an empty entry used lately survives one sweep, not two without use', async (t) => {
  const { m, use, sweep } = setup(true);
  const b = use('b');
  b.n = 1;
  b.n = 0;
  sweep();
  t.equal(m.get('b'), b, 'used in the epoch that just ended: kept');
  t.equal(m.liveCount(), 0, 'a kept empty entry does not count as live');
  sweep();
  t.equal(m.get('b'), b, 'used in the epoch before: still kept');
  sweep();
  t.equal(m.get('b'), undefined, 'not used for two sweeps: gone');
});

t.test('with recent, an entry in use at every epoch is never rebuilt', async (t) => {
  const { m, use, sweep } = setup(true);
  const b = use('hot');
  for (let i = 0; i < 5; i++) {
    sweep();
    t.equal(use('hot'), b, `same object after sweep ${i + 1}`);
  }
});
