/**
 * The worker's native journal (src/actors/native-journal.ts). It sends the caller's journal the
 * commits of native requests, once per wake-up: a file still held gets its records, in commit order,
 * each as the API call it stands for; a file idle by then gets one R_IDLE, and only when the
 * caller may hold a journal for it (something was sent for it, or an API answer left it held, and
 * no idle mark since). Here `held` stands in for the worker's table.
 */
import t from 'tap';
import { F_SETLK, F_UNLCK, F_WRLCK } from '../../src/core/codes.js';
import { NativeJournal } from '../../src/actors/native-journal.js';
import { decodeCall, encodeCall, lockFlagsOf } from '../../src/wire/calls.js';
import { ReplyWriter, readReplies } from '../../src/wire/replies.js';

function setup() {
  const held = new Set<string>();
  const seen: string[] = [];
  const out = new ReplyWriter((b) =>
    readReplies(b, {
      journal: (path, wire) => {
        const c = decodeCall(wire, 0);
        seen.push(`journal ${path} ${c.op}${c.op === 'lock' ? ` ${c.lockType}` : ''}`);
      },
      idle: (path) => seen.push(`idle ${path}`),
      result: () => seen.push('result'),
      getlk: () => seen.push('getlk'),
      queued: () => seen.push('queued'),
      message: () => seen.push('message'),
    }),
  );
  const j = new NativeJournal(out, (p) => held.has(p));
  const lock = (path: string, type: number) => j.lock(path, lockFlagsOf(F_SETLK, type, 'posix'), 7, 70, 0, 10, 3);
  return { held, seen, j, lock };
}

t.test('a held file sends its records, in commit order, at send() and not before', async (t) => {
  const { held, seen, j, lock } = setup();
  held.add('/a');
  lock('/a', F_WRLCK);
  j.call(encodeCall('flush', 0, { path: '/a', lockOwner: 8 }));
  t.strictSame(seen, [], 'nothing leaves before the wake-up ends');
  j.send();
  t.strictSame(seen, [`journal /a lock ${F_WRLCK}`, 'journal /a flush'], 'both records, in order');
  j.send();
  t.equal(seen.length, 2, 'a send with nothing recorded sends nothing');
});

t.test('a file idle by the end of the wake-up: one R_IDLE if the caller may hold its journal, else nothing', async (t) => {
  const { held, seen, j, lock } = setup();
  // Locked and unlocked within one wake-up, never sent before: the caller holds nothing for it.
  lock('/b', F_WRLCK);
  lock('/b', F_UNLCK);
  j.send();
  t.strictSame(seen, [], 'a lock and its unlock in one wake-up cost the caller nothing');

  // Sent while held, then idle in a later wake-up: the caller's journal must go.
  held.add('/c');
  lock('/c', F_WRLCK);
  j.send();
  held.delete('/c');
  lock('/c', F_UNLCK);
  j.send();
  t.strictSame(seen, [`journal /c lock ${F_WRLCK}`, 'idle /c'], 'its records, then one idle mark');
  lock('/c', F_UNLCK);
  j.send();
  t.equal(seen.length, 2, 'no second idle mark for a file already marked');
});

t.test('API answers and restores tell it which files the caller keeps a journal for', async (t) => {
  const { seen, j, lock } = setup();
  j.replied('/d', false); // an API answer left /d held: the caller journals it
  lock('/d', F_UNLCK); // a native unlock empties it
  j.adopt('/e'); // restored after a crash: the caller holds its journal
  lock('/e', F_UNLCK);
  j.replied('/f', true); // an API answer left /f idle: the caller dropped its journal
  lock('/f', F_UNLCK);
  j.send();
  t.strictSame(seen, ['idle /d', 'idle /e'], 'idle marks for /d and /e, none for /f');
});
