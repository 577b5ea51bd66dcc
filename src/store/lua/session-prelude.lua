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
-- message, for the per-address cap on answers in progress), head (newest turn of the branch
-- shown; absent in sessions from before branches, which are one line: head = seq), first (id of
-- the session's first event ever), owner (account id: a person's conversation), keep ("1": the
-- history does not expire, see touch).
--
-- Live events go out with PUBLISH on one Redis (Redis 6.2 has no SPUBLISH). On Redis Cluster the
-- loader turns the line below into SPUBLISH: a shard channel lives on the node of its slot, and
-- the live channel carries the session's hash tag, so the script stays in one slot (PUBLISH would
-- be broadcast to every node of the cluster).
local PUBLISH = 'PUBLISH'

local K_SESSION, K_MESSAGES, K_EVENTS, K_DEDUPE, K_ERRORS, K_LEASE, K_CANCEL =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local CHANNEL, TTL_MS, EVENTS_CAP = ARGV[1], ARGV[2], ARGV[3]

local function kept()
  return redis.call('HGET', K_SESSION, 'keep') == '1'
end

-- Sliding lifetime: every activity renews all data keys of the session together. A person's
-- conversation (keep) holds its session, history and errors for good; its event stream and
-- dedupe hash still slide: they serve resumes and resends of the recent past only, and would
-- otherwise hold up to EVENTS_MAX_LEN events and a copy of every question for ever.
local function touch()
  if kept() then
    redis.call('PERSIST', K_SESSION)
    redis.call('PERSIST', K_MESSAGES)
    redis.call('PERSIST', K_ERRORS)
    redis.call('PEXPIRE', K_EVENTS, TTL_MS)
    redis.call('PEXPIRE', K_DEDUPE, TTL_MS)
  else
    for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], TTL_MS) end
  end
end

-- For the worker's frequent writes: renew only once half the lifetime has passed (one PTTL
-- instead of five PEXPIREs per batch). Accepting and committing always renew in full. A kept
-- session's hash has no lifetime: its event stream's is the one that runs.
local function touch_if_stale()
  local clock = K_SESSION
  if kept() then clock = K_EVENTS end
  if redis.call('PTTL', clock) < TTL_MS / 2 then touch() end
end

-- Appends one event (a JSON object text) to the session's stream and tells live gateways,
-- sending the previous event id along so a gateway can see at once whether it missed one.
local function emit(event_json)
  local prev = redis.call('HGET', K_SESSION, 'last') or '0'
  local id = redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_CAP, '*', 'e', event_json)
  -- A stream this XADD just created has no TTL yet; it must never outlive its session.
  if redis.call('PTTL', K_EVENTS) < 0 then redis.call('PEXPIRE', K_EVENTS, TTL_MS) end
  redis.call('HSET', K_SESSION, 'last', id)
  -- Proof for a reader starting from the very beginning that nothing was trimmed off yet.
  if prev == '0' then redis.call('HSET', K_SESSION, 'first', id) end
  redis.call(PUBLISH, CHANNEL, '{"eventId":"' .. id .. '","prev":"' .. prev .. '","event":' .. event_json .. '}')
  return id
end

local function counter(field)
  return tonumber(redis.call('HGET', K_SESSION, field) or '0')
end

-- The newest turn of the branch shown (sessions from before branches are one line: the newest turn).
local function head()
  return tonumber(redis.call('HGET', K_SESSION, 'head') or redis.call('HGET', K_SESSION, 'seq') or '0')
end

-- Human records of turns `seq` and later, newest first, as {seq, parent, msg}, and turn `seq`'s
-- own (nil when it is not stored: never accepted, or trimmed off the history). Turns are stored in
-- order, so the list is read backwards a page at a time and the scan ends at turn `seq`: the cost
-- is the records newer than it (edits and switches are rare, and mostly near the end).
local function humans_since(seq)
  local found = {}
  local length = redis.call('LLEN', K_MESSAGES)
  local stop = -1
  while -stop <= length do
    local from = stop - 63
    local records = redis.call('LRANGE', K_MESSAGES, from, stop)
    for i = #records, 1, -1 do
      local record = cjson.decode(records[i])
      if record.source == 'human' then
        if record.seq < seq then return found, nil end
        local turn = {seq = record.seq, parent = record.parent or (record.seq - 1), msg = record.msg}
        found[#found + 1] = turn
        if record.seq == seq then return found, turn end
      end
    end
    stop = from - 1
  end
  return found, nil
end
