from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from rollout.core import histogram
from rollout.core.evidence import Arms, ArmStats, Evidence, WindowCounts
from rollout.core.gates import (
    GATE_KINDS,
    GateKind,
    GateSummary,
    Reading,
    Scope,
    Verdict,
    gate_kind,
    read_gate,
    read_gates,
)
from rollout.core.model import Flag, Gate

ERRORS = Gate("error_rate", warn=0.05, critical=0.10, min_samples=100, window_ms=60_000)
LATENCY = Gate("latency_ratio", warn=1.2, critical=1.5, min_samples=100, window_ms=60_000)
MEMORY = Gate("memory_mb", warn=75, critical=100)
PASS, WARN, FAIL, INSUFFICIENT = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.INSUFFICIENT


def arm(samples: int, errors: int) -> ArmStats:
    return ArmStats(samples=samples, errors=errors)


def timed(n: int, median_ms: float, spread: float = 0.5) -> ArmStats:
    """n latencies laid out on the quantiles of a log-normal: a noiseless, realistic tail."""
    counts: dict[int, int] = {}
    for i in range(n):
        ms = median_ms * math.exp(spread * NormalDist().inv_cdf((i + 0.5) / n))
        counts[histogram.bucket_index(ms)] = counts.get(histogram.bucket_index(ms), 0) + 1
    return ArmStats(samples=n, latency=counts)


# What the services record as Flag.baseline_p95_ms: control's p95 just before the last stage.
BASELINE_P95 = histogram.percentile(timed(9000, 10).latency, 0.95) or math.nan


# (id, treatment, control, scope, verdict, words the operator must see)
ERROR_CASES = [
    ("below-min-samples-even-if-terrible", arm(99, 60), arm(900, 9), Scope.STAGE, INSUFFICIENT,
     "99/100 samples"),
    ("20pct-vs-1pct-fails", arm(200, 40), arm(1800, 18), Scope.STAGE, FAIL,
     "worse than control 1%"),
    ("20pct-at-100pct-no-control-fails", arm(300, 60), None, Scope.STAGE, FAIL,
     "≥ critical 10%"),
    ("20pct-tiny-control-holds-not-kills", arm(300, 60), arm(50, 0), Scope.STAGE, WARN,
     "too few to compare"),
    ("15pct-both-arms-is-shared-not-fail", arm(2000, 300), arm(18_000, 2700), Scope.STAGE, WARN,
     "a shared cause, not the flag"),
    ("15pct-vs-13pct-not-clearly-worse", arm(1000, 150), arm(9000, 1200), Scope.STAGE, WARN,
     "shared"),
    ("5pct-healthy-passes", arm(1000, 50), arm(9000, 90), Scope.STAGE, PASS, "< warn 5%"),
    ("5pct-healthy-many-samples-passes", arm(100_000, 5000), arm(900_000, 9000), Scope.STAGE,
     PASS, "< warn 5%"),
    ("6.1pct-warns", arm(820, 50), arm(7380, 74), Scope.STAGE, WARN,
     "error_rate 6.1% (lower bound 5.3%) ≥ warn 5% over 820 samples"),
    ("observed-11pct-of-100-is-noise-not-fail", arm(100, 11), arm(900, 9), Scope.STAGE, WARN,
     "≥ warn 5%"),
    ("1pct-passes", arm(1000, 10), arm(9000, 90), Scope.STAGE, PASS, "< warn 5%"),
    ("zero-errors-passes", arm(100, 0), arm(900, 0), Scope.STAGE, PASS, "error_rate 0%"),
    # Sequential bounds: a window without a series counts as one restart at the stage's start,
    # judged at that restart's share of WINDOW_ALPHA (0.25%: 6.0 nats, stronger than the stage's
    # 4.6), which 40/200 still crosses. Late in a stage the window needs far more: see
    # test_a_window_late_in_a_stage_needs_stronger_evidence.
    ("window-at-stage-start-is-a-restart-at-window-0", arm(200, 40), arm(1800, 18),
     Scope.WINDOW, FAIL, "a regression since window 0"),
    ("window-fails-on-overwhelming-evidence", arm(300, 150), arm(2700, 27), Scope.WINDOW, FAIL,
     "worse than control"),
    ("torn-counters-do-not-crash", arm(100, 130), arm(0, 5), Scope.STAGE, FAIL, "100%"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("treatment", "control", "scope", "verdict", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_error_rate(
    treatment: ArmStats, control: ArmStats | None, scope: Scope, verdict: Verdict, words: str
) -> None:
    reading = read_gate(ERRORS, treatment, control, scope=scope)
    assert (reading.verdict, reading.scope, reading.metric) == (verdict, scope, "error_rate")
    assert words in reading.why
    assert reading.samples == treatment.samples
    if verdict is not INSUFFICIENT:
        assert reading.value == pytest.approx(min(treatment.errors / treatment.samples, 1.0))
        assert reading.bound is not None and reading.value is not None
        # The judged bound sits below the observed rate: the gate is on the true rate.
        assert reading.bound <= reading.value


@pytest.mark.parametrize("metric", ["error_rate", "latency_ratio"])
def test_min_samples_zero_with_no_samples_is_insufficient(metric: str) -> None:
    gate = Gate(metric, warn=0.05 if metric == "error_rate" else 1.2, critical=1.5, min_samples=0)
    for scope in Scope:
        assert read_gate(gate, arm(0, 0), arm(0, 0), scope=scope).verdict is INSUFFICIENT


def late(index: int, treatment: ArmStats, control: ArmStats) -> list[WindowCounts]:
    """A look-back of six 10-second windows ending at window ``index`` of the stage, the arms
    spread evenly over them."""

    def part(stats: ArmStats, i: int) -> ArmStats:
        return arm(
            stats.samples // 6 + (i < stats.samples % 6), stats.errors // 6 + (i < stats.errors % 6)
        )

    return [WindowCounts(index - 5 + i, part(treatment, i), part(control, i)) for i in range(6)]


def test_a_window_late_in_a_stage_needs_stronger_evidence() -> None:
    """The restart scan spends less of its budget on each later start: 40/200 kills at the
    stage's start, not 48 hours in (threshold 20.5 nats), where 150/300 still does."""
    at_start = read_gate(
        ERRORS,
        arm(200, 40),
        arm(1800, 18),
        scope=Scope.WINDOW,
        series=late(5, arm(200, 40), arm(1800, 18)),
    )
    assert at_start.verdict is FAIL
    day2 = 17_280
    weak = read_gate(
        ERRORS,
        arm(200, 40),
        arm(1800, 18),
        scope=Scope.WINDOW,
        series=late(day2, arm(200, 40), arm(1800, 18)),
    )
    assert weak.verdict is WARN and "≥ warn 5%" in weak.why
    strong = read_gate(
        ERRORS,
        arm(300, 150),
        arm(2700, 27),
        scope=Scope.WINDOW,
        series=late(day2, arm(300, 150), arm(2700, 27)),
    )
    assert strong.verdict is FAIL and "worse than control" in strong.why
    assert strong.bound is not None and 0.10 <= strong.bound < 0.5


def test_a_regression_in_the_last_windows_is_found_and_compared_on_the_same_suffix() -> None:
    """Healthy windows then two bad ones: the scan restarts at the bad ones, and control over
    those same windows decides whether it is the flag (kill) or a shared cause (hold)."""
    healthy = [WindowCounts(17_270 + i, arm(100, 1), arm(900, 9)) for i in range(4)]
    bad = [WindowCounts(17_274 + i, arm(100, 40), arm(900, 9)) for i in range(2)]
    treatment = ArmStats.merge(w.treatment for w in healthy + bad)
    control = ArmStats.merge(w.control for w in healthy + bad)
    found = read_gate(ERRORS, treatment, control, scope=Scope.WINDOW, series=healthy + bad)
    assert found.verdict is FAIL
    assert "since window 17274" in found.why and "over the last 20s" in found.why
    shared = [WindowCounts(w.index, w.treatment, arm(900, 360)) for w in bad]
    held = read_gate(ERRORS, treatment, control, scope=Scope.WINDOW, series=healthy + shared)
    assert held.verdict is WARN and "a shared cause, not the flag" in held.why


def test_error_rate_reports_control_for_the_api() -> None:
    reading = read_gate(ERRORS, arm(1000, 10), arm(9000, 180))
    assert (reading.control_value, reading.control_samples) == (0.02, 9000)


@pytest.mark.parametrize(
    ("treatment", "control", "baseline", "verdict", "words"),
    [
        pytest.param(timed(1000, 20), timed(9000, 10), None, FAIL, "≥ critical 1.5x",
                     id="2x-fails"),
        pytest.param(timed(1000, 13), timed(9000, 10), None, WARN, "≥ warn 1.2x", id="1.3x-warns"),
        pytest.param(timed(1000, 10), timed(9000, 10), None, PASS, "< warn 1.2x", id="same-passes"),
        pytest.param(timed(1000, 8), timed(9000, 10), None, PASS, "< warn", id="faster-passes"),
        pytest.param(timed(99, 30), timed(900, 10), None, INSUFFICIENT, "99/100 timed",
                     id="below-min-samples"),
        pytest.param(ArmStats(samples=500), timed(900, 10), None, INSUFFICIENT, "0/100 timed",
                     id="samples-without-durations"),
        pytest.param(timed(1000, 20), None, BASELINE_P95, FAIL, "baseline p95",
                     id="100pct-2x-baseline-fails"),
        pytest.param(timed(1000, 13), None, BASELINE_P95, WARN, "baseline p95",
                     id="100pct-1.3x-baseline-warns"),
        pytest.param(timed(1000, 10), None, BASELINE_P95, PASS, "baseline",
                     id="100pct-same-as-baseline-passes"),
        pytest.param(timed(1000, 20), None, None, INSUFFICIENT, "no baseline",
                     id="100pct-no-baseline"),
        pytest.param(timed(1000, 20), timed(50, 10), BASELINE_P95, FAIL, "baseline",
                     id="thin-control-falls-back-to-baseline"),
        pytest.param(timed(1000, 20), timed(50, 10), None, INSUFFICIENT, "50/100",
                     id="thin-control-no-baseline"),
    ],
)  # fmt: skip
def test_latency_ratio(
    treatment: ArmStats,
    control: ArmStats | None,
    baseline: float | None,
    verdict: Verdict,
    words: str,
) -> None:
    reading = read_gate(LATENCY, treatment, control, baseline_p95_ms=baseline)
    assert reading.verdict is verdict
    assert words in reading.why
    if verdict is not INSUFFICIENT:
        assert reading.value is not None and reading.bound is not None
        assert reading.bound <= reading.value


def test_latency_ratio_value_is_the_p95_ratio_to_a_bucket() -> None:
    reading = read_gate(LATENCY, timed(2000, 20), timed(9000, 10))
    assert reading.value is not None
    assert 2 / histogram.GROWTH <= reading.value <= 2 * histogram.GROWTH
    assert reading.control_value == histogram.percentile(timed(9000, 10).latency, 0.95)


def test_latency_bound_tightens_with_samples() -> None:
    """A 2x slowdown seen on 100 spread-out samples is not yet proof of 1.5x; on 1,000 it is."""
    few = read_gate(LATENCY, timed(100, 20, spread=0.8), timed(900, 10, spread=0.8))
    many = read_gate(LATENCY, timed(1000, 20, spread=0.8), timed(9000, 10, spread=0.8))
    assert few.bound is not None and many.bound is not None
    assert few.bound < many.bound
    assert few.verdict is not FAIL and many.verdict is FAIL


@pytest.mark.parametrize(
    ("memory_mb", "verdict"),
    [
        pytest.param(None, INSUFFICIENT, id="no-report"),
        pytest.param(10.0, PASS, id="10MB"),
        pytest.param(80.0, WARN, id="80MB-warns"),
        pytest.param(100.0, FAIL, id="100MB-is-critical"),
        pytest.param(120.0, FAIL, id="120MB-fails"),
    ],
)
def test_memory(memory_mb: float | None, verdict: Verdict) -> None:
    reading = read_gate(MEMORY, ArmStats(), None, memory_mb=memory_mb)
    assert reading.verdict is verdict
    assert reading.value == memory_mb
    assert "memory_mb" in reading.why


def reading(verdict: Verdict, scope: Scope) -> Reading:
    return Reading("error_rate", verdict, None, None, 0, scope, f"{verdict} in {scope}")


@pytest.mark.parametrize(
    ("window", "stage", "combined"),
    [
        pytest.param(FAIL, PASS, FAIL, id="window-fail-fails"),
        pytest.param(PASS, FAIL, FAIL, id="stage-fail-fails"),
        pytest.param(WARN, FAIL, FAIL, id="fail-beats-warn"),
        pytest.param(WARN, PASS, WARN, id="window-warn-blocks-advance"),
        pytest.param(PASS, WARN, WARN, id="stage-warn"),
        pytest.param(PASS, PASS, PASS, id="both-pass"),
        pytest.param(INSUFFICIENT, PASS, PASS, id="quiet-window-is-ok-to-advance"),
        pytest.param(PASS, INSUFFICIENT, INSUFFICIENT, id="stage-must-pass-itself"),
        pytest.param(INSUFFICIENT, INSUFFICIENT, INSUFFICIENT, id="nothing-yet"),
        pytest.param(INSUFFICIENT, WARN, WARN, id="insufficient-window-stage-warn"),
    ],
)
def test_gate_summary_combines_window_and_stage(
    window: Verdict, stage: Verdict, combined: Verdict
) -> None:
    summary = GateSummary(ERRORS, reading(window, Scope.WINDOW), reading(stage, Scope.STAGE))
    assert summary.verdict is combined
    assert summary.why.startswith(str(combined))


def test_arm_stats_merge_is_an_exact_sum() -> None:
    a = ArmStats(10, 2, {"Timeout": 2}, {5: 3, 9: 7}, exposures=40)
    b = ArmStats(5, 1, {"Timeout": 1, "KeyError": 0}, {9: 1, 12: 4}, exposures=7)
    merged = ArmStats.merge([a, b])
    assert (merged.samples, merged.errors, merged.exposures) == (15, 3, 47)
    assert merged.errors_by_type == {"Timeout": 3, "KeyError": 0}
    assert merged.latency == {5: 3, 9: 8, 12: 4}
    assert ArmStats.merge([]) == ArmStats()


FLAG = Flag(
    key="F",
    gates=(ERRORS, LATENCY, MEMORY),
    baseline_p95_ms=10.0,
)


def test_read_gates_reads_every_gate_over_window_and_stage() -> None:
    slow = timed(1000, 20)
    stage = Arms(ArmStats(1000, 200, latency=slow.latency), arm(9000, 90))
    window = Arms(arm(150, 30), arm(1350, 13))
    summaries = read_gates(FLAG, Evidence(stage=stage, windows={60_000: window}, memory_mb=20.0))
    assert [s.gate.metric for s in summaries] == ["error_rate", "latency_ratio", "memory_mb"]
    errors, latency, memory = summaries
    assert (errors.stage.verdict, errors.window.verdict, errors.verdict) == (FAIL, WARN, FAIL)
    assert (errors.stage.samples, errors.window.samples) == (1000, 150)
    # No control timings: the flag's baseline (10 ms) judges the 20 ms treatment.
    assert latency.stage.verdict is FAIL and "baseline" in latency.stage.why
    assert latency.window.verdict is INSUFFICIENT
    assert memory.verdict is PASS


def test_read_gates_missing_window_is_insufficient_and_evidence_baseline_wins() -> None:
    gate = Gate("latency_ratio", warn=1.2, critical=1.5, min_samples=100, window_ms=30_000)
    flag = Flag(key="F", gates=(gate,), baseline_p95_ms=10.0)
    stage = Arms(timed(1000, 20), ArmStats())
    (summary,) = read_gates(flag, Evidence(stage=stage, baseline_p95_ms=40.0))
    assert summary.window.verdict is INSUFFICIENT
    assert summary.stage.verdict is PASS  # 20 ms against 40 ms, not against the flag's 10 ms


def test_read_gates_without_gates_is_empty() -> None:
    assert read_gates(Flag(key="F"), Evidence()) == []


def test_an_unknown_metric_is_no_gate_kind_and_cannot_be_read() -> None:
    assert gate_kind("cpu") is None
    with pytest.raises(ValueError, match="unknown gate metric"):
        read_gate(Gate("cpu", warn=1, critical=2), arm(1000, 0), None)


def test_the_registry_names_each_kind_with_its_defaults() -> None:
    assert {name: (k.min_samples, k.window_ms) for name, k in GATE_KINDS.items()} == {
        "error_rate": (100, 60_000),
        "latency_ratio": (100, 60_000),
        "memory_mb": (1, 60_000),
        "value:": (200, 60_000),  # a family: every value:NAME
    }
    assert all(kind.description for kind in GATE_KINDS.values())


def test_a_family_of_kinds_matches_by_prefix() -> None:
    """A kind named ``value:`` stands for every ``value:NAME`` (issue 10's business gates)."""
    family = GateKind("value:", "a business value", GATE_KINDS["error_rate"].read)
    assert family.matches("value:improvement_delta")
    assert not family.matches("value:") and not family.matches("error_rate")
    assert not GATE_KINDS["error_rate"].matches("error_rate_2")
