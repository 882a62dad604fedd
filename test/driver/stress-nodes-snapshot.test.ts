/**
 * The nodes target with one kind of fault only, 'snapshot': the engine SAVEs, the holder then
 * takes the probe lock (the snapshot lacks it), and redis-server is killed and started again from
 * that snapshot, its incarnation still there. Two real node processes (API clients only: the
 * engine's data is what is at stake, not the mounts) on a real redis-server. The data of the older
 * run must be dropped: every node opens a new session, the holder re-asserts the lock the snapshot
 * lacks (checkIo 0 through its handle), the witness is not granted while it holds it, and the
 * oracle finds no double grant. Before the store dropped data of another run of the engine, the
 * nodes never heard of a loss (no new session: the fault check failed) and the witness was granted
 * the holder's bytes. Needs redis-server: in CI (CI set) its absence fails this file; elsewhere the
 * run is skipped, loudly.
 */
import t from 'tap';
import { redisUnavailable } from '../../driver/redis-server.js';
import { runNodes } from '../../driver/targets/nodes.js';
import { skipLoudly } from './nodes-run.js';

const noRedis = redisUnavailable();
skipLoudly('test/driver/stress-nodes-snapshot.test.ts', noRedis);

t.test("faultKinds ['snapshot']: the engine restarts from an older snapshot, nothing is granted twice", { skip: noRedis }, async (t) => {
  // A short budget: the first round (this one fault) keeps the load going until it has resolved.
  const r = await runNodes({ target: 'nodes', workload: 'all', seed: 7, clients: 6, files: 2, workers: 1, durationSec: 2, nodes: 2, faults: true, mounts: false, faultKinds: ['snapshot'] });
  const n = r.nodes!;
  for (const l of n.log) t.comment(l);
  for (const v of r.oracle.examples) t.comment(`${v.kind}: ${v.message}`);
  t.ok(r.ops > 50, `${r.ops} operations ran`);
  t.same(Object.keys(n.faults), ['snapshot'], 'only the snapshot fault was injected');
  const f = n.faults.snapshot;
  t.ok(f !== undefined && f.tries >= 1, `the snapshot fault was tried (${f?.tries ?? 0} tries)`);
  t.equal(f?.failures, 0, `every check of the fault passed${f !== undefined && f.why.length > 0 ? `: ${f.why.join(' | ')}` : ''}`);
  t.equal(r.oracle.violations, 0, 'the oracle found no violation');
  const log = n.log.join('\n');
  t.match(log, /redis-server killed, up again after [\d.]+ ms from its snapshot of [\d.]+ ms \(before n\d took the probe lock\)/, 'the engine came back from the snapshot');
  t.match(log, /n\d's probe lock was re-asserted; checkIo through its handle: 0/, 'the holder re-asserted the lock the snapshot lacked');
  t.ok(
    n.perNode.every((x) => x.sessions >= 2),
    `every node opened a new session (${n.perNode.map((x) => `${x.node}: ${x.sessions}`).join(', ')})`,
  );
});
