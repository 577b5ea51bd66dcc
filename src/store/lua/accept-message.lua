-- Stores a human message as the next turn and, on a single Redis node, wakes a worker: the queue
-- entry is added here, only for an accepted message, so a refused one costs the queue nothing. On
-- a Cluster the queue lives in another slot, and the caller adds the entry once the script has
-- answered "ok".
--
--   Input:
--     KEYS[1] session hash
--     KEYS[2] messages list
--     KEYS[3] events stream
--     KEYS[4] dedupe hash
--     KEYS[5] errors hash
--     KEYS[6] lease string
--     KEYS[7] cancel string
--     KEYS[8] the work queue stream (single node only; absent on a Cluster)
--
--     ARGV[1] live pub/sub channel
--     ARGV[2] session TTL (ms)
--     ARGV[3] events stream cap
--     ARGV[4] message id
--     ARGV[5] message text
--     ARGV[6] timestamp
--     ARGV[7] clientId, or "" (no deduplication)
--     ARGV[8] max turns accepted but not yet answered
--     ARGV[9] session token (the queue entry's field "t")
--     ARGV[10] stored history cap (records)
--     ARGV[11] sender's client address
--     ARGV[12] "" (a new message: it follows the head), "edit" or "regenerate" (a new turn beside
--              turn ARGV[13], with the same parent; regenerate takes that turn's text, ARGV[5]
--              is ignored). Either way the new turn becomes the head; edit and regenerate emit a
--              branch event.
--     ARGV[13] the turn edited or regenerated, or ""
--
--   Output:
--     {"ok", record}         stored (record: the message record as JSON)
--     {"duplicate", record}  this clientId was stored before (record: the one stored then)
--     {"busy"}               too many turns wait for their answer
--     {"unknown"}            the turn to edit or regenerate is not stored (never was, or trimmed)
--     {"expired"}            no such session

--- @include "session-prelude"

if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
if ARGV[7] ~= '' then
  local seen = redis.call('HGET', K_DEDUPE, ARGV[7])
  if seen then touch() return {'duplicate', seen} end
end
local seq = counter('seq')
if seq - counter('answered') >= tonumber(ARGV[8]) then return {'busy'} end
local kind, text, parent = ARGV[12], ARGV[5], head()
if kind ~= '' then
  local target = tonumber(ARGV[13])
  if target > seq then return {'unknown'} end
  local _, turn = humans_since(target)
  if not turn then return {'unknown'} end
  parent = turn.parent
  if kind == 'regenerate' then text = turn.msg end
end
seq = seq + 1
redis.call('HSET', K_SESSION, 'seq', seq, 'addr', ARGV[11], 'head', seq)
local record = cjson.encode({id = ARGV[4], msg = text, timestamp = ARGV[6], source = 'human', seq = seq, parent = parent})
redis.call('RPUSH', K_MESSAGES, record)
-- Bounded history: the oldest records leave; the cap is above what a turn's prompt reads.
redis.call('LTRIM', K_MESSAGES, -tonumber(ARGV[10]), -1)
if ARGV[7] ~= '' then redis.call('HSET', K_DEDUPE, ARGV[7], record) end
if KEYS[8] then
  redis.call('HSET', K_SESSION, 'wake', redis.call('XADD', KEYS[8], '*', 't', ARGV[9]))
end
-- A new message continues the branch shown; an edit or regenerate opens another one.
if kind ~= '' then emit('{"type":"branch","head":' .. seq .. '}') end
touch()
return {'ok', record}
