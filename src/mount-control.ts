/**
 * What a running `locksmith mount` answers on its control channel (src/control.ts): 'info',
 * 'locks' and 'stats', built from its FuseMount.
 *
 * The coordinator keys a FUSE file by its backing identity, "fuse:<st_dev>:<st_ino>", or "ino:<st_ino>"
 * when the mount shares its lock space across nodes (stable across renames and hard links;
 * src/native/passthrough.cc). 'locks' maps each key back to a path
 * relative to the mount, without ever touching the mount itself:
 *   1. a path found before, if the backing file at that path still has that identity;
 *   2. the descriptors of the lock's process: /proc/<pid>/fd links that point under the mountpoint,
 *      checked against the backing file's identity (the name the process opened);
 *   3. a bounded walk of the backing directory (WALK_LIMIT entries);
 * and otherwise says so: path null, with the device and inode numbers.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { LockEntry } from './types.js';
import type { FuseMount } from './mount.js';
import { packageVersion } from './version.js';
import { realMountpoint, type Handler } from './control.js';
import { probeEngine, refusedText } from './store/probe.js';
import type { SpaceListing } from './caller/shared-space.js';
import type { SessionServes, SessionsRead } from './store/types.js';

/** Backing entries looked at, at most, per 'locks' request that needs a walk. */
const WALK_LIMIT = 50_000;
/** Descriptors of one process looked at, at most. */
const FD_LIMIT = 4096;

/** One lock as `locksmith locks` shows it (64-bit values as decimal strings on the wire). */
export interface ControlLock {
  pid: number;
  kind: LockEntry['kind'];
  type: LockEntry['type'];
  start: bigint;
  /** Inclusive; 9223372036854775807 (OFFSET_MAX) means "to the end of the file". */
  end: bigint;
  state: LockEntry['state'];
  /** Relative to the mountpoint ('.' for its root), or null when it cannot be found. */
  path: string | null;
  /** The backing file's identity (decimal). */
  dev: string | null;
  ino: string | null;
  /** The coordinator's key for the file. */
  key: string;
  owner: string;
  waitingMs?: number;
  /** In a shared lock space: the node that holds or waits (its pid is that node's). */
  node?: string;
  /** In a shared lock space, listed from the engine: the session of `node` the lock belongs to. */
  epoch?: number;
}

/**
 * In a 'locks' answer of a mount sharing its lock space: the engine's session registry, read beside
 * the locks, its deadlines made relative to the engine's clock at the read (no other clock enters).
 */
export interface ControlRegistry {
  /**
   * Per session: ms until it expires unless renewed (at or below 0: expired that long ago), null
   * once ended or replaced; the TTL it was opened with, when the engine still has it (live ones);
   * where its node's mount serves, when it recorded it and the engine still has it (as ttlMs).
   */
  sessions: { node: string; epoch: number; expiresInMs: number | null; ttlMs?: number; serves?: SessionServes }[];
}

/** The engine's session registry as a 'locks' answer gives it: deadlines relative to the engine's clock (also `locks --store`'s). */
export function registryOf(r: SessionsRead): ControlRegistry {
  return {
    sessions: r.sessions.map((x) => ({ node: x.node, epoch: x.epoch, expiresInMs: x.deadline === 0 ? null : x.deadline - r.now, ...(x.ttlMs === undefined ? {} : { ttlMs: x.ttlMs }), ...(x.serves === undefined ? {} : { serves: x.serves }) })),
  };
}

/**
 * One listing entry as `locksmith locks` shows it: `path` relative to the mountpoint (null when
 * none is known), `epoch` the holder's session when listed from the engine (also `locks --store`).
 */
export function controlLockOf(e: LockEntry, path: string | null, epoch: number | undefined): ControlLock {
  const id = parseKey(e.path);
  return {
    pid: e.pid,
    kind: e.kind,
    type: e.type,
    start: e.start,
    end: e.end,
    state: e.state,
    path,
    dev: id?.[0] === undefined ? null : id[0].toString(),
    ino: id ? id[1].toString() : null,
    key: e.path,
    owner: String(e.owner),
    ...(e.node === undefined ? {} : { node: e.node }),
    ...(epoch === undefined ? {} : { epoch }),
    ...(e.waitingMs === undefined ? {} : { waitingMs: e.waitingMs }),
  };
}

/**
 * "fuse:<dev>:<ino>" -> [dev, ino]; "ino:<ino>" (a mount sharing its lock space, keyed by inode
 * number alone: every node names a file alike) -> [undefined, ino]; undefined for another kind of key.
 */
export function parseKey(key: string): [bigint | undefined, bigint] | undefined {
  const m = /^fuse:(\d+):(\d+)$/.exec(key);
  if (m) return [BigInt(m[1]!), BigInt(m[2]!)];
  const i = /^ino:(\d+)$/.exec(key);
  return i ? [undefined, BigInt(i[1]!)] : undefined;
}

/** Maps lock keys to paths relative to the mount (see the module comment). */
export class KeyPaths {
  private readonly known = new Map<string, string>();
  readonly mountpoint: string;
  readonly backing: string;

  /** Both real paths (a server takes them from its session: see mountHandlers). */
  constructor(mountpoint: string, backing: string) {
    this.mountpoint = mountpoint;
    this.backing = backing;
  }

  /** Whether the backing file at `rel` has the identity `key`. */
  private async is(rel: string, key: string): Promise<boolean> {
    const id = parseKey(key);
    if (!id) return false;
    try {
      const st = await lstat(join(this.backing, rel), { bigint: true });
      return (id[0] === undefined || st.dev === id[0]) && st.ino === id[1];
    } catch {
      return false;
    }
  }

  /** The keys a backing file can have: a mount alone's, and a shared lock space's. */
  private keysOf(st: { dev: bigint; ino: bigint }): string[] {
    return [`fuse:${st.dev}:${st.ino}`, `ino:${st.ino}`];
  }

  /** Paths for the keys of `wanted` (in its order), given the pids that hold or wait on each. */
  async resolve(wanted: Map<string, Set<number>>): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    for (const [key, pids] of wanted) {
      const cached = this.known.get(key);
      if (cached !== undefined && (await this.is(cached, key))) {
        out.set(key, cached);
        continue;
      }
      this.known.delete(key);
      for (const pid of pids) {
        const rel = await this.fromProcess(pid, key);
        if (rel !== undefined) {
          this.known.set(key, rel);
          out.set(key, rel);
          break;
        }
      }
    }
    const missing = [...wanted.keys()].filter((k) => !out.has(k) && parseKey(k) !== undefined);
    if (missing.length > 0) await this.walk(new Set(missing), out);
    return new Map([...wanted.keys()].map((k) => [k, out.get(k) ?? null]));
  }

  private async fromProcess(pid: number, key: string): Promise<string | undefined> {
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const fdDir = `/proc/${pid}/fd`;
    let fds: string[];
    try {
      fds = (await readdir(fdDir)).slice(0, FD_LIMIT);
    } catch {
      return undefined; // gone, or not ours to read
    }
    const prefix = this.mountpoint.endsWith(sep) ? this.mountpoint : this.mountpoint + sep;
    for (const fd of fds) {
      let target: string;
      try {
        target = await readlink(join(fdDir, fd));
      } catch {
        continue;
      }
      if (target !== this.mountpoint && !target.startsWith(prefix)) continue;
      const rel = relative(this.mountpoint, target) || '.';
      if (await this.is(rel, key)) return rel;
    }
    return undefined;
  }

  private async walk(missing: Set<string>, out: Map<string, string | null>): Promise<void> {
    const queue: string[] = ['.'];
    let seen = 0;
    while (queue.length > 0 && missing.size > 0 && seen < WALK_LIMIT) {
      const rel = queue.shift()!;
      let st: Awaited<ReturnType<typeof lstat>>;
      try {
        st = await lstat(join(this.backing, rel), { bigint: true });
      } catch {
        continue;
      }
      seen++;
      for (const key of this.keysOf(st)) {
        if (!missing.has(key)) continue;
        missing.delete(key);
        this.known.set(key, rel);
        out.set(key, rel);
      }
      if (!st.isDirectory()) continue;
      try {
        for (const name of await readdir(join(this.backing, rel))) queue.push(rel === '.' ? name : join(rel, name));
      } catch {
        // unreadable directory
      }
    }
  }
}

/** The lock space a mount shares (--store): `locksmith locks` lists its locks once over all its mounts. */
export interface ControlSpace {
  /** The engine's URL, its password hidden. */
  engine: string;
  namespace: string;
  /** This mount's node: the locks whose node it is are this mount's. */
  node: string;
  /**
   * In a 'locks' answer: the engine's incarnation (StoreStats.incarnation) when the locks were
   * listed. Mounts that give one URL two ways ('localhost' and '127.0.0.1', a default port or
   * database written out) report the same one: one lock space.
   */
  incarnation?: string;
}

/**
 * The mount's answers: 'info', 'locks', 'stats'. With `space` (a mount sharing its lock space),
 * 'info' and 'locks' say which, and which node the mount is.
 */
/** How long 'locks' gives a plain connection to the engine to be refused (it answers at once when it is). */
const PROBE_MS = 1_000;

/** What a 'locks' answer is built from: the entries, with their sessions and the engine's registry when the lock space's engine listed them. */
type Listing = Omit<SpaceListing, 'epochs'> & { epochs?: number[] };

/** Why a mount sharing its lock space lists only what it last knew of its own locks. */
class EngineDown extends Error {}

/**
 * The lock space's locks from the engine; or, when the engine refuses connections (seen at once
 * by a plain connection beside the listing) or does not answer (the listing's own error, after
 * requestTimeoutMs), an EngineDown saying so.
 */
async function fromEngine(m: FuseMount, url: string, shownUrl: string): Promise<Listing> {
  const listing = m.coordinator.spaceLocks().then((l) => l ?? { locks: [] });
  listing.catch(() => {});
  const refused = probeEngine(url, PROBE_MS, false).then((p) => (p.kind === 'refused' ? Promise.reject(new EngineDown(refusedText(url, shownUrl))) : listing));
  try {
    return await Promise.race([listing, refused]);
  } catch (e) {
    if (e instanceof EngineDown) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    if (/^locksmith store: the lock space's engine at .* did not answer \(/.test(msg)) {
      throw new EngineDown(`the lock space's engine at ${shownUrl} did not answer${/\(([^)]*)\)/.exec(msg)?.[0].replace(/^/, ' ') ?? ''}`);
    }
    throw e;
  }
}

/**
 * What a displaced mount's 'locks' answer says (Answer.displaced): another process opened a
 * session under its node's name, so the locks the engine lists under that name are that session's.
 */
export function displacedText(node: string): string {
  return `another process opened a session under its node's name '${node}', so it has no session: it holds no locks and answers lock requests with ENOLCK (unmount it, or give each mount its own --node)`;
}

/**
 * `displaced`: whether another process took the node's name (mount-cli logSession); a 'locks'
 * answer then says so (`displaced`), and the locks listed under its node are not its own.
 */
export function mountHandlers(m: FuseMount, o: { startedAt: number; space?: ControlSpace; engineUrl?: string; displaced?: (() => boolean) | undefined }): Record<string, Handler> {
  // The session's paths are the real ones the native side resolved before mounting; resolving the
  // mountpoint here would ask the mount itself.
  const info = m.info();
  const paths = new KeyPaths(info.mountpoint ?? resolve(m.mountpoint), info.backing ?? realMountpoint(m.backing));
  const space = o.space === undefined ? {} : { space: o.space };
  /** The engine's incarnation as this mount's session last had it (see 'locks'). */
  let incarnation: string | undefined;
  if (o.space !== undefined) {
    void m.coordinator.stats().then(
      (s) => (incarnation ??= s.store?.incarnation || undefined),
      () => {},
    );
  }
  const mount = () => ({
    mountpoint: paths.mountpoint,
    backing: paths.backing,
    pid: process.pid,
    uid: process.getuid?.() ?? null,
    version: packageVersion(),
    workers: info.destinations,
    startedAt: new Date(o.startedAt).toISOString(),
    uptimeMs: Date.now() - o.startedAt,
  });
  return {
    info: () => ({ mount: mount(), ...space }),
    locks: async () => {
      // With the engine down, this node's own locks as it last knew them, said so (lastKnown):
      // other nodes' are unknown.
      let listing: Listing;
      let lastKnown: string | undefined;
      try {
        listing = o.space === undefined || o.engineUrl === undefined ? { locks: await m.coordinator.locks() } : await fromEngine(m, o.engineUrl, o.space.engine);
      } catch (e) {
        if (!(e instanceof EngineDown)) throw e;
        lastKnown = e.message;
        listing = { locks: await m.coordinator.lastKnownLocks() };
      }
      const entries = listing.locks;
      const wanted = new Map<string, Set<number>>();
      for (const e of entries) {
        const pids = wanted.get(e.path) ?? new Set<number>();
        pids.add(e.pid);
        wanted.set(e.path, pids);
      }
      const where = await paths.resolve(wanted);
      const locks: ControlLock[] = entries.map((e, i) => controlLockOf(e, where.get(e.path) ?? null, listing.epochs?.[i]));
      locks.sort((a, b) => (a.path ?? '\uffff').localeCompare(b.path ?? '\uffff') || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0) || a.pid - b.pid);
      // A node with no session (displaced, or expired with the engine out of reach) has no
      // incarnation of its own: the last one it had names its lock space, as the other mounts' do.
      const now = o.space === undefined ? undefined : (await m.coordinator.stats()).store?.incarnation;
      if (now) incarnation = now;
      const displaced = o.space !== undefined && o.displaced?.() === true ? displacedText(o.space.node) : undefined;
      return {
        mount: mount(),
        ...(o.space === undefined ? {} : { space: { ...o.space, ...(incarnation ? { incarnation } : {}) } }),
        ...(lastKnown === undefined ? {} : { lastKnown }),
        ...(displaced === undefined ? {} : { displaced }),
        ...(listing.registry === undefined ? {} : { registry: registryOf(listing.registry) }),
        locks,
      };
    },
    stats: async () => ({ mount: mount(), stats: await m.coordinator.stats(), session: m.info() }),
  };
}
