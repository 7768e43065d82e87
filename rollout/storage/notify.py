"""Notification state in Redis: destinations (no URL, no secret), and per destination the
durable cursor of each flag and the delivery counters. All under the global keys' tag."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rollout.core.destinations import Destination, destination_from_stored
from rollout.core.errors import ValidationError
from rollout.storage.codec import dumps
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys


class NotifyStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis: Any = client
        self.keys = keys

    # -- destinations --------------------------------------------------------------------

    @storage_call
    def destinations(self) -> dict[str, Destination]:
        out: dict[str, Destination] = {}
        for name, raw in self.redis.hgetall(self.keys.destinations).items():
            try:
                out[name] = destination_from_stored(json.loads(raw))
            except (ValueError, ValidationError):
                continue  # hand-edited: not delivered to, apply rewrites it
        return out

    @storage_call
    def server_time_ms(self) -> int:
        """Redis's own clock: what stream entry ids are made of."""
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    @storage_call
    def save_destination(self, destination: Destination) -> None:
        self.redis.hset(self.keys.destinations, destination.name, dumps(destination.to_stored()))

    @storage_call
    def delete_destination(self, name: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.destinations, name)
        pipe.delete(self.keys.notify_cursors(name), self.keys.notify_stats(name))
        pipe.execute()

    # -- cursors and counters ----------------------------------------------------------

    @storage_call
    def cursors(self, destination: str) -> dict[str, str]:
        return dict(self.redis.hgetall(self.keys.notify_cursors(destination)))

    @storage_call
    def save_cursor(self, destination: str, flag: str, position: str) -> None:
        self.redis.hset(self.keys.notify_cursors(destination), flag, position)

    @storage_call
    def count(self, destination: str, counts: Mapping[str, int], values: Mapping[str, str]) -> None:
        key = self.keys.notify_stats(destination)
        pipe = self.redis.pipeline(transaction=False)
        for name, n in counts.items():
            if n:
                pipe.hincrby(key, name, n)
        if values:
            pipe.hset(key, mapping=dict(values))
        pipe.execute()

    @storage_call
    def stats(self, destination: str) -> dict[str, str]:
        return dict(self.redis.hgetall(self.keys.notify_stats(destination)))
