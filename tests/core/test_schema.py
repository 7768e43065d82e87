from __future__ import annotations

from typing import Any

import pytest

from rollout.core.errors import ValidationError
from rollout.core.schema import flag_from_dict, parse_gates, validate_actor


def one_gate(**fields: Any) -> dict[str, Any]:
    return {"metric": "error_rate", "warn": 0.05, "critical": 0.1, **fields}


@pytest.mark.parametrize("window", ["3650d", "2h", "500ms"])
def test_gate_windows_are_bounded(window: str) -> None:
    with pytest.raises(ValidationError, match=r"gates\[0\].window: must be from 1s to 1h"):
        parse_gates([one_gate(window=window)])


def test_a_gate_the_plan_leaves_silent_gets_its_kinds_defaults() -> None:
    errors, memory = parse_gates([one_gate(), {"metric": "memory_mb", "warn": 75, "critical": 100}])
    assert (errors.min_samples, errors.window_ms) == (100, 60_000)
    assert (memory.min_samples, memory.window_ms) == (1, 60_000)
    (said,) = parse_gates([one_gate(min_samples=0, window="15s")])
    assert (said.min_samples, said.window_ms) == (0, 15_000)


@pytest.mark.parametrize(
    ("gates", "words"),
    [
        ([one_gate(metric="cpu")], "must be one of error_rate, latency_ratio, memory_mb"),
        ([one_gate(), one_gate()], "error_rate appears twice"),
        ([one_gate(critical=1.5, warn=0.5)], "an error rate is a fraction from 0 to 1"),
        ([{"metric": "latency_ratio", "warn": 1.2, "critical": 1.5, "direction": "up"}],
         "unknown field 'direction'"),
    ],
    ids=["unknown-kind", "twice", "error-rate-above-1", "unknown-field"],
)  # fmt: skip
def test_gates_are_refused_by_the_rules_of_their_kind(gates: list[Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        parse_gates(gates)


def test_a_latency_ratio_may_exceed_one() -> None:
    (gate,) = parse_gates([{"metric": "latency_ratio", "warn": 1.2, "critical": 1.5}])
    assert gate.critical == 1.5


@pytest.mark.parametrize(
    "flag",
    [
        {
            "key": "F",
            "state": "killed",
            "kill": {
                "reason": "r",
                "by": "b",
                "state_before": "killed",
                "stage_before": None,
                "percent_before": 0,
            },
        },
        {"key": "F", "state": "draft", "percent": 50},
    ],
    ids=["killed-from-killed", "draft-at-50"],
)
def test_a_stored_or_restored_flag_that_breaks_the_rules_is_refused(flag: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        flag_from_dict(flag)


@pytest.mark.parametrize("actor", ["", " ", "a\nb", "a\tb", "x" * 257, "bell\x07"])
def test_an_actor_is_one_printable_line_of_at_most_256_characters(actor: str) -> None:
    with pytest.raises(ValidationError, match=r"^--actor: "):
        validate_actor(actor, "--actor")
    assert validate_actor("x" * 256) == "x" * 256
