from __future__ import annotations

import pytest

from rollout.core.decide import Action, Decision, decide
from rollout.core.defaults import WATCH_PERIOD
from rollout.core.evidence import Arms, ArmStats, Evidence
from rollout.core.gates import GateSummary, Reading, Scope, Verdict, read_gates
from rollout.core.model import Flag, Gate, Stage, State
from rollout.core.vocabulary import STATUS_WORDS

HOUR = 3_600_000
NOW = 1_800_000_000_000
ERRORS = Gate("error_rate", warn=0.05, critical=0.10, min_samples=100, window_ms=60_000)
MEMORY = Gate("memory_mb", warn=75, critical=100)
PLAN = (
    Stage(1000, bake_ms=3 * HOUR, min_samples=1000),
    Stage(5000, bake_ms=3 * HOUR, min_samples=1000),
    Stage(10_000, bake_ms=3 * HOUR, min_samples=1000),
)
BAKED = NOW - 4 * HOUR
# pass, warn, fail, not enough evidence
P, W, F, N = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.INSUFFICIENT


def flag(
    state: State = State.ROLLING,
    stage: int | None = 0,
    *,
    auto: bool = True,
    started: int | None = BAKED,
    completed_at: int | None = None,
    stages: tuple[Stage, ...] = PLAN,
    percent_bp: int | None = None,
    gates: tuple[Gate, ...] = (ERRORS, MEMORY),
) -> Flag:
    if percent_bp is None:
        percent_bp = stages[stage].percent_bp if stage is not None else 0
    return Flag(
        key="PROMPT_IMPROVER_ENABLED",
        state=state,
        stage=stage,
        stages=stages,
        percent_bp=percent_bp,
        stage_started_at=started,
        completed_at=completed_at,
        auto_advance=auto,
        gates=gates,
    )


def gate(metric_gate: Gate, window: Verdict, stage: Verdict) -> GateSummary:
    def reading(verdict: Verdict, scope: Scope) -> Reading:
        why = f"{metric_gate.metric} reads {verdict}"
        return Reading(metric_gate.metric, verdict, 0.0, 0.0, 500, scope, why)

    return GateSummary(metric_gate, reading(window, Scope.WINDOW), reading(stage, Scope.STAGE))


ALL_PASS = (gate(ERRORS, P, P), gate(MEMORY, P, P))
ERRORS_FAIL = (gate(ERRORS, F, W), gate(MEMORY, P, P))
ERRORS_WARN = (gate(ERRORS, P, W), gate(MEMORY, P, P))
ENOUGH = 1000
COMPLETED_RECENTLY = NOW - 2 * HOUR
COMPLETED_LONG_AGO = NOW - round(WATCH_PERIOD * 1000) - 1  # just past the default watch

# (id, flag, readings, treatment samples in the stage, action, words in the why)
CASES = [
    ("killed-never-touched", flag(State.KILLED), ERRORS_FAIL, ENOUGH, Action.WATCH, "killed"),
    ("draft-never-touched", flag(State.DRAFT, None), ERRORS_FAIL, ENOUGH, Action.WATCH, "draft"),
    ("rolling-fail-kills", flag(), ERRORS_FAIL, ENOUGH, Action.KILL, "error_rate reads fail"),
    ("fail-kills-before-samples", flag(), ERRORS_FAIL, 120, Action.KILL, "fail"),
    ("paused-fail-kills", flag(State.PAUSED), ERRORS_FAIL, ENOUGH, Action.KILL, "fail"),
    ("complete-in-watch-fail-kills",
     flag(State.COMPLETE, 2, completed_at=COMPLETED_RECENTLY), ERRORS_FAIL, ENOUGH,
     Action.KILL, "fail"),
    ("complete-after-watch-fail-ignored",
     flag(State.COMPLETE, 2, completed_at=COMPLETED_LONG_AGO), ERRORS_FAIL, ENOUGH,
     Action.WATCH, "watch period is over"),
    ("complete-unknown-completion-fail-kills", flag(State.COMPLETE, 2), ERRORS_FAIL, ENOUGH,
     Action.KILL, "fail"),
    ("complete-in-watch-healthy", flag(State.COMPLETE, 2, completed_at=COMPLETED_RECENTLY),
     ALL_PASS, ENOUGH, Action.WATCH, "watching: 22h left"),
    ("paused-never-advances", flag(State.PAUSED), ALL_PASS, ENOUGH, Action.HOLD, "paused"),
    ("paused-warn-says-both", flag(State.PAUSED), ERRORS_WARN, ENOUGH, Action.HOLD,
     "paused: not advancing; error_rate reads warn"),
    ("warn-holds", flag(), ERRORS_WARN, ENOUGH, Action.HOLD, "error_rate reads warn (stage)"),
    ("window-warn-holds", flag(), (gate(ERRORS, W, P),), ENOUGH, Action.HOLD,
     "error_rate reads warn (window)"),
    ("between-stages-holds", flag(stage=None, percent_bp=2500), ALL_PASS, ENOUGH, Action.HOLD,
     "at 25%, between planned stages: advance or set the percent by hand"),
    ("between-stages-still-killed", flag(stage=None, percent_bp=2500), ERRORS_FAIL, ENOUGH,
     Action.KILL, "fail"),
    ("no-stages-holds", flag(stage=None, stages=(), percent_bp=1250), ALL_PASS, ENOUGH,
     Action.HOLD, "at 12.5% with no stages planned"),
    ("baking", flag(started=NOW - 50 * 60_000), ALL_PASS, ENOUGH, Action.HOLD,
     "baking: 2h 10m left"),
    ("collecting-samples", flag(), ALL_PASS, 312, Action.HOLD, "collecting samples: 312/1000"),
    ("baking-and-collecting-both-said", flag(started=NOW - HOUR), ALL_PASS, 312, Action.HOLD,
     "baking: 2h left; collecting samples: 312/1000"),
    ("insufficient-gate-holds", flag(), (gate(ERRORS, N, N), gate(MEMORY, P, P)), ENOUGH,
     Action.HOLD, "insufficient: error_rate reads insufficient"),
    ("quiet-window-still-advances", flag(), (gate(ERRORS, N, P), gate(MEMORY, P, P)), ENOUGH,
     Action.ADVANCE, "stage 1/3 at 10%"),
    ("unknown-stage-start-holds", flag(started=None), ALL_PASS, ENOUGH, Action.HOLD,
     "start time is unknown"),
    ("all-pass-advances", flag(), ALL_PASS, ENOUGH, Action.ADVANCE, "all gates pass"),
    ("last-stage-completes", flag(stage=2), ALL_PASS, ENOUGH, Action.COMPLETE, "completing"),
    ("no-auto-awaits-approval", flag(auto=False), ALL_PASS, ENOUGH, Action.AWAIT_APPROVAL,
     "awaiting Go to advance"),
    ("no-auto-last-stage-awaits", flag(stage=2, auto=False), ALL_PASS, ENOUGH,
     Action.AWAIT_APPROVAL, "awaiting Go to complete"),
    ("no-gates-advance-on-bake-and-samples", flag(gates=()), (), ENOUGH, Action.ADVANCE,
     "no gates"),
    ("no-gates-still-bake", flag(gates=(), started=NOW - HOUR), (), ENOUGH, Action.HOLD,
     "baking"),
    ("no-gates-still-samples", flag(gates=()), (), 999, Action.HOLD, "999/1000"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("subject", "readings", "samples", "action", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_decide(
    subject: Flag,
    readings: tuple[GateSummary, ...],
    samples: int,
    action: Action,
    words: str,
) -> None:
    decision = decide(subject, readings, NOW, stage_samples=samples)
    assert decision.action is action, decision.why
    assert words in decision.why
    assert decision.readings == readings


def test_watch_period_is_configurable() -> None:
    complete = flag(State.COMPLETE, 2, completed_at=NOW - 2 * HOUR)
    short = decide(complete, ERRORS_FAIL, NOW, stage_samples=0, watch_period_ms=HOUR)
    assert short.action is Action.WATCH
    long = decide(complete, ERRORS_FAIL, NOW, stage_samples=0, watch_period_ms=3 * HOUR)
    assert long.action is Action.KILL


def test_kill_reason_names_every_failing_gate() -> None:
    readings = (gate(ERRORS, F, F), gate(MEMORY, P, F))
    decision = decide(flag(), readings, NOW, stage_samples=ENOUGH)
    assert decision.action is Action.KILL
    assert "error_rate reads fail" in decision.why and "memory_mb reads fail" in decision.why


def evidence(t_errors: int, t_samples: int, c_errors: int, c_samples: int) -> Evidence:
    arms = Arms(ArmStats(t_samples, t_errors), ArmStats(c_samples, c_errors))
    return Evidence(stage=arms, windows={60_000: arms}, memory_mb=12.0)


@pytest.mark.parametrize(
    ("ev", "state", "action"),
    [
        pytest.param(evidence(300, 1500, 135, 13_500), State.ROLLING, Action.KILL,
                     id="20pct-vs-1pct-killed"),
        pytest.param(evidence(300, 1500, 135, 13_500), State.PAUSED, Action.KILL,
                     id="paused-20pct-killed"),
        pytest.param(evidence(225, 1500, 2025, 13_500), State.ROLLING, Action.HOLD,
                     id="15pct-both-arms-held-not-killed"),
        pytest.param(evidence(15, 1500, 135, 13_500), State.ROLLING, Action.ADVANCE,
                     id="1pct-both-advances"),
        pytest.param(evidence(15, 1500, 135, 13_500), State.PAUSED, Action.HOLD,
                     id="paused-healthy-never-advances"),
        pytest.param(evidence(75, 1500, 15, 13_500), State.ROLLING, Action.ADVANCE,
                     id="5pct-healthy-not-killed"),
    ],
)  # fmt: skip
def test_from_evidence_to_decision(ev: Evidence, state: State, action: Action) -> None:
    subject = flag(state)
    decision: Decision = decide(
        subject, read_gates(subject, ev), NOW, stage_samples=ev.stage.treatment.samples
    )
    assert decision.action is action, decision.why


def test_every_decision_has_the_status_word_operators_see() -> None:
    """DESIGN §4's vocabulary: one word per decision, none shared, none missing."""
    assert dict(STATUS_WORDS) == {
        Action.KILL: "killed",
        Action.HOLD: "hold",
        Action.ADVANCE: "advanced",
        Action.AWAIT_APPROVAL: "awaiting_approval",
        Action.COMPLETE: "completed",
        Action.WATCH: "watching",
    }
    complete = flag(State.COMPLETE, 2, completed_at=COMPLETED_RECENTLY)
    watching = decide(complete, ALL_PASS, NOW, stage_samples=ENOUGH)
    assert (watching.action, watching.status_word) == ("watch", "watching")
