-- Raise a bucket's fill to what the exchange reports as used (upward only; see _gcra.py
-- sync_usage, which this mirrors).
-- KEYS[1]: the bucket hash (fill, at; the ban and the pause are keys of their own, so the
-- EXPIRE here never shortens them).
-- ARGV: used (weight), limit_eff (weight), remaining (s until the window ends), rate, burst,
-- ttl (s). Returns 1 if the fill was raised, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local used = tonumber(ARGV[1])
local limit_eff = tonumber(ARGV[2])
local remaining = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
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
