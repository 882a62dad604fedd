/**
 * Review of `locksmith locks --store` (issue 13): a large namespace. The read is cut into scripts
 * of 256 files each so that none blocks the engine for long; each answers within milliseconds,
 * but the whole read was held to one request timeout (5 s): a namespace of many files failed
 * with "no answer within 5000 ms" from an engine that answered every command at once. Here the
 * namespace's file index holds 700 000 files (all but one without records: what the listing
 * reads per file is the same), far more than 5 s of reads on this machine.
 */
import t from 'tap';
import { noRedis } from '../store/redis-server.js';
import { runCli } from '../native/cli-proc.js';
import { lockSpace } from './locks-store-space.js';

const FILES = 700_000;

const space = lockSpace(t, {
  prefix: 'lg',
  node: 'b',
  held: { path: '/held', pid: 202 },
  setup: async ({ server, ns: NS }) => {
    const admin = await server.client();
    for (let i = 0; i < FILES; i += 10_000) await admin.sadd(`{${NS}}:files`, ...Array.from({ length: 10_000 }, (_, j) => `/empty/${i + j}`));
    t.equal(await admin.scard(`{${NS}}:files`), FILES + 1, 'the index holds every file');
  },
});
const NS = space.ns;

t.test('a namespace of many files: listed, each answer within the timeout, not the whole read', { skip: noRedis }, async (t) => {
  const { server } = space;
  const r = await runCli(['locks', '--store', server.url, '--namespace', NS, '--noheadings']);
  t.notMatch(r.stderr, /no answer within/, 'no timeout: the engine answered every read');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^b +202 +posix +write +0 +9 +granted +- +\/held\n$/, 'the one lock');
});
