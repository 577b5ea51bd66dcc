-- Worker: commits the outcome of a turn exactly once (compare-and-set on "answered"), and looks
-- for the next turn as startTurn would: when none is left it releases the lease in the same step
-- (a message accepted meanwhile is never left behind), so the worker needs no second look.
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
--     ARGV[5] turn
--     ARGV[6] the last delta event (JSON), or ""
--     ARGV[7] "message" | "error"
--     ARGV[8] the bot message record (JSON) or the error record
--     ARGV[9] the terminal event (JSON)
--
--   Output:
--     {"ok", id}        id: the terminal event's id; more turns wait, the lease is kept
--     {"drained", id}   the same, but no turn is left and the lease is released
--     {"stale"}    the turn was committed before
--     {"lost"}     the lease is not ARGV[4]'s
--     {"expired"}  no such session

--- @include "session-prelude"

if redis.call('GET', K_LEASE) ~= ARGV[4] then return {'lost'} end
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
if counter('answered') + 1 ~= tonumber(ARGV[5]) then return {'stale'} end
if ARGV[6] ~= '' then emit(ARGV[6]) end
if ARGV[7] == 'error' then
  redis.call('HSET', K_ERRORS, ARGV[5], ARGV[8])
else
  redis.call('RPUSH', K_MESSAGES, ARGV[8])
end
redis.call('HSET', K_SESSION, 'answered', ARGV[5])
local id = emit(ARGV[9])
redis.call('HSET', K_SESSION, 'done', id)
if redis.call('GET', K_CANCEL) == ARGV[5] then redis.call('DEL', K_CANCEL) end
touch()
if tonumber(ARGV[5]) >= counter('seq') then
  redis.call('DEL', K_LEASE)
  return {'drained', id}
end
return {'ok', id}
