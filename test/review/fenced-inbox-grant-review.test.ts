/**
 * Review: fencing of a grant another node's step gave (API.md "One lock space across machines":
 * "a node that has lost its session never grants or answers from what it held before";
 * docs/API.md: from 3/4 of sessionTtlMs after its last confirmed renewal "a node is fenced:
 * nothing is answered from what it holds and nothing is granted").
 *
 * b's waiter is granted by a's unlock while b is stopped (SIGSTOP); c queues behind that grant.
 * b runs again past its fence: its session may have expired on the engine, and the grant with it.
 * b must not tell its caller "granted" before a renewal says its session lives: told 0 with its
 * session lost, b's caller holds a lock the engine gave c (nothing tells a POSIX caller of the
 * loss). b used to tell the grant from its inbox as soon as it ran again, fenced or not: with stops
 * between the fence and the session's reaping, b's caller was told 0 and c granted the same bytes.
 *
 * The stops sweep the window between b's fence (1.5 s after its last confirmed renewal, sent at
 * most 500 ms before the stop) and the reaping of its session (2 s after that renewal, at a live
 * node's next renewal): fault lengths, not budgets.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK } from '../../src/index.js';
import { RedisServer, noRedis } from '../store/redis-server.js';
import { Node, type Reply, event, until } from '../api/node-procs.js';

const TTL = 2000;
const setlk = (path: string, owner: number, cmd: number, lockType = F_WRLCK) => ({ path, lockType, lockStart: 0, lockLen: 10, cmd, lockOwner: owner, lockPid: owner });

t.test("a grant read from the inbox while the node is fenced is told only once a renewal says its session lives", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  const namespace = `rvfenced-${randomUUID().slice(0, 8)}`;
  const [a, b, c] = ['a', 'b', 'c'].map((node) => new Node({ url: server.url, namespace, node, sessionTtlMs: TTL }));
  for (const n of [a!, b!, c!]) t.teardown(() => n.kill());
  await Promise.all([a!.ready(), b!.ready(), c!.ready()]);

  for (let stopMs = 1450; stopMs <= 2150; stopMs += 50) {
    const path = `/f${stopMs}`;
    t.equal((await a!.call('lock', setlk(path, 1, F_SETLK))).result, 0, `${path}: a holds it`);
    const bWaits = b!.call('lock', setlk(path, 2, F_SETLKW));
    await until(() => b!.call('stats'), (s: Reply) => s.waiting === 1, `${path}: b's waiter queued`);
    const sessionsBefore = (await b!.call('stats')).store.sessions;
    b!.signal('SIGSTOP');
    let cWaits: Promise<Reply>;
    try {
      t.equal((await a!.call('lock', setlk(path, 1, F_SETLK, F_UNLCK))).result, 0, `${path}: a unlocks: its step grants b's waiter`);
      cWaits = c!.call('lock', setlk(path, 3, F_SETLKW));
      await until(() => a!.call('locks', path), (l: Reply[]) => l.some((e) => e.node === 'c' && e.state === 'waiting'), `${path}: c's waiter queued`);
      await new Promise((r) => setTimeout(r, stopMs));
    } finally {
      b!.signal('SIGCONT');
    }
    const told = (await event(bWaits, `${path}: b's waiter's answer`)).result;
    const s = await until(() => b!.call('stats'), (x: Reply) => !x.store.session.fenced, `${path}: b unfenced (renewed, or a new session)`);
    if (told === 0) {
      t.equal(s.store.sessions, sessionsBefore, `${path} (stopped ${stopMs} ms): b told its caller 0: the session it was granted under still lives`);
      const listed = (await a!.call('locks', path)).map((e: Reply) => `${e.node} ${e.state}`).sort();
      t.same(listed, ['b granted', 'c waiting'], `${path}: b holds the lock it was told of, c still waits`);
      t.equal((await b!.call('lock', setlk(path, 2, F_SETLK, F_UNLCK))).result, 0, `${path}: b unlocks`);
    } else {
      t.equal(told, -37, `${path} (stopped ${stopMs} ms): b's session was lost: its waiter ends with ENOLCK`);
    }
    t.equal((await event(cWaits, `${path}: c's grant`)).result, 0, `${path}: c is granted`);
    await c!.call('lock', setlk(path, 3, F_SETLK, F_UNLCK));
  }
});
