/**
 * Review of issue 13's native owed releases (mount-store-owed-crash.test.ts covers a POSIX close; both run owed-mount.ts's scenario):
 * the other native releases answered owed while the engine is paused, their worker killed before the
 * engine has them. A flock close (release with the flock owner), an explicit flock unlock, a POSIX
 * unlock of part of a range (the resent wire form must carry the exact range), and a close whose
 * worker is killed twice (the replacement dies too, before the engine resumes). In each, another
 * node then sees exactly what the process let go of.
 */
import t from 'tap';
import { EAGAIN, F_SETLK, F_SETLKW, F_WRLCK, type LockCoordinator } from '../../src/index.js';
import { settles } from '../api/helpers.js';
import { owedScenario as scenario, owedWhy as why } from './owed-mount.js';

if (why !== undefined && !process.env.CI) {
  console.error(`\n!! SKIPPING mount-store-owed-kinds-review: ${why} (in CI, with CI set, this is a failure)\n`);
  t.plan(0, `FUSE or redis-server unavailable: ${why}`);
} else {
  const lockB = (b: LockCoordinator, key: string, start: number, len: number, cmd: number, kind?: 'flock') =>
    b.lock({ path: key, lockType: F_WRLCK, lockStart: start, lockLen: len, cmd, lockOwner: 77, lockPid: 77, ...(kind ? { kind } : {}) });

  t.test('a flock close answered owed, its worker killed: another node gets the flock', async (t) => {
    await scenario(t, {
      take: ['fcntl.flock(fd, fcntl.LOCK_EX)'],
      release: ['os.close(fd)'],
      crashes: 1,
      check: async (t, b, key) => {
        const g = await settles(lockB(b, key, 0, 0, F_SETLKW, 'flock'), "b's waiting flock");
        t.equal(g.result, 0, "b's flock is granted: the flock release was resent");
      },
    });
  });

  t.test('a flock unlock answered owed, its worker killed: another node gets the flock', async (t) => {
    await scenario(t, {
      take: ['fcntl.flock(fd, fcntl.LOCK_EX)'],
      release: ['fcntl.flock(fd, fcntl.LOCK_UN)'],
      crashes: 1,
      check: async (t, b, key) => {
        const g = await settles(lockB(b, key, 0, 0, F_SETLKW, 'flock'), "b's waiting flock");
        t.equal(g.result, 0, "b's flock is granted: the flock unlock was resent");
      },
    });
  });

  t.test('a POSIX unlock of part of a range answered owed, its worker killed: exactly that part is free', async (t) => {
    await scenario(t, {
      take: ['fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)'],
      release: ['fcntl.lockf(fd, fcntl.LOCK_UN, 10, 10)'],
      crashes: 1,
      check: async (t, b, key) => {
        const g = await settles(lockB(b, key, 10, 10, F_SETLKW), "b's waiting lock of [10,20)");
        t.equal(g.result, 0, 'b gets the unlocked bytes [10,20)');
        t.equal((await lockB(b, key, 9, 1, F_SETLK)).result, -EAGAIN, 'byte 9 is still held by the process');
        t.equal((await lockB(b, key, 20, 1, F_SETLK)).result, -EAGAIN, 'byte 20 is still held by the process');
      },
    });
  });

  t.test('a close answered owed, its worker killed and then its replacement too: another node is granted', async (t) => {
    await scenario(t, {
      take: ['fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)'],
      release: ['os.close(fd)'],
      crashes: 2,
      check: async (t, b, key) => {
        const g = await settles(lockB(b, key, 0, 0, F_SETLKW), "b's waiting lock");
        t.equal(g.result, 0, 'b is granted: the close was resent to both replacements');
      },
    });
  });

  t.test('a close answered owed, then a new lock of the same process waiting, the worker killed: the resent close runs first', async (t) => {
    await scenario(t, {
      take: ['fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)'],
      after: 'closed',
      release: ['os.close(fd)', 'print("closed", flush=True)', 'fd = os.open(FILE, os.O_RDWR)', 'while True:', '  try:', '    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)', '    break', '  except OSError as e:', '    print("retry:", e, flush=True)'],
      // Long enough that the new lock, redelivered to the replacement, may still be granted there.
      timeoutMs: 3000,
      crashes: 1,
      check: async (t, b, key) => {
        t.equal((await lockB(b, key, 0, 10, F_SETLK)).result, -EAGAIN, "the process's new lock of [0,10) is held (the resent close did not drop it)");
        const g = await settles(lockB(b, key, 10, 10, F_SETLKW), "b's waiting lock of [10,20)");
        t.equal(g.result, 0, 'b gets [10,20): the close released the old lock');
      },
    });
  });

  t.test('many closes answered owed on both workers, every worker killed twice: another node gets every file', async (t) => {
    await scenario(t, {
      more: 7,
      take: ['for x in fds: fcntl.lockf(x, fcntl.LOCK_EX, 0, 0)', 'fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)', 'fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)'],
      release: ['for x in fds: os.close(x)'],
      all: true,
      crashes: 2,
      check: async (t, b, _key, keys) => {
        const got = await settles(Promise.all(keys.map((k) => lockB(b, k, 0, 0, F_SETLKW))), "b's waiting locks of every file");
        t.same(got.map((g) => g.result), keys.map(() => 0), 'b is granted every file: every close was resent and written');
      },
    });
  });

  t.test('a close answered owed, its worker killed, then the mount unmounted while the engine is paused: the unmount ends, another node is granted', async (t) => {
    await scenario(t, {
      take: ['fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)'],
      release: ['os.close(fd)'],
      crashes: 1,
      during: async (m) => {
        await settles(m.unmount(), 'the unmount with the engine paused and a close owed');
        t.pass('the unmount ended');
        return true;
      },
      check: async (t, b, key) => {
        const g = await settles(lockB(b, key, 0, 0, F_SETLKW), "b's waiting lock");
        t.equal(g.result, 0, "b is granted once the engine resumed (the close written, or the node's session ended)");
      },
    });
  });

  t.test("a close answered owed, its worker killed, the node's session lost meanwhile: another node is granted, nothing stays owed", async (t) => {
    await scenario(t, {
      take: ['fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)'],
      release: ['os.close(fd)'],
      crashes: 1,
      ttlMs: 1500,
      // Paused longer than the TTL (a close's requestTimeoutMs and a worker's restart): the engine
      // expires the session on its wall clock as it resumes, before the node renews it.
      check: async (t, b, key) => {
        const g = await settles(lockB(b, key, 0, 0, F_SETLKW), "b's waiting lock");
        t.equal(g.result, 0, 'b is granted');
      },
    });
  });
}
