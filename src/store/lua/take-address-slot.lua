-- Takes one of a client address's places for answers in progress (see src/store/address-slots.ts).
--
--   Input:
--     KEYS[1] the address's sorted set (member: a drain's owner id, score: when its place expires, ms)
--
--     ARGV[1] the drain's owner id
--     ARGV[2] now (ms)
--     ARGV[3] when the place expires (ms)
--     ARGV[4] cap: places per address
--
--   Output:
--     1  taken
--     0  the address has `cap` answers in progress

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
