-- Admits one request of a tenant in one round trip: one from its
-- per-minute bucket (GCRA, on the server's clock so that every replica sees
-- the same time), then one of its concurrency slots as a lease that expires
-- unless renewed, so the slots of a replica that died come back by themselves.
-- KEYS[1] the tenant's theoretical arrival time (ms)
-- KEYS[2] the tenant's slot leases (sorted set, score = expiry ms)
-- ARGV[1] emission interval in ms (60000 / rate), ARGV[2] burst (the rate),
-- ARGV[3] most slots, ARGV[4] this lease's id, ARGV[5] lease time (ms)
-- Returns {0, ms to wait} when over the rate, {1, 0} when every slot is
-- held (the request still counts against the rate, as in one process),
-- {2, 0} when admitted.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)

local ttl = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return {1, 0}
end
redis.call('ZADD', KEYS[2], math.floor(now) + ttl, ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl)
return {2, 0}
