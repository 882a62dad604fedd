/**
 * The stages the release-notice and cancel review tests set on /a (the untold rule, the closes of
 * a handle whose waiter another node granted, the early-answered cancel), built on stages.ts: a
 * waiter of node a behind a lock of node b; a cut off and a close (or a cancel) owed or answered
 * at once; b's step granting the waiter while a's inbox reader is slow (TestNode.held); a
 * reaching the engine again. Each builder asserts what its stage asserted inline before (the
 * locks granted, the waiter ended once) with the same messages (a Windows call's granted answer
 * by t.equal, as stages.ts asserts it); each test keeps its action and the assertions it is about.
 */
import type { Test } from 'tap';
import { EINTR, ENOLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseFlush, parseLock, parseRelease, type Call } from '../../src/core/requests.js';
import { BUDGET_MS, answered, lf, lk, loseNext, lw, uf, within, type MemoryEngine, type S, type TestNode } from './lost-link.js';
import { answersTo, held, nodes, resetBoth, until } from './reset-harness.js';
import { holds, owedCutOff, stage, waits, type Req } from './stages.js';

/** A POSIX lock call of owner p1 (pid 1) on [start, start+len) of /a through file handle `fh`. */
export const lkFh = (fh: number, type: number, cmd: number, start: number, len: number): Call =>
  parseLock({ path: '/a', lockType: type, cmd, lockOwner: 'p1', lockStart: start, lockLen: len, lockPid: 1, fileHandle: fh }) as Call;
/** An OFD lock call of owner o1 on [start, start+len) of /a through file handle 1. */
export const ofd = (type: number, cmd: number, start: number, len: number): Call =>
  parseLock({ path: '/a', kind: 'ofd', lockType: type, cmd, lockOwner: 'o1', lockStart: start, lockLen: len, fileHandle: 1 }) as Call;
/** The close of file handle `fh` of /a (its POSIX locks go, its waiters end with EINTR). */
export const close = (fh: number): Call => parseRelease({ path: '/a', fileHandle: fh });
/** close(2) of a descriptor by p1: all of p1's locks of /a go, its waiters keep waiting. */
export const flush: Call = parseFlush({ path: '/a', lockOwner: 'p1' });

/** A lock of a's, answered granted, asserted with `what` as the message. */
export const locks = (t: Test, a: TestNode, id: number, call: Call, what: string): Promise<void> => stage(t, holds(a, id, call, what, what));

/** The answers `told` are one, `ended` (a POSIX close's EINTR by default): the waiter ended, never granted. */
export function endedOnce(t: Test, told: unknown[], what: string, ended: unknown = { result: -EINTR }): void {
  t.equal(told.length, 1, `${what}: one answer`);
  t.match(told[0], ended, what);
}

/** a reaches the engine again; its next step commits (request `id`: an UnlockFileEx of bytes handle 99 never locked). */
export async function heal(t: Test, a: TestNode, id: number, what = "handle 99's unlock of nothing"): Promise<void> {
  a.policy = () => 'pass';
  a.sf.run(id, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, id, what), 158);
}

/**
 * a's inbox reader turns slow (its events held back: TestNode.held, until a.release()); b's
 * `unlock` (a request of the stage) is answered granted; with `events`, resolves once that many
 * grants' events wait in a's inbox.
 */
export async function grantHeld(t: Test, a: TestNode, unlock: Req, events = 0): Promise<void> {
  a.held = [];
  await stage(t, unlock);
  if (events > 0) await until(() => (a.held?.length ?? 0) >= events, events === 1 ? "the grant's event in a's inbox" : "both grants' events in a's inbox");
}

/**
 * q9 (node b) holds [5,10); `who` (node a: p1, POSIX, or o1, OFD, both through file handle 1)
 * holds [0,5) and waits for [5,10) (request 4): the waiter a grant of b merges with the owner's
 * lock. `says`: the message of the owner's lock's assert. Returns the nodes and b's unlock of
 * [5,10) (its request 3).
 */
export async function mergedWaiter(t: Test, who: 'p1' | 'o1' = 'p1', says?: string) {
  const n = await nodes(t, 'default');
  const { a, b } = n;
  const call = (type: number, cmd: number, start: number, len: number): Call => (who === 'o1' ? ofd(type, cmd, start, len) : lk('p1', 1, type, cmd, start, len));
  await stage(
    t,
    holds(b, 1, lk('q9', 9, F_WRLCK, F_SETLK, 5, 5), "q9's lock of [5,10)"),
    holds(a, 1, call(F_WRLCK, F_SETLK, 0, 5), `${who}'s lock of [0,5)`, says),
    waits(a, 4, call(F_WRLCK, F_SETLKW, 5, 5), `${who}'s waiter for [5,10) queued`),
  );
  return { ...n, unlock: holds(b, 3, lk('q9', 9, F_UNLCK, F_SETLK, 5, 5), "q9's unlock of [5,10)") };
}

/**
 * a cut off (every step of it dropped from now on), the close of handle 1 (request `id`, `call`)
 * owed: it ends a's waiter at once, whose answers are `told` (see endedOnce).
 */
export async function closeOwed(t: Test, a: TestNode, told: unknown[], what: string, call: Call = close(1), ended?: unknown, id = 5): Promise<void> {
  await owedCutOff(a, id, call, "handle 1's close");
  endedOnce(t, told, what, ended);
}

/**
 * One step of node b grants p1 (node a) two adjacent waiters through two handles, merged into
 * one lock: q9 (b) holds [5,15); p1 waits for [5,10) through handle 1 (request 4), then [10,15)
 * through handle 2 (request 5); a cut off, handle 1's close (request 6) owed ends the first
 * waiter (untold); b's unlock (its request 3) grants both, merged (asserted); their events read,
 * the second waiter told granted; a reaches the engine again (its request 7 commits). With `own`
 * (p1's lock `call` of [0,5), request 1, asserted granted with `says`), p1 holds it first: the
 * grants merge with it. `healed` names a's request 7 in a timeout. Resolves with the nodes and
 * the answers to the two waiters.
 *
 * Note: after request 7's answer a may make one more step of its own (an empty one: the owed try
 * the heal cut short, SharedFiles.retryOwed, run after request 7 settled what was owed). A test
 * that makes a step of a's lose its reply waits for that try first (ownTryDone), so the loss
 * falls on the request it names.
 */
export async function twoGrants(t: Test, own?: { call: Call; says: string }, healed = "handle 99's unlock of nothing (a's next step commits)") {
  const n = await nodes(t, 'default');
  const { engine, a, b } = n;
  await stage(t, holds(b, 1, lk('q9', 9, F_WRLCK, F_SETLK, 5, 10), "q9's lock of [5,15)"), ...(own ? [holds(a, 1, own.call, own.says, own.says)] : []));
  const to1 = answersTo(a, 4);
  const to2 = answersTo(a, 5);
  await stage(
    t,
    waits(a, 4, lkFh(1, F_WRLCK, F_SETLKW, 5, 5), "p1's waiter for [5,10) through handle 1"),
    waits(a, 5, lkFh(2, F_WRLCK, F_SETLKW, 10, 5), "p1's waiter for [10,15) through handle 2"),
  );
  await closeOwed(t, a, to1, 'the first waiter ended with the close', close(1), undefined, 6);
  await grantHeld(t, a, holds(b, 3, lk('q9', 9, F_UNLCK, F_SETLK, 5, 10), "q9's unlock of [5,15)"), 2);
  t.same(await held(engine), [own ? 'a held write p1 0-14' : 'a held write p1 5-14'], `b's one step granted both waiters, merged${own ? " with p1's [0,5)" : ''}`);
  a.release();
  await answered(a, 5, "p1's waiter for [10,15)");
  t.match(to2, [{ result: 0 }], 'the second waiter told granted');
  // heal's steps inline: see the note above.
  a.policy = () => 'pass';
  a.sf.run(7, uf(99, 1000, 1), a.target);
  t.equal(await answered(a, 7, healed), 158);
  return { ...n, to1, to2 };
}

/**
 * Resolves once a has no owed try of /a pending (SharedFiles.retryOwed: scheduled, or cut short
 * by a heal and not run yet): a's steps from now on are those its requests make. The event: the
 * try's entry gone from a's owed retries (its step, if it made one, committed).
 */
export async function ownTryDone(a: TestNode, path = '/a'): Promise<void> {
  const retries = (a.sf as unknown as { owedRetries: Map<string, unknown> }).owedRetries;
  await until(() => !retries.has(path), `a's owed try of ${path} done`);
}

/** The lines `got` (a node's log, from a point on) are as many as `want`, each matching its pattern. */
export function lines(t: Test, got: readonly string[], want: readonly RegExp[], what: string): void {
  t.equal(got.length, want.length, `${what}: ${want.length} step(s)`);
  t.match(got, want, what);
}

/** The faults `n` reported are as many as `want`, each matching its pattern. */
export function faults(t: Test, n: TestNode, want: readonly RegExp[], what: string): void {
  t.equal(n.faults.length, want.length, `${what}: ${want.length} fault(s)`);
  t.match(n.faults, want, what);
}

/** How a learns of b's grant: its inbox event read at once, or a step of a's stale reply first. */
export type Learned = 'inbox' | 'stale reply';
/** How the owed release is settled: a's next step, or an engine reset (both nodes put back what they hold). */
export type Settled = 'next step' | 'engine reset';

/**
 * After b's grant held in a's inbox and an owed release: a learns the grant (`learned`; with a
 * stale reply, a's step `step` first, asserted granted), the release is settled (`settled`), and
 * a's next step (request 7) commits.
 */
export async function learnSettle(t: Test, n: { engine: MemoryEngine; a: TestNode; b: TestNode }, learned: Learned, settled: Settled, step: Req): Promise<void> {
  const { engine, a, b } = n;
  if (learned === 'inbox') a.release();
  if (settled === 'engine reset') {
    await resetBoth(engine, a, b, true, true);
    a.policy = () => 'pass';
  }
  if (learned === 'stale reply') {
    // a's next step learns the grant from the changes it missed, before the event.
    a.policy = () => 'pass';
    await stage(t, step);
    a.release();
  }
  await heal(t, a, 7);
}

/**
 * a's release `call` (request 5) in flight: its first try is dropped, and while it is `meanwhile`
 * runs (b's grant of the release's waiter); then a reaches the engine again, and the retry finds
 * what `meanwhile` did (a stale reply). a's inbox reader is slow from the start (TestNode.held).
 */
export async function inFlight(a: TestNode, call: Call, meanwhile: () => Promise<void>, what = "handle 1's close"): Promise<void> {
  a.policy = () => 'drop';
  a.held = [];
  a.afterDrop = async () => {
    a.afterDrop = undefined;
    await meanwhile();
    a.policy = () => 'pass';
  };
  a.sf.run(5, call, a.target);
  await answered(a, 5, what);
}

/** The Windows or POSIX form of a stage. */
export type Family = 'windows' | 'posix';

/**
 * b holds [20,30) (handle 9, or q9); a's handle 1 (or p1 through file handle 1) holds [0,10) and
 * waits for [20,30) (request 4), a's handle 2 (or p2) holds [60,70). Returns the nodes and b's
 * unlock of [20,30) (its request 3).
 */
export async function closeStage(t: Test, family: Family) {
  const n = await nodes(t, 'default');
  const { a, b } = n;
  if (family === 'windows') {
    await stage(
      t,
      holds(b, 1, lf(9, 20, 10), "b's handle 9's lock of [20,30)"),
      holds(a, 1, lf(1, 0, 10), "handle 1's lock of [0,10)"),
      holds(a, 2, lf(2, 60, 10), "handle 2's lock of [60,70)"),
      waits(a, 4, lw(1, 20, 10), "handle 1's waiter for [20,30) queued"),
    );
  } else {
    await stage(
      t,
      holds(b, 1, lk('q9', 9, F_WRLCK, F_SETLK, 20, 10), "q9's lock of [20,30)"),
      holds(a, 1, lk('p1', 1, F_WRLCK, F_SETLK, 0, 10), "p1's lock of [0,10)"),
      holds(a, 2, lk('p2', 2, F_WRLCK, F_SETLK, 60, 10), "p2's lock of [60,70)"),
      waits(a, 4, lk('p1', 1, F_WRLCK, F_SETLKW, 20, 10), "p1's waiter for [20,30) queued"),
    );
  }
  return { ...n, unlock: holds(b, 3, family === 'windows' ? uf(9, 20, 10) : lk('q9', 9, F_UNLCK, F_SETLK, 20, 10), "b's unlock of [20,30)") };
}

/**
 * a cut off, a's waiter `id` cancelled for `reason`: answered at once (the removal owed), with
 * `code` (a Windows code, or a POSIX result), `says` the assert's message. Resolves with the
 * answers to that request from the cancel on.
 */
export async function cancelCut(t: Test, a: TestNode, id: number, reason: 'timeout' | 'abort', code: number, what: string, says?: string): Promise<unknown[]> {
  const told = answersTo(a, id);
  a.policy = () => 'drop';
  a.sf.cancel(id, reason);
  const res = await answered(a, id, what);
  const msg: [] | [string] = says === undefined ? [] : [says];
  if (typeof res === 'number') t.equal(res, code, ...msg);
  else t.match(res, { result: code }, ...msg);
  return told;
}

/** For replyLost: from the lost reply on, a's steps are dropped (cut off). */
export const dropAfter = (a: TestNode) => async (): Promise<void> => {
  a.policy = () => 'drop';
};

/**
 * After ownTryDone: a's next step, that of `call` (request `id` of a), applies but its reply is
 * lost (loseNext), and `then` runs; resolves with a's log length before it and the request's
 * answer (`what` naming the wait).
 */
export async function replyLost(a: TestNode, id: number, call: Call, what: string, then?: () => Promise<void>): Promise<{ at: number; got: unknown }> {
  await ownTryDone(a);
  const at = a.log.length;
  loseNext(a, then);
  a.sf.run(id, call, a.target);
  return { at, got: await answered(a, id, what) };
}

/**
 * replyLost of `call` (request 8 of a), answered as failed (asserted, 'answered as failed'); a's
 * next step's stale reply shows it applied, and from then a's steps are dropped: the undo decided
 * then is cut off (resolves once its step was). Resolves with a's log length before the request.
 */
export async function undoCut(t: Test, a: TestNode, call: Call, what: string): Promise<number> {
  // Only stale replies after a's owed try is done count (replyLost's own wait for it: at once).
  await ownTryDone(a);
  let stale = false;
  a.onReply = (r) => {
    if (!r.ok && r.reason === 'stale') stale = true;
  };
  let cutDone!: () => void;
  const cut = new Promise<void>((r) => (cutDone = r));
  const { at, got } = await replyLost(a, 8, call, what, async () => {
    a.policy = () => (stale ? 'drop' : 'pass');
    a.afterDrop = async (s: S) => {
      if (s.id === undefined) cutDone();
    };
  });
  t.match(got, { result: -ENOLCK }, 'answered as failed');
  await within(cut, BUDGET_MS, "the undo's step, cut off");
  return at;
}
