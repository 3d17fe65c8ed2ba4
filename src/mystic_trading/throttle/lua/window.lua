-- Shared by reserve.lua and settle.lua (prepended to each): settle one answer in the windows
-- it was charged to; mirrors _window.settle (see its module docstring).
-- Fields of the bucket hash per window i: c<i> (charged), f<i> (in flight), u<i> (used, from
-- the header), k<i> (known), p<i> (pending), q<i> (pending_at).
local function fmt(x) return string.format('%.17g', x) end
local function settle_one(key, weight, start, used, sent, window, guard, answered)
  local first = math.floor((start - guard) / window)
  local last = math.floor((start + guard) / window)
  local accepted = nil
  if sent and used >= 0 and first == math.floor((answered + guard) / window) then
    accepted = first
  end
  for i = first, last do
    local v = redis.call('HMGET', key, 'f' .. i, 'c' .. i, 'u' .. i, 'k' .. i, 'p' .. i, 'q' .. i)
    local fields = {'f' .. i, fmt(math.max(0, (tonumber(v[1]) or 0) - weight))}
    local known = tonumber(v[4]) or -1e300
    local pending = tonumber(v[5]) or 0
    local pending_at = tonumber(v[6]) or -1e300
    if not sent then
      table.insert(fields, 'c' .. i)
      table.insert(fields, fmt(math.max(0, (tonumber(v[2]) or 0) - weight)))
    elseif i == accepted then
      known = math.max(known, start)
      table.insert(fields, 'u' .. i)
      table.insert(fields, fmt(math.max(tonumber(v[3]) or -1, used)))
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
end
-- ARGV from index ``from``: n, then n times (weight, start, used or -1, sent 1|0, window,
-- guard, age: seconds since the answer arrived, measured by the client). Returns the index
-- after them.
local function settle_batch(key, from, now)
  local n = tonumber(ARGV[from])
  local j = from + 1
  for _ = 1, n do
    local answered = now - tonumber(ARGV[j + 6])
    settle_one(key, tonumber(ARGV[j]), tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]),
      ARGV[j + 3] == '1', tonumber(ARGV[j + 4]), tonumber(ARGV[j + 5]), answered)
    j = j + 7
  end
  return j
end
