-- Starts an auth session (a browser's cookie) or a token for an account (see src/store/account-store.ts).
--
--   Input:
--     KEYS[1] the account's hash
--     KEYS[2] the account's sorted set of auth sessions (member: secret hash, score: expiry ms)
--     KEYS[3] the new auth session's hash
--
--     ARGV[1] secret hash (SHA-256, hex)
--     ARGV[2] kind: cookie or token
--     ARGV[3] CSRF token
--     ARGV[4] now (ms)
--     ARGV[5] expiry (ms; 0 = never, for tokens)
--     ARGV[6] label
--
--   Output:
--     1  started
--     0  the account is gone or disabled (a disabled account gets no new session)

if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'disabled') == '1' then return 0 end
redis.call('HSET', KEYS[3], 'kind', ARGV[2], 'csrf', ARGV[3], 'created', ARGV[4], 'expires', ARGV[5], 'label', ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
if ARGV[5] == '0' then
  redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
else
  redis.call('PEXPIREAT', KEYS[3], ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
end
return 1
