"""What a notification says (DESIGN §6), as pure functions: events from audit entries and from
the controller's event stream, their JSON body, the Slack text and the signature.

An event's id is its stream entry's id and the flag (``1733100000000-0.KEY``; ``.status`` is
appended for entries of the event stream, whose ids could equal an audit entry's), so a
redelivery carries the same id and a receiver can de-duplicate on it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollout.core.decide import Decision
from rollout.core.gates import Verdict
from rollout.core.model import Flag
from rollout.core.units import render_instant, render_percent
from rollout.core.vocabulary import EVENT_TYPES, EVENT_WORDS, MISMATCH_EVENT, Action

READINGS = "readings"  # an event-stream entry that only carries a controller kill's readings


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    at: str  # ISO 8601 UTC, milliseconds
    flag: str
    actor: str
    reason: str | None
    before: Mapping[str, Any] | None  # {state, percent, stage}
    after: Mapping[str, Any] | None
    readings: tuple[Mapping[str, Any], ...] = ()
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "at": self.at,
            "flag": self.flag,
            "actor": self.actor,
            "reason": self.reason,
            "before": None if self.before is None else dict(self.before),
            "after": None if self.after is None else dict(self.after),
            "readings": [dict(r) for r in self.readings],
        }
        if self.url is not None:
            out["url"] = self.url
        return out


def _position(flag: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not flag:
        return None
    return {"state": flag.get("state"), "percent": flag.get("percent"), "stage": flag.get("stage")}


def flag_url(public_url: str | None, key: str) -> str | None:
    return f"{public_url.rstrip('/')}/flags/{key}" if public_url else None


def audit_event_type(
    action: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> str | None:
    """The event an audit action is, or None (restore and trigger bookkeeping tell nothing)."""
    completes = after is not None and after.get("state") == "complete"
    if action == "advance" and completes and (not before or before.get("state") != "complete"):
        return "complete"
    return action if action in EVENT_TYPES else None


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def event_from_audit(
    entry_id: str,
    fields: Mapping[str, str],
    *,
    public_url: str | None = None,
    readings: Sequence[Mapping[str, Any]] = (),
) -> Event | None:
    """The event of one audit stream entry, as stored; None when it tells nothing."""
    before, after = _json(fields.get("before")), _json(fields.get("after"))
    kind = audit_event_type(fields.get("action", ""), before, after)
    key = fields.get("flag", "")
    if kind is None or not key:
        return None
    return Event(
        id=f"{entry_id}.{key}",
        type=kind,
        at=fields.get("at", ""),
        flag=key,
        actor=fields.get("actor", ""),
        reason=fields.get("reason") or None,
        before=_position(before),
        after=_position(after),
        readings=tuple(readings) if kind == "kill" else (),
        url=flag_url(public_url, key),
    )


def event_from_stream(
    entry_id: str, fields: Mapping[str, str], *, public_url: str | None = None
) -> Event | None:
    """The event of one entry of the controller's event stream; None for a readings carrier."""
    kind = fields.get("type", "")
    key = fields.get("flag", "")
    if kind not in EVENT_TYPES or not key:
        return None
    position = _json(fields.get("position"))
    return Event(
        id=f"{entry_id}.{key}.status",
        type=kind,
        at=fields.get("at", ""),
        flag=key,
        actor=fields.get("actor", "controller"),
        reason=fields.get("reason") or None,
        before=position,
        after=position,
        readings=tuple(_json(fields.get("readings")) or ()),
        url=flag_url(public_url, key),
    )


# -- what the controller appends --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry for the flag's event stream; ``mark`` makes it once per stage (None: always)."""

    mark: str | None
    fields: Mapping[str, str]


def position_of(flag: Flag) -> dict[str, Any]:
    return {
        "state": str(flag.state),
        "percent": render_percent(flag.percent_bp),
        "stage": flag.stage,
    }


def _reading(summary: Any) -> dict[str, Any]:
    return {"metric": summary.gate.metric, "verdict": str(summary.verdict), "why": summary.why}


def status_entries(flag: Flag, decision: Decision, at_ms: int, actor: str) -> list[StreamEntry]:
    """What the controller appends for ``decision``: a hold per gate at ``warn``, a
    sample_ratio_mismatch for a hold on a mismatch, and an awaiting_approval, each once per
    stage (the mark names the stage's epoch); for a kill, the readings that the kill's event
    will carry. Waiting for the bake or samples tells nothing."""
    epoch = flag.stage_started_at or 0
    common = {
        "flag": flag.key,
        "actor": actor,
        "at": render_instant(at_ms) or "",
        "position": json.dumps(position_of(flag)),
        "version": str(flag.version),
    }
    if decision.action is Action.KILL:
        failing = [_reading(s) for s in decision.readings if s.verdict is Verdict.FAIL]
        fields = {**common, "type": READINGS, "readings": json.dumps(failing)}
        return [StreamEntry(None, fields)]
    if decision.action is Action.HOLD:
        out = []
        if decision.mismatch:
            kind = MISMATCH_EVENT
            assert kind is not None
            fields = {**common, "type": kind, "reason": decision.why}
            out.append(StreamEntry(f"{epoch}|{kind}", fields))
        for summary in decision.readings:
            if summary.verdict is Verdict.WARN:
                metric = summary.gate.metric
                fields = {
                    **common,
                    "type": "hold",
                    "reason": summary.why,
                    "readings": json.dumps([_reading(summary)]),
                }
                out.append(StreamEntry(f"{epoch}|hold|{metric}", fields))
        return out
    if decision.action is Action.AWAIT_APPROVAL:
        kind = EVENT_WORDS[Action.AWAIT_APPROVAL]
        assert kind is not None
        fields = {**common, "type": kind, "reason": decision.why}
        return [StreamEntry(f"{epoch}|{kind}", fields)]
    return []


# -- bodies --------------------------------------------------------------------------------

_VERBS = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "set": "set",
    "advance": "advanced",
    "rollback": "rolled back",
    "pause": "paused",
    "resume": "resumed",
    "kill": "killed",
    "revive": "revived",
    "complete": "completed",
    "hold": "held",
    "awaiting_approval": "awaits approval",
    "sample_ratio_mismatch": "has a sample ratio mismatch",
    "test": "test event",
}


def json_body(event: Event) -> bytes:
    return json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def slack_text(event: Event) -> str:
    """First line: what happened to which flag, by whom, and why; then where it stands."""
    verb = _VERBS.get(event.type, event.type)
    first = f"{event.flag} {verb} by {event.actor}" + (f": {event.reason}" if event.reason else "")
    lines = [first]
    if event.after is not None:
        where = f"now {event.after.get('state')} at {event.after.get('percent')}%"
        if event.before is not None and event.before != event.after:
            where = f"{event.before.get('state')} at {event.before.get('percent')}% → " + where
        lines.append(where)
    if event.url:
        lines.append(f"<{event.url}|{event.flag}>")
    return "\n".join(lines)


def slack_body(event: Event) -> bytes:
    return json.dumps({"text": slack_text(event)}, ensure_ascii=False).encode()


def body_for(event: Event, fmt: str) -> bytes:
    return slack_body(event) if fmt == "slack" else json_body(event)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=UNIX,v1=HEX(HMAC-SHA256(secret, f"{t}.{body}"))``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (used by tests and the README's example)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)
