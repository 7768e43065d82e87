from __future__ import annotations

from typing import Any

import pytest

from rollout.core.defaults import MAX_LISTED_USER, MAX_SALT
from rollout.core.errors import ValidationError
from rollout.core.gate_schema import parse_gates
from rollout.core.schema import flag_from_dict, parse_users, validate_actor


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


def test_listed_user_ids_and_the_salt_have_their_one_limit() -> None:
    longest = "u" * MAX_LISTED_USER
    assert parse_users([longest], "allow") == (longest,)
    with pytest.raises(ValidationError, match=r"^deny\[1\]: "):
        parse_users(["ok", longest + "u"], "deny")
    salt = "s" * MAX_SALT
    assert flag_from_dict({"key": "F", "state": "draft", "salt": salt}).salt == salt
    with pytest.raises(ValidationError, match=r"^salt: "):
        flag_from_dict({"key": "F", "state": "draft", "salt": salt + "s"})


def value_gate(name: str = "improvement_delta", **fields: Any) -> dict[str, Any]:
    return {"metric": f"value:{name}", "warn": -0.02, "critical": -0.05, **fields}


def test_a_value_gate_takes_direction_and_relative_and_round_trips() -> None:
    from rollout.core.gate_schema import gate_to_dict

    (gate,) = parse_gates([value_gate(relative=False, window="30s")])
    assert (gate.direction, gate.relative, gate.min_samples, gate.window_ms) == (
        "higher_is_better",
        False,
        200,
        30_000,
    )
    assert parse_gates([gate_to_dict(gate)]) == (gate,)
    (cost,) = parse_gates(
        [value_gate("cost", warn=0.02, critical=0.05, direction="lower_is_better")]
    )
    assert cost.direction == "lower_is_better" and cost.relative
    # Other kinds keep their output unchanged.
    assert "direction" not in gate_to_dict(parse_gates([one_gate()])[0])


@pytest.mark.parametrize(
    ("gates", "field", "words"),
    [
        ([value_gate(warn=-0.05, critical=-0.02)], "gates[0].critical",
         "value:improvement_delta: with higher_is_better, critical (-0.02) must be at or below"),
        ([value_gate(direction="lower_is_better")], "gates[0].critical",
         "value:improvement_delta: with lower_is_better, critical (-0.05) must be at or above"),
        ([value_gate(direction="up")], "gates[0].direction", "higher_is_better, lower_is_better"),
        ([value_gate(relative="yes")], "gates[0].relative", "true or false"),
        ([value_gate("Bad")], "gates[0].metric", "value:NAME"),
        ([value_gate(), value_gate()], "gates[1].metric", "appears twice"),
        ([value_gate(f"v{i}") for i in range(21)], "gates[20].metric", "at most 20 value: gates"),
        ([one_gate(direction="higher_is_better")], "gates[0]", "unknown field 'direction'"),
    ],
    ids=["higher-wrong-order", "lower-wrong-order", "bad-direction", "bad-relative", "bad-name",
         "twice", "21-value-gates", "direction-on-error-rate"],
)  # fmt: skip
def test_value_gates_are_refused_naming_the_gate(gates: list[Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_gates(gates)
    assert caught.value.field == field and words in str(caught.value)


def test_twenty_value_gates_beside_the_others_are_accepted() -> None:
    gates = [value_gate(f"v{i}") for i in range(20)]
    gates += [one_gate(), {"metric": "memory_mb", "warn": 75, "critical": 100}]
    assert len(parse_gates(gates)) == 22


def test_baseline_values_round_trip_and_are_checked() -> None:
    from rollout.core.bounds import Moments
    from rollout.core.model import Flag
    from rollout.core.schema import flag_to_dict

    kept = {"improvement_delta": Moments(300, 0.12, 3.0)}
    flag = Flag(key="F", baseline_values=kept)
    assert flag_to_dict(flag)["baseline_values"] == {
        "improvement_delta": {"n": 300, "mean": 0.12, "m2": 3.0}
    }
    assert flag_from_dict(flag_to_dict(flag)).baseline_values == kept
    for bad, words in (
        ({"Bad": {"n": 2, "mean": 1.0, "m2": 0.0}}, "not a business value name"),
        ({"x": 1.0}, "must be an object"),
        ({"x": {"n": 2, "mean": 1.0, "m2": -1.0}}, "must not be negative"),
        ({"x": {"n": 2, "mean": float("nan"), "m2": 0.0}}, "finite"),
    ):
        with pytest.raises(ValidationError, match=words):
            flag_from_dict({**flag_to_dict(flag), "baseline_values": bad})
