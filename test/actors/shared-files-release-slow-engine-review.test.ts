/**
 * Review of the release deadline (SharedFiles.attempt: a release's deadline runs from its
 * arrival). A healthy but slow engine: every step is answered, each within 0.6 x requestTimeoutMs.
 * Three POSIX unlocks of one file, the second and third arriving while the first's step is at the
 * engine. Before the change each release had requestTimeoutMs from its turn: all three were
 * answered 0. With it, the later ones get -ENOLCK (the generic code of an engine that "cannot be
 * reached"), although the engine answered every step and each unlock is applied. Now a request
 * is answered early only once the engine has answered nothing for requestTimeoutMs since it came.
 */
import t from 'tap';
import { ENOLCK, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { MemoryEngine, answered, code, countAnswers, lk, nodeFor } from './lost-link.js';

const TIMEOUT = 300;

t.test('three unlocks on one file, the engine slow but answering every step within 0.6 x requestTimeoutMs: each answered 0, as before', async (t) => {
  const engine = new MemoryEngine();
  const a = await nodeFor(t, engine, 'a', TIMEOUT);
  for (const i of [1, 2, 3]) {
    a.sf.run(i, lk(`p${i}`, i, F_WRLCK, F_SETLK, i * 10, 10), a.target);
    t.equal(code(await answered(a, i, `lock ${i}`)), 0, `p${i} holds its bytes`);
  }
  const counts = countAnswers(a);
  // The slow engine: every step reaches it 0.6 x requestTimeoutMs after it was sent (the scenario
  // itself is a latency, so a clock here is the engine's, not the test's wait).
  const commit = a.store.commit.bind(a.store);
  let atEngine!: () => void;
  const firstSent = new Promise<void>((r) => (atEngine = r));
  a.store.commit = async (s) => {
    atEngine();
    await new Promise((r) => setTimeout(r, TIMEOUT * 0.6));
    return commit(s);
  };
  a.sf.run(11, lk('p1', 1, F_UNLCK, F_SETLK, 10, 10), a.target);
  await firstSent;
  a.sf.run(12, lk('p2', 2, F_UNLCK, F_SETLK, 20, 10), a.target);
  a.sf.run(13, lk('p3', 3, F_UNLCK, F_SETLK, 30, 10), a.target);
  const res = [code(await answered(a, 11, 'unlock 1')), code(await answered(a, 12, 'unlock 2')), code(await answered(a, 13, 'unlock 3'))];
  a.store.commit = commit;
  t.same(res, [0, 0, 0], `every unlock answered 0 by a slow but answering engine (got ${res.join(', ')}; -${ENOLCK} is ENOLCK)`);
  t.ok([11, 12, 13].every((id) => counts.get(id) === 1), 'each answered once');
  t.same(a.faults, [], 'nothing reported');
});
