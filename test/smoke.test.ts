import t from 'tap';
import { LockTable, F_SETLK, F_WRLCK, F_RDLCK, EAGAIN } from '../src/index.js';

t.test('two owners conflict on a POSIX write lock', async (t) => {
  const table = new LockTable();
  const a = table.lock({ path: '/f', lockType: F_WRLCK, lockStart: 0, lockLen: 10, cmd: F_SETLK, lockOwner: 1 });
  t.match(a, { result: 0 });
  const b = table.lock({ path: '/f', lockType: F_RDLCK, lockStart: 5, lockLen: 10, cmd: F_SETLK, lockOwner: 2 });
  t.match(b, { result: -EAGAIN });
});
