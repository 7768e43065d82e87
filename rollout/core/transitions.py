"""The lifecycle moves of DESIGN §2 as pure functions: old flag in, new flag out.

An illegal move raises ``InvalidTransition`` and changes nothing. A move that would change
nothing (pause a paused flag, kill a killed one) returns the flag itself, and services write
nothing for it. Version and audit are storage's business, not these functions'.

The rules that more than one move (or the controller) asks about live here once too: is a flag
serving, is it rolling out, what makes a kill's reason, when the latency baseline is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rollout.core.errors import GateFailing, InvalidTransition, ValidationError
from rollout.core.model import Flag, KillRecord, Stage, State
from rollout.core.schema import validate_text
from rollout.core.units import MAX_BP, render_percent

ROLLING_OUT = frozenset({State.ROLLING, State.PAUSED})
SERVING = ROLLING_OUT | {State.COMPLETE}


def serving(flag: Flag) -> bool:
    """Does any user get the treatment through the bucket? Not a draft, not a killed flag."""
    return flag.state in SERVING


def rolling_out(flag: Flag) -> bool:
    """Rolling or paused: between its first stage and complete, where a kill is always armed."""
    return flag.state in ROLLING_OUT


def kill_reason(reason: object) -> str:
    """A kill needs a reason: written by someone (not blank), and storable in the flag."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a kill needs a reason", "reason")
    return validate_text(reason, "reason")  # it is stored in the flag, so it must read back


def takes_baseline(before: Flag, after: Flag) -> bool:
    """Does this move open 100%? Then control's latency must be kept as the baseline now: no
    control traffic is left to compare the treatment with."""
    return after.percent_bp == MAX_BP and before.percent_bp < MAX_BP


def _moved(flag: Flag, now: int, **changes: object) -> Flag:
    # A move restarts the evidence: the bake and the gates count from here.
    return flag.with_changes(stage_started_at=now, updated_at=now, **changes)


def _refuse_killed(flag: Flag, move: str) -> None:
    if flag.state is State.KILLED:
        raise InvalidTransition(f"cannot {move} {flag.key}: it is killed (revive it first)")


def stage_for_percent(flag: Flag, percent_bp: int) -> int | None:
    """The last stage whose percent is at or below ``percent_bp``."""
    found = None
    for index, stage in enumerate(flag.stages):
        if stage.percent_bp <= percent_bp:
            found = index
    return found


def set_percent(flag: Flag, percent_bp: int, now: int) -> Flag:
    _refuse_killed(flag, "set the percentage of")
    if not 0 <= percent_bp <= MAX_BP:
        raise ValidationError(f"{percent_bp} basis points is out of range", "percent")
    state = State.PAUSED if flag.state is State.PAUSED else State.ROLLING
    return _moved(
        flag,
        now,
        percent_bp=percent_bp,
        stage=stage_for_percent(flag, percent_bp),
        state=state,
        completed_at=None,
    )


def _to_stage(flag: Flag, index: int, now: int) -> Flag:
    state = State.PAUSED if flag.state is State.PAUSED else State.ROLLING
    return _moved(
        flag,
        now,
        stage=index,
        percent_bp=flag.stages[index].percent_bp,
        state=state,
        completed_at=None,
    )


def complete(flag: Flag, now: int) -> Flag:
    if not rolling_out(flag):
        raise InvalidTransition(f"cannot complete {flag.key}: it is {flag.state}")
    return _moved(flag, now, state=State.COMPLETE, completed_at=now)


def advance(
    flag: Flag, now: int, *, failing_gates: Sequence[str] = (), force: bool = False
) -> Flag:
    """Next stage; from draft the first; after the last, complete."""
    _refuse_killed(flag, "advance")
    if not flag.stages:
        raise InvalidTransition(f"cannot advance {flag.key}: it has no stages (use set)")
    if flag.state is State.COMPLETE:
        raise InvalidTransition(f"cannot advance {flag.key}: it is already complete")
    if failing_gates and not force:
        raise GateFailing(
            f"cannot advance {flag.key}: gate {', '.join(failing_gates)} reads fail "
            "(use force to override)"
        )
    if flag.state is State.DRAFT:
        return _to_stage(flag, 0, now)
    if flag.stage is not None:
        following = flag.stage + 1
    else:
        # A manual percent between stages: the next stage is the first one above it.
        following = next(
            (i for i, s in enumerate(flag.stages) if s.percent_bp > flag.percent_bp),
            len(flag.stages),
        )
    if following >= len(flag.stages):
        return complete(flag, now)
    return _to_stage(flag, following, now)


def rollback(flag: Flag, now: int) -> Flag:
    """Back one stage; from the first stage (or below it) back to draft at 0%."""
    _refuse_killed(flag, "roll back")
    if flag.state is State.DRAFT:
        raise InvalidTransition(f"cannot roll back {flag.key}: it is a draft already")
    if flag.stage is not None:
        previous = flag.stage - 1
    else:
        below = [i for i, s in enumerate(flag.stages) if s.percent_bp < flag.percent_bp]
        previous = below[-1] if below else -1
    if previous < 0:
        return _moved(
            flag, now, state=State.DRAFT, stage=None, percent_bp=0, completed_at=None
        ).with_changes(stage_started_at=None)
    return _to_stage(flag, previous, now)


def pause(flag: Flag, now: int) -> Flag:
    if flag.state is State.PAUSED:
        return flag
    if flag.state is not State.ROLLING:
        raise InvalidTransition(f"cannot pause {flag.key}: only a rolling flag pauses")
    return flag.with_changes(state=State.PAUSED, updated_at=now)


def resume(flag: Flag, now: int) -> Flag:
    if flag.state is State.ROLLING:
        return flag
    if flag.state is not State.PAUSED:
        raise InvalidTransition(f"cannot resume {flag.key}: it is {flag.state}, not paused")
    return flag.with_changes(state=State.ROLLING, updated_at=now)


def kill(flag: Flag, reason: str, by: str, now: int) -> Flag:
    """Off for everyone, from any state; killing a killed flag changes nothing."""
    kill_reason(reason)
    if flag.state is State.KILLED:
        return flag
    record = KillRecord(
        reason=reason,
        by=by,
        at=now,
        state_before=flag.state,
        stage_before=flag.stage,
        percent_before_bp=flag.percent_bp,
    )
    return flag.with_changes(
        state=State.KILLED,
        kill=record,
        percent_bp=0,
        stage=None,  # off for everyone: no stage; the record keeps where it was
        updated_at=now,
    )


def revive(flag: Flag, now: int) -> Flag:
    """Back to where the kill found it; the evidence restarts so old outcomes cannot re-kill."""
    if flag.state is not State.KILLED or flag.kill is None:
        raise InvalidTransition(f"cannot revive {flag.key}: it is {flag.state}, not killed")
    record = flag.kill
    stage = record.stage_before
    if stage is not None and stage >= len(flag.stages):
        stage = None  # the plan changed while killed; fall back to the percent alone
    return _moved(
        flag,
        now,
        state=record.state_before,
        stage=stage,
        percent_bp=record.percent_before_bp,
        kill=None,
    )


def replan(flag: Flag, stages: tuple[Stage, ...]) -> Flag:
    """The flag under a new plan of stages: it keeps standing where it stands, or it is refused.

    A rolling or paused flag that stands on a stage must find a stage at the same percent in the
    new plan (it moves to that index); one set by hand between stages re-derives its stage. A
    killed flag must still find the stage it revives to.
    """
    moved = flag.with_changes(stages=stages)
    here = f"{render_percent(flag.percent_bp)}%"
    if rolling_out(flag) and _on_stage(flag, flag.stage, flag.percent_bp):
        same = [i for i, s in enumerate(stages) if s.percent_bp == flag.percent_bp]
        if not same:
            raise InvalidTransition(
                f"{flag.key}: the new stages remove the current stage ({here}) of a "
                f"{flag.state} flag; keep it, or move the flag first"
            )
        return moved.with_changes(stage=same[0])
    if flag.state is State.KILLED and flag.kill is not None:
        record = flag.kill
        if not _on_stage(flag, record.stage_before, record.percent_before_bp):
            # Killed at a percent set by hand: it revives to that percent, whatever the plan.
            index = stage_for_percent(moved, record.percent_before_bp)
            return moved.with_changes(kill=replace(record, stage_before=index))
        same = [i for i, s in enumerate(stages) if s.percent_bp == record.percent_before_bp]
        if not same:
            revives_to = f"{render_percent(record.percent_before_bp)}%"
            raise InvalidTransition(
                f"{flag.key}: the new stages remove the stage ({revives_to}) the killed flag "
                "revives to; revive or delete it first"
            )
        return moved.with_changes(kill=replace(record, stage_before=same[0]))
    if flag.state is State.DRAFT:
        return moved
    # Off any planned stage (set by hand, or no stages before): the stage follows the percent.
    return moved.with_changes(stage=stage_for_percent(moved, flag.percent_bp))


def _on_stage(flag: Flag, index: int | None, percent_bp: int) -> bool:
    """Does ``index`` name a stage of the current plan at exactly ``percent_bp``?"""
    return (
        index is not None
        and index < len(flag.stages)
        and (flag.stages[index].percent_bp == percent_bp)
    )


MOVES = ("advance", "rollback", "pause", "resume", "kill", "revive", "set")


def legal_moves(flag: Flag) -> dict[str, str | None]:
    """Each operator move: None when it would do something, else why not (for a disabled button).

    Found by trying the moves themselves, so the reasons are the very refusals the API would
    give and no second copy of the rules exists. A move that would change nothing (pause a
    paused flag, kill a killed one) is offered as not useful. Gates are not read here: an
    advance that a failing gate refuses is offered, and the refusal offers the force.
    """
    now = flag.updated_at or 0
    attempts = {
        "advance": lambda: advance(flag, now),
        "rollback": lambda: rollback(flag, now),
        "pause": lambda: pause(flag, now),
        "resume": lambda: resume(flag, now),
        "kill": lambda: kill(flag, "probe", "probe", now),
        "revive": lambda: revive(flag, now),
        "set": lambda: set_percent(flag, flag.percent_bp, now),
    }
    found: dict[str, str | None] = {}
    for move in MOVES:
        try:
            moved = attempts[move]()
        except InvalidTransition as refusal:
            found[move] = refusal.message
            continue
        if moved is flag and move != "set":
            found[move] = f"{flag.key} is already {flag.state}: {move} would change nothing"
        else:
            found[move] = None
    return found
