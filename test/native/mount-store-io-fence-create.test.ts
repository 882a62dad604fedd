/**
 * The I/O fence covers open(O_CREAT | O_TRUNC) through the FUSE `create` op too. The kernel sends
 * CREATE, not OPEN, when its LOOKUP of the name found nothing: a name that appears between the two
 * (another node, or anything else, links or renames a file there on the shared storage) is opened
 * by `create`, O_TRUNC and all. If that file is one locked through the mount and the lease ran out,
 * it must not be truncated (passthrough.cc opCreate).
 *
 * That window cannot be opened on demand from outside the server, so the test makes it likely:
 * while the lease has run out, one process keeps making `y` a hard link of the locked file and
 * removing it again in the backing directory, and another opens `y` through the mount with
 * O_CREAT | O_TRUNC, up to ATTEMPTS times or until the locked file was truncated. Without the fence
 * in opCreate that happened within ten attempts in every run here; with it, not in 4,000.
 * Needs root, /dev/fuse, redis-server and python3; skipped (loudly) without them, a failure in CI.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { until } from './proc.js';
import { lockUntilFenced, oneStoreMount } from './store-mounts.js';

const TTL = 4000;
const ATTEMPTS = 4000;
const m = oneStoreMount('test/native/mount-store-io-fence-create.test.ts', 'locksmith-io-fence-create-', TTL, { locked: 'precious' });
if (m !== undefined) {
  const { backing, mnt } = m;

  t.test('open(O_CREAT | O_TRUNC) served by `create` does not truncate a locked file once the lease ran out', async (t) => {
    const y = JSON.stringify(join(mnt, 'y'));
    const bLocked = JSON.stringify(join(backing, 'locked'));
    const bTmp = JSON.stringify(join(backing, 'tmp'));
    const bY = JSON.stringify(join(backing, 'y'));
    const { p, lines } = lockUntilFenced(t, {
      locks: { fd: join(mnt, 'locked') },
      probe: 'fd',
      after: [
        // The racer (a child: no GIL shared with the opener): y appears (a link of the locked file,
        // renamed into place so that it replaces an empty y the opener created) and goes again.
        'racer = os.fork()',
        'if racer == 0:',
        '    while True:',
        '        try:',
        `            os.link(${bLocked}, ${bTmp}); os.rename(${bTmp}, ${bY}); os.unlink(${bY})`,
        '        except OSError:',
        '            pass',
        'counts = {}',
        'truncated = False',
        `for i in range(${ATTEMPTS}):`,
        '    try:',
        `        g = os.open(${y}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.close(g); k = "ok"`,
        '    except OSError as e:',
        '        k = str(e.errno)',
        '    counts[k] = counts.get(k, 0) + 1',
        `    if os.stat(${bLocked}).st_size != 8:`,
        '        truncated = True; break',
        'os.kill(racer, signal.SIGKILL); os.waitpid(racer, 0)',
        'print("attempts", sum(counts.values()), sorted(counts.items()), flush=True)',
        'print("truncated" if truncated else "intact", flush=True)',
      ],
    });
    await until('the lock through the mount', () => lines.includes('locked') || undefined);
    m.server.pause();
    await until('the fence (a write of the locked file refused)', () => lines.some((l) => l.startsWith('fenced')) || undefined, TTL);
    await until('the opens tried', () => lines.includes('end') || undefined);
    const size = readFileSync(join(backing, 'locked')).length;
    m.server.resume();
    p.stdin!.end();
    t.comment(lines.find((l) => l.startsWith('attempts')));
    t.ok(lines.includes('intact'), 'no open(O_CREAT | O_TRUNC) truncated the locked file');
    t.equal(size, 8, 'the backing file was not truncated while the lease ran out');
  });
}
