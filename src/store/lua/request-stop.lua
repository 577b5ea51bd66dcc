-- Asks the worker answering a turn to stop. The caller then tells the workers on the partition's
-- cancel channel: that channel is outside the session's slot, so a script may not publish to it on
-- a Cluster. The cancel key is the truth (the worker reads it with every batch); the message only
-- makes the stop immediate.
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
--     ARGV[4] turn to stop, or "" (= the one in progress)
--     ARGV[5] cancel key TTL (ms; capped at the session TTL, so no key outlives its session)
--
--   Output:
--     {"ok", turn}  the turn asked to stop
--     {"none"}      nothing to stop
--     {"expired"}   no such session

--- @include "session-prelude"

if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
local answered = counter('answered')
local turn = answered + 1
if ARGV[4] ~= '' then turn = tonumber(ARGV[4]) end
if turn <= answered or turn > counter('seq') then return {'none'} end
redis.call('SET', K_CANCEL, turn, 'PX', math.min(tonumber(ARGV[5]), tonumber(TTL_MS)))
return {'ok', turn}
