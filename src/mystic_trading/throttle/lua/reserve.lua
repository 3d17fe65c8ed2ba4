-- Reserve weight in a GCRA bucket (continuous-state leaky bucket) and, with a cap, in the
-- exchange's fixed windows (see _gcra.py, which this mirrors line for line). Time is Redis's
-- own clock (TIME), so hosts with skewed clocks still share one budget; the exchange's
-- windows are placed on it by the caller's reading of the exchange's clock.
-- KEYS[1]: the bucket hash (fill, at, window, used, next); KEYS[2]: the ban (its end, ms on
-- Redis's clock); KEYS[3]: the pause (its end, s on Redis's clock). The ban and the pause
-- are keys of their own that expire when they end (penalty.lua), so the bucket's short TTL
-- never takes them.
-- ARGV: weight, rate (weight/s), burst (weight), max_delay (s), ttl (s, of the bucket),
-- cap (weight per window, "0": no windows), window (s), exchange (the exchange's clock as
-- the caller read it, epoch s), skew (s, how far that reading may be wrong).
-- Returns {granted 0|1, delay seconds, ms of the ban left or "0"}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local weight = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local cap = tonumber(ARGV[6]) or 0
local length = tonumber(ARGV[7]) or 1
local offset = (tonumber(ARGV[8]) or now) - now
local skew = tonumber(ARGV[9]) or 0
local penalty = redis.call('MGET', KEYS[2], KEYS[3])
local ban = tonumber(penalty[1]) or 0
if ban > now_ms then
  return {0, string.format('%.17g', (ban - now_ms) / 1000), string.format('%.0f', ban - now_ms)}
end
local pause = tonumber(penalty[2]) or 0
local s = redis.call('HMGET', KEYS[1], 'fill', 'at', 'window', 'used', 'next')
local fill = tonumber(s[1]) or 0
local at = tonumber(s[2]) or now
local window = tonumber(s[3]) or -1
local used = tonumber(s[4]) or 0
local used_next = tonumber(s[5]) or 0
local function used_in(index)
  if index == window then return used end
  if index == window + 1 then return used_next end
  return 0
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
local first, last = 0, 0
if cap > 0 then
  local room = math.max(cap, weight)
  while true do
    local exchange = start + offset
    first = math.floor((exchange - skew) / length)
    last = math.floor((exchange + skew) / length)
    local full = nil
    if used_in(first) + weight > room then
      full = first
    elseif last ~= first and used_in(last) + weight > room then
      full = last
    end
    if full == nil then break end
    start = math.max(start, (full + 1) * length + skew - offset) + 0.0001
  end
  if start > at then
    fill = math.min(fill, math.max(0, (tonumber(s[1]) or 0) - rate * (start - at)))
  end
end
local delay = start - now
if delay > max_delay then
  return {0, string.format('%.17g', delay), '0'}
end
if cap > 0 then
  if first == window + 1 then
    window, used, used_next = first, used_next, 0
  elseif first > window + 1 then
    window, used, used_next = first, 0, 0
  end
  for _, index in ipairs(last ~= first and {first, last} or {first}) do
    if index == window then
      used = used + weight
    elseif index == window + 1 then
      used_next = used_next + weight
    end
  end
end
redis.call('HSET', KEYS[1], 'fill', string.format('%.17g', fill + weight),
  'at', string.format('%.17g', start), 'window', string.format('%.0f', window),
  'used', string.format('%.17g', used), 'next', string.format('%.17g', used_next))
redis.call('EXPIRE', KEYS[1], math.max(ttl, math.ceil(start - now) + ttl))
return {1, string.format('%.17g', delay), '0'}
