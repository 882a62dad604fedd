// Public API under concurrency, model = the reference model of model.ts run serially in the order the calls reached the coordinator; invariant: concurrent calls from many owners over several files on 2 workers, interleaved by fc.scheduler, complete with exactly the results (and leave exactly the locks() listing) of that serial order, which is consistent with every file's arrival order.
import t from 'tap';
import fc from 'fast-check';
import { LockCoordinator, F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK, type PosixReply } from '../src/index.js';
import { routeOf } from '../src/wire/route.js';
import { RefModel } from './model.js';
import { entryLine, normReply, runs } from './harness.js';

type Method = 'lockFile' | 'unlockFile' | 'lock' | 'flush' | 'release' | 'closeHandle';
interface Cmd {
  readonly method: Method;
  readonly file: number;
  readonly input: Record<string, unknown>;
}

const FILES = 2;
// Small ranges over few bytes and few owners: most calls meet another owner's lock.
const range = fc.record({ start: fc.integer({ min: 0, max: 3 }), len: fc.integer({ min: 0, max: 3 }) });

// Classic POSIX requests never wait here (F_SETLK only): a cross-worker EDEADLK is decided where
// the cycle closes at the coordinator, so its victim may differ from the serial model's;
// test/api/deadlock.test.ts covers those cycles deterministically.
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ file: fc.nat(FILES - 1), r: range, excl: fc.boolean(), fail: fc.boolean(), handle: fc.constantFrom(1, 2, 3) }).map(
    ({ file, r, excl, fail, handle }): Cmd => ({
      method: 'lockFile',
      file,
      input: { byteOffset: r.start, length: r.len, exclusiveLock: excl, failImmediately: fail, handle },
    }),
  ) },
  { weight: 2, arbitrary: fc.record({ file: fc.nat(FILES - 1), r: range, handle: fc.constantFrom(1, 2, 3) }).map(
    ({ file, r, handle }): Cmd => ({ method: 'unlockFile', file, input: { byteOffset: r.start, length: r.len, handle } }),
  ) },
  { weight: 1, arbitrary: fc.record({ file: fc.nat(FILES - 1), handle: fc.constantFrom(1, 2, 3) }).map(({ file, handle }): Cmd => ({ method: 'closeHandle', file, input: { handle } })) },
  { weight: 6, arbitrary: fc
    .record({
      file: fc.nat(FILES - 1),
      r: range,
      type: fc.constantFrom(F_RDLCK, F_WRLCK, F_UNLCK),
      kind: fc.constantFrom('posix', 'ofd', 'flock'),
      wait: fc.boolean(),
      getlk: fc.boolean(),
      owner: fc.constantFrom(1, 2, 3),
    })
    .map(({ file, r, type, kind, wait, getlk, owner }): Cmd => {
      const cmdNo = getlk && type !== F_UNLCK ? F_GETLK : wait && kind !== 'posix' ? F_SETLKW : F_SETLK;
      return {
        method: 'lock',
        file,
        input: { lockType: type, lockStart: r.start, lockLen: r.len, cmd: cmdNo, lockOwner: owner, lockPid: 100 + owner, kind, fileHandle: 10 * owner + (kind === 'posix' ? 0 : 1) },
      };
    }) },
  { weight: 1, arbitrary: fc.record({ file: fc.nat(FILES - 1), owner: fc.constantFrom(1, 2, 3) }).map(({ file, owner }): Cmd => ({ method: 'flush', file, input: { lockOwner: owner } })) },
  { weight: 1, arbitrary: fc.record({ file: fc.nat(FILES - 1), owner: fc.constantFrom(1, 2, 3) }).map(({ file, owner }): Cmd => ({ method: 'release', file, input: { fileHandle: 10 * owner + 1, lockOwner: owner } })) },
);

function outOf(v: unknown): string {
  if (typeof v === 'number') return `code:${v}`;
  if (v === undefined) return 'void';
  return normReply(v as PosixReply);
}

t.test('concurrent API calls on 2 workers equal the model run in arrival order', async (t) => {
  const c = await LockCoordinator.start({ workers: 2 });
  t.teardown(() => c.stop());
  // Paths of each run are new, so runs never see each other; pick names that use both workers.
  let run = 0;
  const pathsOf = (n: number): string[] => {
    const out: string[] = [];
    for (let i = 0; out.length < FILES; i++) {
      const p = `/api${n}/f${i}`;
      if (out.length < 2 ? routeOf(p, 2) === out.length : true) out.push(p);
    }
    return out;
  };
  await fc.assert(
    fc.asyncProperty(fc.scheduler(), fc.array(cmd, { minLength: 6, maxLength: 24, size: 'max' }), async (s, cmds) => {
      const paths = pathsOf(run++);
      const inputs = cmds.map((x) => ({ ...x.input, [x.method === 'lock' || x.method === 'flush' || x.method === 'release' ? 'path' : 'fileName']: paths[x.file] }));
      const order: number[] = [];
      const results = new Map<number, string>();
      for (let i = 0; i < cmds.length; i++) {
        void s.schedule(Promise.resolve(i)).then(() => {
          order.push(i);
          const call = (c[cmds[i]!.method] as (x: unknown) => Promise<unknown>).call(c, inputs[i]);
          void call.then((v) => results.set(i, outOf(v)));
        });
      }
      await s.waitAll();
      // A checkIo per file travels behind every call to that file: once it answers, so has each of them.
      await Promise.all(paths.map((p) => c.checkIo({ fileName: p, handle: 0, byteOffset: 0, length: 0, write: false })));
      await Promise.all(paths.map((p) => c.checkIo({ fileName: p, handle: 0, byteOffset: 0, length: 1, write: false })));

      const m = new RefModel('default');
      const final = new Map<number, string>();
      const byWaiter = new Map<number, number>();
      const getlk = new Map<number, string[]>();
      for (const i of order) {
        m.events = [];
        const out = (m[cmds[i]!.method] as (x: unknown) => string | string[]).call(m, inputs[i]);
        if (Array.isArray(out)) getlk.set(i, out);
        else if (out.startsWith('pending:')) byWaiter.set(Number(out.slice(8)), i);
        else final.set(i, out);
        for (const e of m.events) final.set(byWaiter.get(e.id)!, e.out);
      }
      for (const i of order) {
        const real = results.get(i) ?? 'pending';
        const acceptable = getlk.get(i);
        if (acceptable !== undefined) {
          if (!acceptable.includes(real)) throw new Error(`call #${i} ${cmds[i]!.method}: ${real}, expected one of ${acceptable.join(' | ')}`);
        } else if (real !== (final.get(i) ?? 'pending')) {
          throw new Error(`call #${i} ${cmds[i]!.method} ${JSON.stringify(inputs[i], (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}: ${real}, model ${final.get(i) ?? 'pending'} (arrival order ${order.join(',')})`);
        }
      }
      for (const p of paths) {
        const all = await c.locks(p);
        const real = [...all.filter((e) => e.state === 'granted').map(entryLine).sort(), ...all.filter((e) => e.state === 'waiting').map(entryLine)];
        const model = m.snapshot(p);
        if (real.join('\n') !== model.join('\n')) throw new Error(`locks(${p}) differs\n  real:\n    ${real.join('\n    ')}\n  model:\n    ${model.join('\n    ')}`);
      }
    }),
    { numRuns: runs(150) },
  );
  t.pass('no counterexample');
});
