/**
 * A file made through the mount has the mode its caller asked. The kernel applies the caller's
 * umask to the mode of CREATE, MKDIR and MKNOD before sending it (the mount asks no
 * FUSE_CAP_DONT_MASK), and the passthrough's openat, mkdirat and mknodat applied the daemon's own
 * umask again: a process with umask 0 asking 0666 got 0644 on the backing file while the daemon's
 * umask was 022. The mount runs here, in the test's process, with umask 022 (a library's process:
 * the daemon may not change it), and a process with umask 0 makes files through it.
 *
 * Skips only outside CI when a mount or python3 cannot work here, saying why.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pythonMount, skipWithoutPythonMount } from './python-mount.js';

if (!skipWithoutPythonMount('test/native/mount-create-mode.test.ts')) {
  t.test("files made through the mount have the caller's mode, not the daemon's umask of it", async (t) => {
    const { backing, mnt } = await pythonMount(t, 'locksmith-create-mode-');
    writeFileSync(join(backing, 'old'), 'kept');
    execFileSync('chmod', ['0600', join(backing, 'old')]);
    t.equal(process.umask(0o022), 0o022, "the daemon's (this process's) umask is 022");

    const py = [
      'import os, sys',
      'os.umask(0)',
      'm = sys.argv[1]',
      'for name, mode in (("f666", 0o666), ("f777", 0o777), ("f640", 0o640)):',
      '    os.close(os.open(m + "/" + name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))',
      'os.mkdir(m + "/d777", 0o777)',
      'os.mkdir(m + "/d750", 0o750)',
      'os.mkfifo(m + "/p666", 0o666)',
      // An existing file's mode is not changed by an open with O_CREAT.
      'os.close(os.open(m + "/old", os.O_WRONLY | os.O_CREAT, 0o777))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', py, mnt], { stdio: ['ignore', 'inherit', 'inherit'] });
    t.equal(r.status, 0, 'the process with umask 0 made its files through the mount');
    const modeOf = (name: string) => (statSync(join(backing, name)).mode & 0o7777).toString(8);
    for (const [name, mode] of [
      ['f666', '666'],
      ['f777', '777'],
      ['f640', '640'],
      ['d777', '777'],
      ['d750', '750'],
      ['p666', '666'],
    ] as const) {
      t.equal(modeOf(name), mode, `${name}: mode ${mode} on the backing file, as asked`);
      t.equal((statSync(join(mnt, name)).mode & 0o7777).toString(8), mode, `${name}: mode ${mode} through the mount`);
    }
    t.equal(modeOf('old'), '600', "an existing file's mode is kept");
  });
}
