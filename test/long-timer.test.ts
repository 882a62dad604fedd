/**
 * setTimer re-arms a delay longer than one setTimeout may take, in steps, and fires once at the
 * deadline. A small step stands in for 2^31-1 ms so the chain is exercised in milliseconds.
 */
import t from 'tap';
import { clearTimer, setTimer, MAX_TIMER_MS } from '../src/long-timer.js';

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
