"""What the controller should do next with one flag (DESIGN §4): a pure function of the flag,
its gate readings and the time.

Order of the rules, first match wins:
1. ``killed`` or ``draft`` → watch: the controller never touches a killed flag, and a draft serves
   no one through the bucket.
2. any gate at ``fail`` → kill, when the kill is armed: ``rolling``, ``paused``, and ``complete``
   within its watch period. A ``complete`` flag without ``completed_at`` counts as within it: an
   unknown completion time is no proof the watch is over, and a kill is the safe error.
3. ``complete`` → watch (within the watch period, or past it).
4. ``paused`` → hold: never advanced, whatever the gates say.
5. ``rolling`` with no current stage (an operator set a percent between stages) → hold, asking the
   operator to move it by hand.
6. a sample ratio mismatch (``core.srm``) → kill with ``srm = "kill"`` (when armed, as in 2),
   hold with ``srm = "hold"`` (status ``sample_ratio_mismatch``; the flag never advances while
   it stands); ``srm = "warn"`` only reports it.
7. any gate at ``warn`` → hold; then any gate ``insufficient`` → hold; then the bake; then the
   stage's ``min_samples`` of treatment samples.
8. all passed → advance, or complete after the last stage; without ``auto_advance``,
   await_approval instead (the operator's Go).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rollout.core.defaults import WATCH_PERIOD
from rollout.core.gates import GateSummary, Verdict
from rollout.core.model import Flag, State
from rollout.core.srm import HOLD, KILL, SrmReading
from rollout.core.transitions import rolling_out
from rollout.core.units import render_percent, to_ms
from rollout.core.vocabulary import MISMATCH_WORD, STATUS_WORDS, Action

__all__ = ["Action", "Decision", "decide"]


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    why: str
    readings: tuple[GateSummary, ...] = ()
    mismatch: bool = False  # held (or killed) on a sample ratio mismatch

    @property
    def status_word(self) -> str:
        """The word operators see for this decision (``core.vocabulary``)."""
        if self.mismatch and self.action is Action.HOLD:
            return MISMATCH_WORD
        return STATUS_WORDS[self.action]


def decide(
    flag: Flag,
    readings: Sequence[GateSummary],
    now_ms: int,
    *,
    stage_samples: int,
    watch_period_ms: int = to_ms(WATCH_PERIOD),
    srm: SrmReading | None = None,
) -> Decision:
    """The controller's next move for ``flag``.

    ``readings`` come from ``gates.read_gates``; ``stage_samples`` is the number of treatment
    samples recorded since the stage began (``Evidence.stage.treatment.samples``), which the
    stage's ``min_samples`` is checked against even when the flag has no gates. ``srm`` is the
    stage's split check (``core.srm.check_split``).
    """
    summaries = tuple(readings)
    mismatch = srm is not None and srm.mismatch

    def decision(action: Action, why: str, *, on_mismatch: bool = False) -> Decision:
        return Decision(action=action, why=why, readings=summaries, mismatch=on_mismatch)

    if flag.state == State.KILLED:
        return decision(Action.WATCH, "killed: the controller never touches a killed flag")
    if flag.state == State.DRAFT:
        return decision(Action.WATCH, "draft: not rolling out yet")

    failing = _named(summaries, Verdict.FAIL)
    watching = flag.state == State.COMPLETE and (
        flag.completed_at is None or now_ms < flag.completed_at + watch_period_ms
    )
    if failing and (rolling_out(flag) or watching):
        return decision(Action.KILL, failing)
    if mismatch and flag.srm == KILL and (rolling_out(flag) or watching):
        assert srm is not None
        return decision(Action.KILL, srm.why, on_mismatch=True)

    if flag.state == State.COMPLETE:
        if not watching:
            return decision(Action.WATCH, "complete: the watch period is over")
        left = (
            ""
            if flag.completed_at is None
            else f": {_duration(flag.completed_at + watch_period_ms - now_ms)} left"
        )
        return decision(Action.WATCH, f"complete: watching{left}")

    warning = _named(summaries, Verdict.WARN)
    if flag.state == State.PAUSED:
        return decision(Action.HOLD, "paused: not advancing" + (f"; {warning}" if warning else ""))

    if flag.stage is None or not 0 <= flag.stage < len(flag.stages):
        percent = render_percent(flag.percent_bp)
        why = (
            f"at {percent}%, between planned stages: advance or set the percent by hand"
            if flag.stages
            else f"at {percent}% with no stages planned: set the percent by hand"
        )
        return decision(Action.HOLD, why + (f"; {warning}" if warning else ""))
    if mismatch and flag.srm == HOLD:
        assert srm is not None
        why = srm.why + (f"; {warning}" if warning else "")
        return decision(Action.HOLD, why, on_mismatch=True)
    if warning:
        return decision(Action.HOLD, warning)

    # Everything still in the way, at once, so the operator sees the whole wait.
    stage = flag.stages[flag.stage]
    waiting = []
    if flag.stage_started_at is None:
        waiting.append("the stage's start time is unknown: advance by hand")
    elif now_ms < flag.stage_started_at + stage.bake_ms:
        waiting.append(f"baking: {_duration(flag.stage_started_at + stage.bake_ms - now_ms)} left")
    if stage_samples < stage.min_samples:
        waiting.append(f"collecting samples: {stage_samples}/{stage.min_samples}")
    insufficient = _named(summaries, Verdict.INSUFFICIENT)
    if insufficient:
        waiting.append(f"insufficient: {insufficient}")
    if waiting:
        return decision(Action.HOLD, "; ".join(waiting))

    last = flag.stage == len(flag.stages) - 1
    here = (
        f"stage {flag.stage + 1}/{len(flag.stages)} at {render_percent(stage.percent_bp)}%: "
        f"{'all gates pass' if summaries else 'no gates'}, baked, {stage_samples} samples"
    )
    if not flag.auto_advance:
        nxt = "complete" if last else "advance"
        return decision(Action.AWAIT_APPROVAL, f"{here}; awaiting Go to {nxt}")
    if last:
        return decision(Action.COMPLETE, f"{here}; completing")
    return decision(Action.ADVANCE, f"{here}; advancing")


def _named(summaries: Sequence[GateSummary], verdict: Verdict) -> str:
    """The reasons of every gate at ``verdict``, joined; empty when none is."""
    return "; ".join(s.why for s in summaries if s.verdict is verdict)


_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def _duration(ms: int) -> str:
    """Time left for people: the largest unit and the next one, '2h 10m', '3d', '45s'."""
    seconds = max(0, math.ceil(ms / 1000))  # never say '0s left' while time is left
    for i, (unit, size) in enumerate(_UNITS):
        if seconds >= size or unit == "s":
            text = f"{seconds // size}{unit}"
            if i + 1 < len(_UNITS):
                next_unit, next_size = _UNITS[i + 1]
                rest = seconds % size // next_size
                text += f" {rest}{next_unit}" if rest else ""
            return text
    raise AssertionError("unreachable: the last unit always matches")
