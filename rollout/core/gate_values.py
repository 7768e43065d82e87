"""Reader of the ``value:NAME`` gates (DESIGN §4.1): a business value's mean, treatment against
control.

The reading is the change of the treatment's mean against control's: relative
``(t - c) / |c|`` (default), or absolute ``t - c`` with ``relative = false`` (for a delta such as
``improvement_delta`` that sits near 0 in control). ``direction = "lower_is_better"`` flips
which side is worse. At 100% the control mean recorded when the last stage began
(``Flag.baseline_values``) stands in for control.

``fail`` judges ``bounds.mean_change``: Robbins' normal-mixture confidence sequence with plug-in
variances (the delta method for the ratio), tuned at ``|critical|``. A treatment whose true change
is no worse than ``critical`` is killed with probability at most ``VALUE_ALPHA`` over the stage
(asymptotically: accurate at the thousands of observations a value gate needs), and the window's
look-back is judged at its oldest window's share of that budget (``gate_outcomes.spent_alpha``).
``warn`` is per look at z = 1, like the other gates. A relative reading whose control mean cannot
be told apart from 0 reads ``insufficient``, as does a value never recorded: never ``pass``.
"""

from __future__ import annotations

import math

from rollout.core import bounds
from rollout.core.bounds import Moments
from rollout.core.gate_outcomes import WARN_Z, spent_alpha
from rollout.core.model import LOWER_IS_BETTER, Gate
from rollout.core.readings import Observed, Reading, Scope, Verdict, pct

PREFIX = "value:"


def value_name(metric: str) -> str:
    return metric[len(PREFIX) :]


def _per_look(t: Moments, c: Moments, relative: bool) -> float:
    """z = 1 half-width of the change (the same plug-in variances as ``bounds.mean_change``)."""
    var_t = max(t.variance, 1e-12 * (1.0 + t.mean**2)) / t.n
    var_c = max(c.variance, 1e-12 * (1.0 + c.mean**2)) / c.n
    if not relative:
        return WARN_Z * math.sqrt(var_t + var_c)
    scale = abs(c.mean)
    return WARN_Z * math.sqrt(var_t / scale**2 + t.mean**2 * var_c / scale**4)


def value_gate(gate: Gate, observed: Observed) -> Reading:
    name = value_name(gate.metric)
    empty = Moments(0, 0.0, 0.0)
    t = observed.treatment.values.get(name, empty)
    c = observed.control.values.get(name, empty) if observed.control is not None else empty
    baseline = observed.baseline_values.get(name)
    kind = "relative" if gate.relative else "absolute"

    def reading(verdict: Verdict, value: float | None, bound: float | None, why: str) -> Reading:
        return Reading(
            metric=gate.metric,
            verdict=verdict,
            value=value,
            bound=bound,
            samples=t.n,
            scope=observed.scope,
            why=why,
            control_value=c.mean if c.n or baseline is None else baseline.mean,
            control_samples=c.n,
        )

    need = max(gate.min_samples, 2)
    if t.n < need:
        return reading(
            Verdict.INSUFFICIENT, None, None, f"{gate.metric}: {t.n}/{need} observations"
        )
    use_control = c.n >= need
    if not use_control and (baseline is None or baseline.n < 2):
        why = f"{gate.metric}: control has {c.n}/{need} observations and no baseline was recorded"
        return reading(Verdict.INSUFFICIENT, None, None, why)
    # At 100% the baseline is control as it was when the last stage began: its count and
    # spread go into the bound, so a baseline that was itself noisy kills no one.
    against = c if use_control or baseline is None else baseline
    alpha = bounds.VALUE_ALPHA
    if observed.scope is Scope.WINDOW:
        alpha = spent_alpha(observed.first_window, alpha)
    change = bounds.mean_change(
        t, against, relative=gate.relative, effect=abs(gate.critical), alpha=alpha
    )
    if change is None:
        why = (
            f"{gate.metric}: control's mean {against.mean:.4g} cannot be told apart from 0, "
            "so a relative change cannot be read (relative = false reads t - c)"
        )
        return reading(Verdict.INSUFFICIENT, None, None, why)
    half = _per_look(t, against, gate.relative)
    lower_better = gate.direction == LOWER_IS_BETTER
    # The side of each bound nearest "better": a verdict must hold even there.
    seq = change.low if lower_better else change.high
    look = change.value - half if lower_better else change.value + half

    def worse(bound: float, threshold: float) -> bool:
        return bound >= threshold if lower_better else bound <= threshold

    def show(x: float) -> str:
        return pct(x) if gate.relative else f"{x:+.4g}"

    versus = (
        f"control mean {against.mean:.4g} over {against.n}"
        if use_control
        else f"baseline mean {against.mean:.4g} over {against.n} (no control traffic)"
    )
    detail = f"treatment mean {t.mean:.4g} over {t.n} vs {versus}"
    said = f"{gate.metric} {kind} change {show(change.value)}"
    rel, better = ("≥", "<") if lower_better else ("≤", ">")
    if worse(seq, gate.critical):
        why = (
            f"{said} (bound {show(seq)} at alpha {alpha:.2g}) {rel} critical {show(gate.critical)}"
        )
        return reading(Verdict.FAIL, change.value, seq, f"{why}: {detail}")
    if worse(look, gate.warn):
        why = f"{said} (bound {show(look)}) {rel} warn {show(gate.warn)}: {detail}"
        return reading(Verdict.WARN, change.value, look, why)
    why = f"{said} (bound {show(look)}) {better} warn {show(gate.warn)}: {detail}"
    return reading(Verdict.PASS, change.value, look, why)
