"""The flag's external form (DESIGN §2 field names) and strict validation of every input.

One representation serves the API, the CLI's ``--json``, snapshots and the stored value, so a
snapshot round trip is exact. Validation names the field (``stages[1].bake``) and never guesses:
unknown fields are refused, so a typo in a TOML file cannot silently do nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rollout.core.bounds import Moments
from rollout.core.defaults import MAX_ACTOR, MAX_LISTED_USER, MAX_SALT, MAX_TEXT
from rollout.core.errors import ValidationError
from rollout.core.gate_schema import gate_to_dict, parse_gates
from rollout.core.model import (
    KEY_PATTERN,
    SRM_HOLD,
    SRM_MODES,
    VALUE_NAME_PATTERN,
    Flag,
    KillRecord,
    Stage,
    State,
    Status,
)
from rollout.core.parse import count as _count
from rollout.core.parse import list_of as _list
from rollout.core.parse import mapping as _mapping
from rollout.core.parse import number as _number
from rollout.core.rules import parse_rules, rule_to_dict
from rollout.core.units import (
    parse_duration,
    parse_instant,
    parse_percent,
    render_duration,
    render_instant,
    render_percent,
)

# Fields an operator may set through create / PATCH / apply. Never state, percent or stage.
CONFIG_FIELDS = (
    "description",
    "auto_advance",
    "stages",
    "gates",
    "allow",
    "deny",
    "rules",
    "srm",
)
MAX_STAGES = 20
MAX_USERS = 10_000


def validate_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            f"{key!r} is not a valid flag key (a letter, then up to 127 of A-Z a-z 0-9 _ . -)",
            field,
        )
    return key


def _text(value: object, field: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise ValidationError("must be a string", field)
    if len(value) > limit:
        raise ValidationError(f"is longer than {limit} characters", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: valid Python, not storable text
        raise ValidationError("is not valid Unicode text", field) from None
    if _CONTROL.search(value):
        # Escape sequences in a reason would be replayed on every operator's terminal.
        raise ValidationError("must not contain control characters (tab and newline are ok)", field)
    return value


def validate_text(value: object, field: str, limit: int = MAX_TEXT) -> str:
    """Text an operator typed (a reason, an actor, a user id): a string Redis can store."""
    return _text(value, field, limit)


def validate_actor(actor: object, field: str = "actor") -> str:
    """Who, in the audit log: one line, not blank, short enough to show in a table."""
    text = _text(actor, field, MAX_ACTOR)
    if not text.strip() or "\n" in text or "\t" in text:
        raise ValidationError("must be one line, not blank", field)
    return text


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError("must be true or false", field)
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def parse_users(value: object, field: str) -> tuple[str, ...]:
    users: dict[str, None] = {}  # ordered de-duplication
    for i, user in enumerate(_list(value, field, MAX_USERS)):
        text = _text(user, f"{field}[{i}]", MAX_LISTED_USER)
        if not text:
            raise ValidationError("must not be empty", f"{field}[{i}]")
        users[text] = None
    return tuple(users)


def parse_stages(value: object, field: str = "stages") -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for i, raw in enumerate(_list(value, field, MAX_STAGES)):
        where = f"{field}[{i}]"
        item = _mapping(raw, where, ("percent", "bake", "min_samples"))
        if "percent" not in item:
            raise ValidationError("is required", f"{where}.percent")
        bp = parse_percent(item["percent"], f"{where}.percent")
        if bp == 0:
            raise ValidationError("a stage must expose more than 0%", f"{where}.percent")
        if stages and bp <= stages[-1].percent_bp:
            raise ValidationError(
                "stages must increase (each percent above the one before)", f"{where}.percent"
            )
        stages.append(
            Stage(
                percent_bp=bp,
                bake_ms=parse_duration(item.get("bake", 0), f"{where}.bake"),
                min_samples=_count(item.get("min_samples", 0), f"{where}.min_samples"),
            )
        )
    return tuple(stages)


def _srm(value: object, field: str) -> str:
    if value not in SRM_MODES:
        raise ValidationError(f"must be one of {', '.join(SRM_MODES)}", field)
    return str(value)


_CONFIG_PARSERS = {
    "srm": _srm,
    "description": lambda v, f: _text(v, f),
    "auto_advance": _bool,
    "stages": parse_stages,
    "gates": parse_gates,
    "allow": parse_users,
    "deny": parse_users,
    "rules": parse_rules,
}


def parse_config(data: Mapping[str, Any], allowed: Sequence[str] = CONFIG_FIELDS) -> dict[str, Any]:
    """Validated values of the operator-settable fields present in ``data`` (Flag field names)."""
    body = _mapping(data, "", allowed)
    return {name: _CONFIG_PARSERS[name](body[name], name) for name in allowed if name in body}


def stage_to_dict(stage: Stage) -> dict[str, Any]:
    return {
        "percent": render_percent(stage.percent_bp),
        "bake": render_duration(stage.bake_ms),
        "min_samples": stage.min_samples,
    }


def flag_to_dict(flag: Flag) -> dict[str, Any]:
    kill = flag.kill
    status = flag.status
    return {
        "key": flag.key,
        "description": flag.description,
        "state": str(flag.state),
        "percent": render_percent(flag.percent_bp),
        "stages": [stage_to_dict(s) for s in flag.stages],
        "auto_advance": flag.auto_advance,
        "srm": flag.srm,
        "stage": flag.stage,
        "stage_started_at": render_instant(flag.stage_started_at),
        "gates": [gate_to_dict(g) for g in flag.gates],
        "allow": list(flag.allow),
        "deny": list(flag.deny),
        "rules": [rule_to_dict(r) for r in flag.rules],
        "salt": flag.salt,
        "kill": None
        if kill is None
        else {
            "reason": kill.reason,
            "by": kill.by,
            "at": render_instant(kill.at),
            "state_before": str(kill.state_before),
            "stage_before": kill.stage_before,
            "percent_before": render_percent(kill.percent_before_bp),
        },
        "status": None
        if status is None
        else {"decision": status.decision, "why": status.why, "at": render_instant(status.at)},
        "version": flag.version,
        "created_at": render_instant(flag.created_at),
        "updated_at": render_instant(flag.updated_at),
        "completed_at": render_instant(flag.completed_at),
        "baseline_p95_ms": flag.baseline_p95_ms,
        "baseline_values": {
            name: {"n": m.n, "mean": m.mean, "m2": m.m2} for name, m in flag.baseline_values.items()
        },
    }


FLAG_FIELDS = tuple(flag_to_dict(Flag(key="x")))


def _state(value: object, field: str) -> State:
    try:
        return State(str(value))
    except ValueError:
        raise ValidationError(
            f"must be one of {', '.join(s.value for s in State)}", field
        ) from None


def _optional_index(value: object, field: str, stages: int) -> int | None:
    if value is None:
        return None
    index = _count(value, field)
    if index >= stages:
        raise ValidationError(f"stage {index} does not exist ({stages} stages)", field)
    return index


def flag_from_dict(data: Mapping[str, Any], *, require_version: bool = False) -> Flag:
    """A whole flag from its external form (snapshots, stored values); strict."""
    body = _mapping(data, "", FLAG_FIELDS)
    key = validate_key(body.get("key"))
    config = parse_config({k: body[k] for k in CONFIG_FIELDS if k in body})
    stages: tuple[Stage, ...] = config.get("stages", ())
    state = _state(body.get("state", "draft"), "state")
    raw_kill = body.get("kill")
    kill = None
    if raw_kill is not None:
        k = _mapping(
            raw_kill,
            "kill",
            ("reason", "by", "at", "state_before", "stage_before", "percent_before"),
        )
        kill = KillRecord(
            reason=_text(k.get("reason", ""), "kill.reason"),
            by=_text(k.get("by", ""), "kill.by"),
            at=parse_instant(k.get("at"), "kill.at") or 0,
            state_before=_state(k.get("state_before"), "kill.state_before"),
            stage_before=_optional_index(k.get("stage_before"), "kill.stage_before", len(stages)),
            percent_before_bp=parse_percent(k.get("percent_before", 0), "kill.percent_before"),
        )
    if (state is State.KILLED) != (kill is not None):
        raise ValidationError("a killed flag needs a kill record, and only a killed one", "kill")
    if kill is not None and kill.state_before is State.KILLED:
        raise ValidationError("a flag cannot have been killed from killed", "kill.state_before")
    raw_status = body.get("status")
    status = None
    if raw_status is not None:
        s = _mapping(raw_status, "status", ("decision", "why", "at"))
        status = Status(
            decision=_text(s.get("decision", ""), "status.decision"),
            why=_text(s.get("why", ""), "status.why"),
            at=parse_instant(s.get("at"), "status.at") or 0,
        )
    if require_version and "version" not in body:
        raise ValidationError("is required", "version")
    baseline = body.get("baseline_p95_ms")
    baseline_values = _baseline_values(body.get("baseline_values", {}))
    salt = _text(body.get("salt") or key, "salt", MAX_SALT)
    percent_bp = parse_percent(body.get("percent", 0))
    if state in (State.DRAFT, State.KILLED) and percent_bp:
        # Both serve no one through the bucket; a percent here would turn users on anyway.
        raise ValidationError(f"a {state} flag is at 0%", "percent")
    return Flag(
        key=key,
        description=config.get("description", ""),
        state=state,
        percent_bp=percent_bp,
        stages=stages,
        auto_advance=config.get("auto_advance", False),
        srm=config.get("srm", SRM_HOLD),
        stage=_optional_index(body.get("stage"), "stage", len(stages)),
        stage_started_at=parse_instant(body.get("stage_started_at"), "stage_started_at"),
        gates=config.get("gates", ()),
        allow=config.get("allow", ()),
        deny=config.get("deny", ()),
        rules=config.get("rules", ()),
        salt=salt,
        kill=kill,
        status=status,
        version=_count(body.get("version", 0), "version"),
        created_at=parse_instant(body.get("created_at"), "created_at"),
        updated_at=parse_instant(body.get("updated_at"), "updated_at"),
        completed_at=parse_instant(body.get("completed_at"), "completed_at"),
        baseline_p95_ms=None if baseline is None else _number(baseline, "baseline_p95_ms"),
        baseline_values=baseline_values,
    )


def _baseline_values(value: object) -> dict[str, Moments]:
    if not isinstance(value, Mapping):
        raise ValidationError("must be an object", "baseline_values")
    out = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not VALUE_NAME_PATTERN.fullmatch(name):
            raise ValidationError(f"{name!r} is not a business value name", "baseline_values")
        where = f"baseline_values.{name}"
        item = _mapping(raw, where, ("n", "mean", "m2"))
        m2 = _number(item.get("m2", 0.0), f"{where}.m2")
        if m2 < 0:
            raise ValidationError("must not be negative", f"{where}.m2")
        out[name] = Moments(
            _count(item.get("n", 0), f"{where}.n"), _number(item.get("mean"), f"{where}.mean"), m2
        )
    return out
