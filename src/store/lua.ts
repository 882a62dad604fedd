/**
 * The Redis engine's scripts. Each runs atomically in one round trip (EVALSHA through ioredis'
 * defineCommand). They store and check; they decide no lock: the checks are the session, the
 * version, record ownership, liveness of the sessions a step writes for, the grace period, and the
 * wait-for cycle search (a graph walk, not a lock rule). Each takes its decisions in the same
 * order as the matching method of MemoryEngine (./memory.ts), the reference.
 *
 * KEYS[1] is always `{ns}:inc`; ARGV[1] is the key prefix `{ns}:`. Every other key is built from
 * the prefix, so all keys share one hash slot (Redis Cluster runs a script on one slot). Numbers
 * go back to Redis through str(): Lua's own tostring would write 1.7e+15.
 */
import { LOG_MAX } from './memory.js';

/** How many of the newest log entries a stale commit reads first. */
const TAIL = 4;

const PRELUDE = `
local P = ARGV[1]
local function str(n) return string.format('%.0f', n) end
local function nowMs() local t = redis.call('TIME'); return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local aliveMemo = {}
local function alive(node, epoch)
  local k = node .. '|' .. epoch
  local a = aliveMemo[k]
  if a == nil then a = (redis.call('GET', P .. 's:' .. node) == epoch); aliveMemo[k] = a end
  return a
end
-- A stored record: seq|state|node|epoch|requestId|data
local function parse(v) return string.match(v, '^(%d+)|(%a)|([^|]*)|(%d+)|') end
local function fail(msg) return redis.error_reply('LOCKSMITH ' .. msg) end

-- The wait-for graph: {ns}:w:<owner> holds, per waiting request ("file\\nwaiter"), the waiter's
-- session and its hard and soft targets. overlay[owner][field] = false (gone) or a new edge.
local overlay = {}
local function edgesOf(owner)
  local out = {}
  local m = overlay[owner]
  local stored = redis.call('HGETALL', P .. 'w:' .. owner)
  for i = 1, #stored, 2 do
    if not (m and m[stored[i]] ~= nil) then
      local nd, ep, json = string.match(stored[i + 1], '^([^|]*)|(%d+)|(.*)$')
      if alive(nd, ep) then local hs = cjson.decode(json); out[#out + 1] = {h = hs[1], s = hs[2]} end
    end
  end
  if m then for _, e in pairs(m) do if e and alive(e.nd, e.ep) then out[#out + 1] = e end end end
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

-- One file's keys and the operations that keep its indexes.
local function fileKeys(file)
  return {file = file, r = P .. 'r:' .. file, m = P .. 'm:' .. file, l = P .. 'l:' .. file, e = P .. 'e:' .. file}
end
-- Records per session in the file; the session -> files index follows the count.
local function count(F, nd, ep, by)
  local s = nd .. '|' .. ep
  local c = redis.call('HINCRBY', F.m, 'c:' .. s, by)
  if c > 0 then
    if c == 1 and by == 1 then redis.call('SADD', P .. 'sf:' .. s, F.file) end
    return
  end
  redis.call('HDEL', F.m, 'c:' .. s)
  redis.call('SREM', P .. 'sf:' .. s, F.file)
  if redis.call('SCARD', P .. 'sf:' .. s) == 0 and not alive(nd, ep) then redis.call('ZREM', P .. 'sessions', s) end
end
local function dropEdges(F, w)
  local owner = redis.call('HGET', F.e, w)
  if owner then
    redis.call('HDEL', F.e, w)
    redis.call('HDEL', P .. 'w:' .. owner, F.file .. '\\n' .. w)
  end
end
-- Puts: {id, enc = 'state|node|epoch|requestId|data', st, nd, ep, old = stored text or false}.
local function readPuts(F, a, n, removed)
  local puts, putOf = {}, {}
  for i = 1, n do
    local id, enc = ARGV[a], ARGV[a + 1]
    a = a + 2
    local st, nd, ep = string.match(enc, '^(%a)|([^|]*)|(%d+)|')
    local old = false
    if not removed[id] then old = redis.call('HGET', F.r, id) end
    if old then
      local _, _, ond, oep = parse(old)
      if ond ~= nd or oep ~= ep then
        return nil, fail('record ' .. id .. ' in ' .. F.file .. ' belongs to ' .. ond .. '|' .. oep .. ', not ' .. nd .. '|' .. ep)
      end
    end
    local p = {id = id, enc = enc, st = st, nd = nd, ep = ep, old = old}
    puts[i] = p
    putOf[id] = p
  end
  return puts, putOf, a
end
-- Edges: {w, owner, check, json = '[hard, soft]'} and the waiter's session, which must be a
-- waiting record once the step applies.
local function readEdges(F, a, n, removed, putOf, withCheck)
  local edges = {}
  for i = 1, n do
    local w = ARGV[a]
    local nd, ep
    local p = putOf[w]
    if p then
      if p.st == 'w' then nd, ep = p.nd, p.ep end
    elseif not removed[w] then
      local v = redis.call('HGET', F.r, w)
      if v then
        local _, st, vn, ve = parse(v)
        if st == 'w' then nd, ep = vn, ve end
      end
    end
    if not nd then return nil, fail('edges of ' .. w .. ' in ' .. F.file .. ': no such waiter after the step') end
    local e = {w = w, owner = ARGV[a + 1], nd = nd, ep = ep}
    if withCheck then
      e.check = ARGV[a + 2] == '1'
      e.json = ARGV[a + 3]
      a = a + 4
    else
      e.json = ARGV[a + 2]
      a = a + 3
    end
    edges[i] = e
  end
  return edges, a
end
-- Applies removes, puts and edges, bumps the version and logs the change; the version, or '0'
-- when the file has no records left (its keys are deleted).
local function apply(F, base, step, node, removes, removed, puts, edges)
  for _, id in ipairs(removes) do
    local _, _, nd, ep = parse(removed[id])
    count(F, nd, ep, -1)
    dropEdges(F, id)
    redis.call('HDEL', F.r, id)
  end
  local logPut = {}
  for _, p in ipairs(puts) do
    local seq
    if p.old then
      seq = string.match(p.old, '^(%d+)|')
      if p.st == 'h' then dropEdges(F, p.id) end
    else
      seq = str(redis.call('HINCRBY', F.m, 'q', 1))
      count(F, p.nd, p.ep, 1)
    end
    local v = seq .. '|' .. p.enc
    redis.call('HSET', F.r, p.id, v)
    logPut[#logPut + 1] = p.id
    logPut[#logPut + 1] = v
  end
  for _, e in ipairs(edges) do
    dropEdges(F, e.w)
    local hs = cjson.decode(e.json)
    if #hs[1] > 0 or #hs[2] > 0 then
      redis.call('HSET', F.e, e.w, e.owner)
      redis.call('HSET', P .. 'w:' .. e.owner, F.file .. '\\n' .. e.w, e.nd .. '|' .. e.ep .. '|' .. e.json)
    end
  end
  local vs = str(redis.call('INCR', P .. 'clock'))
  -- Only removes can empty a file (or a step that puts nothing on a file that had nothing).
  if (#removes > 0 or #puts == 0) and redis.call('HLEN', F.r) == 0 then
    redis.call('DEL', F.r, F.m, F.l, F.e)
    redis.call('SREM', P .. 'files', F.file)
    return '0'
  end
  redis.call('HSET', F.m, 'v', vs)
  -- A file is in 'files' exactly while it has a version: it joins when its first step applies.
  if base == '0' then redis.call('SADD', P .. 'files', F.file) end
  if redis.call('RPUSH', F.l, base .. '|' .. vs .. '|' .. cjson.encode({step, node, removes, logPut})) > ${LOG_MAX} then
    redis.call('LTRIM', F.l, -${LOG_MAX}, -1)
  end
  return vs
end
`;

/**
 * COMMIT: ARGV P, inc, node, epoch, file, base, step, grants, nRemove, nPut, nNotify, nEdges,
 * until (the engine's ms from which the step is late; '' for never), then the removed ids, the
 * puts (id, record), the notifications (node, epoch, requestId, kind, data) and the edges
 * (waiter, owner, check, '[hard, soft]').
 */
export const COMMIT = `${PRELUDE}
local inc, node, epoch, file, base, step = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local grants = ARGV[8] == '1'
local nR, nP, nN, nE = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
-- 1. the incarnation (the engine did not lose its data), 2. this session, 3. the version.
if redis.call('GET', KEYS[1]) ~= inc then return {'reset'} end
if not alive(node, epoch) then return {'fenced'} end
local F = fileKeys(file)
local cur = redis.call('HGET', F.m, 'v') or '0'
if cur ~= base then
  -- The changes since base: from the log entry whose base is the caller's (bases only grow along
  -- the log, each entry's base being the version before it, so at most one matches). A caller is
  -- mostly a step or two behind: the last entries are read first, the rest only if need be.
  local tail = redis.call('LRANGE', F.l, '-${TAIL}', '-1')
  for i = 1, #tail do
    if string.match(tail[i], '^(%d+)|') == base then
      local out = {}
      for j = i, #tail do out[#out + 1] = tail[j] end
      return {'stale', cur, 'log', out}
    end
  end
  local log = #tail < ${TAIL} and {} or redis.call('LRANGE', F.l, '0', '-${TAIL + 1}')
  for i = 1, #log do
    if string.match(log[i], '^(%d+)|') == base then
      local out = {}
      for j = i, #log do out[#out + 1] = log[j] end
      for j = 1, #tail do out[#out + 1] = tail[j] end
      return {'stale', cur, 'log', out}
    end
  end
  return {'stale', cur, 'full', redis.call('HGETALL', F.r)}
end
-- A step past its deadline on this clock: its request was answered already (as failed), so it
-- never applies now (it was held up on its way: the engine paused, a slow network).
local untilMs = tonumber(ARGV[13])
if untilMs and nowMs() >= untilMs then return {'late'} end
-- An empty step checks without writing: this session is alive and the file is at base, and with
-- grants, that no grace period runs (an answer that found the bytes free).
if nR + nP + nN + nE == 0 then
  if grants then
    local g = redis.call('PTTL', P .. 'grace')
    if g > 0 then return {'grace', g} end
  end
  return {'ok', cur, step}
end
-- 4. the step agrees with the state it was decided on (else the caller has a bug).
local a = 14
local removed, removes = {}, {}
for i = 1, nR do
  local id = ARGV[a]
  a = a + 1
  local old = redis.call('HGET', F.r, id)
  if not old then return fail('no record ' .. id .. ' in ' .. file .. ' to remove') end
  removed[id] = old
  removes[i] = id
end
local puts, putOf
puts, putOf, a = readPuts(F, a, nP, removed)
if not puts then return putOf end
local notes = {}
for i = 1, nN do
  notes[i] = {ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]}
  a = a + 5
end
local edges
edges, a = readEdges(F, a, nE, removed, putOf, true)
if not edges then return a end
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
if grants then
  local g = redis.call('PTTL', P .. 'grace')
  if g > 0 then return {'grace', g} end
end
-- 7. no hard wait-for cycle (seen with the step's own edge changes made so far).
local function over(owner)
  local m = overlay[owner]
  if not m then m = {}; overlay[owner] = m end
  return m
end
local function drop(id)
  local owner = redis.call('HGET', F.e, id)
  if owner then over(owner)[file .. '\\n' .. id] = false end
end
for _, id in ipairs(removes) do drop(id) end
for _, p in ipairs(puts) do if p.st == 'h' and p.old then drop(p.id) end end
for _, e in ipairs(edges) do
  drop(e.w)
  local hs = cjson.decode(e.json)
  if e.check and #hs[1] > 0 and cycle(e.owner, hs[1], true) then return {'deadlock', e.w, e.owner} end
  if #hs[1] > 0 or #hs[2] > 0 then over(e.owner)[file .. '\\n' .. e.w] = {nd = e.nd, ep = e.ep, h = hs[1], s = hs[2]} end
end
-- 8. apply, then tell the other nodes' live waiters.
local vs = apply(F, base, step, node, removes, removed, puts, edges)
for _, n in ipairs(notes) do
  if n[1] ~= node and alive(n[1], n[2]) then
    redis.call('XADD', P .. 'in:' .. n[1], '*', 'f', file, 'v', vs, 'n', node, 'e', n[2], 'r', n[3], 'k', n[4], 'd', n[5])
  end
end
return {'ok', vs}
`;

/** REASSERT: ARGV P, inc, node, epoch, file, step, nPut, nEdges, puts (id, record), edges (waiter, owner, '[hard, soft]'). */
export const REASSERT = `${PRELUDE}
local inc, node, epoch, file, step = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local nP, nE = tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('GET', KEYS[1]) ~= inc then return {'reset'} end
if not alive(node, epoch) then return {'fenced'} end
if redis.call('PTTL', P .. 'grace') <= 0 then return {'late'} end
local F = fileKeys(file)
local base = redis.call('HGET', F.m, 'v') or '0'
local puts, putOf, a = readPuts(F, 9, nP, {})
if not puts then return putOf end
local edges
edges, a = readEdges(F, a, nE, {}, putOf, false)
if not edges then return a end
return {'ok', apply(F, base, step, node, {}, {}, puts, edges)}
`;

/**
 * OPEN: ARGV P, incarnation candidate, node, ttlMs, graceMs, instance. A new session; a new
 * incarnation (with its grace period) when there is none. {'taken'} when the node name's session
 * is live under another instance (another process, or one that died less than a TTL ago).
 */
export const OPEN = `${PRELUDE}
local created = 0
local inc = redis.call('GET', KEYS[1])
if not inc then
  inc = ARGV[2]
  redis.call('SET', KEYS[1], inc)
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
-- process may still act on its locks until its own fence).
local ok = P .. 'own:' .. node
if old then
  local owner = redis.call('GET', ok)
  if owner and owner ~= ARGV[6] then return {'taken'} end
end
redis.call('SET', ok, ARGV[6], 'PX', ARGV[4])
local epoch = str(redis.call('INCR', P .. 'clock'))
if old then redis.call('ZADD', P .. 'sessions', '0', node .. '|' .. old) end
redis.call('SET', sk, epoch, 'PX', ARGV[4])
redis.call('ZADD', P .. 'sessions', str(nowMs() + ttl), node .. '|' .. epoch)
local ik = P .. 'in:' .. node
redis.call('XTRIM', ik, 'MAXLEN', '0')
local from = redis.call('XADD', ik, '*', 'k', 'open', 'e', epoch)
local g = redis.call('PTTL', P .. 'grace')
if g < 0 then g = 0 end
return {inc, epoch, from, g, created, str(nowMs())}
`;

/** RENEW: ARGV P, inc, node, epoch, ttlMs, inbox id read up to ('' for none). Never brings back a session that is gone; tells whether some session awaits the reaper. */
export const RENEW = `${PRELUDE}
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return {'reset'} end
local node, epoch = ARGV[3], ARGV[4]
local sk = P .. 's:' .. node
if redis.call('GET', sk) ~= epoch then return {'expired'} end
redis.call('SET', sk, epoch, 'PX', ARGV[5])
redis.call('PEXPIRE', P .. 'own:' .. node, ARGV[5])
redis.call('ZADD', P .. 'sessions', str(nowMs() + tonumber(ARGV[5])), node .. '|' .. epoch)
if ARGV[6] ~= '' then redis.call('XTRIM', P .. 'in:' .. node, 'MINID', ARGV[6]) end
local g = redis.call('PTTL', P .. 'grace')
if g < 0 then g = 0 end
-- A registered session past its deadline (or ended: score 0) is the reaper's: say so, for free.
local due = #redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', str(nowMs()), 'LIMIT', '0', '1')
return {'ok', g, due, str(nowMs())}
`;

/** END: ARGV P, inc, node, epoch. The session ends now; its remaining records are the reaper's. */
export const END = `${PRELUDE}
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
local node, epoch = ARGV[3], ARGV[4]
local sk = P .. 's:' .. node
if redis.call('GET', sk) ~= epoch then return 0 end
redis.call('DEL', sk, P .. 'own:' .. node)
local m = node .. '|' .. epoch
if redis.call('SCARD', P .. 'sf:' .. m) == 0 then redis.call('ZREM', P .. 'sessions', m) else redis.call('ZADD', P .. 'sessions', '0', m) end
redis.call('DEL', P .. 'in:' .. node)
return 1
`;

/** LOAD: ARGV P, file. */
export const LOAD = `${PRELUDE}
local F = fileKeys(ARGV[2])
return {redis.call('HGET', F.m, 'v') or '0', redis.call('HGETALL', F.r)}
`;

/** CYCLE: ARGV P, owner, hardOnly, targets... */
/**
 * REACH: ARGV P, hardOnly, then pairs (from, to): per pair, 1 when `from` already waits for `to`
 * through the wait-for edges of live sessions, else 0 (the 'fifo' escape's question, asked for a
 * file's waiting owners before a decision). Read-only.
 */
export const REACH = `${PRELUDE}
local out = {}
for i = 3, #ARGV - 1, 2 do
  out[#out + 1] = cycle(ARGV[i + 1], {ARGV[i]}, ARGV[2] == '1') and 1 or 0
end
return out
`;

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

/** The smallest script, the floor a commit's round trip is measured against. */
export const EMPTY = 'return 1';
