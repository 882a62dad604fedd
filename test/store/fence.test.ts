/**
 * Step.fence on both engines: the engine keeps each file's last fence (FileState.fence, also in
 * a stale reply's changes or whole state) and applies a step whose grants hold fence numbers only
 * if the lowest is above that last and the highest not past max(its time in µs, last +
 * FENCE_SLACK_US); else 'fence' with the last and its time. The last outlives the file's keys (a
 * tombstone, FENCE_KEEP_MS at least) so a grant after the file had no record left (version 0
 * again) is still above. Only the file's own grants move it: another file's steps refuse nothing.
 */
import t, { type Test } from 'tap';
import { FENCE_KEEP_MS, FENCE_SLACK_US } from '../../src/store/memory.js';
import { MemoryEngine, type CommitReply } from '../../src/store/index.js';
import { cluster, type Kind } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer | undefined;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

const lock = (id: string) => ({ id, state: 'held' as const, data: id });

function refused(t: Test, r: CommitReply, what: string): { last: number; nowUs: number } {
  t.match(r, { ok: false, reason: 'fence' }, `${what}: refused 'fence'`);
  if (r.ok || r.reason !== 'fence') throw new Error(`expected 'fence', got ${JSON.stringify(r)}`);
  t.ok(Number.isSafeInteger(r.last) && Number.isSafeInteger(r.nowUs), `${what}: with the file's last fence and the engine's time`);
  return r;
}

function accepted(t: Test, r: CommitReply, what: string): number {
  t.equal(r.ok, true, `${what}: accepted (${JSON.stringify(r)})`);
  return r.ok ? r.version : -1;
}

for (const kind of ['memory', 'redis'] as Kind[]) {
  t.test(`${kind}: a file's fences grow across nodes, across its version 0, and other files refuse nothing`, { skip: kind === 'redis' && noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    // The engine's time, from a refusal of a number far ahead of it.
    const probe = refused(t, await a!.commit({ file: '/probe', base: 0, put: [lock('p1')], fence: [2 ** 52, 2 ** 52] }), 'a number far past the engine time');
    t.equal(probe.last, 0, 'a file never granted has no last fence');
    const f1 = probe.nowUs;
    const v1 = accepted(t, await a!.commit({ file: '/f', base: 0, put: [lock('a1')], fence: [f1, f1] }), "a's grant on /f");
    t.equal((await b!.load('/f')).fence, f1, 'the file keeps it (load)');
    // b knows the version and the last fence: a number above applies, one at it does not.
    const r1 = refused(t, await b!.commit({ file: '/f', base: v1, put: [lock('b1')], fence: [f1, f1] }), "b's grant with a's number");
    t.equal(r1.last, f1, "the refusal tells a's number");
    t.same((await b!.load('/f')).records.map((r) => r.id), ['a1'], 'the refusal changed nothing');
    const v2 = accepted(t, await b!.commit({ file: '/f', base: v1, put: [lock('b1'), lock('b2')], fence: [f1 + 1, f1 + 2] }), "b's two grants, above it");
    // a's cache is behind: the stale reply's changes tell the last fence with the version.
    const st = await a!.commit({ file: '/f', base: v1, remove: ['a1'] });
    t.match(st, { ok: false, reason: 'stale', version: v2 }, "a's step on the old version is stale");
    t.equal(!st.ok && st.reason === 'stale' ? (st.missed?.at(-1)?.fence ?? st.fence) : undefined, f1 + 2, 'and tells the last fence with the version');
    // Another file's grants do not move /f's last, nor refuse its steps.
    let gv = 0;
    for (let i = 1; i <= 5; i++) gv = accepted(t, await a!.commit({ file: '/g', base: gv, put: [lock(`g${i}`)], fence: [f1 + 100 * i, f1 + 100 * i] }), `a grant on /g (${i})`);
    const v3 = accepted(t, await a!.commit({ file: '/f', base: v2, put: [lock('a3')], fence: [f1 + 3, f1 + 3] }), "a's grant on /f just above its last, after /g's larger numbers");
    // The file left with no record: version 0 again, its last fence kept (the tombstone).
    t.equal(accepted(t, await b!.commit({ file: '/f', base: v3, remove: ['a1', 'b1', 'b2', 'a3'] }), 'every record removed'), 0, 'version 0');
    t.equal((await a!.load('/f')).fence, f1 + 3, 'its last fence is kept');
    const r2 = refused(t, await b!.commit({ file: '/f', base: 0, put: [lock('b4')], fence: [f1 + 3, f1 + 3] }), "a grant on the empty file with the last number");
    t.equal(r2.last, f1 + 3, 'the refusal tells it');
    refused(t, await b!.commit({ file: '/f', base: 0, put: [lock('b4')], fence: [5, 5] }), 'or a smaller one');
    // A step that grants nothing creates the file again: the tombstone still counts.
    const v4 = accepted(t, await b!.commit({ file: '/f', base: 0, put: [{ id: 'w1', state: 'waiting', requestId: 'q1', data: 'w1' }] }), 'a waiting record, no fence');
    refused(t, await b!.commit({ file: '/f', base: v4, put: [lock('b4')], fence: [f1 + 3, f1 + 3] }), 'then a grant with the last number');
    accepted(t, await b!.commit({ file: '/f', base: v4, put: [lock('b4')], fence: [f1 + 4, f1 + 4] }), 'one above it applies');
    t.equal((await a!.load('/f')).fence, f1 + 4, 'the new last');
    // Far ahead of the engine's time: refused, even above the last.
    const now = refused(t, await a!.commit({ file: '/h', base: 0, put: [lock('h1')], fence: [f1 + 10 * FENCE_SLACK_US + 2 ** 40, f1 + 10 * FENCE_SLACK_US + 2 ** 40] }), 'a number far past the engine time').nowUs;
    accepted(t, await a!.commit({ file: '/h', base: 0, put: [lock('h1')], fence: [now, now] }), 'the engine time itself applies');
  });
}

for (const kind of ['memory', 'redis'] as Kind[]) {
  t.test(`${kind}: after a loss of the data, records put back keep their fences and the file's last is at least the highest`, { skip: kind === 'redis' && noRedis }, async (t) => {
    // Its own server: restarted.
    const own = kind === 'redis' ? await RedisServer.start() : undefined;
    t.teardown(() => own?.stop());
    const c = await cluster(kind, [], own, { sessionTtlMs: 6000, graceMs: 4000 });
    t.teardown(() => c.close());
    const a = (await c.add('a')).store;
    const node = c.nodes[0]!;
    const probe = refused(t, await a.commit({ file: '/p', base: 0, put: [lock('p')], fence: [2 ** 52, 2 ** 52] }), 'a number far past the engine time');
    // A lock record as src/core/records.ts writes it, with its fence (a string value holding '"f":' is escaped).
    const f = probe.nowUs;
    const held = { id: 'a1', state: 'held' as const, data: JSON.stringify({ s: '"f":9', o: 'a:1', f }) };
    // (Held before the loss: the new namespace's grace period refuses its grant here, which changes nothing below.)
    const reset = node.session.next('a to hear of the loss', (e) => e.kind === 'reset');
    if (c.memory !== undefined) c.memory.reset();
    else await own!.restart();
    await reset;
    t.equal((await a.load('/f')).records.length, 0, 'the data is gone');
    t.equal((await a.reassert('/f', [held])).ok, true, 'a puts its lock back in the grace period');
    const back = await a.load('/f');
    t.same(back.records.map((r) => r.data), [held.data], 'with its fence in its record');
    t.equal(back.fence, f, "the file's last fence is the record's");
  });
}

t.test('memory, a clock that stands still: numbers go on one at a time above the last, up to FENCE_SLACK_US past it; the tombstone is kept FENCE_KEEP_MS', async (t) => {
  let clock = 0;
  const e = new MemoryEngine({ now: () => clock });
  const o = e.openSync('a', 1000, 0);
  const ref = { node: 'a', epoch: o.epoch, incarnation: o.incarnation };
  const rec = (id: string) => ({ id, node: 'a', epoch: o.epoch, state: 'held' as const, requestId: '', data: id, seq: 0 });
  const step = (base: number, name: string, remove: string[], put: ReturnType<typeof rec>[], fence?: [number, number]) => ({ file: '/x', base, step: name, grants: put.length > 0, remove, put, notify: [], edges: [], ...(fence === undefined ? {} : { fence }) });
  let v = 0;
  let prev: string[] = [];
  for (let i = 1; i <= 20; i++) {
    const r = e.commitSync(ref, step(v, `s${i}`, prev, [rec(`r${i}`)], [i, i]));
    if (!r.ok) return t.fail(`grant ${i} at a clock of 0: ${JSON.stringify(r)}`);
    v = r.version;
    prev = [`r${i}`];
  }
  t.pass('20 grants with the clock at 0, each one above the last');
  t.match(e.commitSync(ref, step(v, 'far', prev, [rec('far')], [21, 21 + FENCE_SLACK_US])), { ok: false, reason: 'fence', last: 20, nowUs: 0 }, 'more than FENCE_SLACK_US past the last, with the clock behind: refused');
  t.equal(e.commitSync(ref, step(v, 'empty', prev, [])).ok, true, 'the file left with no record');
  // a's session (TTL 1 s) is gone by then: b asks.
  clock = FENCE_KEEP_MS - 1;
  const ob = e.openSync('b', 1000, 0);
  const bRef = { node: 'b', epoch: ob.epoch, incarnation: ob.incarnation };
  const bRec = { ...rec('b1'), node: 'b', epoch: ob.epoch };
  t.match(e.commitSync(bRef, step(0, 'again', [], [bRec], [20, 20])), { ok: false, reason: 'fence', last: 20 }, 'its last is kept until FENCE_KEEP_MS after');
  clock = FENCE_KEEP_MS;
  t.equal(e.commitSync(bRef, step(0, 'later', [], [bRec], [20, 20])).ok, true, 'then forgotten (the engine time in µs is far past it by then)');
});

t.test('step.fence is checked at the boundary', async (t) => {
  const c = await cluster('memory', ['a'], undefined);
  t.teardown(() => c.close());
  const a = c.nodes[0]!.store;
  for (const bad of [[2, 1], [0, 1], [1.5, 2], [1], 'x', [1, 2 ** 60]]) {
    await t.rejects(a.commit({ file: '/f', base: 0, put: [lock('a1')], fence: bad as never }), { name: 'TypeError', message: /step\.fence/ }, `fence ${JSON.stringify(bad)}`);
  }
});
