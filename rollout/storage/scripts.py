"""The server-side scripts. Each touches one flag's keys only, so it runs in the flag's slot.

``WRITE_FLAG`` is the whole of a flag write, atomic on the node that owns the flag:

KEYS: 1 value hash, 2 status, 3 high-water mark, 4 audit stream, 5 write-id marker, 6 fence
ARGV: 1 expected version, 2 new version, 3 ``set``/``del``, 4 stored document,
      5 status ``keep``/``set``/``del``, 6 status value, 7 change channel, 8 change message,
      9 audit max length, 10 write-id lifetime (ms), 11 leader token (0: none), 12 audit
      sequence number, 13 status channel, 14 status message, 15... audit fields as name,
      value pairs

A write that sets or clears the status of a flag it keeps (restore) also publishes the status
message, as ``SET_STATUS`` does: a follower keeps the word it holds across a value change, so
without it other workers would show the old word until their next resync.

Returns ``{code, number}``: ``ok`` (the version written); ``dup`` (this write id was applied
already: its version, nothing done again); ``exists``/``missing``/``conflict`` (the stored
version, nothing done); ``stale`` (the high-water mark moved: recompute the version);
``fenced`` (a newer leader has written this flag: the highest token seen).
"""

from __future__ import annotations

WRITE_FLAG = """
local done = redis.call('GET', KEYS[5])
if done then return {'dup', done} end
local token = tonumber(ARGV[11])
if token > 0 then
  local highest = tonumber(redis.call('GET', KEYS[6]) or '0')
  if token < highest then return {'fenced', tostring(highest)} end
end
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expected = tonumber(ARGV[1])
if current ~= expected then
  if expected == 0 then return {'exists', tostring(current)} end
  if current == 0 then return {'missing', '0'} end
  return {'conflict', tostring(current)}
end
local hwm = tonumber(redis.call('GET', KEYS[3]) or '0')
if hwm < current then hwm = current end
if tonumber(ARGV[2]) ~= hwm + 1 then return {'stale', tostring(hwm)} end
if ARGV[3] == 'del' then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[4])
  if ARGV[5] == 'set' then
    redis.call('SET', KEYS[2], ARGV[6])
  elseif ARGV[5] == 'del' then
    redis.call('DEL', KEYS[2])
  end
end
redis.call('SET', KEYS[3], ARGV[2])
if token > 0 then redis.call('SET', KEYS[6], ARGV[11]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'seq', ARGV[12], unpack(ARGV, 15))
redis.call('SET', KEYS[5], ARGV[2], 'PX', ARGV[10])
redis.call('PUBLISH', ARGV[7], ARGV[8])
if ARGV[3] ~= 'del' and ARGV[5] ~= 'keep' then redis.call('PUBLISH', ARGV[13], ARGV[14]) end
return {'ok', ARGV[2]}
"""

# The controller's word beside the value: only while the flag exists, so a word landing after
# a delete cannot haunt a new flag of the same name. With a leader token (ARGV 3), refused
# once a newer leader has written the flag (-1). KEYS: value, status, fence. ARGV: status, channel,
# token, message.
SET_STATUS = """
local token = tonumber(ARGV[3])
if token > 0 and token < tonumber(redis.call('GET', KEYS[3]) or '0') then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[1])
  if token > 0 then redis.call('SET', KEYS[3], ARGV[3]) end
  redis.call('PUBLISH', ARGV[2], ARGV[4])
  return 1
end
return 0
"""
