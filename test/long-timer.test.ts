/**
 * setTimer re-arms a delay longer than one setTimeout may take, in steps, and fires once at the
 * deadline. A small step stands in for 2^31-1 ms so the chain is exercised in milliseconds.
 */
import t from 'tap';
import { clearTimer, setTimer, setTimerExact, MAX_TIMER_MS } from '../src/long-timer.js';

t.test('a delay of many steps fires once, not before its deadline', async (t) => {
  const t0 = performance.now();
  let fired = 0;
  await new Promise<void>((resolve) => {
    setTimer(
      () => {
        fired++;
        resolve();
      },
      40,
      7,
    );
  });
  t.ok(performance.now() - t0 >= 39, 'not before the deadline (a clamped timer would fire after 1 ms)');
  await new Promise((r) => setTimeout(r, 30));
  t.equal(fired, 1, 'fired exactly once');
});

t.test('clearTimer stops a chained timer between steps', async (t) => {
  let fired = false;
  const timer = setTimer(() => (fired = true), 30, 5);
  await new Promise((r) => setTimeout(r, 12));
  clearTimer(timer);
  await new Promise((r) => setTimeout(r, 40));
  t.equal(fired, false);
});

t.test('usual delays use one plain timeout', async (t) => {
  const timer = setTimer(() => {}, 10);
  t.ok(typeof (timer as NodeJS.Timeout).ref === 'function', 'a Node Timeout');
  clearTimer(timer);
  t.equal(MAX_TIMER_MS, 2 ** 31 - 1);
});

t.test('setTimerExact never runs before its delay by performance.now(), and a past delay runs after the caller\'s turn', async (t) => {
  // A plain timer fires up to a millisecond early by performance.now() about one time in ten
  // (the loop's coarser clock): 200 short ones give that every chance.
  const early: number[] = [];
  for (let i = 0; i < 200; i++) {
    const ms = 1 + (i % 5) * 0.37;
    const at = performance.now() + ms;
    await new Promise<void>((resolve) =>
      setTimerExact(() => {
        const d = performance.now() - at;
        if (d < 0) early.push(d);
        resolve();
      }, ms),
    );
  }
  t.same(early, [], 'none ran before its deadline');
  let ran = false;
  const timer = setTimerExact(() => (ran = true), -5);
  t.equal(ran, false, 'a deadline already past: not run at once');
  await new Promise((r) => setTimeout(r, 5));
  t.equal(ran, true, 'but on a later turn');
  clearTimer(timer);
});
