/**
 * A replacement worker's reading of its predecessor's locks (SharedFiles.recover), on
 * the lost-link harness (node a's SharedFiles is the predecessor; a second SharedFiles on the
 * same link and lease, SharedConfig.blank false, is its replacement; the files it serves are
 * those under /k). Every wait is for an answer or an event, within a budget.
 */
import t from 'tap';
import { SharedFiles } from '../../src/actors/shared-files.js';
import { endedByFile, type StoreLink } from '../../src/actors/shared-file.js';
import { parseLockFile, type Call } from '../../src/core/requests.js';
import type { SessionFilesPage } from '../../src/store/index.js';
import { BUDGET_MS, MemoryEngine, answered, lf, node, uf, until, within, type TestNode } from './lost-link.js';

/** A blocking LockFileEx of [0,10) of `path` through `handle` (process 1). */
const lfw = (handle: number, path: string): Call =>
  parseLockFile({ fileName: path, byteOffset: 0, length: 10, exclusiveLock: true, failImmediately: false, handle, processId: 1 }) as Call;

/** The replacement of `a`'s worker: its own SharedFiles on `link` (a's by default), its faults kept. */
function replacement(a: TestNode, engine: MemoryEngine, link: StoreLink = a.sf.link, list?: (cursor: string) => Promise<SessionFilesPage | 'reset'>) {
  const faults: string[] = [];
  const sf = new SharedFiles(link, { ...a.sf.config, blank: false }, {}, (m) => faults.push(m));
  const { epoch, incarnation } = a.store.session();
  const read = list ?? ((cursor: string) => engine.sessionFiles({ node: a.name, epoch, incarnation }, cursor, 256));
  return { sf, faults, recover: () => sf.recover(read, (path) => path.startsWith('/k')) };
}

// a's predecessor took a lock in each of 40 files the replacement serves; the engine does not
// answer the replacement's loads at first. Loads are LOADS_AT_ONCE (16) at a time so that other
// files are served meanwhile, and a load tried again after a failure waits its turn with the
// rest: never more than 16 files loading at once (before, each retry started at once, beside
// the 16 the queue had started meanwhile).
t.test('loads tried again after the engine did not answer keep to 16 at once', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  const files = Array.from({ length: 40 }, (_, i) => `/k${i}`);
  for (const [i, path] of files.entries()) {
    a.sf.run(i + 1, lf(1, 0, 10, true, path), a.target);
    t.equal(await answered(a, i + 1, `the lock of ${path}`), 0);
  }
  let up = false;
  let most = 0;
  const decisions = new Map<string, number>();
  let retried!: () => void;
  const aRetry = new Promise<void>((r) => (retried = r));
  let r!: ReturnType<typeof replacement>;
  const link: StoreLink = {
    commit: async (step) => {
      most = Math.max(most, r.sf.counts().busy);
      if (up) return a.sf.link.commit(step);
      // A new decision (not a resend of its step): the second on a file is a load tried again.
      if ((step as { id?: string }).id === undefined) {
        const n = (decisions.get(step.file) ?? 0) + 1;
        decisions.set(step.file, n);
        if (n === 2) retried();
      }
      return { ok: false, reason: 'unreachable', step: `${step.file}.cut.${Math.random()}`, error: 'cut off' };
    },
    reassert: (f, recs, e) => a.sf.link.reassert(f, recs, e),
    fileReach: (f, p) => a.sf.link.fileReach(f, p),
  };
  r = replacement(a, engine, link);
  await within(r.recover(), BUDGET_MS, "the replacement's reading of the session's index");
  await within(aRetry, BUDGET_MS, 'a load tried again after the engine did not answer');
  up = true;
  // Every file loaded: each of a's locks is in an actor's cache.
  await until(() => r.sf.counts().locks >= files.length, BUDGET_MS, "the replacement's loads of the 40 files");
  t.ok(most <= 16, `at most 16 files loading at once (seen: ${most})`);
  t.equal(r.sf.counts().locks, 40, "a's 40 locks are in the replacement's caches");
});


// The engine does not answer the replacement's reading of the index for a while: one fault says
// so, not one per try (each is a LocksmithFaultWarning and counts in stats().faults, the
// count of internal errors; the reading goes on every second while the outage lasts).
t.test("the index read failing while the engine is out of reach is reported once, not at every try", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lf(1, 0, 10, true, '/k1'), a.target);
  t.equal(await answered(a, 1, 'the lock of /k1'), 0);
  const { epoch, incarnation } = a.store.session();
  let tries = 0;
  const r = replacement(a, engine, a.sf.link, async (cursor) => {
    if (++tries <= 4) throw new Error('locksmith store: cannot reach the engine');
    return engine.sessionFiles({ node: a.name, epoch, incarnation }, cursor, 256);
  });
  await within(r.recover(), BUDGET_MS, "the replacement's reading of the session's index");
  t.equal(tries, 5, 'read on the fifth try');
  t.equal(r.faults.length, 1, `one fault for the outage (${JSON.stringify(r.faults)})`);
});

// a's handle 1 waits (LockFileEx, blocking) for /k1, which b's handle 9 holds; a's worker dies
// with the request unanswered, and the caller asks it again of the replacement. b's unlock comes
// first, and b's step grants the waiter the dead worker put (its record is a's, of a's session):
// the engine now has handle 1 holding /k1 under the dead worker's record. The request asked again
// is that very lock: it must be granted, not wait behind its own handle's lock until its handle
// closes. The waiter's record names the request (LockOrigin.request), b's grant keeps it, and the
// replacement finds the lock of the request asked again (before, it waited behind it for ever).
t.test("a blocked request of the dead worker, granted by another node before it was asked again, is granted to the replacement", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  const b = await node(engine, 'b');
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  b.sf.run(1, lf(9, 0, 10, true, '/k1'), b.target);
  t.equal(await answered(b, 1, "b's lock of /k1"), 0, 'b holds /k1');
  a.sf.run(1, lfw(1, '/k1'), a.target);
  await answered(a, -1, "a's waiter for /k1 queued");
  // a's worker is dead from here: its inbox events are kept for the replacement.
  a.held = [];
  b.sf.run(2, uf(9, 0, 10, '/k1'), b.target);
  t.equal(await answered(b, 2, "b's unlock of /k1"), 0, "b's unlock");
  t.match(
    (await engine.load('/k1')).records.map((r) => [r.node, r.state]),
    [['a', 'held']],
    "b's step granted a's waiter: the engine has a's handle 1 holding /k1",
  );
  const r = replacement(a, engine);
  // The caller asks the request again of the replacement, and forwards a's inbox to it.
  let done!: (v: unknown) => void;
  const got = new Promise((res) => (done = res));
  const target = { answer: (_id: number, _p: string, res: unknown) => done(res), queued: () => {} } as unknown as typeof a.target;
  await within(r.recover(), BUDGET_MS, "the replacement's reading of the session's index");
  r.sf.run(1, lfw(1, '/k1'), target);
  const events = a.held;
  a.held = undefined;
  for (const [p, e] of endedByFile(events)) r.sf.ended(p, e);
  const res = await within(got, BUDGET_MS, "the answer to the request asked again of the replacement").catch((e: Error) => e.message);
  t.equal(res, 0, "the request asked again is granted: handle 1 holds /k1 (the grant the dead worker's waiter got)");
});


// a's non-blocking LockFileEx of /k1 through handle 1 (request 1) commits, and a's worker dies
// before its answer leaves (here: the answer is dropped, as the caller never read it). Asked
// again of the replacement, it is granted: its handle holds the lock its step took (before, it
// was refused 33, its own handle's lock in the way). Another request for that same lock through
// that handle is refused as ever: the lock is granted once.
t.test('a Windows lock whose step committed just before its worker died is granted when asked again', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lf(1, 0, 10, true, '/k1'), a.target);
  t.equal(await answered(a, 1, "a's lock of /k1 (its answer never reaches the caller)"), 0);
  t.match((await engine.load('/k1')).records.map((r) => [r.node, r.state]), [['a', 'held']], 'the engine has handle 1 holding /k1');
  const r = replacement(a, engine);
  const answers = new Map<number, (v: unknown) => void>();
  const answer = (id: number) => new Promise((res) => answers.set(id, res));
  const target = { answer: (id: number, _p: string, res: unknown) => answers.get(id)?.(res), queued: () => {} } as unknown as typeof a.target;
  await within(r.recover(), BUDGET_MS, "the replacement's reading of the session's index");
  const again = answer(1);
  r.sf.run(1, lf(1, 0, 10, true, '/k1'), target);
  t.equal(await within(again, BUDGET_MS, 'the answer to the request asked again'), 0, 'the request asked again is granted: handle 1 holds /k1');
  const other = answer(2);
  r.sf.run(2, lf(1, 0, 10, true, '/k1'), target);
  t.equal(await within(other, BUDGET_MS, 'the answer to a new request for the same lock'), 33, 'a new request for that lock through handle 1 is refused (its own handle holds it)');
  t.equal((await engine.load('/k1')).records.length, 1, 'one lock in the engine');
});
