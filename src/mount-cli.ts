/**
 * `locksmith mount <backing-dir> <mountpoint> [--workers N]`: serves a passthrough of the backing
 * directory whose locks locksmith decides, until SIGINT or SIGTERM, then unmounts. While it serves,
 * its control socket answers `locksmith locks` and `locksmith stats` (src/control.ts).
 */
import { workersArg } from './caller/options.js';
import { parseArgs } from 'node:util';
import { serveControl, type ControlServer } from './control.js';
import { argsMessage, createLogger, joinNegativeValues, LOG_LEVEL_ENV, LOG_LEVELS, printable, printWarnings, resolveLogLevel, type Logger, type LogLevel } from './log.js';
import { mountHandlers } from './mount-control.js';
import { DeadMountError, isDeadMount } from './dead-mount.js';
import { mountFuse, type FuseMount } from './mount.js';
import { versionLine } from './version.js';
import type { StoreOptions } from './types.js';
import { NAME, NAME_RULE, NAMESPACE, NAMESPACE_RULE, resolveOptions, showUrl } from './store/options.js';
import { NODE_WAIT_CHANNEL, type NodeWait } from './store/index.js';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { LockCoordinator } from './caller/coordinator.js';
import type { SessionEvent } from './store/types.js';

/** The environment variable that gives the store's URL when --store is not given. */
const STORE_ENV = 'LOCKSMITH_STORE';

const HELP = `usage: locksmith mount <backing-dir> <mountpoint> [--workers N] [--threads N] [--clean-stale]
                       [--store URL [--namespace NAME] [--node NAME]] [--log-level LEVEL]

Mounts a FUSE passthrough of <backing-dir> at <mountpoint>. Programs that open files under the
mountpoint read and write the backing files; their fcntl (F_SETLK, F_SETLKW, F_GETLK, OFD) and
flock locks are decided by locksmith's per-file actors on N worker threads, as Linux would decide
them on a local file system: waiting requests never hold a FUSE thread, a signal interrupts them,
close() and process exit release what they should, and deadlocks between processes get EDEADLK.

Serves until SIGINT (Ctrl-C) or SIGTERM, then answers every waiting request, unmounts and exits.
Needs /dev/fuse and the right to mount (root, or fusermount3 for the user).

These locks never appear in /proc/locks or lslocks: from another shell, 'locksmith locks
<mountpoint>' lists them and 'locksmith stats <mountpoint>' shows the counters, through a control
socket only root and the user running the mount can open.

A mount whose server was killed (kill -9, a crash) stays behind dead: every access fails with
"Transport endpoint is not connected" until it is unmounted. Mounting there again says so and
names the command ('fusermount3 -u -z <mountpoint>', or 'umount -l <mountpoint>' as root);
--clean-stale runs it and mounts.

options:
  --workers N         worker threads deciding locks (default: the number of CPUs)
  --threads N         libfuse threads serving file operations (default 4)
  --clean-stale       if <mountpoint> is a dead FUSE mount, lazily unmount it first
  --store URL         share one lock space with every mount and program using the same Redis
                      (redis://[user:password@]host[:port][/db], rediss:// for TLS) and namespace:
                      a lock taken through one node's mount conflicts on every node's. Files are
                      keyed by inode number, as every node over the same shared storage sees it:
                      a program shares a file's locks by naming it 'ino:<st_ino>' too. Without
                      --store, the URL in $${STORE_ENV} if set: unlike an argument, ps does not
                      show it to other users (a password in it included)
  --namespace NAME    the lock space on that engine (default locksmith): one per shared volume
  --node NAME         this node's name in listings (default <hostname>-<pid>)
  --log-level LEVEL   ${LOG_LEVELS.join(', ')} (default warn; or set ${LOG_LEVEL_ENV}): what goes to
                      stderr. error: faults inside a worker (a bug; the request got a generic
                      error); warn: also hook failures, replaced workers, and a --store session
                      fenced, unfenced or lost, or put back after the store lost its data; info:
                      also new sessions, grace periods, the control socket and unmount details;
                      debug: also every control request
  --version           print the version
  --help              show this text
`;

/** What the processes on the mount see once a session is lost. */
const LOST = 'its locks are lost (reads and writes through the files that held them fail with EIO until closed) and its waiters ended';

/**
 * One log line for an event of the node's session on the store, or undefined for none. `said`:
 * the lost session's loss was logged already (at its 'expired'; the new session's 'lost' follows).
 */
function sessionLine(e: SessionEvent, grace: boolean, said: boolean): [LogLevel, string] | undefined {
  const inGrace = grace ? "; the lock space is in a grace period: grants wait for its end" : '';
  switch (e.kind) {
    case 'fenced':
      return ['warn', `session ${e.epoch} fenced: no renewal confirmed in time, so it may have expired; nothing is answered from what it holds until a renewal gets through or it counts as lost`];
    case 'unfenced':
      // At 'warn' as the fence was: whoever saw that line learns here that it ended.
      return ['warn', `session ${e.epoch} renewed: no longer fenced, answering again`];
    case 'expired':
      return ['warn', `session ${e.epoch} lost: no renewal confirmed within its TTL (the store out of reach, or this process paused); ${LOST}; a new session opens once the store answers`];
    case 'lost':
      if (said) return ['info', `new session ${e.epoch} opened (session ${e.lost} was lost)${inGrace}`];
      return ['warn', `session ${e.lost} lost (it expired before a renewal got through, or the store lost its data while it was fenced): ${LOST}; new session ${e.epoch} opened${inGrace}`];
    case 'reset':
      // At 'warn' as a fence or a loss is: the store lost its data, and whoever saw the 'fenced'
      // line it may have caused learns here that the mount answers again, and what it kept.
      return ['warn', `the store lost its data: new session ${e.epoch} opened, answering again; it puts back the locks and waiters session ${e.lost} held, in a grace period of ${e.graceMs} ms (grants wait for its end); a lock not put back by then counts as lost`];
    case 'grace-ended':
      return ['info', `grace period over (session ${e.epoch}): grants go on`];
    case 'displaced':
      // Said as a LocksmithFaultWarning (SharedSpace), at 'error'.
      return undefined;
  }
}

/**
 * Logs each event of the coordinator's session on its store, one line each: at 'warn' what costs
 * the processes on the mount their locks or answers (fenced, lost), the end of a fence and the recovery from a reset, at
 * 'info' the rest (a new session, a grace period's end). Also says now, at 'info', when the
 * lock space is in a grace period (a new namespace starts in one).
 */
export async function logSession(c: LockCoordinator, log: Logger): Promise<SessionWatch> {
  let expired = 0;
  let displaced = false;
  c.onStoreSession((e, now) => {
    const l = sessionLine(e, now.grace, e.kind === 'lost' && e.lost === expired);
    if (e.kind === 'expired') expired = e.epoch;
    if (e.kind === 'displaced') displaced = true;
    if (l !== undefined) log[l[0]](l[1]);
  });
  const s = (await c.stats()).store;
  if (s?.session.grace) log.info(`session ${s.session.epoch} opened in a grace period (a new lock space starts in one, for nodes to put back what they held): grants wait for its end`);
  return { displaced: () => displaced };
}

/** What logSession learnt of the session, for the control channel: whether another process took the node's name ('displaced'; none comes back). */
export interface SessionWatch {
  displaced(): boolean;
}

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  // Digits only: Number() would also take '0x4', '1e1' and ' 4'.
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new UsageError(`--${name} must be a whole number from 1 to 1024, got '${v}'`);
  return n;
}

/** A --node or --namespace value as the store takes it, else a UsageError naming the flag and quoting the value. */
function storeName(v: string | undefined, flag: string, re: RegExp, rule: string): string | undefined {
  if (v !== undefined && !re.test(v)) throw new UsageError(`--${flag} must be ${rule}, got ${JSON.stringify(v)}`);
  return v;
}

/** ms as seconds for a person: 10500 -> "10.5 s". */
function seconds(ms: number): string {
  return `${Math.ceil(ms / 100) / 10} s`;
}

class UsageError extends Error {}

/** Checks the store's URL as the store will (resolveOptions), else a UsageError naming where it came from. */
function storeUrl(store: StoreOptions, from: string): void {
  try {
    resolveOptions(store);
  } catch (e) {
    throw new UsageError(`${from}: ${(e instanceof Error ? e.message : String(e)).replace(/^locksmith store: /, '')}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  let backing: string;
  let mountpoint: string;
  let workers: number | undefined;
  let threads: number | undefined;
  let cleanStale: boolean;
  let store: StoreOptions | undefined;
  let level: LogLevel;
  try {
    const { values, positionals } = parseArgs({
      // '--workers -1' is a bad number of workers, not a missing value.
      args: joinNegativeValues(argv, ['workers', 'threads']),
      allowPositionals: true,
      options: {
        workers: { type: 'string' },
        threads: { type: 'string' },
        'clean-stale': { type: 'boolean' },
        store: { type: 'string' },
        namespace: { type: 'string' },
        node: { type: 'string' },
        'log-level': { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (values.version) {
      process.stdout.write(versionLine());
      return 0;
    }
    if (positionals.length !== 2) throw new UsageError('mount needs a backing directory and a mountpoint');
    [backing, mountpoint] = positionals as [string, string];
    // mountFuse would say "backing must be a non-empty string" and exit 1: a usage error, said as one.
    if (backing === '') throw new UsageError('the backing directory is empty (an unset variable?)');
    if (mountpoint === '') throw new UsageError('the mountpoint is empty (an unset variable?)');
    workers = values.workers === undefined ? undefined : workersArg(values.workers);
    threads = positiveInt(values.threads, 'threads');
    cleanStale = values['clean-stale'] === true;
    // The URL from the environment when --store is not given: an argument is shown to every user
    // by ps, a password in it too. Empty is unset.
    const fromEnv = values.store === undefined && (process.env[STORE_ENV] ?? '') !== '';
    const url = fromEnv ? process.env[STORE_ENV] : values.store;
    if (url === undefined && (values.namespace !== undefined || values.node !== undefined)) throw new UsageError(`--namespace and --node go with --store (or ${STORE_ENV})`);
    storeName(values.namespace, 'namespace', NAMESPACE, NAMESPACE_RULE);
    storeName(values.node, 'node', NAME, NAME_RULE);
    store =
      url === undefined
        ? undefined
        : { url, ...(values.namespace === undefined ? {} : { namespace: values.namespace }), ...(values.node === undefined ? {} : { node: values.node }) };
    // A URL that cannot name a Redis is a bad flag like any other (its password hidden in the message).
    if (store !== undefined) storeUrl(store, fromEnv ? STORE_ENV : '--store');
    level = resolveLogLevel(values['log-level']);
  } catch (e) {
    process.stderr.write(`locksmith mount: ${argsMessage(e)}. Run 'locksmith mount --help'.\n`);
    return 2;
  }
  const log = createLogger('locksmith mount', level);
  printWarnings(log);

  let m: FuseMount;
  // A node name whose previous session is still live (this node's last run was killed) is waited
  // for, up to a TTL: said at once, not after a silent wait.
  const onWait = (msg: unknown) => {
    const w = msg as NodeWait;
    process.stdout.write(
      `locksmith: waiting for the previous session of node '${w.node}' on ${w.url} to expire (up to ${seconds(w.upToMs)}): it is still live,` +
        ' left by a run of this node that ended without closing it, or held by another process using the same --node (the mount then fails)\n',
    );
  };
  subscribe(NODE_WAIT_CHANNEL, onWait);
  // What --clean-stale did is said: a dead mount there means the last server died without unmounting.
  const dead = cleanStale && isDeadMount(mountpoint);
  try {
    m = await mountFuse({
      backing,
      mountpoint,
      cleanStale,
      ...(workers === undefined ? {} : { workers }),
      ...(threads === undefined ? {} : { threads }),
      ...(store === undefined ? {} : { store }),
    });
  } catch (e) {
    if (e instanceof DeadMountError) {
      process.stderr.write(`locksmith mount: ${printable(mountpoint)} is a dead FUSE mount left by a server that exited: run '${e.command}' (or add --clean-stale)\n`);
      return 1;
    }
    process.stderr.write(`locksmith mount: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    unsubscribe(NODE_WAIT_CHANNEL, onWait);
  }
  if (dead) process.stdout.write(`locksmith: unmounted the dead FUSE mount at ${printable(mountpoint)} left by a server that exited (--clean-stale)\n`);
  const startedAt = Date.now();
  const watch = store === undefined ? undefined : await logSession(m.coordinator, log);
  // The lock space this mount shares: `locksmith locks` lists each lock of it once, under its node's mount.
  const node = store === undefined ? undefined : (await m.coordinator.stats()).store?.node;
  const resolved = store === undefined ? undefined : resolveOptions(store);
  const space = resolved === undefined || node === undefined ? undefined : { engine: resolved.shownUrl, namespace: resolved.namespace, node };
  let control: ControlServer | undefined;
  try {
    control = await serveControl({
      // the path the native session mounted at (resolved before mounting): resolving it now would
      // ask the mount itself
      mountpoint: m.info().mountpoint ?? mountpoint,
      resolved: m.info().mountpoint !== undefined,
      handlers: mountHandlers(m, { startedAt, ...(space === undefined || resolved === undefined ? {} : { space, engineUrl: resolved.url, displaced: watch?.displaced }) }),
      onRequest: (cmd) => log.debug(`control request '${cmd}'`),
      onError: (cmd, e) => log.warn(`control request '${cmd}' failed: ${e instanceof Error ? e.message : String(e)}`),
    });
    log.info(`control socket ${control.path} (mode 0600): 'locksmith locks ${mountpoint}' and 'locksmith stats ${mountpoint}' read it`);
  } catch (e) {
    // The mount works without it; only `locksmith locks` and `stats` cannot reach this one.
    log.warn(`no control channel, so 'locksmith locks' and 'stats' cannot see this mount: ${e instanceof Error ? e.message : String(e)}`);
  }
  const onExit = () => control?.removeSocket();
  process.once('exit', onExit);

  const info = m.info();
  process.stdout.write(
    `locksmith: serving ${backing} at ${mountpoint} with ${workers ?? 'default'} workers` +
      ` (POSIX locks ${info.posixLocks ? 'ours' : 'decided by the kernel'}, flock ${info.flockLocks ? 'ours' : 'decided by the kernel'})` +
      (store === undefined ? '' : `, one lock space with every node on ${showUrl(store.url)} as node '${node}'`) +
      '; Ctrl-C or SIGTERM unmounts\n',
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  await control?.close();
  const stats = await m.coordinator.stats().catch(() => undefined);
  // The lock requests the unmount itself answered (their processes were still waiting).
  const ended = await m.unmountCounted();
  process.off('exit', onExit);
  if (stats !== undefined) {
    log.info(
      `${signal}: ${stats.files} files with locks or waiters at unmount, ${ended} waiting requests answered;` +
        ` ${stats.hookErrors} hook errors, ${stats.faults} faults, ${stats.workerRestarts} worker restarts in all`,
    );
  }
  // Lock requests only (fcntl and flock, getlk included): the flushes and releases each close
  // sends are counted apart (operations.flush, operations.release).
  const lockRequests = stats === undefined ? 0 : Object.values(stats.operations.lock ?? {}).reduce((n, k) => n + k, 0);
  // A request still waiting at the signal is answered by the unmount (its waiter ended), after
  // these counters were read: counted here, and said. The unmount's own count, not stats.waiting:
  // in a shared lock space a request counts as waiting only once the engine applied its step, and
  // one whose step had not reached it (the engine slow or out of reach) was counted nowhere.
  const requests = lockRequests + ended;
  const served = stats === undefined ? '' : ` after ${requests} lock request${requests === 1 ? '' : 's'}${ended === 0 ? '' : `, ${ended} still waiting, ended`}`;
  process.stdout.write(`locksmith: ${signal}: unmounted ${mountpoint}${served}\n`);
  return 0;
}
