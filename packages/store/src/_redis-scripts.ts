/**
 * The Lua scripts of the `redis` store (package-private). Every compound operation — put with the
 * capacity check and eviction, get with a hold, delete, release, track, reap — is one script, so
 * it is atomic across every client of every process and machine.
 *
 * Keys of a store, all under its prefix `P` = `improv:<storeId>:` (see docs/redis.md):
 *
 * | key               | type   | what                                                               |
 * |-------------------|--------|--------------------------------------------------------------------|
 * | `P v:<k>`         | string | the value's data: raw array bytes or msgpack (see _redis-codec.ts) |
 * | `P m:<k>`         | hash   | `h` header (dtype, shape, byte length), `b` bytes counted, `q` put sequence, `r` read (0/1), `f` messages in flight, `e` TTL deadline (ms), `o` owner of an unflushed allocation |
 * | `P h:<k>`         | hash   | holds: client id → lease end (ms)                                  |
 * | `P held:<client>` | set    | keys a client holds (for release() and recovery)                    |
 * | `P alloc:<client>`| set    | a client's allocations not yet flushed (for recovery)              |
 * | `P stats`         | hash   | `used` bytes, `objects`, `seq`                                     |
 * | `P order`         | zset   | put sequence → key: eviction goes oldest first                      |
 * | `P ttl`           | zset   | next time to look at a value with a TTL → key                      |
 * | `P evicted`, `P expired` | zset | tombstones: key → when (ms); the newest 10 000, for 10 minutes |
 * | `P clients`       | string | client id counter                                                  |
 * | `P closed`        | string | set when the store was closed; no put may recreate it            |
 *
 * `<k>` is the store key without its store prefix. Times are the Redis server's (`TIME`), so clients
 * on machines with different clocks agree. Scripts build key names from `ARGV[1]` = `P` (they work
 * on a single Redis server, not on a cluster).
 * @module
 */
import { createHash } from 'node:crypto';

/** Shared helpers, prepended to every script. */
const PRELUDE = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local P = ARGV[1]
local STATS = P .. 'stats'
local TOMB_MS = 600000
local TOMB_MAX = 10000
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local NOW = now_ms()

-- Live holds of k (pruning lapsed ones): whether any, and the latest lease end.
local function holds(k)
  local hk = P .. 'h:' .. k
  local h = redis.call('HGETALL', hk)
  local live = 0
  local last = 0
  for i = 1, #h, 2 do
    local e = tonumber(h[i + 1])
    if e > NOW then
      live = live + 1
      if e > last then last = e end
    else
      redis.call('HDEL', hk, h[i])
      redis.call('SREM', P .. 'held:' .. h[i], k)
    end
  end
  return live, last
end

local function tombstone(set, k)
  local z = P .. set
  redis.call('ZADD', z, NOW, k)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', NOW - TOMB_MS)
  if redis.call('ZCARD', z) > TOMB_MAX then redis.call('ZREMRANGEBYRANK', z, 0, -TOMB_MAX - 1) end
end

-- Frees value k; 'evicted' or 'expired' leaves a tombstone. False when there was none.
local function free(k, reason)
  local mk = P .. 'm:' .. k
  local m = redis.call('HMGET', mk, 'b', 'o')
  if not m[1] then return false end
  redis.call('DEL', P .. 'v:' .. k, mk)
  local hk = P .. 'h:' .. k
  local clients = redis.call('HKEYS', hk)
  for _, c in ipairs(clients) do redis.call('SREM', P .. 'held:' .. c, k) end
  redis.call('DEL', hk)
  if m[2] then redis.call('SREM', P .. 'alloc:' .. m[2], k) end
  redis.call('ZREM', P .. 'order', k)
  redis.call('ZREM', P .. 'ttl', k)
  redis.call('HINCRBY', STATS, 'used', -tonumber(m[1]))
  redis.call('HINCRBY', STATS, 'objects', -1)
  if reason then tombstone(reason, k) end
  return true
end

-- Frees k if its TTL has passed and nobody holds it; else reschedules the look. True when freed.
local function expire_if_due(k, e)
  if not e or tonumber(e) > NOW then return false end
  local live, last = holds(k)
  if live > 0 then
    redis.call('ZADD', P .. 'ttl', last, k)
    return false
  end
  return free(k, 'expired')
end

-- Frees up to limit values whose TTL has passed and that nobody holds.
local function reap(limit)
  local due = redis.call('ZRANGEBYSCORE', P .. 'ttl', '-inf', NOW, 'LIMIT', 0, limit)
  local n = 0
  for _, k in ipairs(due) do
    local e = redis.call('HGET', P .. 'm:' .. k, 'e')
    if not e then
      redis.call('ZREM', P .. 'ttl', k)
    elseif tonumber(e) > NOW then
      redis.call('ZADD', P .. 'ttl', e, k)
    elseif expire_if_due(k, e) then
      n = n + 1
    end
  end
  return n
end

local function stat(name)
  return tonumber(redis.call('HGET', STATS, name) or '0')
end

-- Why k holds nothing: 'evicted', 'expired' or 'unknown'.
local function missing(k)
  if redis.call('ZSCORE', P .. 'evicted', k) then return 'evicted' end
  if redis.call('ZSCORE', P .. 'expired', k) then return 'expired' end
  return 'unknown'
end
`;

/**
 * Put (and allocate). A large value is sent as a plain `SET v:<k> <data>` right before this script
 * in the same MULTI (no copy of it into a Lua string), and removed again here when it does not fit;
 * a small one comes inline, as the last argument, and is written here once it fits.
 * ARGV: P, k, bytes, capacity, eviction ('none'|'oldest'), high, low, ttlMs ('' = none),
 *       holder client id ('' = none: a put; else an allocation held by it), leaseMs, header,
 *       [data].
 * Returns {1} when stored; {0, used, objects, held, unread, inFlight} when full; {-1} when the
 * store was closed.
 */
const PUT = `
local k = ARGV[2]
local b = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local evict = ARGV[5] == 'oldest'
local high = tonumber(ARGV[6])
local low = tonumber(ARGV[7])
local vk = P .. 'v:' .. k
if redis.call('EXISTS', P .. 'closed') == 1 then
  redis.call('DEL', vk)
  return {-1}
end
reap(100)
local used = stat('used')
if evict and used + b > cap * high then
  local target = cap * low
  local cursor = 0
  while used + b > target do
    local batch = redis.call('ZRANGE', P .. 'order', cursor, cursor + 99)
    if #batch == 0 then break end
    for _, c in ipairs(batch) do
      local m = redis.call('HMGET', P .. 'm:' .. c, 'r', 'f', 'b')
      local freed = false
      if m[1] == '1' and (not m[2] or tonumber(m[2]) <= 0) and m[3] then
        local live = holds(c)
        if live == 0 then
          free(c, 'evicted')
          used = used - tonumber(m[3])
          freed = true
        end
      end
      if not freed then cursor = cursor + 1 end
      if used + b <= target then break end
    end
  end
end
if used + b > cap then
  redis.call('DEL', vk)
  local held, unread, inflight = 0, 0, 0
  if evict then
    local all = redis.call('ZRANGE', P .. 'order', 0, -1)
    for _, c in ipairs(all) do
      local m = redis.call('HMGET', P .. 'm:' .. c, 'r', 'f')
      if m[1] ~= '1' then unread = unread + 1 end
      if m[2] and tonumber(m[2]) > 0 then inflight = inflight + 1 end
      if holds(c) > 0 then held = held + 1 end
    end
  end
  return {0, used, stat('objects'), held, unread, inflight}
end
if ARGV[12] then redis.call('SET', vk, ARGV[12]) end
local seq = redis.call('HINCRBY', STATS, 'seq', 1)
local mk = P .. 'm:' .. k
redis.call('HSET', mk, 'h', ARGV[11], 'b', b, 'q', seq, 'r', 0)
redis.call('ZADD', P .. 'order', seq, k)
if ARGV[8] ~= '' then
  local e = NOW + tonumber(ARGV[8])
  redis.call('HSET', mk, 'e', e)
  redis.call('ZADD', P .. 'ttl', e, k)
end
local holder = ARGV[9]
if holder ~= '' then
  redis.call('HSET', mk, 'o', holder)
  redis.call('HSET', P .. 'h:' .. k, holder, NOW + tonumber(ARGV[10]))
  redis.call('SADD', P .. 'held:' .. holder, k)
  redis.call('SADD', P .. 'alloc:' .. holder, k)
end
redis.call('HINCRBY', STATS, 'used', b)
redis.call('HINCRBY', STATS, 'objects', 1)
return {1}
`;

/**
 * Looks a key up for a read: frees it first when its TTL has passed and nobody holds it; with a
 * client id, marks it read, and holds it for that client where something other than a delete could
 * free it: the store evicts, or the value has a TTL (otherwise a hold would protect nothing, and the
 * client's release would be a round trip for nothing). With an inline limit, a value of at most
 * that many bytes comes back too (a larger one the client GETs next: its hold, where it needs one,
 * keeps it).
 * ARGV: P, k, client id ('' = only look), leaseMs, inline limit ('' = no data), '1' when the store
 * evicts.
 * Returns {1, header, held (1/0)[, data]} when the value is there; {0, reason} when not.
 */
const READ = `
local k = ARGV[2]
local mk = P .. 'm:' .. k
local m = redis.call('HMGET', mk, 'h', 'e')
if not m[1] then return {0, missing(k)} end
if m[2] and expire_if_due(k, m[2]) then return {0, 'expired'} end
local client = ARGV[3]
local held = 0
if client ~= '' then
  redis.call('HSET', mk, 'r', 1)
  if ARGV[6] == '1' or m[2] then
    redis.call('HSET', P .. 'h:' .. k, client, NOW + tonumber(ARGV[4]))
    redis.call('SADD', P .. 'held:' .. client, k)
    held = 1
  end
end
if ARGV[5] and ARGV[5] ~= '' then
  local vk = P .. 'v:' .. k
  if redis.call('STRLEN', vk) <= tonumber(ARGV[5]) then
    return {1, m[1], held, redis.call('GET', vk) or ''}
  end
end
return {1, m[1], held}
`;

/** ARGV: P, k. Returns 1 when a value was freed, else 0. */
const DELETE = `
if free(ARGV[2], nil) then return 1 end
return 0
`;

/**
 * Flush of an allocation: its data is written (unless it was deleted or expired meanwhile: `XX`),
 * it is no longer the client's unflushed allocation, and its hold ends. A large array is sent as
 * `SET v:<k> <data> XX` right before this script in the same MULTI; a small one comes inline.
 * ARGV: P, client id, k, [data].  Returns 1 when the value is still there, else 0.
 */
const FLUSHED = `
local client = ARGV[2]
local k = ARGV[3]
local mk = P .. 'm:' .. k
if ARGV[4] then redis.call('SET', P .. 'v:' .. k, ARGV[4], 'XX') end
redis.call('SREM', P .. 'alloc:' .. client, k)
redis.call('HDEL', P .. 'h:' .. k, client)
redis.call('SREM', P .. 'held:' .. client, k)
local m = redis.call('HMGET', mk, 'o', 'e', 'b')
if not m[3] then return 0 end
if m[1] == client then redis.call('HDEL', mk, 'o') end
if expire_if_due(k, m[2]) then return 0 end
return 1
`;

/**
 * Ends holds of a client: of the given keys, or of every key it holds when none are given (but not
 * of its unflushed allocations: those are held until their flush). A value whose TTL passed while it
 * was held is freed now, unless another client holds it too.
 * ARGV: P, client id, keys...  Returns how many holds ended.
 */
const RELEASE = `
local client = ARGV[2]
local hs = P .. 'held:' .. client
local keys = {}
local all = #ARGV == 2
if all then
  keys = redis.call('SMEMBERS', hs)
else
  for i = 3, #ARGV do keys[#keys + 1] = ARGV[i] end
end
local n = 0
for _, k in ipairs(keys) do
  local mk = P .. 'm:' .. k
  local m = redis.call('HMGET', mk, 'o', 'e')
  if not (all and m[1] == client) then
    n = n + redis.call('HDEL', P .. 'h:' .. k, client)
    redis.call('SREM', hs, k)
    if m[2] then expire_if_due(k, m[2]) end
  end
end
return n
`;

/**
 * Counts messages in flight: adds delta to the count of every key that holds a value.
 * ARGV: P, delta, keys...
 */
const TRACK = `
local delta = tonumber(ARGV[2])
for i = 3, #ARGV do
  local mk = P .. 'm:' .. ARGV[i]
  if redis.call('EXISTS', mk) == 1 then
    if redis.call('HINCRBY', mk, 'f', delta) <= 0 then redis.call('HDEL', mk, 'f') end
  end
end
return 0
`;

/** Reaps due values, then reports usage. ARGV: P, limit. Returns {used, objects, reaped}. */
const USAGE = `
local n = reap(tonumber(ARGV[2]))
return {stat('used'), stat('objects'), n}
`;

/**
 * Recovery after a client died: its holds end and its unflushed allocations (never sent anywhere:
 * a key leaves an actor only after flush) are freed. ARGV: P, client id. Returns {holds, freed}.
 */
const RECOVER = `
local client = ARGV[2]
local freed = 0
for _, k in ipairs(redis.call('SMEMBERS', P .. 'alloc:' .. client)) do
  if redis.call('HGET', P .. 'm:' .. k, 'o') == client and free(k, nil) then freed = freed + 1 end
end
redis.call('DEL', P .. 'alloc:' .. client)
local hs = P .. 'held:' .. client
local n = 0
for _, k in ipairs(redis.call('SMEMBERS', hs)) do
  n = n + redis.call('HDEL', P .. 'h:' .. k, client)
  local e = redis.call('HGET', P .. 'm:' .. k, 'e')
  if e then expire_if_due(k, e) end
end
redis.call('DEL', hs)
return {n, freed}
`;

/** A script and its SHA1, for EVALSHA. */
export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, body: string): Script {
  const source = `${PRELUDE}\n${body}`;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

export const scripts = {
  put: script('put', PUT),
  read: script('read', READ),
  delete: script('delete', DELETE),
  flushed: script('flushed', FLUSHED),
  release: script('release', RELEASE),
  track: script('track', TRACK),
  usage: script('usage', USAGE),
  recover: script('recover', RECOVER),
} as const;

export const allScripts: readonly Script[] = Object.values(scripts);
