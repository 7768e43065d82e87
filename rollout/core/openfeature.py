"""OpenFeature's words for our answers (DESIGN §6), shared by the provider and OFREP. Pure.

Both adapters evaluate with ``core.evaluation`` (the SDK's evaluation, or the same function over
the API worker's synced flags) and translate the ``Evaluation`` here: no rule is added on the
way. The one judgement made here is the issue's: an evaluation without a targeting key that
reached the bucket step, on a percent strictly between 0 and 100, cannot be answered, because
the bucket needs a user. Such a call is evaluated with ``PLACEHOLDER_USER``, and this module
tells from the reason and the percent whether the answer stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollout.core.evaluation import Evaluation, Reason
from rollout.core.model import Flag
from rollout.core.units import render_percent

# Evaluated in place of a missing targeting key. No allow or deny entry is empty (core.schema
# refuses one), so it only ever reaches kill, override, rules and the bucket.
PLACEHOLDER_USER = ""

# OpenFeature reasons (openfeature.flag_evaluation.Reason values; OFREP uses the same words).
DISABLED = "DISABLED"
STATIC = "STATIC"
TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"

# OpenFeature error codes (openfeature.exception.ErrorCode values).
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"

OPENFEATURE_REASON: dict[Reason, str] = {
    Reason.KILLED: DISABLED,
    Reason.OVERRIDE: STATIC,
    Reason.DENIED: TARGETING_MATCH,
    Reason.ALLOWED: TARGETING_MATCH,
    Reason.RULE: TARGETING_MATCH,
    Reason.IN_COHORT: SPLIT,
    Reason.OUT_OF_COHORT: SPLIT,
}
# Reason.UNKNOWN is no answer at all: the flag does not exist (FLAG_NOT_FOUND).

_BUCKET = frozenset({Reason.IN_COHORT, Reason.OUT_OF_COHORT})
_FULL_BP = 10_000

Metadata = dict[str, str | int | float]


@dataclass(frozen=True, slots=True)
class Answer:
    """One boolean resolution: a value with variant and reason, or an error code.

    With ``error`` set, the caller answers its own default; ``value`` is then meaningless.
    """

    value: bool
    variant: str
    reason: str
    metadata: Metadata
    error: str | None = None
    message: str = ""


def variant(enabled: bool) -> str:
    return "on" if enabled else "off"


def metadata(flag: Flag | None) -> Metadata:
    """``flag_metadata``: state, percent, stage, version; primitive values only (no null)."""
    if flag is None:
        return {}
    found: Metadata = {
        "state": str(flag.state),
        "percent": render_percent(flag.percent_bp),
        "version": flag.version,
    }
    if flag.stage is not None:
        found["stage"] = flag.stage
    return found


def needs_targeting_key(evaluation: Evaluation, flag: Flag | None) -> bool:
    """Did this answer come from the bucket on a percent that splits users (0 < p < 100)?"""
    return evaluation.reason in _BUCKET and flag is not None and 0 < flag.percent_bp < _FULL_BP


def answer(
    key: str, evaluation: Evaluation, flag: Flag | None, *, has_targeting_key: bool
) -> Answer:
    """The OpenFeature answer for ``evaluation`` of ``flag`` (None: not known here)."""
    reason = OPENFEATURE_REASON.get(evaluation.reason)
    if reason is None:
        return Answer(
            False, "", "", {}, error=FLAG_NOT_FOUND, message=f"flag {key!r} does not exist"
        )
    if not has_targeting_key and needs_targeting_key(evaluation, flag):
        return Answer(
            False,
            "",
            "",
            metadata(flag),
            error=TARGETING_KEY_MISSING,
            message=f"flag {key!r} splits users by percent: give a targeting key",
        )
    return Answer(evaluation.enabled, variant(evaluation.enabled), reason, metadata(flag))
