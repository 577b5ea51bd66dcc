-- Worker: extends its lease (or, with ARGV[5] "0", lets it go at once).
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
--     ARGV[5] lease (ms)
--
--   Output:
--     1  renewed
--     0  the lease is not ARGV[4]'s

--- @include "session-prelude"

if redis.call('GET', K_LEASE) ~= ARGV[4] then return 0 end
redis.call('PEXPIRE', K_LEASE, ARGV[5])
return 1
