/**
 * `locksmith locks [MOUNTPOINT]` and `locksmith stats [MOUNTPOINT]`: ask running mounts, through
 * their control sockets (src/control.ts), for the locks they hold (like lslocks, which cannot see
 * them) and for their counters.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ControlError, controlDir, fuseMountAt, listSockets, realMountpoint, request, searchDirs, socketName, socketServer } from './control.js';
import { deadMountCommand, isDeadMount } from './dead-mount.js';
import { argsMessage, printable } from './log.js';
import { versionLine } from './version.js';
import { defaultNode, lateAfterMs, NAMESPACE, NAMESPACE_RULE, resolveOptions } from './store/options.js';
import { RedisEngine } from './store/redis.js';
import { recordEntries } from './core/records.js';
import { controlLockOf, registryOf } from './mount-control.js';
import { isThisMachine, thisMachine } from './machine.js';
import type { ControlLock, ControlRegistry, ControlSpace } from './mount-control.js';
import type { StoreStats } from './types.js';
import type { SessionServes } from './store/types.js';

const OFFSET_MAX = '9223372036854775807';

const HELP = {
  locks: `usage: locksmith locks [MOUNTPOINT] [--json] [--noheadings]
       locksmith locks --store URL [--namespace NAME] [--json] [--noheadings]

Lists the fcntl, OFD and flock locks that processes hold or wait for on a running 'locksmith
mount' (they never appear in /proc/locks or lslocks), one per line:

  NODE   on a mount sharing its lock space (--store): the node that holds or waits
  PID    the process that took the lock (for flock: the thread that called flock), on its node
  KIND   posix (fcntl; OFD locks arrive as posix over FUSE) or flock
  TYPE   read or write (flock: shared is read, exclusive is write)
  START  first byte; END last byte, EOF when the lock runs to the end of the file
  STATE  granted, or waiting (F_SETLKW, blocking flock)
  PATH   the file, relative to the mountpoint (<dev D inode I> when its name cannot be found);
         on a mount sharing its lock space, a lock a program took under a path: that path

Without MOUNTPOINT, every running mount this user can reach is listed (a MOUNT column is added).
Mounts sharing one lock space (--store, same engine and namespace) each see every node's locks:
each lock is listed once, its MOUNT the mount of its NODE (also one that does not answer, named
on stderr, or one whose server is gone, as its live session recorded where it serves), or '-'
when that node has no mount on this machine (another machine's, or a program's coordinator).
Only root and the user running a mount can ask it. A mount that cannot answer is named on
stderr, and the exit status is 1: one whose server does not answer at all (stopped, stuck) is
named by its mountpoint and pid after 3 s, and the other mounts are listed. A mount sharing its
lock space whose engine refuses connections or does not answer lists its own node's locks as
that node last knew them, STATE marked '*' (--json: "lastKnown": true), and says why on stderr;
other nodes' locks are unknown then. A mount displaced from its node's name (another process
opened a session under the same --node after its own expired: it has no session, and answers
lock requests with ENOLCK) lists none of its node's locks as its own: they are the session's that
holds the name now, listed once, under that session's mount (a MOUNT column is added to the
listing of that mount alone, to show it); stderr says so and the exit status is 1.

In a shared lock space each node keeps a session on the engine, renewed about every 0.5 s, that
expires its TTL (a mount's: 10 s) after its last renewal; then a live node's next renewal reaps
its locks. A node whose server was killed, crashed, is stopped or cut off from the engine keeps
its locks listed (they still block others) until then: once it has not renewed for over two
renewals and a second (at most 3/4 of its TTL), stderr names it and its mount ("node b (the
mount at /mnt/x)", "on host H" added when it is another machine's, and ", another machine
with this host name" when H is also this machine's host name: a mount records where it serves
with its session, while the session lives, with its host name and its machine's identity, and
machines are told apart by that identity when both have one, else by host name: a machine is
one mount namespace of one boot of a host, each container one of its own, and its identity a
keyed hash of its machine ID (/etc/machine-id), boot ID and mount namespace; a program's
coordinator records none), says for how long, and when its locks go ("in about N s", on the
engine's clock), or that its session expired (or was ended) and they go at the next reap. The
listing is complete all the same: this alone leaves the exit status 0.

With --store, no mount is asked: the lock space NAME (default locksmith) on the engine at URL
(redis://[user:password@]host[:port][/db], rediss:// for TLS) is listed from the engine, on any
machine that reaches it, also one with no mount (an admin's, a node whose mount is down): every
node's locks, each once, NODE always shown, MOUNT the mount its node recorded with its live
session (host:mountpoint; '-' for a program's coordinator, or a node whose session is gone), PATH
the file's key (<dev ? inode I> for a mount's file: only a mount can name it). The listing joins
no lock space: it opens no session, is counted as no node, and writes nothing (a read-only
script). Late sessions are said on stderr as above. An engine that cannot be reached, does not
answer within 5 s, or a malformed URL: one line naming the URL, exit status 1. A namespace
with no data is said on stderr (a mistyped --namespace). Data the engine holds from an earlier
run of its server (restarted from a snapshot, failed over) that no node has used since is listed
as it is and said on stderr to be possibly stale: the first node to reach the engine drops it.

options:
  --store URL    list the lock space on that engine, without a mount (not with MOUNTPOINT)
  --namespace NAME  with --store: the lock space (default locksmith)
  --json         {"mounts":[...],"locks":[{mountpoint,path,pid,kind,type,start,end,state,...}]};
                 start and end are decimal strings (end ${OFFSET_MAX} is EOF); mountpoint is
                 the lock's MOUNT (null for '-'); in a shared lock space node, epoch (its
                 session), and "late": true on a late session's locks, which are listed in
                 "lateSessions":[{node,epoch,mountpoint,host,machine,notRenewedForMs,
                 expiresInMs}] (mountpoint: its node's mount, null when not known; host: that
                 mount's host name when it is another machine's, else null; machine: that
                 machine's identity, 16 hex digits of a keyed hash of its machine ID, boot ID
                 and mount namespace, when it is another machine's and recorded one, else
                 null; expiresInMs at or below 0: expired that long ago; null: ended or
                 replaced; notRenewedForMs null in both cases); no "lateSessions" key when no
                 session is late; a displaced mount's entry in "mounts" has "displaced": why;
                 with --store {"store":{engine,namespace,incarnation,
                 stale},"locks":[{mountpoint,host,...}]} (host: of the node's recorded mount,
                 else null; stale: true for data of an earlier run), "lateSessions" as above
  --noheadings   leave the heading line out
  --version      print the version
  --help         show this text
`,
  stats: `usage: locksmith stats [MOUNTPOINT] [--json]

Shows the counters of a running 'locksmith mount' (every running mount without MOUNTPOINT): locks
held and waiting, files, operations by result, waits, worker restarts, hook errors, faults, the
FUSE session's events and replies, and on a mount sharing its lock space (--store) the engine's
side: its session, renewals and round trips (the lock counts are then that node's own; 'locksmith
locks' lists every node's). Only root and the user running a mount can ask it.

options:
  --json      {"mounts":[{mount, stats, session}]}, 64-bit values as decimal strings
  --version   print the version
  --help      show this text
`,
};

type Cmd = keyof typeof HELP;
/** `lastKnown`: the engine of the mount's lock space did not answer (why): its locks are its node's own, as it last knew them. */
/** `displaced`: another process holds the mount's node name now (why): the locks of that node are not this mount's. */
export type Answer = Record<string, unknown> & { mount: MountInfo; space?: ControlSpace; lastKnown?: string; displaced?: string; registry?: ControlRegistry };
interface MountInfo {
  mountpoint: string;
  backing: string;
  pid: number;
  uid: number | null;
  version: string;
  startedAt: string;
  uptimeMs: number;
  workers: number;
}
/** A ControlLock as it crosses the socket: its 64-bit values as decimal strings. */
type WireLock = { [K in keyof ControlLock]: ControlLock[K] extends bigint ? string : ControlLock[K] };

class Failure extends Error {}

function fail(cmd: Cmd, msg: string): number {
  process.stderr.write(`locksmith ${cmd}: ${msg}\n`);
  return 1;
}

/** A control error as the user reads it: a mount's own error without the prefix of the part that raised it ("locksmith store: "). */
function said(e: ControlError): string {
  return e.code === 'failed' ? e.message.replace(/^locksmith [a-z]+: /, '') : e.message;
}

/**
 * How long a mount may leave 'info' unanswered (it needs nothing but the server's event loop)
 * before it counts as not answering: its server is stopped (SIGSTOP, a debugger) or stuck.
 */
export const ALIVE_MS = 3_000;

/** A mount that does not answer, named by its mountpoint (and pid when found), else by its socket. */
class Silent extends Error {
  constructor(readonly mount: string) {
    super(`${mount} does not answer (${SILENT})`);
  }
}

/** A mount that does not answer, named by its mountpoint (else its socket) and its server's pid when found. */
function silentName(path: string, known?: string): string {
  const who = socketServer(path);
  const mount = known ?? who.mountpoint;
  return `${mount === undefined ? `the mount served on ${path}` : `the mount at ${printable(mount)}`}${who.pid === undefined ? '' : ` (pid ${who.pid})`}`;
}

const SILENT = `no answer to 'info' within ${ALIVE_MS / 1000} s: its server is stopped (SIGSTOP, a debugger) or stuck`;

/**
 * `cmd`'s answer on the socket at `path`. Beside it, 'info': a server that answers neither within
 * ALIVE_MS does not answer at all (a Silent, naming its mount); one that answers 'info' is only
 * slow on `cmd` (its engine, a walk of its backing directory) and has the request's full time.
 */
async function ask(cmd: Cmd, path: string, mountpoint?: string): Promise<Answer> {
  const ac = new AbortController();
  const answer = request(path, { cmd }, undefined, ac.signal);
  const alive = request(path, { cmd: 'info' }, ALIVE_MS, ac.signal).then(
    () => true,
    (e: unknown) => !(e instanceof ControlError && e.code === 'timeout'),
  );
  try {
    return (await Promise.race([answer, alive.then((ok) => (ok ? answer : Promise.reject(new Silent(silentName(path, mountpoint)))))])) as Answer;
  } finally {
    ac.abort();
    answer.catch(() => {});
  }
}

/** The answer of the mount at `mountpoint`, or a Failure saying in one sentence why not. */
async function askOne(cmd: Cmd, mountpoint: string): Promise<Answer> {
  // A live FUSE mount's real path is found without touching it (a stopped server would hang it).
  const real = fuseMountAt(mountpoint) ?? realMountpoint(mountpoint);
  const name = socketName(real);
  const dirs = searchDirs();
  let denied: string | undefined;
  let stale: string | undefined;
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      return await ask(cmd, path, real);
    } catch (e) {
      if (e instanceof Silent) throw new Failure(e.message);
      if (!(e instanceof ControlError)) throw e;
      if (e.code === 'absent') continue;
      if (e.code === 'denied') {
        denied = path;
        continue;
      }
      if (e.code === 'stale') {
        stale = path;
        continue;
      }
      throw new Failure(said(e));
    }
  }
  if (denied) throw new Failure(`permission denied on ${denied}: only root and the user running the mount at ${printable(mountpoint)} can ask it`);
  if (isDeadMount(mountpoint)) {
    throw new Failure(`${printable(mountpoint)} is a dead FUSE mount (its server is gone): run '${deadMountCommand(mountpoint)}'`);
  }
  if (stale) throw new Failure(`the server of ${printable(mountpoint)} is gone (${stale} is left from it)`);
  throw new Failure(
    `no running locksmith mount at ${printable(mountpoint)} (no control socket ${name} in ${dirs.length === 1 ? dirs[0] : `${controlDir()} or other users' directories`})`,
  );
}

/** The mountpoint a live control socket serves ('info' needs nothing but the mount), or undefined. */
async function mountOf(path: string): Promise<string | undefined> {
  try {
    return ((await request(path, { cmd: 'info' }, 5_000)) as Answer).mount.mountpoint;
  } catch {
    return undefined;
  }
}

/** A mount whose server does not answer (stopped, stuck), as far as it is known without asking it. */
export interface SilentMount {
  mountpoint: string;
  /** Its node in a shared lock space, from its server's command line (see serverNode). */
  node: string;
}

/**
 * The node name of the `locksmith mount` server `pid`, read from its command line (a stopped
 * server can still be read so): its --node, else the default name a mount on this host takes
 * (<host>-<pid>). Undefined when its command line cannot be read.
 */
export function serverNode(pid: number): string | undefined {
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
  let node: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--node' && i + 1 < args.length) node = args[i + 1];
    else if (args[i]!.startsWith('--node=')) node = args[i]!.slice('--node='.length);
  }
  return node ?? defaultNode(pid);
}

/**
 * The answers of every running mount reachable; notes on stderr about the ones that are not.
 * `failed`: mounts that are running but could not answer (their listing is missing). `silent`:
 * those whose server does not answer at all, with their node, so that their node's locks that
 * another mount of the lock space lists are shown on their mount.
 */
async function askAll(cmd: Cmd): Promise<{ answers: Answer[]; failed: number; silent: SilentMount[] }> {
  let failed = 0;
  const silent: SilentMount[] = [];
  // Every mount at once: one that waits for its engine (up to its request timeout) holds up no other.
  const results = await Promise.all(
    (await listSockets(searchDirs())).map(async (s): Promise<Answer | string | undefined> => {
      if (s.state === 'denied') return `skipping ${s.path}: permission denied (another user's mount)`;
      if (s.state !== 'live') return undefined;
      try {
        return await ask(cmd, s.path);
      } catch (e) {
        if (e instanceof Silent) {
          failed++;
          const who = socketServer(s.path);
          const node = who.pid === undefined ? undefined : serverNode(who.pid);
          if (who.mountpoint !== undefined && node !== undefined) silent.push({ mountpoint: who.mountpoint, node });
          return `skipping ${e.mount}: it does not answer (${SILENT}); the other mounts are listed`;
        }
        if (!(e instanceof ControlError)) throw e;
        // A mount that answered with an error is running: named by its mountpoint, not its socket.
        const mount = e.code === 'failed' ? await mountOf(s.path) : undefined;
        failed++;
        return `skipping ${mount === undefined ? s.path : `the mount at ${printable(mount)}`}: ${said(e)}`;
      }
    }),
  );
  const out: Answer[] = [];
  for (const r of results) {
    if (typeof r === 'string') process.stderr.write(`locksmith ${cmd}: ${r}\n`);
    else if (r !== undefined) out.push(r);
  }
  return { answers: out.sort((a, b) => a.mount.mountpoint.localeCompare(b.mount.mountpoint)), failed, silent };
}


function table(rows: string[][], headings: boolean, right: Set<number>): string {
  const all = headings ? rows : rows.slice(1);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join(' ')
        .trimEnd(),
    )
    .map((l) => `${l}\n`)
    .join('');
}

/**
 * The PATH column: the name under the mountpoint; a file whose name cannot be found by its device
 * and inode; a key that is no file identity (a lock API code took under a path, in a shared lock
 * space) as it was given.
 */
function shownPath(l: WireLock): string {
  if (l.path !== null) return printable(l.path);
  if (l.ino === null) return printable(l.key);
  return `<dev ${l.dev ?? '?'} inode ${l.ino}>`;
}

/** One lock to list, and the mount it is on: its node's, or null for a node with no mount among the answers. */
interface Listed {
  lock: WireLock & { lastKnown?: true; late?: true };
  mountpoint: string | null;
  /** Listed from the engine alone (--store): the host name of the node's recorded mount (MOUNT is host:mountpoint). */
  host?: string;
  /** Its session, when its node no longer renews it. */
  late?: LateSession;
}

/**
 * A session of a shared lock space that holds or waits for listed locks and that its node no
 * longer renews (its server killed or crashed, stopped, or cut off from the engine): its locks stay
 * until it expires and a reaper (run by a live node's next renewal) removes them.
 */
export interface LateSession {
  node: string;
  epoch: number;
  /**
   * Its node's mount, when known: one of this machine's that does not answer, else where the mount
   * recorded with its session that it serves (on `host`); null for a node that is no mount, or
   * whose record the engine no longer has (its session expired or ended).
   */
  mountpoint: string | null;
  /** The host name of that mount's machine when it is another machine (see isThisMachine), else null. */
  host: string | null;
  /** That machine's identity (SessionServes.machine) when it is another machine and recorded one, else null. */
  machine: string | null;
  /** ms since its last renewal on the engine's clock; null when its TTL is unknown (expired or ended). */
  notRenewedForMs: number | null;
  /** ms until it expires (at or below 0: it expired that long ago); null: it was ended or replaced by a newer one. */
  expiresInMs: number | null;
  /** Its listed locks: granted, and waiting. */
  granted: number;
  waiting: number;
}



/** This machine as a recorded mount is compared with (isThisMachine). */
export interface Here {
  host: string;
  machine: string | undefined;
}

function thisHere(): Here {
  return { host: hostname(), machine: thisMachine() };
}

/** Whether the mount a session recorded is on this machine: by machine identity when both have one, else by host name. */
function servesHere(s: SessionServes, here: Here): boolean {
  return isThisMachine(s.host, s.machine, here);
}

/**
 * The session of `node`/`epoch` in `registry` when its node no longer renews it, else undefined.
 * `mountpoint`: its node's mount on this machine as the listing knows it (one that answers or does
 * not answer), else null: then the mount its session recorded, if any.
 */
function lateOf(registry: ControlRegistry, node: string, epoch: number, mountpoint: string | null, here: Here): LateSession | undefined {
  const s = registry.sessions.find((x) => x.node === node && x.epoch === epoch);
  if (s === undefined) return undefined;
  const serves = s.serves;
  const at =
    mountpoint !== null
      ? { mountpoint, host: null, machine: null }
      : serves === undefined
        ? { mountpoint: null, host: null, machine: null }
        : servesHere(serves, here)
          ? { mountpoint: serves.mountpoint, host: null, machine: null }
          : { mountpoint: serves.mountpoint, host: serves.host, machine: serves.machine ?? null };
  const late = (notRenewedForMs: number | null): LateSession => ({ node, epoch, ...at, notRenewedForMs, expiresInMs: s.expiresInMs, granted: 0, waiting: 0 });
  if (s.expiresInMs === null || s.expiresInMs <= 0) return late(null);
  // A live session's TTL is known from its opener: without it, it is only judged once expired.
  if (s.ttlMs === undefined) return undefined;
  const since = Math.max(0, s.ttlMs - s.expiresInMs);
  return since > lateAfterMs(s.ttlMs) ? late(since) : undefined;
}

/** How a lock listed as its node last knew it is marked (STATE). */
const LAST_KNOWN_MARK = '*';

/** What tells two answers' entries for one lock apart from another lock (waitingMs and path are each mount's view). */
function lockId(l: WireLock): string {
  return JSON.stringify([l.node, l.key, l.owner, l.pid, l.kind, l.type, l.start, l.end, l.state]);
}

function byPlace(a: Listed, b: Listed): number {
  const x = a.lock;
  const y = b.lock;
  return (
    (x.path ?? '\uffff').localeCompare(y.path ?? '\uffff') ||
    x.key.localeCompare(y.key) ||
    (BigInt(x.start) < BigInt(y.start) ? -1 : BigInt(x.start) > BigInt(y.start) ? 1 : 0) ||
    (x.node ?? '').localeCompare(y.node ?? '') ||
    x.pid - y.pid
  );
}

/**
 * What tells lock spaces apart: the engine's incarnation and the namespace (one engine's URL may be
 * written many ways), or the URL as shown and the namespace from a mount that reported none.
 */
function spaceId(s: ControlSpace): string {
  return JSON.stringify(s.incarnation ? ['incarnation', s.incarnation, s.namespace] : ['url', s.engine, s.namespace]);
}

/**
 * The locks of the answers, each once. A mount alone lists its own. Every mount of one lock space
 * (--store: same engine and namespace) lists every node's locks, from the engine: each is kept
 * once, on the mount of its node (that mount's entry: it found the path through the holder's own
 * descriptors), or with mountpoint null when its node has no mount among the answers (another
 * machine's, a program using the API, a mount not listed). A node whose mount does not answer
 * (`silent`) has its locks shown on that mount.
 */
export function listed(answers: readonly Answer[], silent: readonly SilentMount[] = [], here: Here = thisHere()): Listed[] {
  const out: Listed[] = [];
  const done = new Set<string>();
  for (const a of answers) {
    const locks = (a.locks ?? []) as WireLock[];
    if (a.space === undefined) {
      for (const lock of locks) out.push({ lock, mountpoint: a.mount.mountpoint });
      continue;
    }
    const space = spaceId(a.space);
    if (done.has(space)) continue;
    done.add(space);
    const all = answers.filter((b) => b.space !== undefined && spaceId(b.space) === space);
    // A mount whose engine did not answer lists only its own node's locks, as it last knew them:
    // when another mount of the space got them from the engine, those are the ones listed.
    const fresh = all.filter((b) => b.lastKnown === undefined);
    const group = fresh.length > 0 ? fresh : all;
    // Every answering mount names its node's mount, also one whose listing is not used; not one
    // displaced from its node's name: that node's locks are the session's that holds the name now.
    const mountOfNode = new Map<string, string>();
    for (const b of all) if (b.displaced === undefined && !mountOfNode.has(b.space!.node)) mountOfNode.set(b.space!.node, b.mount.mountpoint);
    // A mount that does not answer was named on stderr: its node's locks are shown on it, not '-'.
    for (const m of silent) if (!mountOfNode.has(m.node)) mountOfNode.set(m.node, m.mountpoint);
    // The engine's session registry, read beside the locks: which sessions their nodes no longer renew.
    const registry = group.find((b) => b.registry !== undefined)?.registry;
    // A mount of this machine that no answer names (its server killed, or another user's) is known
    // from its session's record of where it serves.
    for (const x of registry?.sessions ?? []) if (x.serves !== undefined && servesHere(x.serves, here) && !mountOfNode.has(x.node)) mountOfNode.set(x.node, x.serves.mountpoint);
    const once = new Map<string, Listed>();
    for (const b of group) {
      for (const lock of (b.locks ?? []) as WireLock[]) {
        const id = lockId(lock);
        const own = lock.node !== undefined && lock.node === b.space!.node && b.displaced === undefined;
        const seen = once.get(id);
        const marked = b.lastKnown === undefined ? lock : { ...lock, lastKnown: true as const };
        if (seen === undefined) once.set(id, { lock: marked, mountpoint: lock.node === undefined ? b.mount.mountpoint : (mountOfNode.get(lock.node) ?? null) });
        else if (own) seen.lock = lock;
      }
    }
    markLate(once.values(), registry, (node) => mountOfNode.get(node) ?? null, here);
    out.push(...[...once.values()].sort(byPlace));
  }
  return out;
}

/**
 * Marks the locks of the sessions their nodes no longer renew (`registry`: the engine's, read beside
 * them), each such session once, with its counts. `mountOf`: a node's mount on this machine as the
 * listing knows it, else null (then the mount its session recorded, if any). A lock listed as its
 * node last knew it is not judged.
 */
function markLate(locks: Iterable<Listed>, registry: ControlRegistry | undefined, mountOf: (node: string) => string | null, here: Here): void {
  if (registry === undefined) return;
  const sessions = new Map<string, LateSession | undefined>();
  for (const l of locks) {
    const { node, epoch } = l.lock;
    if (node === undefined || epoch === undefined || l.lock.lastKnown) continue;
    const k = `${node}|${epoch}`;
    if (!sessions.has(k)) sessions.set(k, lateOf(registry, node, epoch, mountOf(node), here));
    const late = sessions.get(k);
    if (late === undefined) continue;
    if (l.lock.state === 'waiting') late.waiting++;
    else late.granted++;
    l.late = late;
    l.lock = { ...l.lock, late: true };
  }
}

/** A late session as --json lists it (see the help text): its counts are its locks' own entries. */
export function lateJson({ granted: _g, waiting: _w, ...s }: LateSession): Omit<LateSession, 'granted' | 'waiting'> {
  return s;
}

/** The late sessions of a listing (listed()), each once, in the order their first lock is listed. */
export function lateSessions(locks: readonly Listed[]): LateSession[] {
  return [...new Set(locks.flatMap((l) => (l.late === undefined ? [] : [l.late])))];
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** What a late session's locks are, as a subject: "its lock", "its 2 locks and 1 waiting request". */
function itsLocks(s: LateSession): string {
  const parts = [...(s.granted > 0 ? [s.granted === 1 ? 'lock' : `${s.granted} locks`] : []), ...(s.waiting > 0 ? [s.waiting === 1 ? 'waiting request' : `${s.waiting} waiting requests`] : [])];
  return `its ${s.granted + s.waiting === 1 ? parts[0] : parts.join(' and ')}${s.granted + s.waiting === 1 ? ' goes' : ' go'}`;
}

/** Where a late session's mount is, when on another machine: " on host H", told from this machine when H is also its host name. */
function onHost(s: LateSession): string {
  if (s.host === null) return '';
  return ` on host ${printable(s.host)}${s.host === hostname() ? ', another machine with this host name' : ''}`;
}

/** The stderr line for a late session (see the help text). */
export function lateText(s: LateSession): string {
  const who = `node ${printable(s.node)}${s.mountpoint === null ? '' : ` (the mount at ${printable(s.mountpoint)}${onHost(s)})`}`;
  const reap = 'at the next reap, which the next renewal of a live node starts';
  if (s.expiresInMs === null) return `${who}: its session was ended or replaced by a newer one; ${itsLocks(s)} ${reap}`;
  if (s.expiresInMs <= 0) return `${who}: its session expired ${seconds(-s.expiresInMs)} ago without a renewal (its server gone, stopped or cut off from the engine); ${itsLocks(s)} ${reap}`;
  return (
    `${who} has not renewed its session for ${seconds(s.notRenewedForMs ?? 0)} (its server gone, stopped or cut off from the engine): ` +
    `${itsLocks(s)} when the session expires, in about ${seconds(s.expiresInMs)} on the engine's clock, unless it renews first`
  );
}

/** Whether a listing of `answers` has a NODE column: a mount sharing its lock space lists every node's locks (also with nothing to list: the heading is the same). */
function hasNodes(answers: readonly Answer[]): boolean {
  return answers.some((a) => a.space !== undefined || ((a.locks ?? []) as WireLock[]).some((l) => l.node !== undefined));
}

function printLocks(locks: readonly Listed[], nodes: boolean, many: boolean, headings: boolean): void {
  const cols = [...(nodes ? ['NODE'] : []), 'PID', 'KIND', 'TYPE', 'START', 'END', 'STATE', ...(many ? ['MOUNT'] : []), 'PATH'];
  const rows = [cols];
  for (const { lock: l, mountpoint, host } of locks) {
    rows.push([
      ...(nodes ? [l.node ?? ''] : []),
      String(l.pid),
      l.kind,
      l.type,
      l.start,
      l.end === OFFSET_MAX ? 'EOF' : l.end,
      l.lastKnown ? `${l.state}${LAST_KNOWN_MARK}` : l.state,
      ...(many ? [mountpoint === null ? '-' : printable(host === undefined ? mountpoint : `${host}:${mountpoint}`)] : []),
      shownPath(l),
    ]);
  }
  process.stdout.write(table(rows, headings, nodes ? new Set([1, 4, 5]) : new Set([0, 3, 4])));
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts = [[Math.floor(s / 86400), 'd'], [Math.floor(s / 3600) % 24, 'h'], [Math.floor(s / 60) % 60, 'm'], [s % 60, 's']] as const;
  const i = parts.findIndex(([n]) => n > 0);
  return i < 0 ? '0s' : parts.slice(i, i + 2).map(([n, u]) => `${n}${u}`).join(' ');
}

/** One mount's counters as `locksmith stats` prints them (an answer of its control socket). */
export function statsText(a: Answer): string {
  const s = a.stats as {
    operations: Record<string, Record<string, number>>;
    waiting: number;
    inFlight: number;
    waits: { count: number; totalMs: number; maxMs: number };
    files: number;
    workers: { index: number; files: number; locks: number; waiters: number; calls: number; restarts: number }[];
    hookErrors: number;
    faults: number;
    workerRestarts: number;
    crossWorkerDeadlocks: number;
    store?: StoreStats;
  };
  const n = a.session as { events: number; replied: number; outstanding: number; interrupts?: number; posixLocks?: boolean; flockLocks?: boolean };
  const m = a.mount;
  const locks = s.workers.reduce((x, w) => x + w.locks, 0);
  const waiters = s.workers.reduce((x, w) => x + w.waiters, 0);
  const calls = s.workers.reduce((x, w) => x + w.calls, 0);
  const ops = Object.entries(s.operations)
    .map(([op, byCode]) => `${op} ${Object.entries(byCode).map(([code, k]) => `${code}:${k}`).join(' ')}`)
    .join('; ');
  const st = s.store;
  // With a store the lock counts are this node's own (every node's are in `locksmith locks`).
  const session = st === undefined ? '' : st.session.epoch === 0 ? 'none open' : `${st.session.epoch}${st.session.fenced ? ', fenced' : ''}${st.session.grace ? ', in a grace period' : ''}`;
  return (
    `${printable(m.mountpoint)}  (backing ${printable(m.backing)}, pid ${m.pid}, up ${duration(m.uptimeMs)}, locksmith ${printable(m.version)})\n` +
    `  locks        ${locks} granted, ${waiters} waiting, on ${s.files} file${s.files === 1 ? '' : 's'}${st === undefined ? '' : ` (node ${printable(st.node)}'s)`}\n` +
    `  requests     ${calls} decided by ${s.workers.length} workers, ${s.inFlight} in flight\n` +
    `  waits        ${s.waits.count}, longest ${s.waits.maxMs} ms, mean ${s.waits.count ? Math.round(s.waits.totalMs / s.waits.count) : 0} ms\n` +
    `  problems     ${s.hookErrors} hook errors, ${s.faults} faults, ${s.workerRestarts} worker restarts; ${s.crossWorkerDeadlocks} cross-worker deadlocks broken\n` +
    (st === undefined
      ? ''
      : `  store        ${printable(st.engine)} namespace ${printable(st.namespace)}, node ${printable(st.node)}, session ${session} (${st.sessions} opened);` +
        ` ${st.renewals} renewals, ${st.failedRenewals} failed; ${st.roundTrips} round trips, ${st.commits} commits, ${st.stale} stale, ${st.fencedLocally} fenced locally, ${st.graceWaits} grace waits${st.owedReleases === undefined ? '' : `, ${st.owedReleases} releases owed`}\n`) +
    `  fuse         ${n.events} events (requests and interrupts), ${n.replied} replies, ${n.outstanding} outstanding, ${n.interrupts ?? 0} interrupts;` +
    ` POSIX locks ${n.posixLocks ? 'ours' : 'kernel'}, flock ${n.flockLocks ? 'ours' : 'kernel'}\n` +
    (ops ? `  operations   ${ops}\n` : '')
  );
}

function printStats(answers: Answer[]): void {
  for (const a of answers) process.stdout.write(statsText(a));
}

/** What `locks --store` lists: the lock space as its engine has it, read without joining it. */
interface SpaceLocks {
  /** The engine's URL, its password hidden; the namespace; its incarnation ('' when it has none). */
  engine: string;
  namespace: string;
  incarnation: string;
  /** How the data stands to the engine's run (SpaceRead.run): 'other' may be stale. */
  run: 'same' | 'other' | 'unknown';
  locks: Listed[];
  /** Why the session registry could not be read (then no MOUNT and no late session is known), if it could not. */
  registryRefused?: string;
}

/**
 * Every node's locks of the lock space at `url`/`namespace`, from its engine, without a mount and
 * without joining it: no session (nothing opened, renewed, read from an inbox), no run check (it may
 * write) and no write. Each lock with its node, session and state; MOUNT: the node's mount as its
 * live session recorded it (host:mountpoint), else '-'; late sessions marked as a mount's listing
 * marks them. A Failure naming the URL when the URL is malformed, or the engine cannot be reached
 * or does not answer within requestTimeoutMs.
 */
async function storeLocks(url: string, namespace: string | undefined, here: Here = thisHere()): Promise<SpaceLocks> {
  let o: ReturnType<typeof resolveOptions>;
  try {
    o = resolveOptions({ url, ...(namespace === undefined ? {} : { namespace }) });
  } catch (e) {
    throw new Failure((e instanceof Error ? e.message : String(e)).replace(/^locksmith store: /, ''));
  }
  let engine: RedisEngine;
  try {
    engine = await RedisEngine.connect(o);
  } catch (e) {
    throw new Failure((e instanceof Error ? e.message : String(e)).replace(/^locksmith store: /, ''));
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    // Each answer comes within requestTimeoutMs of the last (a large namespace is read in many
    // scripts: the whole read may take longer, the engine never silent that long).
    let arm = (): void => {};
    const silent = new Promise<never>((_, reject) => {
      arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => reject(new Error(`${o.shownUrl}: no answer within ${o.requestTimeoutMs} ms`)), o.requestTimeoutMs);
      };
    });
    arm();
    let refused: string | undefined;
    const read = (async () => {
      const registry = engine.sessions().catch((e: unknown) => {
        refused = (e instanceof Error ? e.message : String(e)).replace(/^locksmith store: /, '');
        return undefined;
      });
      const files = await engine.files(arm);
      const space = await engine.readSpace(files, arm);
      return { files, space, registry: await registry, now: Date.now() };
    })();
    read.catch(() => {});
    const { files, space, registry, now } = await Promise.race([read, silent]);
    const reg = registry === undefined ? undefined : registryOf(registry);
    // A node's mount, as its live session recorded it.
    const serves = new Map<string, SessionServes>();
    for (const x of reg?.sessions ?? []) if (x.serves !== undefined) serves.set(x.node, x.serves);
    const locks: Listed[] = files.flatMap((file, i) => {
      const records = space.files[i]!.records;
      return recordEntries(file, records, now).map((e, j): Listed => {
        const at = e.node === undefined ? undefined : serves.get(e.node);
        const c = controlLockOf(e, null, records[j]!.epoch);
        const lock: WireLock = { ...c, start: c.start.toString(), end: c.end.toString() };
        return at === undefined ? { lock, mountpoint: null } : { lock, mountpoint: at.mountpoint, host: at.host };
      });
    });
    markLate(locks, reg, () => null, here);
    return { engine: o.shownUrl, namespace: o.namespace, incarnation: space.incarnation, run: space.run, locks: locks.sort(byPlace), ...(refused === undefined ? {} : { registryRefused: refused }) };
  } catch (e) {
    const m = (e instanceof Error ? e.message : String(e)).replace(/^locksmith store: /, '');
    throw new Failure(`cannot list the lock space '${o.namespace}' at ${o.shownUrl}: ${m.replace(`${o.shownUrl}: `, '')}`);
  } finally {
    clearTimeout(timer);
    await engine.shutdown().catch(() => {});
  }
}

/** `locks --store`: prints (or --json) the lock space's locks as its engine has them, and on stderr what the listing cannot vouch for. */
async function mainStore(url: string, namespace: string | undefined, json: boolean, headings: boolean): Promise<number> {
  let l: SpaceLocks;
  try {
    l = await storeLocks(url, namespace);
  } catch (e) {
    if (e instanceof Failure) return fail('locks', e.message);
    throw e;
  }
  const where = `the lock space '${printable(l.namespace)}' at ${printable(l.engine)}`;
  if (l.incarnation === '' && l.locks.length === 0) {
    process.stderr.write(`locksmith locks: ${where} has no data: no node has opened a session in it (check --namespace), or the engine lost its data since\n`);
  }
  if (l.run === 'other') {
    process.stderr.write(
      `locksmith locks: ${where} was written under another run of its server (it restarted or failed over since) and no node has used it since: ` +
        'what is listed may be older than what its nodes last committed; the first node to reach the engine drops it (a loss: its nodes put back what they still hold, in a grace period)\n',
    );
  }
  if (l.registryRefused !== undefined) {
    process.stderr.write(
      `locksmith locks: the session registry of ${where} could not be read (${printable(l.registryRefused)}): MOUNT is '-' for every lock and no late session can be said; ` +
        'an ACL user needs MULTI, EXEC, TIME, ZRANGE, GET and MGET besides EVAL_RO\n',
    );
  }
  const late = lateSessions(l.locks);
  for (const s of late) process.stderr.write(`locksmith locks: ${lateText(s)}\n`);
  if (json) {
    const body = {
      store: { engine: l.engine, namespace: l.namespace, incarnation: l.incarnation || null, stale: l.run === 'other' },
      locks: l.locks.map(({ lock, mountpoint, host }) => ({ mountpoint, host: host ?? null, ...lock })),
      ...(late.length === 0 ? {} : { lateSessions: late.map(lateJson) }),
    };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  printLocks(l.locks, true, true, headings);
  return 0;
}

export async function main(cmd: Cmd, argv: string[]): Promise<number> {
  let json: boolean;
  let headings: boolean;
  let mountpoint: string | undefined;
  let store: string | undefined;
  let namespace: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        ...(cmd === 'locks' ? { noheadings: { type: 'boolean', short: 'n' }, store: { type: 'string' }, namespace: { type: 'string' } } : {}),
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP[cmd]);
      return 0;
    }
    if (values.version) {
      process.stdout.write(versionLine());
      return 0;
    }
    if (positionals.length > 1) throw new Error(`${cmd} takes at most one mountpoint`);
    mountpoint = positionals[0];
    // '' is no mountpoint (an unset variable): not "no running mount at " with nothing after it.
    if (mountpoint === '') throw new Error('the mountpoint is empty (an unset variable?); leave it out to ask every running mount');
    json = values.json === true;
    headings = (values as { noheadings?: boolean }).noheadings !== true;
    ({ store, namespace } = values as { store?: string; namespace?: string });
    if (store !== undefined && mountpoint !== undefined) throw new Error('--store lists a lock space from its engine, without a mount: give it or a mountpoint, not both');
    if (store === '') throw new Error('the --store URL is empty (an unset variable?)');
    if (namespace !== undefined && store === undefined) throw new Error('--namespace goes with --store');
    if (namespace !== undefined && !NAMESPACE.test(namespace)) throw new Error(`--namespace must be ${NAMESPACE_RULE}, got ${JSON.stringify(namespace)}`);
  } catch (e) {
    process.stderr.write(`locksmith ${cmd}: ${argsMessage(e)}. Run 'locksmith ${cmd} --help'.\n`);
    return 2;
  }

  if (store !== undefined) return mainStore(store, namespace, json, headings);

  let answers: Answer[];
  let failed = 0;
  let silent: SilentMount[] = [];
  try {
    if (mountpoint === undefined) ({ answers, failed, silent } = await askAll(cmd));
    else answers = [await askOne(cmd, mountpoint)];
  } catch (e) {
    if (e instanceof Failure) return fail(cmd, e.message);
    throw e;
  }
  // A mount whose engine did not answer listed its node's own locks as it last knew them: said on
  // stderr (its locks are marked), and the listing is incomplete (other nodes' are unknown).
  if (cmd === 'locks') {
    for (const a of answers) {
      if (a.lastKnown === undefined) continue;
      failed++;
      // Another mount of its lock space got the locks from the engine: those are listed (listed()).
      const from = answers.find((b) => b.lastKnown === undefined && b.space !== undefined && a.space !== undefined && spaceId(b.space) === spaceId(a.space));
      if (from !== undefined) {
        process.stderr.write(
          `locksmith locks: the mount at ${printable(a.mount.mountpoint)}: ${a.lastKnown}; its lock space's locks are listed as the mount at ${printable(from.mount.mountpoint)} got them from the engine\n`,
        );
        continue;
      }
      // One sentence: why the engine gave nothing, so what is listed (or that nothing is: a node
      // whose session was lost knows of no locks of its own).
      const listedNow = ((a.locks ?? []) as WireLock[]).length > 0
        ? `so its node's own locks are listed as it last knew them (${json ? '"lastKnown": true' : `marked ${LAST_KNOWN_MARK} in STATE`}) and other nodes' locks are unknown`
        : "so nothing is listed: its node last knew of no locks of its own, and other nodes' locks are unknown";
      process.stderr.write(`locksmith locks: the mount at ${printable(a.mount.mountpoint)}: ${a.lastKnown}, ${listedNow}\n`);
    }
  }
  // A node that no longer renews its session: its locks are listed (they are the engine's, and
  // still block), and stderr says so and when they go. The listing is complete: the exit status stays 0.
  const all = cmd === 'locks' ? listed(answers, silent) : [];
  // A mount displaced from its node's name: its node's locks are listed under the mount that holds
  // the name now (listed(): the answers', or the one its session recorded), it holds none, and it
  // answers nothing: said on stderr, and exit 1.
  for (const a of cmd === 'locks' ? answers : []) {
    if (a.displaced === undefined) continue;
    failed++;
    const node = a.space?.node;
    const now = all.find((l) => l.lock.node === node && l.mountpoint !== null && l.mountpoint !== a.mount.mountpoint)?.mountpoint;
    const where = now == null ? 'none is listed as its own' : `they are listed under the mount at ${printable(now)}, whose session holds the name now`;
    process.stderr.write(`locksmith locks: the mount at ${printable(a.mount.mountpoint)}: displaced: ${a.displaced}; its node's locks are another session's: ${where}\n`);
  }
  const late = lateSessions(all);
  for (const s of late) process.stderr.write(`locksmith locks: ${lateText(s)}\n`);
  // A running mount that could not answer leaves the listing incomplete: said on stderr, and exit 1.
  const status = failed > 0 ? 1 : 0;
  if (json) {
    const mounts = answers.map((a) => ({ ...a.mount, ...(a.space === undefined ? {} : { space: a.space }), ...(a.lastKnown === undefined ? {} : { lastKnown: a.lastKnown }), ...(a.displaced === undefined ? {} : { displaced: a.displaced }) }));
    const body =
      cmd === 'locks'
        ? {
            mounts,
            locks: all.map(({ lock, mountpoint }) => ({ mountpoint, ...lock })),
            ...(late.length === 0 ? {} : { lateSessions: late.map(lateJson) }),
          }
        : { mounts: answers.map((a) => ({ mount: a.mount, stats: a.stats, session: a.session })) };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return status;
  }
  if (mountpoint === undefined && answers.length === 0 && failed === 0) process.stderr.write(`locksmith ${cmd}: no running locksmith mount found\n`);
  // A displaced mount's listing shows MOUNT: its node's locks are another mount's.
  if (cmd === 'locks') printLocks(all, hasNodes(answers), mountpoint === undefined || answers.some((a) => a.displaced !== undefined), headings);
  else printStats(answers);
  return status;
}
