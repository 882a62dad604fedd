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
 *
 * Row 6's architecture floor (the hot file with no lock rules): `{ i, op: 'hlock', keys, me }` runs
 * HOT_LOCK (answered `{ i, r }`: 1 held, 0 queued), `{ i, op: 'hunlock', keys, prefix }` runs
 * HOT_UNLOCK (answered `{ i }`), `{ i, op: 'harm', key }` starts this node's stream reader (XREAD
 * BLOCK 0 from the start of the stream, which the bench deleted before the round, on a third
 * connection; answered `{ i }`; each entry read is posted as `{ hot: owner }`), `{ i, op: 'hend',
 * key }` XADDs an end mark to that stream and answers `{ i }` once the reader has read it and stopped.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

type In = {
  i: number;
  op: 'eval' | 'xadd' | 'xarm' | 'hlock' | 'hunlock' | 'harm' | 'hend' | 'quit';
  key?: string;
  tag?: number;
  keys?: [string, string];
  me?: string;
  prefix?: string;
};

/**
 * Row 6's floor, lock: KEYS holder, queue; ARGV me ("node|owner"). The holder key empty: it becomes
 * me, 1; else me at the queue's tail, 0.
 */
const HOT_LOCK = `if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 0`;

/**
 * Row 6's floor, unlock: KEYS holder, queue; ARGV the streams' prefix. The queue's head, if any,
 * becomes the holder and its owner goes to its node's stream (prefix .. node); else the holder key
 * goes.
 */
const HOT_UNLOCK = `local w = redis.call('LPOP', KEYS[2])
if not w then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], w)
local bar = string.find(w, '|', 1, true)
redis.call('XADD', ARGV[1] .. string.sub(w, 1, bar - 1), '*', 'o', string.sub(w, bar + 1))
return 1`;

const port = parentPort!;
const { url, pid } = workerData as { url: string; pid: number };

async function connect(name: string): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true, connectionName: name, maxRetriesPerRequest: null, enableAutoPipelining: false });
  await r.connect();
  return r;
}

const bare = await connect(`bench-thread-${pid}`);
const reader = await connect(`bench-thread-xread-${pid}`);
const hotReader = await connect(`bench-thread-hot-${pid}`);
const sha = (await bare.script('LOAD', 'return 1')) as string;
const lockSha = (await bare.script('LOAD', HOT_LOCK)) as string;
const unlockSha = (await bare.script('LOAD', HOT_UNLOCK)) as string;

/** Row 6's floor: reads `key` from its start until the end mark, each owner's entry posted as it comes. */
async function hotRead(key: string): Promise<void> {
  let last = '0-0';
  for (;;) {
    const r = (await hotReader.xread('BLOCK', 0, 'STREAMS', key, last)) as [string, [string, string[]][]][] | null;
    for (const [id, f] of r?.[0]?.[1] ?? []) {
      last = id;
      if (f[0] === 'end') return;
      port.postMessage({ hot: Number(f[1]) });
    }
  }
}
let hotDone: Promise<void> | undefined;

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
    case 'hlock':
      void bare.evalsha(lockSha, 2, ...m.keys!, m.me!).then((r) => port.postMessage({ i: m.i, r }));
      return;
    case 'hunlock':
      void bare.evalsha(unlockSha, 2, ...m.keys!, m.prefix!).then(() => port.postMessage({ i: m.i }));
      return;
    case 'harm':
      hotDone = hotRead(m.key!);
      port.postMessage({ i: m.i });
      return;
    case 'hend':
      void bare
        .xadd(m.key!, '*', 'end', '1')
        .then(() => hotDone)
        .then(() => port.postMessage({ i: m.i }));
      return;
    case 'quit':
      bare.disconnect();
      reader.disconnect();
      hotReader.disconnect();
      port.postMessage({ i: m.i });
      port.close();
      return;
  }
});
port.postMessage({ ready: true });
