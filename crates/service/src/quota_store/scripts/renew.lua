-- Extends the leases this replica still holds (those already released or
-- expired stay gone: XX).
-- KEYS the sorted sets, ARGV[1] lease time (ms), ARGV[2..] the members, one per key
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local renewed = 0
for i, key in ipairs(KEYS) do
  renewed = renewed + redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[i + 1])
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return renewed
