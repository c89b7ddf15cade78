-- GCRA: one request from a tenant's per-minute bucket, on the server's clock
-- so that every replica sees the same time.
-- KEYS[1] the tenant's theoretical arrival time (ms)
-- ARGV[1] emission interval in ms (60000 / rate), ARGV[2] burst (the rate)
-- Returns 0 when admitted, else the milliseconds until the next request may go.
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
  return math.ceil(allow_at - now)
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return 0
