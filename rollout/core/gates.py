"""Gate readings (DESIGN §4): what the evidence says about one flag's error rate, latency, memory.

A gate reads ``pass``, ``warn``, ``fail`` or ``insufficient``. Thresholds judge the treatment's
true value, not the observed one: ``warn`` / ``fail`` mean the lower end of a confidence bound is
at or above ``warn`` / ``critical`` (``stats`` explains the bounds). Where control traffic exists,
``fail`` also needs the comparison with control to say the treatment is worse, so an outage that
both arms share holds the flag (``warn``) instead of killing it.

How strict each bound is depends on what a wrong answer costs and how often it is asked:

============  =======  =======  =======  =================================================
scope         warn z   fail z   vs. ctl  why
============  =======  =======  =======  =================================================
``stage``     1.0      2.5      3.5      cumulative evidence: successive ticks see nearly
                                         the same samples, so the looks are strongly
                                         correlated; a true rate below ``critical`` drifts
                                         away from the bound as samples grow, so false kills
                                         come from the first few hundred samples only.
``window``    1.0      4.75     4.75     each window length brings fresh, independent
                                         samples: a 3-day stage has ~4,000 one-minute
                                         windows, so a window may kill only at ~1e-6 false
                                         alarm odds (it exists for sudden, large regressions).
============  =======  =======  =======  =================================================

- warn z = 1.0 (84% one-sided) because a false ``warn`` only holds the flag for a while, whereas
  a missed one lets a flag that is above ``warn`` advance to more users.
- fail z = 2.5 (99.4%) on the stage is the tuned point of ``bench/decisions.py``: z = 2.2 kills
  faster but lets 0.4-0.6% of flags at a true 8% (below ``critical``) be killed over 100 looks;
  at z = 2.75, 0.85% of flags at 20% are still alive after 300 samples (the target allows 1%),
  and at z = 3 the 99th percentile of samples-to-kill is 350.
- The comparison with control uses 3.5 on the stage rather than 2.5 because under a shared outage
  both arms have the *same* rate, and a statistic sitting exactly at its null crosses a fixed bound
  often over thousands of ticks (law of the iterated logarithm): 3.5 keeps that near 1%.

``latency_ratio`` is itself a comparison with control (or with the baseline at 100%), so its lower
bound needs no second test. ``memory_mb`` is a reported maximum, read without statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from rollout.core import histogram, stats
from rollout.core.model import Flag, Gate, Metric

P95 = 0.95


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INSUFFICIENT = "insufficient"


class Scope(StrEnum):
    WINDOW = "window"
    STAGE = "stage"


@dataclass(frozen=True, slots=True)
class Strictness:
    """One-sided z of each bound a gate reading uses (see the module docstring)."""

    warn_z: float
    fail_z: float
    compare_z: float


STRICTNESS: Mapping[Scope, Strictness] = MappingProxyType(
    {
        Scope.STAGE: Strictness(warn_z=1.0, fail_z=2.5, compare_z=3.5),
        Scope.WINDOW: Strictness(warn_z=1.0, fail_z=4.75, compare_z=4.75),
    }
)


@dataclass(frozen=True, slots=True)
class ArmStats:
    """What one arm recorded over some span: outcomes, errors, latency histogram, exposures."""

    samples: int = 0
    errors: int = 0
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    latency: Mapping[int, int] = field(default_factory=dict)  # histogram bucket -> count
    exposures: int = 0

    @staticmethod
    def merge(parts: Iterable[ArmStats]) -> ArmStats:
        """Exact sum of several spans or processes (histograms share their buckets)."""
        parts = list(parts)
        by_type: dict[str, int] = {}
        for part in parts:
            for name, count in part.errors_by_type.items():
                by_type[name] = by_type.get(name, 0) + count
        return ArmStats(
            samples=sum(p.samples for p in parts),
            errors=sum(p.errors for p in parts),
            errors_by_type=by_type,
            latency=histogram.merge(p.latency for p in parts),
            exposures=sum(p.exposures for p in parts),
        )


@dataclass(frozen=True, slots=True)
class Arms:
    treatment: ArmStats = field(default_factory=ArmStats)
    control: ArmStats = field(default_factory=ArmStats)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the gates of one flag are read from, at one moment.

    ``stage`` counts from ``stage_started_at`` (or the revive); ``windows`` maps a gate's
    ``window_ms`` to the arms over that trailing window (a gate whose window is missing reads
    ``insufficient`` there). ``memory_mb`` is the highest growth reported by a process that
    served the treatment. ``baseline_p95_ms`` overrides ``Flag.baseline_p95_ms`` when given.
    """

    stage: Arms = field(default_factory=Arms)
    windows: Mapping[int, Arms] = field(default_factory=dict)
    memory_mb: float | None = None
    baseline_p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One gate over one scope. ``value`` is observed, ``bound`` the confidence bound judged."""

    metric: Metric
    verdict: Verdict
    value: float | None
    bound: float | None
    samples: int
    scope: Scope
    why: str
    control_value: float | None = None
    control_samples: int = 0


@dataclass(frozen=True, slots=True)
class GateSummary:
    """A gate read over its window and over the whole stage, and what the two say together.

    Combined: ``fail`` if either is ``fail``; else ``warn`` if either is ``warn``; else ``pass``
    when the stage reads ``pass`` and the window ``pass`` or ``insufficient`` (a quiet minute is
    no evidence against a stage that passed; the window exists to catch sudden regressions, which
    produce samples); else ``insufficient``.
    """

    gate: Gate
    window: Reading
    stage: Reading

    @property
    def verdict(self) -> Verdict:
        verdicts = (self.window.verdict, self.stage.verdict)
        if Verdict.FAIL in verdicts:
            return Verdict.FAIL
        if Verdict.WARN in verdicts:
            return Verdict.WARN
        return self.stage.verdict  # pass or insufficient; a window can't be worse than pass here

    @property
    def why(self) -> str:
        """The reading that decided the combined verdict, in words."""
        for reading in (self.stage, self.window):
            if reading.verdict is self.verdict:
                return f"{reading.why} ({reading.scope})"
        return self.stage.why


def read_gate(
    gate: Gate,
    treatment: ArmStats,
    control: ArmStats | None,
    *,
    memory_mb: float | None = None,
    baseline_p95_ms: float | None = None,
    scope: Scope = Scope.STAGE,
) -> Reading:
    """Read one gate over one scope (DESIGN §4)."""
    strict = STRICTNESS[scope]
    # == rather than `is`: a metric decoded as a plain string must still find its gate.
    if gate.metric == Metric.ERROR_RATE:
        return _error_rate(gate, treatment, control, strict, scope)
    if gate.metric == Metric.LATENCY_RATIO:
        return _latency_ratio(gate, treatment, control, baseline_p95_ms, strict, scope)
    if gate.metric == Metric.MEMORY_MB:
        return _memory(gate, memory_mb, scope)
    raise ValueError(f"unknown gate metric {gate.metric!r}")


def read_gates(flag: Flag, evidence: Evidence) -> list[GateSummary]:
    """Every gate of the flag, each over its window and over the stage."""
    baseline = evidence.baseline_p95_ms
    if baseline is None:
        baseline = flag.baseline_p95_ms
    summaries = []
    for gate in flag.gates:
        window = evidence.windows.get(gate.window_ms, Arms())
        readings = [
            read_gate(
                gate,
                arms.treatment,
                arms.control,
                memory_mb=evidence.memory_mb,
                baseline_p95_ms=baseline,
                scope=scope,
            )
            for arms, scope in ((window, Scope.WINDOW), (evidence.stage, Scope.STAGE))
        ]
        summaries.append(GateSummary(gate=gate, window=readings[0], stage=readings[1]))
    return summaries


def _error_rate(
    gate: Gate, treatment: ArmStats, control: ArmStats | None, strict: Strictness, scope: Scope
) -> Reading:
    n = max(treatment.samples, 0)
    # Counters come from separate increments; a torn read must not crash the controller.
    x = min(max(treatment.errors, 0), n)
    cn = max(control.samples, 0) if control is not None else 0
    cx = min(max(control.errors, 0), cn) if control is not None else 0

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
    warn_low = stats.wilson_interval(x, n, strict.warn_z)[0]
    fail_low = stats.wilson_interval(x, n, strict.fail_z)[0]

    def said(bound: float, relation: str) -> str:
        return f"error_rate {_pct(rate)} (lower bound {_pct(bound)}) {relation} over {n} samples"

    if fail_low >= gate.critical:
        above = said(fail_low, f"≥ critical {_pct(gate.critical)}")
        # No control at all (100%): the absolute thresholds alone decide (DESIGN §4).
        if cn == 0:
            return reading(Verdict.FAIL, fail_low, above)
        # Some control, too little to compare: it may be sharing the outage, so hold, not kill.
        if cn < gate.min_samples:
            why = f"{above}; control has {cn}/{gate.min_samples} samples, too few to compare"
            return reading(Verdict.WARN, fail_low, why)
        z = stats.two_proportion_z(x, n, cx, cn)
        versus = f"control {_pct(cx / cn)} over {cn}"
        if z >= strict.compare_z:
            return reading(Verdict.FAIL, fail_low, f"{above}; worse than {versus} (z={z:.1f})")
        shared = (
            f"{above}, but {versus} is about as high (z={z:.1f} < {strict.compare_z:g}): "
            "a shared cause, not the flag"
        )
        return reading(Verdict.WARN, fail_low, shared)
    if warn_low >= gate.warn:
        return reading(Verdict.WARN, warn_low, said(warn_low, f"≥ warn {_pct(gate.warn)}"))
    return reading(Verdict.PASS, warn_low, said(warn_low, f"< warn {_pct(gate.warn)}"))


def _latency_ratio(
    gate: Gate,
    treatment: ArmStats,
    control: ArmStats | None,
    baseline_p95_ms: float | None,
    strict: Strictness,
    scope: Scope,
) -> Reading:
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
            scope=scope,
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

    def ratio_bound(z: float) -> tuple[float, float]:
        """(observed ratio, conservative lower bound of the ratio) at confidence z."""
        t = stats.quantile_bounds(treatment.latency, P95, z)
        assert t is not None  # n > 0
        if use_control:
            assert control is not None
            c = stats.quantile_bounds(control.latency, P95, z)
            assert c is not None
            return stats.bucket_ratio(t.point, c.point), stats.bucket_ratio(t.low, c.high)
        assert baseline_p95_ms is not None
        return (
            stats.bucket_value_ms(t.point) / baseline_p95_ms,
            stats.bucket_value_ms(t.low) / baseline_p95_ms,
        )

    value, fail_low = ratio_bound(strict.fail_z)
    _, warn_low = ratio_bound(strict.warn_z)
    if use_control:
        against = f"control p95 {_ms(control_p95)} over {cn}"
    else:
        against = f"baseline p95 {_ms(baseline_p95_ms)} (no control traffic)"
    t_p95 = _ms(histogram.percentile(treatment.latency, P95))
    detail = f"treatment p95 {t_p95} over {n} vs {against}"
    if fail_low >= gate.critical:
        why = f"latency_ratio {value:.2f}x (lower bound {fail_low:.2f}x) ≥ critical "
        return reading(Verdict.FAIL, value, fail_low, f"{why}{gate.critical:g}x: {detail}")
    if warn_low >= gate.warn:
        why = f"latency_ratio {value:.2f}x (lower bound {warn_low:.2f}x) ≥ warn "
        return reading(Verdict.WARN, value, warn_low, f"{why}{gate.warn:g}x: {detail}")
    why = f"latency_ratio {value:.2f}x (lower bound {warn_low:.2f}x) < warn "
    return reading(Verdict.PASS, value, warn_low, f"{why}{gate.warn:g}x: {detail}")


def _memory(gate: Gate, memory_mb: float | None, scope: Scope) -> Reading:
    if memory_mb is None:
        return Reading(
            gate.metric,
            Verdict.INSUFFICIENT,
            None,
            None,
            0,
            scope,
            "memory_mb: no treatment process has reported memory yet",
        )
    seen = f"memory_mb {memory_mb:.0f} MB growth in a treatment process"
    if memory_mb >= gate.critical:
        verdict, why = Verdict.FAIL, f"{seen} ≥ critical {gate.critical:g} MB"
    elif memory_mb >= gate.warn:
        verdict, why = Verdict.WARN, f"{seen} ≥ warn {gate.warn:g} MB"
    else:
        verdict, why = Verdict.PASS, f"{seen} < warn {gate.warn:g} MB"
    # A reported maximum has no sample count and no confidence bound: the bound is the value.
    return Reading(gate.metric, verdict, memory_mb, memory_mb, 0, scope, why)


def _pct(rate: float) -> str:
    """0.061 -> '6.1%', 0.05 -> '5%'."""
    return f"{rate * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"≤{value:.3g} ms" if value != float("inf") else "> 10 min"
