"""What a notification says: pure event construction, bodies and signatures."""

from __future__ import annotations

import json

from rollout.core.events import (
    event_from_audit,
    event_from_stream,
    json_body,
    signature,
    slack_text,
    verify,
)
from rollout.core.triggers import clean, parse_body, payload_verdict

ROLLING = json.dumps({"state": "rolling", "percent": 10, "stage": 0, "version": 3})
KILLED = json.dumps({"state": "killed", "percent": 0, "stage": None, "version": 4})
FIELDS = {
    "flag": "PROMPT_IMPROVER_ENABLED",
    "actor": "controller",
    "action": "kill",
    "reason": "error_rate 24.4% (lower bound 17.5%) ≥ critical 10% over 193 samples",
    "before": ROLLING,
    "after": KILLED,
    "at": "2026-12-01T03:12:09.412Z",
}


def test_kill_event_body_matches_the_documented_shape() -> None:
    readings = [{"metric": "error_rate", "verdict": "fail", "why": "…"}]
    event = event_from_audit(
        "1733100000000-0", FIELDS, public_url="https://rollout.example.com", readings=readings
    )
    assert event is not None
    body = json.loads(json_body(event))
    assert body == {
        "id": "1733100000000-0.PROMPT_IMPROVER_ENABLED",
        "type": "kill",
        "at": "2026-12-01T03:12:09.412Z",
        "flag": "PROMPT_IMPROVER_ENABLED",
        "actor": "controller",
        "reason": FIELDS["reason"],
        "before": {"state": "rolling", "percent": 10, "stage": 0},
        "after": {"state": "killed", "percent": 0, "stage": None},
        "readings": readings,
        "url": "https://rollout.example.com/flags/PROMPT_IMPROVER_ENABLED",
    }
    first = slack_text(event).splitlines()[0]
    assert first == f"PROMPT_IMPROVER_ENABLED killed by controller: {FIELDS['reason']}"


def test_complete_is_derived_and_bookkeeping_tells_nothing() -> None:
    done = json.dumps({"state": "complete", "percent": 100, "stage": 1})
    advance = {**FIELDS, "action": "advance", "after": done}
    assert event_from_audit("1-0", advance).type == "complete"  # type: ignore[union-attr]
    onward = {**advance, "after": json.dumps({"state": "rolling", "percent": 50, "stage": 1})}
    assert event_from_audit("1-0", onward).type == "advance"  # type: ignore[union-attr]
    for action in ("restore", "trigger_create", "trigger_delete", "nonsense"):
        assert event_from_audit("1-0", {**FIELDS, "action": action}) is None
    assert event_from_audit("1-0", {**FIELDS, "action": "kill"}).url is None  # type: ignore[union-attr]


def test_stream_entries_and_readings_carriers() -> None:
    hold = {"type": "hold", "flag": "F", "at": "x", "position": ROLLING, "reason": "warn"}
    event = event_from_stream("5-0", hold)
    assert event is not None and event.id == "5-0.F.status" and event.before == event.after
    assert event_from_stream("5-0", {**hold, "type": "readings"}) is None


def test_signature_verifies_and_detects_tampering() -> None:
    body = b'{"id":"1-0.F"}'
    header = signature("s3cret", 1_800_000_000, body)
    assert header.startswith("t=1800000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify("s3cret", header, body)
    assert not verify("s3cret", header, body + b" ")
    assert not verify("other", header, body)
    assert not verify("s3cret", "garbage", body)


def test_trigger_payloads() -> None:
    assert parse_body(b"") is None and parse_body(b"{bad") is None
    assert parse_body(b'{"a": 1}') == {"a": 1}
    assert payload_verdict("t", None).kill
    assert payload_verdict("t", {"version": "4", "status": "resolved", "alerts": []}).kill is False
    firing = {"version": "4", "status": "firing", "alerts": []}
    assert payload_verdict("t", firing).message == "alert firing via trigger t"
    # version "3" or no alerts list: not Alertmanager's shape, so a generic kill
    assert payload_verdict("t", {"version": "3", "status": "resolved", "alerts": []}).kill
    assert clean("a\x00b\x1b[31mc\n d") == "ab[31mc d"
    assert len(clean("x" * 600)) == 500
