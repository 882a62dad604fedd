/**
 * open(O_CREAT) through the mount of a name that became something else between the kernel's
 * LOOKUP (no such name) and its CREATE: another node, or a process on the backing directory, made
 * a FIFO, a device, a file or a symbolic link there. The passthrough's CREATE opened whatever it
 * found: a FIFO's open waited for the other end in a reader thread (a few and the mount stopped),
 * O_TRUNC on one failed EINVAL, and the kernel refused the entry of anything not a regular file
 * (EIO) without ever releasing its handle (a descriptor left open in the daemon). Now the caller
 * sees what it sees when the kernel's LOOKUP finds the name (ESTALE makes the kernel look again).
 *
 * The kernel sends LOOKUP and CREATE back to back, and caches no negative entry here (the daemon
 * answers ENOENT, which the kernel does not keep, and an unlink through the mount drops the
 * entry's time). So the change is made by strace instead: attached to the mount's one reader
 * thread, it answers that thread's first openat of the name (the LOOKUP's) ENOENT while the name
 * already is a FIFO etc. in the backing directory, as if it were made just after. Each case runs
 * 20 times, each time with a new name and the strace log showing the injected LOOKUP and the
 * CREATE that followed.
 */
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { until } from './proc.js';
import { pythonMount, skipWithoutPythonMount } from './python-mount.js';

const FILE = 'test/native/mount-create-changed.test.ts';
const RUNS = 20;
const BUDGET_MS = 60_000; // for what takes milliseconds: a hung mount fails here, naming what it waited for

const noStrace = (): string | undefined => {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no strace to make the name change between LOOKUP and CREATE';
  }
};

// Opens argv[1] with the flags named in argv[2] ("O_RDONLY|O_CREAT"), mode 0644, and prints what
// it opened (FIFO, CHR, or REG and the file's content) or the errno's name. With argv[3] it first
// prints "opening" and, once open, writes argv[3] to it.
const opener = [
  'import errno, os, stat, sys',
  'flags = 0',
  'for f in sys.argv[2].split("|"): flags |= getattr(os, f)',
  'if len(sys.argv) > 3: print("opening", flush=True)',
  'try: fd = os.open(sys.argv[1], flags, 0o644)',
  'except OSError as e: print(errno.errorcode[e.errno], flush=True); sys.exit(0)',
  'm = os.fstat(fd).st_mode',
  'if stat.S_ISFIFO(m): print("FIFO", flush=True)',
  'elif stat.S_ISCHR(m): print("CHR", flush=True)',
  'else: print("REG:" + os.pread(fd, 100, 0).decode() if flags & 3 != os.O_WRONLY else "REG", flush=True)',
  'if len(sys.argv) > 3: os.write(fd, sys.argv[3].encode())',
  'os.close(fd)',
].join('\n');

// The same for each line "PATH<TAB>FLAGS" of its stdin, closing what it opened.
const openerServer = [
  'import errno, os, stat, sys',
  'for line in sys.stdin:',
  '    path, names = line.rstrip("\\n").split("\\t")',
  '    flags = 0',
  '    for f in names.split("|"): flags |= getattr(os, f)',
  '    try: fd = os.open(path, flags, 0o644)',
  '    except OSError as e: print(errno.errorcode[e.errno], flush=True); continue',
  '    m = os.fstat(fd).st_mode',
  '    if stat.S_ISFIFO(m): print("FIFO", flush=True)',
  '    elif stat.S_ISCHR(m): print("CHR", flush=True)',
  '    else: print("REG:" + os.pread(fd, 100, 0).decode() if flags & 3 != os.O_WRONLY else "REG", flush=True)',
  '    os.close(fd)',
].join('\n');

interface Ran {
  code: number | null;
  out: string;
}

// The interpreter itself, not a wrapper script (pyenv's shim takes ~0.3 s a start): 400 starts here.
let interpreter = 'python3';

function python(args: string[], onLine?: (line: string, p: ChildProcess) => void): { p: ChildProcess; done: Promise<Ran> } {
  const p = spawn(interpreter, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (onLine) for (const l of d.toString().split('\n').filter(Boolean)) onLine(l, p);
  });
  const done = new Promise<Ran>((r) => p.once('exit', (code) => r({ code, out: out.trim() })));
  return { p, done };
}

async function within<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`still waiting after ${BUDGET_MS / 1000} s for: ${what}`)), BUDGET_MS);
  });
  try {
    return await Promise.race([p, budget]);
  } finally {
    clearTimeout(timer);
  }
}

const tracerOf = (tid: string): number => Number(/TracerPid:\s*(\d+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))?.[1] ?? 0);

if (!skipWithoutPythonMount(FILE, noStrace)) {
  interpreter = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  t.test('O_CREAT of a name that became a FIFO, a device, a file or a link after the LOOKUP', async (t) => {
    // One reader thread: every LOOKUP and CREATE runs on it, the thread strace watches (its
    // counts are per thread), and a FIFO's open held there stops the mount.
    const { base, backing, mnt } = await pythonMount(t, 'locksmith-create-changed-', { threads: 1 });
    const readers = readdirSync('/proc/self/task').filter((tid) => {
      try {
        return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'locksmith-fuse';
      } catch {
        return false;
      }
    });
    t.equal(readers.length, 1, "the mount's one reader thread");
    const reader = readers[0]!;
    mkdirSync(join(base, 'local'));

    // Descriptors this process (the daemon) has open on backing files, O_PATH ones aside (the
    // inodes the kernel holds): the handles of open files, which RELEASE closes.
    const handles = (): number =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${backing}/`)) return false;
          const flags = Number.parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);
          return (flags & 0o10000000) === 0; // O_PATH
        } catch {
          return false;
        }
      }).length;

    // Runs `f` while the reader thread's first openat of `name` (the LOOKUP's) fails ENOENT;
    // gives strace's log of that thread's openat calls of the name.
    const changedAfterLookup = async <T>(name: string, f: () => Promise<T>, when = '1'): Promise<{ result: T; log: string }> => {
      const logFile = join(base, `strace-${name}.log`);
      const s = spawn('strace', ['-qq', '-p', reader, '-P', name, '-e', 'trace=openat', '-e', `inject=openat:error=ENOENT:when=${when}`, '-o', logFile], {
        stdio: 'ignore',
      });
      const exited = new Promise<void>((r) => s.once('exit', () => r()));
      try {
        await until(`strace attached to the reader thread (${name})`, () => tracerOf(reader) === s.pid, BUDGET_MS);
        const result = await f();
        return { result, log: readFileSync(logFile, 'utf8') };
      } finally {
        s.kill('SIGTERM');
        await exited;
        await until(`strace detached from the reader thread (${name})`, () => tracerOf(reader) === 0, BUDGET_MS);
      }
    };
    const sawCreate = (log: string, name: string): boolean =>
      log.includes(`"${name}", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_PATH) = -1 ENOENT (No such file or directory) (INJECTED)`) &&
      new RegExp(`"${name}", [A-Z_|]*O_CREAT\\|O_EXCL`).test(log);

    // One opener process for all the opens (a python3 start takes a second on a busy machine).
    const server = spawn(interpreter, ['-c', openerServer], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => server.kill('SIGKILL'));
    const lines = createInterface({ input: server.stdout! })[Symbol.asyncIterator]();
    const opened = async (path: string, flags: string): Promise<string> => {
      server.stdin!.write(`${path}\t${flags}\n`);
      const r = await within(`open(${path}, ${flags})`, lines.next());
      return r.done ? 'the opener exited' : r.value;
    };

    type Maker = (path: string) => void;
    const fifo: Maker = (p) => execFileSync('mkfifo', [p]);
    const file: Maker = (p) => writeFileSync(p, 'kept');
    const link: Maker = (p) => {
      writeFileSync(`${p}.target`, 'kept');
      symlinkSync(`${p.slice(p.lastIndexOf('/') + 1)}.target`, p);
    };
    const device: Maker = (p) => execFileSync('mknod', [p, 'c', '1', '3']);
    const nothing: Maker = () => undefined;
    const cases: Array<[string, Maker, string, string, string?]> = [
      // [name, what the other process made, flags, what the caller sees, which of the reader
      // thread's openat calls of the name fail ENOENT (default the first: the LOOKUP's)]
      ['fifo-rn', fifo, 'O_RDONLY|O_CREAT|O_NONBLOCK', 'FIFO'], // was EIO, and a descriptor left open
      ['fifo-trunc', fifo, 'O_RDWR|O_CREAT|O_TRUNC', 'FIFO'], // was EINVAL (O_TRUNC is ignored for a FIFO)
      ['fifo-wn', fifo, 'O_WRONLY|O_CREAT|O_NONBLOCK', 'ENXIO'], // no reader, as open(2) says
      ['file', file, 'O_RDWR|O_CREAT', 'REG:kept'], // opened, its content kept
      ['excl', file, 'O_WRONLY|O_CREAT|O_EXCL', 'EEXIST'],
      ['link', link, 'O_RDWR|O_CREAT', 'REG:kept'], // followed to its target: was EIO after 8 tries
      ['link-nofollow', link, 'O_RDWR|O_CREAT|O_NOFOLLOW', 'ELOOP'],
      ['dev', device, 'O_WRONLY|O_CREAT', 'EACCES'], // the mount is nodev; was opened by the daemon, then EIO
      // The third (the LOOKUP after the CREATE made the file) as if the file were removed since:
      // made again, as open(2) never fails ENOENT for O_CREAT of a name in an existing directory.
      ['gone', nothing, 'O_RDWR|O_CREAT', 'REG:', '3'], // was ENOENT
    ];
    for (const [kind, make, flags, expected, when] of cases) {
      // What the caller sees without the race (the kernel's LOOKUP finds the name), and on the
      // backing directory itself (a device opens there: it is not nodev).
      make(join(backing, `${kind}-plain`));
      t.equal(await opened(join(mnt, `${kind}-plain`), flags), expected, `${kind}, ${flags}, found by LOOKUP: ${expected}`);
      make(join(base, 'local', kind));
      const local = await opened(join(base, 'local', kind), flags);
      t.equal(local, kind === 'dev' ? 'CHR' : expected, `${kind}, ${flags}, on a local file system: ${local}`);
      const seen = new Map<string, number>();
      let raced = 0;
      let runs = 0;
      for (let i = 0; i < RUNS; i++, runs++) {
        const name = `${kind}-${i}`;
        make(join(backing, name));
        const before = handles();
        const { result, log } = await changedAfterLookup(name, () => opened(join(mnt, name), flags), when);
        if (sawCreate(log, name)) raced++;
        seen.set(result, (seen.get(result) ?? 0) + 1);
        // RELEASE comes after the caller's close, asynchronously: its closing the handle is awaited.
        // At most `before`: an earlier open's RELEASE (the case's plain open) may still have been
        // on its way when `before` was counted (seen under load 15: one handle fewer after).
        const closed = await until(`the daemon's handles back to ${before} after ${kind} #${i}`, () => handles() <= before, BUDGET_MS).then(
          () => true,
          () => false,
        );
        if (!closed) seen.set('handle left open', 1);
        if (!closed || result !== expected) {
          runs++;
          break; // the first failure says it all
        }
      }
      const summary = [...seen].map(([k, n]) => `${k} x${n}`).join(', ');
      t.equal(raced, runs, `${kind}: each of the ${runs} opens was a CREATE after a LOOKUP that found nothing`);
      t.same([...seen], [[expected, RUNS]], `${kind}, ${flags}, made after the LOOKUP: ${expected} each time, no handle left (${summary})`);
    }
  });

  t.test('O_WRONLY | O_CREAT of a name that became a FIFO after the LOOKUP waits for a reader, as a local FIFO', async (t) => {
    const { base, backing, mnt } = await pythonMount(t, 'locksmith-create-changed-w-', { threads: 1 });
    const reader = readdirSync('/proc/self/task').find((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'locksmith-fuse')!;
    writeFileSync(join(backing, 'other'), '');
    for (let i = 0; i < RUNS; i++) {
      const name = `w-${i}`;
      execFileSync('mkfifo', [join(backing, name)]);
      const logFile = join(base, `strace-${name}.log`);
      const s = spawn('strace', ['-qq', '-p', reader, '-P', name, '-e', 'trace=openat', '-e', 'inject=openat:error=ENOENT:when=1', '-o', logFile], {
        stdio: 'ignore',
      });
      const exited = new Promise<void>((r) => s.once('exit', () => r()));
      await until('strace attached to the reader thread', () => tracerOf(reader) === s.pid, BUDGET_MS);
      // The writer: its open waits, as on a local file system, for a reader of the FIFO.
      let openingSeen!: () => void;
      const opening = new Promise<void>((r) => (openingSeen = r));
      const writer = python(['-c', opener, join(mnt, name), 'O_WRONLY|O_CREAT', `hello ${i}`], (l) => l === 'opening' && openingSeen());
      t.teardown(() => writer.p.kill('SIGKILL'));
      await within('the writer about to open', opening);
      await until(
        'the writer waiting in its open',
        () => {
          const stat = readFileSync(`/proc/${writer.p.pid}/stat`, 'utf8');
          const sc = readFileSync(`/proc/${writer.p.pid}/syscall`, 'utf8');
          return stat.slice(stat.lastIndexOf(')') + 2).startsWith('S') && sc.startsWith('257 ');
        },
        BUDGET_MS,
      );
      // Meanwhile another process's I/O through the mount goes on (the daemon's one reader
      // thread is not held by the open); if it were, the FIFO's reader on the backing directory
      // lets it go, so that the failure is reported and the mount unmounts.
      const io = python(['-c', 'import sys; p = sys.argv[1]; open(p, "w").write("x"); print(open(p).read(), flush=True)', join(mnt, 'other')]).done;
      const ioResult = await within(`a write and read through the mount while the writer of ${name} waits`, io).catch((e: Error) => e);
      if (ioResult instanceof Error) {
        t.fail(ioResult.message);
        await python(['-c', 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK))', join(backing, name)]).done;
        await io;
        s.kill('SIGTERM');
        await exited;
        break;
      }
      if (ioResult.out !== 'x' || i === RUNS - 1) t.equal(ioResult.out, 'x', `#${i}: I/O through the mount while the FIFO's writer waits`);
      // The reader, through the mount: the same FIFO (the kernel's pipe of the mount's inode).
      const r = await within(
        `a reader of ${name} through the mount`,
        python(['-c', 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); print(os.read(fd, 100).decode(), flush=True)', join(mnt, name)]).done,
      );
      const w = await within(`the writer of ${name}`, writer.done);
      s.kill('SIGTERM');
      await exited;
      await until('strace detached from the reader thread', () => tracerOf(reader) === 0, BUDGET_MS);
      const log = readFileSync(logFile, 'utf8');
      const ok = w.out === 'opening\nFIFO' && r.out === `hello ${i}` && log.includes('(INJECTED)') && /O_CREAT\|O_EXCL/.test(log);
      if (!ok || i === RUNS - 1) {
        t.equal(w.out, 'opening\nFIFO', `#${i}: the writer opened the FIFO once a reader came`);
        t.equal(r.out, `hello ${i}`, `#${i}: the reader got what the writer wrote`);
        t.match(log, /\(INJECTED\)[\s\S]*O_CREAT\|O_EXCL/, `#${i}: the open was a CREATE after a LOOKUP that found nothing`);
      }
      if (!ok) break;
    }
  });
}
