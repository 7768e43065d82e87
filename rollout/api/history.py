"""The history behind the charts and the rollout report (read token suffices)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from flask import Response
from pydantic import BaseModel, Field

from rollout.api.auth import protected_blueprint
from rollout.api.http import query_args, services
from rollout.api.spec import documented, responses

bp = protected_blueprint("history", __name__)
TAGS = ["history"]

INSTANT = "ISO 8601 (2027-01-15T08:00:00Z) or epoch seconds"
# The document names the canonical spellings (services.history reads more: any ISO 8601 form,
# offsets, days past the 28th), so a generated client sends what is always accepted.
_INSTANT: dict[str, Any] = {
    "pattern": r"^([0-9]{1,10}(\.[0-9]{1,3})?|(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-"
    r"(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,3})?Z)$"
}
# Whole multiples of 10 seconds, at most ten years (core.history.check_step, core.units).
_STEP: dict[str, Any] = {
    "pattern": r"^([1-9][0-9]{0,6}0s?|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d"
    r"|[1-9][0-9]{0,6}0000ms)$"
}


class MetricsQuery(BaseModel):
    since: str | None = Field(
        None,
        max_length=64,
        description=f"{INSTANT}; default: the current stage's start; not after until",
        json_schema_extra=_INSTANT,
    )
    until: str | None = Field(
        None, max_length=64, description=f"{INSTANT}; default: now", json_schema_extra=_INSTANT
    )
    step: str | None = Field(
        None,
        max_length=32,
        json_schema_extra=_STEP,
        description="a multiple of 10s ('10s', '5m', '1h' or seconds); default: the finest "
        "that keeps the answer to 2,000 steps. Not a multiple of 5m: only within "
        "ROLLOUT_METRICS_RETENTION",
    )


class ValueMeanOut(BaseModel):
    n: int
    mean: float | None


class PointOut(BaseModel):
    at: str
    samples: int
    errors: int
    error_rate: float | None
    errors_by_type: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    exposures: int
    values: dict[str, ValueMeanOut] = Field(
        description="each business value's count and mean in the step, merged across processes"
    )


class StageBoundaryOut(BaseModel):
    percent: float
    started_at: str | None
    ended_at: str | None = Field(description="null while the stage lasts")
    ended_by: str | None = Field(
        description="advance, complete, rollback, set, kill, revive, restore or delete"
    )


class MemoryPointOut(BaseModel):
    at: str
    max: float = Field(description="highest growth (MB) a treatment process reported")


class MetricsOut(BaseModel):
    flag: str
    step: int = Field(description="seconds")
    since: str | None
    until: str | None
    stages: list[StageBoundaryOut]
    series: dict[Literal["treatment", "control"], list[PointOut]]
    memory_mb: list[MemoryPointOut]


@bp.get("/flags/<key>/metrics")
@documented(tags=TAGS, query=MetricsQuery, resp=responses(MetricsOut))
def metrics(key: str) -> Response:
    """Per time step and arm: samples, errors, latency percentiles, exposures; memory; stages."""
    args: dict[str, Any] = query_args(MetricsQuery)
    body = services().history.metrics(key, **args)
    # Thousands of small objects: orjson renders them in a fraction of json's time.
    return Response(orjson.dumps(body), mimetype="application/json")


class TimelineEntryOut(BaseModel):
    at: str
    actor: str
    action: str
    reason: str | None
    version: int
    state: str | None = Field(description="the state the entry left the flag in")
    percent: float | None


class ReportOut(BaseModel):
    flag: str
    generated_at: str | None
    created_at: str | None
    plan: dict[str, Any] = Field(description="description, state, percent, stage, stages, gates")
    timeline: list[TimelineEntryOut] = Field(description="the audit, oldest first")
    summaries: list[dict[str, Any]] = Field(description="each ended stage, oldest first")
    current: dict[str, Any] | None = Field(description="the running stage, read now")
    totals: dict[str, Any] = Field(description="loads = exposures + track samples, per arm")
    trends: dict[str, list[dict[str, Any]]] = Field(description="per arm, stage by stage")
    decisions: list[dict[str, Any]] = Field(description="each Go/No-Go with its gate readings")


@bp.get("/flags/<key>/report")
@documented(tags=TAGS, resp=responses(ReportOut))
def report(key: str) -> Response:
    """The rollout report: plan, timeline, stage summaries, totals and every Go/No-Go."""
    return Response(orjson.dumps(services().reports.report(key)), mimetype="application/json")
