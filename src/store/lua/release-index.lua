-- Deletes an account index entry (username, OpenID identity) only while it still names that
-- account, so a name given back is never taken from its next owner (see src/store/account-store.ts).
--
--   Input:
--     KEYS[1] the index key
--
--     ARGV[1] account id
--
--   Output:
--     1  deleted
--     0  it names another account, or nothing

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
