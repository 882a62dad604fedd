/**
 * The control channel of a running mount: a Unix domain socket per mount, through which another
 * shell (`locksmith locks`, `locksmith stats`) asks the server what it knows. FUSE-decided locks
 * never reach /proc/locks, so this is the only way to see them.
 *
 * Where: one private directory per user, `controlDir()`:
 *   LOCKSMITH_RUNTIME_DIR if set, else /run/locksmith for root, else $XDG_RUNTIME_DIR/locksmith,
 *   else /tmp/locksmith-<uid>.
 * The directory is created mode 0700 and refused if it is a symlink, is owned by another user, or
 * (when it cannot be fixed) is reachable by group or others. Each mount's socket is
 * `<first 24 hex of sha256(real path of the mountpoint)>.sock`, mode 0600: it is bound under a
 * temporary name, chmod-ed, then renamed into place, so it is never visible with a wider mode.
 *
 * Who: only root and the user the server runs as can connect (connect(2) on a Unix socket needs
 * search permission on the directory and write permission on the socket). Node does not expose
 * SO_PEERCRED, so the server cannot check the peer's uid itself: the file permissions are the check.
 *
 * Protocol (line-delimited JSON, UTF-8): the client writes one request per line, `{"cmd":"info"}`,
 * `{"cmd":"locks"}` or `{"cmd":"stats"}` (an optional "id" is echoed back); the server answers each
 * with one line, `{"ok":true,"protocol":1,"cmd":...,...}` or `{"ok":false,"error":"one sentence"}`.
 * 64-bit values (lock ranges, owners) are decimal strings. A request line longer than 64 KiB ends
 * the connection.
 *
 * Life: the server removes its socket when it stops; a socket nobody listens on (its server was
 * killed) is stale, and is removed by the next server for the same mountpoint and by clients that
 * list every mount.
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const CONTROL_PROTOCOL = 1;
export const RUNTIME_DIR_ENV = 'LOCKSMITH_RUNTIME_DIR';
const MAX_LINE = 64 * 1024;

const uid = (): number => process.getuid?.() ?? -1;

/** The directory holding this user's control sockets (see the module comment). */
export function controlDir(env: NodeJS.ProcessEnv = process.env, user: number = uid()): string {
  const forced = env[RUNTIME_DIR_ENV];
  if (forced) return resolve(forced);
  if (user === 0) return '/run/locksmith';
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg?.startsWith('/')) {
    try {
      if (lstatSync(xdg).isDirectory()) return join(xdg, 'locksmith');
    } catch {
      // not there: fall back to /tmp
    }
  }
  return `/tmp/locksmith-${user}`;
}

/**
 * Where clients look: the caller's own directory, and for root also every user's (so root sees
 * mounts that users started with fusermount3). LOCKSMITH_RUNTIME_DIR, when set, is the only place.
 */
export function searchDirs(env: NodeJS.ProcessEnv = process.env, user: number = uid()): string[] {
  const own = controlDir(env, user);
  if (env[RUNTIME_DIR_ENV] || user !== 0) return [own];
  const dirs = [own];
  const add = (parent: string, pick: (name: string) => string | undefined) => {
    try {
      for (const name of readdirSync(parent)) {
        const d = pick(name);
        if (d !== undefined && !dirs.includes(d)) dirs.push(d);
      }
    } catch {
      // no such parent
    }
  };
  add('/run/user', (n) => (/^\d+$/.test(n) ? join('/run/user', n, 'locksmith') : undefined));
  add('/tmp', (n) => (/^locksmith-\d+$/.test(n) ? join('/tmp', n) : undefined));
  return dirs;
}

/**
 * Creates `dir` (mode 0700) if needed and makes sure it is private: a real directory owned by this
 * user with no group or other access (tightened if it is ours). Throws a one-sentence Error if not.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new Error(`cannot create the control directory ${dir}: ${(e as Error).message}`);
  }
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`the control directory ${dir} is not a directory (or is a symlink); remove it`);
  if (st.uid !== uid()) throw new Error(`the control directory ${dir} belongs to uid ${st.uid}, not to this user; remove it or set ${RUNTIME_DIR_ENV}`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** The mountpoint's real path: the socket's name derives from it. A dead mount falls back to resolve(). */
export function realMountpoint(mountpoint: string): string {
  try {
    return realpathSync(mountpoint);
  } catch {
    return resolve(mountpoint);
  }
}

/** The socket file name of a mount (from its real path). */
export function socketName(realPath: string): string {
  return `${createHash('sha256').update(realPath).digest('hex').slice(0, 24)}.sock`;
}

/** JSON with bigints as decimal strings. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

/** A command's answer (without ok/protocol/cmd, which the server adds). */
export type Handler = () => Promise<Record<string, unknown>> | Record<string, unknown>;

export interface ControlServerOptions {
  /** The mountpoint (any spelling: its real path names the socket). */
  mountpoint: string;
  /**
   * `mountpoint` is already its real path: use it as is. A server should pass the path the mount
   * was made at this way, since resolving a live mount's root asks the mount itself.
   */
  resolved?: boolean;
  /** The commands served, by name ('info', 'locks', 'stats'). */
  handlers: Readonly<Record<string, Handler>>;
  /** Default: controlDir(). */
  dir?: string;
  /** Called for each request (for a debug log) and for a failed handler. */
  onRequest?: (cmd: string) => void;
  onError?: (cmd: string, e: unknown) => void;
}

export interface ControlServer {
  /** The socket's path. */
  readonly path: string;
  /** Stops accepting, ends open connections and removes the socket (if it is still ours). Safe to call twice. */
  close(): Promise<void>;
  /** The synchronous part of close() for a process on its way out: removes the socket file. */
  removeSocket(): void;
}

/** What connecting to a socket found. */
export type Probe = 'live' | 'stale' | 'absent' | 'denied';

/** Whether a server answers on `path`: 'stale' when the file is there but nobody listens. */
export function probe(path: string, ms = 2000): Promise<Probe> {
  return new Promise((done) => {
    const s = createConnection(path);
    const timer = setTimeout(() => {
      s.destroy();
      done('live'); // it accepted (or is slow): never treat a possibly live server as stale
    }, ms);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      done('live');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done(e.code === 'ECONNREFUSED' ? 'stale' : e.code === 'EACCES' || e.code === 'EPERM' ? 'denied' : 'absent');
    });
  });
}

/**
 * Which file is at a path: lstat's device and inode, and its change and birth times (ns). The
 * times tell a new file from the one before it when the file system hands the freed inode number
 * straight to the next file (ext4 does: a stale socket unlinked, then a new one bound and renamed
 * into place, gets the same dev and ino).
 */
export type FileId = string;

/** The identity of the file at `path`, or undefined (none, or not ours to see). */
export function fileId(path: string): FileId | undefined {
  try {
    const st = lstatSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}:${st.birthtimeNs}`;
  } catch {
    return undefined;
  }
}

/**
 * Removes a stale socket (best effort); true if it is gone. `seen`: the socket found stale, as
 * lstat saw it before it was probed: a different file there now (a restarted server renamed its
 * live socket into place meanwhile) is left alone, and false is returned.
 */
export function removeStale(path: string, seen?: FileId): boolean {
  try {
    if (!lstatSync(path).isSocket()) return false;
    if (seen !== undefined && fileId(path) !== seen) return false;
    unlinkSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Serves the control channel of one mount. Rejects with a one-sentence Error if the directory is
 * not private or another live server already holds the mountpoint's socket.
 */
export async function serveControl(o: ControlServerOptions): Promise<ControlServer> {
  const dir = o.dir ?? controlDir();
  ensurePrivateDir(dir);
  const path = join(dir, socketName(o.resolved === true ? o.mountpoint : realMountpoint(o.mountpoint)));
  const seen = fileId(path);
  const state = await probe(path);
  if (state === 'live') throw new Error(`another locksmith server already answers on ${path}`);
  if (state === 'stale' && seen !== undefined && !removeStale(path, seen)) {
    // Another server put its socket there since the probe.
    if ((await probe(path)) === 'live') throw new Error(`another locksmith server already answers on ${path}`);
  }

  const connections = new Set<Socket>();
  const server: Server = createServer((sock) => {
    connections.add(sock);
    sock.once('close', () => connections.delete(sock));
    sock.on('error', () => sock.destroy());
    serveConnection(sock, o);
  });
  // The temporary name is the one /proc/net/unix keeps showing for the listening socket after the
  // rename: it carries the start of the socket's name and this pid, so a client can name the server
  // of a socket that does not answer (socketServer). Ours alone: one left by a process that had
  // this pid before is removed.
  const tmp = join(dir, tmpName(basename(path), process.pid));
  try {
    unlinkSync(tmp);
  } catch {
    // none
  }
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(tmp, () => {
      server.off('error', fail);
      ok();
    });
  });
  let ino: number;
  try {
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
    ino = lstatSync(path).ino;
  } catch (e) {
    server.close();
    throw new Error(`cannot set up the control socket ${path}: ${(e as Error).message}`);
  }
  server.on('error', () => {
    // a listening server only reports accept failures (EMFILE...): the next connection may work
  });

  const removeSocket = () => {
    try {
      if (lstatSync(path).ino === ino) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  let closing: Promise<void> | undefined;
  return {
    path,
    removeSocket,
    close: () =>
      (closing ??= new Promise<void>((done) => {
        removeSocket();
        server.close(() => done());
        for (const c of connections) c.destroy();
      })),
  };
}

function serveConnection(sock: Socket, o: ControlServerOptions): void {
  let buffered = 0;
  sock.on('data', (d: Buffer) => {
    // readline has no line limit: count what arrives between newlines ourselves
    const nl = d.lastIndexOf(10);
    buffered = nl < 0 ? buffered + d.length : d.length - nl - 1;
    if (buffered > MAX_LINE) {
      sock.end(`${toJson({ ok: false, protocol: CONTROL_PROTOCOL, error: 'request line too long' })}\n`);
      sock.destroy();
    }
  });
  // Answers go out in request order: each waits for the one before it.
  let chain: Promise<void> = Promise.resolve();
  // readline re-emits the socket's errors: without a listener a client that resets would throw here
  const rl = createInterface({ input: sock, crlfDelay: Infinity });
  rl.on('error', () => sock.destroy());
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    const answer = answerLine(line, o);
    chain = chain.then(async () => {
      const text = await answer;
      if (!sock.destroyed) sock.write(`${text}\n`);
    });
  });
}

async function answerLine(line: string, o: ControlServerOptions): Promise<string> {
  let req: { cmd?: unknown; id?: unknown };
  try {
    req = JSON.parse(line) as typeof req;
    if (typeof req !== 'object' || req === null) throw new Error('not an object');
  } catch {
    return toJson({ ok: false, protocol: CONTROL_PROTOCOL, error: 'a request is one JSON object per line, like {"cmd":"locks"}' });
  }
  const id = req.id === undefined ? {} : { id: req.id };
  const cmd = typeof req.cmd === 'string' ? req.cmd : '';
  const handler = Object.hasOwn(o.handlers, cmd) ? o.handlers[cmd] : undefined;
  if (handler === undefined) {
    const known = Object.keys(o.handlers).join(', ');
    return toJson({ ok: false, protocol: CONTROL_PROTOCOL, ...id, error: `unknown command '${String(req.cmd)}' (known: ${known})` });
  }
  o.onRequest?.(cmd);
  try {
    return toJson({ ok: true, protocol: CONTROL_PROTOCOL, cmd, ...id, ...(await handler()) });
  } catch (e) {
    o.onError?.(cmd, e);
    return toJson({ ok: false, protocol: CONTROL_PROTOCOL, cmd, ...id, error: e instanceof Error ? e.message : String(e) });
  }
}

/** An error talking to a control socket; `code` says what happened. */
export class ControlError extends Error {
  constructor(
    message: string,
    readonly code: 'absent' | 'stale' | 'denied' | 'timeout' | 'protocol' | 'failed' | 'aborted',
  ) {
    super(message);
  }
}

/**
 * One request/answer over a new connection to `path`. Rejects with a ControlError ('aborted' when
 * `signal` aborts first: the connection is closed).
 */
export function request(path: string, req: { cmd: string }, ms = 30000, signal?: AbortSignal): Promise<Record<string, unknown>> {
  return new Promise((done, fail) => {
    const s = createConnection(path);
    const timer = setTimeout(() => {
      s.destroy();
      fail(new ControlError(`no answer to '${req.cmd}' on ${path} within ${ms / 1000} s`, 'timeout'));
    }, ms);
    const abort = () => finish(() => fail(new ControlError(`'${req.cmd}' on ${path} abandoned`, 'aborted')));
    signal?.addEventListener('abort', abort, { once: true });
    const finish = (f: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      s.destroy();
      f();
    };
    if (signal?.aborted) return abort();
    s.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code === 'ECONNREFUSED' ? 'stale' : e.code === 'EACCES' || e.code === 'EPERM' ? 'denied' : e.code === 'ENOENT' ? 'absent' : 'failed';
      finish(() => fail(new ControlError(`cannot connect to ${path}: ${e.message}`, code)));
    });
    s.once('connect', () => s.write(`${toJson(req)}\n`));
    const rl = createInterface({ input: s, crlfDelay: Infinity });
    rl.on('error', () => {
      // the socket's own 'error' listener above reports it
    });
    rl.once('line', (line) => {
      let answer: Record<string, unknown>;
      try {
        answer = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return finish(() => fail(new ControlError(`${path} answered something that is not JSON`, 'protocol')));
      }
      if (answer.ok !== true) return finish(() => fail(new ControlError(String(answer.error ?? 'the server refused the request'), 'failed')));
      finish(() => done(answer));
    });
    s.once('end', () => finish(() => fail(new ControlError(`${path} closed the connection without answering`, 'protocol'))));
  });
}

export interface FoundSocket {
  path: string;
  state: Probe;
}

/**
 * Every control socket in `dirs`; with `clean`, stale ones are removed (and left out). A socket is
 * removed only if it is still the file that was probed (lstat before the probe and again before
 * the unlink: same device, inode and times, FileId): a restarted server may rename its new live socket into place
 * in between, which is probed again instead. `probed` (for tests) runs after each probe, before
 * any removal.
 */
export async function listSockets(dirs: string[], clean = true, probed?: (path: string, state: Probe) => void | Promise<void>): Promise<FoundSocket[]> {
  const out: FoundSocket[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.sock'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') out.push({ path: dir, state: 'denied' });
      continue;
    }
    for (const n of names.sort()) {
      const path = join(dir, n);
      const seen = fileId(path);
      let state = await probe(path);
      await probed?.(path, state);
      if (state === 'stale' && clean && seen !== undefined) {
        if (removeStale(path, seen)) continue;
        // Replaced since the probe (or not a socket): what is there now.
        state = await probe(path);
      }
      out.push({ path, state });
    }
  }
  return out;
}

/** Octal escapes of /proc/self/mountinfo (\040 for a space...) decoded. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The mountpoints of the FUSE mounts in this process's mount namespace, read without touching any of them. */
export function fuseMounts(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 0 || f[4] === undefined) continue;
    if (/^fuse(\.|$)|^fuseblk$/.test(f[dash + 1] ?? '')) out.push(unescapeMount(f[4]));
  }
  return out;
}

/**
 * `mountpoint`'s real path when it is a FUSE mount, found without touching the mount itself (the
 * real path of its parent, then its name, looked up in the mount table): resolving a mount whose
 * server is stopped would hang. Undefined when it is no FUSE mount.
 */
export function fuseMountAt(mountpoint: string): string | undefined {
  const mounts = fuseMounts();
  let abs = resolve(mountpoint);
  // A symlink to the mount (/data -> /mnt/data) is followed by reading the link itself: its target
  // is checked against the mount table before anything stats it (lstat of a mount's root asks it).
  for (let hops = 0; hops <= 40; hops++) {
    let real: string;
    try {
      real = abs === '/' ? abs : join(realpathSync(dirname(abs)), basename(abs));
    } catch {
      return undefined;
    }
    if (mounts.includes(real)) return real;
    try {
      if (!lstatSync(real).isSymbolicLink()) return undefined;
      abs = resolve(dirname(real), readlinkSync(real));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The name a server binds its socket at before renaming it into place: see serveControl. */
function tmpName(name: string, pid: number): string {
  return `.${name.slice(0, 8)}.${pid}.tmp`;
}

/**
 * Who serves the control socket at `path`, found without asking it (for naming a server that does
 * not answer): the FUSE mount whose real path names the socket, and the server's pid from the name
 * its listening socket was bound at (/proc/net/unix lists it; see serveControl).
 */
export function socketServer(path: string): { mountpoint?: string; pid?: number } {
  const name = basename(path);
  const mountpoint = fuseMounts().find((m) => socketName(m) === name);
  const pids = new Set<number>();
  const prefix = join(dirname(path), tmpName(name, 0).replace(/0\.tmp$/, ''));
  try {
    for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      // Num: RefCount Protocol Flags Type St Inode Path, the path as it was bound (tmpName)
      const bound = /^\s*\S+ \S+ \S+ \S+ \S+ \S+ \S+ (.*)$/.exec(line)?.[1];
      if (bound === undefined || !bound.startsWith(prefix) || !bound.endsWith('.tmp')) continue;
      const pid = bound.slice(prefix.length, -'.tmp'.length);
      if (/^\d+$/.test(pid)) pids.add(Number(pid));
    }
  } catch {
    // no /proc
  }
  const pid = pids.size === 1 ? [...pids][0] : undefined;
  return { ...(mountpoint === undefined ? {} : { mountpoint }), ...(pid === undefined ? {} : { pid }) };
}
