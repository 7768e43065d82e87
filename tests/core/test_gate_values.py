"""The ``value:NAME`` gate (DESIGN §4.1), table-driven: relative and absolute changes, both
directions, the baseline at 100%, and every way a reading must stay ``insufficient``."""

from __future__ import annotations

import pytest

from rollout.core.bounds import Moments
from rollout.core.evidence import Arms, ArmStats, Evidence
from rollout.core.gates import Scope, Verdict, gate_kind, read_gate, read_gates
from rollout.core.model import Flag, Gate

PASS, WARN, FAIL, INSUFFICIENT = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.INSUFFICIENT
NAME = "improvement_delta"
METRIC = f"value:{NAME}"
HIGHER = Gate(METRIC, warn=-0.02, critical=-0.05, min_samples=200)
LOWER = Gate("value:cost", warn=0.02, critical=0.05, min_samples=200, direction="lower_is_better")
ABSOLUTE = Gate(METRIC, warn=-0.01, critical=-0.03, min_samples=200, relative=False)


def arm(n: int, mean: float, sd: float, name: str = NAME) -> ArmStats:
    """n observations with this mean and standard deviation (M2 = (n - 1) sd^2)."""
    return ArmStats(values={name: Moments(n, mean, (n - 1) * sd * sd)})


# (id, gate, treatment, control, baseline, verdict, words)
CASES = [
    ("20pct-drop-fails", HIGHER, arm(3000, 0.8, 0.5), arm(27000, 1.0, 0.5), None, FAIL,
     "value:improvement_delta relative change -20%"),
    ("1pct-drop-passes", HIGHER, arm(3000, 0.99, 0.5), arm(27000, 1.0, 0.5), None, PASS,
     "> warn -2%"),
    ("3pct-drop-on-much-data-warns", HIGHER, arm(100_000, 0.97, 0.5), arm(900_000, 1.0, 0.5),
     None, WARN, "≤ warn -2%"),
    ("a-gain-passes", HIGHER, arm(3000, 1.2, 0.5), arm(27000, 1.0, 0.5), None, PASS, "+"
     if False else "> warn"),
    ("10pct-drop-on-few-is-not-yet-fail", HIGHER, arm(300, 0.9, 0.5), arm(2700, 1.0, 0.5),
     None, WARN, "≤ warn"),
    ("below-min-samples", HIGHER, arm(199, 0.1, 0.5), arm(27000, 1.0, 0.5), None,
     INSUFFICIENT, "199/200 observations"),
    ("never-recorded", HIGHER, ArmStats(samples=5000), arm(27000, 1.0, 0.5), None,
     INSUFFICIENT, "0/200 observations"),
    ("control-mean-near-zero-relative", HIGHER, arm(3000, 0.01, 0.5), arm(27000, 0.001, 0.5),
     None, INSUFFICIENT, "cannot be told apart from 0"),
    ("thin-control-no-baseline", HIGHER, arm(3000, 0.8, 0.5), arm(50, 1.0, 0.5), None,
     INSUFFICIENT, "50/200 observations and no baseline"),
    ("100pct-against-baseline-fails", HIGHER, arm(3000, 0.8, 0.5), None, 1.0, FAIL,
     "baseline mean 1"),
    ("100pct-against-baseline-passes", HIGHER, arm(3000, 1.0, 0.5), None, 1.0, PASS,
     "baseline mean 1"),
    ("100pct-zero-baseline-relative", HIGHER, arm(3000, 1.0, 0.5), None, 0.0, INSUFFICIENT,
     "cannot be told apart from 0"),
    ("lower-is-better-rise-fails", LOWER, arm(3000, 1.2, 0.5, "cost"),
     arm(27000, 1.0, 0.5, "cost"), None, FAIL, "≥ critical 5%"),
    ("lower-is-better-drop-passes", LOWER, arm(3000, 0.8, 0.5, "cost"),
     arm(27000, 1.0, 0.5, "cost"), None, PASS, "< warn 2%"),
    ("absolute-delta-near-zero-fails", ABSOLUTE, arm(3000, -0.05, 0.2), arm(27000, 0.0, 0.2),
     None, FAIL, "absolute change -0.05"),
    ("absolute-delta-near-zero-passes", ABSOLUTE, arm(3000, 0.001, 0.2), arm(27000, 0.0, 0.2),
     None, PASS, "> warn -0.01"),
    ("one-observation-each-no-division-by-zero", Gate(METRIC, -0.02, -0.05, min_samples=0),
     arm(1, 1.0, 0.0), arm(1, 1.0, 0.0), None, INSUFFICIENT, "1/2 observations"),
    ("identical-observations-do-not-claim-certainty", Gate(METRIC, -0.02, -0.05, min_samples=2),
     arm(2, 1.0, 0.0), arm(2, 1.0, 0.0), None, PASS, "> warn"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("gate", "treatment", "control", "baseline", "verdict", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_value_gate(
    gate: Gate,
    treatment: ArmStats,
    control: ArmStats | None,
    baseline: float | None,
    verdict: Verdict,
    words: str,
) -> None:
    name = gate.metric.removeprefix("value:")
    # A baseline as the services keep it: control's moments when the last stage began.
    values = {} if baseline is None else {name: Moments(27_000, baseline, 26_999 * 0.25)}
    reading = read_gate(gate, treatment, control, baseline_values=values)
    assert reading.verdict is verdict, reading.why
    assert words in reading.why
    if verdict is not INSUFFICIENT:
        assert reading.value is not None and reading.bound is not None
        # The judged bound sits on the "better" side of the observed change.
        if gate.direction == "lower_is_better":
            assert reading.bound <= reading.value
        else:
            assert reading.bound >= reading.value


def test_more_evidence_never_widens_the_bound() -> None:
    widths = []
    for n in (1000, 3000, 10_000, 30_000, 100_000):
        reading = read_gate(HIGHER, arm(n, 0.8, 0.5), arm(9 * n, 1.0, 0.5))
        assert reading.verdict is FAIL  # so each bound is the sequential one
        assert reading.bound is not None and reading.value is not None
        widths.append(reading.bound - reading.value)
    assert widths == sorted(widths, reverse=True)


def test_the_window_late_in_a_stage_is_judged_at_a_smaller_share() -> None:
    from rollout.core.evidence import WindowCounts

    t, c = arm(1500, 0.8, 0.5), arm(13500, 1.0, 0.5)
    early = read_gate(HIGHER, t, c, scope=Scope.WINDOW, series=[WindowCounts(0, t, c)])
    late = read_gate(HIGHER, t, c, scope=Scope.WINDOW, series=[WindowCounts(17_280, t, c)])
    # Less of the budget is left for a start two days in: the same look-back kills early only.
    assert (early.verdict, late.verdict) == (FAIL, WARN)


def test_read_gates_takes_the_flags_baseline_values_at_100_percent() -> None:
    flag = Flag(key="F", gates=(HIGHER,), baseline_values={NAME: Moments(27_000, 1.0, 6750.0)})
    stage = Arms(treatment=arm(3000, 0.8, 0.5))
    (summary,) = read_gates(flag, Evidence(stage=stage))
    assert summary.stage.verdict is FAIL and "baseline mean 1" in summary.stage.why
    assert summary.stage.control_value == 1.0


def test_value_names_are_members_of_the_family() -> None:
    assert gate_kind("value:improvement_delta") is gate_kind("value:x")
    assert gate_kind("value:") is None
    assert gate_kind("value:Bad") is None
    assert gate_kind("value:" + "a" * 65) is None
