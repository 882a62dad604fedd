/**
 * One atomic step, on both engines (the same scenario, the same replies): accept and refuse, the
 * missed changes of a stale copy (from the log, or the whole record set once the log no longer
 * reaches back), records of dead sessions, grants in a grace period, notifications, the
 * session → files index and the reaper, and the end of a file's keys.
 */
import t, { type Test } from 'tap';
import { LOG_MAX, memoryStore, ProgrammingError, RedisEngine, type CommitReply, type StoreRecord } from '../../src/store/index.js';
import { MemoryEngine, REAPED_KEEP_MS } from '../../src/store/memory.js';
import { lateAfterMs } from '../../src/store/options.js';
import { within } from '../../driver/redis-server.js';
import { cluster, type Kind } from './fixture.js';
import { RedisServer, noRedis } from './redis-server.js';

let server: RedisServer | undefined;
t.before(async () => {
  if (!noRedis) server = await RedisServer.start();
});
t.teardown(() => server?.stop());

function ok(t: Test, r: CommitReply, what: string): number {
  t.equal(r.ok, true, `${what}: accepted (${JSON.stringify(r)})`);
  return r.ok ? r.version : -1;
}

const lock = (id: string, data = id) => ({ id, state: 'held' as const, data });
const wait = (id: string, requestId: string, data = id) => ({ id, state: 'waiting' as const, requestId, data });
const shape = (rs: readonly StoreRecord[]) => rs.map((r) => `${r.id}:${r.state}:${r.node}:${r.data}:${r.seq}`);

for (const kind of ['memory', 'redis'] as Kind[]) {
  t.test(`${kind}: accept, stale with the missed changes, stale with the whole set`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const v1 = ok(t, await a!.commit({ file: '/f', base: 0, put: [lock('a1', 'A [0,10)')] }), 'first lock');
    t.ok(v1 > 0, 'a version above 0');
    const st = await b!.load('/f');
    t.equal(st.version, v1, 'the version is the one the step made');
    t.same(shape(st.records), ['a1:held:a:A [0,10):1']);
    t.equal(st.records[0]!.epoch, a!.session().epoch, "the record carries a's session");

    // b decided on version 0 (an empty file): refused, and told what it missed.
    const stale = await b!.commit({ file: '/f', base: 0, put: [lock('b1')] });
    t.match(stale, { ok: false, reason: 'stale', version: v1 });
    if (stale.ok || stale.reason !== 'stale') throw new Error('expected stale');
    t.equal(stale.missed?.length, 1, 'one missed change');
    t.match(stale.missed![0], { base: 0, version: v1, node: 'a', removed: [] });
    t.same(shape(stale.missed![0]!.put), ['a1:held:a:A [0,10):1']);
    t.equal(stale.records, undefined, 'not the whole set');
    t.same(await a!.load('/f'), st, 'nothing changed');

    // Deciding again on v1 succeeds; a replace keeps its place, a new record goes at the end.
    const bStep = await b!.commit({ file: '/f', base: v1, put: [lock('b1', 'B')] });
    const v2 = ok(t, bStep, 'b on the fresh version');
    const v3 = ok(t, await a!.commit({ file: '/f', base: v2, put: [lock('a1', 'A [0,5)'), lock('a2', 'A [7,10)')], grants: false }), 'a split');
    t.same(shape((await a!.load('/f')).records), ['a1:held:a:A [0,5):1', 'b1:held:b:B:2', 'a2:held:a:A [7,10):3']);
    // A removed id put again moves to the end.
    const v4 = ok(t, await a!.commit({ file: '/f', base: v3, remove: ['a1'], put: [lock('a1', 'again')] }), 'remove and put');
    t.same(shape((await a!.load('/f')).records), ['b1:held:b:B:2', 'a2:held:a:A [7,10):3', 'a1:held:a:again:4']);
    const missed = await b!.commit({ file: '/f', base: v2, remove: ['b1'] });
    t.match(missed, { ok: false, reason: 'stale', version: v4 });
    if (!missed.ok && missed.reason === 'stale') {
      t.same(
        missed.missed!.map((m) => [m.base, m.version, m.removed]),
        [
          [v2, v3, []],
          [v3, v4, ['a1']],
        ],
        'the changes since v2, in order',
      );
    }

    // Far behind: the bounded log no longer reaches back, so the whole set comes instead.
    let v = v4;
    for (let i = 0; i < LOG_MAX + 1; i++) v = ok(t, await a!.commit({ file: '/f', base: v, put: [lock('a2', `n${i}`)], grants: false }), `change ${i}`);
    const full = await b!.commit({ file: '/f', base: v2, remove: ['b1'] });
    t.match(full, { ok: false, reason: 'stale', version: v });
    if (!full.ok && full.reason === 'stale') {
      t.equal(full.missed, undefined, 'no missed list');
      t.same(shape(full.records!), shape((await a!.load('/f')).records), 'the whole current set');
      // A reply lost on its way is answered here: b's last step that applied to the file.
      t.equal(full.last, bStep.ok ? bStep.step : 'no step', "with b's last step that applied to the file");
    }
    const aFull = await a!.commit({ file: '/f', base: v2, remove: ['a2'] });
    t.match(aFull, { ok: false, reason: 'stale', version: v }, 'a far behind too');
    const aLast = await a!.commit({ file: '/f', base: v, put: [lock('a3')] });
    t.ok(!aFull.ok && aFull.reason === 'stale' && aLast.ok && aFull.last !== undefined && aFull.last !== (bStep.ok ? bStep.step : ''), "a's is its own");
    const again = await a!.commit({ file: '/f', base: v2, remove: ['a2'] });
    t.equal(!again.ok && again.reason === 'stale' ? again.last : 'not stale', aLast.ok ? aLast.step : 'no step', "a's last step now: the one that just applied");
    // Just inside the log: the changes.
    const near = await b!.commit({ file: '/f', base: v4, remove: ['b1'] });
    t.ok(!near.ok && near.reason === 'stale' && near.missed === undefined, 'LOG_MAX + 1 changes behind: the whole set');
  });

  t.test(`${kind}: the empty file name is a file like any other: steps, stale replies, edges, notifications, listing, the reaper, its keys' end`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const [, nb] = c.nodes;
    const v1 = ok(t, await a!.commit({ file: '', base: 0, put: [lock('a1')] }), "a lock on ''");
    t.match(await b!.commit({ file: '', base: 0, put: [lock('b1')] }), { ok: false, reason: 'stale', version: v1 }, "b's stale copy of '' learns what it missed");
    const bEpoch = b!.session().epoch;
    const v2 = ok(t, await b!.commit({ file: '', base: v1, put: [wait('b2', 'req-b2')], edges: [{ waiter: 'b2', owner: 'ob', hard: ['oa'], check: true }] }), "b's waiter, with its edge");
    t.equal(await a!.closesCycle('oa', ['ob'], true), true, "the edge of a waiter of '' is in the wait-for graph");
    ok(t, await a!.commit({ file: '', base: v2, remove: ['a1'], put: [{ id: 'b2', state: 'held', data: 'b2', node: 'b', epoch: bEpoch }], notify: [{ node: 'b', epoch: bEpoch, requestId: 'req-b2', kind: 'granted' }] }), "a's release grants b's waiter");
    t.match(await nb!.events.next("b's grant"), { file: '', requestId: 'req-b2', kind: 'granted' }, "b's inbox names the file ''");
    t.same(await a!.files(), [''], "'' is listed");
    t.same(shape((await a!.load('')).records), ['b2:held:b:b2:2']);
    await c.expire('b');
    const reaped = await a!.reap();
    t.same(reaped.dead.map((d) => d.files.map((f) => [f.file, f.records.map((r) => r.id)])), [[['', ['b2']]]], "the reaper lists b's record of ''");
    ok(t, await a!.commit({ file: '', base: reaped.dead[0]!.files[0]!.version, remove: ['b2'] }), 'and its removal applies');
    t.same(await a!.files(), [], "'' is gone once empty");
    t.same(await a!.load(''), { version: 0, records: [] });
    if (kind === 'redis') {
      const keys = await (await server!.client()).keys(`{${c.namespace}}:*`);
      t.same(keys.filter((k) => /:(r|m|l|e):$/.test(k)), [], "no keys left for ''");
    }
  });

  // A worker that replaces one that died reads its predecessor's lost session (SharedFiles.
  // recoverLost) maybe after another node reaped it: the reaping steps keep what they removed of
  // it (held records only: a waiter is no lock), which the reading gives after the index.
  t.test(`${kind}: fileReach: a dead session's edges count in no reach, and its waiter's stored edges come back as stored`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b', 'c'], server);
    t.teardown(() => c.close());
    const [, b, cc] = c.nodes.map((n) => n.store);
    // c:1 waits for a:1 on /z; b:1 waits for c:1 on /w: b:1 -> c:1 -> a:1 through the files other than /q.
    ok(t, await cc!.commit({ file: '/z', base: 0, put: [wait('cw', 'q1')], edges: [{ waiter: 'cw', owner: 'c:1', hard: ['a:1'], soft: ['d:1'] }] }), 'c:1 waits for a:1 on /z');
    ok(t, await b!.commit({ file: '/w', base: 0, put: [wait('bw', 'q2')], edges: [{ waiter: 'bw', owner: 'b:1', hard: ['c:1'] }] }), 'b:1 waits for c:1 on /w');
    const before = await b!.fileReach('/q', [['b:1', 'a:1']]);
    t.same(before.reach, [true], 'b:1 -> c:1 -> a:1 while c lives');
    t.same([...(await b!.fileReach('/z', [['b:1', 'a:1']])).edges], [['cw', { hard: ['a:1'], soft: ['d:1'] }]], "/z's edges as stored");
    await c.expire('c');
    t.same((await b!.fileReach('/q', [['b:1', 'a:1']])).reach, [false], "c's edge counts no more");
    const onZ = await b!.fileReach('/z', [['b:1', 'a:1']]);
    t.same(onZ.reach, [false], 'nor on /z');
    t.same([...onZ.edges], [['cw', { hard: ['a:1'], soft: ['d:1'] }]], "c's waiter's edges still come back as stored (its record is the reaper's)");
  });

  t.test(`${kind}: what steps remove of a dead session is read after its index (sessionFiles)`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const engine = kind === 'memory' ? c.memory! : await RedisEngine.connect({ url: server!.url, shownUrl: server!.url, namespace: c.namespace, requestTimeoutMs: 30_000 });
    if (kind === 'redis') t.teardown(() => engine.shutdown());
    const { epoch, incarnation } = a!.session();
    const old = { node: 'a', epoch, incarnation };
    /** Every page of a's old session, one file a page: per file, its records' ids. */
    const read = async (): Promise<Record<string, string[]>> => {
      const out: Record<string, string[]> = {};
      let cursor = '0';
      do {
        const page = await engine.sessionFiles(old, cursor, 1);
        if (page === 'reset') throw new Error('reset');
        for (const f of page.files) out[f.file] = [...new Set([...(out[f.file] ?? []), ...f.records.map((r) => r.id)])].sort();
        cursor = page.cursor;
      } while (cursor !== '0');
      return out;
    };
    ok(t, await a!.commit({ file: '/x', base: 0, put: [lock('a1')] }), 'a locks /x');
    const vy = ok(t, await b!.commit({ file: '/y', base: 0, put: [lock('b1')] }), 'b locks /y');
    ok(t, await a!.commit({ file: '/y', base: vy, put: [lock('a2'), wait('a3', 'req-a3')] }), 'a locks /y elsewhere, and waits there');
    ok(t, await a!.commit({ file: '/z', base: 0, put: [lock('a4')] }), 'a locks /z');
    t.same(await read(), { '/x': ['a1'], '/y': ['a2', 'a3'], '/z': ['a4'] }, "a's session's index");
    await c.expire('a');
    const dead = (await b!.reap()).dead.find((d) => d.node === 'a' && d.epoch === epoch)!;
    for (const f of dead.files.filter((x) => x.file !== '/z')) ok(t, await b!.commit({ file: f.file, base: f.version, remove: f.records.map((r) => r.id) }), `b reaps a's records of ${f.file}`);
    t.same(await read(), { '/x': ['a1'], '/y': ['a2'], '/z': ['a4'] }, "what b reaped (its locks) is read after what is left in the index");
    const z = dead.files.find((x) => x.file === '/z')!;
    ok(t, await b!.commit({ file: '/z', base: z.version, remove: ['a4'] }), "b reaps a's record of /z");
    t.same(await read(), { '/x': ['a1'], '/y': ['a2'], '/z': ['a4'] }, 'and once the index is gone');
    t.same(await read(), { '/x': ['a1'], '/y': ['a2'], '/z': ['a4'] }, 'read again, the same');
    const { epoch: bEpoch } = b!.session();
    t.same(((await engine.sessionFiles({ node: 'b', epoch: bEpoch, incarnation }, '0', 100)) as { files: { file: string }[] }).files.map((f) => f.file), ['/y'], "b's live session: its index only (a release of its own keeps nothing)");
  });

  t.test(`${kind}: a step that arrives past its deadline is refused and changes nothing; a stale one still learns what it missed`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const now = () => performance.timeOrigin + performance.now();
    // A deadline a second ago: the request was answered as failed already.
    t.match(await a!.commit({ file: '/late', base: 0, put: [lock('a1')], deadline: now() - 1000 }), { ok: false, reason: 'late' }, 'refused as late');
    t.same((await b!.load('/late')).records, [], 'nothing was written');
    const v1 = ok(t, await a!.commit({ file: '/late', base: 0, put: [lock('a1')], deadline: now() + 60_000 }), 'the same step before its deadline');
    // The version check comes first: a step sent again after a lost reply learns that it applied.
    t.match(await a!.commit({ file: '/late', base: 0, put: [lock('a2')], deadline: now() - 1000 }), { ok: false, reason: 'stale', version: v1 }, 'stale before late');
    await t.rejects(a!.commit({ file: '/late', base: v1, deadline: Number.NaN }), TypeError, 'a deadline that is not a time is a TypeError');
  });

  t.test(`${kind}: a step that contradicts the state it names is the caller's bug`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const v = ok(t, await a!.commit({ file: '/g', base: 0, put: [lock('x')] }), 'x');
    await t.rejects(a!.commit({ file: '/g', base: v, remove: ['nope'] }), ProgrammingError, 'removing an absent record');
    await t.rejects(b!.commit({ file: '/g', base: v, put: [{ ...lock('x'), node: 'b' }] }), ProgrammingError, 'changing the owner of a record');
    await t.rejects(a!.commit({ file: '/g', base: v, edges: [{ waiter: 'x', owner: 'a:1', hard: ['b:1'] }] }), ProgrammingError, 'edges of a held lock');
    await t.rejects(a!.commit({ file: '/g', base: v, put: [lock('y'), lock('y')] }), TypeError, 'the same id twice');
    await t.rejects(a!.commit({ file: '/g', base: -1 }), TypeError, 'a negative base');
    await t.rejects(a!.commit({ file: '/g', base: v, put: [{ id: 'w', state: 'waiting', data: '' }] }), TypeError, 'a waiter without a request id');
    await t.rejects(a!.commit({ file: '/g', base: v, put: [{ ...lock('z'), node: 'b' }] }), TypeError, "another node's record without its epoch");
    const w = { id: 'w', state: 'waiting' as const, requestId: 'r', data: '' };
    await t.rejects(a!.commit({ file: '/g', base: v, put: [w], edges: [{ waiter: 'w', owner: 'a:1', hard: ['b:1'], sessions: { 'b:1': [] } }] }), /must name at least one session/, 'an edge target named with no session (the engine would skip it)');
    await t.rejects(a!.commit({ file: '/g', base: v, put: [w], edges: [{ waiter: 'w', owner: 'a:1', hard: ['b:1'], sessions: { 'b:1': ['b|0'] } }] }), TypeError, 'a session with epoch 0');
    await t.rejects(a!.commit({ file: '/g', base: v, put: [w], edges: [{ waiter: 'w', owner: 'a:1', hard: ['b:1'], sessions: { 'b:1': ['b'] } }] }), TypeError, 'a session without its epoch');
    t.equal((await a!.load('/g')).version, v, 'nothing applied');
  });

  t.test(`${kind}: grants to a waiter on another node: one step, one inbox event`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [na, nb] = c.nodes;
    const a = na!.store;
    const b = nb!.store;
    const v1 = ok(t, await a.commit({ file: '/h', base: 0, put: [lock('a1')] }), 'a holds');
    const v2 = ok(t, await b.commit({ file: '/h', base: v1, put: [wait('b1', 'req-7')] }), 'b waits');
    const bEpoch = (await a.load('/h')).records.find((r) => r.id === 'b1')!.epoch;
    // a releases and, in the same step, grants b's waiter and tells b.
    const v3 = ok(
      t,
      await a.commit({
        file: '/h',
        base: v2,
        remove: ['a1'],
        put: [{ id: 'b1', state: 'held', data: 'b1', node: 'b', epoch: bEpoch }],
        notify: [
          { node: 'b', epoch: bEpoch, requestId: 'req-7', kind: 'granted', data: '{"fence":1}' },
          { node: 'a', epoch: a.session().epoch, requestId: 'self', kind: 'granted' },
        ],
      }),
      'release + grant',
    );
    const e = await nb!.events.next('the grant event on b');
    t.match(e, { file: '/h', version: v3, from: 'a', epoch: bEpoch, requestId: 'req-7', kind: 'granted', data: '{"fence":1}' });
    t.same(shape((await b.load('/h')).records), ['b1:held:b:b1:2'], 'granted in place');
    t.equal(na!.events.seen.length, 0, 'no event to the committing node itself');
  });

  t.test(`${kind}: a dead session's records can be removed, never written; the reaper lists them`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const v1 = ok(t, await b!.commit({ file: '/d1', base: 0, put: [lock('b1'), wait('b2', 'r2')] }), 'b on d1');
    const w1 = ok(t, await b!.commit({ file: '/d2', base: 0, put: [lock('b3')] }), 'b on d2');
    const u1 = ok(t, await a!.commit({ file: '/d3', base: 0, put: [lock('a1')] }), 'a on d3');
    const bEpoch = b!.session().epoch;
    t.same(await a!.files(), ['/d1', '/d2', '/d3']);
    t.same((await a!.reap()).dead, [], 'nobody is dead');

    await c.expire('b');
    const grant = await a!.commit({ file: '/d1', base: v1, put: [{ id: 'b2', state: 'held', data: 'b2', node: 'b', epoch: bEpoch }] });
    t.same(grant, { ok: false, reason: 'dead', sessions: [{ node: 'b', epoch: bEpoch }] }, 'no grant to a dead session');
    const own = await b!.commit({ file: '/d2', base: w1, remove: ['b3'] });
    t.same(own, { ok: false, reason: 'fenced' }, "the engine refuses the dead session's own steps");

    const reaped = await a!.reap();
    t.equal(reaped.more, false);
    t.same(
      reaped.dead.map((d) => ({ node: d.node, epoch: d.epoch, files: d.files.map((f) => [f.file, f.version, f.records.map((r) => r.id)]) })),
      [
        {
          node: 'b',
          epoch: bEpoch,
          files: [
            ['/d1', v1, ['b1', 'b2']],
            ['/d2', w1, ['b3']],
          ],
        },
      ],
      "per file, the dead session's records",
    );
    t.same(await a!.reap(), reaped, 'reaping changes nothing: a second reaper sees the same');
    const limited = await a!.reap(1);
    t.equal(limited.more, true, 'a limit cuts the list');
    t.equal(limited.dead[0]!.files.length, 1);

    // The caller removes them through normal steps; a second reaper's step is then stale.
    ok(t, await a!.commit({ file: '/d1', base: v1, remove: ['b1', 'b2'] }), 'remove on d1');
    const second = await a!.commit({ file: '/d1', base: v1, remove: ['b1', 'b2'] });
    t.match(second, { ok: false, reason: 'stale', version: 0, records: [] }, 'the other reaper sees them gone');
    ok(t, await a!.commit({ file: '/d2', base: w1, remove: ['b3'] }), 'remove on d2');
    t.same((await a!.reap()).dead, [], 'nothing left to reap: the dead session left the registry');
    t.same(await a!.files(), ['/d3'], 'empty files are gone');
    t.same(await a!.load('/d1'), { version: 0, records: [] });
    t.equal((await a!.load('/d3')).version, u1);
    if (kind === 'redis') {
      const keys = await (await server!.client()).keys(`{${c.namespace}}:*`);
      t.same(keys.filter((k) => /:(r|m|l|e):\/d[12]$|:sf:b\|/.test(k)), [], 'no keys left for the emptied files or the reaped session');
    }
  });

  t.test(`${kind}: no grant in a grace period; releases and waiters go through`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a'], server, { graceMs: 60_000 });
    t.teardown(() => c.close());
    const a = c.nodes[0]!.store;
    t.equal(a.session().grace, true, 'a new incarnation starts in grace');
    const g = await a.commit({ file: '/g', base: 0, put: [lock('a1')] });
    t.match(g, { ok: false, reason: 'grace' });
    t.ok(!g.ok && g.reason === 'grace' && g.retryInMs > 0 && g.retryInMs <= 60_000, 'with the time left');
    const v = ok(t, await a.commit({ file: '/g', base: 0, put: [wait('w1', 'r1')] }), 'a waiter');
    const v2 = ok(t, await a.commit({ file: '/g', base: v, remove: ['w1'] }), 'a removal');
    ok(t, await a.commit({ file: '/g', base: v2 }), 'an empty step (a read that found a conflict)');
    t.match(await a.commit({ file: '/g', base: v2, grants: true }), { ok: false, reason: 'grace' }, 'an empty step with grants (a read that found the bytes free) is refused');
    if (c.memory !== undefined) c.memory.endGrace();
    else await (await server!.client()).del(`{${c.namespace}}:grace`);
    ok(t, await a.commit({ file: '/g', base: 0, put: [lock('a1')] }), 'a grant once the grace period is over');
  });

  t.test(`${kind}: wait-for edges across nodes: the cycle check runs in the step that adds the edge`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    // a:1 holds /x, b:1 holds /y; a:1 waits for /y (edge a:1 -> b:1).
    const x = ok(t, await a!.commit({ file: '/x', base: 0, put: [lock('ax')] }), 'a:1 holds /x');
    const y = ok(t, await b!.commit({ file: '/y', base: 0, put: [lock('by')] }), 'b:1 holds /y');
    const y2 = ok(t, await a!.commit({ file: '/y', base: y, put: [wait('aw', 'q1')], edges: [{ waiter: 'aw', owner: 'a:1', hard: ['b:1'], check: true }] }), 'a:1 waits on b:1');
    t.equal(await b!.closesCycle('b:1', ['a:1'], true), true, 'b:1 waiting on a:1 would close a cycle');
    t.equal(await b!.closesCycle('b:2', ['a:1'], true), false, 'b:2 would not');
    // b:1 now waits for /x: closes a:1 -> b:1 -> a:1. Refused whole: the waiter is not queued.
    const dl = await b!.commit({ file: '/x', base: x, put: [wait('bw', 'q2')], edges: [{ waiter: 'bw', owner: 'b:1', hard: ['a:1'], check: true }] });
    t.same(dl, { ok: false, reason: 'deadlock', waiter: 'bw', owner: 'b:1' });
    t.equal((await a!.load('/x')).version, x, 'nothing applied');
    // Soft ('fifo') edges do not make a deadlock, and unchecked edges are stored as given.
    const x2 = ok(t, await b!.commit({ file: '/x', base: x, put: [wait('bw', 'q2')], edges: [{ waiter: 'bw', owner: 'b:1', hard: [], soft: ['a:1'], check: true }] }), 'soft edge');
    t.equal(await a!.closesCycle('a:1', ['b:1'], false), true, 'the soft edge is in the graph');
    t.equal(await a!.closesCycle('a:1', ['b:1'], true), false, 'but not among hard edges');
    // The 'fifo' escape's question, for many pairs in one round trip: who already waits for whom.
    t.same(
      await b!.reaches(
        [
          ['b:1', 'a:1'],
          ['a:1', 'b:1'],
          ['b:1', 'x:1'],
        ],
        false,
      ),
      [true, true, false],
      'b:1 -> a:1 (soft), a:1 -> b:1 (hard), nobody waits for x:1',
    );
    t.same(
      await b!.reaches(
        [
          ['b:1', 'a:1'],
          ['a:1', 'b:1'],
        ],
        true,
      ),
      [false, true],
      'among hard edges only a:1 -> b:1',
    );
    t.same(await b!.reaches([], false), [], 'no pairs, no question');
    // The 'fifo' escape's facts for a decision on one file: the reach through the other files'
    // edges only (the decision takes the file's own from the edges returned, as it settles them).
    const both: [string, string][] = [
      ['b:1', 'a:1'],
      ['a:1', 'b:1'],
    ];
    const onX = await b!.fileReach('/x', both);
    t.same(onX.reach, [false, true], "on /x: only a:1 -> b:1 (through /y's edge)");
    t.same([...onX.edges], [['bw', { hard: [], soft: ['a:1'] }]], "/x's own edges, as stored");
    const onY = await b!.fileReach('/y', both);
    t.same(onY.reach, [true, false], "on /y: only b:1 -> a:1 (through /x's edge)");
    t.same([...onY.edges], [['aw', { hard: ['b:1'], soft: [] }]], "/y's own edges, as stored");
    // A file whose name has /y's and a newline: its edges are another file's, not /y's.
    ok(t, await a!.commit({ file: '/y\nz', base: 0, put: [wait('yw', 'q3')], edges: [{ waiter: 'yw', owner: 'a:1', hard: ['c:1'] }] }), "a:1 waits for c:1 on '/y\\nz'");
    t.same((await b!.fileReach('/y', [['a:1', 'c:1']])).reach, [true], "on /y: a:1 -> c:1 through '/y\\nz'");
    t.same((await b!.fileReach('/y\nz', [['a:1', 'c:1']])).reach, [false], "on '/y\\nz': no other file's edge");
    t.same(await b!.fileReach('/none', []), { reach: [], edges: new Map() }, 'a file without edges, no pairs');
    // Granting a's waiter drops its edges with it: then b:1 may wait on a:1.
    const y3 = ok(t, await b!.commit({ file: '/y', base: y2, remove: ['by'], put: [{ id: 'aw', state: 'held', data: 'aw', node: 'a', epoch: a!.session().epoch }] }), 'grant aw');
    t.ok(y3 > 0);
    ok(t, await b!.commit({ file: '/x', base: x2, edges: [{ waiter: 'bw', owner: 'b:1', hard: ['a:1'], check: true }] }), 'b:1 -> a:1 after the grant');
    // The edges of a step are checked in order, each seeing the ones before it.
    const z = ok(t, await a!.commit({ file: '/z', base: 0, put: [lock('az')] }), 'a holds /z');
    const z2 = await b!.commit({
      file: '/z',
      base: z,
      put: [wait('c1', 'r1', 'c'), wait('c2', 'r2', 'd')],
      edges: [
        { waiter: 'c1', owner: 'c:1', hard: ['d:1'], check: true },
        { waiter: 'c2', owner: 'd:1', hard: ['c:1'], check: true },
      ],
    });
    t.same(z2, { ok: false, reason: 'deadlock', waiter: 'c2', owner: 'd:1' }, 'the second edge closes the cycle the first opened');
    // A walk reads an owner's edges once per step, until the step's own edges of that owner change:
    // q:1's (none) are read by the first check, the second gives q:1 one, the third closes through it.
    const z3 = await b!.commit({
      file: '/z',
      base: z,
      put: [wait('p1', 'r3', 'p'), wait('q1', 'r4', 'q'), wait('r1', 'r5', 'r')],
      edges: [
        { waiter: 'p1', owner: 'p:1', hard: ['q:1'], check: true },
        { waiter: 'q1', owner: 'q:1', hard: ['r:1'], check: true },
        { waiter: 'r1', owner: 'r:1', hard: ['p:1'], check: true },
      ],
    });
    t.same(z3, { ok: false, reason: 'deadlock', waiter: 'r1', owner: 'r:1' }, 'p:1 -> q:1 -> r:1 -> p:1 through the edge the step gave q:1 after reading its edges');
    // A dead session's edges do not count.
    ok(t, await a!.commit({ file: '/w', base: 0, put: [wait('aw2', 'r9')], edges: [{ waiter: 'aw2', owner: 'a:1', hard: ['b:1'] }] }), 'an unchecked edge a:1 -> b:1');
    t.equal(await b!.closesCycle('b:1', ['a:1'], true), true, "a live waiter's edge counts");
    await c.expire('a');
    t.equal(await b!.closesCycle('b:1', ['a:1'], true), false, "a's edges died with its session");
  });

  t.test(`${kind}: a step's checked edges are checked in order, each waiter checked later waiting for nobody until its turn`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a'], server);
    t.teardown(() => c.close());
    const a = c.nodes[0]!.store;
    // a:1 waits for b:1 on /g; on /f, c:1 waits for a:1 (its edge as an earlier step left it).
    ok(t, await a.commit({ file: '/g', base: 0, put: [wait('gw', 'r1')], edges: [{ waiter: 'gw', owner: 'a:1', hard: ['b:1'] }] }), 'a:1 -> b:1 on /g');
    const f = ok(t, await a.commit({ file: '/f', base: 0, put: [wait('cw', 'r2'), wait('bw', 'r3')], edges: [{ waiter: 'cw', owner: 'c:1', hard: ['a:1'] }] }), 'c:1 -> a:1 on /f');
    // One step regrows both: b:1 now waits for c:1, and c:1 for d:1 instead of a:1. The final graph
    // has no cycle; b:1's check must not walk c:1's edge the step replaces (b -> c -> a -> b).
    const f2 = ok(
      t,
      await a.commit({
        file: '/f',
        base: f,
        edges: [
          { waiter: 'bw', owner: 'b:1', hard: ['c:1'], check: true },
          { waiter: 'cw', owner: 'c:1', hard: ['d:1'], check: true },
        ],
      }),
      'no EDEADLK from an edge the step replaces',
    );
    // Both on one cycle: the later one is refused (a woken Linux waiter that sleeps again last).
    t.same(
      await a.commit({
        file: '/f',
        base: f2,
        edges: [
          { waiter: 'bw', owner: 'b:1', hard: ['c:1', 'e:1'], check: true },
          { waiter: 'cw', owner: 'c:1', hard: ['b:1'], check: true },
        ],
      }),
      { ok: false, reason: 'deadlock', waiter: 'cw', owner: 'c:1' },
      'c:1, checked second, closes the cycle',
    );
  });

  t.test(`${kind}: a cycle only through edges of a late session is 'overdue' (nothing applied, retry before its expiry), 'deadlock' once it renewed, gone once it expired`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['b', 'd'], server);
    t.teardown(() => c.close());
    const [b, d] = c.nodes.map((n) => n.store);
    // a renews only when told (nudge): late lateAfterMs after its open, expired after its TTL.
    const ttl = 60_000;
    const a = (await c.add('a', { sessionTtlMs: ttl, renewEveryMs: 2 ** 30 })).store;
    /** Resolves once the engine counts a's session `late` or not (every 20 ms, by its sessions' deadlines and TTLs). */
    const lateIs = (late: boolean, what: string) =>
      within(
        (async () => {
          for (;;) {
            const read = await b!.sessions();
            const s = read.sessions.find((x) => x.node === 'a' && x.deadline > read.now);
            if (s?.ttlMs !== undefined && s.ttlMs - (s.deadline - read.now) > lateAfterMs(s.ttlMs) === late) return;
            await new Promise((r) => setTimeout(r, 20));
          }
        })(),
        30_000,
        what,
      );
    // a:1 holds /x, b:1 holds /y, a:1 waits for /y (a's edge a:1 -> b:1).
    const x = ok(t, await a.commit({ file: '/x', base: 0, put: [lock('ax')] }), 'a:1 holds /x');
    const y = ok(t, await b!.commit({ file: '/y', base: 0, put: [lock('by')] }), 'b:1 holds /y');
    ok(t, await a.commit({ file: '/y', base: y, put: [wait('aw', 'q1')], edges: [{ waiter: 'aw', owner: 'a:1', hard: ['b:1'], check: true }] }), 'a:1 waits on b:1');
    const step = { file: '/x', base: x, put: [wait('bw', 'q2')], edges: [{ waiter: 'bw', owner: 'b:1', hard: ['a:1'], check: true }] };
    t.same(await b!.commit(step), { ok: false, reason: 'deadlock', waiter: 'bw', owner: 'b:1' }, 'a renewed lately: its edge is trusted, EDEADLK at once');
    await lateIs(true, "a's session late");
    const r = await b!.commit(step);
    t.match(r, { ok: false, reason: 'overdue', waiter: 'bw', owner: 'b:1' }, "a late: the cycle through its edge is not trusted ('overdue')");
    t.ok(!r.ok && r.reason === 'overdue' && r.retryInMs > 0 && r.retryInMs <= ttl - lateAfterMs(ttl), `with the time until a's session expires (${JSON.stringify(r)})`);
    t.equal((await b!.load('/x')).version, x, 'nothing applied');
    // Another way round the cycle through a live session's edge: trusted whatever a's is.
    ok(t, await d!.commit({ file: '/d', base: 0, put: [wait('dw', 'q3')], edges: [{ waiter: 'dw', owner: 'd:1', hard: ['b:1'] }] }), 'd:1 waits on b:1');
    t.same(await b!.commit({ ...step, edges: [{ waiter: 'bw', owner: 'b:1', hard: ['a:1', 'd:1'], check: true }] }), { ok: false, reason: 'deadlock', waiter: 'bw', owner: 'b:1' }, 'b:1 -> d:1 -> b:1 needs no late edge: EDEADLK');
    a.nudge();
    await lateIs(false, "a's renewal");
    t.same(await b!.commit(step), { ok: false, reason: 'deadlock', waiter: 'bw', owner: 'b:1' }, 'a renewed: the cycle through its edge is trusted again');
    await c.expire('a');
    ok(t, await b!.commit(step), "a's session gone: its edges with it, b:1 waits");
  });

  t.test(`${kind}: an edge to a lock of a dead session nobody reaped yet closes no cycle, even once the same owner waits under a new session`, { skip: noRedis }, async (t) => {
    const c = await cluster(kind, ['a', 'b'], server);
    t.teardown(() => c.close());
    const [a, b] = c.nodes.map((n) => n.store);
    const e1 = a!.session().epoch;
    // a:1 holds /x; b:1 holds /y and waits for /x (edge b:1 -> a:1, naming the session of a's lock).
    const x = ok(t, await a!.commit({ file: '/x', base: 0, put: [lock('ax')] }), 'a:1 holds /x');
    const y = ok(t, await b!.commit({ file: '/y', base: 0, put: [lock('by')] }), 'b:1 holds /y');
    ok(t, await b!.commit({ file: '/x', base: x, put: [wait('bw', 'q1')], edges: [{ waiter: 'bw', owner: 'b:1', hard: ['a:1'], sessions: { 'a:1': [`a|${e1}`] }, check: true }] }), 'b:1 waits on a:1');
    t.equal(await a!.closesCycle('a:1', ['b:1'], true), true, "while a's session lives, a:1 waiting on b:1 closes a cycle");
    // a's session ends (paused past its TTL); its lock on /x is not reaped yet. a opens a new one.
    await c.expire('a');
    a!.nudge();
    await c.nodes[0]!.session.next('a new session for a', (e) => e.kind === 'lost');
    t.not(a!.session().epoch, e1, 'a has a new session');
    // a:1, under the new session, waits for /y: the only "cycle" runs through its dead lock on /x.
    const r = await a!.commit({ file: '/y', base: y, put: [wait('aw', 'q2')], edges: [{ waiter: 'aw', owner: 'a:1', hard: ['b:1'], sessions: { 'b:1': [`b|${b!.session().epoch}`] }, check: true }] });
    ok(t, r, 'no EDEADLK: b:1 waits only on a lock of a dead session');
    // A target under a live session still counts: b:1 waiting on the new a:1 would close a cycle.
    t.equal(await b!.closesCycle('b:1', ['a:1'], true), true, "a:1's new waiter waits on b:1");
  });
}

t.test('a node alone: memoryStore() needs nothing, starts without a grace period, never fences', async (t) => {
  const s = await memoryStore();
  t.teardown(() => s.close());
  t.equal(s.kind, 'memory');
  t.match(s.session(), { fenced: false, grace: false });
  const r = await s.commit({ file: '/alone', base: 0, put: [lock('l1')] });
  t.equal(r.ok, true, 'a grant at once');
  t.same(await s.files(), ['/alone']);
  t.match(s.stats(), { commits: 1, stale: 0, sessions: 1 });
});

t.test('memory: what steps removed of a dead session is kept REAPED_KEEP_MS after the last one, then forgotten', async (t) => {
  let now = 0;
  const e = new MemoryEngine({ now: () => now });
  const a = e.openSync('a', 1000, 0);
  const b = e.openSync('b', 10 * REAPED_KEEP_MS, 0);
  const old = { node: 'a', epoch: a.epoch, incarnation: a.incarnation };
  const rec = { id: 'a1', node: 'a', epoch: a.epoch, state: 'held' as const, requestId: '', data: 'a1', seq: 0 };
  const step = (file: string, base: number, name: string, remove: string[], put: (typeof rec)[]) => ({ file, base, step: name, grants: false, remove, put, notify: [], edges: [] });
  const v = e.commitSync(old, step('/x', 0, 's1', [], [rec]));
  t.equal(v.ok, true, 'a locks /x');
  now = 2000;
  const bRef = { node: 'b', epoch: b.epoch, incarnation: b.incarnation };
  t.equal(e.commitSync(bRef, step('/x', v.ok ? v.version : 0, 's2', ['a1'], [])).ok, true, "b reaps a's lock (a's session expired)");
  const ids = async () => {
    const p = await e.sessionFiles(old, '0', 100);
    if (p === 'reset') return 'reset';
    const next = p.cursor === '0' ? [] : (await e.sessionFiles(old, p.cursor, 100) as { files: { file: string; records: { id: string }[] }[] }).files;
    return [...p.files, ...next].map((f) => `${f.file}:${f.records.map((r) => r.id).join(',')}`);
  };
  t.same(await ids(), ['/x:a1'], 'kept after the reaping');
  now = 2000 + REAPED_KEEP_MS - 1;
  t.same(await ids(), ['/x:a1'], 'until REAPED_KEEP_MS after it');
  now = 2000 + REAPED_KEEP_MS;
  t.same(await ids(), [], 'then forgotten');
});
