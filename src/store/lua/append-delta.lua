-- Worker: appends a batch of answer text and renews the session once half its lifetime has passed
-- (an answer being written is activity). A session that expired meanwhile is left gone: writing to
-- it would re-create its hash and event stream without a TTL, and the commit would then land in
-- that nameless ghost session.
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
--     ARGV[6] the delta event (JSON)
--
--   Output:
--     {"ok", id, cancelled}  id: the event's id; cancelled: 1 when the turn was asked to stop
--     {"lost"}               the lease is not ARGV[4]'s
--     {"expired"}            no such session

--- @include "session-prelude"

if redis.call('GET', K_LEASE) ~= ARGV[4] then return {'lost'} end
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
local id = emit(ARGV[6])
local cancelled = 0
if redis.call('GET', K_CANCEL) == ARGV[5] then cancelled = 1 end
touch_if_stale()
return {'ok', id, cancelled}
