-- Count what the exchange reports as used (upward only; see _gcra.py sync_window and
-- sync_usage, which this mirrors): with windows counted, raise that window's count;
-- without, raise the bucket's fill.
-- KEYS[1]: the bucket hash (fill, at, window, used, next; the ban and the pause are keys of
-- their own, so the EXPIRE here never shortens them).
-- ARGV: used (weight), limit_eff (weight), remaining (s until the window ends), rate, burst,
-- ttl (s), index (the exchange's window the usage belongs to, "-1": no windows counted).
-- Returns 1 if the count or the fill was raised, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local used = tonumber(ARGV[1])
local limit_eff = tonumber(ARGV[2])
local remaining = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local index = tonumber(ARGV[7]) or -1
if index >= 0 then
  local s = redis.call('HMGET', KEYS[1], 'window', 'used', 'next')
  local window = tonumber(s[1]) or -1
  local counted = tonumber(s[2]) or 0
  local counted_next = tonumber(s[3]) or 0
  if index < window then
    return 0
  end
  if index > window + 1 then
    window, counted, counted_next = index - 1, 0, 0
  end
  local field = 'used'
  local known = counted
  if index == window + 1 then
    field, known = 'next', counted_next
  end
  if used <= known then
    return 0
  end
  redis.call('HSET', KEYS[1], 'window', string.format('%.0f', window),
    'used', string.format('%.17g', counted), 'next', string.format('%.17g', counted_next))
  redis.call('HSET', KEYS[1], field, string.format('%.17g', used))
  redis.call('EXPIRE', KEYS[1], math.max(ttl, math.ceil(remaining) + ttl))
  return 1
end
local s = redis.call('HMGET', KEYS[1], 'fill', 'at')
local fill = tonumber(s[1]) or 0
local at = tonumber(s[2]) or now
if at < now then
  fill = math.max(0, fill - rate * (now - at))
  at = now
end
local target = burst + rate * remaining - (limit_eff - used) - rate * (at - now)
if target > fill then
  redis.call('HSET', KEYS[1], 'fill', string.format('%.17g', target),
    'at', string.format('%.17g', at))
  redis.call('EXPIRE', KEYS[1], math.max(ttl, math.ceil(remaining) + ttl))
  return 1
end
return 0
