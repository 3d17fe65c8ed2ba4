-- Reserve weight in a GCRA bucket (continuous-state leaky bucket; see _gcra.py, which this
-- mirrors line for line). Time is Redis's own clock (TIME), so hosts with skewed clocks
-- still share one budget.
-- KEYS[1]: the bucket hash (fill, at, pause, ban).
-- ARGV: weight, rate (weight/s), burst (weight), max_delay (s), ttl (s).
-- Returns {granted 0|1, delay seconds, ban end ms or "0"}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local weight = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'fill', 'at', 'pause', 'ban')
local fill = tonumber(s[1]) or 0
local at = tonumber(s[2]) or now
local pause = tonumber(s[3]) or 0
local ban = tonumber(s[4]) or 0
if ban > now_ms then
  return {0, string.format('%.17g', (ban - now_ms) / 1000), string.format('%.0f', ban)}
end
local start = math.max(now, at, pause)
if start > at then
  fill = math.max(0, fill - rate * (start - at))
end
local excess = fill + weight - burst
if excess > 0 then
  start = start + excess / rate
  fill = burst - weight
end
local delay = start - now
if delay > max_delay then
  return {0, string.format('%.17g', delay), '0'}
end
redis.call('HSET', KEYS[1], 'fill', string.format('%.17g', fill + weight),
  'at', string.format('%.17g', start))
redis.call('EXPIRE', KEYS[1], math.max(ttl, math.ceil(start - now) + ttl))
return {1, string.format('%.17g', delay), '0'}
