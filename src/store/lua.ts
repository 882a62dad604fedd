/**
 * The Redis engine's scripts. Each runs atomically in one round trip (EVALSHA; ./redis.ts sends
 * them, after a run check where the engine may be a new server process: RUN). They store and check; they decide no lock: the checks are the session, the
 * version, record ownership, liveness of the sessions a step writes for, the grace period, and the
 * wait-for cycle search (a graph walk, not a lock rule). Each takes its decisions in the same
 * order as the matching method of MemoryEngine (./memory.ts), the reference.
 *
 * KEYS[1] is always `{ns}:inc`; ARGV[1] is the key prefix `{ns}:`. Every other key is built from
 * the prefix, so all keys share one hash slot (Redis Cluster runs a script on one slot). Numbers
 * go back to Redis through str(): Lua's own tostring would write 1.7e+15.
 *
 * Cost: a script's time inside redis-server goes to its redis.call (each a whole command:
 * lookup, arguments copied, statistics, the reply turned into Lua values), to the closures and
 * tables it makes, and to its strings (Redis' Lua hashes every byte of every new string: a reply
 * listing a file's whole log costs more than the step). So each script defines only the helpers
 * it uses (the text below is pasted in, not called), a step reads each key once (one MGET of the
 * incarnation, session and grace keys, one HMGET of the records it names, one of their edge
 * owners), writes no key or field it deletes or writes again later in the same step, and a stale
 * reply reads the newest log entries first. bench/NOTES.md (2026-12-03, the scripts' cost) has
 * the numbers.
 */
import { FENCE_KEEP_MS, FENCE_SLACK_US, LOG_MAX, REAPED_KEEP_MS } from './memory.js';
import { INBOX_MARK } from './types.js';

/** How many of the newest log entries a stale commit reads first (the rest only when the caller is further behind). */
const TAIL = 4;

/** A stored record `seq|state|node|epoch|requestId|data`: the Lua pattern of its first five fields. */
const REC = `'^(%d+)|(%a)|([^|]*)|(%d+)|'`;

/** What every script may use: the prefix, numbers as text, the engine's clock. */
const BASE = `
local P = ARGV[1]
-- Whole numbers only (counters, ms): '%d' writes them exactly, for less than '%.0f' costs.
local function str(n) return string.format('%d', n) end
local function nowMs() local t = redis.call('TIME'); return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
-- A file's fence tombstone (t:<file>), read and written through pcall: a user whose ACL was written
-- before the key existed is refused it, and steps must go on (without it, fences rest on the time).
local function tomb(file) local v = redis.pcall('GET', P .. 't:' .. file); if type(v) == 'string' then return v end return false end
`;

/**
 * The engine's run: redis-server's run_id, new at every start of a server process and different on
 * the replica a failover promotes, with its replication ID, new when the same process loaded
 * another data set (a full sync as a replica) and was promoted again. `P run` keeps the run the
 * incarnation's data was written under.
 * Data found under another run may be older than what nodes were told had committed (a restart
 * from an RDB snapshot or an AOF that missed the last writes, a replica that lagged): no step may
 * apply to it. rolledBack() then drops every key of the namespace (wipe), so that the next OPEN
 * starts a new incarnation with its grace period, as after a loss: nodes re-assert what they hold
 * and nothing is granted twice. An engine that refuses INFO in a script gives no run (nil): no
 * check (the data is trusted, as before); one that gives the run_id alone (INFO replication
 * refused) is checked against the recorded run_id only, and leaves the whole run recorded. The
 * scripts that do not check it themselves are sent by EVALSHA only: a new server process knows
 * no script, and the node runs RUN_CHECK before it loads one (RedisEngine.call), so every script
 * a new process runs comes after a check.
 *
 * RUN_ID is its first part, runId() (read-only), which SPACE_READ shares; RUN's text is the same.
 */
const RUN_ID = `
local function runId()
  local info = redis.pcall('INFO', 'server')
  if type(info) ~= 'string' then return nil end
  local id = string.match(info, 'run_id:(%x+)')
  if not id then return nil end
  -- The same process may serve another data set: a full sync as a replica replaces all of it and
  -- keeps the run_id; the replication ID changes with it (adopted from the primary), and at every
  -- promotion. Two calls: INFO with two sections is Redis 7's.
  local repl = redis.pcall('INFO', 'replication')
  local rid = type(repl) == 'string' and string.match(repl, 'master_replid:(%x+)')
  if not rid then return id end
  return id .. ' ' .. rid, string.match(repl, 'second_repl_offset:(%-?%d+)') == '-1'
end
`;

const RUN = `${RUN_ID}-- Every key of the namespace, found through its indexes (never KEYS: the database may hold much
-- else): the files' keys and their waiters' owners' edges, the registered sessions' keys.
local function wipe()
  local keys, soft = {}, {}
  local function add(k) keys[#keys + 1] = P .. k end
  for _, f in ipairs(redis.call('SMEMBERS', P .. 'files')) do
    for _, owner in ipairs(redis.call('HVALS', P .. 'e:' .. f)) do add('w:' .. owner) end
    add('r:' .. f); add('m:' .. f); add('l:' .. f); add('e:' .. f)
  end
  for _, m in ipairs(redis.call('ZRANGE', P .. 'sessions', 0, -1)) do
    local nd = string.match(m, '^(.*)|%d+$')
    add('s:' .. nd); add('own:' .. nd); add('in:' .. nd); add('sf:' .. m); add('rp:' .. m)
    soft[#soft + 1] = P .. 'at:' .. nd
  end
  add('clock'); add('grace'); add('ttlmax'); add('files'); add('sessions'); add('policy')
  -- The incarnation first, on its own: should a later batch be refused (an ACL without one key
  -- kind), no step can apply to what is left (every step checks it: 'reset').
  redis.call('UNLINK', KEYS[1])
  for i = 1, #keys do redis.call('UNLINK', unpack(keys, i, math.min(i + 999, #keys))) end
  -- Keys a least-privilege user may not have been granted (as OPEN writes them): each on its own.
  soft[#soft + 1] = P .. 'run'
  for _, k in ipairs(soft) do redis.pcall('UNLINK', k) end
end
-- True when the namespace's data was written under another run (then wiped); an incarnation of
-- an earlier version of these scripts, with no run recorded, adopts this one. No check where the
-- user may not run INFO or read the run's key.
local function rolledBack()
  local run, noSecond = runId()
  if run == nil then return false end
  local cur = redis.pcall('MGET', KEYS[1], P .. 'run')
  if type(cur) ~= 'table' or cur.err or not cur[1] or cur[2] == run then return false end
  local id = string.match(run, '^(%x+)')
  local was = string.match(cur[2] or '', '^(%x+)')
  -- Adopted: no run recorded; the run_id alone (recorded before the replication ID was); the same
  -- process under a new replication ID that follows no other (no second ID: a primary without
  -- replicas for repl-backlog-ttl frees its backlog and takes a new ID; a promoted replica's
  -- second ID is the one of the primary it followed).
  if not cur[2] or cur[2] == id or (noSecond and was == id) then redis.pcall('SET', P .. 'run', run); return false end
  -- A check that got the run_id alone (a user refused INFO replication, an engine that does not
  -- say it) compares that much: the same process passes, and the whole run stays recorded for the
  -- checks that can compare it (the two forms never take turns dropping the data).
  if run == id and was == id then return false end
  wipe()
  return true
end
`;

/** Session liveness, asked once per session and script. */
const ALIVE = `
local aliveMemo = {}
local function alive(node, epoch)
  local k = node .. '|' .. epoch
  local a = aliveMemo[k]
  if a == nil then a = (redis.call('GET', P .. 's:' .. node) == epoch); aliveMemo[k] = a end
  return a
end
`;

/**
 * The wait-for graph: {ns}:w:<owner> holds, per waiting request ("file\\nwaiter"), the waiter's
 * session and its hard and soft targets, with the sessions of the targets' records
 * ([hard, soft, {owner = {"node|epoch", ...}}]). A target counts while one of its sessions lives
 * (one named by no session always counts): an owner's lock of a dead session that nobody has
 * reaped yet closes no cycle, even once the same owner waits again under a new session.
 * overlay[owner][field] = false (gone) or a new edge.
 */
const CYCLE_FN = `
local overlay = {}
local function liveKey(s)
  local nd, ep = string.match(s, '^([^|]*)|(%d+)$')
  return alive(nd, ep)
end
-- The targets of \`list\` that count (the list itself when all do).
local function live(list, of)
  if not of then return list end
  local out
  for i, t in ipairs(list) do
    local ss, ok = of[t], true
    if ss then
      ok = false
      for _, x in ipairs(ss) do if liveKey(x) then ok = true; break end end
    end
    if not ok and not out then out = {}; for j = 1, i - 1 do out[j] = list[j] end end
    if ok and out then out[#out + 1] = t end
  end
  return out or list
end
-- While set ({soonest = ms}): the walk leaves out the stored edges of late sessions (lateLeft),
-- keeping the earliest expiry among them (MemoryEngine.lateLeft, the reference).
local lateWalk = nil
local lateMemo = {}
-- For a live session not renewed for longer than lateAfterMs of its TTL (own:<node> keeps it),
-- its ms until it expires; else false.
local function lateLeft(nd, ep)
  local k = nd .. '|' .. ep
  local v = lateMemo[k]
  if v == nil then
    v = false
    local own = redis.call('GET', P .. 'own:' .. nd)
    local ttl = own and tonumber(string.match(own, '/(%d+)$'))
    if ttl then
      local left = redis.call('PTTL', P .. 's:' .. nd)
      local every = math.max(1, math.min(500, math.floor(ttl / 4)))
      if left > 0 and ttl - left > math.min(2 * every + 1000, math.floor(ttl * 3 / 4)) then v = left end
    end
    lateMemo[k] = v
  end
  return v
end
-- edgesOf(owner) of this script run, outside a late walk: the keys it reads change only after
-- the checks, so an entry holds until the step's overlay of that owner changes (over() drops it).
-- On a hot file every waiter of a step waits for the same new holder: one read instead of one each.
local edgeMemo = {}
-- FILE_REACH's file ('file\\n', the prefix of its edges' fields in w:<owner>): those edges are left
-- out (a field's waiter id has no newline; a file's name may).
local exceptPrefix = nil
local function edgesOf(owner)
  if not lateWalk then
    local c = edgeMemo[owner]
    if c then return c end
  end
  local out = {}
  local m = overlay[owner]
  local stored = redis.call('HGETALL', P .. 'w:' .. owner)
  for i = 1, #stored, 2 do
    local k = stored[i]
    if not (m and m[k] ~= nil) and not (exceptPrefix and string.sub(k, 1, #exceptPrefix) == exceptPrefix and not string.find(k, '\\n', #exceptPrefix + 1, true)) then
      local nd, ep, json = string.match(stored[i + 1], '^([^|]*)|(%d+)|(.*)$')
      if alive(nd, ep) then
        local left = lateWalk and lateLeft(nd, ep)
        if left then
          if left < lateWalk.soonest then lateWalk.soonest = left end
        else
          local hs = cjson.decode(json); out[#out + 1] = {h = live(hs[1], hs[3]), s = live(hs[2], hs[3])}
        end
      end
    end
  end
  if m then for _, e in pairs(m) do if e and alive(e.nd, e.ep) then out[#out + 1] = e end end end
  if not lateWalk then edgeMemo[owner] = out end
  return out
end
local function cycle(owner, targets, hardOnly)
  local seen, stack = {}, {}
  local function visit(t)
    if t == owner then return true end
    if not seen[t] then seen[t] = true; stack[#stack + 1] = t end
    return false
  end
  for _, t in ipairs(targets) do if visit(t) then return true end end
  while #stack > 0 do
    local o = table.remove(stack)
    for _, e in ipairs(edgesOf(o)) do
      for _, t in ipairs(e.h) do if visit(t) then return true end end
      if not hardOnly then for _, t in ipairs(e.s) do if visit(t) then return true end end end
    end
  end
  return false
end
`;

/** HMGET of `ids` into `out` (in chunks: unpack and the Lua stack take a few thousand values at most). */
const hmget = (out: string, key: string, ids: string) => `
local ${out}
if #${ids} == 0 then ${out} = {}
elseif #${ids} <= 1000 then ${out} = redis.call('HMGET', ${key}, unpack(${ids}))
else
  ${out} = {}
  for i = 1, #${ids}, 1000 do
    local r = redis.call('HMGET', ${key}, unpack(${ids}, i, math.min(i + 999, #${ids})))
    for j = 1, #r do ${out}[#${out} + 1] = r[j] end
  end
end
`;

/** One command with the values of `list` as its last arguments, in chunks of 1000 (an even count: pairs stay together). */
const chunks = (cmdKey: string, list: string) =>
  `for i = 1, #${list}, 1000 do redis.call(${cmdKey}, unpack(${list}, i, math.min(i + 999, #${list}))) end`;

/**
 * Reads and checks a step (COMMIT, REASSERT): `nR` removed ids from ARGV[aR], `nP` puts (id,
 * record) from ARGV[aP], `nE` edges from ARGV[aE], `eN` values each (waiter, owner, [check,]
 * json). One HMGET reads every record it names. Sets removed (id -> stored text), removes, puts
 * ({id, enc, st, nd, ep, old = stored text or false}), putOf, edges ({w, owner, check, json, nd,
 * ep}: the waiter's session, which must be a waiting record once the step applies); or returns
 * the caller's bug as an error.
 */
const READ = `
local kr, km, kl, ke = P .. 'r:' .. file, P .. 'm:' .. file, P .. 'l:' .. file, P .. 'e:' .. file
local ids = {}
for i = 0, nR - 1 do ids[#ids + 1] = ARGV[aR + i] end
for i = 0, nP - 1 do ids[#ids + 1] = ARGV[aP + 2 * i] end
for i = 0, nE - 1 do ids[#ids + 1] = ARGV[aE + eN * i] end
${hmget('olds', 'kr', 'ids')}
local removed, removes = {}, {}
for i = 1, nR do
  local id, old = ids[i], olds[i]
  if not old then return redis.error_reply('LOCKSMITH no record ' .. id .. ' in ' .. file .. ' to remove') end
  removed[id] = old
  removes[i] = id
end
local puts, putOf = {}, {}
for i = 1, nP do
  local id, enc = ARGV[aP + 2 * i - 2], ARGV[aP + 2 * i - 1]
  local st, nd, ep = string.match(enc, '^(%a)|([^|]*)|(%d+)|')
  local old = false
  if not removed[id] then old = olds[nR + i] end
  if old then
    local _, _, ond, oep = string.match(old, ${REC})
    if ond ~= nd or oep ~= ep then
      return redis.error_reply('LOCKSMITH record ' .. id .. ' in ' .. file .. ' belongs to ' .. ond .. '|' .. oep .. ', not ' .. nd .. '|' .. ep)
    end
  end
  local p = {id = id, enc = enc, st = st, nd = nd, ep = ep, old = old}
  puts[i] = p
  putOf[id] = p
end
local edges = {}
for i = 1, nE do
  local a = aE + eN * (i - 1)
  local w = ARGV[a]
  local nd, ep
  local p = putOf[w]
  if p then
    if p.st == 'w' then nd, ep = p.nd, p.ep end
  elseif not removed[w] then
    local v = olds[nR + nP + i]
    if v then
      local _, st, vn, ve = string.match(v, ${REC})
      if st == 'w' then nd, ep = vn, ve end
    end
  end
  if not nd then return redis.error_reply('LOCKSMITH edges of ' .. w .. ' in ' .. file .. ': no such waiter after the step') end
  edges[i] = {w = w, owner = ARGV[a + 1], nd = nd, ep = ep, check = eN == 4 and ARGV[a + 2] == '1', json = ARGV[a + eN - 1], hs = false}
end
`;

/**
 * The edge owners (e:<file>) of the waiters whose edges the step may drop or replace: the
 * removed ids, the held puts that replace a record, the edges' waiters. owner[id] = owner or
 * false; APPLY keeps it up to date.
 */
const OWNERS = `
local oids = {}
for _, id in ipairs(removes) do oids[#oids + 1] = id end
for _, p in ipairs(puts) do if p.st == 'h' and p.old then oids[#oids + 1] = p.id end end
for _, e in ipairs(edges) do oids[#oids + 1] = e.w end
${hmget('orep', 'ke', 'oids')}
local owner = {}
for i = 1, #oids do owner[oids[i]] = orep[i] end
`;

/**
 * Applies removes, puts and edges (each edge's `hs`: its decoded json), bumps the version and
 * logs the change: vs is the version, or '0' when the file has no records left (its keys are
 * deleted). The end state is that of applying the removes, the puts and the edges one by one, in
 * order; the commands differ only where they would change nothing in it: one HDEL and one HSET
 * per hash, the record counts changed once per session by its net change, no write of a key or
 * field deleted or written again later in the step.
 */
const APPLY = `
-- Only removes can empty a file (or a step that puts nothing on a file that had nothing).
local emptied = false
if #puts == 0 then
  local n = 0
  for _ in pairs(removed) do n = n + 1 end
  emptied = redis.call('HLEN', kr) == n
end
-- Records per session in the file: the step's net change per session, in order of appearance.
local delta, sessions = {}, {}
local function count(nd, ep, by)
  local s = nd .. '|' .. ep
  local d = delta[s]
  if d == nil then d = 0; sessions[#sessions + 1] = s end
  delta[s] = d + by
end
local function dropEdges(w)
  local o = owner[w]
  if o then
    owner[w] = false
    if not emptied then redis.call('HDEL', ke, w) end
    redis.call('HDEL', P .. 'w:' .. o, file .. '\\n' .. w)
  end
end
-- A dead session's locks the step removes (the reaper's work), per session: kept in rp:<session>.
local reapedOf, reapedList = {}, {}
for _, id in ipairs(removes) do
  local _, st, nd, ep = string.match(removed[id], ${REC})
  count(nd, ep, -1)
  dropEdges(id)
  if st == 'h' and not alive(nd, ep) then
    local s = nd .. '|' .. ep
    local l = reapedOf[s]
    if not l then l = {}; reapedOf[s] = l; reapedList[#reapedList + 1] = s end
    l[#l + 1] = id
    l[#l + 1] = removed[id]
  end
end
for _, s in ipairs(reapedList) do
  local rk, l = P .. 'rp:' .. s, reapedOf[s]
  local prev = redis.call('HGET', rk, file)
  if prev then
    local p = cjson.decode(prev)
    for _, x in ipairs(l) do p[#p + 1] = x end
    l = p
  end
  redis.call('HSET', rk, file, cjson.encode(l))
  redis.call('PEXPIRE', rk, '${REAPED_KEEP_MS}')
end
if not emptied then ${chunks("'HDEL', kr", 'removes')} end
local logPut, nNew, q0 = {}, 0, tonumber(vq[2]) or 0
for _, p in ipairs(puts) do
  local seq
  if p.old then
    seq = string.match(p.old, '^(%d+)|')
    if p.st == 'h' then dropEdges(p.id) end
  else
    nNew = nNew + 1
    seq = str(q0 + nNew)
    count(p.nd, p.ep, 1)
  end
  logPut[#logPut + 1] = p.id
  logPut[#logPut + 1] = seq .. '|' .. p.enc
end
${chunks("'HSET', kr", 'logPut')}
for _, e in ipairs(edges) do
  local o = owner[e.w]
  local set = #e.hs[1] > 0 or #e.hs[2] > 0
  local f = file .. '\\n' .. e.w
  -- The old edges go, unless the same field is written again just below.
  if o and not (set and o == e.owner) then
    redis.call('HDEL', P .. 'w:' .. o, f)
    if not set then redis.call('HDEL', ke, e.w) end
  end
  if set then
    if o ~= e.owner then redis.call('HSET', ke, e.w, e.owner) end
    redis.call('HSET', P .. 'w:' .. e.owner, f, e.nd .. '|' .. e.ep .. '|' .. e.json)
    owner[e.w] = e.owner
  else
    owner[e.w] = false
  end
end
-- The counts (a file left empty loses m:<file> whole); the session -> files index follows them.
for _, s in ipairs(sessions) do
  local by = delta[s]
  if by ~= 0 then
    local c = 0
    if not emptied then c = redis.call('HINCRBY', km, 'c:' .. s, str(by)) end
    if c > 0 then
      if c == by then redis.call('SADD', P .. 'sf:' .. s, file) end
    else
      if not emptied then redis.call('HDEL', km, 'c:' .. s) end
      redis.call('SREM', P .. 'sf:' .. s, file)
      if redis.call('SCARD', P .. 'sf:' .. s) == 0 then
        local nd, ep = string.match(s, '^(.*)|(%d+)$')
        if not alive(nd, ep) then redis.call('ZREM', P .. 'sessions', s) end
      end
    end
  end
end
local vs = str(redis.call('INCR', P .. 'clock'))
-- The file's last fence (Step.fence): this step's highest, else the one it had (fLast, from
-- m:<file> or its tombstone, read by the fence check).
local fNow = fMax or fLast
if emptied then
  redis.call('DEL', kr, km, kl, ke)
  redis.call('SREM', P .. 'files', file)
  -- It outlives the file's keys for a while (t:<file>): the next grant on it is above.
  if fNow then
    -- Also until the engine's time has passed it by FENCE_KEEP_MS (a fence ahead of a clock that stepped back).
    local tm = tonumber(redis.call('GET', P .. 'ttlmax')) or 0
    local tt = redis.call('TIME')
    local ahead = math.floor(tonumber(fNow) / 1000 - (tonumber(tt[1]) * 1000 + tonumber(tt[2]) / 1000))
    redis.pcall('SET', P .. 't:' .. file, fNow, 'PX', str(math.max(${FENCE_KEEP_MS}, 10 * tm, ahead + ${FENCE_KEEP_MS})))
  end
  vs = '0'
else
  local fv = {}
  -- A file brought back from its tombstone by a step with no fence takes its last along (the
  -- tombstone expires by PX while the file has records again).
  if fMax then fv = {'f', fMax} elseif base == '0' and fLast then fv = {'f', fLast} end
  if nNew > 0 then redis.call('HSET', km, 'v', vs, 'q', str(q0 + nNew), 'a:' .. node, step, unpack(fv)) else redis.call('HSET', km, 'v', vs, 'a:' .. node, step, unpack(fv)) end
  -- A file is in 'files' exactly while it has a version: it joins when its first step applies.
  if base == '0' then redis.call('SADD', P .. 'files', file) end
  if redis.call('RPUSH', kl, base .. '|' .. vs .. '|' .. cjson.encode({step, node, removes, logPut, fNow})) > ${LOG_MAX} then
    redis.call('LTRIM', kl, '-${LOG_MAX}', '-1')
  end
end
`;

/** What REAP, REACH and CYCLE use. */
const PRELUDE = `${BASE}${ALIVE}${CYCLE_FN}
local function parse(v) return string.match(v, ${REC}) end
`;

/**
 * COMMIT: ARGV P, inc, node, epoch, file, base, step, grants, nRemove, nPut, nNotify, nEdges,
 * until (the engine's ms from which the step is late; '' for never), then the removed ids, the
 * puts (id, record), the notifications (node, epoch, requestId, kind, data) and the edges
 * (waiter, owner, check, '[hard, soft, sessions]').
 */
export const COMMIT = `${BASE}${ALIVE}
local inc, node, epoch, file, base, step = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local grants = string.sub(ARGV[8], 1, 1) == '1'
-- The fence numbers the step's grants hold (Step.fence): lowest, highest (text).
local fMin, fMax = string.match(ARGV[8], '^%d|(%d+)|(%d+)$')
local fLast
local nR, nP, nN, nE = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
-- 1. the incarnation (the engine did not lose its data), 2. this session, 3. the version. The
-- grace key is read with them; its PTTL is asked only when it exists.
local k3 = redis.call('MGET', KEYS[1], P .. 's:' .. node, P .. 'grace')
if k3[1] ~= inc then return {'reset'} end
aliveMemo[node .. '|' .. epoch] = (k3[2] == epoch)
if k3[2] ~= epoch then return {'fenced'} end
local vq = redis.call('HMGET', P .. 'm:' .. file, 'v', 'q', 'a:' .. node, 'f')
local cur = vq[1] or '0'
if cur ~= base then
  -- The changes since base: from the log entry whose base is the caller's, to the end. Bases
  -- grow along the log (each is the version of the entry before), so at most one entry matches;
  -- a caller is mostly a step or two behind, so the newest entries are read first.
  local kl = P .. 'l:' .. file
  local tail = redis.call('LRANGE', kl, '-${TAIL}', '-1')
  for i = 1, #tail do
    if string.match(tail[i], '^(%d+)|') == base then
      local out = {}
      for j = i, #tail do out[#out + 1] = tail[j] end
      return {'stale', cur, 'log', out}
    end
  end
  if #tail == ${TAIL} then
    local log = redis.call('LRANGE', kl, '0', '-${TAIL + 1}')
    for i = 1, #log do
      if string.match(log[i], '^(%d+)|') == base then
        local out = {}
        for j = i, #log do out[#out + 1] = log[j] end
        for j = 1, #tail do out[#out + 1] = tail[j] end
        return {'stale', cur, 'log', out}
      end
    end
  end
  -- With this node's last step that applied here ('a:<node>'): the log that named it is gone.
  return {'stale', cur, 'full', redis.call('HGETALL', P .. 'r:' .. file), vq[3] or '', vq[4] or tomb(file) or ''}
end
-- A step past its deadline on this clock: its request was answered already (as failed), so it
-- never applies now (it was held up on its way: the engine paused, a slow network).
local untilMs = tonumber(ARGV[13])
if untilMs and nowMs() >= untilMs then return {'late'} end
-- An empty step checks without writing: this session is alive and the file is at base, and with
-- grants, that no grace period runs (an answer that found the bytes free). Its marks in the
-- node's own inbox change nothing in the file.
local aN = 14 + nR + 2 * nP
local function isMark(a) return ARGV[a] == node and ARGV[a + 3] == '${INBOX_MARK}' end
local nOther = 0
for i = 1, nN do if not isMark(aN + 5 * (i - 1)) then nOther = nOther + 1 end end
if nR + nP + nOther + nE == 0 then
  if grants and k3[3] then
    local g = redis.call('PTTL', P .. 'grace')
    if g > 0 then return {'grace', g} end
  end
  for i = 1, nN do
    local a = aN + 5 * (i - 1)
    if ARGV[a + 1] == epoch then
      redis.call('XADD', P .. 'in:' .. node, '*', 'f', file, 'v', cur, 'n', node, 'e', epoch, 'r', ARGV[a + 2], 'k', ARGV[a + 3], 'd', ARGV[a + 4])
    end
  end
  return {'ok', cur, step}
end
-- Fence numbers: above the file's last (m:<file>, or its tombstone once it had no record), the
-- highest not past the engine's time in µs or that last, whichever is later, by FENCE_SLACK_US
-- (a node's estimate of the time from below may pass a clock that stands still, as in tests).
-- Only this file's grants move that last: no other file's step refuses this one.
fLast = vq[4]
if not fLast and (fMin or cur == '0') then fLast = tomb(file) or nil end
if fMin then
  local last = tonumber(fLast) or 0
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if tonumber(fMin) <= last or tonumber(fMax) > math.max(us, last) + ${FENCE_SLACK_US} then return {'fence', str(last), str(us)} end
end
-- 4. the step agrees with the state it was decided on (else the caller has a bug).
local aR, aP, eN = 14, 14 + nR, 4
local aE = aP + 2 * nP + 5 * nN
${READ}
local notes = {}
for i = 1, nN do
  local a = aP + 2 * nP + 5 * (i - 1)
  notes[i] = {ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]}
end
-- 5. no record is written for a session that is not alive: a dead session's records only go.
local dead, deadSeen = {}, {}
for _, p in ipairs(puts) do
  local s = p.nd .. '|' .. p.ep
  if not alive(p.nd, p.ep) and not deadSeen[s] then
    deadSeen[s] = true
    dead[#dead + 1] = p.nd
    dead[#dead + 1] = p.ep
  end
end
if #dead > 0 then return {'dead', dead} end
-- 6. no grant during a grace period.
if grants and k3[3] then
  local g = redis.call('PTTL', P .. 'grace')
  if g > 0 then return {'grace', g} end
end
-- 7. no hard wait-for cycle (seen with the step's own edge changes made so far).
${OWNERS}
local checks = false
for _, e in ipairs(edges) do
  e.hs = cjson.decode(e.json)
  if e.check and #e.hs[1] > 0 then checks = true end
end
if checks then
  ${CYCLE_FN}
  local function over(o)
    edgeMemo[o] = nil
    local m = overlay[o]
    if not m then m = {}; overlay[o] = m end
    return m
  end
  local function drop(id)
    local o = owner[id]
    if o then over(o)[file .. '\\n' .. id] = false end
  end
  for _, id in ipairs(removes) do drop(id) end
  for _, p in ipairs(puts) do if p.st == 'h' and p.old then drop(p.id) end end
  -- A waiter checked later in the step waits for nobody until its turn (LockTable.refreshEdges).
  for _, e in ipairs(edges) do if e.check then drop(e.w) end end
  for _, e in ipairs(edges) do
    drop(e.w)
    local hs = e.hs
    if e.check and #hs[1] > 0 then
      local targets = live(hs[1], hs[3])
      if cycle(e.owner, targets, true) then
        -- A cycle only through edges of late sessions is not trusted yet ('overdue').
        lateWalk = {soonest = math.huge}
        local again = cycle(e.owner, targets, true)
        local soonest = lateWalk.soonest
        lateWalk = nil
        if again or soonest == math.huge then return {'deadlock', e.w, e.owner} end
        return {'overdue', e.w, e.owner, str(math.max(1, soonest))}
      end
    end
    if #hs[1] > 0 or #hs[2] > 0 then over(e.owner)[file .. '\\n' .. e.w] = {nd = e.nd, ep = e.ep, h = live(hs[1], hs[3]), s = live(hs[2], hs[3])} end
  end
end
-- 8. apply, then tell the other nodes' live waiters (and this node's own inbox its marks).
${APPLY}
for _, n in ipairs(notes) do
  if (n[1] ~= node or n[4] == '${INBOX_MARK}') and alive(n[1], n[2]) then
    redis.call('XADD', P .. 'in:' .. n[1], '*', 'f', file, 'v', vs, 'n', node, 'e', n[2], 'r', n[3], 'k', n[4], 'd', n[5])
  end
end
return {'ok', vs}
`;

/** REASSERT: ARGV P, inc, node, epoch, file, step, nPut, nEdges, puts (id, record), edges (waiter, owner, '[hard, soft, sessions]'). */
export const REASSERT = `${BASE}${ALIVE}
local inc, node, epoch, file, step = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local nR, nP, nE = 0, tonumber(ARGV[7]), tonumber(ARGV[8])
-- A put back carries no new fence; the file keeps its last (APPLY reads them).
local fMax, fLast = nil, nil
if redis.call('GET', KEYS[1]) ~= inc then return {'reset'} end
if not alive(node, epoch) then return {'fenced'} end
if redis.call('PTTL', P .. 'grace') <= 0 then return {'late'} end
local vq = redis.call('HMGET', P .. 'm:' .. file, 'v', 'q', 'f')
local base = vq[1] or '0'
local aR, aP, eN = 9, 9, 3
local aE = aP + 2 * nP
${READ}
-- The file's last fence becomes at least the highest its records put back hold: each record's
-- own, the top-level 'f' of its data's JSON object (src/core/records.ts; memory.ts recordFence),
-- never a '"f":N' elsewhere in its text (a waiter's requestId, a nested object). One that is no
-- safe integer > 0 is refused before anything is written: stored, no grant would pass it.
local fTop = tonumber(vq[3]) or 0
for _, p in ipairs(puts) do
  local data = string.match(p.enc, '^%a|[^|]*|%d+|[^|]*|(.*)$')
  if data and string.sub(data, 1, 1) == '{' then
    local ok, d = pcall(cjson.decode, data)
    local f = ok and type(d) == 'table' and d.f
    if type(f) == 'number' then
      if not (f >= 1 and f <= ${Number.MAX_SAFE_INTEGER} and f == math.floor(f)) then
        return redis.error_reply('LOCKSMITH record ' .. p.id .. ' in ' .. file .. ' holds the fence ' .. tostring(f) .. ': not a safe integer > 0')
      end
      if f > fTop then fTop = f; fMax = str(f) end
    end
  end
end
${OWNERS}
for _, e in ipairs(edges) do e.hs = cjson.decode(e.json) end
${APPLY}
return {'ok', vs}
`;

/**
 * OPEN: ARGV P, incarnation candidate, node, ttlMs, graceMs, instance, where its mount serves
 * (JSON, '' for a node that is no mount). A new session; a new
 * incarnation (with its grace period) when there is none. {'taken'} when the node name's session
 * is live under another instance (another process, or one that died less than a TTL ago).
 */
export const OPEN = `${BASE}${RUN}
local created = 0
rolledBack()
local inc = redis.call('GET', KEYS[1])
if not inc then
  inc = ARGV[2]
  redis.call('SET', KEYS[1], inc)
  local run = runId()
  if run then redis.pcall('SET', P .. 'run', run) end
  -- Versions and epochs count on from the engine's time in microseconds, so that they keep
  -- growing across a loss of the data (fence numbers) and a cached version is never reused.
  local t = redis.call('TIME')
  redis.call('SET', P .. 'clock', t[1] .. string.format('%06d', tonumber(t[2])))
  if tonumber(ARGV[5]) > 0 then redis.call('SET', P .. 'grace', inc, 'PX', ARGV[5]) end
  created = 1
end
local node, ttl = ARGV[3], tonumber(ARGV[4])
local sk = P .. 's:' .. node
local old = redis.call('GET', sk)
-- Two processes under one node name: a live session of another instance is never taken (its
-- process may still act on its locks until its own fence). The key keeps '<instance>/<ttlMs>':
-- the instance is who opened it, whatever TTL it opens with now.
local ok = P .. 'own:' .. node
if old then
  local owner = redis.call('GET', ok)
  local function who(v) return string.match(v, '^(.*)/%d+$') or v end
  if owner and who(owner) ~= who(ARGV[6]) then return {'taken'} end
end
redis.call('SET', ok, ARGV[6], 'PX', ARGV[4])
-- Where the node's mount serves lives as long as its session key; a node that is no mount drops
-- what an earlier run under its name left. Only a listing's help: a user whose ACL refuses the key
-- (written before it was added) still opens its session (pcall), with nothing recorded.
local at = P .. 'at:' .. node
if ARGV[7] ~= nil and ARGV[7] ~= '' then redis.pcall('SET', at, ARGV[7], 'PX', ARGV[4]) else redis.pcall('DEL', at) end
local epoch = str(redis.call('INCR', P .. 'clock'))
if old then redis.call('ZADD', P .. 'sessions', '0', node .. '|' .. old) end
redis.call('SET', sk, epoch, 'PX', ARGV[4])
local now = nowMs()
redis.call('ZADD', P .. 'sessions', str(now + ttl), node .. '|' .. epoch)
local ik = P .. 'in:' .. node
redis.call('XTRIM', ik, 'MAXLEN', '0')
local from = redis.call('XADD', ik, '*', 'k', 'open', 'e', epoch)
local g = redis.call('PTTL', P .. 'grace')
if g < 0 then g = 0 end
-- The longest TTL of the incarnation: what the first node to reopen after a loss makes its grace.
local tm = redis.call('GET', P .. 'ttlmax')
if not tm or tonumber(tm) < ttl then tm = ARGV[4]; redis.call('SET', P .. 'ttlmax', tm) end
return {inc, epoch, from, g, created, str(now), tm}
`;

/** RENEW: ARGV P, inc, node, epoch, ttlMs, inbox id read up to ('' for none). Never brings back a session that is gone; tells whether some session awaits the reaper. */
export const RENEW = `${BASE}${RUN}
local node, epoch = ARGV[3], ARGV[4]
local sk = P .. 's:' .. node
if rolledBack() then return {'reset'} end
local cur = redis.call('MGET', KEYS[1], sk, P .. 'ttlmax')
if cur[1] ~= ARGV[2] then return {'reset'} end
if cur[2] ~= epoch then return {'expired'} end
redis.call('SET', sk, epoch, 'PX', ARGV[5])
redis.call('PEXPIRE', P .. 'own:' .. node, ARGV[5])
redis.pcall('PEXPIRE', P .. 'at:' .. node, ARGV[5]) -- as OPEN: refused by an ACL, nothing is recorded
-- One reading of the clock for the new deadline, the reaper's question and the reply.
local now = nowMs()
redis.call('ZADD', P .. 'sessions', str(now + tonumber(ARGV[5])), node .. '|' .. epoch)
if ARGV[6] ~= '' then redis.call('XTRIM', P .. 'in:' .. node, 'MINID', ARGV[6]) end
local g = redis.call('PTTL', P .. 'grace')
if g < 0 then g = 0 end
-- A registered session past its deadline (or ended: score 0) is the reaper's: say so, for free.
local due = #redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', str(now), 'LIMIT', '0', '1')
return {'ok', g, due, str(now), cur[3] or '0'}
`;

/** END: ARGV P, inc, node, epoch. The session ends now; its remaining records are the reaper's. */
export const END = `${BASE}
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
local node, epoch = ARGV[3], ARGV[4]
local sk = P .. 's:' .. node
if redis.call('GET', sk) ~= epoch then return 0 end
redis.call('DEL', sk, P .. 'own:' .. node)
redis.pcall('DEL', P .. 'at:' .. node) -- as OPEN: refused by an ACL, nothing was recorded
local m = node .. '|' .. epoch
if redis.call('SCARD', P .. 'sf:' .. m) == 0 then redis.call('ZREM', P .. 'sessions', m) else redis.call('ZADD', P .. 'sessions', '0', m) end
redis.call('DEL', P .. 'in:' .. node)
return 1
`;

/** LOAD: ARGV P, file. */
export const LOAD = `${BASE}
local vf = redis.call('HMGET', P .. 'm:' .. ARGV[2], 'v', 'f')
return {vf[1] or '0', redis.call('HGETALL', P .. 'r:' .. ARGV[2]), vf[2] or tomb(ARGV[2]) or ''}
`;

/**
 * REACH: ARGV P, hardOnly, then pairs (from, to): per pair, 1 when `from` already waits for `to`
 * through the wait-for edges of live sessions, else 0. Read-only.
 */
export const REACH = `${PRELUDE}
local out = {}
for i = 3, #ARGV - 1, 2 do
  out[#out + 1] = cycle(ARGV[i + 1], {ARGV[i]}, ARGV[2] == '1') and 1 or 0
end
return out
`;

/**
 * FILE_REACH: ARGV P, file, then pairs (from, to). The 'fifo' escape's facts for a decision on
 * `file` (SharedFile.askReach): per pair, 1 when `from` already waits for `to` through the
 * wait-for edges (hard or soft) of live sessions on the other files, else 0; then, flat, each of
 * the file's waiters with stored edges and their stored text (node|epoch|json). The decision takes
 * the file's own edges from there and changes them as it settles the file. Read-only.
 */
export const FILE_REACH = `${PRELUDE}
exceptPrefix = ARGV[2] .. '\\n'
local out = {}
for i = 3, #ARGV - 1, 2 do
  out[#out + 1] = cycle(ARGV[i + 1], {ARGV[i]}, false) and 1 or 0
end
local stored = {}
local ws = redis.call('HGETALL', P .. 'e:' .. ARGV[2])
for i = 1, #ws, 2 do
  local v = redis.call('HGET', P .. 'w:' .. ws[i + 1], ARGV[2] .. '\\n' .. ws[i])
  if v then stored[#stored + 1] = ws[i]; stored[#stored + 1] = v end
end
return {out, stored}
`;

/** CYCLE: ARGV P, owner, hardOnly, targets... (owners: each counts, whatever its session). */
export const CYCLE = `${PRELUDE}
local targets = {}
for i = 4, #ARGV do targets[#targets + 1] = ARGV[i] end
if cycle(ARGV[2], targets, ARGV[3] == '1') then return 1 end
return 0
`;

/**
 * REAP: ARGV P, limit. Dead sessions (their key gone or holding another epoch) in (node, epoch)
 * order with, per file (at most `limit` files in all), the file's version and that session's
 * records. A dead session without records leaves the registry (and its node's inbox goes when
 * the node has no live session). Changes nothing else: the removal is the caller's step.
 */
export const REAP = `${PRELUDE}
local budget = tonumber(ARGV[2])
local members = redis.call('ZRANGE', P .. 'sessions', 0, -1)
local list = {}
for _, m in ipairs(members) do
  local nd, ep = string.match(m, '^(.*)|(%d+)$')
  list[#list + 1] = {m = m, nd = nd, ep = ep, n = tonumber(ep)}
end
table.sort(list, function(x, y) if x.nd ~= y.nd then return x.nd < y.nd end return x.n < y.n end)
local out, more = {}, 0
for _, s in ipairs(list) do
  if redis.call('GET', P .. 's:' .. s.nd) ~= s.ep then
    local fs = redis.call('SMEMBERS', P .. 'sf:' .. s.m)
    if #fs == 0 then
      redis.call('ZREM', P .. 'sessions', s.m)
      if not redis.call('GET', P .. 's:' .. s.nd) then redis.call('DEL', P .. 'in:' .. s.nd) end
    else
      if budget <= 0 then more = 1; break end
      table.sort(fs)
      local files = {}
      for _, f in ipairs(fs) do
        if budget <= 0 then more = 1; break end
        budget = budget - 1
        local recs = redis.call('HGETALL', P .. 'r:' .. f)
        local mine = {}
        for i = 1, #recs, 2 do
          local _, _, rn, re = parse(recs[i + 1])
          if rn == s.nd and re == s.ep then mine[#mine + 1] = recs[i]; mine[#mine + 1] = recs[i + 1] end
        end
        files[#files + 1] = {f, redis.call('HGET', P .. 'm:' .. f, 'v') or '0', mine}
      end
      out[#out + 1] = {s.nd, s.ep, files}
      if more == 1 then break end
    end
  end
end
return {out, more}
`;

/**
 * SESSION_FILES: ARGV P, inc, node, epoch, cursor, count. One SSCAN page of the session's index
 * (sf:<node>|<epoch>) with, per file, that session's records: {'ok', next cursor, {{file,
 * {id, record, ...}}, ...}}, or {'reset'} when the incarnation is not the caller's. After the
 * index, HSCAN pages of what steps removed of the session while it was dead (rp:<node>|<epoch>,
 * the reaper's work, kept REAPED_KEEP_MS), in the same form; their cursors are 'r' and HSCAN's.
 * Read-only. A worker that replaces one that died learns from it which locks its files hold of
 * this node's session (SharedFiles.recover), or held in one it did not hear was lost
 * (SharedFiles.recoverLost).
 */
export const SESSION_FILES = `${BASE}
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return {'reset'} end
local node, epoch = ARGV[3], ARGV[4]
local rk = P .. 'rp:' .. node .. '|' .. epoch
if string.sub(ARGV[5], 1, 1) == 'r' then
  local page = redis.call('HSCAN', rk, string.sub(ARGV[5], 2), 'COUNT', ARGV[6])
  local kv, out = page[2], {}
  for i = 1, #kv, 2 do out[#out + 1] = {kv[i], cjson.decode(kv[i + 1])} end
  local nxt = '0'
  if page[1] ~= '0' then nxt = 'r' .. page[1] end
  return {'ok', nxt, out}
end
local function parse(v) return string.match(v, ${REC}) end
local page = redis.call('SSCAN', P .. 'sf:' .. node .. '|' .. epoch, ARGV[5], 'COUNT', ARGV[6])
local out = {}
for _, f in ipairs(page[2]) do
  local recs = redis.call('HGETALL', P .. 'r:' .. f)
  local mine = {}
  for i = 1, #recs, 2 do
    local _, _, rn, re = parse(recs[i + 1])
    if rn == node and re == epoch then mine[#mine + 1] = recs[i]; mine[#mine + 1] = recs[i + 1] end
  end
  out[#out + 1] = {f, mine}
end
local nxt = page[1]
if nxt == '0' and redis.call('EXISTS', rk) == 1 then nxt = 'r0' end
return {'ok', nxt, out}
`;

/**
 * POLICY: ARGV P, inc, node, epoch, policy. Records the namespace's policy: {'other', policy,
 * node} when another node's live session recorded another one, else {'ok'} (set); {'reset'} when
 * the incarnation is not the caller's.
 */
export const POLICY = `${BASE}
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return {'reset'} end
local pk = P .. 'policy'
local cur = redis.call('GET', pk)
if cur and cur ~= ARGV[5] then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. 'sessions', '(' .. str(nowMs()), '+inf')) do
    local nd, ep = string.match(m, '^(.*)|(%d+)$')
    if nd ~= ARGV[3] and redis.call('GET', P .. 's:' .. nd) == ep then return {'other', cur, nd} end
  end
end
redis.call('SET', pk, ARGV[5])
return {'ok'}
`;

/**
 * RUN_CHECK: ARGV P. The run check alone (RUN): 1 when the namespace's data was written under
 * another run of the engine and has been dropped, else 0. Sent by EVAL, before a script the
 * engine does not know is loaded (a new server process, or SCRIPT FLUSH).
 */
export const RUN_CHECK = `${BASE}${RUN}
if rolledBack() then return 1 end
return 0
`;

/** The smallest script, the floor a commit's round trip is measured against. */
export const EMPTY = 'return 1';

/**
 * SPACE_READ: ARGV P, then files. Read-only (no write command: `locksmith locks --store`, which
 * joins no lock space, sends it by EVAL_RO): the incarnation ('' when there is none), how the
 * namespace's data stands to the engine's run, and per file its version and records, as LOAD
 * gives them, at one moment. The run, as rolledBack() in RUN would judge it without acting:
 * 'same' (the data is the run's, or would be adopted, or the engine is a replica of the run's
 * data set: the primary's replication ID as recorded), 'other' (written under another run: the
 * next node's run check drops it), 'unknown' (INFO or the run's key refused: nodes do not check
 * either). Never loaded by a node, so a node's scripts keep their run checks (RedisEngine.call).
 */
export const SPACE_READ = `${BASE}${RUN_ID}
local function runState()
  local run, noSecond = runId()
  if run == nil then return 'unknown' end
  local cur = redis.pcall('MGET', KEYS[1], P .. 'run')
  if type(cur) ~= 'table' or cur.err then return 'unknown' end
  if not cur[1] or not cur[2] or cur[2] == run then return 'same' end
  local id = string.match(run, '^(%x+)')
  local was = string.match(cur[2], '^(%x+)')
  if cur[2] == id or (noSecond and was == id) or (run == id and was == id) then return 'same' end
  -- A replica (an admin's listing is naturally pointed at one) has a run_id of its own and the
  -- primary's replication ID: the same ID as recorded is the primary's data set, as replicated.
  local rid, wasRid = string.match(run, ' (%x+)$'), string.match(cur[2], ' (%x+)$')
  if rid and rid == wasRid then
    local repl = redis.pcall('INFO', 'replication')
    if type(repl) == 'string' and string.match(repl, 'role:slave') then return 'same' end
  end
  return 'other'
end
local out = {redis.call('GET', KEYS[1]) or '', runState()}
for i = 2, #ARGV do
  out[#out + 1] = {redis.call('HGET', P .. 'm:' .. ARGV[i], 'v') or '0', redis.call('HGETALL', P .. 'r:' .. ARGV[i])}
end
return out
`;
