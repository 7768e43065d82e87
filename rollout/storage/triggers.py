"""Triggers in Redis: one hash of trigger id -> JSON (secret hashes only), a per-second rate
counter per trigger, and audit entries on the trigger's flag for creates and deletes.

A trigger is not part of the flag's value, so creating one is no flag write: its audit entry
is appended to the flag's stream alone, with the flag's current version.
"""

from __future__ import annotations

import json
from typing import Any

from rollout.core.model import Flag
from rollout.core.schema import flag_to_dict
from rollout.core.triggers import Trigger, trigger_from_dict, trigger_to_stored
from rollout.core.units import render_instant
from rollout.storage.codec import dumps
from rollout.storage.errors import storage_call
from rollout.storage.flags import append_audit
from rollout.storage.keys import Keys


class TriggerStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis: Any = client
        self.keys = keys

    @storage_call
    def save(self, trigger: Trigger) -> None:
        self.redis.hset(self.keys.triggers, trigger.id, dumps(trigger_to_stored(trigger)))

    @storage_call
    def get(self, trigger_id: str) -> Trigger | None:
        raw = self.redis.hget(self.keys.triggers, trigger_id)
        if raw is None:
            return None
        try:
            return trigger_from_dict(json.loads(raw))
        except ValueError:  # a hand-edited value: treated as absent, never fired
            return None

    @storage_call
    def all(self) -> list[Trigger]:
        out = []
        for raw in self.redis.hvals(self.keys.triggers):
            try:
                out.append(trigger_from_dict(json.loads(raw)))
            except ValueError:
                continue
        return sorted(out, key=lambda t: (t.flag, t.created_at, t.id))

    @storage_call
    def delete(self, trigger_id: str) -> bool:
        return bool(self.redis.hdel(self.keys.triggers, trigger_id))

    @storage_call
    def hit(self, trigger_id: str, second: int) -> int:
        """Count one POST in ``second``; the count so far in that second."""
        key = self.keys.trigger_rate(trigger_id, second)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 5)
        count, _ = pipe.execute()
        return int(count)

    @storage_call
    def audit(self, flag: Flag, *, actor: str, action: str, reason: str, at: int) -> None:
        """One audit entry on ``flag``'s stream that changes nothing in the flag."""
        state = dumps(flag_to_dict(flag))
        fields = {
            "flag": flag.key,
            "actor": actor,
            "action": action,
            "reason": reason,
            "before": state,
            "after": state,
            "at": render_instant(at) or "",
            "version": flag.version,
        }
        append_audit(self.redis, self.keys, flag.key, fields)
