/**
 * Review of the per-file fence (Step.fence): a node whose cache knows a file's last fence L while
 * the engine has lost it (restarted without its data) and its clock is behind L (a failover to a
 * replica whose clock is behind, then the loss). The node proposes L + 1; the engine, whose last is
 * 0, refuses any number past max(its time, 0 + FENCE_SLACK_US): 'fence', again and again, each time
 * with the approval hook asked again. A request must end (API.md: every waiting request ends), not
 * spin. Real SharedFiles over a MemoryEngine whose clock the test sets (it stands still between
 * settings: the engine also allows a proposal FENCE_SLACK_US past its time, which a node's estimate
 * from below passes against a clock that does not move). Another lock of the node on the file keeps
 * its actor, and the cache's last, across the loss. Fixed: a refusal's last is the file's, also
 * below the cache's.
 */
import t from 'tap';
import { F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import type { CommitReply } from '../../src/store/index.js';
import { BUDGET_MS, MemoryEngine, endGrace, lk, node, resetEngine, within } from './lost-link.js';

t.test(
  "a node's cached last fence ahead of an engine that lost its data and whose clock is behind: the request ends without spinning on 'fence' refusals",
  async (t) => {
    const T0 = 1_800_000_000_000;
    let clock = T0;
    const engine = new MemoryEngine({ now: () => clock });
    let asked = 0;
    const a = await node(engine, 'a', 'default', 5_000, 0, {
      approve: () => {
        asked++;
        return 0;
      },
    });
    t.teardown(() => a.store.close());
    // The file's last fence at the engine's time (another node's grant, then its release: the tombstone).
    const z = engine.openSync('z', 60_000, 0);
    const zRef = { node: 'z', epoch: z.epoch, incarnation: z.incarnation };
    const zRec = { id: 'z1', node: 'z', epoch: z.epoch, state: 'held' as const, requestId: '', data: '{}', seq: 0 };
    const zs = engine.commitSync(zRef, { file: '/a', base: 0, step: 'z1', grants: true, remove: [], put: [zRec], notify: [], edges: [], fence: [T0 * 1000, T0 * 1000] });
    if (!zs.ok) return t.fail(JSON.stringify(zs));
    t.equal(engine.commitSync(zRef, { file: '/a', base: zs.version, step: 'z2', grants: false, remove: ['z1'], put: [], notify: [], edges: [] }).ok, true, "z's lock released");
    a.sf.run(1, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
    t.match(await within(a.answer(1), BUDGET_MS, "a's first lock"), { result: 0 }, 'a locks /a, above the last fence (learned from a refusal)');
    a.sf.run(2, lk('p1', 1, F_UNLCK, F_SETLK), a.target);
    await within(a.answer(2), BUDGET_MS, "a's unlock");
    // p2 holds other bytes across the loss: the file's actor, and its cache's last fence, stay.
    a.sf.run(4, lk('p2', 2, F_WRLCK, F_SETLK, 100, 10), a.target);
    t.match(await within(a.answer(4), BUDGET_MS, "p2's lock"), { result: 0 }, 'p2 locks [100,110)');
    // A failover to a clock 10 minutes behind, and the engine's data lost.
    clock = T0 - 600_000;
    await resetEngine(engine, a);
    await endGrace(engine, a);
    let refusals = 0;
    let spun!: () => void;
    const spinning = new Promise<void>((r) => (spun = r));
    a.onReply = (r: CommitReply) => {
      if (!r.ok && r.reason === 'fence' && ++refusals === 50) spun();
    };
    const before = asked;
    a.sf.run(3, lk('p1', 1, F_WRLCK, F_SETLK), a.target);
    const res = await within(Promise.race([a.answer(3).then(() => 'answered'), spinning.then(() => 'spun')]), BUDGET_MS, "a's lock after the loss, answered or refused 50 times");
    t.equal(res, 'answered', `a's request is answered (${refusals} 'fence' refusals, the hook asked ${asked - before} times)`);
    t.ok(refusals < 5, `few 'fence' refusals (${refusals})`);
  },
);
