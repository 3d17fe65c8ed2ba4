-- Account the answer to a granted request in the windows it was charged to; mirrors
-- _window.settle (see its module docstring). "answered" is Redis's clock now.
-- KEYS[1]: the bucket hash (see reserve.lua for its fields).
-- ARGV: weight, start (epoch s, as reserve returned it), used (header, -1 = none),
-- sent (1 | 0), window (s), guard (s), ttl (s). Returns the accepted window or -1.
local t = redis.call('TIME')
local answered = tonumber(t[1]) + tonumber(t[2]) / 1000000
local weight = tonumber(ARGV[1])
local start = tonumber(ARGV[2])
local used = tonumber(ARGV[3])
local sent = ARGV[4] == '1'
local window = tonumber(ARGV[5])
local guard = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local key = KEYS[1]
local function fmt(x) return string.format('%.17g', x) end
local first = math.floor((start - guard) / window)
local last = math.floor((start + guard) / window)
local accepted = nil
if sent and used >= 0 and first == math.floor((answered + guard) / window) then
  accepted = first
end
for i = first, last do
  local v = redis.call('HMGET', key, 'f' .. i, 'c' .. i, 'u' .. i, 'k' .. i, 'p' .. i, 'q' .. i)
  local inflight = math.max(0, (tonumber(v[1]) or 0) - weight)
  local fields = {'f' .. i, fmt(inflight)}
  local known = tonumber(v[4]) or -1e300
  local pending = tonumber(v[5]) or 0
  local pending_at = tonumber(v[6]) or -1e300
  if not sent then
    table.insert(fields, 'c' .. i)
    table.insert(fields, fmt(math.max(0, (tonumber(v[2]) or 0) - weight)))
  elseif i == accepted then
    local u = math.max(tonumber(v[3]) or -1, used)
    known = math.max(known, start)
    table.insert(fields, 'u' .. i)
    table.insert(fields, fmt(u))
    table.insert(fields, 'k' .. i)
    table.insert(fields, fmt(known))
  elseif accepted == nil then
    pending = pending + weight
    pending_at = math.max(pending_at, answered)
  end
  if pending > 0 and known >= pending_at then
    pending, pending_at = 0, -1e300
  end
  table.insert(fields, 'p' .. i)
  table.insert(fields, fmt(pending))
  table.insert(fields, 'q' .. i)
  table.insert(fields, fmt(pending_at))
  redis.call('HSET', key, unpack(fields))
end
if redis.call('TTL', key) < ttl then
  redis.call('EXPIRE', key, ttl)
end
if accepted == nil then return -1 end
return accepted
