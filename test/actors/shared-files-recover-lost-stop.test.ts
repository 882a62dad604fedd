/**
 * stop() while a replacement worker reads the session its predecessor lost (SharedFiles.recoverLost):
 * this worker's reaping waits for that reading (reap), and the reading ends at stop() (no longer
 * wanted). A reaping that waited must not run then: stop() ended this worker's work on the engine
 * (its host closes the connection right after, and a step then would open a new one, in a thread
 * about to end, or fail and be reported as a fault during stop). Node a's SharedFiles over a
 * MemoryEngine (the lost-link harness) is the predecessor; a second SharedFiles on a's link, on
 * the new session, is its replacement. Every wait is for an answer or an event, within a budget.
 */
import t from 'tap';
import { SharedFiles } from '../../src/actors/shared-files.js';
import type { SessionFilesPage } from '../../src/store/index.js';
import { BUDGET_MS, MemoryEngine, answered, lf, node, until, within } from './lost-link.js';

const mine = (path: string): boolean => path.startsWith('/k');

t.test("stop() during the reading of the predecessor's lost session: the reaping that waited for it does not run after stop", async (t) => {
  const engine = new MemoryEngine();
  const a = await node(engine, 'a');
  t.teardown(() => a.store.close());
  a.sf.run(1, lf(1, 0, 10, true, '/k1'), a.target);
  t.equal(await answered(a, 1, "handle 1's lock of /k1"), 0, 'the predecessor locked /k1 through handle 1');
  const before = a.store.session();
  const old = before.epoch;
  engine.expire('a');
  a.store.nudge();
  await until(() => ![old, 0].includes(a.store.session().epoch), BUDGET_MS, "a's new session after its session expired");
  const { epoch } = a.store.session();
  a.lease[1] = epoch;
  const faults: string[] = [];
  const r = new SharedFiles(a.sf.link, { ...a.sf.config, blank: false, epoch }, {}, (m) => faults.push(m));
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let atGate!: () => void;
  const reached = new Promise<void>((resolve) => (atGate = resolve));
  const list = async (cursor: string): Promise<SessionFilesPage | 'reset'> => {
    atGate();
    await gate;
    return engine.sessionFiles({ node: 'a', epoch: old, incarnation: before.incarnation }, cursor, 256);
  };
  const reading = r.recoverLost(list, mine);
  await within(reached, BUDGET_MS, "the replacement's reading, its first page held");
  const reaped = r.reap('/k1', [{ node: 'a', epoch: old }]);
  await within(r.stop(), BUDGET_MS, "the replacement's stop()");
  const steps = a.log.length;
  open();
  await within(reading, BUDGET_MS, 'the reading, ended by stop()');
  await within(reaped, BUDGET_MS, 'the reaping that waited for it');
  t.same(a.log.slice(steps), [], 'no step reached the engine after stop()');
  t.equal(r.counts().files, 0, 'no file actor was made after stop()');
  t.same(faults, [], 'nothing reported');
});
