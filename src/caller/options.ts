/**
 * What a caller passes besides requests, checked once on the caller's thread: start options (one
 * rule for `workers`, shared by the API, mountFuse and the CLIs) and a waiting request's signal and
 * timeout.
 */
import { availableParallelism } from 'node:os';
import { EINTR, EINVAL, ERROR_INVALID_PARAMETER, ERROR_OPERATION_ABORTED } from '../core/codes.js';
import { describeValue, requireObject } from '../core/input.js';
import type { LockReply, StartOptions } from '../types.js';
import type { HostConfig } from './workers.js';

/** The most worker threads one coordinator runs. */
export const MAX_WORKERS = 256;

/**
 * `workers` as every entry point takes it: an integer from 1 to MAX_WORKERS. `field` is the name
 * the user typed (`options.workers`, `--workers`), so the error names it.
 */
export function checkWorkers(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_WORKERS) {
    throw new TypeError(`${field} must be an integer from 1 to ${MAX_WORKERS}, got ${describeValue(v)}`);
  }
  return v;
}

/** `workers` when none is given: one per CPU, within the rule. */
export function defaultWorkers(): number {
  return Math.min(MAX_WORKERS, Math.max(1, availableParallelism()));
}

/** `--workers N` of a command line: the same rule, the text as typed when it is no number. */
export function workersArg(text: string): number {
  if (!/^\d+$/.test(text)) throw new TypeError(`--workers must be an integer from 1 to ${MAX_WORKERS}, got '${text}'`);
  return checkWorkers(Number(text), '--workers');
}

/** What every host is told at its start (protocol.ts HostInit, without its ports). */
export function hostConfig(o: Options): HostConfig {
  return {
    policy: o.policy ?? 'default',
    approveWindows: o.onLockFile !== undefined,
    approvePosix: o.onLock !== undefined,
    releasedWindows: o.onUnlockFile !== undefined,
    releasedPosix: o.onLock !== undefined,
    hookTimeoutMs: o.hookTimeoutMs ?? 30_000,
  };
}

/**
 * The options as the coordinator keeps them. A hook receives an event that a host built and sent
 * across threads (requests.ts, lock-table.ts): the shapes types.ts declares, held here as records.
 */
export type HostEvent = Readonly<Record<string, unknown>>;
export interface Options extends Omit<StartOptions, 'onLockFile' | 'onUnlockFile' | 'onLock'> {
  onLockFile?: (e: HostEvent) => number | void | Promise<number | void>;
  onUnlockFile?: (e: HostEvent) => void | Promise<void>;
  onLock?: (e: HostEvent) => number | void | Promise<number | void>;
}

const START_OPTIONS = ['workers', 'onLockFile', 'onUnlockFile', 'onLock', 'policy', 'hookTimeoutMs', 'store'];

/** Refuses a field of an options object that `known` does not list, naming it: a misspelt option is never ignored. */
export function refuseUnknown(o: object, known: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new TypeError(`unknown field '${k}' in ${what} (known: ${known.join(', ')})`);
}

export function validateOptions(o: unknown): Options {
  if (o === undefined) return {};
  const opts = requireObject(o, 'options') as StartOptions;
  refuseUnknown(opts, START_OPTIONS, 'options');
  if (opts.workers !== undefined) checkWorkers(opts.workers, 'options.workers');
  for (const k of ['onLockFile', 'onUnlockFile', 'onLock'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'function') throw new TypeError(`options.${k} must be a function, got ${describeValue(opts[k])}`);
  }
  if ((opts.onLockFile === undefined) !== (opts.onUnlockFile === undefined)) {
    throw new TypeError('options.onLockFile and options.onUnlockFile go together: pass both or neither');
  }
  if (opts.policy !== undefined && opts.policy !== 'default' && opts.policy !== 'fifo') {
    throw new TypeError(`options.policy must be 'default' or 'fifo', got ${describeValue(opts.policy)}`);
  }
  if (opts.hookTimeoutMs !== undefined && (typeof opts.hookTimeoutMs !== 'number' || !(opts.hookTimeoutMs > 0))) {
    throw new TypeError(`options.hookTimeoutMs must be a positive number of milliseconds, got ${describeValue(opts.hookTimeoutMs)}`);
  }
  return opts as Options;
}

/** A waiting request's signal and timeout, checked. */
export interface WaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The result when the request ends before it starts (aborted signal, bad timeout). */
  early?: number;
}

/** The wait options of a request without signal and timeout (most requests): shared, never changed. */
export const NO_WAIT: WaitOptions = Object.freeze({});

/** Reads the request's signal and timeoutMs; `early` is the family's code for a bad or aborted one. */
export function waitOptions(o: Record<string, unknown>, windows: boolean): WaitOptions {
  const signal = o.signal;
  if (signal === undefined && o.timeoutMs === undefined) return NO_WAIT;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(`signal must be an AbortSignal, got ${describeValue(signal)}`);
  if (signal?.aborted) return { early: windows ? ERROR_OPERATION_ABORTED : -EINTR };
  const t = o.timeoutMs;
  if (t !== undefined) {
    if (typeof t !== 'number') throw new TypeError(`timeoutMs must be a number of milliseconds, got ${describeValue(t)}`);
    if (!(t >= 0)) return { early: windows ? ERROR_INVALID_PARAMETER : -EINVAL };
  }
  // Infinity waits for ever, as leaving timeoutMs out does.
  return { signal, timeoutMs: t === Infinity ? undefined : (t as number | undefined) };
}

/**
 * The reply to a request ended before it was parsed (aborted signal, bad timeout): its fields
 * echoed. `o` is the request's snapshot (enter), never the caller's object.
 */
export function earlyReply(o: Record<string, unknown>, result: number): LockReply {
  const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : 0n);
  return {
    result,
    lockType: typeof o.lockType === 'number' ? o.lockType : 0,
    lockStart: big(o.lockStart),
    lockLen: big(o.lockLen),
    lockPid: typeof o.lockPid === 'number' ? o.lockPid : 0,
  };
}
