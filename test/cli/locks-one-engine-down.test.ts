/**
 * `locksmith locks` over fake mounts served in this process (control sockets, canned answers): two
 * mounts of one lock space, one whose engine answered and one whose engine did not.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNTIME_DIR_ENV, serveControl } from '../../src/control.js';
import { listed, main } from '../../src/locks-cli.js';

const base = mkdtempSync(join(tmpdir(), 'locksmith-locks-down-'));
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const lock = (node: string, pid: number) => ({ pid, kind: 'posix', type: 'write', start: '0', end: '9', state: 'granted', path: 'f', dev: null, ino: '7', key: 'ino:7', owner: '1', node });
const answer = (mountpoint: string, node: string, locks: ReturnType<typeof lock>[], lastKnown?: string) => ({
  mount: { mountpoint, backing: '/b', pid: 1, uid: 0, version: 'x', startedAt: '', uptimeMs: 0, workers: 1 },
  space: { engine: 'redis://127.0.0.1:6393', namespace: 'ns', node, incarnation: 'inc-1' },
  ...(lastKnown === undefined ? {} : { lastKnown }),
  locks,
});
const WHY = 'the engine at 127.0.0.1:6393 refused the connection (redis://127.0.0.1:6393: nothing listens on that port)';
// Mount /a (node n1) reached the engine: both nodes' locks. Mount /b (node n2) did not: its own, as it last knew them.
const fresh = answer('/a', 'n1', [lock('n1', 10), lock('n2', 20)]);
const stale = answer('/b', 'n2', [lock('n2', 20)], WHY);

t.test("one mount of a space reached the engine, another did not: each lock on its node's mount", async (t) => {
  const l = listed([fresh, stale]);
  t.same(
    l.map((x) => [x.lock.node, x.mountpoint, x.lock.lastKnown ?? false]),
    [
      ['n1', '/a', false],
      ['n2', '/b', false],
    ],
    "n2's lock, from the engine, is on n2's mount (before: '-', as if n2 had no mount listed)",
  );
});

let runs = 0;
/** `locksmith locks` (main) over fake mounts giving these answers: its exit status, stdout and stderr. */
async function locks(answers: ReturnType<typeof answer>[], args: string[] = []): Promise<{ code: number; out: string; err: string }> {
  const dir = join(base, `run-${++runs}`);
  const saved = process.env[RUNTIME_DIR_ENV];
  process.env[RUNTIME_DIR_ENV] = dir;
  const servers = [];
  for (const a of answers) {
    servers.push(await serveControl({ mountpoint: a.mount.mountpoint, resolved: true, dir, handlers: { info: () => ({ mount: a.mount, space: a.space }), locks: () => a } }));
  }
  let out = '';
  let err = '';
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main('locks', args);
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
    if (saved === undefined) delete process.env[RUNTIME_DIR_ENV];
    else process.env[RUNTIME_DIR_ENV] = saved;
    for (const s of servers) await s.close();
  }
  return { code, out, err };
}

t.test('one mount of a space reached the engine, another did not: stderr says what is listed', async (t) => {
  const { code, out, err } = await locks([fresh, stale]);
  t.equal(code, 1, 'exit 1: a mount could not reach its engine');
  t.notMatch(out, /\*/, 'nothing is marked: every lock listed came from the engine');
  // Before: "its node's own locks are listed as this node last knew (engine not answering), marked *
  // in STATE; other nodes' locks are unknown", while nothing was marked and every node's were listed.
  t.equal(
    err,
    `locksmith locks: the mount at /b: ${WHY}; its lock space's locks are listed as the mount at /a got them from the engine\n`,
  );
});

t.test('the only mount of a space did not reach its engine: one sentence says why, so what is listed', async (t) => {
  const { code, out, err } = await locks([stale]);
  t.equal(code, 1);
  t.match(out, /granted\*/, 'its lock, marked');
  // Before: "...: the engine at ... refused the connection (...); its node's own locks are listed as
  // this node last knew (engine not answering), ...": refused, then "not answering".
  t.equal(err, `locksmith locks: the mount at /b: ${WHY}, so its node's own locks are listed as it last knew them (marked * in STATE) and other nodes' locks are unknown\n`);
  t.notMatch(err, /not answering/, 'no second reason that contradicts the first');
  const json = await locks([stale], ['--json']);
  t.match(json.err, /, so its node's own locks are listed as it last knew them \("lastKnown": true\) and other nodes' locks are unknown\n$/);
});

t.test('the only mount of a space did not reach its engine and last knew of no locks: nothing is said to be listed', async (t) => {
  const { code, out, err } = await locks([answer('/b', 'n2', [], WHY)]);
  t.equal(code, 1);
  t.equal(out.trim().split('\n').length, 1, 'the heading alone');
  // Before: "its node's own locks are listed as this node last knew (engine not answering), marked
  // * in STATE", over an empty table (a session lost after its TTL leaves the node none).
  t.equal(err, `locksmith locks: the mount at /b: ${WHY}, so nothing is listed: its node last knew of no locks of its own, and other nodes' locks are unknown\n`);
});
