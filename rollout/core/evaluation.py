"""Who gets the flag, and why (DESIGN §2): a pure function over one flag value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from rollout.core.bucketing import bucket
from rollout.core.model import Flag, State
from rollout.core.rules import match


class Reason(StrEnum):
    KILLED = "killed"
    OVERRIDE = "override"
    UNKNOWN = "unknown"
    DENIED = "denied"
    ALLOWED = "allowed"
    RULE = "rule"
    IN_COHORT = "in_cohort"
    OUT_OF_COHORT = "out_of_cohort"


# Only answers that came from the bucket are random assignment, so only they join an arm: not
# allow/deny, and not a rule (who has an @example.com email is chosen, not drawn).
ARM_OF_REASON: dict[Reason, str] = {Reason.IN_COHORT: "treatment", Reason.OUT_OF_COHORT: "control"}


@dataclass(frozen=True, slots=True)
class Evaluation:
    enabled: bool
    reason: Reason
    bucket: int | None

    def to_dict(self) -> dict[str, object]:
        return {"enabled": self.enabled, "reason": str(self.reason), "bucket": self.bucket}


def evaluate(
    flag: Flag | None,
    user: str,
    *,
    override: bool | None = None,
    default: bool = False,
    attributes: Mapping[str, object] | None = None,
) -> Evaluation:
    """First match wins: killed, override, unknown, deny, allow, the first matching rule, bucket.

    ``bucket`` is reported whenever the flag is known, even when another rule decided, so that
    operators can see where a user would land.
    """
    b = bucket(flag.salt, user) if flag is not None else None
    if flag is not None and flag.state is State.KILLED:
        return Evaluation(False, Reason.KILLED, b)
    if override is not None:
        return Evaluation(override, Reason.OVERRIDE, b)
    if flag is None:
        return Evaluation(default, Reason.UNKNOWN, None)
    if user in flag.deny:
        return Evaluation(False, Reason.DENIED, b)
    if user in flag.allow:
        return Evaluation(True, Reason.ALLOWED, b)
    if flag.rules and attributes:
        served = match(flag.rules, attributes)
        if served is not None:
            return Evaluation(served, Reason.RULE, b)
    assert b is not None
    if b < flag.percent_bp:
        return Evaluation(True, Reason.IN_COHORT, b)
    return Evaluation(False, Reason.OUT_OF_COHORT, b)
