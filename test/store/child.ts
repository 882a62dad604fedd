/**
 * A node in its own process (test support). argv[2] is JSON { url, namespace, node, sessionTtlMs,
 * tuning }. It opens a store, prints {"ready": epoch}, then runs one JSON command per stdin line
 * and prints one JSON reply per line; hook events are printed as {"session": ...} and
 * {"events": [...]}. Commands: commit (a Step), load, reap, incr (a read-modify-write counter
 * loop that retries on stale), close.
 */
import { createInterface } from 'node:readline';
import { openStore, type Step } from '../../src/store/index.js';

const cfg = JSON.parse(process.argv[2]!) as { url: string; namespace: string; node: string; sessionTtlMs: number; tuning?: Record<string, number> };
const out = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);

const store = await openStore(
  { url: cfg.url, namespace: cfg.namespace, node: cfg.node, sessionTtlMs: cfg.sessionTtlMs, requestTimeoutMs: 10_000 },
  {
    onSession: (e) => out({ session: e }),
    onEvents: (es) => out({ events: es }),
  },
  cfg.tuning ?? {},
);
out({ ready: store.session().epoch });

/** n read-modify-write increments of one counter record, each a step decided on a (possibly stale) copy. */
async function incr(file: string, n: number): Promise<{ stale: number }> {
  let st = await store.load(file);
  let stale = 0;
  for (let i = 0; i < n; ) {
    const cur = st.records.find((r) => r.id === 'counter');
    const value = cur === undefined ? 0 : Number(cur.data);
    const r = await store.commit({
      file,
      base: st.version,
      remove: cur === undefined ? [] : ['counter'],
      put: [{ id: 'counter', state: 'held', data: String(value + 1) }],
    });
    if (r.ok) {
      i++;
      st = { version: r.version, records: [{ id: 'counter', node: cfg.node, epoch: store.session().epoch, state: 'held', requestId: '', data: String(value + 1), seq: 0 }] };
    } else if (r.reason === 'stale') {
      stale++;
      st = r.records !== undefined ? { version: r.version, records: r.records } : await store.load(file);
    } else {
      throw new Error(`incr: ${JSON.stringify(r)}`);
    }
  }
  return { stale };
}

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as { op: string; step?: Step; file?: string; n?: number };
  try {
    if (cmd.op === 'commit') out({ reply: await store.commit(cmd.step!) });
    else if (cmd.op === 'load') out({ reply: await store.load(cmd.file!) });
    else if (cmd.op === 'reap') out({ reply: await store.reap() });
    else if (cmd.op === 'incr') out({ reply: await incr(cmd.file!, cmd.n!) });
    else if (cmd.op === 'session') out({ reply: store.session() });
    else if (cmd.op === 'close') {
      await store.close();
      out({ reply: 'closed' });
      break;
    }
  } catch (e) {
    out({ error: (e as Error).message });
  }
}
process.exit(0);
