/**
 * open(O_RDONLY | O_CREAT | O_TRUNC, 0444) of a new name through a mount whose server may not
 * write a file mode 0444 (a daemon that is not root, or root without CAP_DAC_OVERRIDE): Linux
 * makes the file and neither truncates it nor checks write permission on it (do_open, FMODE_CREATED).
 * The passthrough's CREATE opened the file without O_TRUNC (to check it against the I/O fence
 * first), then truncated it through a writable reopen, which failed with EACCES after the file
 * was made. Now a file the CREATE made (O_EXCL) is not truncated.
 *
 * The CI runs as root: the server here drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH itself
 * (setpriv --bounding-set), so root's writes follow the modes as a non-root daemon's would; the
 * test checks that first (a mode 0444 file cannot be opened for writing through the mount).
 * Skips only outside CI when a mount or setpriv cannot work here, saying why.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseUnavailable } from '../../src/mount.js';
import { Server } from './cli-proc.js';
import { forceUnmount, mountEnvironmentMissing, mounted } from './proc.js';

const NO_DAC = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search'];
const noSetpriv = (() => {
  try {
    execFileSync(NO_DAC[0]!, [...NO_DAC.slice(1), 'true'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'no setpriv able to drop CAP_DAC_OVERRIDE (util-linux)';
  }
})();

const why = fuseUnavailable() ?? mountEnvironmentMissing() ?? noSetpriv;
if (why !== undefined && !process.env.CI) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING test/native/mount-create-trunc.test.ts: ${why}\n!! (in CI, with CI set, this is a failure)\n${bar}\n`);
  t.plan(0, `FUSE or setpriv unavailable: ${why}`);
} else {
  t.test('CREATE with O_RDONLY | O_TRUNC and mode 0444 by a server that may not write the file it made', async (t) => {
    if (why !== undefined) t.fail(`FUSE and setpriv are required in CI but unavailable: ${why}`);
    const base = mkdtempSync(join(tmpdir(), 'locksmith-create-trunc-'));
    const backing = join(base, 'backing');
    const mnt = join(base, 'mnt');
    mkdirSync(backing);
    mkdirSync(mnt);
    writeFileSync(join(backing, 'ro'), 'kept');
    execFileSync('chmod', ['0444', join(backing, 'ro')]);
    const server = new Server([backing, mnt, '--workers', '1'], {}, NO_DAC);
    t.teardown(() => {
      if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
      forceUnmount(mnt);
      rmSync(base, { recursive: true, force: true });
    });
    await server.serving();

    // The server follows the modes: a mode 0444 file is not opened for writing through the mount.
    t.throws(() => openSync(join(mnt, 'ro'), constants.O_WRONLY), { code: 'EACCES' }, 'the server may not write a mode 0444 file');

    let fd = -1;
    t.doesNotThrow(() => {
      fd = openSync(join(mnt, 'new-rdonly'), constants.O_RDONLY | constants.O_CREAT | constants.O_TRUNC, 0o444);
    }, 'open(O_RDONLY | O_CREAT | O_TRUNC, 0444) of a new name succeeds, as on Linux');
    if (fd >= 0) closeSync(fd);
    const made = statSync(join(backing, 'new-rdonly'));
    t.equal(made.mode & 0o777, 0o444, 'the file is made, mode 0444');
    t.equal(made.size, 0, 'and empty');

    fd = -1;
    t.doesNotThrow(() => {
      fd = openSync(join(mnt, 'new-wronly'), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o444);
    }, 'open(O_WRONLY | O_CREAT | O_TRUNC, 0444) of a new name succeeds');
    if (fd >= 0) {
      writeSync(fd, 'data');
      closeSync(fd);
    }
    t.equal(readFileSync(join(backing, 'new-wronly'), 'utf8'), 'data', 'and writes through its descriptor');

    t.throws(() => openSync(join(mnt, 'ro'), constants.O_RDONLY | constants.O_CREAT | constants.O_EXCL, 0o444), { code: 'EEXIST' }, 'O_EXCL on an existing name: EEXIST');
    t.equal(readFileSync(join(backing, 'ro'), 'utf8'), 'kept', 'the existing file untouched');

    server.proc.kill('SIGTERM');
    t.match(await server.ended(), { code: 0 }, 'the server unmounted and exited');
    t.notOk(mounted(mnt), 'the mount is gone');
  });
}
