-- Takes or renews one of a session's socket places (see src/store/socket-registry.ts); places not
-- renewed for ARGV[5] ms no longer count.
--
--   Input:
--     KEYS[1] the session's socket set (member: socket id, score: when its gateway last vouched, ms)
--
--     ARGV[1] socket id
--     ARGV[2] now (ms)
--     ARGV[3] max sockets per session (0 = renew only, never refuse)
--     ARGV[4] the set's TTL (ms, the session's)
--     ARGV[5] how long an unrenewed place counts (ms)
--
--   Output:
--     1  joined or renewed
--     0  full

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[5]))
local max = tonumber(ARGV[3])
if max > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
