/**
 * Review of `locksmith locks --store` (issue 13): a large listing through a pipe. The listing of a
 * whole lock space is long (every node's locks); written to a pipe (`| grep`, `| jq`, a program's
 * child) it must arrive whole, not cut where the pipe's buffer filled when the CLI exited. And a
 * reader that stops early (`| head -1`) ends the CLI without a stack trace.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { F_SETLK, F_WRLCK } from '../../src/index.js';
import { noRedis } from '../store/redis-server.js';
import { cli } from '../native/cli-proc.js';
import { lockSpace } from './locks-store-space.js';

/** Enough locks that either listing is far larger than a pipe's buffer (64 KiB on Linux). */
const LOCKS = 600;
const name = (i: number) => `/${'d'.repeat(150)}/f${i}`;

const space = lockSpace(t, {
  prefix: 'lp',
  node: 'a',
  setup: async ({ node: a }) => {
    const results = await Promise.all(Array.from({ length: LOCKS }, (_, i) => a.lock({ path: name(i), lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: i + 1, lockPid: 1000 + i })));
    t.equal(results.filter((r) => r.result === 0).length, LOCKS, 'every lock granted');
  },
});
const NS = space.ns;

/**
 * `locksmith locks --store URL --namespace NS ARGS | READER` run by bash: the reader's output,
 * the CLI's stderr and its exit status (PIPESTATUS). The pipe is bash's own (a pipe, not the socket
 * a Node parent gives its child), read by `dd bs=1`: a byte per read, far slower than the CLI writes.
 */
async function piped(args: string, reader: string): Promise<{ out: string; err: string; status: number }> {
  const script = `"${process.execPath}" "$0" locks --store "$1" --namespace "$2" ${args} 2>&3 | ${reader}; echo "status \${PIPESTATUS[0]}" >&3`;
  const p = spawn('/bin/bash', ['-c', script, cli, space.server.url, NS], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  (p.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (err += d.toString()));
  await new Promise((resolve) => p.once('close', resolve));
  const m = /status (\d+)\n$/.exec(err);
  return { out, err: err.replace(/status \d+\n$/, ''), status: m ? Number(m[1]) : -1 };
}

t.test('--json through a pipe: the whole document', { skip: noRedis }, async (t) => {
  const r = await piped('--json', 'dd bs=1 status=none');
  t.equal(r.status, 0, r.err);
  t.ok(r.out.length > 128 * 1024, `larger than a pipe's buffer (${r.out.length} bytes)`);
  let body: { locks: unknown[] } | undefined;
  t.doesNotThrow(() => (body = JSON.parse(r.out) as { locks: unknown[] }), 'the JSON is whole');
  t.equal(body?.locks.length, LOCKS, 'every lock');
});

t.test('the table through a pipe: every line', { skip: noRedis }, async (t) => {
  const r = await piped('--noheadings', 'dd bs=1 status=none');
  t.equal(r.status, 0, r.err);
  t.equal(r.out.split('\n').filter((l) => l !== '').length, LOCKS, 'one line per lock');
  t.ok(r.out.endsWith('\n'), 'the last line whole');
});

t.test('a reader that stops after one line (| head -1): the CLI ends, without a stack trace', { skip: noRedis }, async (t) => {
  const r = await piped('', 'head -1');
  t.match(r.out, /^NODE +PID/, 'the heading line');
  t.ok(r.status === 0 || r.status === 141, `ended by the closed pipe (SIGPIPE), or done: ${r.status}`);
  t.notMatch(r.err, /EPIPE|Error|\n +at /, 'no stack trace');
});
