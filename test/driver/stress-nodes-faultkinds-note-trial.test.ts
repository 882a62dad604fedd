/**
 * Found by a new user's trial: `locksmith stress --nodes 3 --fault-kinds snapshot,kill --duration 5`
 * ran past its budget and its note said "the first round of faults (kill -9, SIGSTOP, engine restart,
 * engine restart from an older snapshot) completes whatever the budget", naming all four kinds
 * although only two were drilled. The note should name the kinds of this run (or none). API clients
 * only, one fault kind, a 1 s budget that the round outlasts. Needs redis-server: in CI (CI set) its
 * absence fails this file; elsewhere the run is skipped, loudly.
 */
import t from 'tap';
import { redisUnavailable } from '../../driver/redis-server.js';
import { runNodes } from '../../driver/targets/nodes.js';
import { skipLoudly } from './nodes-run.js';

const noRedis = redisUnavailable();
skipLoudly('test/driver/stress-nodes-faultkinds-note-trial.test.ts', noRedis);

t.test(
  "faultKinds ['kill'] past its budget: the note names only the kinds drilled",
  { skip: noRedis },
  async (t) => {
    const r = await runNodes({ target: 'nodes', workload: 'all', seed: 7, clients: 4, files: 2, workers: 1, durationSec: 1, nodes: 2, faults: true, mounts: false, faultKinds: ['kill'] });
    t.same(Object.keys(r.nodes!.faults), ['kill'], 'only the kill fault was injected');
    const note = r.notes.find((n) => n.includes('past its'));
    t.ok(note !== undefined, `the run went past its budget and said so (${r.durationSec.toFixed(1)} s)`);
    t.notMatch(note ?? '', /SIGSTOP|engine restart/, `the note names no fault kind that was not drilled: ${note}`);
  },
);
