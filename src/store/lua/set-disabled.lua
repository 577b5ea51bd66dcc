-- Disables or enables an account (see src/store/account-store.ts).
--
--   Input:
--     KEYS[1] the account's hash
--
--     ARGV[1] "1" (disabled) or "0" (enabled)
--
--   Output:
--     1  done
--     0  there is no such account (nothing is created)

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'disabled', ARGV[1])
return 1
