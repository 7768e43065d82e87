from __future__ import annotations

import copy

import pytest

from rollout.core import transitions as t
from rollout.core.errors import GateFailing, InvalidTransition, ValidationError
from rollout.core.model import Flag, Stage, State

NOW = 1_800_000_000_000
PLAN = (Stage(1000, 1000, 10), Stage(5000, 1000, 10), Stage(10_000, 1000, 10))
DRAFT = Flag(key="F", salt="F", stages=PLAN, created_at=0)


def at(stage: int, state: State = State.ROLLING) -> Flag:
    return DRAFT.with_changes(
        state=state, stage=stage, percent_bp=PLAN[stage].percent_bp, stage_started_at=0
    )


def killed(flag: Flag) -> Flag:
    return t.kill(flag, "errors", "ops", NOW)


def summary(flag: Flag) -> tuple[State, int | None, int]:
    return flag.state, flag.stage, flag.percent_bp


@pytest.mark.parametrize(
    ("before", "move", "after"),
    [
        (DRAFT, t.advance, (State.ROLLING, 0, 1000)),
        (at(0), t.advance, (State.ROLLING, 1, 5000)),
        (at(1, State.PAUSED), t.advance, (State.PAUSED, 2, 10_000)),
        (at(2), t.advance, (State.COMPLETE, 2, 10_000)),
        (at(0), t.rollback, (State.DRAFT, None, 0)),
        (at(2), t.rollback, (State.ROLLING, 1, 5000)),
        (at(2, State.COMPLETE), t.rollback, (State.ROLLING, 1, 5000)),
        (at(1, State.PAUSED), t.rollback, (State.PAUSED, 0, 1000)),
        (at(1), t.pause, (State.PAUSED, 1, 5000)),
        (at(1, State.PAUSED), t.resume, (State.ROLLING, 1, 5000)),
        (at(1), t.complete, (State.COMPLETE, 1, 5000)),
    ],
    ids=[
        "draft-advance",
        "advance",
        "paused-advance-stays-paused",
        "last-advance-completes",
        "first-rollback-to-draft",
        "rollback",
        "rollback-from-complete",
        "paused-rollback",
        "pause",
        "resume",
        "complete",
    ],
)
def test_legal_moves(before: Flag, move: object, after: tuple[State, int | None, int]) -> None:
    moved = move(before, NOW)  # type: ignore[operator]
    assert summary(moved) == after


@pytest.mark.parametrize(
    ("flag", "move"),
    [
        (DRAFT.with_changes(stages=()), t.advance),
        (at(2, State.COMPLETE), t.advance),
        (DRAFT, t.rollback),
        (DRAFT, t.pause),
        (at(1, State.COMPLETE), t.pause),
        (DRAFT, t.resume),
        (killed(at(1)), t.advance),
        (killed(at(1)), t.rollback),
        (killed(at(1)), t.pause),
        (killed(at(1)), t.resume),
        (at(1), t.revive),
        (DRAFT, t.complete),
    ],
    ids=[
        "advance-no-stages",
        "advance-complete",
        "rollback-draft",
        "pause-draft",
        "pause-complete",
        "resume-draft",
        "advance-killed",
        "rollback-killed",
        "pause-killed",
        "resume-killed",
        "revive-live",
        "complete-draft",
    ],
)
def test_illegal_moves_raise_and_change_nothing(flag: Flag, move: object) -> None:
    before = copy.deepcopy(flag)  # an equal, separate value: a move that mutated would differ
    with pytest.raises(InvalidTransition, match=r"^cannot [a-z ]+ F\b"):
        move(flag, NOW)  # type: ignore[operator]
    assert flag == before


def test_set_percent_picks_stage_and_restarts_bake() -> None:
    moved = t.set_percent(at(0), 6000, NOW)
    assert summary(moved) == (State.ROLLING, 1, 6000)
    assert moved.stage_started_at == NOW
    assert summary(t.set_percent(DRAFT, 500, NOW)) == (State.ROLLING, None, 500)
    assert summary(t.set_percent(at(2, State.COMPLETE), 2000, NOW)) == (State.ROLLING, 0, 2000)
    assert summary(t.set_percent(at(1, State.PAUSED), 10_000, NOW)) == (State.PAUSED, 2, 10_000)
    with pytest.raises(InvalidTransition):
        t.set_percent(killed(at(0)), 100, NOW)
    with pytest.raises(ValidationError):
        t.set_percent(at(0), 10_001, NOW)


def test_advance_from_between_stages_goes_to_next_stage_above() -> None:
    between = t.set_percent(at(0), 2500, NOW)
    assert between.stage == 0
    assert summary(t.advance(between, NOW)) == (State.ROLLING, 1, 5000)
    below_first = t.set_percent(DRAFT, 500, NOW)
    assert summary(t.advance(below_first, NOW)) == (State.ROLLING, 0, 1000)
    assert summary(t.rollback(below_first, NOW)) == (State.DRAFT, None, 0)


def test_advance_refused_while_a_gate_fails_unless_forced() -> None:
    with pytest.raises(GateFailing, match="error_rate"):
        t.advance(at(0), NOW, failing_gates=["error_rate"])
    assert t.advance(at(0), NOW, failing_gates=["error_rate"], force=True).stage == 1


def test_kill_is_idempotent_and_revive_restores_where_it_was() -> None:
    live = at(1, State.PAUSED)
    dead = killed(live)
    assert summary(dead) == (State.KILLED, None, 0)
    assert dead.kill is not None
    assert (dead.kill.state_before, dead.kill.stage_before, dead.kill.percent_before_bp) == (
        State.PAUSED,
        1,
        5000,
    )
    assert t.kill(dead, "again", "other", NOW + 5) is dead
    revived = t.revive(dead, NOW + 10)
    assert summary(revived) == (State.PAUSED, 1, 5000)
    assert revived.kill is None
    assert revived.stage_started_at == NOW + 10  # old evidence no longer counts
    with pytest.raises(ValidationError):
        t.kill(live, "   ", "ops", NOW)


def test_pause_and_resume_are_idempotent() -> None:
    paused = at(0, State.PAUSED)
    assert t.pause(paused, NOW) is paused
    rolling = at(0)
    assert t.resume(rolling, NOW) is rolling


@pytest.mark.parametrize(
    ("state", "serving", "rolling_out"),
    [
        (State.DRAFT, False, False),
        (State.ROLLING, True, True),
        (State.PAUSED, True, True),
        (State.COMPLETE, True, False),
        (State.KILLED, False, False),
    ],
)
def test_which_flags_serve_and_which_are_rolling_out(
    state: State, serving: bool, rolling_out: bool
) -> None:
    flag = DRAFT.with_changes(state=state)
    assert (t.serving(flag), t.rolling_out(flag)) == (serving, rolling_out)


@pytest.mark.parametrize("reason", ["", "   ", None, 5, "bell\x07", "x" * 5000])
def test_a_kill_needs_a_reason_it_can_store(reason: object) -> None:
    with pytest.raises(ValidationError, match="reason"):
        t.kill_reason(reason)
    assert t.kill_reason("errors up") == "errors up"


def test_the_baseline_is_taken_only_when_a_move_opens_100_percent() -> None:
    last = at(2)
    assert t.takes_baseline(at(1), t.advance(at(1), NOW))
    assert t.takes_baseline(at(0), t.set_percent(at(0), 10_000, NOW))
    assert not t.takes_baseline(at(0), t.advance(at(0), NOW))  # to 50%
    assert not t.takes_baseline(last, t.advance(last, NOW))  # complete, already at 100%
    assert not t.takes_baseline(last, t.set_percent(last, 10_000, NOW))
