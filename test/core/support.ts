/** Helpers shared by the core unit tests. */
import type { PosixReply } from '../../src/index.js';

/** A reply that must come at once: neither queued (a Pending) nor a Promise. */
export function now(x: unknown): PosixReply {
  if (x instanceof Promise) throw new Error('expected an immediate reply, got a Promise');
  if (typeof x === 'object' && x !== null && 'waiter' in x) throw new Error('expected an immediate reply, got a Pending');
  return x as PosixReply;
}
