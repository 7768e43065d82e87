"""The controller's leader lock: one Redis key with a TTL, renewed each tick.

Renew and release check the owner inside a Lua script, so a controller whose lock expired (a
long pause, a partition) can never extend or delete the lock a new leader now holds.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys

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
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @storage_call
    def acquire(self) -> bool:
        """Take the lock, or keep it if we hold it. True while we are the leader."""
        if self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return bool(self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    @storage_call
    def release(self) -> bool:
        return bool(self._release(keys=[self.key], args=[self.owner]))

    @storage_call
    def holder(self) -> str | None:
        value = self.redis.get(self.key)
        return None if value is None else str(value)
