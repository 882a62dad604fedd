/**
 * A worker that replaces one that died, when this node's session changed before the predecessor
 * heard of it (SharedFiles.recoverLost, HostInit.shared.predecessor): the locks the predecessor
 * took under its session went with it, and their handles are told so from that session's index.
 * Node a's SharedFiles over a MemoryEngine (the lost-link harness) is the predecessor, never told
 * of the new session (it died); a second SharedFiles on a's link and lease, on the new session,
 * is its replacement, and serves the files under /k. Every wait is for an answer or an event,
 * within a budget.
 */
import t, { type Test } from 'tap';
import { SharedFiles } from '../../src/actors/shared-files.js';
import { ERROR_LOCK_VIOLATION } from '../../src/core/codes.js';
import { parseCheckIo, type Call } from '../../src/core/requests.js';
import type { SessionFilesPage } from '../../src/store/index.js';
import { BUDGET_MS, MemoryEngine, answered, ch, lf, node, resetEngine, until, within, type TestNode } from './lost-link.js';

const io = (handle: number, path: string): Call => parseCheckIo({ fileName: path, handle, processId: 1, byteOffset: 0, length: 10, write: true }) as Call;
const mine = (path: string): boolean => path.startsWith('/k');

/** a's session expires on the engine; resolves once a's store opened the next one ('lost'), with both epochs. */
async function loseSession(engine: MemoryEngine, a: TestNode): Promise<{ old: number; epoch: number }> {
  const old = a.store.session().epoch;
  engine.expire('a');
  a.store.nudge();
  await until(() => ![old, 0].includes(a.store.session().epoch), BUDGET_MS, "a's new session after its session expired");
  return { old, epoch: a.store.session().epoch };
}

/** The replacement of a's worker, started on a's session as it is now; `list` reads its predecessor's session's index. */
function replacement(a: TestNode) {
  const faults: string[] = [];
  const { epoch } = a.store.session();
  a.lease[1] = epoch;
  const sf = new SharedFiles(a.sf.link, { ...a.sf.config, blank: false, epoch }, {}, (m) => faults.push(m));
  return { sf, faults };
}

/** A lock of a on /k1 through handle 1, and one on /o1 (another worker's file) through handle 1. */
async function predecessorLocks(t: Test, a: TestNode): Promise<void> {
  a.sf.run(1, lf(1, 0, 10, true, '/k1'), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of /k1"), 0, 'the predecessor locked /k1 through handle 1');
  a.sf.run(2, lf(1, 0, 10, true, '/o1'), a.target);
  t.equal(await answered(a, 2, "handle 1's lock of /o1"), 0, 'and /o1 (another worker serves it)');
}

t.test("a session lost before the replacement started: the predecessor's locks in its files count as lost", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  await predecessorLocks(t, a);
  const before = a.store.session();
  const { old, epoch } = await loseSession(engine, a);
  t.not(epoch, old, 'a has a new session');
  const r = replacement(a);
  await within(r.sf.recover((cursor) => engine.sessionFiles({ node: 'a', epoch, incarnation: before.incarnation }, cursor, 256), mine), BUDGET_MS, "the replacement's reading of the session it starts on");
  await within(r.sf.recoverLost((cursor) => engine.sessionFiles({ node: 'a', epoch: old, incarnation: before.incarnation }, cursor, 256), mine), BUDGET_MS, "the replacement's reading of its predecessor's session");
  r.sf.run(3, io(1, '/k1'), a.target);
  t.equal(await answered(a, 3, 'checkIo through handle 1 on /k1'), ERROR_LOCK_VIOLATION, "handle 1's lock on /k1 went with the old session: its I/O fails (33)");
  r.sf.run(4, io(2, '/k1'), a.target);
  t.equal(await answered(a, 4, 'checkIo through handle 2 on /k1'), 0, 'handle 2 held nothing there: its I/O goes on');
  r.sf.run(5, io(1, '/o1'), a.target);
  t.equal(await answered(a, 5, 'checkIo through handle 1 on /o1'), 0, "/o1 is another worker's: not told here");
  t.same(r.faults, [], 'nothing unknown: the old session was read to its end');
});

// The predecessor's handle closes while the replacement reads the old session: the handle is not
// told after its close (a handle opened next under its number would fail for a lock it never had).
t.test('a handle closed while the old session is read is not told', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  await predecessorLocks(t, a);
  const before = a.store.session();
  const { old } = await loseSession(engine, a);
  const r = replacement(a);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let atGate!: () => void;
  const reached = new Promise<void>((resolve) => (atGate = resolve));
  const list = async (cursor: string): Promise<SessionFilesPage | 'reset'> => {
    const page = await engine.sessionFiles({ node: 'a', epoch: old, incarnation: before.incarnation }, cursor, 256);
    atGate();
    await gate;
    return page;
  };
  const reading = r.sf.recoverLost(list, mine);
  await within(reached, BUDGET_MS, "the replacement's reading, its page held");
  r.sf.run(3, ch(1, '/k1'), a.target);
  await answered(a, 3, "handle 1's close");
  open();
  await within(reading, BUDGET_MS, "the replacement's reading of its predecessor's session");
  r.sf.run(4, lf(1, 0, 10, true, '/k1'), a.target);
  t.equal(await answered(a, 4, 'a lock through a handle 1 opened again'), 0, 'a handle 1 opened again locks /k1');
  r.sf.run(5, io(1, '/k1'), a.target);
  t.equal(await answered(a, 5, 'checkIo through the new handle 1'), 0, 'and its I/O goes on');
  t.same(r.faults, []);
});

// The old session's index is read in two pages, and this node's reaper reaches the replacement
// between them, for the file of the second: the reaping waits for the reading (it would remove
// the record the second page tells of), and that file's handle is told too.
t.test("the replacement's reaping of the old session waits for its reading", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lf(1, 0, 10, true, '/k1'), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of /k1"), 0, 'the predecessor locked /k1 through handle 1');
  a.sf.run(2, lf(2, 0, 10, true, '/k2'), a.target);
  t.equal(await answered(a, 2, "handle 2's lock of /k2"), 0, 'and /k2 through handle 2');
  const before = a.store.session();
  const { old } = await loseSession(engine, a);
  const r = replacement(a);
  const oldSession = { node: 'a', epoch: old, incarnation: before.incarnation };
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let atGate!: () => void;
  const reached = new Promise<void>((resolve) => (atGate = resolve));
  const list = async (cursor: string): Promise<SessionFilesPage | 'reset'> => {
    if (cursor !== '0') {
      atGate();
      await gate;
    }
    return engine.sessionFiles(oldSession, cursor, 1);
  };
  const reading = r.sf.recoverLost(list, mine);
  await within(reached, BUDGET_MS, "the reading's second page, held");
  const reaped = r.sf.reap('/k2', [{ node: 'a', epoch: old }]);
  // A reaping that did not wait would have removed /k2's record within these turns.
  const inIndex = async (): Promise<boolean> => {
    const page = await engine.sessionFiles(oldSession, '0', 256);
    return page !== 'reset' && page.files.some((f) => f.file === '/k2');
  };
  for (let i = 0; i < 50 && (await inIndex()); i++) await new Promise((resolve) => setImmediate(resolve));
  t.ok(await inIndex(), "/k2's record of the old session is still there while the reading waits");
  open();
  await within(reading, BUDGET_MS, "the replacement's reading of its predecessor's session");
  await within(reaped, BUDGET_MS, "the reaping of /k2, after the reading");
  t.notOk(await inIndex(), "then it is reaped");
  r.sf.run(3, io(2, '/k2'), a.target);
  t.equal(await answered(a, 3, 'checkIo through handle 2 on /k2'), ERROR_LOCK_VIOLATION, "handle 2's lock on /k2 (the second page) is told lost (33)");
  t.same(r.faults, []);
});

// The engine lost its data after the predecessor last heard of its session: what it held there
// cannot be read any more, and nothing says what it was. Reported (a fault), not guessed.
t.test("the engine lost its data before the replacement read its predecessor's session: reported as unknown", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  await predecessorLocks(t, a);
  const before = a.store.session();
  await resetEngine(engine, a);
  const r = replacement(a);
  await within(
    r.sf.recoverLost((cursor) => engine.sessionFiles({ node: 'a', epoch: before.epoch, incarnation: before.incarnation }, cursor, 256), mine),
    BUDGET_MS,
    "the replacement's reading of its predecessor's session",
  );
  t.equal(r.faults.length, 1, 'one fault');
  t.match(r.faults[0], /could not read to its end, before this node's session changed or the engine lost its data, which locks its predecessor took/, 'saying which locks are unknown');
});

// Another node's reaper removes the old session's records of /k1 before the replacement reads
// that session, and of /k3 between the reading's pages (one file a page; /k2 is read first): the
// reaping steps leave what they removed of that session per file (the engine's rp:<session>),
// which the reading gives after the index. Every handle is told lost; before, the reading found
// /k1 and /k3 gone from the index and told handles 1 and 3 nothing (their locks gone, their I/O
// going on).
t.test("another node reaped the old session before or while the replacement read it: what it removed is read too", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  const b = await node(engine, 'b');
  t.teardown(() => b.store.close());
  for (const h of [1, 2, 3]) {
    a.sf.run(h, lf(h, 0, 10, true, `/k${h}`), a.target);
    t.equal(await answered(a, h, `handle ${h}'s lock of /k${h}`), 0, `the predecessor locked /k${h} through handle ${h}`);
  }
  const before = a.store.session();
  const { old } = await loseSession(engine, a);
  const oldSession = { node: 'a', epoch: old, incarnation: before.incarnation };
  await within(b.sf.reap('/k1', [{ node: 'a', epoch: old }]), BUDGET_MS, "b's reaping of /k1");
  const r = replacement(a);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let atGate!: () => void;
  const reached = new Promise<void>((resolve) => (atGate = resolve));
  const list = async (cursor: string): Promise<SessionFilesPage | 'reset'> => {
    const page = await engine.sessionFiles(oldSession, cursor, 1);
    if (cursor === '0') {
      atGate();
      await gate;
    }
    return page;
  };
  const reading = r.sf.recoverLost(list, mine);
  await within(reached, BUDGET_MS, "the reading's first page, held");
  await within(b.sf.reap('/k3', [{ node: 'a', epoch: old }]), BUDGET_MS, "b's reaping of /k3, between the pages");
  const left = await engine.sessionFiles(oldSession, '0', 256);
  t.same(left !== 'reset' && left.files.filter((f) => f.file === '/k2').length, 1, "/k2's record of the old session is the one left unreaped");
  open();
  await within(reading, BUDGET_MS, "the replacement's reading of its predecessor's session");
  for (const h of [1, 2, 3]) {
    r.sf.run(10 + h, io(h, `/k${h}`), a.target);
    t.equal(await answered(a, 10 + h, `checkIo through handle ${h} on /k${h}`), ERROR_LOCK_VIOLATION, `handle ${h}'s lock on /k${h} is told lost (33)`);
  }
  r.sf.run(20, io(4, '/k1'), a.target);
  t.equal(await answered(a, 20, 'checkIo through handle 4 on /k1'), 0, 'handle 4 held nothing there: its I/O goes on');
  t.same(r.faults, []);
});
