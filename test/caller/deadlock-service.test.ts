/**
 * DeadlockService (src/caller/deadlock-service.ts) on its own, with a scripted port: a hard cycle
 * across hosts fails its closing request; a cycle that needs a 'fifo' soft edge is never an
 * EDEADLK, and is released at a step where no request of the owner waits on a granted lock.
 */
import t from 'tap';
import { DeadlockService } from '../../src/caller/deadlock-service.js';

function setup() {
  const broken: number[] = [];
  const passes: [number, string][] = [];
  /** Each request's current edges, so a 'pass' can be acted out as its host would. */
  const edges = new Map<number, { owner: string; hard: string[]; soft: string[] }>();
  const svc: DeadlockService = new DeadlockService({
    syncAll: async () => {},
    breakCycle: async (id) => {
      broken.push(id);
      svc.forget(id);
      return true;
    },
    letPass: (id, owner) => {
      passes.push([id, owner]);
      const e = edges.get(id)!;
      // The host lets the request pass `owner`: its soft edge to it goes.
      queueMicrotask(() => set(id, e.owner, e.hard, e.soft.filter((o) => o !== owner)));
    },
  });
  const set = (id: number, owner: string, hard: string[], soft: string[] = []): void => {
    edges.set(id, { owner, hard, soft });
    svc.edges(id, owner, hard, soft);
  };
  return { svc, set, broken, passes };
}

t.test('a hard cycle across hosts fails the request that closed it', async (t) => {
  const { svc, set, broken, passes } = setup();
  set(1, 'pA', ['pB']);
  set(2, 'pB', ['pA']);
  await svc.idle();
  t.same(broken, [2]);
  t.same(passes, []);
});

t.test('a cycle through a soft edge is released, never failed', async (t) => {
  const { svc, set, broken, passes } = setup();
  set(1, 'pB', ['pA']); // B waits on A's lock
  set(2, 'pA', ['pC']); // A waits on C's lock (another host)
  set(3, 'pC', [], ['pB']); // C queues behind B's waiter
  await svc.idle();
  t.same(broken, [], 'no EDEADLK');
  t.same(passes, [[3, 'pB']], 'C passes B');
});

t.test('a soft step is chosen only where no request of the owner waits on a granted lock', async (t) => {
  // X has two waiting requests toward Y: 11 queued behind Y's waiter, 12 waiting on Y's lock. X -> Y
  // is therefore hard whichever request the search meets first; the step to release is Y -> O.
  const { svc, set, broken, passes } = setup();
  set(11, 'pX', [], ['pY']);
  set(12, 'pX', ['pY']);
  set(21, 'pY', [], ['pO']);
  set(1, 'pO', ['pX']);
  await svc.idle();
  t.same(broken, []);
  t.same(passes, [[21, 'pO']], 'Y passes O; passing Y for request 11 would leave the cycle');
});

t.test('every request of the owner on a soft step passes, and the service looks again', async (t) => {
  const { svc, set, broken, passes } = setup();
  set(11, 'pX', [], ['pY']);
  set(12, 'pX', [], ['pY']);
  set(1, 'pY', ['pX']);
  await svc.idle();
  t.same(broken, []);
  t.same(
    passes.map(([id]) => id).sort(),
    [11, 12],
    "both of X's requests queued behind Y pass it",
  );
});

t.test('a request whose edges closed only a soft cycle is not failed once a later one makes a hard cycle through it', async (t) => {
  // P -> Q ~> S -> P is 'fifo''s (Q queues behind S); then X's edges close X -> P -> Q -> X. The
  // later request (2) fails, as one table checks them in that order; the earlier (1) is not
  // failed for it, and the soft cycle through it is still released, though a hard cycle through
  // its owner is as short.
  const { svc, set, broken, passes } = setup();
  set(10, 'pS', ['pP']);
  set(11, 'pQ', [], ['pS']);
  set(12, 'pQ', ['pX']);
  set(1, 'pP', ['pQ']);
  set(2, 'pX', ['pP']);
  await svc.idle();
  t.same(broken, [2], 'the request that closed the hard cycle fails');
  t.same(passes, [[11, 'pS']], 'Q passes S');
});
