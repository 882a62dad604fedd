/**
 * SweptMap (src/core/swept-map.ts): emptied entries stay until a sweep, which drops them and keeps
 * the ones that hold something; a sweep needs more than `minEmptied` emptyings, and emptyings that
 * could be half the map.
 */
import t from 'tap';
import { SweptMap } from '../../src/core/swept-map.js';

interface Box {
  n: number;
}

function setup(minEmptied?: number) {
  const m = new SweptMap<string, Box>((b) => b.n === 0, minEmptied);
  const use = (k: string): Box => {
    let b = m.get(k);
    if (b === undefined) m.set(k, (b = { n: 0 }));
    return b;
  };
  /** Takes and empties entry k once. */
  const churn = (k: string): void => {
    const b = use(k);
    b.n = 1;
    b.n = 0;
    m.emptiedOne();
  };
  return { m, use, churn };
}

t.test('a sweep drops every empty entry and keeps the live ones', async (t) => {
  const { m, use, churn } = setup();
  use('live').n = 1;
  const idle = use('idle');
  for (let i = 0; i < 64; i++) churn('idle');
  t.equal(m.get('idle'), idle, '64 emptyings: no sweep yet, the empty entry is the same object');
  churn('other');
  t.equal(m.get('idle'), undefined, 'the 65th emptying sweeps: the empty entry is gone');
  t.equal(m.get('other'), undefined);
  t.equal(m.get('live')?.n, 1, 'the live entry stays');
  t.same([...m.values()].map((v) => v.n), [1], 'values() lists live entries only');
  t.equal(m.liveCount(), 1);
});

t.test('minEmptied holds sweeps back in a small map', async (t) => {
  const { m, use, churn } = setup(1024);
  const hot = use('hot');
  for (let i = 0; i < 1024; i++) churn('hot');
  t.equal(m.get('hot'), hot, '1,024 emptyings: still the same entry');
  churn('hot');
  t.equal(m.get('hot'), undefined, 'the next one sweeps');
});

t.test('a large map sweeps only once its emptyings could be half of it', async (t) => {
  const { m, use, churn } = setup();
  for (let i = 0; i < 400; i++) use(`k${i}`).n = 1;
  const idle = use('idle');
  for (let i = 0; i < 200; i++) churn('idle');
  t.equal(m.get('idle'), idle, '200 emptyings in a map of 401: no sweep');
  churn('idle');
  t.equal(m.get('idle'), undefined, '201: swept');
  t.equal(m.liveCount(), 400, 'every live entry kept');
});
