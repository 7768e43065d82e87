"""Gate readings (DESIGN §4): what the evidence says about each of one flag's gates.

Each kind of gate is one entry of ``GATE_KINDS``: its reader, its defaults and its description.
Validation (``schema``), the API's models and ``read_gate`` all take the kinds from there, so a
new kind is one entry; a name ending in ``:`` is a family of metrics (``value:NAME``).

A gate reads ``pass``, ``warn``, ``fail`` or ``insufficient``. Thresholds judge the treatment's
true value, not the observed one. ``fail`` judges confidence sequences (``core.sequential``,
``core.bounds``): bounds that stay valid however often the controller reads them, so reading
every second for three days does not turn noise into kills. Where control traffic exists,
``fail`` also needs the comparison with control to say the treatment is worse, so an outage that
both arms share holds the flag (``warn``) instead of killing it.

The error rate each verdict controls, over a whole stage and however often it is read
(``core.bounds``; ``bench/decisions.py`` measures each over seeded 3-day stages):

- ``error_rate`` ``fail`` on the stage: a flag whose true error rate is at or below ``critical``
  is killed with probability at most ``ERROR_ALPHA`` (1%); with control traffic the comparison
  must also part (a treatment no worse than control reads "worse" with probability at most
  ``2 * COMPARE_ALPHA``).
- ``error_rate`` ``fail`` on the window (a sudden regression, the restart scan): at most
  ``WINDOW_ALPHA`` (0.5%) per stage, for any stage length.
- ``latency_ratio`` ``fail``: a treatment whose true p95 is at most ``critical`` times control's
  is killed with probability at most ``2 * LATENCY_ALPHA`` (stage), and the window's look-back
  spends at most that again over the whole stage.
- ``value:NAME`` ``fail``: a treatment whose true change of the mean is no worse than
  ``critical`` is killed with probability at most ``VALUE_ALPHA`` (asymptotically: the
  normal-mixture sequence uses plug-in variances), again per stage for the window.
- ``warn`` stays a per-look bound (z = 1): a false warn only holds a flag, and a true value
  between warn and critical must never be offered an advance, so warn errs towards holding.

``STRICTNESS`` names the bound each scope uses. ``memory_mb`` is a reported maximum, read
without statistics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from rollout.core import bounds
from rollout.core.bounds import Moments
from rollout.core.defaults import GATE_MIN_SAMPLES, GATE_WINDOW_MS, VALUE_NAMES_PER_FLAG
from rollout.core.evidence import Arms, ArmStats, Evidence, WindowCounts
from rollout.core.gate_outcomes import WARN_Z, error_rate, latency_ratio
from rollout.core.gate_values import PREFIX as VALUE_PREFIX
from rollout.core.gate_values import value_gate
from rollout.core.model import VALUE_NAME_PATTERN, Flag, Gate
from rollout.core.readings import Observed, Reading, Scope, Verdict

__all__ = [
    "GATE_KINDS",
    "STRICTNESS",
    "GateKind",
    "GateSummary",
    "Observed",
    "Reading",
    "Scope",
    "Verdict",
    "gate_kind",
    "read_gate",
    "read_gates",
]


@dataclass(frozen=True, slots=True)
class Strictness:
    """The bounds a scope's readings use: warn's per-look z, and the error budget of ``fail``
    and of the control comparison (per stage, whatever the number of looks)."""

    warn_z: float
    fail_alpha: float
    compare_alpha: float
    how: str


STRICTNESS: Mapping[Scope, Strictness] = MappingProxyType(
    {
        Scope.STAGE: Strictness(
            WARN_Z,
            bounds.ERROR_ALPHA,
            bounds.COMPARE_ALPHA,
            "beta-binomial confidence sequence over the stage (prior at 2x critical)",
        ),
        Scope.WINDOW: Strictness(
            WARN_Z,
            bounds.WINDOW_ALPHA,
            bounds.WINDOW_ALPHA,
            "restart scan: a test restarted at every 10 s boundary of the look-back, each at "
            "its spent share of the budget; control compared over the same suffix at that share",
        ),
    }
)


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
    # A family's member names (after the prefix) must match this, when given.
    member: re.Pattern[str] | None = None
    # Fields a plan may give beyond metric, warn, critical, min_samples and window.
    extra_fields: tuple[str, ...] = ()
    # Signed thresholds, ordered by ``direction`` (business values); else both above 0 and
    # critical at or above warn.
    signed: bool = False
    # At most this many gates of the kind on one flag (a family has many members).
    limit: int = 1

    def matches(self, metric: str) -> bool:
        if self.name.endswith(":"):
            suffix = metric[len(self.name) :]
            if not metric.startswith(self.name) or not suffix:
                return False
            return self.member is None or self.member.fullmatch(suffix) is not None
        return metric == self.name


def gate_kind(metric: str) -> GateKind | None:
    """The kind a gate's ``metric`` names; None for a metric no kind reads."""
    exact = GATE_KINDS.get(metric)
    if exact is not None and not metric.endswith(":"):  # a family's name is no metric
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
    series: Sequence[WindowCounts] | None = None,
    baseline_values: Mapping[str, Moments] | None = None,
) -> Reading:
    """Read one gate over one scope (DESIGN §4).

    ``series`` is the window's look-back as 10-second windows (``Evidence.window_series``);
    without it the window's arms count as one window that began with the stage.
    """
    kind = gate_kind(gate.metric)
    if kind is None:
        raise ValueError(f"unknown gate metric {gate.metric!r}")
    if series is None:
        series = (WindowCounts(0, treatment, control or ArmStats()),)
    observed = Observed(
        treatment,
        control,
        memory_mb,
        baseline_p95_ms,
        scope,
        series=series if scope is Scope.WINDOW else (),
        baseline_values=dict(baseline_values or {}),
    )
    return kind.read(gate, observed)


def read_gates(flag: Flag, evidence: Evidence) -> list[GateSummary]:
    """Every gate of the flag, each over its window and over the stage."""
    baseline = evidence.baseline_p95_ms
    if baseline is None:
        baseline = flag.baseline_p95_ms
    summaries = []
    for gate in flag.gates:
        window = evidence.windows.get(gate.window_ms, Arms())
        series = evidence.window_series.get(gate.window_ms)
        readings = [
            read_gate(
                gate,
                arms.treatment,
                arms.control,
                memory_mb=evidence.memory_mb,
                baseline_p95_ms=baseline,
                scope=scope,
                series=series,
                baseline_values=flag.baseline_values,
            )
            for arms, scope in ((window, Scope.WINDOW), (evidence.stage, Scope.STAGE))
        ]
        summaries.append(GateSummary(gate=gate, window=readings[0], stage=readings[1]))
    return summaries


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
                error_rate,
                max_critical=1.0,
                max_critical_why="an error rate is a fraction from 0 to 1",
            ),
            GateKind(
                "latency_ratio",
                "treatment p95 / control p95 (at 100%: / baseline_p95_ms)",
                latency_ratio,
            ),
            # A reported maximum, not a count of outcomes: one report is evidence enough.
            GateKind(
                "memory_mb",
                "highest memory growth (MB) reported by a process that served the treatment",
                _memory,
                min_samples=1,
            ),
            GateKind(
                VALUE_PREFIX,
                "change of the treatment's mean of business value NAME against control's "
                "(relative (t - c) / |c|, or t - c with relative = false; at 100%: against "
                "baseline_values)",
                value_gate,
                min_samples=200,
                member=VALUE_NAME_PATTERN,
                extra_fields=("direction", "relative"),
                signed=True,
                limit=VALUE_NAMES_PER_FLAG,
            ),
        )
    }
)
