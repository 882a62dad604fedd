/**
 * The edges of REASSERT's fence, on both engines: the file's last fence is raised by the record's
 * own fence (the top-level 'f' of its JSON data, src/core/records.ts), never by a '"f":N' found
 * elsewhere in the record's text (a waiter's requestId, a nested object of its data); and a fence
 * that is no safe integer is refused before it is stored (TypeError at the store's boundary, the
 * engine's refusal below it): stored, it would refuse every later grant of the file, as no number
 * above it is a safe integer (Step.fence).
 */
import t, { type Test } from 'tap';
import { ProgrammingError } from '../../src/store/memory.js';
import type { CommitReply, Engine, NodeStore } from '../../src/store/index.js';
import { cluster, type Kind } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

const lock = (id: string) => ({ id, state: 'held' as const, data: id });

function nowUs(r: CommitReply): number {
  if (r.ok || r.reason !== 'fence') throw new Error(`expected 'fence', got ${JSON.stringify(r)}`);
  return r.nowUs;
}

/** A node, its engine and session (the engine's own checks, below the store's boundary). */
function engineOf(store: NodeStore): { engine: Engine; ref: { node: string; epoch: number; incarnation: string } } {
  const s = store as unknown as { engine: Engine; ref: { node: string; epoch: number; incarnation: string } };
  return { engine: s.engine, ref: s.ref };
}

/** A cluster of one node 'a' whose engine has just lost its data (grace period running); the engine's time in µs. */
async function afterLoss(t: Test, kind: Kind) {
  const own = kind === 'redis' ? await RedisServer.start() : undefined;
  t.teardown(() => own?.stop());
  const c = await cluster(kind, [], own, { sessionTtlMs: 6000, graceMs: 4000 });
  t.teardown(() => c.close());
  const node = await c.add('a');
  const a = node.store;
  const us = nowUs(await a.commit({ file: '/p', base: 0, put: [lock('p')], fence: [2 ** 52, 2 ** 52] }));
  const reset = node.session.next('a to hear of the loss', (e) => e.kind === 'reset');
  if (c.memory !== undefined) c.memory.reset();
  else await own!.restart();
  await reset;
  return { a, us, node };
}

for (const kind of ['memory', 'redis'] as Kind[]) {
  t.test(`${kind}: REASSERT raises the file's last fence by the record's own 'f' only`, { skip: kind === 'redis' && noRedis }, async (t) => {
    const { a, us } = await afterLoss(t, kind);
    const f = us;
    const decoy = f + 5_000_000;
    // A held lock with its fence, and a nested object holding a larger 'f'; a waiter whose
    // requestId reads '{"f":<larger>' (the Redis record text holds it unescaped).
    const held = { id: 'a1', state: 'held' as const, data: JSON.stringify({ o: 'a:1', x: { f: decoy }, f }) };
    const waiter = { id: 'a2', state: 'waiting' as const, requestId: `q{"f":${decoy + 1}`, data: JSON.stringify({ o: 'a:2', t: 1 }) };
    t.equal((await a.reassert('/f', [held, waiter])).ok, true, 'a puts its lock and its waiter back');
    const back = await a.load('/f');
    t.same(
      back.records.map((r) => r.id),
      ['a1', 'a2'],
      'both are back',
    );
    t.equal(back.fence, f, "the file's last fence is the lock's own, not a decoy's");
    // Data that is no JSON object carries no fence.
    t.equal((await a.reassert('/g', [{ id: 'a3', state: 'held', data: `{"o":"a:3"} ,"f":${decoy}` }])).ok, true, 'a record whose data is no JSON');
    t.equal((await a.load('/g')).fence, undefined, 'gives the file no fence');
  });

  t.test(`${kind}: a fence that is no safe integer is refused before it is stored; the file keeps granting`, { skip: kind === 'redis' && noRedis }, async (t) => {
    const { a, us, node } = await afterLoss(t, kind);
    const bad = [`${2 ** 53 + 2}`, '1e300', '0', '-5', '1.5'];
    for (const n of bad) {
      const rec = { id: 'a1', state: 'held' as const, data: `{"o":"a:1","f":${n}}` };
      await t.rejects(a.reassert('/f', [lock('ok1'), rec]), { name: 'TypeError', message: /records\[1\]\.data.*"f".*safe integer/ }, `fence ${n}: a TypeError naming the record`);
      // Below the boundary, the engine refuses it too (a caller that skipped the store's checks).
      const { engine, ref } = engineOf(a);
      const r = { ...rec, node: 'a', epoch: ref.epoch, requestId: '', seq: 0 };
      await t.rejects(engine.reassert(ref, '/f', `s-${n}`, [r], []), ProgrammingError, `fence ${n}: the engine refuses it`);
    }
    const st = await a.load('/f');
    t.same({ version: st.version, fence: st.fence }, { version: 0, fence: undefined }, 'nothing was stored');
    // A good fence put back, then the file's grants go on above it once the grace period ends.
    t.equal((await a.reassert('/f', [{ id: 'a1', state: 'held', data: JSON.stringify({ o: 'a:1', f: us }) }])).ok, true, 'a lock with a safe fence is put back');
    t.equal((await a.load('/f')).fence, us, 'its fence is the last');
    await node.session.next('the grace period to end', (e) => e.kind === 'grace-ended');
    const granted = await a.commit({ file: '/f', base: (await a.load('/f')).version, put: [lock('a2')], fence: [us + 1, us + 1] });
    t.equal(granted.ok, true, 'a grant above it applies');
    const v = granted.ok ? granted.version : 0;
    t.equal((await a.load('/f')).fence, us + 1, 'and moves the last');
    t.equal((await a.commit({ file: '/f', base: v, put: [lock('a3')], fence: [us + 2, us + 2] })).ok, true, 'and the next one');
  });
}
