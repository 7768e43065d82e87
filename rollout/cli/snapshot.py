"""Backup and restore of the whole flag set (DESIGN §5): ``snapshot`` and ``restore``."""

from __future__ import annotations

import json

import click

from rollout.cli.context import CliState, complete_keys, json_option, pass_state, reason_option
from rollout.cli.errors import usage
from rollout.cli.files import INPUT_FILE, load_json, write_atomically
from rollout.core.errors import ValidationError


@click.command("snapshot")
@click.option(
    "--out", metavar="FILE", type=click.Path(dir_okay=False), help="Write here, not to stdout."
)
@json_option
@pass_state
def snapshot(state: CliState, out: str | None) -> None:
    """Back up every flag as one JSON document.

    Take one before a risky change; `restore` brings that state back.
    """
    document = state.services.snapshots.take()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)  # the document is the output, --json or not
        return
    write_atomically(out, text)
    count = len(document["flags"])
    state.emit(
        {"out": out, "flags": count, "taken_at": document["taken_at"]},
        f"wrote a snapshot of {count} flag(s) to {out}",
    )


@click.command("restore")
@click.argument("file", type=INPUT_FILE)
@click.option(
    "--only", metavar="KEY", shell_complete=complete_keys, help="Restore this one flag only."
)
@reason_option
@json_option
@pass_state
def restore(state: CliState, file: str, only: str | None, reason: str | None) -> None:
    """Restore the flags from snapshot FILE.

    Makes the flag set equal to the snapshot, every field back (versions move on).

    Flags that are not in the snapshot are deleted, unless --only. The whole file is checked
    before anything is written.
    """
    document = load_json(file)
    try:
        result = state.services.snapshots.restore(
            document, actor=state.actor, reason=reason or f"restore {file}", only=only
        )
    except ValidationError as error:
        raise usage(f"{file}: {error}") from None
    parts = [
        f"{name} {len(keys)}" + (f" ({', '.join(keys)})" if keys and name != "unchanged" else "")
        for name, keys in result.to_dict().items()
    ]
    state.emit(result.to_dict(), f"restored {file}: " + ", ".join(parts))
