"""The ``rollout`` command: global options, lazy services, and every command registered.

Commands live in small modules (flags, moves, snapshot, apply, embedded); other surfaces add
theirs with ``cli.add_command``. The root group is a ``RolloutGroup``, so whatever a command
raises ends as one ``error: ...`` line with exit 1 (refused) or 2 (usage), never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from rollout.cli import (
    apply,
    controller,
    demo,
    embedded,
    flags,
    moves,
    notify,
    report,
    serve,
    snapshot,
    triggers,
    watch,
)
from rollout.cli.context import CliState, default_actor
from rollout.cli.errors import RolloutGroup, usage
from rollout.core.errors import ValidationError
from rollout.core.schema import validate_actor
from rollout.services.container import Services


@click.group(
    cls=RolloutGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--redis-url",
    envvar="ROLLOUT_REDIS_URL",
    metavar="URL",
    help="Redis holding the state (env ROLLOUT_REDIS_URL). Unset: the embedded server.",
)
@click.option(
    "--actor",
    metavar="NAME",
    help="Who you are in the audit log (default cli:$USER).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output (also per command).")
@click.version_option(package_name="rollout", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, actor: str | None, as_json: bool) -> None:
    """Feature-flag phased rollouts: ramp a flag stage by stage, kill it in seconds.

    Exit codes: 0 done, 1 refused (illegal move, unknown flag, Redis unreachable),
    2 usage error (bad arguments, invalid file or setting).
    """
    if actor is not None:
        try:
            validate_actor(actor, "--actor")
        except ValidationError as error:
            raise usage(str(error)) from None
    state = CliState(actor=actor or default_actor(), redis_url=redis_url or None, json=as_json)
    # Tests (and embedders) hand in ready services, or a factory, through Click's obj.
    injected: Any = ctx.obj
    if isinstance(injected, Services):
        state.injected = injected
    elif callable(injected):
        state.factory = injected
    ctx.obj = state
    ctx.call_on_close(state.close)


for command in (
    flags.list_flags,
    flags.show,
    flags.check,
    flags.audit,
    *moves.COMMANDS,
    snapshot.snapshot,
    snapshot.restore,
    report.report,
    apply.apply,
    embedded.embedded,
    controller.controller,
    watch.watch,
    demo.demo,
    serve.serve,
    triggers.trigger,
    notify.notifier,
    notify.notify,
):
    cli.add_command(command)


def main() -> None:
    """Console entry point. The fixed prog name keeps completion on ``_ROLLOUT_COMPLETE``."""
    cli.main(prog_name="rollout")
