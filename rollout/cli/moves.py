"""Write commands: create, the moves of DESIGN §2, kill, revive, delete.

Each one is a single FlagService call with the operator's actor and reason; the rules (which
move is legal, what a move does) live in core and services, never here.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from rollout.cli import render
from rollout.cli.context import (
    CliState,
    PercentType,
    complete_keys,
    json_option,
    key_argument,
    pass_state,
    reason_option,
)
from rollout.cli.errors import usage
from rollout.core.model import Flag
from rollout.core.schema import flag_to_dict
from rollout.services.flags import FlagService


@click.command("create")
@key_argument
@click.option("--description", default="", metavar="TEXT", help="Free text for people.")
@reason_option
@json_option
@pass_state
def create(state: CliState, key: str, description: str, reason: str | None) -> None:
    """Create KEY as a draft at 0%.

    Only allowed users get a draft. Stages, gates and allow/deny lists come with `apply`.
    """
    flag = state.services.flags.create(
        key, actor=state.actor, reason=reason, description=description
    )
    state.emit_flag(flag, f"created {render.describe(flag)}")


@click.command("set")
@key_argument
@click.argument("percent", type=PercentType())
@reason_option
@json_option
@pass_state
def set_percent(state: CliState, key: str, percent: str, reason: str | None) -> None:
    """Expose KEY to PERCENT of users (manual move).

    PERCENT is 0 to 100 with at most two decimals (12.5). The stage becomes the last one at or
    below it and the bake restarts; draft and complete flags become rolling.
    """
    flag = state.services.flags.set_percent(key, percent, actor=state.actor, reason=reason)
    state.emit_flag(flag, render.describe(flag))


@click.command("advance")
@key_argument
@click.option("--force", is_flag=True, help="Advance even while a gate reads fail.")
@reason_option
@json_option
@pass_state
def advance(state: CliState, key: str, force: bool, reason: str | None) -> None:
    """Go: move KEY to its next stage.

    From draft it starts the first stage; after the last stage the flag is complete. Refused
    while a gate reads fail, unless --force.
    """
    flag = state.services.flags.advance(key, actor=state.actor, reason=reason, force=force)
    state.emit_flag(flag, render.describe(flag))


Move = Callable[[FlagService, str, str, str | None], Flag]


def _simple_move(name: str, summary: str, move: Move) -> click.Command:
    """A command ``NAME KEY [--reason] [--json]`` that runs one move."""

    @key_argument
    @reason_option
    @json_option
    @pass_state
    def command(state: CliState, key: str, reason: str | None) -> None:
        flag = move(state.services.flags, key, state.actor, reason)
        state.emit_flag(flag, render.describe(flag))

    return click.command(name, help=summary)(command)


rollback = _simple_move(
    "rollback",
    "Move KEY back one stage (from the first: draft).",
    lambda s, key, actor, reason: s.rollback(key, actor=actor, reason=reason),
)
pause = _simple_move(
    "pause",
    "Stop automatic advancing of KEY (kills stay armed).",
    lambda s, key, actor, reason: s.pause(key, actor=actor, reason=reason),
)
resume = _simple_move(
    "resume",
    "Let the controller advance KEY again.",
    lambda s, key, actor, reason: s.resume(key, actor=actor, reason=reason),
)
revive = _simple_move(
    "revive",
    "Bring a killed KEY back to where the kill found it.",
    lambda s, key, actor, reason: s.revive(key, actor=actor, reason=reason),
)


@click.command("kill")
@click.argument("key", required=False, shell_complete=complete_keys)
@click.option("--all", "kill_all", is_flag=True, help="Kill every rolling or paused flag.")
@click.option("--reason", required=True, metavar="TEXT", help="Why; required for a kill.")
@click.option("--yes", is_flag=True, help="Confirm --all.")
@json_option
@pass_state
def kill(state: CliState, key: str | None, kill_all: bool, reason: str, yes: bool) -> None:
    """Turn KEY off for every user now.

    Idempotent. With --all (and --yes), kills every rolling or paused flag at once.
    """
    if kill_all == (key is not None):
        raise usage("give either KEY or --all")
    if key is not None:
        flag = state.services.flags.kill(key, reason=reason, actor=state.actor)
        state.emit_flag(flag, render.describe(flag))
        return
    if not yes:
        raise usage("kill --all turns off every rolling or paused flag; confirm with --yes")
    killed = state.services.flags.kill_all(reason=reason, actor=state.actor)
    names = ", ".join(f.key for f in killed)
    human = f"killed {len(killed)} flag(s): {names}" if killed else "no rolling or paused flag"
    state.emit([flag_to_dict(f) for f in killed], human)


@click.command("delete")
@key_argument
@click.option("--yes", is_flag=True, help="Confirm the deletion.")
@reason_option
@json_option
@pass_state
def delete(state: CliState, key: str, yes: bool, reason: str | None) -> None:
    """Delete KEY; SDKs then answer their default for it."""
    if not yes:
        raise usage(f"deleting {key} cannot be undone (except by restore); confirm with --yes")
    state.services.flags.delete(key, actor=state.actor, reason=reason)
    state.emit({"deleted": key}, f"deleted {key}")


COMMANDS = (create, set_percent, advance, rollback, pause, resume, kill, revive, delete)
