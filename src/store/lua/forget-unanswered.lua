-- Forgets a session in the unanswered set unless it was noted again meanwhile (its score changed).
--
--   Input:
--     KEYS[1] the unanswered sorted set (member: session token, score: when it was noted)
--
--     ARGV[1] session token
--     ARGV[2] the score the sweep read
--
--   Output:
--     1  removed
--     0  noted again meanwhile, or not there

if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1])) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
