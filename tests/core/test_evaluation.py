from __future__ import annotations

import pytest

from rollout.core.bucketing import bucket
from rollout.core.evaluation import Reason, evaluate
from rollout.core.model import Flag, KillRecord, State

USER = "user-7"
B = bucket("F", USER)
LIVE = Flag(key="F", salt="F", state=State.ROLLING, percent_bp=5000)
KILLED = LIVE.with_changes(
    state=State.KILLED, kill=KillRecord("bad", "ops", 0, State.ROLLING, None, 5000)
)


@pytest.mark.parametrize(
    ("flag", "override", "default", "enabled", "reason"),
    [
        (KILLED.with_changes(allow=(USER,)), True, True, False, Reason.KILLED),
        (LIVE.with_changes(percent_bp=0), True, False, True, Reason.OVERRIDE),
        (LIVE.with_changes(percent_bp=10_000), False, False, False, Reason.OVERRIDE),
        (None, None, True, True, Reason.UNKNOWN),
        (None, None, False, False, Reason.UNKNOWN),
        (None, True, False, True, Reason.OVERRIDE),
        (
            LIVE.with_changes(deny=(USER,), allow=(USER,), percent_bp=10_000),
            None,
            True,
            False,
            Reason.DENIED,
        ),
        (LIVE.with_changes(allow=(USER,), percent_bp=0), None, False, True, Reason.ALLOWED),
        (LIVE.with_changes(percent_bp=B + 1), None, False, True, Reason.IN_COHORT),
        (LIVE.with_changes(percent_bp=B), None, True, False, Reason.OUT_OF_COHORT),
        (
            LIVE.with_changes(state=State.DRAFT, percent_bp=0),
            None,
            True,
            False,
            Reason.OUT_OF_COHORT,
        ),
    ],
    ids=[
        "kill-beats-override-and-allow",
        "override-true",
        "override-false",
        "unknown-default-on",
        "unknown-default-off",
        "override-on-unknown",
        "deny-beats-allow",
        "allow",
        "bucket-below-percent",
        "bucket-at-percent-is-out",
        "draft-is-off",
    ],
)
def test_evaluation_order(
    flag: Flag | None, override: bool | None, default: bool, enabled: bool, reason: Reason
) -> None:
    result = evaluate(flag, USER, override=override, default=default)
    assert (result.enabled, result.reason) == (enabled, reason)


def test_bucket_is_reported_for_known_flags_only() -> None:
    assert evaluate(LIVE, USER).bucket == B
    assert evaluate(None, USER).bucket is None
    assert evaluate(LIVE, USER).to_dict() == {
        "enabled": B < 5000,
        "reason": str(evaluate(LIVE, USER).reason),
        "bucket": B,
    }
