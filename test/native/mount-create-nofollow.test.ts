/**
 * open(O_CREAT | O_NOFOLLOW) of a name that is a symbolic link fails with ELOOP, as on a local file
 * system. When the kernel's LOOKUP finds the link the kernel refuses the open itself; CREATE is sent
 * only when LOOKUP found no such name, and another node may make the link between the two (a
 * store mount has no entry cache: the kernel asks at every open). The passthrough's CREATE dropped
 * O_NOFOLLOW, and on EEXIST reopened the name without it: through the link, opening (or making)
 * its target. A store mount while a link of that name comes and goes in the backing directory;
 * each open ends in a new file or ELOOP (ENOENT: gone between the two opens), never the target.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { oneStoreMount } from './store-mounts.js';

const m = oneStoreMount('test/native/mount-create-nofollow.test.ts', 'locksmith-create-nofollow-', 30_000, { target: 'T' });
if (m !== undefined) {
  t.test('O_CREAT | O_NOFOLLOW of a name that is a symbolic link: ELOOP, as on a local file system', async (t) => {
    const py = [
      'import errno, os, sys, threading',
      `b, mnt = ${JSON.stringify(m.backing)}, ${JSON.stringify(m.mnt)}`,
      'def opened(path):',
      '    try:',
      '        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)',
      '    except OSError as e: return errno.errorcode[e.errno]',
      '    st = os.fstat(fd); os.close(fd)',
      '    return "target" if st.st_ino == os.stat(b + "/target").st_ino else "ok"',
      // Without a race: the kernel's LOOKUP finds the link, the local file system's answer.
      'os.symlink("target", b + "/s")',
      'print("local", opened(b + "/s"), "mount", opened(mnt + "/s"), flush=True)',
      'stop = False',
      'def racer():',
      '    while not stop:',
      '        try: os.symlink("target", b + "/x")',
      '        except OSError: pass',
      '        try: os.unlink(b + "/x")',
      '        except OSError: pass',
      'threading.Thread(target=racer, daemon=True).start()',
      'c = {}',
      'for i in range(6000):',
      '    k = opened(mnt + "/x")',
      '    if k == "ok":',
      '        try: os.unlink(b + "/x")',
      '        except OSError: pass',
      '    c[k] = c.get(k, 0) + 1',
      '    if k == "target": break',
      'stop = True',
      'print(" ".join("%s=%d" % kv for kv in sorted(c.items())), flush=True)',
    ].join('\n');
    const p = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => p.kill('SIGKILL'));
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    t.equal(code, 0, 'the opener ended');
    const [first = '', second = ''] = out.trim().split('\n');
    t.equal(first, 'local ELOOP mount ELOOP', 'a link found by LOOKUP: ELOOP through the mount as on the backing file system');
    const counts = Object.fromEntries(second.split(' ').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
    t.notOk(counts.target, `no open went through the link to its target (${second})`);
    // Without O_NOFOLLOW the CREATE opened the target through the link and answered with the
    // link's entry, which the kernel refuses (not a regular file): EIO, about 1 open in 200 here.
    t.notOk(counts.EIO, `no open ended in EIO (${second})`);
    t.ok(Number(counts.ELOOP ?? 0) > 0, `the link was there for some opens: ELOOP (${second})`);
  });
}
