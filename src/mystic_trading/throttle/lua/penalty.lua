-- A 429 pause or a 418 ban on a bucket, for every process; or read the ban.
-- KEYS[1]: the bucket hash.
-- ARGV: kind ("pause" | "ban"), value (pause: seconds from now; ban: end, UTC epoch ms; a ban
-- value of 0 only reads), ttl (s).
-- Returns the ban end in force (ms, as a string) or "0".
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = ARGV[1]
local value = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'pause', 'ban')
local pause = tonumber(s[1]) or 0
local ban = tonumber(s[2]) or 0
if kind == 'pause' then
  local pause_end = now + value
  if pause_end > pause then
    redis.call('HSET', KEYS[1], 'pause', string.format('%.17g', pause_end))
    local keep = math.ceil(value * 1000) + ttl * 1000
    if redis.call('PTTL', KEYS[1]) < keep then
      redis.call('PEXPIRE', KEYS[1], keep)
    end
  end
elseif kind == 'ban' and value > ban then
  ban = value
  redis.call('HSET', KEYS[1], 'ban', string.format('%.0f', ban))
  if ban > now_ms then
    redis.call('PEXPIRE', KEYS[1], math.ceil(ban - now_ms) + ttl * 1000)
  end
end
if ban > now_ms then
  return string.format('%.0f', ban)
end
return '0'
