/**
 * Issue 13 narrowed: a store mount's worker marks a handle lost (markLost) when its session is
 * lost; that word can come after the handle's RELEASE closed its backing descriptor. When the file
 * handle was the descriptor number, the next open that reused the number inherited the mark: EIO on
 * every read and write through a handle whose lock was granted. Here the order is forced on the
 * pump itself (this thread is the mount's one destination and answers every lock event at once):
 * a handle is opened, locked, closed (its RELEASE answered), marked lost, and the file is opened
 * again, which gets the same backing descriptor number (the server opened nothing meanwhile).
 * This thread never touches the mount itself (it answers the mount's events): a python3 child does.
 * Needs root, /dev/fuse and python3; skipped (loudly) without them.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as pump from '../../src/native/index.js';
import type { NativeEvent } from '../../src/native/index.js';
import { fuseUnavailable } from '../../src/index.js';
import { forceUnmount, mountEnvironmentMissing, until } from './proc.js';

const F_UNLCK = 2;
const EIO = 5;

/** Reads commands from stdin, one a line, and prints each one's outcome. */
const CHILD = `
import fcntl, os, struct, sys
path = sys.argv[1]
fd = -1
for line in sys.stdin:
    cmd = line.strip()
    try:
        if cmd == "open":
            fd = os.open(path, os.O_RDWR)
        elif cmd == "lock":
            fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
        elif cmd == "io":
            os.pwrite(fd, b"z", 0)
            os.pread(fd, 1, 0)
        elif cmd == "close":
            os.close(fd)
        print(cmd, "ok", flush=True)
    except OSError as e:
        print(cmd, "err", e.errno, flush=True)
`;

const why = fuseUnavailable() ?? mountEnvironmentMissing();
if (why !== undefined) {
  console.error(`\n!! SKIPPING test/native/mount-store-lost-fh-reuse.test.ts: ${why}\n`);
  t.plan(0, why);
} else {
  const base = mkdtempSync(join(tmpdir(), 'locksmith-lost-fh-'));
  const backing = join(base, 'backing');
  const mnt = join(base, 'mnt');
  for (const d of [backing, mnt]) mkdirSync(d);
  writeFileSync(join(backing, 'f'), 'x');
  process.on('exit', () => forceUnmount(mnt));

  const sid = pump.mount({ backing, mountpoint: mnt, destinations: 1, threads: 2 });
  /** Every event, each pushed once answered (a release's descriptor is closed by then). */
  const log: NativeEvent[] = [];
  pump.attach(sid, 0, (events) => {
    for (const e of events) {
      if (e.kind === 'getlk') pump.replyLock(sid, e.reqId, F_UNLCK, e.start, e.end, e.lockPid);
      else if (e.kind !== 'interrupt') pump.replyErr(sid, e.reqId, 0);
      log.push(e);
    }
  });

  const child = spawn('python3', ['-c', CHILD, join(mnt, 'f')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  /** Sends `cmd` to the child and waits for its outcome line ("<cmd> ok" or "<cmd> err <errno>"). */
  const run = async (cmd: string): Promise<string> => {
    const seen = lines.length;
    child.stdin!.write(`${cmd}\n`);
    return until(`the child's answer to ${cmd}`, () => lines.slice(seen).find((l) => l.startsWith(`${cmd} `)));
  };

  t.teardown(async () => {
    if (child.exitCode === null) {
      child.stdin!.end();
      await new Promise<void>((r) => child.once('exit', () => r()));
    }
    pump.unmount(sid);
    forceUnmount(mnt);
    rmSync(base, { recursive: true, force: true });
  });

  t.test('a mark of a released handle does not reach the next open that reuses its descriptor', async (t) => {
    t.equal(await run('open'), 'open ok');
    t.equal(await run('lock'), 'lock ok');
    const first = log.find((e) => e.kind === 'setlk')!.fileHandle;
    t.equal(await run('close'), 'close ok');
    await until("the first handle's RELEASE answered (its descriptor closed)", () => log.some((e) => e.kind === 'release' && e.fileHandle === first) || undefined);
    // The worker's word on the released handle, late.
    pump.markLost(sid, Number(first));

    t.equal(await run('open'), 'open ok');
    t.equal(await run('lock'), 'lock ok');
    const second = log.filter((e) => e.kind === 'setlk').at(-1)!.fileHandle;
    t.not(second, first, 'the new open has a handle of its own (not the released one, whose number its descriptor may reuse)');
    t.ok(second < 2n ** 53n, 'the handle is exact as a JavaScript number');
    t.equal(await run('io'), 'io ok', 'reads and writes through the new handle work');

    // The mark still fences an open handle.
    pump.markLost(sid, Number(second));
    t.equal(await run('io'), `io err ${EIO}`, 'a handle marked lost while open fails its I/O with EIO');
    t.equal(await run('close'), 'close ok');
    await until("the second handle's RELEASE answered", () => log.some((e) => e.kind === 'release' && e.fileHandle === second) || undefined);
    t.equal(await run('open'), 'open ok');
    t.equal(await run('io'), 'io ok', 'a handle opened after the lost one was released is not lost');
    t.equal(await run('close'), 'close ok');
  });
}
