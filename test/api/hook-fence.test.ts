/**
 * Hook events carry `fence` (API.md, "Fencing"): a number that grows with every grant on the file,
 * for applications that write to storage of their own. Without a store the coordinator's workers
 * number grants themselves (LockTable's counter: the wall clock in µs, or one past the last):
 * every approval event says what its grant will hold, a release event the fence of the lock it
 * released, and a replaced worker numbers on past its predecessor's grants (the journal's locks it
 * takes back get numbers of its own: a release then says the later one).
 */
import t from 'tap';
import { F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, LockCoordinator, LockTable, type LockEvent, type LockFileEvent, type UnlockFileEvent } from '../../src/index.js';
import { routeOf } from '../../src/wire/route.js';

t.test('a coordinator: fences grow with every grant on a file, releases carry the lock’s own, across a replaced worker', async (t) => {
  const posix: LockEvent[] = [];
  const win: LockFileEvent[] = [];
  const unwin: UnlockFileEvent[] = [];
  // Release events come through the hooks' own channel, not always before the unlock's answer.
  let heard: () => void = () => {};
  const heardOf = async <T>(what: () => T | undefined): Promise<T> => {
    for (;;) {
      const v = what();
      if (v !== undefined) return v;
      await new Promise<void>((r) => (heard = r));
    }
  };
  const c = await LockCoordinator.start({
    workers: 2,
    onLock: (e) => {
      posix.push(e);
      heard();
    },
    onLockFile: (e) => {
      win.push(e);
      heard();
    },
    onUnlockFile: (e) => {
      unwin.push(e);
      heard();
    },
  });
  t.teardown(() => c.stop());
  const set = (owner: number, lockType: number, cmd = F_SETLK) => c.lock({ path: '/f', lockType, lockStart: 0, lockLen: 10, cmd, lockOwner: owner });
  t.equal((await set(1, F_WRLCK)).result, 0, 'owner 1 writes [0,10)');
  const waiter = set(2, F_WRLCK, F_SETLKW);
  // Owner 2 waits (its F_SETLK twin fails while 1 holds the bytes).
  t.equal((await set(3, F_WRLCK)).result, -11, 'owner 3 is refused EAGAIN: 1 holds the bytes');
  t.equal((await set(1, F_UNLCK)).result, 0, 'owner 1 unlocks');
  t.equal((await waiter).result, 0, "owner 2's waiter is granted");
  await c.crashWorker(routeOf('/f', 2));
  t.equal((await set(2, F_UNLCK)).result, 0, 'owner 2 unlocks (through the replacement worker)');
  t.equal((await set(4, F_WRLCK)).result, 0, 'owner 4 writes [0,10) (a grant of the replacement)');
  const sets = posix.filter((e) => e.lockType === F_WRLCK);
  t.same(sets.map((e) => e.lockOwner), [1, 2, 4], 'approvals: owner 1, the woken waiter 2, owner 4 (3 found the bytes taken: no approval)');
  const fences = sets.map((e) => e.fence);
  t.ok(fences.every((f) => typeof f === 'number' && Number.isSafeInteger(f) && f > 0), `each approval carries a fence (${fences.join(', ')})`);
  t.ok(fences[0]! < fences[1]! && fences[1]! < fences[2]!, 'each grant on the file a larger one, the replaced worker’s too');
  const unlocks = await heardOf(() => {
    const u = posix.filter((e) => e.lockType === F_UNLCK);
    return u.length >= 2 ? u : undefined;
  });
  t.same(unlocks.map((e) => e.lockOwner), [1, 2], 'two releases');
  t.equal(unlocks[0]!.fence, fences[0], "owner 1's release carries its lock's fence");
  // The replacement re-grants the journal's locks under numbers of its own: no smaller.
  t.ok(unlocks[1]!.fence! >= fences[1]! && unlocks[1]!.fence! < fences[2]!, "owner 2's release (a lock re-granted by the replacement): its approval's fence or a later one, below the next grant's");
  t.equal(await c.lockFile({ fileName: '/w', byteOffset: 0, length: 1, exclusiveLock: true, failImmediately: true, handle: 1 }), 0, 'a Windows grant');
  t.equal(await c.unlockFile({ fileName: '/w', byteOffset: 0, length: 1, handle: 1 }), 0, 'and its unlock');
  t.type(win[0]?.fence, 'number', 'onLockFile carries a fence');
  t.equal((await heardOf(() => unwin[0]))?.fence, win[0]?.fence, 'onUnlockFile the same');
});

t.test('a LockTable: a veto spends its fence, a split keeps it, an unlock of nothing says 0', async (t) => {
  const events: Record<string, unknown>[] = [];
  let veto = false;
  const table = new LockTable({
    hooks: {
      approve: (_family, e) => {
        events.push({ ...e });
        return veto ? -13 : 0;
      },
      released: (_family, e) => void events.push({ ...e }),
    },
  });
  const lock = (owner: number, lockType: number, start: number, len: number) => table.lock({ path: 'p', lockType, lockStart: start, lockLen: len, cmd: F_SETLK, lockOwner: owner });
  t.equal(lock(1, F_WRLCK, 0, 30).result, 0, 'owner 1 writes [0,30)');
  const first = events[0]!.fence as number;
  veto = true;
  t.equal(lock(2, F_WRLCK, 40, 10).result, -13, 'owner 2 vetoed');
  veto = false;
  t.equal(lock(1, F_UNLCK, 10, 10).result, 0, 'owner 1 unlocks [10,20): its lock splits');
  t.equal(events.at(-1)!.fence, first, "the unlock's notice: the split lock's fence");
  t.equal(lock(1, F_UNLCK, 20, 10).result, 0, 'owner 1 unlocks [20,30)');
  t.equal(events.at(-1)!.fence, first, 'the split-off piece keeps it');
  t.equal(lock(5, F_UNLCK, 0, 10).result, 0, 'owner 5 unlocks what it never held');
  t.equal(events.at(-1)!.fence, 0, 'its notice says 0');
  t.equal(lock(3, F_WRLCK, 10, 10).result, 0, 'owner 3 writes [10,20)');
  t.ok((events.at(-1)!.fence as number) > (events[1]!.fence as number) && (events[1]!.fence as number) > first, 'the vetoed request spent a number between');
  t.equal(new LockTable().lock({ path: 'p', lockType: F_WRLCK, lockStart: 0, lockLen: 1, cmd: F_SETLK, lockOwner: 1 }).result, 0, 'a table without hooks numbers nothing (no event to carry it)');
});
