/**
 * restoreMode puts back the bits the daemon's umask took from a file it made. But a directory with
 * a default ACL ignores the umask (the ACL decides: a local mkdir(0777) under a default ACL of
 * u::rwx,g::r-x,o::--- makes 0750 with any umask), and the chmod then widens what the ACL allowed:
 * through the mount the same request made 0777, other users given access the backing directory's
 * ACL refuses. The mode through the mount should be the one made on the backing directory itself.
 *
 * Skips only outside CI when a mount or python3 cannot work here, or the backing fs has no ACLs.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pythonMount, skipWithoutPythonMount } from './python-mount.js';

// Sets the default ACL u::rwx,g::r-x,o::--- on the directory argv[1] (the xattr's binary form).
const setAcl = [
  'import os, struct, sys',
  "acl = struct.pack('<I', 2) + struct.pack('<HHI', 1, 7, 0xffffffff) + struct.pack('<HHI', 4, 5, 0xffffffff) + struct.pack('<HHI', 0x20, 0, 0xffffffff)",
  "os.setxattr(sys.argv[1], 'system.posix_acl_default', acl)",
].join('\n');

// Makes a file (0666), a directory (0777) and a FIFO (0666) in argv[1] with umask 0.
const make = [
  'import os, sys',
  'os.umask(0)',
  'd = sys.argv[1]',
  'os.close(os.open(d + "/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))',
  'os.mkdir(d + "/d", 0o777)',
  'os.mkfifo(d + "/p", 0o666)',
].join('\n');

if (!skipWithoutPythonMount('test/native/mount-create-mode-acl-review.test.ts')) {
  t.test("files made through the mount under a default ACL have the backing directory's mode", async (t) => {
    const { backing, mnt } = await pythonMount(t, 'locksmith-create-mode-acl-');
    mkdirSync(join(backing, 'via'));
    mkdirSync(join(backing, 'local'));
    const acl = spawnSync('python3', ['-c', setAcl, join(backing, 'via')]);
    const acl2 = spawnSync('python3', ['-c', setAcl, join(backing, 'local')]);
    if (acl.status !== 0 || acl2.status !== 0) {
      if (process.env.CI) t.fail('the backing fs takes no default ACL');
      return t.skip('the backing fs takes no default ACL');
    }
    t.equal(spawnSync('python3', ['-c', make, join(backing, 'local')]).status, 0, 'made on the backing directory itself');
    t.equal(spawnSync('python3', ['-c', make, join(mnt, 'via')]).status, 0, 'made through the mount');
    const modeOf = (p: string) => (statSync(p).mode & 0o7777).toString(8);
    for (const [name, local] of [
      ['f', '640'],
      ['d', '750'],
      ['p', '640'],
    ] as const) {
      t.equal(modeOf(join(backing, 'local', name)), local, `${name}: ${local} made on the backing directory (its default ACL)`);
      t.equal(modeOf(join(backing, 'via', name)), local, `${name}: ${local} made through the mount, as on the backing directory`);
    }
  });
}
