"""``rollout trigger create|list|delete``: the alerting stack's kill switch for a flag."""

from __future__ import annotations

import click

from rollout.cli import render
from rollout.cli.context import CliState, complete_keys, json_option, key_argument, pass_state
from rollout.core.triggers import DEFAULT_NAME


@click.group("trigger")
def trigger() -> None:
    """Inbound triggers: a secret URL whose POST kills one flag (Alertmanager, Grafana, ...)."""


@trigger.command("create")
@key_argument
@click.option(
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    help="Shown in the audit log as the kill's actor, trigger:NAME.",
)
@json_option
@pass_state
def create(state: CliState, key: str, name: str) -> None:
    """Create a trigger for KEY and print its URL: shown once, keep it like a password."""
    created = state.services.triggers.create(key, actor=state.actor, name=name)
    t = created.trigger
    human = (
        f"trigger {t.name} ({t.id}) for {t.flag}; its URL, shown only this once:\n"
        f"  {created.url}\n"
        "A POST to it kills the flag (Alertmanager 'resolved' does nothing)."
    )
    state.emit(created.to_dict(), human)


@trigger.command("list")
@click.argument("key", required=False, shell_complete=complete_keys)
@json_option
@pass_state
def list_triggers(state: CliState, key: str | None) -> None:
    """List triggers (of KEY, or all) with when each last killed its flag; never a secret."""
    triggers = state.services.triggers.list(key)
    rows = [
        (t.id, t.flag, t.name, render.instant(t.created_at), t.created_by,
         render.instant(t.last_fired_at))
        for t in triggers
    ]  # fmt: skip
    headers = ("ID", "FLAG", "NAME", "CREATED", "BY", "LAST FIRED")
    human = render.table(headers, rows) if rows else "no triggers"
    state.emit([t.to_dict() for t in triggers], human)


@trigger.command("delete")
@click.argument("trigger_id", metavar="ID")
@json_option
@pass_state
def delete(state: CliState, trigger_id: str) -> None:
    """Delete trigger ID: its URL stops working at once (audited on its flag)."""
    t = state.services.triggers.delete(trigger_id, actor=state.actor)
    state.emit(t.to_dict(), f"deleted trigger {t.name} ({t.id}) of {t.flag}")
