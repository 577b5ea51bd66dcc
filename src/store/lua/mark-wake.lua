-- Records the id of a queue entry just added for the session (the hash field "wake", see
-- session-prelude.lua); a session that expired meanwhile is left gone.
--
--   Input:
--     KEYS[1] session hash
--     KEYS[2] messages list
--     KEYS[3] events stream
--     KEYS[4] dedupe hash
--     KEYS[5] errors hash
--     KEYS[6] lease string
--     KEYS[7] cancel string
--
--     ARGV[1] live pub/sub channel
--     ARGV[2] session TTL (ms)
--     ARGV[3] events stream cap
--     ARGV[4] the queue entry id
--
--   Output:
--     1  recorded
--     0  no such session

--- @include "session-prelude"

if redis.call('EXISTS', K_SESSION) == 0 then return 0 end
redis.call('HSET', K_SESSION, 'wake', ARGV[4])
return 1
