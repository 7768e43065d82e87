"""Readers of the outcome gates: ``error_rate`` and ``latency_ratio`` (DESIGN §4, §4.2).

``fail`` judges sequential bounds (``core.bounds``), valid however often they are read; ``warn``
stays a per-look Wilson / order-statistic bound at z = 1, because a false warn only holds a flag
and a true value between warn and critical must never be offered an advance.

Over the stage, ``error_rate`` fails when the beta-binomial confidence sequence's low end is at
or past ``critical`` (``bounds.above`` at ``ERROR_ALPHA``) and, where control traffic exists,
the treatment's low end is above control's high end (``bounds.compare`` at ``COMPARE_ALPHA``).
Over the window it fails when the restart scan (``bounds.regression``) finds a test restarted at
some 10-second boundary of the look-back that crosses its own spent threshold, and the control
comparison over the *same* suffix of windows, at that restart's spent alpha
(``bounds.restart_alpha``), says worse. So an outage both arms share holds, never kills.

``latency_ratio`` fails when the treatment's p95 low bucket over control's p95 high bucket (both
``bounds.p95_buckets`` at ``LATENCY_ALPHA``) is at or past ``critical``; at 100% the baseline
p95 stands in for control. Over the window the look-back is one confidence sequence started at
its oldest window ``j`` and is judged at that start's share of the budget,
``alpha_j = LATENCY_ALPHA / (2 (j + 1) (1 + ln(j + 1))^2)``: each start is read only while it
is the oldest window, so the stage's false alarms are at most ``sum_j alpha_j <= LATENCY_ALPHA``.
"""

from __future__ import annotations

import math

from rollout.core import bounds, histogram, stats
from rollout.core.evidence import ArmStats
from rollout.core.model import Gate
from rollout.core.readings import Observed, Reading, Scope, Verdict, ms, pct
from rollout.core.sequential import spent_level

WARN_Z = 1.0  # per look: a false warn only holds the flag
P95 = bounds.QUANTILE


def spent_alpha(start: int, alpha: float) -> float:
    """The share of ``alpha`` a look-back starting at window ``start`` is judged at."""
    return math.exp(-spent_level(start, alpha))


def _counts(stats_: ArmStats | None) -> tuple[int, int]:
    """(errors, samples), clipped: counters come from separate increments and may tear."""
    if stats_ is None:
        return 0, 0
    n = max(stats_.samples, 0)
    return min(max(stats_.errors, 0), n), n


def error_rate(gate: Gate, observed: Observed) -> Reading:
    x, n = _counts(observed.treatment)
    cx, cn = _counts(observed.control)
    scope = observed.scope

    def reading(verdict: Verdict, bound: float | None, why: str) -> Reading:
        return Reading(
            metric=gate.metric,
            verdict=verdict,
            value=x / n if n else None,
            bound=bound,
            samples=n,
            scope=scope,
            why=why,
            control_value=cx / cn if cn else None,
            control_samples=cn,
        )

    if n == 0 or n < gate.min_samples:  # min_samples may be 0: no samples is still no evidence
        need = max(gate.min_samples, 1)
        return reading(Verdict.INSUFFICIENT, None, f"error_rate: {n}/{need} samples")
    rate = x / n
    warn_low = stats.wilson_interval(x, n, WARN_Z)[0]

    def said(bound: float, relation: str) -> str:
        return f"error_rate {pct(rate)} (lower bound {pct(bound)}) {relation} over {n} samples"

    crossed = _crossed(gate, observed, x, n, cx, cn)
    if crossed is not None:
        fail_low, above, sx, sn, scx, scn, alpha = crossed
        # No control at all (100%): the absolute thresholds alone decide (DESIGN §4).
        if cn == 0:
            return reading(Verdict.FAIL, fail_low, above)
        # Some control, too little to compare: it may be sharing the outage, so hold, not kill.
        if scn < gate.min_samples:
            why = f"{above}; control has {scn}/{gate.min_samples} samples, too few to compare"
            return reading(Verdict.WARN, fail_low, why)
        versus = f"control {pct(scx / scn)} over {scn}"
        comparison = bounds.compare(sx, sn, scx, scn, alpha, gate.critical)
        bounds_said = (
            f"treatment ≥ {pct(comparison.treatment_low)}, "
            f"control ≤ {pct(comparison.control_high)} at alpha {alpha:.2g}"
        )
        if comparison.worse:
            return reading(Verdict.FAIL, fail_low, f"{above}; worse than {versus} ({bounds_said})")
        shared = (
            f"{above}, but {versus} is about as high ({bounds_said}): a shared cause, not the flag"
        )
        return reading(Verdict.WARN, fail_low, shared)
    if warn_low >= gate.warn:
        return reading(Verdict.WARN, warn_low, said(warn_low, f"≥ warn {pct(gate.warn)}"))
    return reading(Verdict.PASS, warn_low, said(warn_low, f"< warn {pct(gate.warn)}"))


Crossing = tuple[float, str, int, int, int, int, float]


def _crossed(gate: Gate, observed: Observed, x: int, n: int, cx: int, cn: int) -> Crossing | None:
    """Has the sequential bound crossed ``critical``? Then: the bound, the words, the counts
    of both arms over the span that crossed, and the alpha the control comparison is read at."""
    critical = gate.critical
    if observed.scope is Scope.STAGE:
        if not bounds.above(x, n, critical, bounds.ERROR_ALPHA, bounds.error_prior(critical)):
            return None
        low = bounds.rate_bounds(x, n, bounds.ERROR_ALPHA, critical)[0]
        words = (
            f"error_rate {pct(x / n)} (lower bound {pct(low)}) ≥ critical {pct(critical)} "
            f"over {n} samples"
        )
        return low, words, x, n, cx, cn, bounds.COMPARE_ALPHA
    series = [(max(w.index, 0), *_counts(w.treatment)) for w in observed.series]
    restart = bounds.regression([(i, e, s) for i, e, s in series], critical)
    if restart is None or restart.margin < 0:
        return None
    alpha = bounds.restart_alpha(restart)
    low = bounds.rate_bounds(restart.successes, restart.trials, alpha, critical)[0]
    since = [w for w in observed.series if w.index >= restart.start]
    scx = sum(_counts(w.control)[0] for w in since)
    scn = sum(_counts(w.control)[1] for w in since)
    seconds = len(since) * 10
    words = (
        f"error_rate {pct(restart.successes / restart.trials)} over the last {seconds}s "
        f"(lower bound {pct(low)}) ≥ critical {pct(critical)} over {restart.trials} samples: "
        f"a regression since window {restart.start} of the stage "
        f"(evidence {restart.evidence:.1f} ≥ {restart.evidence - restart.margin:.1f} nats)"
    )
    return low, words, restart.successes, restart.trials, scx, scn, alpha


def latency_ratio(gate: Gate, observed: Observed) -> Reading:
    treatment, control = observed.treatment, observed.control
    baseline_p95_ms = observed.baseline_p95_ms
    n = histogram.total(treatment.latency)
    cn = histogram.total(control.latency) if control is not None else 0
    control_p95 = histogram.percentile(control.latency, P95) if control is not None else None

    def reading(verdict: Verdict, value: float | None, bound: float | None, why: str) -> Reading:
        return Reading(
            metric=gate.metric,
            verdict=verdict,
            value=value,
            bound=bound,
            samples=n,
            scope=observed.scope,
            why=why,
            control_value=control_p95,
            control_samples=cn,
        )

    if n == 0 or n < gate.min_samples:
        why = f"latency_ratio: {n}/{max(gate.min_samples, 1)} timed samples"
        return reading(Verdict.INSUFFICIENT, None, None, why)
    use_control = control is not None and cn >= gate.min_samples
    if not use_control and (baseline_p95_ms is None or baseline_p95_ms <= 0):
        why = (
            f"latency_ratio: control has {cn}/{gate.min_samples} timed samples "
            "and no baseline p95 was recorded"
        )
        return reading(Verdict.INSUFFICIENT, None, None, why)

    def ratio(t_index: int, c_index: int | None) -> float:
        if c_index is not None:
            return stats.bucket_ratio(t_index, c_index)
        assert baseline_p95_ms is not None
        return stats.bucket_value_ms(t_index) / baseline_p95_ms

    t = stats.quantile_bounds(treatment.latency, P95, WARN_Z)
    c = stats.quantile_bounds(control.latency, P95, WARN_Z) if use_control and control else None
    assert t is not None  # n > 0
    value = ratio(t.point, c.point if c else None)
    warn_low = ratio(t.low, c.high if c else None)
    alpha = bounds.LATENCY_ALPHA
    if observed.scope is Scope.WINDOW:
        alpha = spent_alpha(observed.first_window, alpha)
    t_seq = bounds.p95_buckets(dict(treatment.latency), alpha)
    c_seq = bounds.p95_buckets(dict(control.latency), alpha) if c and control else None
    assert t_seq is not None
    fail_low = ratio(t_seq[0], c_seq[1] if c_seq else None)
    if use_control:
        against = f"control p95 {ms(control_p95)} over {cn}"
    else:
        against = f"baseline p95 {ms(baseline_p95_ms)} (no control traffic)"
    t_p95 = ms(histogram.percentile(treatment.latency, P95))
    detail = f"treatment p95 {t_p95} over {n} vs {against}"
    if fail_low >= gate.critical:
        why = f"latency_ratio {value:.2f}x (lower bound {fail_low:.2f}x at alpha {alpha:.2g}) "
        why += f"≥ critical {gate.critical:g}x: {detail}"
        return reading(Verdict.FAIL, value, fail_low, why)
    if warn_low >= gate.warn:
        why = f"latency_ratio {value:.2f}x (lower bound {warn_low:.2f}x) ≥ warn "
        return reading(Verdict.WARN, value, warn_low, f"{why}{gate.warn:g}x: {detail}")
    why = f"latency_ratio {value:.2f}x (lower bound {warn_low:.2f}x) < warn "
    return reading(Verdict.PASS, value, warn_low, f"{why}{gate.warn:g}x: {detail}")
