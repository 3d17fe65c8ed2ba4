-- One heartbeat, dated on Redis's clock (TIME), so every process of a deployment is judged
-- on one clock whatever its host's.
-- KEYS[1]: the process's hash; KEYS[2]: the deployment's index (a zset of process ids by
-- last beat, ms); KEYS[3]: the process's ring of samples (a list of "<beat_at> <sample>").
-- ARGV: process id, uptime (ms, the process's monotonic clock), keep (ms: how long the
-- record outlives its last beat), seq (the process's count of beats), record (JSON: the
-- process's identity, interval and figures; opaque here), sample (JSON, '' for none), and
-- how many samples the ring keeps.
-- A beat older than the kept one (by seq) changes nothing. started_at is set once: this
-- beat's time less the uptime. A beat clears stopped_at. Returns {now, started_at, kept?}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[3])
local kept_seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
if kept_seq ~= nil and kept_seq > tonumber(ARGV[4]) then
  return {string.format('%.0f', now), redis.call('HGET', KEYS[1], 'started_at') or '0', 0}
end
redis.call('HSET', KEYS[1], 'seq', ARGV[4], 'beat_at', string.format('%.0f', now),
  'record', ARGV[5])
redis.call('HSETNX', KEYS[1], 'started_at', string.format('%.0f', now - tonumber(ARGV[2])))
redis.call('HDEL', KEYS[1], 'stopped_at')
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZADD', KEYS[2], string.format('%.0f', now), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%.0f', now - keep))
redis.call('PEXPIRE', KEYS[2], keep)
if ARGV[6] ~= '' then
  redis.call('RPUSH', KEYS[3], string.format('%.0f', now) .. ' ' .. ARGV[6])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[7]), -1)
  redis.call('PEXPIRE', KEYS[3], keep)
end
return {string.format('%.0f', now), redis.call('HGET', KEYS[1], 'started_at'), 1}
