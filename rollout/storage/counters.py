"""Controller counters in Redis, so every API worker's /metrics reports the same figures."""

from __future__ import annotations

from typing import Any

from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys


class ControllerCounters:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis: Any = client
        self.key = keys.controller_stats

    @storage_call
    def add(self, counts: dict[str, int], *, heartbeat_ms: int) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for name, count in counts.items():
            if count:
                pipe.hincrby(self.key, name, count)
        pipe.hset(self.key, "heartbeat_ms", heartbeat_ms)
        pipe.execute()

    @storage_call
    def read(self) -> dict[str, int]:
        return {name: int(value) for name, value in self.redis.hgetall(self.key).items()}
