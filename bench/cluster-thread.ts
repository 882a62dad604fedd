/**
 * The architecture floors of bench:cluster, run in a worker thread of a node process
 * (bench/cluster-node.ts starts it). A locksmith node answers every request from a worker thread
 * that holds the file's actor and its own engine connection, so no design with actors on worker
 * threads does a lock call in less than one message to a worker and one back around one engine
 * round trip. This thread does that and nothing else: its own ioredis connections, no decision,
 * no record, one postMessage in and one out per sample (messages as in FIELD-NOTES.md's "raw
 * postMessage" row).
 *
 * Messages in (from the node's main thread): `{ i, op: 'eval' }` (EVALSHA of `return 1`, answered
 * `{ i }`), `{ i, op: 'xadd', key }` (XADD, answered `{ i }`), `{ i, op: 'xarm', key, tag }` (XREAD
 * BLOCK 0 on its own connection, answered `{ i, name }` once armed and `{ xread: tag }` when it
 * returns), `{ i, op: 'quit' }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

type In = { i: number; op: 'eval' | 'xadd' | 'xarm' | 'quit'; key?: string; tag?: number };

const port = parentPort!;
const { url, pid } = workerData as { url: string; pid: number };

async function connect(name: string): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true, connectionName: name, maxRetriesPerRequest: null, enableAutoPipelining: false });
  await r.connect();
  return r;
}

const bare = await connect(`bench-thread-${pid}`);
const reader = await connect(`bench-thread-xread-${pid}`);
const sha = (await bare.script('LOAD', 'return 1')) as string;

port.on('message', (m: In) => {
  switch (m.op) {
    case 'eval':
      void bare.evalsha(sha, 0).then(() => port.postMessage({ i: m.i }));
      return;
    case 'xadd':
      void bare.xadd(m.key!, 'MAXLEN', '1000', '*', 'f', '1').then(() => port.postMessage({ i: m.i }));
      return;
    case 'xarm':
      void reader.xread('BLOCK', 0, 'STREAMS', m.key!, '$').then(() => port.postMessage({ xread: m.tag }));
      port.postMessage({ i: m.i, name: reader.options.connectionName });
      return;
    case 'quit':
      bare.disconnect();
      reader.disconnect();
      port.postMessage({ i: m.i });
      port.close();
      return;
  }
});
port.postMessage({ ready: true });
