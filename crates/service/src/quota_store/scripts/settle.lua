-- Adds a finished request's tokens to the day's counter (when the day is
-- being counted; a new counter is seeded from the ledger, which has them)
-- and lets its reservation go, in one step: the tokens are never free, nor
-- counted twice, in between.
-- KEYS[1] tokens spent today, KEYS[2] reservations in flight
-- ARGV[1] tokens spent, ARGV[2] the reservation's member, or ''
if tonumber(ARGV[1]) > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
