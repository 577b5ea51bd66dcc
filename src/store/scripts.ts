/**
 * Lua scripts: every change to a session that must be atomic happens in one of these. All of them
 * take the same seven keys (one session, one hash tag, so legal on Redis Cluster) and the same
 * first three arguments:
 *
 *   KEYS[1] session hash   KEYS[2] messages list   KEYS[3] events stream   KEYS[4] dedupe hash
 *   KEYS[5] errors hash    KEYS[6] lease string    KEYS[7] cancel string
 *   ARGV[1] live pub/sub channel of the session   ARGV[2] session TTL (ms)   ARGV[3] events cap
 *
 * Each session script exists twice: publishing live events with PUBLISH (one Redis; Redis 6.2
 * has no SPUBLISH) and with SPUBLISH (Redis Cluster: a shard channel lives on the node of its
 * slot, and the live channel carries the session's hash tag, so the script stays in one slot;
 * PUBLISH would be broadcast to every node of the cluster).
 *
 * Session hash fields: name, start, seq (last accepted turn), answered (last answered turn),
 * last (id of the newest event), done (id of the newest terminal event), aturn/attempt (attempt
 * counter of the turn being answered), wake (id of a recent queue entry for the session: any
 * older entry is redundant, see AnswerStore.wakeState), addr (client address of the newest
 * message, for the per-address cap on answers in progress).
 */
import { createHash } from 'node:crypto';
import { sessionKeys } from '../contracts/keys.js';
import type { RedisClient } from './redis.js';

const prelude = (publish: 'PUBLISH' | 'SPUBLISH') => `
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
  redis.call('${publish}', CHANNEL, '{"eventId":"' .. id .. '","prev":"' .. prev .. '","event":' .. event_json .. '}')
  return id
end

local function counter(field)
  return tonumber(redis.call('HGET', K_SESSION, field) or '0')
end
`;

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/** A script and its SHA1 (for EVALSHA), computed once. */
export function luaScript(name: string, source: string): LuaScript {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** A session script in both publishing variants (see top). */
export interface SessionScript extends LuaScript {
  readonly sharded: LuaScript;
}

/** A session script: the shared prelude (keys, helpers) and its body. */
function script(name: string, body: string): SessionScript {
  return { ...luaScript(name, `${prelude('PUBLISH')}\n${body}`), sharded: luaScript(name, `${prelude('SPUBLISH')}\n${body}`) };
}

/**
 * Stores a human message as the next turn and, on a single Redis node, wakes a worker.
 * ARGV[4] message id  ARGV[5] text  ARGV[6] timestamp  ARGV[7] clientId or ""  ARGV[8] max pending
 * ARGV[9] session token  ARGV[10] stored history cap (records)  ARGV[11] sender's client address
 * KEYS[8] (single node only) the work queue: its entry is added here, only for an accepted
 * message, so a refused one costs the queue nothing. On a Cluster the queue lives in another slot
 * and the caller adds the entry once the script has answered "ok".
 * Returns {"ok", record} | {"duplicate", record} | {"busy"} | {"expired"}.
 */
export const acceptMessage = script(
  'acceptMessage',
  `
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
if ARGV[7] ~= '' then
  local seen = redis.call('HGET', K_DEDUPE, ARGV[7])
  if seen then touch() return {'duplicate', seen} end
end
local seq = counter('seq')
if seq - counter('answered') >= tonumber(ARGV[8]) then return {'busy'} end
seq = seq + 1
redis.call('HSET', K_SESSION, 'seq', seq, 'addr', ARGV[11])
local record = cjson.encode({id = ARGV[4], msg = ARGV[5], timestamp = ARGV[6], source = 'human', seq = seq})
redis.call('RPUSH', K_MESSAGES, record)
-- Bounded history: the oldest records leave; the cap is above what a turn's prompt reads.
redis.call('LTRIM', K_MESSAGES, -tonumber(ARGV[10]), -1)
if ARGV[7] ~= '' then redis.call('HSET', K_DEDUPE, ARGV[7], record) end
if KEYS[8] then
  redis.call('HSET', K_SESSION, 'wake', redis.call('XADD', KEYS[8], '*', 't', ARGV[9]))
end
touch()
return {'ok', record}
`,
);

/**
 * Renews the session and reports where it stands (for a new socket).
 * Returns {"ok", last event id, seq, answered, lease holder exists 0|1} | {"expired"}.
 */
export const touchSession = script(
  'touchSession',
  `
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
touch()
return {'ok', redis.call('HGET', K_SESSION, 'last') or '0', counter('seq'), counter('answered'), redis.call('EXISTS', K_LEASE)}
`,
);

/**
 * Where a session stands, without renewing it (the workers' sweep must not keep sessions alive).
 * Returns {"ok", seq, answered, lease holder exists 0|1} | {"expired"}.
 */
export const inspectSession = script(
  'inspectSession',
  `
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
return {'ok', counter('seq'), counter('answered'), redis.call('EXISTS', K_LEASE)}
`,
);

/**
 * Renews the session and returns a consistent snapshot for refresh_token.
 * ARGV[4] how many of the newest message records to return (a bounded reply however long the chat)
 * Returns {"ok", name, start, done event id, messages (list of JSON), errors (flat field/value)} | {"expired"}.
 */
export const readSession = script(
  'readSession',
  `
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
touch()
local s = redis.call('HMGET', K_SESSION, 'name', 'start', 'done')
return {'ok', s[1] or '', s[2] or '', s[3] or '0', redis.call('LRANGE', K_MESSAGES, -tonumber(ARGV[4]), -1), redis.call('HGETALL', K_ERRORS)}
`,
);

/**
 * Asks the worker answering a turn to stop.  ARGV[4] turn or "" (= the one in progress)
 * ARGV[5] cancel key TTL (ms; capped at the session TTL, so no key outlives its session)
 * The caller then tells the workers on the partition's cancel channel: that channel is outside the
 * session's slot, so a script may not publish to it on a Cluster. The cancel key is the truth
 * (the worker reads it with every batch); the message only makes the stop immediate.
 * Returns {"ok", turn} | {"none"} (nothing to stop) | {"expired"}.
 */
export const requestStop = script(
  'requestStop',
  `
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
local answered = counter('answered')
local turn = answered + 1
if ARGV[4] ~= '' then turn = tonumber(ARGV[4]) end
if turn <= answered or turn > counter('seq') then return {'none'} end
redis.call('SET', K_CANCEL, turn, 'PX', math.min(tonumber(ARGV[5]), tonumber(TTL_MS)))
return {'ok', turn}
`,
);

/**
 * Worker: begins the next unanswered turn, or releases the lease when there is none (checked and
 * released in one step, so a message accepted meanwhile is never left behind).
 * ARGV[4] lease owner  ARGV[5] how many of the newest history records to return
 * Returns {"ok", turn, attempt, cancelled 0|1, messages (list of JSON)} | {"idle"} | {"lost"} | {"expired"}.
 */
export const startTurn = script(
  'startTurn',
  `
if redis.call('GET', K_LEASE) ~= ARGV[4] then return {'lost'} end
if redis.call('EXISTS', K_SESSION) == 0 then redis.call('DEL', K_LEASE) return {'expired'} end
local answered = counter('answered')
if answered >= counter('seq') then redis.call('DEL', K_LEASE) return {'idle'} end
local turn = answered + 1
local attempt = 1
if redis.call('HGET', K_SESSION, 'aturn') == tostring(turn) then attempt = counter('attempt') + 1 end
redis.call('HSET', K_SESSION, 'aturn', turn, 'attempt', attempt)
local cancelled = 0
if redis.call('GET', K_CANCEL) == tostring(turn) then cancelled = 1 end
emit('{"type":"start","seq":' .. turn .. ',"attempt":' .. attempt .. '}')
touch_if_stale()
return {'ok', turn, attempt, cancelled, redis.call('LRANGE', K_MESSAGES, -tonumber(ARGV[5]), -1)}
`,
);

/**
 * Worker: appends a batch of answer text and renews the session once half its lifetime has
 * passed (an answer being written is activity). A session that expired meanwhile is left gone: writing to it would re-create its hash
 * and event stream without a TTL, and the commit would then land in that nameless ghost session.
 * ARGV[4] lease owner  ARGV[5] turn  ARGV[6] event JSON
 * Returns {"ok", event id, cancelled 0|1} | {"lost"} | {"expired"}.
 */
export const appendDelta = script(
  'appendDelta',
  `
if redis.call('GET', K_LEASE) ~= ARGV[4] then return {'lost'} end
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
local id = emit(ARGV[6])
local cancelled = 0
if redis.call('GET', K_CANCEL) == ARGV[5] then cancelled = 1 end
touch_if_stale()
return {'ok', id, cancelled}
`,
);

/**
 * Worker: commits the outcome of a turn exactly once (compare-and-set on "answered"), and looks
 * for the next turn as startTurn would: when none is left it releases the lease in the same step
 * (a message accepted meanwhile is never left behind), so the worker needs no second look.
 * ARGV[4] lease owner  ARGV[5] turn  ARGV[6] last delta event JSON or ""  ARGV[7] "message" | "error"
 * ARGV[8] the bot message record (JSON) or the error record  ARGV[9] terminal event JSON
 * Returns {"ok", event id} (more turns wait) | {"drained", event id} (none left, lease released)
 * | {"stale"} (already committed) | {"lost"} | {"expired"}.
 */
export const finishTurn = script(
  'finishTurn',
  `
if redis.call('GET', K_LEASE) ~= ARGV[4] then return {'lost'} end
if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
if counter('answered') + 1 ~= tonumber(ARGV[5]) then return {'stale'} end
if ARGV[6] ~= '' then emit(ARGV[6]) end
if ARGV[7] == 'error' then
  redis.call('HSET', K_ERRORS, ARGV[5], ARGV[8])
else
  redis.call('RPUSH', K_MESSAGES, ARGV[8])
end
redis.call('HSET', K_SESSION, 'answered', ARGV[5])
local id = emit(ARGV[9])
redis.call('HSET', K_SESSION, 'done', id)
if redis.call('GET', K_CANCEL) == ARGV[5] then redis.call('DEL', K_CANCEL) end
touch()
if tonumber(ARGV[5]) >= counter('seq') then
  redis.call('DEL', K_LEASE)
  return {'drained', id}
end
return {'ok', id}
`,
);

/**
 * Records the id of a queue entry just added for the session (see "wake" above); a session that
 * expired meanwhile is left gone.  ARGV[4] entry id.  Returns 1, or 0 when the session is gone.
 */
export const markWake = script(
  'markWake',
  `
if redis.call('EXISTS', K_SESSION) == 0 then return 0 end
redis.call('HSET', K_SESSION, 'wake', ARGV[4])
return 1
`,
);

/** Worker: extends its lease.  ARGV[4] lease owner  ARGV[5] lease ms.  Returns 1, or 0 if lost. */
export const renewLease = script(
  'renewLease',
  `
if redis.call('GET', K_LEASE) ~= ARGV[4] then return 0 end
redis.call('PEXPIRE', K_LEASE, ARGV[5])
return 1
`,
);

/**
 * Forgets a session in the unanswered set unless it was noted again meanwhile (its score changed).
 * KEYS[1] the unanswered sorted set   ARGV[1] token   ARGV[2] the score the sweep read
 * Returns 1 when removed, else 0.
 */
export const forgetUnanswered = luaScript(
  'forgetUnanswered',
  `
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1])) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`,
);

export interface ScriptReply {
  readonly reply: unknown;
  /**
   * True when Redis did not have the script cached (first use, or after a restart or failover)
   * and it was sent again in full: it then ran after commands sent behind its first attempt.
   */
  readonly resent: boolean;
}

/** Runs a script by SHA, sending its source when Redis does not have it cached. */
export async function runScript(client: RedisClient, lua: LuaScript, keys: readonly string[], args: readonly string[]): Promise<ScriptReply> {
  const options = { keys: [...keys], arguments: [...args] };
  try {
    return { reply: await client.evalSha(lua.sha, options), resent: false };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return { reply: await client.eval(lua.source, options), resent: true };
    }
    throw error;
  }
}

export interface SessionScriptOptions {
  readonly prefix: string;
  readonly sessionTtlSeconds: number;
  readonly eventsMaxLen: number;
  /** Live events over sharded pub/sub (SPUBLISH): on a Redis Cluster. */
  readonly shardedPubSub?: boolean;
}

/**
 * Runs a session script with the standard seven keys and three leading arguments (see top), plus
 * `extraKeys` after them for the scripts that document one.
 */
export function runSessionScript(
  client: RedisClient,
  options: SessionScriptOptions,
  lua: SessionScript,
  token: string,
  extra: readonly string[],
  extraKeys: readonly string[] = [],
): Promise<ScriptReply> {
  const keys = sessionKeys(options.prefix, token);
  return runScript(
    client,
    options.shardedPubSub === true ? lua.sharded : lua,
    [keys.session, keys.messages, keys.events, keys.dedupe, keys.errors, keys.lease, keys.cancel, ...extraKeys],
    [keys.live, String(options.sessionTtlSeconds * 1000), String(options.eventsMaxLen), ...extra],
  );
}
