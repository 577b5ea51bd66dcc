-- Shows the branch through a turn: the head moves to the newest turn under it (itself when it has
-- none), and every socket of the session hears of it by a branch event. Moving the head where it
-- already is changes nothing and emits nothing.
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
--     ARGV[4] the turn to show
--
--   Output:
--     {"ok", head}   the head now
--     {"unknown"}    no such turn is stored (never accepted, or trimmed off the history)
--     {"expired"}    no such session

--- @include "session-prelude"

if redis.call('EXISTS', K_SESSION) == 0 then return {'expired'} end
local target = tonumber(ARGV[4])
if target > counter('seq') then return {'unknown'} end
local newer, turn = humans_since(target)
if not turn then return {'unknown'} end
-- Children are always newer than their parent, so oldest first each turn's parent is settled
-- before the turn itself; the newest turn under the target is the newest one reached.
local under, newest = {[target] = true}, target
for i = #newer, 1, -1 do
  local t = newer[i]
  if under[t.parent] then
    under[t.seq] = true
    if t.seq > newest then newest = t.seq end
  end
end
if head() ~= newest then
  redis.call('HSET', K_SESSION, 'head', newest)
  emit('{"type":"branch","head":' .. newest .. '}')
end
touch()
return {'ok', newest}
