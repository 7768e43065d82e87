"""The controller's leader lock: one Redis key with a TTL, renewed each tick, and a fence.

Renew and release check the owner inside a Lua script, so a controller whose lock expired (a
long pause, a partition) can never extend or delete the lock a new leader now holds. Taking
the lock issues a fencing token (``INCR`` beside the lock, same hash tag, same script): every
controller write carries it, and a flag's write script refuses a token lower than one it has
seen. A leader that paused past its TTL and wakes up cannot act on stale leadership then, even
on a Cluster, where the flag's script cannot read the leader key.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys

_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, client: Any, keys: Keys, ttl_seconds: float, key: str | None = None) -> None:
        self.redis: Any = client
        self.key = key or keys.leader  # the controller's, unless another role's (the notifier)
        self.ttl_ms = max(100, int(ttl_seconds * 1000))
        # One token sequence per role (same tag as its lock): the notifier's leadership never
        # advances the fence the controller's flag writes carry.
        self.token_key = keys.leader_token if self.key == keys.leader else f"{self.key}:fence"
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.token = 0  # the fencing token of our current leadership; 0 while not leading

    @storage_call
    def acquire(self) -> bool:
        """Take the lock (with a new token), or keep it if we hold it. True while leading."""
        keys = [self.key, self.token_key]
        result = int(self.redis.eval(_TAKE, len(keys), *keys, self.owner, self.ttl_ms))
        if result > 0:
            self.token = result
        elif result == 0:
            self.token = 0
        return result != 0

    @storage_call
    def release(self) -> bool:
        self.token = 0
        return bool(self.redis.eval(_RELEASE, 1, self.key, self.owner))

    @storage_call
    def holder(self) -> str | None:
        value = self.redis.get(self.key)
        return None if value is None else str(value)
