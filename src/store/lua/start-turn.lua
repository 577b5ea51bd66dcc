-- Worker: begins the next unanswered turn, or releases the lease when there is none (checked and
-- released in one step, so a message accepted meanwhile is never left behind).
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
--     ARGV[4] lease owner
--     ARGV[5] how many of the newest history records to return
--
--   Output:
--     {"ok", turn, attempt, cancelled, messages}  cancelled: 1 when the turn was asked to stop;
--                                                 messages: list of JSON records, oldest first
--     {"idle"}     nothing to answer (the lease is released)
--     {"lost"}     the lease is not ARGV[4]'s
--     {"expired"}  no such session (the lease is released)

--- @include "session-prelude"

if redis.call('GET', K_LEASE) ~= ARGV[4] then return {'lost'} end
if redis.call('EXISTS', K_SESSION) == 0 then redis.call('DEL', K_LEASE) return {'expired'} end
local answered = counter('answered')
if answered >= counter('seq') then redis.call('DEL', K_LEASE) return {'idle'} end
local turn = answered + 1
local attempt = 1
if redis.call('HGET', K_SESSION, 'aturn') == tostring(turn) then attempt = counter('attempt') + 1 end
redis.call('HSET', K_SESSION, 'aturn', turn, 'attempt', attempt)
local cancelled = 0
if redis.call('GET', K_CANCEL) == tostring(turn) then cancelled = 1 end
emit('{"type":"start","seq":' .. turn .. ',"attempt":' .. attempt .. '}')
touch_if_stale()
return {'ok', turn, attempt, cancelled, redis.call('LRANGE', K_MESSAGES, -tonumber(ARGV[5]), -1)}
