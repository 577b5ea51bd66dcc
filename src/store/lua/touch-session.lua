-- Renews the session and reports where it stands (for a new socket).
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
--     {"ok", last, seq, answered, leased, owner}
--                                          last: id of the newest event ("0": none);
--                                          leased: 1 when a worker holds the lease, else 0;
--                                          owner: account id, "" for anonymous sessions
--     {"expired"}                          no such session

--- @include "session-prelude"

if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
touch()
return {'ok', redis.call('HGET', K_SESSION, 'last') or '0', counter('seq'), counter('answered'), redis.call('EXISTS', K_LEASE), redis.call('HGET', K_SESSION, 'owner') or ''}
