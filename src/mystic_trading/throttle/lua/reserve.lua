-- Reserve weight: the exchange's fixed windows (_window.py) and a GCRA pace (_gcra.py); this mirrors MemoryQuota.reserve_now line for line. Time is Redis's
-- own clock (TIME, epoch seconds), so every process and host meters one budget on one clock.
-- window.lua is prepended: answers waiting to be settled ride along and are settled first.
-- KEYS[1]: the bucket hash: fill, at, pause, ban, and the window fields (see window.lua).
-- ARGV: weight, rate (weight/s), burst (weight), max_delay (s), ttl (s), limit (weight per
-- window, 0 = GCRA only), window (s), guard (s), then a settle batch (see settle_batch).
-- Returns {granted 0|1, delay seconds, ban end ms or "0", start (epoch s) or "0"}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local weight = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
local window = tonumber(ARGV[7])
local guard = tonumber(ARGV[8])
local key = KEYS[1]
settle_batch(key, 9, now)
local s = redis.call('HMGET', key, 'fill', 'at', 'pause', 'ban', 'gc')
local fill = tonumber(s[1]) or 0
local at = tonumber(s[2]) or now
local pause = tonumber(s[3]) or 0
local ban = tonumber(s[4]) or 0
if ban > now_ms then
  return {0, fmt((ban - now_ms) / 1000), string.format('%.0f', ban), '0'}
end
local start = math.max(now, pause)
start = math.max(start, at)
if start > at then
  fill = math.max(0, fill - rate * (start - at))
end
local excess = fill + weight - burst
if excess > 0 then
  start = start + excess / rate
  fill = burst - weight
end
local cache = {}
local function count(i)
  local c = cache[i]
  if c == nil then
    local v = redis.call('HMGET', key, 'c' .. i, 'f' .. i, 'u' .. i, 'p' .. i)
    c = {charged = tonumber(v[1]) or 0, inflight = tonumber(v[2]) or 0,
         used = tonumber(v[3]) or -1, pending = tonumber(v[4]) or 0}
    cache[i] = c
  end
  return c
end
local function estimate(c)
  if c.used < 0 then return c.charged end
  return c.used + c.inflight + c.pending
end
local function windows_at(x)
  local first = math.floor((x - guard) / window)
  local last = math.floor((x + guard) / window)
  if first == last then return {first} end
  return {first, last}
end
if limit > 0 then
  local from = start
  local span = math.max(window - guard, window / 2)
  for _ = 1, 8 do
    local moved = false
    for _, i in ipairs(windows_at(start)) do
      local est = estimate(count(i))
      local need = est + weight
      if need > limit and est > 0 then
        start = math.max(start, (i + 1) * window + guard)
        moved = true
        break
      end
      local allowance = math.min(limit, limit * (start - i * window) / span + burst)
      if need > allowance then
        start = math.max(start, i * window + (need - burst) * span / limit)
        moved = true
        break
      end
    end
    if not moved then break end
  end
  fill = math.max(0, fill - rate * (start - from))
end
local delay = start - now
if delay > max_delay then
  return {0, fmt(delay), '0', '0'}
end
redis.call('HSET', key, 'fill', fmt(fill + weight), 'at', fmt(start))
if limit > 0 then
  for _, i in ipairs(windows_at(start)) do
    local c = count(i)  -- read by the search above: no extra call
    redis.call('HSET', key, 'c' .. i, fmt(c.charged + weight), 'f' .. i, fmt(c.inflight + weight))
  end
  -- Windows two and more behind are over for good: drop their fields once per window.
  local current = math.floor(now / window)
  local cleaned = tonumber(s[5]) or (current - 3)
  if cleaned < current then
    for i = math.max(cleaned - 2, current - 6), current - 2 do
      redis.call('HDEL', key, 'c' .. i, 'f' .. i, 'u' .. i, 'k' .. i, 'p' .. i, 'q' .. i)
    end
    redis.call('HSET', key, 'gc', current)
  end
end
redis.call('EXPIRE', key, math.max(ttl, math.ceil(start - now) + ttl))
return {1, fmt(delay), '0', fmt(start)}
