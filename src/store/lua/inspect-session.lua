-- Where a session stands, without renewing it (the workers' sweep must not keep sessions alive).
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
--
--   Output:
--     {"ok", seq, answered, leased}  leased: 1 when a worker holds the lease, else 0
--     {"expired"}                    no such session

--- @include "session-prelude"

if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
return {'ok', counter('seq'), counter('answered'), redis.call('EXISTS', K_LEASE)}
