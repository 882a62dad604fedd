/**
 * A release whose deadline passed while a request of its owner queued ahead of it is unanswered
 * (SharedFiles.attempt) waits for that request's answer, so that its caller never hears of them out
 * of order. It is looked at again when that request is answered (an event), not by a timer that
 * looks every few ms while the engine answers nothing (before: AHEAD_RECHECK_MS, 10 ms, for as
 * long as the request ahead held its file's mailbox). Real SharedFiles over a MemoryEngine behind
 * the lost-link harness.
 */
import t from 'tap';
import { ENOLCK, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, code, headAtLink, lk, nodeFor } from './lost-link.js';

const TIMEOUT = 300;

/** Counts the timers armed from shared-files.ts while `during` runs. */
async function timersOfSharedFiles<T>(during: () => Promise<T>): Promise<{ value: T; timers: number }> {
  const real = globalThis.setTimeout;
  let timers = 0;
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
    if (/shared-files\.[jt]s/.test(new Error().stack ?? '')) timers++;
    return real(fn, ms, ...rest);
  }) as typeof setTimeout;
  try {
    return { value: await during(), timers };
  } finally {
    globalThis.setTimeout = real;
  }
}

t.test("an unlock due behind its owner's unanswered request (the engine not answering): answered right after that request, no timer meanwhile", async (t) => {
  const engine = new MemoryEngine();
  const a = await nodeFor(t, engine, 'a', TIMEOUT);
  a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), a.target);
  t.equal(code(await answered(a, 1, "p1's lock of [0,10)")), 0, 'p1 holds [0,10)');
  const order: number[] = [];
  const answer = a.target.answer.bind(a.target);
  a.target.answer = (id, ...rest) => {
    order.push(id);
    answer(id, ...rest);
  };
  // p1's request of [20,30) holds the mailbox: its step waits at the link, unanswered.
  const hold = await headAtLink(a, 9, lk('p1', 1, F_WRLCK, F_SETLK, 20, 10));
  a.sf.run(10, lk('p1', 1, F_UNLCK, F_SETLK, 0, 10), a.target);
  // p2's request, queued behind the unlock: its deadline passes after the unlock's.
  a.sf.run(11, lk('p2', 2, F_WRLCK, F_SETLK, 50, 10), a.target);
  t.equal(code(await answered(a, 11, "p2's request at its deadline")), -ENOLCK, "p2's request: the generic code at its deadline");
  t.notOk(a.got.has(10), "p1's unlock, past its deadline, waits for p1's request ahead of it");
  // The unlock waits for an event: a whole requestTimeoutMs more (p3's request, queued after p2's
  // was answered, until its own deadline) arms no timer of SharedFiles but p3's own.
  const { timers } = await timersOfSharedFiles(async () => {
    a.sf.run(12, lk('p3', 3, F_WRLCK, F_SETLK, 60, 10), a.target);
    return code(await answered(a, 12, "p3's request at its deadline"));
  });
  t.equal(timers, 1, "one timer of SharedFiles while the unlock waited a requestTimeoutMs: p3's deadline (before: the unlock's recheck every 10 ms)");
  t.notOk(a.got.has(10), 'the unlock still waits');
  hold.release();
  await answered(a, 9, "p1's request of [20,30)");
  t.equal(code(await answered(a, 10, "p1's unlock")), -ENOLCK, "p1's unlock: the generic code (owed)");
  t.same(
    order.filter((id) => id === 9 || id === 10),
    [9, 10],
    "p1's unlock answered after p1's request ahead of it",
  );
  t.same(a.faults, [], 'nothing reported');
});
