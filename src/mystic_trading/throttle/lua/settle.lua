-- Settle a batch of answers (window.lua is prepended). KEYS[1]: the bucket hash.
-- ARGV: ttl (s), then the batch as settle_batch reads it. Returns the number settled.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
settle_batch(KEYS[1], 2, now)
if redis.call('TTL', KEYS[1]) < ttl then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return tonumber(ARGV[2])
