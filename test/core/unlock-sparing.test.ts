/**
 * LockTable.unlockSparing: a release that leaves its owner's (or handle's) locks over the spared
 * ranges as they are (a shared lock space: those bytes were granted to it after the release was
 * answered). A POSIX unlock, a flush (a notice per part it removes), a Windows unlockAll (it
 * keeps the newest lock with each spared range and mode) and a Windows unlockFile (a record of
 * its range other than the spared ones, or ERROR_NOT_LOCKED). Every check states the exact locks left
 * and the exact notices.
 */
import t from 'tap';
import { F_RDLCK, F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { LockTable } from '../../src/core/lock-table.js';
import { parseFlush, parseLock, parseLockFile, parseUnlockFile, type Call } from '../../src/core/requests.js';

const F = '/f';
type Sparing = Parameters<LockTable['unlockSparing']>[0];

function setup(): { table: LockTable; notices: string[] } {
  const notices: string[] = [];
  const table = new LockTable({
    now: () => 0,
    hooks: {
      released: (family, e) =>
        void notices.push(family === 'posix' ? `posix:${String(e.lockStart)}+${String(e.lockLen)}` : `windows:${String(e.handle)}:${String(e.key)}:${String(e.byteOffset)}+${String(e.length)}`),
    },
  });
  return { table, notices };
}

const lk = (owner: number, type: number, start: number, len: number): Call =>
  parseLock({ path: F, lockType: type, cmd: F_SETLK, lockOwner: owner, lockStart: start, lockLen: len }) as Call;
const win = (handle: number, start: number, len: number, exclusive: boolean, key = 0): Call =>
  parseLockFile({ fileName: F, byteOffset: start, length: len, exclusiveLock: exclusive, failImmediately: true, handle, processId: 1, key }) as Call;
const range = (start: number, end: number, write = true) => ({ start: BigInt(start), end: BigInt(end), write });

function listing(table: LockTable): string[] {
  return table.locks(F).map((l) => `${String(l.owner)} ${l.type} ${l.start}-${l.end}`);
}

t.test('a POSIX unlock leaves the spared ranges of its owner, and tells its own notice', (t) => {
  const { table, notices } = setup();
  table.run(lk(1, F_WRLCK, 0, 30));
  table.run(lk(2, F_RDLCK, 40, 10));
  t.match(table.unlockSparing(lk(1, F_UNLCK, 0, 30) as Sparing, [range(5, 9), range(20, 24)]), { result: 0 });
  t.same(listing(table), ['1 write 5-9', '1 write 20-24', '2 read 40-49']);
  t.same(notices, ['posix:0+30'], "the unlock's notice, as any unlock's");
  t.end();
});

t.test("a flush removes what its owner's locks have outside the spared ranges: a notice per part", (t) => {
  const { table, notices } = setup();
  table.run(lk(1, F_WRLCK, 0, 15));
  table.run(lk(1, F_RDLCK, 30, 5));
  table.run(lk(2, F_RDLCK, 40, 10));
  t.equal(table.unlockSparing(parseFlush({ path: F, lockOwner: 1 }) as Sparing, [range(5, 9)]), undefined);
  t.same(listing(table), ['1 write 5-9', '2 read 40-49'], "p1's [5,10) stays; p2's lock untouched");
  t.same(notices, ['posix:0+5', 'posix:10+5', 'posix:30+5'], 'one per part removed');
  t.end();
});

t.test('a flush whose spared range covers a lock whole leaves it, with no notice for it', (t) => {
  const { table, notices } = setup();
  table.run(lk(1, F_WRLCK, 5, 5));
  table.run(lk(1, F_WRLCK, 30, 5));
  table.unlockSparing(parseFlush({ path: F, lockOwner: 1 }) as Sparing, [range(0, 19)]);
  t.same(listing(table), ['1 write 5-9']);
  t.same(notices, ['posix:30+5']);
  t.end();
});

t.test("a Windows unlockAll keeps the handle's newest lock with each spared range and mode, and no other", (t) => {
  const { table, notices } = setup();
  t.equal(table.run(win(7, 0, 10, true)), 0);
  t.equal(table.run(win(7, 20, 10, false, 1)), 0);
  t.equal(table.run(win(7, 20, 10, false, 2)), 0);
  t.equal(table.run(win(8, 40, 10, true)), 0);
  const all = parseUnlockFile({ fileName: F, byteOffset: 2n ** 64n - 1n, length: 2n ** 64n - 1n, handle: 7, processId: 1 }) as Sparing;
  t.equal(table.unlockSparing(all, [range(20, 29, false), range(0, 9, false)]), 0);
    t.same(listing(table), ['7 shared 20-29', '8 exclusive 40-49'], 'the spared shared lock stays (not the exclusive one of that range: another mode)');
  t.same(notices.sort(), ['windows:7:0:0+10', 'windows:7:1:20+10'], 'a notice for each lock removed: the exclusive one, and the older shared one (key 1)');
  t.end();
});

t.test('only an unlock: anything else is a TypeError', (t) => {
  const { table } = setup();
  t.throws(() => table.unlockSparing(lk(1, F_WRLCK, 0, 10) as Sparing, []), TypeError);
  t.end();
});

t.test("a Windows unlockFile removes a record of its range other than the spared one, else answers ERROR_NOT_LOCKED", (t) => {
  const { table, notices } = setup();
  const unlock = (handle: number, start: number, len: number) => parseUnlockFile({ fileName: F, byteOffset: start, length: len, handle, processId: 1 }) as Sparing;
  t.equal(table.run(win(7, 0, 10, false)), 0);
  t.equal(table.run(win(7, 0, 10, false)), 0, 'a second shared record of the same range');
  t.equal(table.unlockSparing(unlock(7, 0, 10), [range(0, 9, false)]), 0, 'one record of the range is not spared: removed');
  t.same(listing(table), ['7 shared 0-9'], 'the spared one (the newest) stays');
  t.equal(table.unlockSparing(unlock(7, 0, 10), [range(0, 9, false)]), 158, 'only the spared record is left: ERROR_NOT_LOCKED');
  t.same(listing(table), ['7 shared 0-9'], 'and it stays');
  t.equal(table.unlockSparing(unlock(8, 0, 10), [range(0, 9, false)]), 158, 'another handle holds nothing there');
  t.same(notices, ['windows:7:0:0+10'], 'a notice for the one record removed');
  t.end();
});
