"""Read commands: list, show, check, audit. None of them writes."""

from __future__ import annotations

import click

from rollout.cli import render
from rollout.cli.context import CliState, complete_keys, json_option, key_argument, pass_state
from rollout.core.schema import flag_to_dict


@click.command("list")
@json_option
@pass_state
def list_flags(state: CliState) -> None:
    """Every flag, with its state, exposure and the controller's latest word."""
    flags, problems = state.services.flags.list_with_problems()
    for problem in problems:
        # Still list the readable flags: one hand-edited value must not blind the operator.
        click.echo(f"warning: {problem}", err=True)
    human = render.flags_table(flags) if flags else "no flags"
    state.emit([flag_to_dict(f) for f in flags], human)


@click.command("show")
@key_argument
@json_option
@pass_state
def show(state: CliState, key: str) -> None:
    """One flag in full: plan, gates, allow/deny, kill record, status."""
    flag = state.services.flags.get(key)
    state.emit_flag(flag, render.flag_detail(flag))


@click.command("check")
@key_argument
@click.argument("user")
@json_option
@pass_state
def check(state: CliState, key: str, user: str) -> None:
    """Would USER get flag KEY now, and why (the evaluation of DESIGN §2)."""
    flags = state.services.flags
    result = flags.evaluate(key, user)
    flag = flags.get(key)
    human = (
        f"{'on' if result.enabled else 'off'}  reason={result.reason}  bucket={result.bucket}"
        f"  (cohort: buckets below {flag.percent_bp} = {render.percent(flag.percent_bp)})"
    )
    state.emit(result.to_dict(), human)


@click.command("audit")
@click.argument("key", required=False, shell_complete=complete_keys)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="How many entries, newest first.",
)
@json_option
@pass_state
def audit(state: CliState, key: str | None, limit: int) -> None:
    """What happened, newest first: every change with its actor, action and reason."""
    entries = state.services.flags.audit(key, limit)
    human = render.audit_table(entries) if entries else "no audit entries"
    state.emit(entries, human)
