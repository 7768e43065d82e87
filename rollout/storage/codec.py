"""The stored form of a flag: JSON with a schema version, the version kept beside it.

The stored document is the external form of ``core.schema`` without ``version`` and ``status``
(those live in their own fields/keys), so a snapshot of stored flags is exact.
"""

from __future__ import annotations

import json
from typing import Any

from rollout.core.errors import MalformedFlag, RolloutError
from rollout.core.model import Flag, Status
from rollout.core.schema import flag_from_dict, flag_to_dict
from rollout.core.units import parse_instant, render_instant

SCHEMA_VERSION = 1


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def encode_flag(flag: Flag) -> str:
    """The stored form; refuses (ValidationError) any value that could not be read back."""
    doc = flag_to_dict(flag)
    flag_from_dict(doc)  # a write the read path would reject must never reach Redis
    del doc["version"], doc["status"]
    doc["schema"] = SCHEMA_VERSION
    return dumps(doc)


def decode_flag(key: str, version: str | None, doc: str | None, status: str | None = None) -> Flag:
    """Raises ``MalformedFlag`` naming the key for anything that is not a valid stored flag."""
    try:
        if doc is None or version is None:
            raise ValueError("the value is incomplete")
        data = json.loads(doc)
        if not isinstance(data, dict):
            raise ValueError("the value is not a JSON object")
        schema = data.pop("schema", None)
        if schema != SCHEMA_VERSION:
            raise ValueError(f"unknown schema {schema!r}")
        data["version"] = int(version)
        flag = flag_from_dict(data)
    except (ValueError, RolloutError) as error:
        raise MalformedFlag(key, str(error)) from None
    if flag.key != key:
        raise MalformedFlag(key, f"the value is for flag {flag.key!r}")
    return flag.with_changes(status=decode_status(status))


def encode_status(status: Status) -> str:
    return dumps({"decision": status.decision, "why": status.why, "at": render_instant(status.at)})


def status_message(key: str, encoded: str) -> str:
    """What the status channel carries (``feed.StatusChange``): the key and the encoded word,
    "" when the word was cleared."""
    return dumps({"key": key, "status": encoded})


def decode_status(raw: str | None) -> Status | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Status(str(data["decision"]), str(data["why"]), parse_instant(data["at"], "at") or 0)
    except (ValueError, KeyError, TypeError, RolloutError):
        return None  # a garbled status is only a stale message; the flag still works
