"""The flag repository: reads, compare-and-set writes, audit and change notices in one step.

A write is WATCH on the flag and its high-water mark, a version check, then one MULTI/EXEC
that stores the value, appends exactly one audit entry and publishes the change. Either all of
it happens or none of it does, so the audit can never disagree with the flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from rollout.core.errors import ConcurrentUpdate, FlagExists, FlagNotFound, MalformedFlag
from rollout.core.model import Flag, Status
from rollout.core.schema import flag_to_dict
from rollout.core.units import render_instant
from rollout.storage.codec import decode_flag, dumps, encode_flag, encode_status
from rollout.storage.errors import storage_call, wrapped
from rollout.storage.keys import Keys

AUDIT_MAX_LEN = 10_000  # per flag; approximate trimming keeps XADD O(1)

# Entries of different flags written in the same millisecond have equal stream ids, so each
# entry also carries a global sequence number: the merged log of every flag has one true order.
_SET_STATUS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[1])
  redis.call('PUBLISH', KEYS[3], ARGV[2])
  return 1
end
return 0
"""
_AUDIT_APPEND = """
local seq = redis.call('INCR', KEYS[2])
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'seq', seq, unpack(ARGV, 2))
"""


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    reason: str | None
    at: int


class FlagStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        # redis-py's typing does not know decode_responses=True; every reply here is str.
        self.redis: Any = client
        self.keys = keys
        self._append_audit = client.register_script(_AUDIT_APPEND)
        self._set_status = client.register_script(_SET_STATUS)

    # -- reads ---------------------------------------------------------------------------

    @storage_call
    def get(self, key: str) -> Flag:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.flag(key), "v", "d")
        pipe.get(self.keys.status(key))
        (version, doc), status = pipe.execute()
        if version is None and doc is None:
            raise FlagNotFound(key)
        return decode_flag(key, version, doc, status)

    @storage_call
    def version(self, key: str) -> int:
        """The stored version, 0 when absent; readable even when the value is malformed."""
        return int(self.redis.hget(self.keys.flag(key), "v") or 0)

    @storage_call
    def keys_list(self) -> list[str]:
        return sorted(self.redis.smembers(self.keys.index))

    @storage_call
    def load_all(self) -> tuple[dict[str, Flag], list[MalformedFlag]]:
        """Every flag in two round trips; malformed ones are reported, not raised."""
        names = sorted(self.redis.smembers(self.keys.index))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hmget(self.keys.flag(name), "v", "d")
            pipe.get(self.keys.status(name))
        replies = pipe.execute()
        flags: dict[str, Flag] = {}
        problems: list[MalformedFlag] = []
        for i, name in enumerate(names):
            (version, doc), status = replies[2 * i], replies[2 * i + 1]
            if version is None and doc is None:
                continue  # deleted between the two calls
            try:
                flags[name] = decode_flag(name, version, doc, status)
            except MalformedFlag as problem:
                problems.append(problem)
        return flags, problems

    # -- writes --------------------------------------------------------------------------

    def write(
        self,
        new: Flag | None,
        *,
        key: str,
        expected_version: int,
        audit: AuditEntry,
        before: Flag | None,
        write_status: bool = False,
    ) -> Flag | None:
        """Store ``new`` (or delete when None) iff the stored version is ``expected_version``.

        ``expected_version`` 0 means "must not exist" (create). Raises ``ConcurrentUpdate`` when
        another write got there first, ``FlagExists``/``FlagNotFound`` for create/update races.
        The controller's status is left alone unless ``write_status`` (restore sets it exactly).
        """
        flag_key, hwm_key = self.keys.flag(key), self.keys.high_water(key)
        with wrapped(), self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(flag_key, hwm_key)
                current = pipe.hget(flag_key, "v")
                current_version = int(current) if current is not None else 0
                if current_version != expected_version:
                    if expected_version == 0:
                        raise FlagExists(key)
                    if current is None:
                        raise FlagNotFound(key)
                    raise ConcurrentUpdate(
                        f"flag {key!r} is at version {current_version}, not {expected_version}"
                    )
                version = max(current_version, int(pipe.get(hwm_key) or 0)) + 1
                stored = None if new is None else new.with_changes(version=version, status=None)
                pipe.multi()
                if stored is None:
                    pipe.delete(flag_key, self.keys.status(key))
                    pipe.srem(self.keys.index, key)
                else:
                    pipe.hset(flag_key, mapping={"v": version, "d": encode_flag(stored)})
                    pipe.sadd(self.keys.index, key)
                    if write_status and new is not None and new.status is not None:
                        pipe.set(self.keys.status(key), encode_status(new.status))
                    elif write_status:
                        pipe.delete(self.keys.status(key))
                pipe.set(hwm_key, version)
                fields = {
                    "flag": key,
                    "actor": audit.actor,
                    "action": audit.action,
                    "reason": audit.reason or "",
                    "before": "" if before is None else dumps(flag_to_dict(before)),
                    "after": "" if stored is None else dumps(flag_to_dict(stored)),
                    "at": render_instant(audit.at) or "",
                    "version": version,
                }
                self._append_audit(
                    keys=[self.keys.audit(key), self.keys.audit_sequence],
                    args=[AUDIT_MAX_LEN, *[part for item in fields.items() for part in item]],
                    client=pipe,
                )
                pipe.sadd(self.keys.audited, key)
                message = {"key": key, "version": version}
                message["flag"] = None if stored is None else flag_to_dict(stored)
                pipe.publish(self.keys.changes, dumps(message))
                pipe.execute()
            except redis.exceptions.WatchError:
                raise ConcurrentUpdate(f"flag {key!r} changed during the write") from None
        if stored is None or new is None:
            return None
        return stored.with_changes(status=new.status)

    @storage_call
    def set_status(self, key: str, status: Status) -> bool:
        """The controller's word, beside the versioned value: no version bump, no audit entry.

        Only while the flag exists, so a word landing after a delete cannot haunt a new flag
        of the same name. False when the flag is gone.
        """
        encoded = encode_status(status)
        written = self._set_status(
            keys=[self.keys.flag(key), self.keys.status(key), self.keys.status_changes],
            args=[encoded, dumps({"key": key, "status": encoded})],
        )
        return bool(written)

    # -- audit ---------------------------------------------------------------------------

    @staticmethod
    def _audit_entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
        return {
            "id": entry_id,
            "flag": fields.get("flag", ""),
            "actor": fields.get("actor", ""),
            "action": fields.get("action", ""),
            "reason": fields.get("reason") or None,
            "before": json.loads(fields["before"]) if fields.get("before") else None,
            "after": json.loads(fields["after"]) if fields.get("after") else None,
            "at": fields.get("at", ""),
            "version": int(fields.get("version") or 0),
            "seq": int(fields.get("seq") or 0),
        }

    @staticmethod
    def _id_order(entry_id: str) -> tuple[int, int]:
        ms, _, seq = entry_id.partition("-")
        return int(ms), int(seq or 0)

    @storage_call
    def audit(self, key: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first. Without a key, the newest entries of all flags merged by stream id."""
        names = [key] if key is not None else sorted(self.redis.smembers(self.keys.audited))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.xrevrange(self.keys.audit(name), count=limit)
        merged = [item for reply in pipe.execute() for item in reply]
        merged.sort(key=lambda item: (int(item[1].get("seq") or 0), self._id_order(item[0])))
        merged.reverse()
        return [self._audit_entry(entry_id, fields) for entry_id, fields in merged[:limit]]

    @storage_call
    def ping(self) -> bool:
        return bool(self.redis.ping())
