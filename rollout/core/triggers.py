"""Inbound triggers (DESIGN §6): what a POST to a trigger's URL says, as pure functions.

A trigger is a kill credential: a random secret in the URL path, of which only the SHA-256
is stored. ``payload_verdict`` reads the body the alerting stack sent (Alertmanager's webhook
payload, any other JSON, or nothing at all) and says whether it asks for a kill, and why.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.core.errors import ValidationError
from rollout.core.schema import validate_key
from rollout.core.units import render_instant

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
DEFAULT_NAME = "trigger"
MAX_REASON = 500
HOOK_PREFIX = "/hooks/triggers"


@dataclass(frozen=True, slots=True)
class Trigger:
    id: str
    flag: str
    name: str
    secret_hash: str  # hex SHA-256 of the secret; the secret itself is never stored
    created_at: int
    created_by: str
    last_fired_at: int | None = None

    def to_dict(self, *, with_hash: bool = False) -> dict[str, Any]:
        """The external form; the hash only for snapshots, never for a listing."""
        out: dict[str, Any] = {
            "id": self.id,
            "flag": self.flag,
            "name": self.name,
            "created_at": render_instant(self.created_at),
            "created_by": self.created_by,
            "last_fired_at": render_instant(self.last_fired_at),
        }
        if with_hash:
            out["secret_hash"] = self.secret_hash
            out["created_at_ms"] = self.created_at
        return out


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValidationError(
            "must be 1-64 of letters, digits and _ . : - (starting with a letter or digit)",
            "name",
        )
    return name


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant time in where the two differ: both sides are fixed-length digests."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def hook_path(trigger_id: str, secret: str) -> str:
    return f"{HOOK_PREFIX}/{trigger_id}/{secret}"


def trigger_from_dict(raw: object) -> Trigger:
    """A trigger as stored or as in a snapshot (with its hash); ValidationError otherwise."""
    if not isinstance(raw, Mapping):
        raise ValidationError("must be an object", "trigger")
    try:
        trigger_id = raw["id"]
        if not isinstance(trigger_id, str) or not ID_PATTERN.fullmatch(trigger_id):
            raise ValidationError("must be 16 hex digits", "id")
        secret_hash = raw["secret_hash"]
        if not isinstance(secret_hash, str) or not re.fullmatch(r"[0-9a-f]{64}", secret_hash):
            raise ValidationError("must be a hex SHA-256", "secret_hash")
        created = raw.get("created_at_ms", 0)
        fired = raw.get("last_fired_at_ms")
        if not isinstance(created, int) or (fired is not None and not isinstance(fired, int)):
            raise ValidationError("must be epoch milliseconds", "created_at_ms")
        by = raw.get("created_by", "")
        if not isinstance(by, str):
            raise ValidationError("must be a string", "created_by")
        return Trigger(
            id=trigger_id,
            flag=validate_key(raw["flag"], "flag"),
            name=validate_name(raw["name"]),
            secret_hash=secret_hash,
            created_at=created,
            created_by=by,
            last_fired_at=fired,
        )
    except KeyError as missing:
        raise ValidationError("is required", str(missing.args[0])) from None


def trigger_to_stored(trigger: Trigger) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "flag": trigger.flag,
        "name": trigger.name,
        "secret_hash": trigger.secret_hash,
        "created_at_ms": trigger.created_at,
        "created_by": trigger.created_by,
        "last_fired_at_ms": trigger.last_fired_at,
    }


# -- what a payload says -------------------------------------------------------------------


def clean(text: str, limit: int = MAX_REASON) -> str:
    """One line of printable text, at most ``limit`` characters (an ellipsis when cut)."""
    kept = "".join(
        " " if ch in "\r\n\t" else ch
        for ch in text
        if ch in "\r\n\t" or not unicodedata.category(ch).startswith("C")
    )
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def parse_body(data: bytes) -> object | None:
    """The body as JSON whatever its Content-Type; None when empty or not JSON."""
    if not data.strip():
        return None
    try:
        value: object = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Verdict:
    kill: bool
    message: str  # the kill's reason, or why nothing was done


def _is_alertmanager(payload: object) -> bool:
    return (
        isinstance(payload, Mapping)
        and payload.get("version") == "4"
        and isinstance(payload.get("alerts"), list)
        and payload.get("status") in ("firing", "resolved")
    )


def _alert_text(alert: object) -> str:
    if not isinstance(alert, Mapping):
        return "alert"
    labels = alert.get("labels")
    annotations = alert.get("annotations")
    name = labels.get("alertname") if isinstance(labels, Mapping) else None
    summary = annotations.get("summary") if isinstance(annotations, Mapping) else None
    text = str(name) if isinstance(name, str) and name else "alert"
    if isinstance(summary, str) and summary:
        text += f" ({summary})"
    return text


def payload_verdict(trigger_name: str, payload: object) -> Verdict:
    """What a POST asks for: Alertmanager ``firing`` kills and names its alerts, ``resolved``
    does nothing (a trigger never revives); any other body kills in the trigger's name."""
    if not _is_alertmanager(payload):
        return Verdict(True, clean(f"trigger {trigger_name} fired"))
    assert isinstance(payload, Mapping)
    if payload["status"] == "resolved":
        return Verdict(False, "alert resolved: nothing done (a trigger never revives a flag)")
    alerts = payload["alerts"]
    firing = [a for a in alerts if not isinstance(a, Mapping) or a.get("status") != "resolved"]
    texts = [_alert_text(a) for a in (firing or alerts)]
    named = ": " + "; ".join(texts) if texts else ""
    return Verdict(True, clean(f"alert firing via trigger {trigger_name}{named}"))
