-- Reserves tokens of a tenant's daily budget: admitted while what is spent
-- plus what requests in flight hold is under the budget, so requests at once
-- on every replica overshoot it by at most the last one's reservation.
-- KEYS[1] tokens spent today (a counter living to the end of the day)
-- KEYS[2] reservations in flight (sorted set of "id:tokens", score = expiry ms)
-- ARGV[1] budget, ARGV[2] tokens to reserve (0: only check),
-- ARGV[3] reservation id, ARGV[4] lease time (ms), ARGV[5] ms to the end of
-- the day's keys, ARGV[6] the ledger's total for the day when the counter is
-- new, or '' when not read yet.
-- Returns {1, committed} when reserved, {0, committed} when the budget is
-- committed, {-1, 0} when the counter must be seeded from the ledger first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[6] == '' then
    return {-1, 0}
  end
  redis.call('SET', KEYS[1], ARGV[6], 'PX', tonumber(ARGV[5]))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  held = held + tonumber(string.match(member, ':(%d+)$'))
end
local committed = tonumber(redis.call('GET', KEYS[1])) + held
if committed >= tonumber(ARGV[1]) then
  return {0, committed}
end
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3] .. ':' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return {1, committed}
