"""Pydantic models of the API's bodies and answers: the source of the OpenAPI document.

Request models check the shape of a body (types, required and unknown fields) so that a client
gets a 422 naming the field before anything else runs. The values themselves are checked again,
exactly, by ``core.schema`` inside the services (percent decimals, increasing stages, durations):
views pass the raw JSON on, never a model's coerced copy, so no float is ever rounded on the way.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from rollout.core.defaults import MAX_TEXT, MAX_USER
from rollout.core.gate_schema import MAX_GATES
from rollout.core.gates import GATE_KINDS, GateKind
from rollout.core.model import DIRECTIONS, HIGHER_IS_BETTER, KEY_PATTERN, SRM_HOLD, SRM_MODES
from rollout.core.schema import MAX_STAGES, MAX_USERS
from rollout.core.units import format_duration

# A duration is a string ("90s", "15m", "36h", "3d") or a number of seconds. Its grammar lives in
# core.units; here it is only documented, so the service's message is the one a client sees.
_DURATION = {"anyOf": [{"type": "string", "maxLength": 64}, {"type": "number", "minimum": 0}]}
_DURATION_WORDS = "'500ms', '90s', '15m', '36h', '3d', or a number of seconds"
Duration = Annotated[Any, WithJsonSchema({**_DURATION, "description": _DURATION_WORDS})]
Percent = Annotated[
    float,
    Field(ge=0, le=100, description="0 to 100 with at most two decimals; never rounded"),
]
Reason = Annotated[
    str | None, Field(max_length=MAX_TEXT, description="Why; recorded in the audit log")
]
FlagKey = Annotated[str, Field(pattern=KEY_PATTERN.pattern, max_length=128)]
UserIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=MAX_USERS)
]


class _Body(BaseModel):
    # strict: JSON true is not 1 and "5" is not 5, exactly as core.schema judges them.
    model_config = ConfigDict(extra="forbid", strict=True)


def _per_kind(default: Callable[[GateKind], str]) -> str:
    """'default: 100 (memory_mb: 1)': the usual default of the gate kinds, and the exceptions."""
    values = {name: default(kind) for name, kind in GATE_KINDS.items()}
    usual = Counter(values.values()).most_common(1)[0][0]
    others = ", ".join(f"{name}: {value}" for name, value in values.items() if value != usual)
    return f"default: {usual}" + (f" ({others})" if others else "")


def _metric_pattern() -> str:
    """Every metric the registry reads: the names, and each family's prefix + member pattern."""
    names = []
    for kind in GATE_KINDS.values():
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
    percent: Percent
    bake: Duration = 0
    min_samples: int = Field(0, ge=0)


class GateIn(_Body):
    metric: GateMetric
    # Above 0 for every kind but the signed ones (business values), whose order is checked
    # against ``direction`` by core.gate_schema; the message then names the gate.
    warn: float = Field(description=f"above 0, except for {', '.join(_SIGNED)}")
    critical: float = Field(description="at or past warn, in the direction that is worse")
    direction: Literal[DIRECTIONS] | None = Field(  # type: ignore[valid-type]
        None, description=f"{', '.join(_SIGNED)} only; default {HIGHER_IS_BETTER}"
    )
    relative: bool | None = Field(
        None, description=f"{', '.join(_SIGNED)} only: (t - c) / |c| (default) or t - c"
    )
    # Absent means the kind's own default (core.gates.GATE_KINDS); null is refused there.
    min_samples: Annotated[
        int | None,
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 0,
                "description": _per_kind(lambda kind: str(kind.min_samples)),
            }
        ),
    ] = None
    window: Annotated[
        Any,
        WithJsonSchema(
            {
                **_DURATION,
                "description": f"{_DURATION_WORDS}; "
                + _per_kind(lambda kind: format_duration(kind.window_ms)),
            }
        ),
    ] = None


class FlagConfig(_Body):
    """The operator-settable fields (DESIGN §6); never state, percent, stage or salt."""

    description: str = Field("", max_length=MAX_TEXT)
    auto_advance: bool = False
    stages: list[StageIn] = Field(default_factory=list, max_length=MAX_STAGES)
    gates: list[GateIn] = Field(default_factory=list, max_length=MAX_GATES)
    allow: UserIds = Field(default_factory=list)
    deny: UserIds = Field(default_factory=list)
    srm: Literal[SRM_MODES] = Field(  # type: ignore[valid-type]
        SRM_HOLD,
        description="on a sample ratio mismatch: hold (never advance), kill, or warn (report)",
    )


class CreateFlag(FlagConfig):
    key: FlagKey
    salt: str | None = Field(None, min_length=1, max_length=256, description="default: the key")
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
    reason: str = Field(min_length=1, max_length=MAX_TEXT)


class RestoreBody(WriteBody):
    only: FlagKey | None = Field(None, description="restore just this flag")


class IfMatchHeader(BaseModel):
    if_match: Annotated[
        str | None,
        WithJsonSchema(
            {"type": "string", "description": 'the flag\'s ETag ("7"); a stale one answers 412'}
        ),
    ] = Field(None, alias="If-Match")


class EvaluateQuery(BaseModel):
    user: str = Field(min_length=1, max_length=MAX_USER)


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


class EvaluationOut(BaseModel):
    enabled: bool
    reason: str
    bucket: int | None


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
