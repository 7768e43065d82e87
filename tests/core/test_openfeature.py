"""core.openfeature: OpenFeature's words for every evaluation, and when a key is needed."""

from __future__ import annotations

import pytest

from rollout.core.evaluation import Evaluation, Reason, evaluate
from rollout.core.model import Flag, State
from rollout.core.openfeature import (
    FLAG_NOT_FOUND,
    OPENFEATURE_REASON,
    PLACEHOLDER_USER,
    TARGETING_KEY_MISSING,
    answer,
    metadata,
)

LIVE = Flag(key="F", salt="F", state=State.ROLLING, percent_bp=5000, stage=1, version=7)


def test_every_reason_but_unknown_has_an_openfeature_reason() -> None:
    assert set(OPENFEATURE_REASON) == set(Reason) - {Reason.UNKNOWN}
    assert set(OPENFEATURE_REASON.values()) <= {"DISABLED", "STATIC", "TARGETING_MATCH", "SPLIT"}


def test_unknown_is_flag_not_found() -> None:
    found = answer("X", evaluate(None, "u", default=True), None, has_targeting_key=True)
    assert found.error == FLAG_NOT_FOUND and found.metadata == {}


@pytest.mark.parametrize(
    ("percent_bp", "missing"), [(0, False), (1, True), (5000, True), (9999, True), (10_000, False)]
)
def test_a_key_is_missing_only_on_a_split_percent(percent_bp: int, missing: bool) -> None:
    flag = LIVE.with_changes(percent_bp=percent_bp)
    evaluation = evaluate(flag, PLACEHOLDER_USER)
    found = answer("F", evaluation, flag, has_targeting_key=False)
    assert (found.error == TARGETING_KEY_MISSING) is missing
    if not missing:
        assert (found.value, found.reason, found.variant) == (
            percent_bp > 0,
            "SPLIT",
            "on" if percent_bp else "off",
        )
    # With a key, the same evaluation is an answer.
    assert answer("F", evaluation, flag, has_targeting_key=True).error is None


def test_answers_that_need_no_bucket_need_no_key() -> None:
    for flag, override, reason in (
        (LIVE.with_changes(state=State.KILLED, percent_bp=0), None, "DISABLED"),
        (LIVE, True, "STATIC"),
    ):
        evaluation = evaluate(flag, PLACEHOLDER_USER, override=override)
        assert answer("F", evaluation, flag, has_targeting_key=False).reason == reason


def test_metadata_is_primitive_and_omits_a_null_stage() -> None:
    assert metadata(LIVE) == {"state": "rolling", "percent": 50, "stage": 1, "version": 7}
    assert metadata(LIVE.with_changes(percent_bp=1250, stage=None)) == {
        "state": "rolling",
        "percent": 12.5,
        "version": 7,
    }
    assert metadata(None) == {}
    assert answer("F", Evaluation(True, Reason.ALLOWED, 3), LIVE, has_targeting_key=True).metadata
