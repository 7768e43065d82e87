"""Snapshots kept in Redis (the API's form of backup): whole documents by id, newest first.

A snapshot is written once and never changed, so it needs no version, audit entry or change
notice: one hash holds the documents, one sorted set orders them by when they were taken.
"""

from __future__ import annotations

import json
from typing import Any

from rollout.storage.codec import dumps
from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys


class SnapshotStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis: Any = client
        self.keys = keys

    @storage_call
    def save(self, snapshot_id: str, document: dict[str, Any], at: int) -> None:
        # One transaction: a listed id always has its document.
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.snapshots, snapshot_id, dumps(document))
        pipe.zadd(self.keys.snapshot_times, {snapshot_id: at})
        pipe.execute()

    @storage_call
    def get(self, snapshot_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.keys.snapshots, snapshot_id)
        return None if raw is None else dict(json.loads(raw))

    @storage_call
    def newest(self, limit: int = 100) -> list[tuple[str, int]]:
        """(id, taken-at ms) of the ``limit`` newest snapshots, newest first."""
        rows = self.redis.zrevrange(self.keys.snapshot_times, 0, limit - 1, withscores=True)
        return [(str(name), int(score)) for name, score in rows]
