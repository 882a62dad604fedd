/**
 * The stress report's numbers: percentiles are the recorded values' own (nearest rank), within
 * HdrHistogram's 3 significant digits; how answers count in the outcome rates; how an untimed
 * log's answers are placed on the timeline.
 */
import t from 'tap';
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import { Histogram, Metrics, formatNs, rateKind } from '../../driver/metrics.js';
import { Rng } from '../../driver/prng.js';
import type { Op } from '../../driver/workloads.js';

/** The value of nearest rank ceil(n * num / den) among the sorted values (integer arithmetic: no rounding). */
const exact = (sorted: number[], num: number, den: number) => sorted[Math.max(1, Math.ceil((num * sorted.length) / den)) - 1]!;

t.test('percentiles are the recorded values of their rank, at most 0.1% above', async (t) => {
  const rng = new Rng(42, 0);
  // Latency-like: spread over 7 decades (100 ns to 1 s), with a cluster of repeats.
  const values: number[] = [];
  for (let i = 0; i < 20000; i++) values.push(Math.round(100 * 10 ** (7 * (rng.u32() / 2 ** 32) ** 2)));
  for (let i = 0; i < 3000; i++) values.push(152_345);
  const h = new Histogram();
  for (const v of values) h.add(v);
  const sorted = [...values].sort((a, b) => a - b);
  const s = h.summary();
  t.equal(s.unit, 'ns');
  t.equal(s.count, values.length);
  t.equal(s.min, sorted[0], 'min is exact');
  t.equal(s.max, sorted[sorted.length - 1], 'max is exact');
  t.ok(Math.abs(s.mean - values.reduce((a, b) => a + b, 0) / values.length) < 1e-6, 'mean is exact');
  for (const [key, num] of [['p50', 500], ['p90', 900], ['p99', 990], ['p999', 999]] as const) {
    const want = exact(sorted, num, 1000);
    const got = s[key];
    t.ok(got >= want && got <= want * 1.001, `${key}: ${got} ns reported, ${want} ns recorded at that rank`);
    const [lo, hi] = h.equivalentRange(want);
    t.ok(got >= lo && got <= hi, `${key} is in the recorded value's HdrHistogram bucket [${lo}, ${hi}]`);
  }
  const permilles = Array.from({ length: 999 }, (_, i) => i + 1);
  const all = h.quantiles(permilles.map((i) => i / 1000));
  const wrong = permilles.filter((i) => !(all[i - 1]! >= exact(sorted, i, 1000) && all[i - 1]! <= exact(sorted, i, 1000) * 1.001));
  t.same(wrong, [], 'every permille from 0.001 to 0.999 as well');
  t.equal(h.quantile(0.323), all[322], 'quantile() alone agrees');
  t.equal(s.bins.reduce((n, [, c]) => n + c, 0), values.length, 'the plotting bins hold every value');
  const back = decodeFromCompressedBase64(s.hdr);
  t.equal(back.totalCount, values.length, 'the report carries the histogram itself');
  t.equal(back.getValueAtPercentile(99), s.p99, 'and it gives the same percentiles');
});

t.test('a single value is its own percentiles; no values are zeros', async (t) => {
  const h = new Histogram();
  h.add(152_345.4);
  const s = h.summary();
  for (const k of ['p50', 'p90', 'p99', 'p999', 'min', 'max', 'mean'] as const) t.equal(s[k], 152_345, k);
  t.match(new Histogram().summary(), { count: 0, p50: 0, p99: 0, max: 0, bins: [], hdr: '' });
});

t.test('values past the histogram are counted, and max stays exact', async (t) => {
  const h = new Histogram();
  h.add(2 * 3600e9);
  const s = h.summary();
  t.equal(s.clamped, 1);
  t.equal(s.max, 2 * 3600e9);
});

t.test('formatNs prints 3 significant digits and the unit', async (t) => {
  for (const [ns, text] of [
    [0, '0 ns'],
    [512, '512 ns'],
    [999.6, '1 µs'],
    [152_447, '152 µs'],
    [23_170_000, '23.2 ms'],
    [999_999, '1 ms'],
    [524_288_000, '524 ms'],
    [1_500_000_000, '1.5 s'],
    [3_600e9, '3,600 s'],
  ] as const) {
    t.equal(formatNs(ns), text, `${ns} ns`);
  }
});

t.test('how answers count in the outcome rates', async (t) => {
  const lock = (x: Partial<Extract<Op, { op: 'lock' }>>): Op => ({ op: 'lock', role: 'posix', file: 0, type: 1, start: 0, len: 1, wait: false, ...x });
  t.equal(rateKind(lock({}), 'ok'), 'granted');
  t.equal(rateKind(lock({}), 'busy'), 'conflict');
  t.equal(rateKind(lock({ wait: true, timeoutMs: 5 }), 'busy'), 'timeout', 'a wait that ran out (API: EAGAIN)');
  t.equal(rateKind(lock({ wait: true, timeoutMs: 5 }), 'interrupted'), 'timeout', 'a wait that ran out (a client process: EINTR from its alarm)');
  t.equal(rateKind(lock({ wait: true, cancelMs: 5 }), 'interrupted'), 'cancelled');
  t.equal(rateKind(lock({ wait: true }), 'deadlock'), 'EDEADLK');
  t.equal(rateKind({ op: 'winlock', role: 'windows', file: 0, exclusive: true, start: 0, len: 1, wait: false }, 'busy'), 'conflict');
  t.equal(rateKind(lock({ type: 2 }), 'ok'), undefined, 'an unlock asks for no lock');
  t.equal(rateKind({ op: 'getlk', role: 'posix', file: 0, type: 1, start: 0, len: 1 }, 'ok'), undefined, 'nor does F_GETLK');
  t.equal(rateKind({ op: 'close', role: 'posix', file: 0 }, 'ok'), undefined, 'nor a close');
});

t.test('rates per sampling period, live and placed afterwards', async (t) => {
  const op: Op = { op: 'lock', role: 'posix', file: 0, type: 1, start: 0, len: 1, wait: false };
  const live = new Metrics();
  live.record(op, 0, 1000, 'ok');
  live.record(op, 0, 1000, 'busy');
  t.same(live.sample(0.5, null).rates, { granted: 2, conflict: 2 }, 'answers per second since the start');
  t.same(live.sample(1, null).rates, {}, 'none since');
  t.same(live.answers, { granted: 1, conflict: 1 });

  // An untimed log: 3 replies by 0.5 s, 5 by 1 s; the answers are placed by their index.
  const m = new Metrics();
  m.waitingKnown = false;
  m.ops = 3;
  t.equal(m.sample(0.5, 4).waitingClients, null, 'a target that cannot see its waiters says so');
  m.ops = 5;
  m.sample(1, 0);
  m.placeRates(['granted', 'conflict', undefined, 'EDEADLK', 'granted', 'granted']);
  t.same(
    m.timeline.map((p) => p.rates),
    [{ granted: 2, conflict: 2 }, { granted: 4, EDEADLK: 2 }],
    'the 4th and 5th answers fall in the second period, and one past the last sample counts there too',
  );
});
