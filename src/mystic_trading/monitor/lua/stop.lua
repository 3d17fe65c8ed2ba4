-- A process closed cleanly: stamp stopped_at on Redis's clock, so readers show it gone at
-- once rather than three beats later. KEYS[1]: the process's hash. Returns 1 if it was kept.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'stopped_at', string.format('%.0f', now))
return 1
