/**
 * What `locksmith mount --store` logs of its session at the default level (warn): a fence, and
 * then its end. A fence says nothing is answered from what the node holds; an operator who saw that
 * line must see, at the same level, that the node answers again (it was logged at 'info' only, so a
 * default mount said it was fenced and never that it was not). A real coordinator on a real
 * redis-server, paused (SIGSTOP) until the node fences itself, then resumed before its session
 * can expire.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { LockCoordinator } from '../../src/index.js';
import { createLogger } from '../../src/log.js';
import { logSession } from '../../src/mount-cli.js';
import { EVENT_BUDGET_MS, RedisServer, noRedis, within } from '../store/redis-server.js';

t.test("a fence and its end are both logged at 'warn'; nothing is lost", { skip: noRedis }, async (t) => {
  const server = await RedisServer.start();
  t.teardown(() => server.stop());
  // sessionTtlMs 12 s: the node fences itself at 9 s without a confirmed renewal, so the resume
  // below has 3 s before the session could expire (renewals go every 500 ms).
  const c = await LockCoordinator.start({ workers: 1, store: { url: server.url, namespace: `log-${randomUUID().slice(0, 8)}`, node: 'a', sessionTtlMs: 12_000 } });
  t.teardown(() => c.stop());
  const logged: string[] = [];
  const waiting = new Set<() => void>();
  await logSession(
    c,
    createLogger('locksmith mount', 'warn', (l) => {
      logged.push(l);
      for (const w of waiting) w();
    }),
  );
  const line = (re: RegExp, what: string) =>
    within(
      new Promise<string>((resolve) => {
        const look = () => {
          const l = logged.find((x) => re.test(x));
          if (l !== undefined) {
            waiting.delete(look);
            resolve(l);
          }
        };
        waiting.add(look);
        look();
      }),
      EVENT_BUDGET_MS,
      what,
    );
  server.pause();
  try {
    await line(/ warn: session \d+ fenced: /, "the fence's line");
  } finally {
    server.resume();
  }
  const back = await line(/ warn: session \d+ renewed: no longer fenced/, "the line for the fence's end, at 'warn'");
  t.match(back, /answering again/, `it says the node answers again: ${back}`);
  t.notOk(logged.some((l) => / session \d+ lost\b/.test(l)), `no session was lost: ${logged.join(' | ')}`);
  t.equal((await c.stats()).store?.sessions, 1, 'the node kept its first session');
});
