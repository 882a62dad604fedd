/**
 * Found by review (passthrough CREATE tries O_CREAT | O_EXCL first, then, on EEXIST, opens the
 * existing name without O_CREAT): a name that another node made a directory between the kernel's
 * LOOKUP (no such name) and the CREATE was opened as a directory (O_RDONLY succeeds on one), and
 * the CREATE answered with a directory's entry, which the kernel refuses (not a regular file): the
 * caller got EIO. open(2) with O_CREAT on an existing directory is EISDIR, which the CREATE before
 * the change answered (openat with O_CREAT). A store mount (no entry cache: the kernel asks at
 * every open) while a directory of that name comes and goes in the backing directory; each open
 * ends in success, EISDIR or ENOENT, never EIO. Without the fix, about 1 in 40 ended in EIO here.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { oneStoreMount } from './store-mounts.js';

const m = oneStoreMount('test/native/mount-create-dir-review.test.ts', 'locksmith-create-dir-', 30_000, {});
if (m !== undefined) {
  t.test('O_CREAT of a name another node makes a directory meanwhile: EISDIR, never EIO', async (t) => {
    const py = [
      'import errno, os, sys, threading',
      `b, n = ${JSON.stringify(m.backing)}, ${JSON.stringify(join(m.mnt, 'x'))}`,
      'stop = False',
      'def racer():',
      '    while not stop:',
      '        try: os.mkdir(b + "/x")',
      '        except OSError: pass',
      '        try: os.rmdir(b + "/x")',
      '        except OSError: pass',
      'threading.Thread(target=racer, daemon=True).start()',
      'c = {}',
      'for i in range(8000):',
      '    try:',
      '        os.close(os.open(n, os.O_RDONLY | os.O_CREAT, 0o644)); k = "ok"',
      '        try: os.unlink(b + "/x")',
      '        except OSError: pass',
      '    except OSError as e: k = errno.errorcode[e.errno]',
      '    c[k] = c.get(k, 0) + 1',
      '    if k == "EIO": break',
      'stop = True',
      'print(" ".join("%s=%d" % kv for kv in sorted(c.items())), flush=True)',
    ].join('\n');
    const p = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => p.kill('SIGKILL'));
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    t.equal(code, 0, 'the opener ended');
    const counts = Object.fromEntries(out.trim().split(' ').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
    t.notOk(counts.EIO, `no open ended in EIO (${out.trim()})`);
    t.ok(Number(counts.EISDIR ?? 0) > 0, `the directory was there for some opens: EISDIR (${out.trim()})`);
  });
}
