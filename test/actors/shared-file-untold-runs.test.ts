/**
 * Cost of the untold rule by bytes (SharedFile.untold) for a close that ends many waiters whose
 * grants sit in one merged POSIX lock: K waiters of p1 (node a) through handle 1, each for its own
 * 10 bytes behind q9 (node b); b's one unlock grants them all, and the engine merges them into one
 * lock of p1. a's close of handle 1 learns that from its stale reply and ends the K waiters: each
 * grant's bytes are a run of their own, told if the grant's event is read before the close's
 * notice leaves. Which runs those are is known only then; the notices must not be prepared for
 * every span of runs that might be one (K^2/2 of them, each an event object and an answer), but
 * made when the notice leaves. Counted (calls of the release hook the actor is given, made or
 * told), not timed: a clock would not see a blocked thread. Three ways: no event read before the
 * close's notice leaves (no notice: the caller never held those bytes); every event read once the
 * close committed, before its answers leave (each waiter told granted: one notice, the whole
 * lock); the events of every other waiter read so (a notice for each of their grants, in order). Real SharedFiles over a MemoryEngine, behind the lost-link harness; every wait is for an
 * answer, an inbox event or an engine record, within the harness's budget.
 */
import t from 'tap';
import { EINTR, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { parseRelease } from '../../src/core/requests.js';
import { SharedFiles } from '../../src/actors/shared-files.js';
import type { TableHooks } from '../../src/core/lock-table.js';
import { answered, lk } from './lost-link.js';
import { answersTo, held, nodes, until } from './reset-harness.js';

const K = 200;

const says = {
  none: 'none told: no notice',
  all: 'every grant told before its notice leaves: one notice for the whole lock',
  even: "every other grant told before its notice leaves: a notice for each of their bytes",
} as const;

for (const read of ['none', 'all', 'even'] as const) {
  t.test(`a close ending ${K} waiters whose grants sit in one merged lock, ${says[read]}; notices made in calls linear in the waiters`, async (t) => {
    const { engine, a, b, released } = await nodes(t, 'default');
    b.sf.run(1, lk('q9', 9, F_WRLCK, F_SETLK, 0, 10 * K), b.target);
    t.match(await answered(b, 1, `q9's lock of [0,${10 * K})`), { result: 0 });
    const told = Array.from({ length: K }, (_, i) => answersTo(a, 10 + i));
    for (let i = 0; i < K; i++) a.sf.run(10 + i, lk('p1', 1, F_WRLCK, F_SETLKW, 10 * i, 10), a.target);
    for (let i = 0; i < K; i++) await answered(a, -(10 + i), `p1's waiter ${i} queued`);
    // The waiters told granted (their events read before the close's answers leave), by record id.
    const toTell = new Set(Array.from({ length: K }, (_, i) => (read === 'all' || (read === 'even' && i % 2 === 0) ? a.sf.ridOf(10 + i) : undefined)).filter((x) => x !== undefined));
    a.held = [];
    b.sf.run(2, lk('q9', 9, F_UNLCK, F_SETLK, 0, 10 * K), b.target);
    t.match(await answered(b, 2, "q9's unlock"), { result: 0 });
    await until(() => (a.held?.length ?? 0) >= K, "the grants' events in a's inbox");
    t.same(await held(engine), [`a held write p1 0-${10 * K - 1}`], "b's one step granted every waiter, merged into one lock");
    // Every call of the release hook of a's actor (tableHooks): each notice made, by the decision or when it leaves.
    const proto = SharedFiles.prototype as unknown as { tableHooks: (out: unknown) => TableHooks };
    const tableHooks = proto.tableHooks;
    let calls = 0;
    proto.tableHooks = function (this: unknown, out: unknown) {
      const h = tableHooks.call(this, out);
      const r = h.released;
      if (r === undefined) return h;
      return {
        ...h,
        released: (...args: Parameters<typeof r>) => {
          calls++;
          r(...args);
        },
      };
    };
    t.teardown(() => void (proto.tableHooks = tableHooks));
    if (read !== 'none') {
      // Those events read once the close committed, before its answers leave; the others held back.
      a.onReply = (r) => {
        if (!r.ok) return;
        a.onReply = undefined;
        const all = a.held ?? [];
        a.held = all.filter((e) => toTell.has(e.requestId));
        a.release();
        a.held = all.filter((e) => !toTell.has(e.requestId));
      };
    }
    a.sf.run(5, parseRelease({ path: '/a', fileHandle: 1 }), a.target);
    await answered(a, 5, "handle 1's close");
    proto.tableHooks = tableHooks;
    t.same(await held(engine), [], 'the close committed: nothing of p1');
    a.release();
    const ends = await Promise.all(Array.from({ length: K }, (_, i) => answered(a, 10 + i, `p1's waiter ${i}`)));
    t.equal(ends.length, K);
    t.ok(
      told.every((x) => x.length === 1),
      'each waiter answered once',
    );
    t.same(
      told.map((x) => (x[0] as { result: number }).result),
      Array.from({ length: K }, (_, i) => (read === 'all' || (read === 'even' && i % 2 === 0) ? 0 : -EINTR)),
      'the waiters whose events were read told granted, the others ended with the close (EINTR)',
    );
    const notices = { none: [], all: [`posix:0+${10 * K}`], even: Array.from({ length: K / 2 }, (_, i) => `posix:${20 * i}+10`) }[read];
    t.same(released, notices, "the close's notices: for the bytes of the grants told, one per run, in order, once");
    t.ok(calls <= K, `notices made in at most ${K} calls of the release hook (${calls})`);
    t.same(a.faults, [], 'nothing reported');
  });
}
