-- Checks an auth session or token of an account (see src/store/account-store.ts).
--
--   Input:
--     KEYS[1] the account's hash
--     KEYS[2] the auth session's hash (under the SHA-256 of its secret)
--
--     ARGV[1] now (ms)
--
--   Output:
--     {username, displayName, kind, csrf}  the session is valid
--     nil  the session, token or account is gone or expired, or the account is disabled

local a = redis.call('HMGET', KEYS[1], 'username', 'displayName', 'disabled')
if not a[1] or a[3] == '1' then return nil end
local s = redis.call('HMGET', KEYS[2], 'kind', 'csrf', 'expires')
if not s[1] then return nil end
local expires = tonumber(s[3] or '0') or 0
if expires > 0 and expires <= tonumber(ARGV[1]) then return nil end
return {a[1], a[2], s[1], s[2]}
