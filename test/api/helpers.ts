/**
 * Small helpers shared by the API tests. Nothing here imports from src/: the tests judge the
 * implementation only through its public surface.
 */
import type { Listed } from '../../driver/targets/api.js';
import type { SessionEvent } from '../../src/store/index.js';

/** The fields of a locks() entry the tests read: the stress runner's, which judges listings too. */
export type { Listed };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The safety budget for something that must happen (a promise settling, a state becoming visible).
 * Tests wait for the event itself; this budget exists only so that a hang fails with the name of
 * what it waited for instead of at tap's file timeout. It is minutes where the thing takes
 * milliseconds, so a slow, shared machine (both cores busy) never reaches it: five minutes, where
 * the slowest waits seen (a worker start or restart, which compiles TypeScript under tap's loader)
 * took tens of seconds at load average 20-35 on 2 cores.
 */
export const HANG_MS = 300_000;

const PENDING = Symbol('pending');

/** Resolves to the promise's value if it settles within `ms`, else to the PENDING marker. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const to = new Promise<typeof PENDING>((r) => (timer = setTimeout(() => r(PENDING), ms)));
  try {
    return await Promise.race([p, to]);
  } finally {
    clearTimeout(timer);
  }
}

export function isPending(v: unknown): boolean {
  return v === PENDING;
}

/** The value `p` settles with; fails naming `what` if it is still pending after `ms` (a hang). */
export async function settles<T>(p: Promise<T>, what: string, ms = HANG_MS): Promise<T> {
  const r = await within(p, ms);
  if (isPending(r)) throw new Error(`still waiting after ${ms / 1000} s for: ${what}`);
  return r as T;
}

/** True when `p` is still unsettled after `ms`. */
export async function stillPending(p: Promise<unknown>, ms = 50): Promise<boolean> {
  return isPending(await within(p, ms));
}

/**
 * Polls `f` until it returns a truthy value; throws (with `what`) after `ms` (HANG_MS: only a hang
 * reaches it). Used only to wait for asynchronous state to become visible where the API has no
 * event for it (a request is queued, a worker restarted); the value it polls for is itself the
 * assertion.
 */
export async function waitFor<T>(f: () => Promise<T> | T, what: string, ms = HANG_MS): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T;
  for (;;) {
    last = await f();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`still waiting after ${ms / 1000} s for: ${what}`);
    await sleep(5);
  }
}

/** A promise that records when it settled relative to others (for arrival-order checks). */
export function track<T>(p: Promise<T>, log: string[], name: string): Promise<T> {
  return p.then((v) => {
    log.push(name);
    return v;
  });
}



function own(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? `'${v}'` : String(v);
}

/** A listing as sorted lines: path kind type start-end owner pid state. */
export function lines(entries: readonly Listed[]): string[] {
  return entries
    .map((e) => `${e.path} ${e.kind} ${e.type} ${e.start}-${e.end} ${own(e.owner)} pid=${e.pid} ${e.state}`)
    .sort();
}

/**
 * The session events of coordinator `c` (onStoreSession) from now on; `seen(kind)` resolves once
 * one of `kind` came (also one that came before the call), within HANG_MS.
 */
export function sessionEvents(c: { onStoreSession(f: (e: SessionEvent) => void): unknown }): (kind: SessionEvent['kind']) => Promise<void> {
  const events: SessionEvent[] = [];
  let heard: () => void = () => {};
  c.onStoreSession((e) => {
    events.push(e);
    heard();
  });
  return (kind) =>
    settles(
      new Promise<void>((resolve) => {
        heard = () => {
          if (events.some((e) => e.kind === kind)) resolve();
        };
        heard();
      }),
      `a session event '${kind}'`,
    );
}

/**
 * Resolves once a worker's replacement is launched (the coordinator warns, LocksmithWorkerWarning,
 * just before), within HANG_MS; `what` names it in a hang.
 */
export function replacementLaunched(what: string): Promise<void> {
  return settles(
    new Promise<void>((resolve) => {
      const onWarning = (w: Error): void => {
        if (w.name !== 'LocksmithWorkerWarning') return;
        process.off('warning', onWarning);
        resolve();
      };
      process.on('warning', onWarning);
    }),
    what,
  );
}
