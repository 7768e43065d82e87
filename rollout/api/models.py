"""Pydantic models of the API's bodies and answers: the source of the OpenAPI document.

Request models check the shape of a body (types, required and unknown fields) so that a client
gets a 422 naming the field before anything else runs. The values themselves are checked again,
exactly, by ``core.schema`` inside the services (percent decimals, increasing stages, durations):
views pass the raw JSON on, never a model's coerced copy, so no float is ever rounded on the way.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from rollout.core.defaults import (
    MAX_LISTED_USER,
    MAX_RULE_TEXT,
    MAX_RULE_VALUES,
    MAX_RULES,
    MAX_SALT,
    MAX_TEXT,
    MAX_USER,
)
from rollout.core.gate_schema import MAX_GATES
from rollout.core.gates import GATE_KINDS, GateKind
from rollout.core.model import DIRECTIONS, HIGHER_IS_BETTER, KEY_PATTERN, SRM_HOLD, SRM_MODES
from rollout.core.parse import MAX_COUNT
from rollout.core.rules import MAX_ATTRIBUTE, MAX_SEMVER
from rollout.core.schema import MAX_STAGES, MAX_USERS
from rollout.core.units import format_duration

# Constraints that core checks with its own messages are only *documented* here (through
# json_schema_extra or WithJsonSchema), so a client reads the service's message, naming the
# field, rather than pydantic's; pydantic enforces the shape (types, lengths, required fields).

# core.schema refuses control characters (tab and newline are fine) in any text an operator
# types: they would be replayed on every terminal that shows it. (It also refuses lone
# surrogates, which JSON can escape but no pattern the validators share can name.)
TEXT_PATTERN = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$"
_TEXT: dict[str, Any] = {"pattern": TEXT_PATTERN}
# Rule values hold no control character at all (core.rules).
RULE_TEXT_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"

TEN_YEARS = 10 * 365 * 86_400
# What core.units.parse_duration reads, documented as the spellings a client should send:
# whole milliseconds, whole or millisecond-exact seconds, and whole minutes, hours and days,
# each at most ten years. (The parser also takes decimals of the larger units, e.g. "1.5h".)
DURATION_PATTERN = (
    r"^([0-9]{1,11}ms|[0-9]{1,8}(\.[0-9]{1,3})?s?|[0-9]{1,6}m|[0-9]{1,4}h|[0-9]{1,3}d)$"
)
# A gate's window, 1 s to 1 h (core.defaults MIN/MAX_GATE_WINDOW_MS), in the same spellings.
WINDOW_PATTERN = (
    r"^(0*([1-9][0-9]{3}|[1-9][0-9]{4,5}|[1-2][0-9]{6}|3[0-5][0-9]{5}|3600000)ms"
    r"|0*([1-9][0-9]{0,2}|[1-2][0-9]{3}|3[0-5][0-9]{2}|3600)s?"
    r"|0*([1-9]|[1-5][0-9]|60)m|0*1h)$"
)
_DURATION_WORDS = "'500ms', '90s', '15m', '36h', '3d', or a number of seconds"


def _duration(pattern: str, least: float, most: float, about: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "maxLength": 64, "pattern": pattern},
            {"type": "integer", "minimum": least, "maximum": most},
        ],
        "description": about,
    }


# A duration is a string ("90s", "15m", "36h", "3d") or a number of seconds. Its grammar lives in
# core.units; here it is only documented, so the service's message is the one a client sees.
Duration = Annotated[
    Any,
    WithJsonSchema(
        _duration(DURATION_PATTERN, 0, TEN_YEARS, f"{_DURATION_WORDS}; at most ten years")
    ),
]
Percent = Annotated[
    float,
    Field(
        ge=0,
        le=100,
        description="0 to 100 with at most two decimals; never rounded",
        json_schema_extra={"multipleOf": 0.01},
    ),
]
# A count in JSON: 306 or 306.0 (JSON Schema's integer); core.schema refuses 306.5.
Count = Annotated[
    int | float, WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_COUNT})
]
Reason = Annotated[
    str | None,
    Field(
        max_length=MAX_TEXT, description="Why; recorded in the audit log", json_schema_extra=_TEXT
    ),
]
FlagKey = Annotated[str, Field(pattern=KEY_PATTERN.pattern, max_length=128)]
UserId = Annotated[str, Field(min_length=1, max_length=MAX_LISTED_USER, json_schema_extra=_TEXT)]
UserIds = Annotated[list[UserId], Field(max_length=MAX_USERS)]


ATTRIBUTE_PATTERN = rf"^[A-Za-z_][A-Za-z0-9_.-]{{0,{MAX_ATTRIBUTE - 1}}}$"
# What core.rules.parse_semver reads, for the document (matching itself uses no regex).
_IDS = r"[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*"
SEMVER_PATTERN = rf"^[vV]?[0-9]{{1,18}}(\.[0-9]{{1,18}}){{0,2}}(-{_IDS})?(\+{_IDS})?$"
_LIMIT = 2**63  # numbers in rules: core.rules refuses larger ones


def _rule_schema() -> dict[str, Any]:
    """One rule per operator family (DESIGN §2.1), as core.rules.parse_rule checks it."""
    text = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_RULE_TEXT,
        "pattern": RULE_TEXT_PATTERN,
    }
    number = {"type": "number", "minimum": -_LIMIT, "maximum": _LIMIT}
    semver = {"type": "string", "maxLength": MAX_SEMVER, "pattern": SEMVER_PATTERN}
    scalar = {"anyOf": [text, number, {"type": "boolean"}]}

    def shape(ops: list[str], item: dict[str, Any], most: int, about: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": about,
            "properties": {
                "attribute": {
                    "type": "string",
                    "pattern": ATTRIBUTE_PATTERN,
                    "maxLength": MAX_ATTRIBUTE,
                    "description": "a context attribute; never the user id (use allow/deny)",
                },
                "op": {"type": "string", "enum": ops},
                "values": {"type": "array", "items": item, "minItems": 1, "maxItems": most},
                "serve": {"type": "string", "enum": ["on", "off"]},
            },
            "required": ["attribute", "op", "values", "serve"],
            "additionalProperties": False,
        }

    return {
        "oneOf": [
            shape(["in", "not_in"], scalar, MAX_RULE_VALUES, "the value is (not) one of these"),
            shape(
                ["starts_with", "ends_with", "contains"],
                text,
                MAX_RULE_VALUES,
                "a string value starting with, ending with or containing any of these; "
                "case-sensitive",
            ),
            shape(["lt", "lte", "gt", "gte"], number, 1, "a number value compared with one"),
            shape(
                ["semver_lt", "semver_gte"],
                semver,
                1,
                "a version value (MAJOR[.MINOR[.PATCH]][-prerelease], optional v) compared "
                "with one, as SemVer 2.0 orders them",
            ),
        ],
        "description": "first matching rule wins; a missing attribute never matches",
    }


class _Body(BaseModel):
    # strict: JSON true is not 1 and "5" is not 5, exactly as core.schema judges them.
    model_config = ConfigDict(extra="forbid", strict=True)


def _per_kind(default: Callable[[GateKind], str]) -> str:
    """'default: 100 (memory_mb: 1)': the usual default of the gate kinds, and the exceptions."""
    values = {name: default(kind) for name, kind in GATE_KINDS.items()}
    usual = Counter(values.values()).most_common(1)[0][0]
    others = ", ".join(f"{name}: {value}" for name, value in values.items() if value != usual)
    return f"default: {usual}" + (f" ({others})" if others else "")


def _metric_pattern(kinds: Iterable[GateKind] | None = None) -> str:
    """Every metric the registry reads (or ``kinds``): the names, and each family's prefix +
    member pattern."""
    names = []
    for kind in GATE_KINDS.values() if kinds is None else kinds:
        if kind.name.endswith(":"):
            member = kind.member.pattern.strip("^$") if kind.member else ".+"
            names.append(re.escape(kind.name) + f"(?:{member})")
        else:
            names.append(re.escape(kind.name))
    return f"^(?:{'|'.join(names)})$"


def _described(kind: GateKind) -> str:
    name = f"{kind.name}NAME" if kind.name.endswith(":") else kind.name
    return f"{name}: {kind.description}"


# The metric names come from the registry of gate kinds, so a new kind needs no edit here; a
# family (``value:NAME``) adds its prefix and member pattern.
GateMetric = Annotated[
    str,
    Field(
        pattern=_metric_pattern(),
        description="; ".join(_described(k) for k in GATE_KINDS.values()),
    ),
]
_SIGNED = [f"{k.name}NAME" for k in GATE_KINDS.values() if k.signed]


class StageIn(_Body):
    percent: Annotated[Percent, Field(json_schema_extra={"exclusiveMinimum": 0})]
    bake: Duration = 0
    min_samples: Count = 0


class GateIn(_Body):
    metric: GateMetric
    # Above 0 for every kind but the signed ones (business values), whose order is checked
    # against ``direction`` by core.gate_schema; the message then names the gate.
    warn: float = Field(description=f"above 0, except for {', '.join(_SIGNED)}")
    critical: float = Field(description="at or past warn, in the direction that is worse")
    # Absent means the default; null is refused by core.gate_schema, so the document names
    # only the values it takes.
    direction: Annotated[
        Literal[DIRECTIONS] | None,  # type: ignore[valid-type]
        WithJsonSchema(
            {
                "type": "string",
                "enum": list(DIRECTIONS),
                "description": f"{', '.join(_SIGNED)} only; default {HIGHER_IS_BETTER}",
            }
        ),
    ] = None
    relative: Annotated[
        bool | None,
        WithJsonSchema(
            {
                "type": "boolean",
                "description": f"{', '.join(_SIGNED)} only: (t - c) / |c| (default) or t - c",
            }
        ),
    ] = None
    # Absent means the kind's own default (core.gates.GATE_KINDS); null is refused there.
    min_samples: Annotated[
        int | float | None,
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_COUNT,
                "description": _per_kind(lambda kind: str(kind.min_samples)),
            }
        ),
    ] = None
    window: Annotated[
        Any,
        WithJsonSchema(
            _duration(
                WINDOW_PATTERN,
                1,
                3600,
                f"{_DURATION_WORDS}, 1s to 1h; "
                + _per_kind(lambda kind: format_duration(kind.window_ms)),
            )
        ),
    ] = None


def _gate_schema() -> dict[str, Any]:
    """GateIn once per cap on the thresholds (an error rate's are at most 1, a fraction) and
    per sign: a signed kind (business values) takes any finite thresholds and its own fields
    (``direction``, ``relative``); the others' are above 0 and take neither. A family
    (``value:NAME``) is named by its prefix and member pattern."""
    base = GateIn.model_json_schema()
    groups: dict[tuple[float | None, bool], list[GateKind]] = {}
    for kind in GATE_KINDS.values():
        groups.setdefault((kind.max_critical, kind.signed), []).append(kind)
    shapes = []
    for (cap, signed), kinds in groups.items():
        shape = {**base, "properties": {**base["properties"]}}
        plain = [k.name for k in kinds if not k.name.endswith(":")]
        families = [k for k in kinds if k.name.endswith(":")]
        metric = {k: v for k, v in base["properties"]["metric"].items() if k != "pattern"}
        if families:
            metric["pattern"] = _metric_pattern(kinds)
        else:
            metric["enum"] = plain
        shape["properties"]["metric"] = metric
        for field in ("warn", "critical"):
            bounds: dict[str, Any] = {}
            if cap is not None:  # warn is at most critical, so the cap bounds both
                bounds["maximum"] = cap
            if not signed:
                bounds["exclusiveMinimum"] = 0
            shape["properties"][field] = {**base["properties"][field], **bounds}
        if not signed:
            for field in ("direction", "relative"):
                shape["properties"].pop(field, None)
        shapes.append(shape)
    return {
        "oneOf": shapes,
        "description": "each metric at most once per flag; "
        f"at most {MAX_GATES} gates, one per kind but for the families",
    }


Gate = Annotated[GateIn, WithJsonSchema(_gate_schema())]


class RuleIn(_Body):
    """The shape of a rule; core.rules checks each operator's values exactly."""

    attribute: str = Field(pattern=ATTRIBUTE_PATTERN, max_length=MAX_ATTRIBUTE)
    op: Literal[
        "in",
        "not_in",
        "starts_with",
        "ends_with",
        "contains",
        "lt",
        "lte",
        "gt",
        "gte",
        "semver_lt",
        "semver_gte",
    ]
    values: list[Any] = Field(min_length=1, max_length=MAX_RULE_VALUES)  # each: core.rules
    serve: Literal["on", "off"]


Rules = Annotated[
    list[Annotated[RuleIn, WithJsonSchema(_rule_schema())]], Field(max_length=MAX_RULES)
]


class FlagConfig(_Body):
    """The operator-settable fields (DESIGN §6); never state, percent, stage or salt."""

    description: str = Field("", max_length=MAX_TEXT, json_schema_extra=_TEXT)
    auto_advance: bool = False
    stages: list[StageIn] = Field(
        default_factory=list,
        max_length=MAX_STAGES,
        description="each percent above the one before",
    )
    gates: list[Gate] = Field(default_factory=list, max_length=MAX_GATES)
    allow: UserIds = Field(default_factory=list)
    deny: UserIds = Field(default_factory=list)
    rules: Rules = Field(default_factory=list)
    srm: Literal[SRM_MODES] = Field(  # type: ignore[valid-type]
        SRM_HOLD,
        description="on a sample ratio mismatch: hold (never advance), kill, or warn (report)",
    )


class CreateFlag(FlagConfig):
    key: FlagKey
    salt: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SALT,
        description="default: the key",
        json_schema_extra=_TEXT,
    )
    reason: Reason = None


class PatchFlag(FlagConfig):
    reason: Reason = None


class WriteBody(_Body):
    """Any write without other fields (rollback, pause, resume, revive, delete, snapshot)."""

    reason: Reason = None


class AdvanceBody(WriteBody):
    force: bool = Field(False, description="advance even while a gate reads fail")


class SetPercentBody(WriteBody):
    percent: Percent


class KillBody(_Body):
    reason: str = Field(min_length=1, max_length=MAX_TEXT, json_schema_extra=_TEXT)


class RestoreBody(WriteBody):
    only: FlagKey | None = Field(None, description="restore just this flag")


class IfMatchHeader(BaseModel):
    if_match: Annotated[
        str | None,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": '^(\\*|"[0-9]{1,18}"|[0-9]{1,18})$',
                "description": 'the flag\'s ETag ("7"); a stale one answers 412',
            }
        ),
    ] = Field(None, alias="If-Match")


class EvaluateQuery(BaseModel):
    user: str = Field(min_length=1, max_length=MAX_USER, json_schema_extra=_TEXT)


class AuditQuery(BaseModel):
    flag: FlagKey | None = None
    limit: int = Field(50, ge=1, le=10_000)


# -- answers -------------------------------------------------------------------------------


class StageOut(BaseModel):
    percent: float
    bake: float = Field(description="seconds")
    min_samples: int


class GateOut(BaseModel):
    metric: str
    warn: float
    critical: float
    min_samples: int
    window: float = Field(description="seconds")
    direction: str | None = Field(None, description="business values only")
    relative: bool | None = Field(None, description="business values only")


class KillOut(BaseModel):
    reason: str
    by: str
    at: str | None
    state_before: str
    stage_before: int | None
    percent_before: float


class StatusOut(BaseModel):
    decision: str
    why: str
    at: str | None


class RuleOut(BaseModel):
    attribute: str
    op: str
    values: list[str | int | float | bool]
    serve: Literal["on", "off"]


class FlagOut(BaseModel):
    """A flag with the field names of DESIGN §2 (``core.schema.flag_to_dict``)."""

    key: str
    description: str
    state: Literal["draft", "rolling", "paused", "complete", "killed"]
    percent: float
    stages: list[StageOut]
    auto_advance: bool
    srm: str
    stage: int | None
    stage_started_at: str | None
    gates: list[GateOut]
    allow: list[str]
    deny: list[str]
    rules: list[RuleOut]
    salt: str
    kill: KillOut | None
    status: StatusOut | None
    version: int
    created_at: str | None
    updated_at: str | None
    completed_at: str | None
    baseline_p95_ms: float | None
    baseline_values: dict[str, dict[str, float]] = Field(
        description="control's count n, mean and M2 of each business value when the last "
        "stage began"
    )


class FlagList(BaseModel):
    flags: list[FlagOut]
    problems: list[str] = Field(description="stored flags that cannot be read, by key")


class KillAllOut(BaseModel):
    killed: list[FlagOut]


class WhoamiOut(BaseModel):
    name: str = Field(description="the token's name: the audit actor of its writes")
    role: Literal["admin", "read"] = Field(description="admin writes and reads; read only reads")


MoveName = Literal["advance", "rollback", "pause", "resume", "kill", "revive", "set"]


class MovesOut(BaseModel):
    key: str
    version: int
    moves: dict[MoveName, str | None] = Field(
        description="null when the move is open to the flag's state, else why not (gates are "
        "not read: a failing gate refuses an advance when it is asked for)"
    )


class TrendSeries(BaseModel):
    samples: list[int] = Field(description="treatment samples per step")
    error_rate: list[float | None] = Field(description="treatment error rate per step")


class TrendsOut(BaseModel):
    step: int = Field(description="seconds per step")
    at: list[str] = Field(description="start of each step, shared by every flag")
    flags: dict[str, TrendSeries] = Field(
        description="by flag key; steps before its current stage began are empty"
    )


class EvaluationOut(BaseModel):
    enabled: bool
    reason: Literal[
        "killed", "override", "unknown", "denied", "allowed", "rule", "in_cohort", "out_of_cohort"
    ]
    bucket: int | None = Field(description="0-9999; null for an unknown flag")


class AuditEntryOut(BaseModel):
    id: str
    flag: str
    actor: str
    action: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: str
    version: int
    seq: int = Field(0, description="global order of audit entries across flags")


class AuditOut(BaseModel):
    entries: list[AuditEntryOut] = Field(description="newest first")


class SnapshotRef(BaseModel):
    id: str
    taken_at: str | None


class SnapshotList(BaseModel):
    snapshots: list[SnapshotRef] = Field(description="newest first")


class SnapshotDocument(BaseModel):
    format: str
    schema_: int = Field(alias="schema")
    taken_at: str | None
    flags: list[FlagOut]
    summaries: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="flag key -> summaries of its ended stages"
    )
    triggers: list[dict[str, Any]] = Field(
        default_factory=list, description="triggers with their secret hashes (never a secret)"
    )
    notify: list[dict[str, Any]] = Field(
        default_factory=list, description="notification destinations (variable names, no URL)"
    )


class SnapshotCreated(BaseModel):
    id: str
    snapshot: SnapshotDocument


class RestoreOut(BaseModel):
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]


class ArmOut(BaseModel):
    samples: int
    errors: int
    error_rate: float | None
    errors_by_type: dict[str, int]
    exposures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    values: dict[str, dict[str, float | None]] = Field(
        description="business values by name: count n, mean, standard deviation sd"
    )


class ReadingOut(BaseModel):
    verdict: Literal["pass", "warn", "fail", "insufficient"]
    value: float | None = Field(description="observed: a rate, a ratio or megabytes")
    bound: float | None = Field(description="the confidence bound the verdict judged")
    samples: int
    control_value: float | None
    control_samples: int
    why: str


class ScopedReadings(BaseModel):
    window: ReadingOut = Field(description="over the gate's sliding window")
    stage: ReadingOut = Field(description="over the whole stage (since stage_started_at)")


class GateReadingOut(GateOut):
    verdict: Literal["pass", "warn", "fail", "insufficient"]
    why: str
    readings: ScopedReadings


class SrmOut(BaseModel):
    """The stage's arms against the split the percent implies (sequential test, DESIGN §4.2)."""

    verdict: Literal["pass", "mismatch", "insufficient"]
    expected: float | None = Field(description="the treatment's expected share")
    observed: dict[Literal["exposures", "samples"], float | None]
    statistic: dict[Literal["exposures", "samples"], float] = Field(
        description="evidence in nats; a mismatch at or past log(1/0.0005) = 7.6"
    )


class GatesOut(BaseModel):
    key: str
    state: str
    stage: int | None
    evidence_since: str | None
    read_at: str | None
    arms: dict[Literal["treatment", "control"], ArmOut] = Field(description="whole stage")
    memory_mb: float | None = Field(description="highest growth of a treatment process")
    baseline_p95_ms: float | None
    baseline_values: dict[str, dict[str, float]]
    gates: list[GateReadingOut]
    srm: SrmOut
    status: StatusOut | None = Field(description="the controller's last decision")


class HealthOut(BaseModel):
    status: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="the input field at fault, when one is")


class ErrorBody(BaseModel):
    error: ErrorDetail
