-- Reserve weight in a GCRA bucket (continuous-state leaky bucket; see _gcra.py, which this
-- mirrors line for line). Time is Redis's own clock (TIME), so hosts with skewed clocks
-- still share one budget.
-- KEYS[1]: the bucket hash (fill, at); KEYS[2]: the ban (its end, ms on Redis's clock);
-- KEYS[3]: the pause (its end, s on Redis's clock). The ban and the pause are keys of their
-- own that expire when they end (penalty.lua), so the bucket's short TTL never takes them.
-- ARGV: weight, rate (weight/s), burst (weight), max_delay (s), ttl (s, of the bucket).
-- Returns {granted 0|1, delay seconds, ms of the ban left or "0"}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local weight = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local penalty = redis.call('MGET', KEYS[2], KEYS[3])
local ban = tonumber(penalty[1]) or 0
if ban > now_ms then
  return {0, string.format('%.17g', (ban - now_ms) / 1000), string.format('%.0f', ban - now_ms)}
end
local pause = tonumber(penalty[2]) or 0
local s = redis.call('HMGET', KEYS[1], 'fill', 'at')
local fill = tonumber(s[1]) or 0
local at = tonumber(s[2]) or now
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
