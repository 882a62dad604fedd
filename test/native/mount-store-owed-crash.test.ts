/**
 * Issue 13 through a mount: a close answered early (owed: the engine paused, so its step cannot be
 * written within requestTimeoutMs) whose worker then dies before the engine has it. The kernel was
 * told the locks are gone; the engine still holds them under the node's live session. The caller's
 * side must send the release again to the replacement worker, as it does for the API's owed
 * releases, so that another node's waiter is granted without waiting for the node's session to end
 * (the mount lives on: without the resend that waiter waits until the unmount).
 */
import t from 'tap';
import { F_SETLKW, F_WRLCK } from '../../src/index.js';
import { settles, waitFor } from '../api/helpers.js';
import { owedOf, owedScenario, owedWhy as why } from './owed-mount.js';

if (why !== undefined && !process.env.CI) {
  console.error(`\n!! SKIPPING mount-store-owed-crash: ${why} (in CI, with CI set, this is a failure)\n`);
  t.plan(0, `FUSE or redis-server unavailable: ${why}`);
} else {
  t.test("a close answered owed through a mount, its worker killed before the engine has it: another node's waiter is granted", async (t) => {
    // The node's session lives on throughout (owedScenario checks it: else its locks would go
    // with it, written or not): its TTL is a minute, past the pause's requestTimeoutMs and restart.
    await owedScenario(t, {
      take: ['fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)'],
      release: ['os.close(fd)'],
      crashes: 1,
      during: async (m) => {
        const counted = async () => {
          const ops = (await m.coordinator.stats()).operations;
          return Object.values(ops.flush ?? {}).reduce((n, k) => n + k, 0) >= 1 && Object.values(ops.release ?? {}).reduce((n, k) => n + k, 0) >= 1;
        };
        t.ok(await waitFor(counted, "the mount's flush and release answered"), 'flush and release answered before their steps were written');
        t.ok(owedOf(m.coordinator).size >= 1, "the caller's side still keeps the mount's releases answered owed after the worker died");
        return false;
      },
      check: async (t, b, key, _keys, m) => {
        const granted = b.lock({ path: key, lockType: F_WRLCK, lockStart: 0, lockLen: 0, cmd: F_SETLKW, lockOwner: 77, lockPid: 77 });
        t.equal((await settles(granted, "node b's waiting lock of the file the process closed")).result, 0, 'b is granted: the close was sent again to the replacement and written');
        t.match(await b.locks(key), [{ node: 'b', state: 'granted' }], 'only b holds the file');
        const ops = (await m!.coordinator.stats()).operations;
        t.same([ops.flush, ops.release], [{ 0: 1 }, { 0: 1 }], 'the flush and the release counted once each (not again when resent)');
      },
    });
  });
}
