-- One of a tenant's concurrency slots as a lease that expires unless renewed,
-- so the slots of a replica that died come back by themselves.
-- KEYS[1] the tenant's leases (sorted set, score = expiry ms)
-- ARGV[1] most leases, ARGV[2] this lease's id, ARGV[3] lease time (ms)
-- Returns 1 when the lease was taken, 0 when every slot is held.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
