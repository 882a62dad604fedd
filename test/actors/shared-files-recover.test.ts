/**
 * A worker that replaces one that died (SharedConfig.blank false) reads which locks its
 * predecessor took in its files from the engine (SharedFiles.recover: the session's index, then a
 * load of each such file), so that a reset puts them back or counts them lost. Here the
 * predecessor is one SharedFiles of node a over a MemoryEngine (the lost-link harness), the
 * replacement a second one over the same link and lease; the files it serves are those under /k.
 * Every wait is for an answer or an event, within a budget.
 */
import t from 'tap';
import { SharedFiles } from '../../src/actors/shared-files.js';
import type { StoreLink } from '../../src/actors/shared-file.js';
import { ERROR_LOCK_VIOLATION } from '../../src/core/codes.js';
import { parseCheckIo, type Call } from '../../src/core/requests.js';
import type { SessionFilesPage } from '../../src/store/index.js';
import { BUDGET_MS, MemoryEngine, answered, lf, node, resetEngine, within, type TestNode } from './lost-link.js';

const io = (handle: number, path: string): Call => parseCheckIo({ fileName: path, handle, processId: 1, byteOffset: 0, length: 10, write: true }) as Call;

/** The replacement of `a`'s worker: its own SharedFiles on a's link (through `link` if given), its reading's calls counted. */
function replacement(a: TestNode, engine: MemoryEngine, link: StoreLink = a.sf.link, pageFiles = 256) {
  const faults: string[] = [];
  const sf = new SharedFiles(link, { ...a.sf.config, blank: false }, {}, (m) => faults.push(m));
  const { epoch, incarnation } = a.store.session();
  let reads = 0;
  const list = (cursor: string): Promise<SessionFilesPage | 'reset'> => {
    reads++;
    return engine.sessionFiles({ node: a.name, epoch, incarnation }, cursor, pageFiles);
  };
  return { sf, faults, recover: () => sf.recover(list, (path) => path.startsWith('/k')), reads: () => reads };
}

// The engine loses its data while the replacement's load of /k1 has no reply yet: the lock its
// predecessor took there is counted lost (checkIo 33 through its handle), not silently dropped.
t.test("a reset before the replacement loaded a file its predecessor locked: that lock counts as lost", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lf(1, 0, 10, true, '/k1'), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of /k1"), 0, 'the predecessor locked /k1 through handle 1');
  // The replacement's steps wait at this gate (its load of /k1 among them).
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let held = 0;
  let atGate!: () => void;
  const reached = new Promise<void>((r) => (atGate = r));
  const link: StoreLink = {
    ...a.sf.link,
    commit: async (step) => {
      held++;
      atGate();
      await gate;
      return a.sf.link.commit(step);
    },
    reassert: (f, r, e) => a.sf.link.reassert(f, r, e),
    fileReach: (f, p) => a.sf.link.fileReach(f, p),
  };
  const r = replacement(a, engine, link);
  await within(r.recover(), BUDGET_MS, "the replacement's reading of its session's index");
  await within(reached, BUDGET_MS, "the replacement's load of /k1, held at the gate");
  const { old, epoch } = await resetEngine(engine, a);
  a.lease[1] = epoch;
  r.sf.adopt(epoch, old, 60_000);
  open();
  r.sf.run(2, io(1, '/k1'), a.target);
  t.equal(await answered(a, 2, "checkIo through handle 1 after the reset"), ERROR_LOCK_VIOLATION, "handle 1's lock on /k1 counts as lost: its I/O fails (33)");
  t.equal(held, 1, 'one step of the replacement reached the gate: its load');
  t.same(r.faults, [], 'nothing unknown: the index was read to its end before the reset');
});

// Node a holds locks only in files another worker serves: the replacement reads the index (one
// read per page) and makes no actor, no step.
t.test('a replacement whose predecessor took no lock in its files: one read per page of the index, nothing else', async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  for (const [i, path] of ['/o1', '/o2', '/o3'].entries()) {
    a.sf.run(i + 1, lf(1, 0, 10, true, path), a.target);
    t.equal(await answered(a, i + 1, `the lock of ${path}`), 0, `a holds ${path} (another worker's file)`);
  }
  let commits = 0;
  const link: StoreLink = {
    commit: (s) => {
      commits++;
      return a.sf.link.commit(s);
    },
    reassert: (f, r, e) => a.sf.link.reassert(f, r, e),
    fileReach: (f, p) => a.sf.link.fileReach(f, p),
  };
  const r = replacement(a, engine, link, 2);
  await within(r.recover(), BUDGET_MS, "the replacement's reading of its session's index");
  t.equal(r.reads(), 2, 'two reads: three files, two per page');
  t.equal(commits, 0, 'no step');
  t.equal(r.sf.counts().files, 0, 'no actor');
  t.same(r.faults, []);
  // And a replacement of a node without any lock reads once.
  const b = await node(engine, 'b');
  t.teardown(() => b.store.close());
  const rb = replacement(b, engine);
  await within(rb.recover(), BUDGET_MS, "b's replacement's reading");
  t.equal(rb.reads(), 1, 'a node without locks: one read');
});
