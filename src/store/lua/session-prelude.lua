-- Session prelude: included at load in front of every session script (the line
-- `--- @include "session-prelude"` of a script stands for it; see src/store/scripts.ts).
-- Every session script takes the same seven keys (one session, one hash tag, so legal on Redis
-- Cluster) and the same first three arguments:
--
--   Input:
--     KEYS[1] session hash     (fields: see below)
--     KEYS[2] messages list    (JSON message records, oldest first)
--     KEYS[3] events stream    (field "e": one event as JSON)
--     KEYS[4] dedupe hash      (clientId -> the message record it stored)
--     KEYS[5] errors hash      (turn -> error record)
--     KEYS[6] lease string     (the worker answering the session)
--     KEYS[7] cancel string    (the turn a client asked to stop)
--
--     ARGV[1] the session's live pub/sub channel
--     ARGV[2] session TTL (ms)
--     ARGV[3] events stream cap (approximate MAXLEN)
--
-- Session hash fields: name, start, seq (last accepted turn), answered (last answered turn),
-- last (id of the newest event), done (id of the newest terminal event), aturn/attempt (attempt
-- counter of the turn being answered), wake (id of a recent queue entry for the session: any
-- older entry is redundant, see AnswerStore.wakeState), addr (client address of the newest
-- message, for the per-address cap on answers in progress).
--
-- Live events go out with PUBLISH on one Redis (Redis 6.2 has no SPUBLISH). On Redis Cluster the
-- loader turns the line below into SPUBLISH: a shard channel lives on the node of its slot, and
-- the live channel carries the session's hash tag, so the script stays in one slot (PUBLISH would
-- be broadcast to every node of the cluster).
local PUBLISH = 'PUBLISH'

local K_SESSION, K_MESSAGES, K_EVENTS, K_DEDUPE, K_ERRORS, K_LEASE, K_CANCEL =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local CHANNEL, TTL_MS, EVENTS_CAP = ARGV[1], ARGV[2], ARGV[3]

-- Sliding lifetime: every activity renews all data keys of the session together.
local function touch()
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], TTL_MS) end
end

-- For the worker's frequent writes: renew only once half the lifetime has passed (one PTTL
-- instead of five PEXPIREs per batch). Accepting and committing always renew in full.
local function touch_if_stale()
  if redis.call('PTTL', K_SESSION) < TTL_MS / 2 then touch() end
end

-- Appends one event (a JSON object text) to the session's stream and tells live gateways,
-- sending the previous event id along so a gateway can see at once whether it missed one.
local function emit(event_json)
  local prev = redis.call('HGET', K_SESSION, 'last') or '0'
  local id = redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_CAP, '*', 'e', event_json)
  -- A stream this XADD just created has no TTL yet; it must never outlive its session.
  if redis.call('PTTL', K_EVENTS) < 0 then redis.call('PEXPIRE', K_EVENTS, TTL_MS) end
  redis.call('HSET', K_SESSION, 'last', id)
  redis.call(PUBLISH, CHANNEL, '{"eventId":"' .. id .. '","prev":"' .. prev .. '","event":' .. event_json .. '}')
  return id
end

local function counter(field)
  return tonumber(redis.call('HGET', K_SESSION, field) or '0')
end
