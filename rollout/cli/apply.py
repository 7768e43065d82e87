"""``rollout apply FILE``: make the flags' plans equal to a declarative TOML file."""

from __future__ import annotations

from typing import Any

import click

from rollout.cli import render
from rollout.cli.context import CliState, json_option, pass_state, reason_option
from rollout.cli.errors import usage
from rollout.cli.files import INPUT_FILE, load_toml
from rollout.core.errors import ValidationError
from rollout.services.apply import Plan

SIGNS = {"create": "+", "update": "~", "delete": "-"}


def _field_lines(name: str, old: Any, new: Any) -> list[str]:
    """One field's diff: ``old → new`` for a value, ``-``/``+`` lines for list items."""
    if isinstance(old, list | None) and isinstance(new, list) and (old or new):
        before = old or []
        lines = [f"    {name}:"]
        lines += [f"      - {render.value(item)}" for item in before if item not in new]
        lines += [f"      + {render.value(item)}" for item in new if item not in before]
        if [i for i in before if i in new] != [i for i in new if i in before]:
            lines.append("      (order changed)")
        return lines
    if old is None:
        return [f"    {name}: {render.value(new)}"]
    return [f"    {name}: {render.value(old)} → {render.value(new)}"]


def render_plan(plan: Plan, *, dry_run: bool) -> str:
    if not plan.changed:
        return f"no changes ({len(plan.entries)} flag(s) up to date)"
    lines = []
    named = [(e, e.key) for e in plan.entries]
    named += [(e, f"notify.{e.key}") for e in plan.destinations]
    for entry, name in named:
        if entry.action == "unchanged":
            continue
        state = f" ({entry.state})" if entry.state else ""
        lines.append(f"{SIGNS[entry.action]} {entry.action} {name}{state}")
        for change in entry.changes:
            lines += _field_lines(change.field, change.old, change.new)
    n = plan.summary()
    d = {a: sum(e.action == a for e in plan.destinations) for a in ("create", "update", "delete")}
    notify = (
        f"; notify: created {d['create']}, updated {d['update']}, deleted {d['delete']}"
        if any(d.values())
        else ""
    )
    if dry_run:
        lines.append(
            f"dry run: would create {n['create']}, update {n['update']}, delete {n['delete']}"
            f" ({n['unchanged']} unchanged){notify}; nothing written"
        )
    else:
        lines.append(
            f"applied: created {n['create']}, updated {n['update']}, deleted {n['delete']}"
            f" ({n['unchanged']} unchanged){notify}"
        )
    return "\n".join(lines)


@click.command("apply")
@click.argument("file", type=INPUT_FILE)
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing.")
@click.option("--prune", is_flag=True, help="Also delete flags that are not in FILE.")
@reason_option
@json_option
@pass_state
def apply(state: CliState, file: str, dry_run: bool, prune: bool, reason: str | None) -> None:
    """Make the flags' plans equal to TOML FILE; print the diff.

    A field left out of a flag's table means its default (the file is declarative). Never
    changes state, percent or stage: those are moves. Idempotent: a second run says "no changes".
    """
    document = load_toml(file)
    try:
        plan = state.services.apply.apply(
            document,
            actor=state.actor,
            dry_run=dry_run,
            prune=prune,
            reason=reason or f"apply {file}",
        )
    except ValidationError as error:
        raise usage(f"{file}: {error}") from None
    state.emit(plan.to_dict(), render_plan(plan, dry_run=dry_run))
