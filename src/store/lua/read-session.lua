-- Renews the session and returns a consistent snapshot for refresh_token.
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
--     ARGV[4] how many of the newest message records to return (a bounded reply however long the chat)
--
--   Output:
--     {"ok", name, start, done, messages, errors, head, owner}
--                                                  done: id of the newest terminal event ("0": none);
--                                                  messages: list of JSON records, oldest first;
--                                                  errors: flat list turn, error record, turn, …;
--                                                  head: newest turn of the branch shown;
--                                                  owner: account id, "" for anonymous sessions
--     {"expired"}                                  no such session

--- @include "session-prelude"

if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
touch()
local s = redis.call('HMGET', K_SESSION, 'name', 'start', 'done', 'owner')
return {'ok', s[1] or '', s[2] or '', s[3] or '0', redis.call('LRANGE', K_MESSAGES, -tonumber(ARGV[4]), -1), redis.call('HGETALL', K_ERRORS), head(), s[4] or ''}
