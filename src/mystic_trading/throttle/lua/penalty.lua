-- A 429 pause or a 418 ban for every process, or a read of the ban.
-- KEYS[1]: the ban, its end in ms on Redis's clock; KEYS[2]: the pause, its end in s on
-- Redis's clock. Each is a key of its own that expires exactly when it ends: nothing else
-- (the bucket's TTL, set by reserve.lua and sync.lua) can shorten it, and it does not outlive
-- itself. Only ever lengthened here; `mystic throttle ban clear` deletes the ban.
-- ARGV: kind ("pause" | "ban" | "read"), value (pause: seconds from now; ban: ms from now,
-- as the caller measured it on its own clock: the end is re-based on Redis's clock here, so
-- hosts whose clocks are off still agree on how long the ban lasts).
-- Returns the ms of the ban left (as a string), or "0".
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = ARGV[1]
local value = tonumber(ARGV[2]) or 0
if kind == 'pause' and value > 0 then
  local pause_end = now + value
  if pause_end > (tonumber(redis.call('GET', KEYS[2])) or 0) then
    redis.call('SET', KEYS[2], string.format('%.17g', pause_end),
      'PX', string.format('%.0f', math.ceil(value * 1000)))
  end
end
local ban = tonumber(redis.call('GET', KEYS[1])) or 0
if kind == 'ban' and value > 0 and now_ms + value > ban then
  ban = now_ms + value
  redis.call('SET', KEYS[1], string.format('%.0f', ban), 'PX', string.format('%.0f', value))
end
if ban > now_ms then
  return string.format('%.0f', ban - now_ms)
end
return '0'
