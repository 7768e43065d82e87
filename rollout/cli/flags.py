"""Read commands: list, show, check, audit. None of them writes."""

from __future__ import annotations

import json
from typing import Any

import click

from rollout.cli import render
from rollout.cli.context import CliState, complete_keys, json_option, key_argument, pass_state
from rollout.cli.errors import usage
from rollout.core.schema import flag_to_dict
from rollout.core.transitions import serving

# The gate report without what the flag itself already says (key, state, stage, status).
READING_FIELDS = (
    "evidence_since",
    "read_at",
    "arms",
    "memory_mb",
    "baseline_p95_ms",
    "baseline_values",
    "gates",
    "srm",
)


@click.command("list")
@json_option
@pass_state
def list_flags(state: CliState) -> None:
    """List every flag with its state, exposure and status."""
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
    """Show KEY in full: plan, gates, allow/deny, kill, status."""
    services = state.services
    flag = services.flags.get(key)
    data = flag_to_dict(flag)
    human = render.flag_detail(flag)
    if serving(flag) and flag.gates:
        # Readings exist only while users get the flag through the bucket (DESIGN §4).
        report = services.gates.report(flag)
        data["readings"] = {name: report[name] for name in READING_FIELDS}
        human += "\n" + render.readings(report["gates"]) + "\n" + render.srm(report["srm"])
    state.emit(data, human)


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


def parse_attrs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` (a string) and ``k:=JSON`` (typed: ``age:=42``, ``beta:=true``), as httpie."""
    attributes: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals:
            raise usage(f"--attr {pair!r}: expected NAME=VALUE or NAME:=JSON")
        value: Any = text
        if name.endswith(":"):
            name = name[:-1]
            try:
                value = json.loads(text, parse_constant=_no_constant)
            except ValueError as error:
                raise usage(f"--attr {name}: {text!r} is not JSON ({error})") from None
        if name in attributes:
            raise usage(f"--attr {name}: given twice")
        attributes[name] = value
    return attributes


@click.command("check")
@key_argument
@click.argument("user")
@click.option(
    "--attr",
    "attrs",
    multiple=True,
    metavar="NAME=VALUE|NAME:=JSON",
    help="A context attribute for the rules: email=a@example.com is a string, age:=42 typed.",
)
@json_option
@pass_state
def check(state: CliState, key: str, user: str, attrs: tuple[str, ...]) -> None:
    """Would USER get KEY now, and why.

    Prints on/off, the reason (killed, denied, allowed, rule, in_cohort, out_of_cohort) and
    the user's bucket (0-9999; in the cohort when below the percent in basis points).
    """
    flags = state.services.flags
    result = flags.evaluate(key, user, parse_attrs(attrs))
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
    """Show the audit log (of KEY, or of every flag), newest first."""
    entries = state.services.flags.audit(key, limit)
    human = render.audit_table(entries) if entries else "no audit entries"
    state.emit(entries, human)
