/**
 * The native event pump over a real FUSE mount (SEMANTICS-POSIX.md §12): a passthrough of a temp
 * directory, one destination attached on this thread to a tiny lock decider written below, and
 * separate processes (driver/lockclient.c, compiled here) calling fcntl and flock on the mount.
 *
 * Skips only outside CI when FUSE cannot work here (no addon, no libfuse, no /dev/fuse, not root,
 * no cc); with CI set, it runs and fails instead.
 *
 * This thread is a destination: it must never touch the mount synchronously (a close() sends FLUSH,
 * whose event this very thread has to answer). Everything here uses fs/promises and child processes.
 */
import t from 'tap';
import { routeOf } from '../../src/wire/route.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pump from '../../src/native/index.js';
import type { NativeEvent } from '../../src/native/index.js';
import { buildLockClient, Client, forceUnmount, mountEnvironmentMissing, mounted, sleep, until } from './proc.js';

const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const EAGAIN = 11;
const EINTR = 4;
const ENOLCK = 37;
const OFFSET_MAX = 0x7fffffffffffffffn;


function fuseUnavailable(): string | undefined {
  const n = pump.nativeAvailable();
  if (!n.ok) return n.reason;
  if (!pump.hasFuse) return 'the addon was built without libfuse3 (install libfuse3-dev and rebuild)';
  return mountEnvironmentMissing();
}

// ---- the tiny lock decider ---------------------------------------------------------------------

interface Held {
  lockOwner: bigint;
  fileHandle: bigint;
  start: bigint;
  end: bigint;
  write: boolean;
  flock: boolean;
  lockPid: number;
}

/**
 * Just enough lock semantics to prove the pump: a table of granted locks per path, conflicting
 * F_SETLK -> EAGAIN, waiting requests held until something is released, interrupts -> EINTR.
 * (No merging or splitting: an unlock removes the owner's overlapping locks whole.)
 */
/** How a decider answers: one native call per answer (replyErr / replyLock), or batched. */
interface Replier {
  err(reqId: number, errno: number): void;
  lock(reqId: number, type: number, start: bigint, end: bigint, pid: number): void;
}

function directReplier(sid: number): Replier {
  return {
    err: (reqId, errno) => void pump.replyErr(sid, reqId, errno),
    lock: (reqId, type, start, end, pid) => void pump.replyLock(sid, reqId, type, start, end, pid),
  };
}

/** Collects answers during a flat batch; flush() sends them with replyBatch and replyLockBatch. */
class BatchReplier implements Replier {
  readonly errs = new pump.ReplyBuffer();
  private locks: number[] = [];
  answered = 0;
  constructor(private readonly sid: number) {}
  err(reqId: number, errno: number): void {
    this.errs.push(reqId, errno);
  }
  lock(reqId: number, type: number, start: bigint, end: bigint, pid: number): void {
    this.locks.push(reqId, type, Number(start), end === OFFSET_MAX ? Infinity : Number(end), pid);
  }
  flush(): void {
    this.answered += this.errs.flush(this.sid);
    if (this.locks.length > 0) {
      this.answered += pump.replyLockBatch(this.sid, new Float64Array(this.locks), this.locks.length / 5);
      this.locks = [];
    }
  }
}

class TinyDecider {
  readonly log: NativeEvent[] = [];
  readonly waiting: NativeEvent[] = [];
  private readonly locks = new Map<string, Held[]>();
  private readonly reply: Replier;

  constructor(sid: number, reply?: Replier) {
    this.reply = reply ?? directReplier(sid);
  }

  onEvents(events: NativeEvent[]): void {
    for (const e of events) {
      this.log.push(e);
      this.decide(e);
    }
  }

  events(kind: NativeEvent['kind'], path?: string): NativeEvent[] {
    return this.log.filter((e) => e.kind === kind && (path === undefined || e.path === path));
  }

  private held(path: string): Held[] {
    let l = this.locks.get(path);
    if (l === undefined) this.locks.set(path, (l = []));
    return l;
  }

  private conflict(e: NativeEvent, flock: boolean): Held | undefined {
    return this.held(e.path).find(
      (h) => h.flock === flock && h.lockOwner !== e.lockOwner && h.start <= e.end && e.start <= h.end && (h.write || e.type === F_WRLCK),
    );
  }

  private drop(path: string, keep: (h: Held) => boolean): void {
    this.locks.set(path, this.held(path).filter(keep));
  }

  /** Grants the request if it fits; false if it conflicts. */
  private tryGrant(e: NativeEvent): boolean {
    const flock = e.kind === 'flock';
    if (this.conflict(e, flock) !== undefined) return false;
    this.held(e.path).push({ lockOwner: e.lockOwner, fileHandle: e.fileHandle, start: e.start, end: e.end, write: e.type === F_WRLCK, flock, lockPid: e.lockPid });
    this.reply.err(e.reqId, 0);
    return true;
  }

  private wake(): void {
    for (let i = 0; i < this.waiting.length; ) {
      if (this.tryGrant(this.waiting[i]!)) this.waiting.splice(i, 1);
      else i++;
    }
  }

  private decide(e: NativeEvent): void {
    switch (e.kind) {
      case 'getlk': {
        const c = this.conflict(e, false);
        if (c === undefined) this.reply.lock(e.reqId, F_UNLCK, e.start, e.end, e.lockPid);
        else this.reply.lock(e.reqId, c.write ? F_WRLCK : F_RDLCK, c.start, c.end, c.lockPid);
        return;
      }
      case 'setlk':
      case 'flock': {
        const flock = e.kind === 'flock';
        if (e.type === F_UNLCK || flock) {
          // flock conversion drops the old lock first, as Linux does (SEMANTICS-POSIX.md §9)
          this.drop(e.path, (h) => h.flock !== flock || h.lockOwner !== e.lockOwner || h.end < e.start || e.end < h.start);
        }
        if (e.type === F_UNLCK) {
          this.reply.err(e.reqId, 0);
          this.wake();
          return;
        }
        if (this.tryGrant(e)) return;
        if (e.sleep) this.waiting.push(e);
        else this.reply.err(e.reqId, EAGAIN);
        if (flock) this.wake();
        return;
      }
      case 'flush':
        this.drop(e.path, (h) => h.flock || h.lockOwner !== e.lockOwner);
        this.reply.err(e.reqId, 0);
        this.wake();
        return;
      case 'release':
        this.drop(e.path, (h) => (h.flock ? !(e.flockRelease && h.lockOwner === e.lockOwner) : h.fileHandle !== e.fileHandle));
        this.reply.err(e.reqId, 0);
        this.wake();
        return;
      case 'interrupt': {
        const i = this.waiting.findIndex((w) => w.reqId === e.reqId);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          this.reply.err(e.reqId, EINTR);
        }
        return;
      }
    }
  }
}

// ---- a lock client process ---------------------------------------------------------------------

// ---- the tests ---------------------------------------------------------------------------------

const why = fuseUnavailable();
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/pump.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE unavailable: ${why}`);
} else {
  if (why !== undefined) t.fail(`FUSE is required in CI but unavailable: ${why}`);

  const base = mkdtempSync(join(tmpdir(), 'locksmith-pump-'));
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const bin = buildLockClient(join(base, 'lockclient'));

  const mountpoints = new Set<string>([mnt]);
  process.on('exit', () => mountpoints.forEach(forceUnmount));

  const GRACE_MS = 400;
  const sid = pump.mount({ backing, mountpoint: mnt, destinations: 1, threads: 4, graceMs: GRACE_MS });
  const decider = new TinyDecider(sid);
  pump.attach(sid, 0, (events) => decider.onEvents(events));
  const clients: Client[] = [];
  const client = (name: string, cmds: string[]) => {
    const c = new Client(bin, join(mnt, name), cmds);
    clients.push(c);
    return c;
  };
  const owner = (c: Client, path: string) =>
    decider.log.find((e) => e.kind === 'setlk' && e.path === path && e.lockPid === c.pid && e.type !== F_UNLCK)?.lockOwner;

  t.teardown(async () => {
    for (const c of clients) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    // Unmount first: it answers whatever a client could still be waiting for.
    if (pump.nativeAvailable().ok) {
      try {
        pump.unmount(sid);
      } catch {
        // forced below
      }
    }
    mountpoints.forEach(forceUnmount);
    await Promise.all(clients.map((c) => c.ended().catch((e: Error) => console.error(e.message))));
    for (const m of mountpoints) if (mounted(m)) throw new Error(`${m} is still mounted`);
    rmSync(base, { recursive: true, force: true });
  });

  t.test('the session negotiated both lock capabilities', async (t) => {
    const info = pump.sessionInfo(sid);
    t.equal(info.kind, 'fuse');
    t.equal(info.initialized, true);
    t.equal(info.posixLocks, true, 'FUSE_CAP_POSIX_LOCKS granted');
    t.equal(info.flockLocks, true, 'FUSE_CAP_FLOCK_LOCKS granted');
    t.equal(info.attached, 1);
    t.equal(info.mountpoint, mnt);
  });

  t.test('ordinary file I/O works through the passthrough', async (t) => {
    await fsp.mkdir(join(mnt, 'dir'));
    await fsp.writeFile(join(mnt, 'dir', 'a.txt'), 'hello ');
    await fsp.appendFile(join(mnt, 'dir', 'a.txt'), 'world');
    t.equal(await fsp.readFile(join(mnt, 'dir', 'a.txt'), 'utf8'), 'hello world');
    t.equal(readFileSync(join(backing, 'dir', 'a.txt'), 'utf8'), 'hello world', 'the backing file has the data');
    t.equal((await fsp.stat(join(mnt, 'dir', 'a.txt'))).size, 11);
    await fsp.rename(join(mnt, 'dir', 'a.txt'), join(mnt, 'dir', 'b.txt'));
    t.same((await fsp.readdir(join(mnt, 'dir'))).sort(), ['b.txt']);
    await fsp.truncate(join(mnt, 'dir', 'b.txt'), 5);
    t.equal(await fsp.readFile(join(mnt, 'dir', 'b.txt'), 'utf8'), 'hello');
    await fsp.chmod(join(mnt, 'dir', 'b.txt'), 0o600);
    t.equal((await fsp.stat(join(backing, 'dir', 'b.txt'))).mode & 0o777, 0o600);
    await fsp.link(join(mnt, 'dir', 'b.txt'), join(mnt, 'dir', 'c.txt'));
    await fsp.symlink('b.txt', join(mnt, 'dir', 'd.txt'));
    t.equal(await fsp.readlink(join(mnt, 'dir', 'd.txt')), 'b.txt');
    const fh = await fsp.open(join(mnt, 'dir', 'b.txt'), 'r+');
    await fh.write('J', 0);
    await fh.sync();
    await fh.close();
    t.equal(await fsp.readFile(join(mnt, 'dir', 'c.txt'), 'utf8'), 'Jello', 'a hard link shows the write');
    const many = Array.from({ length: 300 }, (_, i) => `f${String(i).padStart(3, '0')}`);
    await Promise.all(many.map((n) => fsp.writeFile(join(mnt, 'dir', n), n)));
    const listed = await fsp.readdir(join(mnt, 'dir'));
    t.equal(listed.length, 303, 'readdir over several buffers lists every entry once');
    for (const n of [...many, 'b.txt', 'c.txt', 'd.txt']) await fsp.unlink(join(mnt, 'dir', n));
    await fsp.rmdir(join(mnt, 'dir'));
    t.same(await fsp.readdir(mnt), []);
    t.ok((await fsp.statfs(mnt)).blocks > 0, 'statfs answers');
    t.ok(decider.events('flush').length > 0 && decider.events('release').length > 0, 'closes reached JS as flush and release');
  });

  t.test('events carry the backing identity as their path, stable across renames', async (t) => {
    await fsp.writeFile(join(mnt, 'id.txt'), '');
    const st = statSync(join(backing, 'id.txt'));
    const key = `fuse:${st.dev}:${st.ino}`;
    const a = client('id.txt', ['open', 'lock', 'w', '0', '1', 'close']);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'lock ok');
    t.equal(await a.next(), 'close ok');
    t.ok(decider.events('setlk', key).length === 1, `the setlk came with path ${key}`);
    await fsp.rename(join(mnt, 'id.txt'), join(mnt, 'id2.txt'));
    const b = client('id2.txt', ['open', 'lock', 'r', '0', '1', 'close']);
    t.equal(await b.next(), 'open ok');
    t.equal(await b.next(), 'lock ok');
    t.equal(decider.events('setlk', key).length, 2, 'the same key after a rename');
    t.equal(pump.nativeRouteOf(key, 7), routeOf(key, 7), 'native and JS routing agree');
    await Promise.all([a.ended(), b.ended()]);
  });

  t.test('two processes conflict; F_GETLK names the holder; a blocked F_SETLKW is granted after the unlock', async (t) => {
    const path = join(mnt, 'conflict');
    await fsp.writeFile(path, 'x'.repeat(200));
    const a = client('conflict', ['open', 'lock', 'w', '0', '100', 'wait', 'lock', 'u', '0', '100', 'wait', 'close']);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'lock ok');
    const b = client('conflict', ['open', 'lock', 'w', '50', '10', 'get', 'w', '0', '10', 'lockw', 'w', '0', '10', 'wait', 'close']);
    t.equal(await b.next(), 'open ok');
    t.equal(await b.next(), `lock err ${EAGAIN}`, 'F_SETLK over the held range fails with EAGAIN');
    t.equal(await b.next(), `get w 0 100 ${a.pid}`, "F_GETLK reports A's write lock and A's pid");
    t.ok(await b.silentFor(300), 'F_SETLKW waits');
    const key = decider.events('setlk').at(-1)!.path;
    const blocked = await until('the waiting setlk', () => decider.waiting.find((e) => e.lockPid === b.pid));
    t.equal(blocked.sleep, true, 'the waiting request came with sleep');
    t.equal(blocked.kind, 'setlk');
    t.equal(blocked.start, 0n);
    t.equal(blocked.end, 9n, 'inclusive end');
    t.not(owner(a, key), owner(b, key), 'two processes are two owners');
    // A late RELEASE of an earlier test's file may sit in the pump for a moment before this thread's
    // decider answers it: wait for the count to settle rather than read it once.
    await until('the waiter as the one outstanding request', () => pump.sessionInfo(sid).outstanding === 1);
    t.equal(pump.sessionInfo(sid).outstanding, 1, 'the waiter is the one outstanding request');
    a.go();
    t.equal(await a.next(), 'lock ok', 'A unlocked');
    t.equal(await b.next(), 'lockw ok', "B's F_SETLKW was granted");
    a.go();
    b.go();
    t.equal(await a.next(), 'close ok');
    t.equal(await b.next(), 'close ok');
    t.same(await a.ended(), { code: 0, signal: null });
    t.same(await b.ended(), { code: 0, signal: null });
    const getlk = decider.events('getlk', key)[0]!;
    t.equal(getlk.type, F_WRLCK);
    t.equal(getlk.end, 9n);
  });

  t.test("close() sends FLUSH with the process's owner, which drops its locks", async (t) => {
    await fsp.writeFile(join(mnt, 'flush'), '');
    const a = client('flush', ['open', 'lock', 'w', '0', '0', 'wait', 'close', 'wait']);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'lock ok');
    const key = decider.events('setlk').at(-1)!.path;
    const aOwner = owner(a, key)!;
    t.equal(decider.events('setlk', key).at(-1)!.end, OFFSET_MAX, 'length 0 arrives as end = OFFSET_MAX');
    const b1 = client('flush', ['open', 'lock', 'r', '5', '1']);
    t.equal(await b1.next(), 'open ok');
    t.equal(await b1.next(), `lock err ${EAGAIN}`, 'blocked while A holds it');
    await b1.ended();
    const flushesBefore = decider.events('flush', key).filter((e) => e.lockOwner === aOwner).length;
    a.go();
    t.equal(await a.next(), 'close ok');
    t.equal(decider.events('flush', key).filter((e) => e.lockOwner === aOwner).length, flushesBefore + 1, "A's close sent one FLUSH with A's lock_owner");
    const b2 = client('flush', ['open', 'lock', 'r', '5', '1']);
    t.equal(await b2.next(), 'open ok');
    t.equal(await b2.next(), 'lock ok', "after A's close its lock is gone, A still running");
    a.go();
    await Promise.all([a.ended(), b2.ended()]);
  });

  t.test('a signal ends a blocked F_SETLKW: the interrupt reaches JS and EINTR goes back', async (t) => {
    await fsp.writeFile(join(mnt, 'intr'), '');
    const a = client('intr', ['open', 'lock', 'w', '0', '10', 'wait', 'close']);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'lock ok');

    const b = client('intr', ['open', 'lockw', 'w', '0', '10', 'close']);
    t.equal(await b.next(), 'open ok');
    const bReq = await until('B waiting', () => decider.waiting.find((e) => e.lockPid === b.pid));
    b.proc.kill('SIGUSR1');
    t.equal(await b.next(), `lockw err ${EINTR}`, 'a caught signal (no SA_RESTART) makes F_SETLKW return EINTR');
    t.ok(decider.events('interrupt').some((e) => e.reqId === bReq.reqId), "an interrupt event named B's request");
    t.equal(await b.next(), 'close ok');
    t.same(await b.ended(), { code: 0, signal: null });

    for (const sig of ['SIGINT', 'SIGKILL'] as const) {
      const c = client('intr', ['open', 'lockw', 'w', '0', '10']);
      t.equal(await c.next(), 'open ok');
      const cReq = await until('C waiting', () => decider.waiting.find((e) => e.lockPid === c.pid));
      c.proc.kill(sig);
      // A process that stays blocked fails here, naming it, after HANG_MS (minutes): no clock check.
      t.same(await c.ended(), { code: null, signal: sig }, `${sig} ends a process blocked in F_SETLKW`);
      t.ok(decider.events('interrupt').some((e) => e.reqId === cReq.reqId), `${sig}: the interrupt reached JS`);
    }
    t.equal(decider.waiting.length, 0, 'no waiter is left behind');
    a.go();
    t.equal(await a.next(), 'close ok');
    await a.ended();
  });

  t.test('flock: LOCK_NB conflicts, a blocking flock is granted after LOCK_UN, release carries flockRelease', async (t) => {
    await fsp.writeFile(join(mnt, 'flock'), '');
    const a = client('flock', ['open', 'flock', 'ex', 'wait', 'flock', 'un', 'wait', 'close']);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'flock ok');
    const b = client('flock', ['open', 'flock', 'sh', 'nb', 'flock', 'sh', 'close']);
    t.equal(await b.next(), 'open ok');
    t.equal(await b.next(), `flock err ${EAGAIN}`, 'LOCK_SH|LOCK_NB fails while A holds LOCK_EX');
    t.ok(await b.silentFor(300), 'a blocking LOCK_SH waits');
    const waiting = await until('B waiting', () => decider.waiting.find((e) => e.kind === 'flock'));
    t.equal(waiting.sleep, true);
    t.equal(waiting.type, F_RDLCK);
    t.equal(waiting.end, OFFSET_MAX, 'flock covers the whole file');
    a.go();
    t.equal(await a.next(), 'flock ok', 'A unlocked');
    t.equal(await b.next(), 'flock ok', "B's LOCK_SH was granted");
    t.equal(await b.next(), 'close ok');
    await b.ended();
    const key = waiting.path;
    const bRelease = await until('B release', () => decider.events('release', key).find((e) => e.lockOwner === waiting.lockOwner));
    t.equal(bRelease.flockRelease, true, "the last close of B's file carries FUSE_RELEASE_FLOCK_UNLOCK and its owner");
    a.go();
    await a.ended();
    t.ok(decider.events('setlk', key).length === 0, 'flock never arrives as setlk');
  });

  t.test('nobody attached: interrupts get EINTR at once, flush and F_SETLK are completed after the grace period', async (t) => {
    await fsp.writeFile(join(mnt, 'orphan'), '');
    const a = client('orphan', ['open', 'lock', 'w', '0', '1', 'wait', 'close']);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'lock ok');
    t.equal(pump.detach(sid, 0), true, 'detached');
    t.equal(pump.detach(sid, 0), false, 'detaching twice: false');
    const before = pump.sessionInfo(sid).nativeAnswers!;

    // A non-blocking F_SETLK cannot be interrupted: after the grace period it gets ENOLCK.
    const c = client('orphan', ['open', 'lock', 'w', '0', '1']);
    t.equal(await c.next(), 'open ok');
    const t0 = Date.now();
    t.equal(await c.next(), `lock err ${ENOLCK}`, 'F_SETLK with nobody attached: ENOLCK');
    t.ok(Date.now() - t0 >= GRACE_MS - 50, 'not before the grace period');
    t.same(await c.ended(), { code: 0, signal: null }, 'its exit-time flush and release were completed too');

    // A waiting F_SETLKW stays queued; SIGKILL interrupts it and EINTR is sent natively.
    const b = client('orphan', ['open', 'lockw', 'w', '0', '1']);
    t.equal(await b.next(), 'open ok');
    // Held by the pump (nobody attached): from then on, the grace period counts for it.
    await until("B's F_SETLKW outstanding in the pump", () => pump.sessionInfo(sid).outstanding >= 1);
    await sleep(GRACE_MS + 200);
    t.equal(b.proc.exitCode, null, 'the waiting F_SETLKW is still waiting after the grace period');
    b.proc.kill('SIGKILL');
    t.same(await b.ended(), { code: null, signal: 'SIGKILL' }, 'the killed waiter ended without any JS');
    t.ok(pump.sessionInfo(sid).nativeAnswers! >= before + 4, 'answered natively: setlk, interrupt, flushes/releases');

    const seen = decider.log.length;
    pump.attach(sid, 0, (events) => decider.onEvents(events));
    a.go();
    t.equal(await a.next(), 'close ok', 'events flow again after re-attach');
    await a.ended();
    const late = decider.log.slice(seen);
    t.notOk(late.some((e) => e.kind === 'setlk' && e.lockPid === c.pid), "C's withdrawn F_SETLK never reaches JS");
    t.ok(late.some((e) => e.kind === 'flush' && e.lockPid === b.pid), "B's exit-time flush still reaches JS (so it can drop B's locks)");
    t.equal(decider.waiting.length, 0, 'no waiter is left behind');
  });

  t.test('the flat path on a real mount: attachFlat, replyBatch and replyLockBatch', async (t) => {
    const mnt2 = join(base, 'mnt-flat');
    mkdirSync(mnt2);
    mountpoints.add(mnt2);
    const sid2 = pump.mount({ backing, mountpoint: mnt2, destinations: 1, threads: 4 });
    const replier = new BatchReplier(sid2);
    const flat = new TinyDecider(sid2, replier);
    let wideOwners = 0;
    let exactOwners = 0;
    let infiniteEnds = 0;
    pump.attachFlat(sid2, 0, (b) => {
      const evs: NativeEvent[] = [];
      for (let i = 0, o = 0; i < b.n; i++, o += pump.F_STRIDE) {
        const e = pump.flatEvent(b, i);
        const flags = b.f64[o + pump.F_FLAGS]!;
        if (flags & pump.FL_WIDE_LOCK_OWNER) wideOwners++;
        else if (BigInt(b.f64[o + pump.F_LOCK_OWNER]!) === e.lockOwner) exactOwners++;
        if (e.end === OFFSET_MAX && b.f64[o + pump.F_END] === Infinity) infiniteEnds++;
        t.equal(pump.NATIVE_EVENT_KINDS[b.f64[o + pump.F_KIND]!], e.kind);
        evs.push(e);
      }
      flat.onEvents(evs);
      replier.flush();
    });
    t.teardown(() => {
      pump.unmount(sid2);
      forceUnmount(mnt2);
    });
    await fsp.writeFile(join(mnt2, 'flat'), 'x'.repeat(200));
    const bin2 = (name: string, cmds: string[]) => {
      const c = new Client(bin, join(mnt2, name), cmds);
      clients.push(c);
      return c;
    };
    const a = bin2('flat', ['open', 'lock', 'w', '0', '100', 'wait', 'lock', 'u', '0', '100', 'wait', 'close']);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'lock ok');
    const b = bin2('flat', ['open', 'lock', 'w', '50', '10', 'get', 'w', '0', '10', 'get', 'r', '150', '0', 'lockw', 'w', '0', '10', 'wait', 'close']);
    t.equal(await b.next(), 'open ok');
    t.equal(await b.next(), `lock err ${EAGAIN}`, 'F_SETLK conflict: EAGAIN through replyBatch');
    t.equal(await b.next(), `get w 0 100 ${a.pid}`, "F_GETLK through replyLockBatch reports A's lock and pid");
    t.match(await b.next(), /^get u /, 'F_GETLK to the end of the file without a conflict: F_UNLCK');
    t.ok(await b.silentFor(200), 'F_SETLKW waits');
    a.go();
    t.equal(await a.next(), 'lock ok');
    t.equal(await b.next(), 'lockw ok', 'granted in the batch that carried the unlock');
    a.go();
    b.go();
    t.equal(await a.next(), 'close ok');
    t.equal(await b.next(), 'close ok');
    t.same(await a.ended(), { code: 0, signal: null });
    t.same(await b.ended(), { code: 0, signal: null });
    await until('the releases', () => flat.events('release').length >= 3);
    t.ok(flat.events('flush').length >= 2, 'close() sent FLUSH');
    t.ok(wideOwners + exactOwners === flat.log.length, `every owner exact: ${wideOwners} wide (u64 lane), ${exactOwners} in the double`);
    t.ok(infiniteEnds > 0, 'OFFSET_MAX arrives as Infinity in F_END');
    const info = pump.sessionInfo(sid2);
    t.equal(info.outstanding, 0);
    t.equal(info.replied, flat.log.length - flat.events('interrupt').length, 'everything answered');
    t.equal(replier.answered, info.replied, 'all of it through the batch calls');
  });

  t.test('mount refuses with one clear sentence', async (t) => {
    t.throws(() => pump.mount({ backing, mountpoint: join(base, 'nope'), destinations: 1 }), /mountpoint .* does not exist/);
    t.throws(() => pump.mount({ backing: join(base, 'nope'), mountpoint: mnt, destinations: 1 }), /backing directory .* does not exist/);
    t.throws(() => pump.mount({ backing, mountpoint: mnt, destinations: 1 }), /mountpoint .* is busy/);
    t.throws(() => pump.mount({ backing, mountpoint: bin, destinations: 1 }), /is not a directory/);
    t.throws(() => pump.attach(sid, 0, () => {}), /already attached/);
    t.throws(() => pump.attach(sid, 1, () => {}), TypeError, 'index out of range');
    t.throws(() => pump.replyLock(sid, 1, F_WRLCK, 10n, 5n, 0), TypeError, 'start > end');
    t.equal(pump.replyErr(sid, 999999, 0), false, 'an unknown request: false');
  });

  t.test('unmount with a waiter: the waiter returns, nothing stays mounted or stuck', async (t) => {
    const mnt2 = join(base, 'mnt2');
    mkdirSync(mnt2);
    mountpoints.add(mnt2);
    const sid2 = pump.mount({ backing, mountpoint: mnt2, destinations: 2 });
    const d2 = new TinyDecider(sid2);
    pump.attach(sid2, 0, (events) => d2.onEvents(events));
    pump.attach(sid2, 1, (events) => d2.onEvents(events));
    await fsp.writeFile(join(mnt2, 'gone'), '');
    const a = new Client(bin, join(mnt2, 'gone'), ['open', 'lock', 'w', '0', '1', 'wait', 'close']);
    const b = new Client(bin, join(mnt2, 'gone'), ['open', 'lockw', 'w', '0', '1']);
    clients.push(a, b);
    t.equal(await a.next(), 'open ok');
    t.equal(await a.next(), 'lock ok');
    t.equal(await b.next(), 'open ok');
    await until('B waiting', () => d2.waiting.length === 1);
    const t0 = Date.now();
    t.equal(pump.unmount(sid2), 1, 'unmount answered one lock request itself: the waiter (the holder was answered before)');
    t.comment(`unmount took ${Date.now() - t0} ms (A still holds a file open)`);
    t.equal(await b.next(), `lockw err ${ENOLCK}`, 'the waiter got ENOLCK: no process stays blocked');
    t.same(await b.ended(), { code: 0, signal: null });
    t.notOk(mounted(mnt2), 'nothing is mounted at the mountpoint any more');
    a.go();
    await a.ended();
    t.pass('the holder finishes too');
    t.equal(pump.unmount(sid2), false, 'a second unmount: false');
    t.throws(() => pump.sessionInfo(sid2), /no session/);
    t.notOk(existsSync(join(mnt2, 'gone')), 'the mountpoint shows the empty directory again');
  });
}
