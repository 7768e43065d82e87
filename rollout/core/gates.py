"""Gate readings (DESIGN §4): what the evidence says about each of one flag's gates.

Each kind of gate is one entry of ``GATE_KINDS``: its reader, its defaults and its description.
Validation (``schema``), the API's models and ``read_gate`` all take the kinds from there, so a
new kind is one entry; a name ending in ``:`` is a family of metrics (``value:NAME``).

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from rollout.core import histogram, stats
from rollout.core.defaults import GATE_MIN_SAMPLES, GATE_WINDOW_MS
from rollout.core.evidence import Arms, ArmStats, Evidence
from rollout.core.model import Flag, Gate

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
class Reading:
    """One gate over one scope. ``value`` is observed, ``bound`` the confidence bound judged."""

    metric: str
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


@dataclass(frozen=True, slots=True)
class Observed:
    """What one scope of the evidence offers a gate's reader."""

    treatment: ArmStats
    control: ArmStats | None
    memory_mb: float | None
    baseline_p95_ms: float | None
    scope: Scope

    @property
    def strict(self) -> Strictness:
        return STRICTNESS[self.scope]


Reader = Callable[[Gate, Observed], Reading]


@dataclass(frozen=True, slots=True)
class GateKind:
    """One kind of gate (a row of DESIGN §4's table): its reader, and what a plan that names
    only the thresholds gets.

    A name ending in ``:`` is a family: ``value:`` would stand for every ``value:NAME``.
    """

    name: str
    description: str
    read: Reader
    min_samples: int = GATE_MIN_SAMPLES
    window_ms: int = GATE_WINDOW_MS
    max_critical: float | None = None
    max_critical_why: str = ""

    def matches(self, metric: str) -> bool:
        if self.name.endswith(":"):
            return metric.startswith(self.name) and len(metric) > len(self.name)
        return metric == self.name


def gate_kind(metric: str) -> GateKind | None:
    """The kind a gate's ``metric`` names; None for a metric no kind reads."""
    exact = GATE_KINDS.get(metric)
    if exact is not None:
        return exact
    return next((k for k in GATE_KINDS.values() if k.matches(metric)), None)


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
    kind = gate_kind(gate.metric)
    if kind is None:
        raise ValueError(f"unknown gate metric {gate.metric!r}")
    return kind.read(gate, Observed(treatment, control, memory_mb, baseline_p95_ms, scope))


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


def _error_rate(gate: Gate, observed: Observed) -> Reading:
    treatment, control = observed.treatment, observed.control
    strict, scope = observed.strict, observed.scope
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


def _latency_ratio(gate: Gate, observed: Observed) -> Reading:
    treatment, control = observed.treatment, observed.control
    strict, scope = observed.strict, observed.scope
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


def _memory(gate: Gate, observed: Observed) -> Reading:
    memory_mb, scope = observed.memory_mb, observed.scope
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


GATE_KINDS: Mapping[str, GateKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            GateKind(
                "error_rate",
                "treatment errors / treatment samples",
                _error_rate,
                max_critical=1.0,
                max_critical_why="an error rate is a fraction from 0 to 1",
            ),
            GateKind(
                "latency_ratio",
                "treatment p95 / control p95 (at 100%: / baseline_p95_ms)",
                _latency_ratio,
            ),
            # A reported maximum, not a count of outcomes: one report is evidence enough.
            GateKind(
                "memory_mb",
                "highest memory growth (MB) reported by a process that served the treatment",
                _memory,
                min_samples=1,
            ),
        )
    }
)


def _pct(rate: float) -> str:
    """0.061 -> '6.1%', 0.05 -> '5%'."""
    return f"{rate * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"≤{value:.3g} ms" if value != float("inf") else "> 10 min"
